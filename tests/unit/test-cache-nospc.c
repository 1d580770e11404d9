/*
 * Unit test of the disk cache on a full file system (a 2 MiB tmpfs, so it
 * needs root; exit 77 when the mount fails): writes degrade to "not cached"
 * with one rate-limited warning, never an error, and reads stay correct.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache-test.h"

#define CS 65536u

static struct cache *open_cache(const char *dir, uint64_t max)
{
	struct cache_opts o = {.dir = dir, .max_bytes = max, .chunk_size = CS};
	struct cache *c;

	assert_int_equal(cache_open(&o, &c), 0);
	return c;
}

static char *tmpfs_dir;

static void tmpfs_umount(void)
{
	if (tmpfs_dir) {
		umount2(tmpfs_dir, MNT_DETACH);
		rmdir(tmpfs_dir);
		free(tmpfs_dir);
		tmpfs_dir = NULL;
	}
}

/* Append to path until the file system has no byte left. */
static void fill_up(const char *path, size_t size)
{
	static char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);

	assert_true(fd >= 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	while (write(fd, block, 1) > 0)
		;
	close(fd);
}

static void test_enospc(void **state)
{
	static unsigned char buf[CS];
	struct cache_stats st;
	char dir[2048], filler[2048];
	struct cache *c;
	int warnings, hits = 0;
	uint64_t id;

	snprintf(dir, sizeof(dir), "%s/cache", tmpfs_dir);
	snprintf(filler, sizeof(filler), "%s/filler", tmpfs_dir);
	/* A limit far above the file system: only ENOSPC can stop it. */
	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", 64 * CS, 0, &id), 0);
	warnings = test_warnings;
	for (int i = 0; i < 64; i++) {
		test_fill(buf, CS, 5, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	/* Warned, but rate-limited to one. */
	assert_int_equal(test_warnings, warnings + 1);
	for (int i = 0; i < 64; i++) {
		int err = cache_chunk_read(c, id, i, buf, CS);

		assert_true(err == 0 || err == -ENOENT);
		if (!err) {
			assert_true(test_check(buf, CS, 5, i));
			hits++;
		}
	}
	assert_true(hits > 0 && hits < 32);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, (uint64_t)hits);

	/*
	 * Now leave not one byte, so that even the index cannot grow:
	 * eviction and clearing must still work.
	 */
	fill_up(filler, sizeof(filler));
	cache_set_limits(c, 2 * CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_true(st.bytes <= 2 * CS);
	for (int i = 0; i < 64; i++) {
		int err = cache_chunk_read(c, id, i, buf, CS);

		assert_true(err == 0 || err == -ENOENT || err == -ENOSPC);
		if (!err)
			assert_true(test_check(buf, CS, 5, i));
	}
	fill_up(filler, sizeof(filler));
	assert_int_equal(cache_clear(c, NULL), 0);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.objects, 0);
	unlink(filler);

	/* Space given back: after a clear, chunks fit again. */
	cache_set_limits(c, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", 64 * CS, 0, &id), 0);
	test_fill(buf, CS, 5, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	cache_flush(c);
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS), 0);
	cache_close(c);
}

/*
 * The shared in-flight counters live in a small file mapped by every
 * process. Were it sparse, the first store into it on a full file system
 * would raise SIGBUS and kill the daemon. An opener finding it so must
 * give it its blocks or go on without it; here it goes on without it,
 * and the cache still serves what is indexed.
 */
static void test_sparse_share_full(void **state)
{
	static unsigned char buf[CS];
	char dir[2048], filler[2048], share[2100];
	struct cache *c1, *c2;
	uint64_t id;
	int fd;

	snprintf(dir, sizeof(dir), "%s/share", tmpfs_dir);
	snprintf(filler, sizeof(filler), "%s/filler", tmpfs_dir);
	snprintf(share, sizeof(share), "%s/inflight", dir);
	c1 = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c1, "o", "k", "e", 4 * CS, 0, &id), 0);
	test_fill(buf, CS, 7, 0);
	assert_int_equal(cache_chunk_write(c1, id, 0, buf, CS), 0);
	cache_flush(c1);
	/* A new, sparse counters file: as ftruncate would make it. */
	assert_int_equal(unlink(share), 0);
	fd = open(share, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 65536), 0);
	close(fd);
	fill_up(filler, sizeof(filler));
	c2 = open_cache(dir, 1ull << 30);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c2, id, 0, buf, CS), 0);
	assert_true(test_check(buf, CS, 7, 0));
	test_fill(buf, CS, 7, 1);
	assert_int_equal(cache_chunk_write(c2, id, 1, buf, CS), 0);
	cache_flush(c2);
	cache_close(c2);
	cache_close(c1);
	unlink(filler);
	test_rm_rf(dir);
}

static int tmpfs_teardown(void **state)
{
	tmpfs_umount();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sparse_share_full),
		cmocka_unit_test_teardown(test_enospc, tmpfs_teardown),
	};

	tmpfs_dir = test_tmpdir();
	if (!tmpfs_dir)
		return 99;
	if (mount("tmpfs", tmpfs_dir, "tmpfs", MS_NOSUID | MS_NODEV,
		  "size=2m,mode=0700") < 0) {
		perror("mount tmpfs (skipping)");
		rmdir(tmpfs_dir);
		free(tmpfs_dir);
		return 77;
	}
	/* Unmounted by the teardown, or here if the test never ran. */
	atexit(tmpfs_umount);
	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
