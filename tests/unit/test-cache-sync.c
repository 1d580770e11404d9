/*
 * Unit tests of the disk cache's durability step (cache-evict.c, through
 * cache.h): Linux reports a writeback error once to each open file, and not
 * to files opened after someone saw it, so a chunk must not be indexed when
 * the descriptor it was written through reports one. pwrite, fdatasync and
 * sync_file_range are wrapped at link time (see cache.mk) to pretend such
 * an error on one descriptor, and to hold the eviction thread still; and
 * pwrite to fail once, for what a failed write leaves behind. pread is
 * wrapped too, to pretend a chunk on a bad sector, and lseek to pretend a
 * file longer than it is (its end cut off after the size was checked).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/cache.h"
#include "cache-test.h"

#define CS 65536u

/* What the wrappers do; all under fake_lock. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fake_cond = PTHREAD_COND_INITIALIZER;
static off64_t fake_gate_off = -1, fake_bad_off = -1; /* chunk offsets */
/* A pwrite there writes half, and the write of the rest fails. */
static off64_t fake_fail_off = -1;
static int fake_gate_fd = -1, fake_bad_fd = -1; /* their writers' fds */
/* Every pread of a chunk there fails with EIO, as on a bad sector. */
static off64_t fake_eio_off = -1;
static bool fake_in_gate, fake_gate_open;
/* lseek to the end answers this (-1: the truth). */
static off64_t fake_end = -1;

ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off64_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off64_t off);
ssize_t __real_pread(int fd, void *buf, size_t len, off_t off);
/* Chunk reads at off fail from now on (-1: none do). */
static void fake_set_eio(off64_t off)
{
	pthread_mutex_lock(&fake_lock);
	fake_eio_off = off;
	pthread_mutex_unlock(&fake_lock);
}

ssize_t __wrap_pread(int fd, void *buf, size_t len, off_t off);
off_t __real_lseek(int fd, off_t off, int whence);
off_t __wrap_lseek(int fd, off_t off, int whence);
off64_t __real_lseek64(int fd, off64_t off, int whence);
off64_t __wrap_lseek64(int fd, off64_t off, int whence);
ssize_t __real_pread64(int fd, void *buf, size_t len, off64_t off);
ssize_t __wrap_pread64(int fd, void *buf, size_t len, off64_t off);
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __real_sync_file_range(int fd, off64_t off, off64_t len,
			   unsigned int flags);
int __wrap_sync_file_range(int fd, off64_t off, off64_t len,
			   unsigned int flags);

/* What a failing write does: writes this much first (then fails the
 * rest), or fails at once (-1), as a full device may. */
static size_t fake_fail_part;

/*
 * Remember which descriptors wrote the chunks of interest; *len is cut to
 * what is written of a failing write: 0 and EIO to fail now.
 */
static void fake_write(int fd, off64_t off, size_t *len)
{
	pthread_mutex_lock(&fake_lock);
	if (off == fake_gate_off)
		fake_gate_fd = fd;
	if (off == fake_bad_off)
		fake_bad_fd = fd;
	if (off == fake_fail_off) {
		if (fake_fail_part && fake_fail_part < *len) {
			*len = fake_fail_part;
			fake_fail_off = off + (off64_t)fake_fail_part;
			fake_fail_part = 0;
		} else {
			*len = 0;
			fake_fail_off = -1;
			errno = EIO;
		}
	}
	pthread_mutex_unlock(&fake_lock);
}

/* pwrite64 with large file support (the usual build), pwrite without. */
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	fake_write(fd, off, &len);
	return len ? __real_pwrite(fd, buf, len, off) : -1;
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	fake_write(fd, off, &len);
	return len ? __real_pwrite64(fd, buf, len, off) : -1;
}

/* Whether a pread of len bytes at off is to fail (and errno is set). */
static bool fake_read_fails(size_t len, off64_t off)
{
	bool fail;

	pthread_mutex_lock(&fake_lock);
	fail = off == fake_eio_off && len == CS;
	pthread_mutex_unlock(&fake_lock);
	if (fail)
		errno = EIO;
	return fail;
}

ssize_t __wrap_pread(int fd, void *buf, size_t len, off_t off)
{
	return fake_read_fails(len, off) ? -1 : __real_pread(fd, buf, len, off);
}

ssize_t __wrap_pread64(int fd, void *buf, size_t len, off64_t off)
{
	return fake_read_fails(len, off) ? -1
					 : __real_pread64(fd, buf, len, off);
}

/* The end of a file, or the pretended one. */
static off64_t fake_lseek_end(off64_t real, off64_t off, int whence)
{
	off64_t end;

	pthread_mutex_lock(&fake_lock);
	end = fake_end;
	pthread_mutex_unlock(&fake_lock);
	return real >= 0 && whence == SEEK_END && !off && end >= 0 ? end : real;
}

off_t __wrap_lseek(int fd, off_t off, int whence)
{
	return fake_lseek_end(__real_lseek(fd, off, whence), off, whence);
}

off64_t __wrap_lseek64(int fd, off64_t off, int whence)
{
	return fake_lseek_end(__real_lseek64(fd, off, whence), off, whence);
}

/*
 * After a real sync of fd: the gate's descriptor waits until the test
 * opens the gate; the bad one fails once, as a writeback error that
 * descriptor has not seen yet would.
 */
static int fake_sync(int fd)
{
	bool bad;

	pthread_mutex_lock(&fake_lock);
	if (fd == fake_gate_fd) {
		fake_gate_fd = -1;
		fake_in_gate = true;
		pthread_cond_broadcast(&fake_cond);
		while (!fake_gate_open)
			pthread_cond_wait(&fake_cond, &fake_lock);
	}
	bad = fd == fake_bad_fd;
	if (bad)
		fake_bad_fd = -1;
	pthread_mutex_unlock(&fake_lock);
	if (bad) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int __wrap_fdatasync(int fd)
{
	if (__real_fdatasync(fd) < 0)
		return -1;
	return fake_sync(fd);
}

int __wrap_sync_file_range(int fd, off64_t off, off64_t len, unsigned int flags)
{
	if (__real_sync_file_range(fd, off, len, flags) < 0)
		return -1;
	/* Only a wait reports errors; starting writeback does not. */
	return flags & SYNC_FILE_RANGE_WAIT_AFTER ? fake_sync(fd) : 0;
}

/*
 * Two chunks of one object in one batch, the second written through a
 * descriptor that has an error to report and the first through one that
 * has not (it was opened after someone else saw the error): the second is
 * not indexed, the first is.
 */
static void test_error_per_descriptor(void **state)
{
	static unsigned char buf[CS];
	struct cache_opts o = {.max_bytes = 1ull << 30, .chunk_size = CS};
	char *dir = test_tmpdir();
	struct timespec until;
	struct cache *c;
	uint64_t a, b;
	bool in_gate;
	int warnings;

	o.dir = dir;
	assert_int_equal(cache_open(&o, &c), 0);
	assert_int_equal(cache_object(c, "o", "a", "e", 2 * CS, 0, &a), 0);
	assert_int_equal(cache_object(c, "o", "b", "e", 6 * CS, 0, &b), 0);
	pthread_mutex_lock(&fake_lock);
	fake_gate_off = 5 * (off64_t)CS;
	fake_bad_off = CS;
	pthread_mutex_unlock(&fake_lock);

	/* Hold the thread in the sync of another object's chunk, so that
	 * both chunks of a land in its next batch. */
	test_fill(buf, CS, 2, 5);
	assert_int_equal(cache_chunk_write(c, b, 5, buf, CS), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&fake_lock);
	while (!fake_in_gate &&
	       pthread_cond_timedwait(&fake_cond, &fake_lock, &until) == 0)
		;
	in_gate = fake_in_gate;
	pthread_mutex_unlock(&fake_lock);
	assert_true(in_gate); /* else the wrappers are not in use */
	for (int i = 0; i < 2; i++) {
		test_fill(buf, CS, 1, i);
		assert_int_equal(cache_chunk_write(c, a, i, buf, CS), 0);
	}
	warnings = test_warnings;
	pthread_mutex_lock(&fake_lock);
	fake_gate_open = true;
	pthread_cond_broadcast(&fake_cond);
	pthread_mutex_unlock(&fake_lock);
	cache_flush(c);

	assert_int_equal(test_warnings, warnings + 1);
	assert_int_equal(cache_chunk_read(c, a, 0, buf, CS), 0);
	assert_true(test_check(buf, CS, 1, 0));
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), -ENOENT);
	assert_int_equal(cache_chunk_read(c, b, 5, buf, CS), 0);
	assert_true(test_check(buf, CS, 2, 5));
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/* Chunk idx of obj's data file in dir holds no data: its room was given
 * back (the chunk after it, if any, is not looked at). */
static void assert_chunk_hole(const char *dir, uint64_t obj, uint64_t idx)
{
	char path[4096];
	off_t data;
	int fd;

	test_data_path(path, sizeof(path), dir, obj);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	data = lseek(fd, (off_t)(idx * CS), SEEK_DATA);
	close(fd);
	assert_true(data < 0 || data >= (off_t)((idx + 1) * CS));
}

/*
 * No fake failure pending; a cache in dir with a 3-chunk object (*obj)
 * whose chunk 1, filled with seed through buf, is indexed.
 */
static struct cache *open_indexed(char *dir, unsigned char *buf, int seed,
				  uint64_t *obj)
{
	struct cache_opts o = {.max_bytes = 1ull << 30, .chunk_size = CS};
	struct cache *c;

	pthread_mutex_lock(&fake_lock);
	fake_gate_off = fake_bad_off = fake_fail_off = fake_eio_off = -1;
	fake_end = -1;
	fake_gate_fd = fake_bad_fd = -1;
	pthread_mutex_unlock(&fake_lock);
	o.dir = dir;
	assert_int_equal(cache_open(&o, &c), 0);
	assert_int_equal(cache_object(c, "o", "x", "e", 3 * CS, 0, obj), 0);
	test_fill(buf, CS, seed, 1);
	assert_int_equal(cache_chunk_write(c, *obj, 1, buf, CS), 0);
	cache_flush(c);
	return c;
}

/*
 * A chunk already indexed (written by another process, say) is written
 * again and the write fails: the chunk is still served. Its room used to
 * be given back regardless, punching the indexed chunk's bytes: a miss
 * where the cache held the chunk.
 */
static void test_failed_rewrite(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache *c;
	uint64_t a;

	c = open_indexed(dir, buf, 3, &a);

	pthread_mutex_lock(&fake_lock);
	fake_fail_off = CS;
	pthread_mutex_unlock(&fake_lock);
	assert_int_equal(cache_chunk_write(c, a, 1, buf, CS), -EIO);
	pthread_mutex_lock(&fake_lock);
	assert_int_equal(fake_fail_off, -1); /* the write did fail */
	pthread_mutex_unlock(&fake_lock);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), 0);
	assert_true(test_check(buf, CS, 3, 1));

	/* A chunk the index does not have gives its room back: half of it
	 * was written before the failure. */
	pthread_mutex_lock(&fake_lock);
	fake_fail_off = 2 * (off64_t)CS;
	fake_fail_part = CS / 2;
	pthread_mutex_unlock(&fake_lock);
	test_fill(buf, CS, 3, 2);
	assert_int_equal(cache_chunk_write(c, a, 2, buf, CS), -EIO);
	pthread_mutex_lock(&fake_lock);
	assert_int_equal(fake_fail_off, -1); /* both parts were tried */
	pthread_mutex_unlock(&fake_lock);
	assert_int_equal(cache_chunk_read(c, a, 2, buf, CS), -ENOENT);
	assert_chunk_hole(dir, a, 2);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A chunk already indexed is written again and its sync fails: the chunk
 * is still served. The batch's failed chunks used to be punched whatever
 * the index held, so another process's (or an earlier) commit of the same
 * chunk became a miss. A chunk the index does not have, failed in the
 * same way, still gives its room back.
 */
static void test_failed_resync(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache *c;
	uint64_t a;
	int warnings;

	c = open_indexed(dir, buf, 4, &a);

	for (int idx = 1; idx <= 2; idx++) {
		pthread_mutex_lock(&fake_lock);
		fake_bad_off = idx * (off64_t)CS;
		pthread_mutex_unlock(&fake_lock);
		warnings = test_warnings;
		test_fill(buf, CS, 4, idx);
		assert_int_equal(cache_chunk_write(c, a, idx, buf, CS), 0);
		cache_flush(c);
		pthread_mutex_lock(&fake_lock);
		assert_int_equal(fake_bad_fd, -1); /* the sync did fail */
		fake_bad_off = -1;
		pthread_mutex_unlock(&fake_lock);
		assert_int_equal(test_warnings, warnings + 1);
	}
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), 0);
	assert_true(test_check(buf, CS, 4, 1));
	assert_int_equal(cache_chunk_read(c, a, 2, buf, CS), -ENOENT);
	assert_chunk_hole(dir, a, 2);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * An indexed chunk that cannot be read (EIO from the disk): a read takes it
 * for a bad chunk, drops it (logged) and answers a miss, so that the caller
 * fetches it again; `cache verify` counts it bad and goes on. Both used to
 * pass the EIO on: every read of that chunk failed, and verify stopped
 * there without sweeping.
 */
static void test_unreadable_chunk(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	uint64_t a, checked, bad;
	struct cache *c;
	int warnings;

	c = open_indexed(dir, buf, 6, &a);
	fake_set_eio(CS);
	warnings = test_warnings;
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), -ENOENT);
	assert_int_equal(test_warnings, warnings + 1);
	assert_chunk_hole(dir, a, 1);

	/* Fetched again and written where the disk reads again. */
	fake_set_eio(-1);
	test_fill(buf, CS, 6, 1);
	assert_int_equal(cache_chunk_write(c, a, 1, buf, CS), 0);
	test_fill(buf, CS, 6, 2);
	assert_int_equal(cache_chunk_write(c, a, 2, buf, CS), 0);
	cache_flush(c);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), 0);
	assert_true(test_check(buf, CS, 6, 1));

	fake_set_eio(CS);
	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_int_equal(checked, 2);
	assert_int_equal(bad, 1);
	fake_set_eio(-1);
	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), -ENOENT);
	assert_int_equal(cache_chunk_read(c, a, 2, buf, CS), 0);
	assert_true(test_check(buf, CS, 6, 2));
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A held chunk whose pages cannot be read when its checksum touches them:
 * the hold fails with -EIO and the daemon lives. The hold checksums through
 * a mapping, and an unreadable page of a mapping is a SIGBUS, which killed
 * the process (and every mount it served). A disk error does it; here the
 * file is cut short after the hold checked its size, which faults the same
 * way. A plain read then drops the chunk and answers a miss.
 */
static void test_hold_unreadable_pages(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	char path[512];
	struct cache_hold h;
	struct cache *c;
	uint64_t a;

	c = open_indexed(dir, buf, 7, &a);
	test_fill(buf, CS, 7, 2);
	assert_int_equal(cache_chunk_write(c, a, 2, buf, CS), 0);
	cache_flush(c);
	assert_int_equal(cache_chunk_hold(c, a, 1, CS, &h), 0);
	cache_chunk_release(&h);

	/* Chunk 1 keeps one page, chunk 2 none; lseek says all is there. */
	test_data_path(path, sizeof(path), dir, a);
	assert_int_equal(truncate(path, CS + 4096), 0);
	pthread_mutex_lock(&fake_lock);
	fake_end = 3 * CS;
	pthread_mutex_unlock(&fake_lock);
	assert_int_equal(cache_chunk_hold(c, a, 1, CS, &h), -EIO);
	assert_int_equal(h.fd, -1);
	assert_int_equal(cache_chunk_hold(c, a, 2, CS, &h), -EIO);
	/* And again: the handler is still there for the next fault. */
	assert_int_equal(cache_chunk_hold(c, a, 1, CS, &h), -EIO);
	pthread_mutex_lock(&fake_lock);
	fake_end = -1;
	pthread_mutex_unlock(&fake_lock);

	assert_int_equal(cache_chunk_read(c, a, 1, buf, CS), -ENOENT);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static sigjmp_buf other_env;
static volatile sig_atomic_t other_seen;

static void other_handler(int sig)
{
	other_seen = sig;
	siglongjmp(other_env, 1);
}

/*
 * A SIGBUS outside what a hold is reading is not the cache's: it goes to
 * the handler that was there before the cache's.
 */
static void test_other_sigbus(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	char path[512];
	struct cache_hold h;
	struct sigaction sa = {.sa_handler = other_handler};
	volatile const char *p;
	struct cache *c;
	uint64_t a;
	int fd;

	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGBUS, &sa, NULL), 0);
	c = open_indexed(dir, buf, 8, &a);
	assert_int_equal(cache_chunk_hold(c, a, 1, CS, &h), 0);
	cache_chunk_release(&h);

	/* A mapping past the end of an empty file of the test's own. */
	snprintf(path, sizeof(path), "%s/empty", dir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	if (!sigsetjmp(other_env, 1))
		(void)p[0];
	assert_int_equal(other_seen, SIGBUS);
	munmap((void *)p, 4096);
	close(fd);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_per_descriptor),
		cmocka_unit_test(test_failed_rewrite),
		cmocka_unit_test(test_failed_resync),
		cmocka_unit_test(test_unreadable_chunk),
		cmocka_unit_test(test_hold_unreadable_pages),
		cmocka_unit_test(test_other_sigbus),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
