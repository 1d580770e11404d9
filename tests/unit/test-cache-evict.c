/*
 * Unit tests of the disk cache's eviction (cache-evict.c, through cache.h):
 * least-recently-used order, the byte limit and the free-space floor,
 * maintenance handles that never evict, chunks that cannot be evicted, two
 * processes sharing one directory while both read, write and evict, and a
 * writer killed with SIGKILL. Also the limit across handles (cache-share.c):
 * each counts the others' writes not yet indexed, a dead process's count is
 * dropped, and stats show the limits of the handles using the directory.
 * cache_share_others, fallocate and fdatasync are wrapped at link time (see
 * cache.mk) to make a second handle write at the worst moment of the first
 * one's reservation or eviction, and to hold the eviction threads still.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "cache/cache.h"
#include "cache-test.h"

#define CS 65536u

/*
 * What the wrappers do, set by one test at a time, all under race_lock.
 * race_to writes chunk race_idx of object race_obj (once), and then
 * race_disk is data_bytes(race_dir): when race_from's cache_reserve has
 * read the other handles' bytes, or (race_on_punch) when any handle's
 * eviction thread is about to punch a hole. syncs_held: every chunk sync
 * waits until it is cleared.
 */
static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t race_cond = PTHREAD_COND_INITIALIZER;
static struct cache *race_from, *race_to;
static uint64_t race_obj, race_idx;
static bool race_on_punch, syncs_held;
static int race_done = -1; /* race_to's write: its result once done */
static uint64_t race_disk;
static const char *race_dir;

static uint64_t data_bytes(const char *dir);

uint64_t __real_cache_share_others(struct cache *c, bool check);
uint64_t __wrap_cache_share_others(struct cache *c, bool check);
int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int __real_fallocate64(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len);
int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

/* race_to's write, if this is the moment: c's reservation, or (punch)
 * any punch. */
static void race_maybe(struct cache *c, bool punch)
{
	static unsigned char buf[CS];
	struct cache *to = NULL;
	int err;

	pthread_mutex_lock(&race_lock);
	if (race_to && (punch ? race_on_punch : c == race_from)) {
		to = race_to;
		race_to = NULL;
	}
	pthread_mutex_unlock(&race_lock);
	if (!to)
		return;
	test_fill(buf, CS, 90, race_idx);
	err = cache_chunk_write(to, race_obj, race_idx, buf, CS);
	pthread_mutex_lock(&race_lock);
	race_disk = data_bytes(race_dir);
	race_done = err;
	pthread_cond_broadcast(&race_cond);
	pthread_mutex_unlock(&race_lock);
}

uint64_t __wrap_cache_share_others(struct cache *c, bool check)
{
	uint64_t v = __real_cache_share_others(c, check);

	race_maybe(c, false);
	return v;
}

static void race_punch(int mode)
{
	if (mode & FALLOC_FL_PUNCH_HOLE)
		race_maybe(NULL, true);
}

/* fallocate64 with large file support on 32-bit builds, fallocate else. */
int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	race_punch(mode);
	return __real_fallocate(fd, mode, off, len);
}

int __wrap_fallocate64(int fd, int mode, off_t off, off_t len)
{
	race_punch(mode);
	return __real_fallocate64(fd, mode, off, len);
}

/* Only the eviction threads sync chunks: held, they index nothing. */
int __wrap_fdatasync(int fd)
{
	pthread_mutex_lock(&race_lock);
	while (syncs_held)
		pthread_cond_wait(&race_cond, &race_lock);
	pthread_mutex_unlock(&race_lock);
	return __real_fdatasync(fd);
}

static void race_set(struct cache *from, bool on_punch, struct cache *to,
		     uint64_t obj, uint64_t idx, const char *dir)
{
	pthread_mutex_lock(&race_lock);
	race_from = from;
	race_on_punch = on_punch;
	race_to = to;
	race_obj = obj;
	race_idx = idx;
	race_dir = dir;
	race_done = -1;
	race_disk = 0;
	syncs_held = true;
	pthread_mutex_unlock(&race_lock);
}

static void race_release(void)
{
	pthread_mutex_lock(&race_lock);
	race_to = NULL;
	syncs_held = false;
	pthread_cond_broadcast(&race_cond);
	pthread_mutex_unlock(&race_lock);
}

static struct cache *open_cache(const char *dir, uint64_t max, uint64_t floor)
{
	struct cache_opts o = {
		.dir = dir,
		.max_bytes = max,
		.min_free_bytes = floor,
		.chunk_size = CS,
	};
	struct cache *c;

	assert_int_equal(cache_open(&o, &c), 0);
	return c;
}

/* A handle as `cofault cache stats` opens one. */
static struct cache *open_maintenance(const char *dir)
{
	struct cache_opts o = { .dir = dir, .maintenance = true };
	struct cache *c;

	assert_int_equal(cache_open(&o, &c), 0);
	return c;
}

static void test_lru_order(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache_stats st;
	struct cache *c;
	uint64_t id;

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", 10 * CS, 0, &id), 0);
	for (int i = 0; i < 10; i++) {
		test_fill(buf, CS, 1, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	/* Touch the even chunks: the odd ones become the oldest. */
	for (int i = 0; i < 10; i += 2)
		assert_int_equal(cache_chunk_read(c, id, i, buf, CS), 0);
	cache_set_limits(c, 5 * CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 5);
	assert_int_equal(st.bytes, 5 * CS);
	assert_int_equal(st.max_bytes, 5 * CS);
	for (int i = 0; i < 10; i++) {
		int err = cache_chunk_read(c, id, i, buf, CS);

		assert_int_equal(err, i % 2 ? -ENOENT : 0);
		if (!err)
			assert_true(test_check(buf, CS, 1, i));
	}
	/* Writing more keeps it at the limit, dropping the oldest. */
	for (int i = 10; i < 13; i++) {
		test_fill(buf, CS, 1, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_true(st.bytes <= 5 * CS);
	assert_int_equal(cache_chunk_read(c, id, 12, buf, CS), 0);
	cache_close(c);

	/* The access times survived the reopen, and so did the limit's effect.
	 */
	c = open_cache(dir, 2 * CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(cache_chunk_read(c, id, 12, buf, CS), 0);
	assert_int_equal(cache_chunk_read(c, id, 11, buf, CS), 0);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static void test_free_floor(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache_stats st;
	struct cache *c;
	uint64_t id;
	int warnings;

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", 4 * CS, 0, &id), 0);
	for (int i = 0; i < 4; i++) {
		test_fill(buf, CS, 2, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	/* A floor no file system can meet: evict everything, cache nothing. */
	cache_set_limits(c, 1ull << 30, UINT64_MAX / 2);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 0);
	warnings = test_warnings;
	for (int i = 0; i < 4; i++)
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	cache_flush(c);
	assert_int_equal(test_warnings, warnings + 1);
	assert_int_equal(cache_chunk_read(c, id, 3, buf, CS), -ENOENT);
	/* Floor lifted: caching resumes. */
	cache_set_limits(c, 1ull << 30, 0);
	cache_flush(c);
	test_fill(buf, CS, 2, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS), 0);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * A handle opened for maintenance (cofault cache stats, clear, verify)
 * never evicts, whatever its limits: not when opened, flushed or closed.
 */
static void test_maintenance_keeps(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir();
	struct cache_opts o = {
		.dir = dir,
		.max_bytes = CS,
		.min_free_bytes = UINT64_MAX / 2,
		.maintenance = true,
	};
	struct cache_stats st;
	struct cache *c, *m;
	uint64_t id;

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", 4 * CS, 0, &id), 0);
	for (int i = 0; i < 4; i++) {
		test_fill(buf, CS, 3, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);

	assert_int_equal(cache_open(&o, &m), 0);
	cache_flush(m);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.chunks, 4);
	cache_close(m);

	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(cache_chunk_read(c, id, i, buf, CS), 0);
		assert_true(test_check(buf, CS, 3, i));
	}
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

/*
 * The oldest chunks, more than one batch of them, are held by a reader (a
 * read lock on their range, as cache_chunk_hold takes): a pass evicts the
 * next ones instead, and with nothing it may evict it still ends.
 */
static void test_evict_past_held(void **state)
{
	enum { N = 70, HELD = 66 };
	static unsigned char buf[CS];
	char *dir = test_tmpdir(), path[4096];
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = HELD * (off_t)CS };
	struct cache_stats st;
	struct cache *c;
	uint64_t id;
	int fd;

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", N * CS, 0, &id), 0);
	for (int i = 0; i < N; i++) {
		test_fill(buf, CS, 8, i);
		assert_int_equal(cache_chunk_write(c, id, i, buf, CS), 0);
	}
	cache_flush(c);
	test_data_path(path, sizeof(path), dir, id);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_OFD_SETLK, &fl), 0);

	cache_set_limits(c, (N - 2) * CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, N - 2);
	/* Only the held ones are left to evict, and they cannot go. */
	cache_set_limits(c, CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.chunks, HELD);
	close(fd);

	for (int i = 0; i < N; i++) {
		int err = cache_chunk_read(c, id, i, buf, CS);

		assert_int_equal(err, i < HELD ? 0 : -ENOENT);
		if (!err)
			assert_true(test_check(buf, CS, 8, i));
	}
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static uint64_t data_bytes_sum;

static int data_bytes_one(const char *path, const struct stat *st, int flag,
			  struct FTW *ftw)
{
	off_t pos = 0, data, hole;
	int fd;

	if (flag != FTW_F)
		return 0;
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0; /* unlinked meanwhile */
	while ((data = lseek(fd, pos, SEEK_DATA)) >= 0 &&
	       (hole = lseek(fd, data, SEEK_HOLE)) > data) {
		data_bytes_sum += (uint64_t)(hole - data);
		pos = hole;
	}
	close(fd);
	return 0;
}

/*
 * Bytes of chunk data in the directory's files: indexed, queued, being
 * written alike (written data shows to SEEK_DATA before writeback too).
 * Extents, not st_blocks, so that the file system's metadata is left out.
 */
static uint64_t data_bytes(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/data", dir);
	data_bytes_sum = 0;
	nftw(path, data_bytes_one, 16, FTW_PHYS);
	return data_bytes_sum;
}

/* Debug logging back off even when test_shared_limit failed midway. */
static int debug_teardown(void **state)
{
	test_debug_end();
	return 0;
}

/*
 * Two handles (as two mounts would, in two processes) with one limit write
 * distinct chunks in turn without waiting for them to be indexed: each
 * counts the other's queue, and what the other indexed since it last read
 * the index's totals, so the directory never holds more than the limit
 * (one thread writes: no two writes race for the last room). Each used to
 * count its own only, and the directory grew to twice the limit before
 * the evictors caught up. A write may be refused when the other handle's
 * chunks not yet indexed hold the room that one eviction pass made; the
 * newest chunks must be there unless their write was refused, and
 * refusals must stay few.
 */
static void test_shared_limit(void **state)
{
	enum { LIMIT = 8, WRITES = 96 };
	static unsigned char buf[CS];
	const uint64_t bound = LIMIT * (uint64_t)CS;
	char *dir = test_tmpdir();
	struct cache *c[2];
	struct cache_stats st;
	uint64_t id[2], most = 0, after = 0, now;
	int worst = -1, refused;

	test_debug_begin();
	for (int k = 0; k < 2; k++) {
		c[k] = open_cache(dir, LIMIT * CS, 0);
		assert_int_equal(cache_object(c[k], "o", k ? "b" : "a", "e",
					      WRITES * (uint64_t)CS, 0, &id[k]),
				 0);
	}
	for (int i = 0; i < WRITES; i++) {
		int k = i % 2;

		test_fill(buf, CS, 20 + k, i / 2);
		assert_int_equal(cache_chunk_write(c[k], id[k], i / 2, buf, CS),
				 0);
		now = data_bytes(dir);
		if (now > most) {
			most = now;
			worst = i;
		}
	}
	for (int k = 0; k < 2; k++) {
		cache_flush(c[k]);
		now = data_bytes(dir);
		if (now > after)
			after = now;
	}
	refused = test_refusals();
	test_debug_end();
	printf("two handles, limit %u bytes: at most %llu on disk (write "
	       "%d), %llu after the flushes, %d of %d writes refused\n",
	       LIMIT * CS, (unsigned long long)most, worst,
	       (unsigned long long)after, refused, WRITES);
	assert_int_equal(cache_stats(c[0], &st), 0);
	/* Still a cache: the newest chunks of both are there. */
	for (int k = 0; k < 2; k++) {
		int i = WRITES / 2 - 1;
		int err = cache_chunk_read(c[k], id[k], i, buf, CS);

		if (err == -ENOENT && test_refused(id[k], i)) {
			printf("handle %d: chunk %d refused at the limit\n", k,
			       i);
			continue;
		}
		assert_int_equal(err, 0);
		assert_true(test_check(buf, CS, 20 + k, i));
	}
	/* Closed before checking: a failure leaves no thread behind to
	 * hold a lock across the next test's fork. */
	for (int k = 0; k < 2; k++)
		cache_close(c[k]);
	assert_true(most <= bound);
	assert_true(after <= bound);
	assert_true(st.bytes <= LIMIT * CS);
	assert_true(refused <= WRITES / 8);
	test_rm_rf(dir);
	free(dir);
}

/* After a race test, even a failed one: the other tests' syncs proceed. */
static int race_teardown(void **state)
{
	race_release();
	return 0;
}

/* Two handles on one directory, each with an object, for the races. */
struct race_pair {
	char *dir;
	struct cache *a, *b;
	uint64_t ida, idb;
};

enum { RACE_LIMIT = 4 }; /* chunks */

/* Open the pair under RACE_LIMIT, with filled chunks of a's indexed. */
static void race_open(struct race_pair *p, int filled)
{
	static unsigned char buf[CS];

	p->dir = test_tmpdir();
	p->a = open_cache(p->dir, RACE_LIMIT * CS, 0);
	p->b = open_cache(p->dir, RACE_LIMIT * CS, 0);
	assert_int_equal(cache_object(p->a, "o", "a", "e", 8 * CS, 0, &p->ida),
			 0);
	assert_int_equal(cache_object(p->b, "o", "b", "e", 8 * CS, 0, &p->idb),
			 0);
	for (int i = 0; i < filled; i++) {
		test_fill(buf, CS, 1, i);
		assert_int_equal(cache_chunk_write(p->a, p->ida, i, buf, CS),
				 0);
	}
	cache_flush(p->a);
	assert_int_equal(data_bytes(p->dir), (uint64_t)filled * CS);
}

/* Let the syncs go and close the pair, then check: the first write
 * (err) and the racing one made, and disk bytes within the limit.
 * Checked after the close, so that a failure leaves no thread behind. */
static void race_close(struct race_pair *p, int err, uint64_t disk,
		       const char *when)
{
	int done;

	pthread_mutex_lock(&race_lock);
	done = race_done;
	pthread_mutex_unlock(&race_lock);
	race_release();
	cache_close(p->a);
	cache_close(p->b);
	printf("limit %u bytes: %llu on disk %s\n", RACE_LIMIT * CS,
	       (unsigned long long)disk, when);
	assert_int_equal(err, 0);
	assert_int_equal(done, 0); /* the race happened */
	assert_true(disk <= RACE_LIMIT * CS);
	test_rm_rf(p->dir);
	free(p->dir);
}

/*
 * Two handles racing for the last chunk of room: the second writes just
 * after the first has looked at the others' bytes in flight, and before
 * it decides. Each used to look first and take its room after, so both
 * found room for one chunk and both took it. Now each takes first: the
 * second sees the first's and is refused, or has its evictor make room
 * first. The chunk syncs are held, so that the racing writes are not
 * indexed (and cannot be evicted to hide an excess) before the data
 * files are measured.
 */
static void test_race_last_room(void **state)
{
	static unsigned char buf[CS];
	struct race_pair p;
	int err;

	race_open(&p, RACE_LIMIT - 1);
	race_set(p.a, false, p.b, p.idb, 0, p.dir);
	test_fill(buf, CS, 1, RACE_LIMIT - 1);
	err = cache_chunk_write(p.a, p.ida, RACE_LIMIT - 1, buf, CS);
	race_close(&p, err, data_bytes(p.dir), "after both writes");
}

/*
 * A handle writes while another's eviction thread has taken chunks out of
 * the index and not yet punched their holes. It used to read the index's
 * totals, find the room those chunks had, and write into it while they
 * were still on disk: the directory passed the limit until the punches.
 * Now the evictor counts them as in flight until punched.
 */
static void test_race_punch(void **state)
{
	static unsigned char buf[CS];
	struct race_pair p;
	uint64_t disk;
	int err;

	race_open(&p, RACE_LIMIT);
	/* b's write finds no room and has its evictor make some; at the
	 * first punch, a writes. */
	race_set(NULL, true, p.a, p.ida, RACE_LIMIT, p.dir);
	test_fill(buf, CS, 2, 0);
	err = cache_chunk_write(p.b, p.idb, 0, buf, CS);
	pthread_mutex_lock(&race_lock);
	disk = race_disk;
	pthread_mutex_unlock(&race_lock);
	race_close(&p, err, disk, "at the first punch");
}

/* One byte from the other side of fd, within a minute. */
static bool pipe_wait(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char ch;

	return poll(&pfd, 1, 60000) == 1 && read(fd, &ch, 1) == 1;
}

/*
 * A process that dies with chunks written and not yet indexed (killed, or
 * crashed) leaves its count behind: a handle opened later must not count it
 * against the limit forever. The dead one's slot is not the first free
 * one, so the new handle does not simply take it over.
 */
static void test_dead_writer(void **state)
{
	enum { LIMIT = 8 };
	static unsigned char buf[CS];
	char *dir = test_tmpdir(), path[4096];
	int go[2], ack[2], status;
	struct cache_stats st;
	struct cache *x, *b;
	bool ok;
	sqlite3 *db;
	uint64_t id;
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ack), 0);
	/* Before any handle is open: the child inherits no cache state. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cache *c;

		if (!pipe_wait(go[0]))
			_exit(1);
		c = open_cache(dir, 1ull << 30, 0);
		if (cache_object(c, "o", "dead", "e", LIMIT * CS, 0, &id))
			_exit(1);
		write(ack[1], "o", 1);
		/* The parent holds the index: none of these gets indexed. */
		if (!pipe_wait(go[0]))
			_exit(1);
		for (int i = 0; i < LIMIT; i++) {
			test_fill(buf, CS, 30, i);
			if (cache_chunk_write(c, id, i, buf, CS))
				_exit(1);
		}
		write(ack[1], "w", 1);
		_exit(0); /* without cache_close */
	}
	x = open_cache(dir, 1ull << 30, 0);
	write(go[1], "g", 1);
	ok = pipe_wait(ack[0]);
	snprintf(path, sizeof(path), "%s/index.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	write(go[1], "g", 1);
	ok = ok && pipe_wait(ack[0]);
	if (!ok)
		kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	cache_close(x);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	b = open_cache(dir, LIMIT * CS, 0);
	assert_int_equal(cache_object(b, "o", "live", "e", LIMIT * CS, 0, &id),
			 0);
	for (int i = 0; i < LIMIT; i++) {
		test_fill(buf, CS, 31, i);
		assert_int_equal(cache_chunk_write(b, id, i, buf, CS), 0);
	}
	cache_flush(b);
	assert_int_equal(cache_stats(b, &st), 0);
	assert_int_equal(st.chunks, LIMIT);
	assert_int_equal(st.handles, 1);
	/* The dead one's slot was cleared and let go, not just skipped:
	 * a handle with a lock of its own, as another process has, does
	 * not find it held. */
	x = open_maintenance(dir);
	assert_int_equal(cache_stats(x, &st), 0);
	assert_int_equal(st.handles, 1);
	cache_close(x);
	for (int i = 0; i < LIMIT; i++) {
		assert_int_equal(cache_chunk_read(b, id, i, buf, CS), 0);
		assert_true(test_check(buf, CS, 31, i));
	}
	cache_close(b);
	for (int k = 0; k < 2; k++) {
		close(go[k]);
		close(ack[k]);
	}
	test_rm_rf(dir);
	free(dir);
}

/*
 * The limits stats report from a maintenance handle, which has only the
 * file system's defaults: those of the handles using the directory, the
 * smallest limit and the largest floor when they differ.
 */
static void test_stats_limits(void **state)
{
	char *dir = test_tmpdir();
	struct cache_stats st;
	struct cache *a, *b, *m;

	a = open_cache(dir, 5 * CS, 2);
	b = open_cache(dir, 3 * CS, 1);
	m = open_maintenance(dir);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.handles, 2);
	assert_int_equal(st.handles_max_bytes, 3 * CS);
	assert_int_equal(st.handles_min_free_bytes, 2);
	assert_int_equal(st.max_bytes, cache_default_size(dir));
	cache_set_limits(b, 7 * CS, 4);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.handles_max_bytes, 5 * CS);
	assert_int_equal(st.handles_min_free_bytes, 4);
	cache_close(a);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.handles, 1);
	assert_int_equal(st.handles_max_bytes, 7 * CS);
	assert_int_equal(st.handles_min_free_bytes, 4);
	cache_set_limits(b, 7 * CS, 0);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.handles_min_free_bytes, 0);
	cache_close(b);
	assert_int_equal(cache_stats(m, &st), 0);
	assert_int_equal(st.handles, 0);
	assert_int_equal(st.handles_max_bytes, 0);
	assert_int_equal(st.handles_min_free_bytes, 0);
	cache_close(m);
	test_rm_rf(dir);
	free(dir);
}

#define SHARE_OBJECTS 3
#define SHARE_CHUNKS 48
#define SHARE_SECONDS 3

struct worker {
	struct cache *c;
	uint64_t ids[SHARE_OBJECTS];
	unsigned int seed;
	time_t until;
	unsigned long hits, misses, wrong;
};

struct object_call {
	struct cache *c;
	uint64_t id;
	int err;
	_Atomic bool done;
};

static void *object_main(void *arg)
{
	struct object_call *o = arg;

	o->err = cache_object(o->c, "o", "new", "e", CS, 0, &o->id);
	atomic_store(&o->done, true);
	return NULL;
}

/*
 * A new object's registration waits while another process holds the
 * index's write lock (a `cache clear` of a large cache, say), up to the
 * busy timeout. Lookups of cached chunks by the other threads go on
 * meanwhile: they used to queue behind it on the one connection, and a
 * mount's reads stalled for as long.
 */
static void test_lookup_beside_writer(void **state)
{
	static unsigned char buf[CS];
	char *dir = test_tmpdir(), path[4096];
	struct object_call call = { 0 };
	struct cache *c;
	pthread_t t;
	uint64_t id, again;
	sqlite3 *db;
	bool early;

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_object(c, "o", "a", "e", CS, 0, &id), 0);
	test_fill(buf, CS, 40, 0);
	assert_int_equal(cache_chunk_write(c, id, 0, buf, CS), 0);
	cache_flush(c);

	snprintf(path, sizeof(path), "%s/index.db", dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			 SQLITE_OK);
	call.c = c;
	assert_int_equal(pthread_create(&t, NULL, object_main, &call), 0);
	/* Time for it to reach the busy wait; were it not there yet, the
	 * lookup below would pass without showing anything. */
	usleep(300 * 1000);
	memset(buf, 0, CS);
	assert_int_equal(cache_chunk_read(c, id, 0, buf, CS), 0);
	assert_true(test_check(buf, CS, 40, 0));
	/* Opening an object the index knows is a lookup too. */
	assert_int_equal(cache_object(c, "o", "a", "e", CS, 0, &again), 0);
	assert_int_equal(again, id);
	/* Both answered while the registration still waits for the lock. */
	early = !atomic_load(&call.done);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	pthread_join(t, NULL);
	assert_true(early);
	assert_int_equal(call.err, 0);
	assert_true(call.id > id);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(CS);
	unsigned long n = 0;

	while (time(NULL) < w->until) {
		int j = rand_r(&w->seed) % SHARE_OBJECTS;
		int i = rand_r(&w->seed) % SHARE_CHUNKS;
		/* The last chunk is a short tail: lengths vary too. */
		size_t len = i == SHARE_CHUNKS - 1 ? 1000 : CS;
		int err = cache_chunk_read(w->c, w->ids[j], i, buf, len);

		if (!err) {
			w->hits++;
			if (!test_check(buf, len, j, i))
				w->wrong++;
		} else {
			w->misses++;
			test_fill(buf, len, j, i);
			cache_chunk_write(w->c, w->ids[j], i, buf, len);
		}
		if (++n % 500 == 0)
			cache_flush(w->c);
	}
	free(buf);
	return NULL;
}

/* Two threads on one handle for SHARE_SECONDS; 0 if no byte was wrong. */
static int share_run(const char *dir, unsigned int seed, unsigned long *hits)
{
	struct worker w[2];
	pthread_t t[2];
	struct cache *c;
	struct cache_opts o = {
		.dir = dir,
		.max_bytes = 24 * CS,
		.chunk_size = CS,
	};
	int wrong = 0;

	if (cache_open(&o, &c))
		return -1;
	for (int k = 0; k < 2; k++) {
		memset(&w[k], 0, sizeof(w[k]));
		w[k].c = c;
		w[k].seed = seed + k;
		w[k].until = time(NULL) + SHARE_SECONDS;
		for (int j = 0; j < SHARE_OBJECTS; j++) {
			char key[16];

			snprintf(key, sizeof(key), "k%d", j);
			if (cache_object(c, "o", key, "e",
					 (SHARE_CHUNKS - 1) * (uint64_t)CS +
						 1000,
					 0, &w[k].ids[j]))
				return -1;
		}
		pthread_create(&t[k], NULL, worker_main, &w[k]);
	}
	*hits = 0;
	for (int k = 0; k < 2; k++) {
		pthread_join(t[k], NULL);
		wrong += (int)w[k].wrong;
		*hits += w[k].hits;
		printf("pid %d thread %d: %lu hits, %lu misses, %lu wrong\n",
		       (int)getpid(), k, w[k].hits, w[k].misses, w[k].wrong);
	}
	fflush(stdout);
	cache_close(c);
	return wrong;
}

static void test_two_processes(void **state)
{
	char *dir = test_tmpdir();
	unsigned long hits, child_hits = 0;
	uint64_t checked, bad;
	struct cache_stats st;
	struct cache *c;
	int status, pipefd[2];
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int wrong = share_run(dir, 1000, &child_hits);

		write(pipefd[1], &child_hits, sizeof(child_hits));
		_exit(wrong == 0 ? 0 : 1);
	}
	assert_int_equal(share_run(dir, 1, &hits), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(pipefd[0], &child_hits, sizeof(child_hits)),
			 sizeof(child_hits));
	close(pipefd[0]);
	close(pipefd[1]);
	/*
	 * Few on a loaded machine (every miss is written, fdatasync'd and
	 * soon evicted again), but some.
	 */
	assert_true(hits > 0);
	assert_true(child_hits > 0);

	/* What is left is consistent: within the limit, every byte right. */
	c = open_cache(dir, 24 * CS, 0);
	cache_flush(c);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_true(st.bytes <= 24 * CS);
	assert_true(st.chunks > 0);
	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_int_equal(checked, st.chunks);
	assert_int_equal(bad, 0);
	cache_close(c);
	test_rm_rf(dir);
	free(dir);
}

static void test_sigkill(void **state)
{
	char *dir = test_tmpdir();
	unsigned char *buf = malloc(CS);
	uint64_t checked, bad, id;
	char path[4096];
	struct stat st;
	struct cache *c;
	struct pollfd pfd;
	int status, pipefd[2];
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		c = open_cache(dir, 1ull << 30, 0);
		if (cache_object(c, "o", "k", "e", 1ull << 40, 0, &id))
			_exit(1);
		for (uint64_t i = 0; i < 2000; i++) {
			test_fill(buf, CS, 7, i);
			cache_chunk_write(c, id, i, buf, CS);
			if (i == 10) {
				/* Some chunks are certainly indexed: the
				 * kill below lands on the writes after. */
				cache_flush(c);
				write(pipefd[1], "x", 1);
			}
		}
		for (;;)
			pause();
	}
	/* A fixed sleep was too short under a loaded make check. */
	pfd = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 60000), 1);
	usleep(200 * 1000);
	kill(pid, SIGKILL);
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));

	c = open_cache(dir, 1ull << 30, 0);
	assert_int_equal(cache_verify(c, &checked, &bad), 0);
	assert_true(checked > 0);
	assert_int_equal(bad, 0);
	assert_int_equal(cache_object(c, "o", "k", "e", 1ull << 40, 0, &id), 0);
	/* Written but never indexed chunks were given back. */
	test_data_path(path, sizeof(path), dir, id);
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_blocks * 512 <= checked * CS + CS);
	for (uint64_t i = 0; i < checked; i++) {
		assert_int_equal(cache_chunk_read(c, id, i, buf, CS), 0);
		assert_true(test_check(buf, CS, 7, i));
	}
	cache_close(c);
	free(buf);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_free_floor),
		cmocka_unit_test(test_maintenance_keeps),
		cmocka_unit_test(test_evict_past_held),
		cmocka_unit_test_teardown(test_shared_limit, debug_teardown),
		cmocka_unit_test_teardown(test_race_last_room, race_teardown),
		cmocka_unit_test_teardown(test_race_punch, race_teardown),
		cmocka_unit_test(test_dead_writer),
		cmocka_unit_test(test_stats_limits),
		cmocka_unit_test(test_lookup_beside_writer),
		cmocka_unit_test(test_two_processes),
		cmocka_unit_test(test_sigkill),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
