/*
 * Unit tests of the disk cache's index (cache-index.c, through cache.h):
 * schema creation and reopening, object identity by ETag or size and
 * mtime, stats, clearing, and the recorded chunk size.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "cache/cache.h"
#include "cache-test.h"

#define CS 65536u

struct fixture {
	char *dir;
	struct cache *c;
};

static struct cache *open_cache(const char *dir, uint32_t cs)
{
	struct cache_opts o = {
		.dir = dir,
		.max_bytes = 1ull << 30,
		.chunk_size = cs,
	};
	struct cache *c;

	assert_int_equal(cache_open(&o, &c), 0);
	return c;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = test_tmpdir();
	assert_non_null(f->dir);
	f->c = open_cache(f->dir, CS);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cache_close(f->c);
	test_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void put(struct cache *c, uint64_t obj, uint64_t idx, uint64_t seed)
{
	static unsigned char buf[CS];

	test_fill(buf, CS, seed, idx);
	assert_int_equal(cache_chunk_write(c, obj, idx, buf, CS), 0);
}

static int get(struct cache *c, uint64_t obj, uint64_t idx, uint64_t seed)
{
	static unsigned char buf[CS];
	int err = cache_chunk_read(c, obj, idx, buf, CS);

	if (!err)
		assert_true(test_check(buf, CS, seed, idx));
	return err;
}

static void test_reopen_persists(void **state)
{
	struct fixture *f = *state;
	struct cache_stats st;
	uint64_t id, id2;

	assert_int_equal(cache_object(f->c, "http://o", "a/b", "\"e1\"", 3 * CS,
				      100, &id),
			 0);
	assert_true(id > 0);
	for (int i = 0; i < 3; i++)
		put(f->c, id, i, id);
	/* Read back before and after indexing. */
	assert_int_equal(get(f->c, id, 1, id), 0);
	assert_int_equal(cache_flush(f->c), 0);
	assert_int_equal(get(f->c, id, 2, id), 0);
	assert_int_equal(get(f->c, id, 3, id), -ENOENT);
	cache_close(f->c);

	f->c = open_cache(f->dir, 0); /* 0: take the recorded size */
	assert_int_equal(cache_chunk_size(f->c), CS);
	assert_int_equal(cache_object(f->c, "http://o", "a/b", "\"e1\"", 3 * CS,
				      999, &id2),
			 0);
	assert_int_equal(id2, id); /* same ETag: mtime does not matter */
	for (int i = 0; i < 3; i++)
		assert_int_equal(get(f->c, id, i, id), 0);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(st.bytes, 3 * CS);
	assert_int_equal(st.chunk_size, CS);
	assert_int_equal(st.max_bytes, 1ull << 30);
	assert_true(st.fs_free_bytes > 0);
}

static void test_etag_change_drops(void **state)
{
	struct fixture *f = *state;
	struct cache_stats st;
	char path[4096];
	uint64_t id, id2, id3;

	assert_int_equal(cache_object(f->c, "o", "k", "e1", CS, 1, &id), 0);
	put(f->c, id, 0, 1);
	cache_flush(f->c);
	assert_int_equal(get(f->c, id, 0, 1), 0);

	assert_int_equal(cache_object(f->c, "o", "k", "e2", CS, 1, &id2), 0);
	assert_true(id2 != id);
	assert_int_equal(get(f->c, id, 0, 1), -ENOENT);
	assert_int_equal(get(f->c, id2, 0, 1), -ENOENT);
	test_data_path(path, sizeof(path), f->dir, id);
	assert_int_equal(access(path, F_OK), -1);
	/* A write for the stale id is accepted and never indexed. */
	put(f->c, id, 1, 1);
	cache_flush(f->c);
	assert_int_equal(get(f->c, id, 1, 1), -ENOENT);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.bytes, 0);

	/* No ETag: size and mtime identify the object. */
	assert_int_equal(cache_object(f->c, "o", "n", NULL, CS, 5, &id), 0);
	assert_int_equal(cache_object(f->c, "o", "n", "", CS, 5, &id2), 0);
	assert_int_equal(id, id2);
	assert_int_equal(cache_object(f->c, "o", "n", NULL, CS, 6, &id3), 0);
	assert_true(id3 != id);
	assert_int_equal(cache_object(f->c, "o", "n", NULL, CS + 1, 6, &id), 0);
	assert_true(id3 != id);
	/* Ids are never reused, even after the highest one is deleted. */
	assert_int_equal(cache_clear(f->c, NULL), 0);
	assert_int_equal(cache_object(f->c, "o", "z", "e", CS, 0, &id2), 0);
	assert_true(id2 > id);
}

static void test_clear(void **state)
{
	struct fixture *f = *state;
	struct cache_stats st;
	uint64_t a, b;

	assert_int_equal(cache_object(f->c, "A", "k", "e", 2 * CS, 0, &a), 0);
	assert_int_equal(cache_object(f->c, "B", "k", "e", 2 * CS, 0, &b), 0);
	put(f->c, a, 0, 1);
	put(f->c, a, 1, 1);
	put(f->c, b, 0, 2);
	cache_flush(f->c);
	assert_int_equal(cache_clear(f->c, "A"), 0);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 1);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.bytes, CS);
	assert_int_equal(get(f->c, a, 0, 1), -ENOENT);
	assert_int_equal(get(f->c, b, 0, 2), 0);
	assert_int_equal(cache_clear(f->c, NULL), 0);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.bytes, 0);
}

static void count_key(void *arg, const char *key)
{
	int *n = arg;

	assert_true(!strcmp(key, "x/1") || !strcmp(key, "x/2 b"));
	(*n)++;
}

/* The keys of one origin, for the data path's filter of known paths. */
static void test_object_keys(void **state)
{
	struct fixture *f = *state;
	uint64_t id;
	int n = 0;

	assert_int_equal(cache_object(f->c, "A", "x/1", "e", CS, 0, &id), 0);
	assert_int_equal(cache_object(f->c, "A", "x/2 b", "e", CS, 0, &id), 0);
	assert_int_equal(cache_object(f->c, "B", "y", "e", CS, 0, &id), 0);
	assert_int_equal(cache_object_keys(f->c, "A", count_key, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(cache_object_keys(f->c, "C", count_key, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cache_object_keys(f->c, NULL, count_key, &n),
			 -EINVAL);
}

static void test_chunk_size_mismatch(void **state)
{
	struct fixture *f = *state;
	struct cache_opts o = {.dir = f->dir, .chunk_size = 2 * CS};
	struct cache *c2 = NULL;
	struct cache_stats st;
	uint64_t id;

	assert_int_equal(cache_object(f->c, "o", "k", "e", CS, 0, &id), 0);
	put(f->c, id, 0, 3);
	cache_close(f->c);
	f->c = NULL;

	assert_int_equal(cache_open(&o, &c2), -ESTALE);
	assert_null(c2);
	o.chunk_size = 3000; /* not a power of two */
	assert_int_equal(cache_open(&o, &c2), -EINVAL);
	o.chunk_size = 2 * CS;
	o.reset_on_mismatch = true;
	assert_int_equal(cache_open(&o, &f->c), 0);
	assert_int_equal(cache_chunk_size(f->c), 2 * CS);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.chunks, 0);
	assert_true(st.max_bytes > 0); /* 0 asked: 10% of the fs */
	assert_int_equal(st.max_bytes, cache_default_size(f->dir));
}

static void test_damaged_index(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	uint64_t id;
	FILE *fp;

	assert_int_equal(cache_object(f->c, "o", "k", "e", CS, 0, &id), 0);
	put(f->c, id, 0, 3);
	cache_close(f->c);
	f->c = NULL;
	snprintf(path, sizeof(path), "%s/index.db-wal", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/index.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 1000; i++)
		fputs("this is not an SQLite database ", fp);
	fclose(fp);

	f->c = open_cache(f->dir, CS);
	assert_int_equal(get(f->c, id, 0, 3), -ENOENT);
	test_data_path(path, sizeof(path), f->dir, id);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(cache_object(f->c, "o", "k", "e", CS, 0, &id), 0);
	put(f->c, id, 0, 3);
	cache_flush(f->c);
	assert_int_equal(get(f->c, id, 0, 3), 0);
}

/* Set the chunk size the index of dir records to cs, behind its back. */
static void record_chunk_size(const char *dir, int64_t cs)
{
	char path[4096], sql[128];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/index.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE meta SET value = %" PRId64
		 " WHERE name = 'chunk_size'",
		 cs);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

/*
 * An index that opens but records a chunk size no cache can have (0 would
 * divide by zero; any other would misjudge every row) is damaged: a
 * maintenance command says so and changes nothing, a mount starts afresh.
 */
static void test_bad_recorded_chunk_size(void **state)
{
	static const int64_t bad[] = {0, -4096, 3000, 2048, 128ll << 20};
	struct fixture *f = *state;
	struct cache_opts o = {.dir = f->dir, .maintenance = true};
	struct cache *c2 = NULL;
	struct cache_stats st;
	uint64_t id;
	size_t i;

	assert_int_equal(cache_object(f->c, "o", "k", "e", CS, 0, &id), 0);
	put(f->c, id, 0, 3);
	cache_close(f->c);
	f->c = NULL;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		record_chunk_size(f->dir, bad[i]);
		assert_int_equal(cache_open(&o, &c2), -EUCLEAN);
		assert_null(c2);
	}
	/* A mount (a chunk size asked) resets it and works. */
	f->c = open_cache(f->dir, CS);
	assert_int_equal(cache_chunk_size(f->c), CS);
	assert_int_equal(cache_stats(f->c, &st), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(cache_object(f->c, "o", "k", "e", CS, 0, &id), 0);
	put(f->c, id, 0, 3);
	cache_flush(f->c);
	assert_int_equal(get(f->c, id, 0, 3), 0);
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	unsigned char buf[16];
	uint64_t id;

	assert_int_equal(cache_object(f->c, NULL, "k", "e", 1, 0, &id),
			 -EINVAL);
	assert_int_equal(cache_chunk_write(f->c, 1, 0, buf, 0), -EINVAL);
	assert_int_equal(cache_chunk_write(f->c, 1, 0, buf, CS + 1), -EINVAL);
	assert_int_equal(cache_chunk_read(f->c, 1, 0, buf, CS + 1), -EINVAL);
	assert_int_equal(cache_chunk_read(f->c, 12345, 0, buf, 16), -ENOENT);
	assert_true(cache_default_size("/nonexistent/deeper/still") > 0);
	assert_true(cache_default_min_free(f->dir) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reopen_persists, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_etag_change_drops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_chunk_size_mismatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_damaged_index, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_recorded_chunk_size,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
