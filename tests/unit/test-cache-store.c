/*
 * Unit tests of the disk cache's data files (cache-store.c, through
 * cache.h): a corrupted byte is caught and the chunk dropped, verify finds
 * and drops bad chunks, files are private whatever the umask, direct writes
 * read back right. The full file system case is in test-cache-nospc.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
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

static void corrupt(const char *dir, uint64_t obj, off_t off)
{
	char path[4096];
	unsigned char b;
	int fd;

	test_data_path(path, sizeof(path), dir, obj);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_checksum_mismatch(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache_stats st;
	struct cache *c;
	uint64_t id;
	int warnings;

	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", 2 * CS + 100, 0, &id),
			 0);
	for (int i = 0; i < 2; i++) {
		test_fill(buf, CS, 9, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	test_fill(buf, 100, 9, 2); /* the tail */
	assert_int_equal(cache_chunk_write(c, id, 2, buf, 100), 0);
	cache_flush(c);

	warnings = test_warnings;
	corrupt(dir, id, CS + 1234);
	assert_int_equal(cache_chunk_read(c, id, 1, buf, CS), -ENOENT);
	assert_int_equal(test_warnings, warnings + 1);
	/* Gone from the index: the next read is a plain miss, no warning. */
	assert_int_equal(cache_chunk_read(c, id, 1, buf, CS), -ENOENT);
	assert_int_equal(test_warnings, warnings + 1);
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS), 0);
	assert_true(test_check(buf, CS, 9, 0));
	assert_int_equal(cache_chunk_read(c, id, 2, buf, 100), 0);
	assert_true(test_check(buf, 100, 9, 2));
	/* Asked with another length: stale, dropped. */
	assert_int_equal(cache_chunk_read(c, id, 2, buf, 200), -ENOENT);
	assert_int_equal(cache_chunk_read(c, id, 2, buf, 100), -ENOENT);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.bytes, CS);
	/* Rewritten, it is good again. */
	test_fill(buf, CS, 9, 1);
	assert_int_equal(cache_chunk_write(c, id, 1, buf, CS), 0);
	cache_flush(c);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, id, 1, buf, CS), 0);
	assert_true(test_check(buf, CS, 9, 1));

	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A held chunk: its bytes are in the data file where the hold says,
 * verified; while held no evictor (of any process) punches it; a bad or
 * missing chunk is never held.
 */
static void test_hold(void **state)
{
	static unsigned char buf[CS], got[CS];
	char *dir = test_tmpdir(), path[4096];
	struct cache_hold h, h2;
	struct cache_stats st;
	struct cache *c;
	uint64_t id;
	int fd;

	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", 3 * CS, 0, &id), 0);
	assert_int_equal(cache_chunk_hold(c, id, 0, CS, &h), -ENOENT);
	assert_int_equal(h.fd, -1);
	for (int i = 0; i < 3; i++) {
		test_fill(buf, CS, 4, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);

	assert_int_equal(cache_chunk_hold(c, id, 1, CS, &h), 0);
	assert_true(h.fd >= 0);
	assert_int_equal(h.off, CS);
	assert_int_equal(h.len, CS);
	assert_int_equal(pread(h.fd, got, CS, (off_t)h.off), CS);
	assert_true(test_check(got, CS, 4, 1));
	/* Another process's view: a write lock on the range is refused
	 * while held (evictors and writers take one before touching it). */
	test_data_path(path, sizeof(path), dir, id);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	{
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
				    .l_start = CS, .l_len = CS };

		assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), -1);
		cache_chunk_release(&h);
		assert_int_equal(h.fd, -1);
		assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);
	}
	close(fd);

	/* A wrong length or a damaged chunk is refused, and left for the
	 * ordinary read to drop. */
	assert_int_equal(cache_chunk_hold(c, id, 2, CS - 1, &h), -EBADMSG);
	corrupt(dir, id, 2 * CS + 99);
	assert_int_equal(cache_chunk_hold(c, id, 2, CS, &h), -EBADMSG);
	assert_int_equal(h.fd, -1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(cache_chunk_read(c, id, 2, buf, CS), -ENOENT);
	assert_int_equal(cache_chunk_hold(c, id, 2, CS, &h), -ENOENT);

	/* Two holds of one chunk at once (two readers) both succeed. */
	assert_int_equal(cache_chunk_hold(c, id, 0, CS, &h), 0);
	assert_int_equal(cache_chunk_hold(c, id, 0, CS, &h2), 0);
	cache_chunk_release(&h);
	cache_chunk_release(&h2);
	assert_int_equal(cache_chunk_hold(c, id, 9, CS + 1, &h), -EINVAL);

	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A chunk indexed with another length than the reader expects (a mount
 * with another chunk size wrote it) while another reader holds its range:
 * the read misses and leaves it alone, for only a write lock may punch.
 * Once the hold is released, the next read drops it.
 */
static void test_drop_under_hold(void **state)
{
	static unsigned char buf[CS], got[CS];
	char *dir = test_tmpdir();
	struct cache_stats st;
	struct cache_hold h;
	struct cache *c;
	uint64_t id;
	int warnings;

	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", CS, 0, &id), 0);
	test_fill(buf, CS, 6, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	cache_flush(c);
	assert_int_equal(cache_chunk_hold(c, id, 0, CS, &h), 0);

	warnings = test_warnings;
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS / 2), -ENOENT);
	assert_int_equal(test_warnings, warnings);
	assert_int_equal(pread(h.fd, got, CS, (off_t)h.off), CS);
	assert_true(test_check(got, CS, 6, 0));
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 1);

	cache_chunk_release(&h);
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS / 2), -ENOENT);
	assert_int_equal(test_warnings, warnings + 1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 0);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static void test_verify(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir(), path[4096];
	uint64_t id, checked, bad;
	struct cache *c;

	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", 4 * CS, 0, &id), 0);
	for (int i = 0; i < 4; i++) {
		test_fill(buf, CS, 4, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	corrupt(dir, id, 0);
	corrupt(dir, id, 3 * CS + CS - 1);
	/* An orphan data file (its object long gone) is removed. */
	test_data_path(path, sizeof(path), dir, id + 1000);
	{
		char sub[4096];

		snprintf(sub, sizeof(sub), "%s/data/%02x", dir,
			 (unsigned int)((id + 1000) & 0xff));
		mkdir(sub, 0700);
	}
	close(open(path, O_CREAT | O_WRONLY, 0600));
	assert_int_equal(access(path, F_OK), 0);

	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_int_equal(checked, 4);
	assert_int_equal(bad, 2);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_int_equal(checked, 2);
	assert_int_equal(bad, 0);
	assert_int_equal(cache_chunk_read(c, id, 1, buf, CS), 0);
	assert_int_equal(cache_chunk_read(c, id, 3, buf, CS), -ENOENT);

	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static void assert_mode(const char *path, mode_t mode)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
}

static void test_permissions(void **state)
{
	static unsigned char buf[CS];
	char *base = test_tmpdir(), dir[1024], path[4096];
	struct cache *c;
	mode_t old;
	uint64_t id;

	/* Both extremes: nothing masked, and everything masked. */
	for (int round = 0; round < 2; round++) {
		snprintf(dir, sizeof(dir), "%s/r%d/cache", base, round);
		old = umask(round ? 0777 : 0);
		c = open_cache(dir, 1ull << 30);
		assert_int_equal(cache_object(c, "o", "k", "e", CS, 0, &id), 0);
		test_fill(buf, CS, 1, 0);
		assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
		cache_flush(c);
		umask(old);

		assert_mode(dir, 0700);
		snprintf(path, sizeof(path), "%s/r%d", base, round);
		assert_mode(path, 0700);
		snprintf(path, sizeof(path), "%s/data", dir);
		assert_mode(path, 0700);
		snprintf(path, sizeof(path), "%s/data/%02x", dir,
			 (unsigned int)(id & 0xff));
		assert_mode(path, 0700);
		test_data_path(path, sizeof(path), dir, id);
		assert_mode(path, 0600);
		snprintf(path, sizeof(path), "%s/index.db", dir);
		assert_mode(path, 0600);
		snprintf(path, sizeof(path), "%s/index.db-wal", dir);
		assert_mode(path, 0600);
		snprintf(path, sizeof(path), "%s/index.db-shm", dir);
		assert_mode(path, 0600);
		snprintf(path, sizeof(path), "%s/inflight", dir);
		assert_mode(path, 0600);
		assert_int_equal(cache_chunk_read(c, id, 0, buf, CS), 0);
		cache_close(c);
	}
	/* An existing directory open to others is tightened. */
	assert_int_equal(chmod(dir, 0755), 0);
	c = open_cache(dir, 1ull << 30);
	assert_mode(dir, 0700);
	cache_close(c);
	test_rm_rf(base);
	free(base);
}

/* Whether page [off, off + 4096) of the file at path is in the page cache. */
static bool resident(const char *path, off_t off)
{
	unsigned char vec = 0;
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(mincore((char *)p + off, 4096, &vec), 0);
	munmap(p, (size_t)st.st_size);
	close(fd);
	return vec & 1;
}

/* Whether the file system holding dir takes direct I/O at all. */
static bool direct_io_works(const char *dir)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/probe", dir);
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0)
		close(fd);
	unlink(path);
	return fd >= 0;
}

/*
 * cache_chunk_write_direct: chunks written out of order, from an aligned
 * buffer (direct), from a misaligned one (buffered), and a short tail
 * whose aligned head goes direct and the rest buffered, all read back and
 * verify. A direct write leaves no copy in the page cache, where the file
 * system takes direct I/O.
 */
static void test_direct(void **state)
{
	const size_t tail = 4096 + 904;
	char *dir = test_tmpdir(), path[4096];
	unsigned char *al = NULL, got[CS];
	uint64_t id, checked = 0, bad = 0;
	struct cache *c;
	struct stat st;

	(void)state;
	assert_int_equal(posix_memalign((void **)&al, 4096, CS + 4096), 0);
	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "d", "e", 2 * CS + tail, 0, &id),
			 0);
	test_fill(al, tail, 5, 2);
	assert_int_equal(cache_chunk_write_direct(c, id, 2, al, tail), 0);
	test_fill(al, CS, 5, 0);
	assert_int_equal(cache_chunk_write_direct(c, id, 0, al, CS), 0);
	test_fill(al + 1, CS, 5, 1);
	assert_int_equal(cache_chunk_write_direct(c, id, 1, al + 1, CS), 0);
	cache_flush(c);

	test_data_path(path, sizeof(path), dir, id);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * CS + tail);
	if (direct_io_works(dir)) {
		assert_false(resident(path, 0));
		assert_false(resident(path, 2 * CS));
		assert_true(resident(path, CS));
	}
	for (uint64_t i = 0; i < 3; i++) {
		size_t len = i == 2 ? tail : CS;

		assert_int_equal(cache_chunk_read(c, id, i, got, len), 0);
		assert_true(test_check(got, len, 5, (int)i));
	}
	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_int_equal(checked, 3);
	assert_int_equal(bad, 0);
	cache_close(c);
	free(al);
	test_rm_rf(dir);
	free(dir);
}

static void on_alarm(int sig)
{
	static const char msg[] = "test-cache-store: a write waited on a "
				  "held chunk's lock\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* dying anyway */
	}
	_exit(1);
}

/*
 * A write of a chunk that a reader holds (here, in this very process)
 * does not wait for the hold: it leaves the cached chunk as it is and
 * says "not cached". A writer that waited hung the daemon at unmount.
 */
static void test_write_over_hold(void **state)
{
	static unsigned char buf[CS], got[CS];
	char *dir = test_tmpdir();
	struct cache_hold h;
	struct cache *c;
	uint64_t id;

	c = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(c, "o", "k", "e", CS, 0, &id), 0);
	test_fill(buf, CS, 5, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	cache_flush(c);
	assert_int_equal(cache_chunk_hold(c, id, 0, CS, &h), 0);
	signal(SIGALRM, on_alarm);
	alarm(20);
	test_fill(buf, CS, 6, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	assert_int_equal(cache_chunk_write_direct(c, id, 0, buf, CS), 0);
	alarm(0);
	cache_flush(c);
	/* The held bytes are still the first ones, and still right. */
	assert_int_equal(pread(h.fd, got, CS, (off_t)h.off), CS);
	assert_true(test_check(got, CS, 5, 0));
	cache_chunk_release(&h);
	assert_int_equal(cache_chunk_read(c, id, 0, got, CS), 0);
	assert_true(test_check(got, CS, 5, 0));
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * Two processes on one directory with different chunk sizes: the second
 * empties it for its size while the first still runs. The first then
 * registers the object again (it gets the second's id: one object, one
 * id) and writes a chunk in its own layout, here a chunk of zeros. The
 * second must not take that row for its own chunk of the same index, at
 * another offset, where the file has a hole whose zeros match the row's
 * checksum: it is a miss. Nor is the first's later write indexed.
 */
static void test_other_chunk_size(void **state)
{
	static unsigned char buf[CS];
	struct cache_opts ob = {.chunk_size = CS / 2,
				.reset_on_mismatch = true};
	char *dir = test_tmpdir();
	struct cache *a, *b;
	uint64_t ida, idb;

	a = open_cache(dir, 1ull << 30);
	assert_int_equal(cache_object(a, "o", "k", "e", CS + CS / 2, 0, &ida),
			 0);
	ob.dir = dir;
	ob.max_bytes = 1ull << 30;
	assert_int_equal(cache_open(&ob, &b), 0);
	assert_int_equal(cache_object(b, "o", "k", "e", CS + CS / 2, 0, &idb),
			 0);
	assert_int_equal(cache_object(a, "o", "k", "e", CS + CS / 2, 0, &ida),
			 0);
	assert_int_equal(ida, idb);
	/* a's chunk 1: bytes CS to 3 CS / 2, all zeros. */
	memset(buf, 0, CS / 2);
	assert_int_equal(cache_chunk_write(a, ida, 1, buf, CS / 2), 0);
	cache_flush(a);
	/* b's chunk 1: bytes CS / 2 to CS, which b never wrote. */
	memset(buf, 0x44, CS / 2);
	assert_int_equal(cache_chunk_read(b, idb, 1, buf, CS / 2), -ENOENT);
	/* b's own chunks still work, and a does not read them either. */
	test_fill(buf, CS / 2, 5, 0);
	assert_int_equal(cache_chunk_write(b, idb, 0, buf, CS / 2), 0);
	cache_flush(b);
	memset(buf, 0, CS / 2);
	assert_int_equal(cache_chunk_read(b, idb, 0, buf, CS / 2), 0);
	assert_true(test_check(buf, CS / 2, 5, 0));
	assert_int_equal(cache_chunk_read(a, ida, 0, buf, CS / 2), -ENOENT);

	cache_close(a);
	cache_close(b);
	test_rm_rf(dir);
	free(dir);
}

/*
 * The same two processes, each writing the object's true bytes in its own
 * layout. The first's first write after the change finds it (its row is
 * refused, its bytes punched). From then on it writes nothing: a write
 * would again be refused and punched, in the middle of the second's
 * chunks, which then failed their checksums and were fetched again for as
 * long as the first ran.
 */
static void test_other_chunk_size_stops_writing(void **state)
{
	static unsigned char obj[2 * CS], got[CS / 2];
	struct cache_opts ob = {.chunk_size = CS / 2,
				.reset_on_mismatch = true};
	char *dir = test_tmpdir();
	struct cache *a, *b;
	uint64_t ida, idb;

	(void)state;
	test_fill(obj, sizeof(obj), 9, 0);
	a = open_cache(dir, 1ull << 30);
	ob.dir = dir;
	ob.max_bytes = 1ull << 30;
	assert_int_equal(cache_open(&ob, &b), 0);
	assert_int_equal(cache_object(b, "o", "k", "e", 2 * CS, 0, &idb), 0);
	assert_int_equal(cache_object(a, "o", "k", "e", 2 * CS, 0, &ida), 0);
	assert_int_equal(ida, idb);
	/* a finds the other layout: bytes CS to 2 CS written, then punched. */
	assert_int_equal(cache_chunk_write(a, ida, 1, obj + CS, CS), 0);
	cache_flush(a);
	/* b's chunks 2 and 3 are those bytes. */
	assert_int_equal(cache_chunk_write(b, idb, 2, obj + CS, CS / 2), 0);
	assert_int_equal(cache_chunk_write(b, idb, 3, obj + 3 * CS / 2, CS / 2),
			 0);
	cache_flush(b);
	/* a again, the same bytes: nothing may be punched under b. */
	assert_int_equal(cache_chunk_write(a, ida, 1, obj + CS, CS), 0);
	cache_flush(a);
	assert_int_equal(cache_chunk_read(b, idb, 2, got, CS / 2), 0);
	assert_memory_equal(got, obj + CS, CS / 2);
	assert_int_equal(cache_chunk_read(b, idb, 3, got, CS / 2), 0);
	assert_memory_equal(got, obj + 3 * CS / 2, CS / 2);

	cache_close(a);
	cache_close(b);
	test_rm_rf(dir);
	free(dir);
}

/*
 * Object (o, k) of version v1 in c, 2 * CS long, dropped while in use: a
 * chunk of it written, the cache cleared, another chunk written under the
 * old id (buf, CS bytes, holds the writes' bytes). Returns the old id.
 */
static uint64_t drop_in_use(struct cache *c, unsigned char *buf)
{
	uint64_t a;

	assert_int_equal(cache_object(c, "o", "k", "v1", 2 * CS, 0, &a), 0);
	test_fill(buf, CS, 11, 0);
	assert_int_equal(cache_chunk_write(c, a, 0, buf, CS), 0);
	cache_flush(c);
	assert_false(cache_object_dropped(c, a));
	assert_int_equal(cache_clear(c, NULL), 0);
	assert_int_equal(cache_chunk_write(c, a, 1, buf, CS), 0);
	cache_flush(c);
	return a;
}

/*
 * An object dropped while a writer still uses its id (a clear; a newer
 * version registered elsewhere): the chunk written under the old id is not
 * kept, the drop is reported once, and registering the version again
 * gives a new id, unless another version took its place, which is then
 * left alone.
 */
static void test_dropped_in_use(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache *c = open_cache(dir, 1 << 30);
	uint64_t a, b, v2, again;

	a = drop_in_use(c, buf);
	assert_true(cache_object_dropped(c, a));
	assert_false(cache_object_dropped(c, a)); /* once */
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), -ENOENT);

	assert_int_equal(cache_object_rejoin(c, "o", "k", "v1", 2 * CS, 0, &b),
			 0);
	assert_true(b != a);
	assert_int_equal(
		cache_object_rejoin(c, "o", "k", "v1", 2 * CS, 0, &again), 0);
	assert_int_equal(again, b); /* found, not created twice */
	test_fill(buf, CS, 11, 1);
	assert_int_equal(cache_chunk_write(c, b, 1, buf, CS), 0);
	cache_flush(c);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, b, 1, buf, CS), 0);
	assert_true(test_check(buf, CS, 11, 1));

	/* Another process's newer version replaces it: v1 stays out. */
	assert_int_equal(cache_object(c, "o", "k", "v2", 2 * CS, 0, &v2), 0);
	assert_int_equal(cache_chunk_write(c, b, 0, buf, CS), 0);
	cache_flush(c);
	assert_true(cache_object_dropped(c, b));
	assert_int_equal(
		cache_object_rejoin(c, "o", "k", "v1", 2 * CS, 0, &again),
		-EEXIST);
	assert_int_equal(cache_object(c, "o", "k", "v2", 2 * CS, 0, &again), 0);
	assert_int_equal(again, v2);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A drop whose caller could not register again (cache_object_drop_retry)
 * is reported again, once, a second or two later; a chunk written under
 * the old id after it was reported does not report it again.
 */
static void test_drop_retry(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache *c = open_cache(dir, 1 << 30);
	struct timespec t0, t1;
	uint64_t a;
	double took;
	int i;

	a = drop_in_use(c, buf);
	assert_true(cache_object_dropped(c, a));

	/* A chunk written under the old id after the drop was reported
	 * notes it again, which changes nothing. */
	assert_int_equal(cache_chunk_write(c, a, 0, buf, CS), 0);
	cache_flush(c);
	assert_false(cache_object_dropped(c, a));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cache_object_drop_retry(c, a);
	assert_false(cache_object_dropped(c, a));
	for (i = 0; i < 400 && !cache_object_dropped(c, a); i++)
		usleep(10 * 1000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(i < 400);
	assert_true(took > 0.9 && took < 3.5);
	assert_false(cache_object_dropped(c, a)); /* once */
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_mismatch),
		cmocka_unit_test(test_other_chunk_size),
		cmocka_unit_test(test_other_chunk_size_stops_writing),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_write_over_hold),
		cmocka_unit_test(test_drop_under_hold),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_direct),
		cmocka_unit_test(test_dropped_in_use),
		cmocka_unit_test(test_drop_retry),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
