/*
 * Unit tests of the data path (src/fs/data.c) over a fake origin: range
 * arithmetic across chunk boundaries and at EOF, single flight, waits cut
 * short by an interrupt while the fetch goes on, version changes, and
 * errors that must not stick.
 */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cache.h"
#include "common/cancel.h"
#include "fs/data.h"
#include "fs/data-int.h"
#include "test-tmpdir.h"

#define CS 4096u /* small chunks keep the tests fast */

struct fake {
	struct store base;
	pthread_mutex_t lock;
	unsigned int reads; /* under lock */
	unsigned int cancelled; /* reads cut short by a reader's token */
	unsigned int own_reads; /* made on a reader's thread, under lock */
	unsigned int reads_at[1024]; /* per chunk index, under lock */
	size_t max_len; /* longest read asked for, under lock */
	unsigned int delay_ms;
	int fail; /* next reads fail with this, while fail_count */
	unsigned int fail_count;
	char etag[32];
	pthread_cond_t gate; /* closed: reads wait until opened */
	bool gate_closed;
	size_t gate_min_len; /* the gate holds reads this long or longer */
};

static uint8_t byte_at(uint64_t off)
{
	return (uint8_t)((off * 2654435761u) >> 13);
}

static int fake_read(struct store *s, const char *path, const char *etag,
		     void *buf, uint64_t off, size_t len, char *etag_out)
{
	struct fake *f = (struct fake *)s;
	size_t i;
	int err = 0;

	pthread_mutex_lock(&f->lock);
	f->reads++;
	if (cancel_current())
		f->own_reads++;
	if (len > f->max_len)
		f->max_len = len;
	if (off / CS < 1024)
		f->reads_at[off / CS]++;
	/* Like the HTTP client, a request made for a reader ends at once
	 * when the reader's token fires. */
	while (f->gate_closed && len >= f->gate_min_len) {
		struct cancel *cx = cancel_current();
		struct timespec ts;

		if (cx && cancel_fired(cx)) {
			f->cancelled++;
			pthread_mutex_unlock(&f->lock);
			return -EINTR;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 5 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->gate, &f->lock, &ts);
	}
	if (f->fail_count) {
		f->fail_count--;
		err = f->fail;
	}
	if (etag_out)
		strcpy(etag_out, f->etag);
	pthread_mutex_unlock(&f->lock);
	if (f->delay_ms)
		usleep(f->delay_ms * 1000);
	if (err)
		return err;
	for (i = 0; i < len; i++)
		((uint8_t *)buf)[i] = byte_at(off + i);
	return 0;
}

static const struct store_ops fake_ops = { .name = "fake", .read = fake_read };

struct fx {
	struct fake f;
	struct data *d;
	struct data_obj *o;
};

/* data_opts.fill_requests of the next fixtures (0: the default). */
static unsigned int fx_fill_requests;
/* data_opts.fill_wait_ms of the next fixtures (0: the default). */
static unsigned int fx_fill_wait_ms;

/* With a disk tier when disk is not NULL (not owned). */
static struct fx *fx_new_disk(uint64_t size, uint64_t max_memory,
			      int holddown, uint32_t chunk_size,
			      struct cache *disk)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct data_opts o = { 0 };

	x->f.base.ops = &fake_ops;
	pthread_mutex_init(&x->f.lock, NULL);
	pthread_cond_init(&x->f.gate, NULL);
	strcpy(x->f.etag, "\"v1\"");
	o.store = &x->f.base;
	o.chunk_size = chunk_size;
	o.fetch_threads = 4;
	o.max_memory = max_memory;
	o.error_holddown_ms = holddown;
	o.disk = disk;
	o.origin_id = "fake:";
	o.fill_requests = fx_fill_requests;
	o.fill_wait_ms = fx_fill_wait_ms;
	assert_int_equal(data_new(&o, &x->d), 0);
	assert_int_equal(data_obj_new(x->d, "obj", size, "", 0, &x->o), 0);
	return x;
}

static struct fx *fx_new_cs(uint64_t size, uint64_t max_memory, int holddown,
			    uint32_t chunk_size)
{
	return fx_new_disk(size, max_memory, holddown, chunk_size, NULL);
}

static struct fx *fx_new_hd(uint64_t size, uint64_t max_memory, int holddown)
{
	return fx_new_cs(size, max_memory, holddown, CS);
}

static struct fx *fx_new(uint64_t size, uint64_t max_memory)
{
	return fx_new_hd(size, max_memory, 0);
}

static void fx_free(struct fx *x)
{
	data_obj_put(x->o);
	data_free(x->d);
	free(x);
}

static unsigned int fx_reads_at(struct fx *x, uint64_t idx)
{
	unsigned int n;

	pthread_mutex_lock(&x->f.lock);
	n = x->f.reads_at[idx];
	pthread_mutex_unlock(&x->f.lock);
	return n;
}

static unsigned int fx_reads(struct fx *x)
{
	unsigned int n;

	pthread_mutex_lock(&x->f.lock);
	n = x->f.reads;
	pthread_mutex_unlock(&x->f.lock);
	return n;
}

/* Wait, for at most 5 s, until n requests at chunk idx have reached the
 * origin (they count on arrival, before the gate). */
static void fx_wait_reads_at(struct fx *x, uint64_t idx, unsigned int n)
{
	int i;

	for (i = 0; i < 1000 && fx_reads_at(x, idx) < n; i++)
		usleep(5 * 1000);
	assert_int_equal(fx_reads_at(x, idx), n);
}

/* The longest read the origin has had. */
static unsigned int fx_max_len(struct fx *x)
{
	size_t n;

	pthread_mutex_lock(&x->f.lock);
	n = x->f.max_len;
	pthread_mutex_unlock(&x->f.lock);
	return (unsigned int)n;
}

/* Wait, at most 5 s, until the origin has had n reads, then check it has
 * had exactly n. */
static void fx_wait_reads(struct fx *x, unsigned int n)
{
	int i;

	for (i = 0; i < 1000 && fx_reads(x) < n; i++)
		usleep(5 * 1000);
	assert_int_equal(fx_reads(x), n);
}

/* fx_wait_reads, and the longest read was a whole chunk of len. */
static void fx_wait_fill(struct fx *x, unsigned int n, unsigned int len)
{
	fx_wait_reads(x, n);
	assert_int_equal(fx_max_len(x), len);
}

/* Read and check bytes against the origin's pattern; returns the count. */
static size_t check_read(struct fx *x, uint64_t off, size_t len)
{
	struct data_wait w;
	struct data_read r;
	size_t got = 0;
	int i;

	data_wait_init(&w, x->d);
	assert_int_equal(data_read(x->d, x->o, off, len, &w, &r), 0);
	for (i = 0; i < r.niov; i++) {
		size_t j;

		for (j = 0; j < r.iov[i].iov_len; j++)
			assert_int_equal(((uint8_t *)r.iov[i].iov_base)[j],
					 byte_at(off + got + j));
		got += r.iov[i].iov_len;
	}
	assert_int_equal(got, r.bytes);
	data_read_release(x->d, &r);
	data_wait_fini(&w);
	return got;
}

static void test_ranges(void **state)
{
	struct fx *x = fx_new(3 * CS + 100, 1 << 20);

	assert_int_equal(check_read(x, 0, 10), 10);
	assert_int_equal(check_read(x, CS - 1, 2), 2); /* straddles */
	assert_int_equal(check_read(x, 10, 3 * CS), 3 * CS); /* 4 chunks */
	assert_int_equal(check_read(x, 3 * CS + 90, 100), 10); /* at EOF */
	assert_int_equal(check_read(x, 3 * CS + 100, 10), 0); /* past EOF */
	assert_int_equal(check_read(x, 1ULL << 40, 10), 0);
	assert_int_equal(check_read(x, 5, 0), 0);
	fx_free(x);
}

static void test_empty_object(void **state)
{
	struct fx *x = fx_new(0, 1 << 20);

	assert_int_equal(check_read(x, 0, 4096), 0);
	assert_int_equal(fx_reads(x), 0);
	fx_free(x);
}

struct reader_arg {
	struct fx *x;
	uint64_t off;
};

static void *reader(void *arg)
{
	struct reader_arg *a = arg;

	check_read(a->x, a->off, 100);
	return NULL;
}

static void test_single_flight(void **state)
{
	struct fx *x = fx_new(16 * CS, 1 << 20);
	struct reader_arg a[8];
	pthread_t th[8];
	int i;

	x->f.delay_ms = 50; /* all readers arrive while the fetch runs */
	for (i = 0; i < 8; i++) {
		a[i].x = x;
		a[i].off = 5 * CS + (uint64_t)i * 200;
		pthread_create(&th[i], NULL, reader, &a[i]);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(fx_reads_at(x, 5), 1);
	/* Cached now: no further origin read. */
	check_read(x, 5 * CS, CS);
	assert_int_equal(fx_reads_at(x, 5), 1);
	fx_free(x);
}

struct intr_arg {
	struct data_wait *w;
	int delay_ms;
};

static void *interrupter(void *arg)
{
	struct intr_arg *a = arg;

	usleep((useconds_t)a->delay_ms * 1000);
	data_wait_interrupt(a->w);
	return NULL;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Open the fake origin's gate: waiting reads proceed. */
static void gate_open(struct fx *x)
{
	pthread_mutex_lock(&x->f.lock);
	x->f.gate_closed = false;
	pthread_cond_broadcast(&x->f.gate);
	pthread_mutex_unlock(&x->f.lock);
}

/*
 * Read [off, off + len) while another thread interrupts the read after
 * 50 ms: the read must fail with EINTR and hand back no bytes. Returns
 * how long it took, in seconds.
 */
static double read_interrupted(struct fx *x, uint64_t off, size_t len)
{
	struct data_wait w;
	struct data_read r;
	struct intr_arg ia;
	pthread_t th;
	double t0, dt;

	data_wait_init(&w, x->d);
	ia.w = &w;
	ia.delay_ms = 50;
	pthread_create(&th, NULL, interrupter, &ia);
	t0 = mono();
	assert_int_equal(data_read(x->d, x->o, off, len, &w, &r), -EINTR);
	dt = mono() - t0;
	pthread_join(th, NULL);
	data_wait_fini(&w);
	assert_int_equal(r.bytes, 0);
	return dt;
}

static void test_interrupt(void **state)
{
	struct fx *x = fx_new(4 * CS, 1 << 20);

	/* A whole chunk (the read is more than a quarter of it), which the
	 * workers fetch. */
	x->f.gate_closed = true; /* the origin does not answer */
	/* Not held until the origin answers. */
	assert_true(read_interrupted(x, 0, 2000) < 2.0);

	/* The fetch went on: once the origin answers, the next reader gets
	 * the data without a second request. */
	gate_open(x);
	check_read(x, 0, 2000);
	assert_int_equal(fx_reads_at(x, 0), 1);
	assert_int_equal(x->f.cancelled, 0);
	fx_free(x);
}

static void test_interrupt_own_fetch(void **state)
{
	/* 1 MiB chunks: a 100-byte read is a fragment of one page. */
	struct fx *x = fx_new_cs(4ULL << 20, 4ULL << 20, 0, 1u << 20);

	/* A small read: the reader fetches the pages itself, and the
	 * interrupt cuts its request short. */
	x->f.gate_closed = true;
	assert_true(read_interrupted(x, (1u << 20) + 100, 100) < 2.0);
	pthread_mutex_lock(&x->f.lock);
	assert_int_equal(x->f.cancelled, 1);
	pthread_mutex_unlock(&x->f.lock);

	/* The fragment went to the workers, with the whole chunk behind it
	 * (the origin is slower than the signals); the retry waits on those
	 * instead of making a request of its own. Both are at the origin
	 * before it answers: otherwise the retry can be served by the
	 * fragment before a worker has taken the chunk from its queue. */
	fx_wait_reads_at(x, (1u << 20) / CS, 3);
	gate_open(x);
	assert_int_equal(check_read(x, (1u << 20) + 100, 100), 100);
	assert_int_equal(fx_reads_at(x, (1u << 20) / CS), 3);
	pthread_mutex_lock(&x->f.lock);
	assert_int_equal(x->f.cancelled, 1);
	pthread_mutex_unlock(&x->f.lock);
	fx_free(x);
}

static void test_interrupt_pair(void **state)
{
	/* A read across a chunk boundary, its one request held by the
	 * origin: the interrupt cuts it short, and both fragments go to the
	 * workers with both chunks behind them, as for one fragment. */
	struct fx *x = fx_new_cs(4ULL << 20, 4ULL << 20, 0, 1u << 20);
	uint64_t off = (1u << 20) - 64 * 1024;

	x->f.gate_closed = true;
	read_interrupted(x, off, 128 * 1024);
	/* The reader's request, then the workers': two fragments and two
	 * chunks, all held at the gate. */
	fx_wait_reads(x, 5);
	pthread_mutex_lock(&x->f.lock);
	assert_int_equal(x->f.cancelled, 1);
	pthread_mutex_unlock(&x->f.lock);
	gate_open(x);
	assert_int_equal(check_read(x, off, 128 * 1024), 128 * 1024);
	assert_int_equal(fx_reads(x), 5);
	fx_free(x);
}

static void test_interrupt_before_wait(void **state)
{
	struct fx *x = fx_new_cs(4ULL << 20, 4ULL << 20, 0, 1u << 20);
	struct data_wait w;
	struct data_read r;

	x->f.gate_closed = true;
	data_wait_init(&w, x->d);
	data_wait_interrupt(&w); /* FUSE_INTERRUPT may come first */
	assert_int_equal(data_read(x->d, x->o, 0, 100, &w, &r), -EINTR);
	assert_int_equal(data_read(x->d, x->o, 2u << 20, 1u << 20, &w, &r), -EINTR);
	data_wait_fini(&w);
	gate_open(x);
	fx_free(x);
}

static void test_error_not_sticky(void **state)
{
	struct fx *x = fx_new(4 * CS, 1 << 20);
	struct data_wait w;
	struct data_read r;

	x->f.fail = -EIO;
	x->f.fail_count = 1;
	data_wait_init(&w, x->d);
	assert_int_equal(data_read(x->d, x->o, 0, 100, &w, &r), -EIO);
	/* The origin is back: the same range is fetched again. */
	assert_int_equal(check_read(x, 0, 100), 100);
	assert_int_equal(fx_reads_at(x, 0), 2);
	data_wait_fini(&w);
	fx_free(x);
}

static void test_error_holddown(void **state)
{
	struct fx *x = fx_new_hd(4 * CS, 1 << 20, 300);
	struct data_wait w;
	struct data_read r;

	x->f.fail = -ETIMEDOUT;
	x->f.fail_count = 1;
	data_wait_init(&w, x->d);
	assert_int_equal(data_read(x->d, x->o, 0, 100, &w, &r), -ETIMEDOUT);
	/* A retry right away gets the answer without asking again... */
	assert_int_equal(data_read(x->d, x->o, 0, 100, &w, &r), -ETIMEDOUT);
	assert_int_equal(fx_reads_at(x, 0), 1);
	/* ...and after the hold-down the origin is asked again. */
	usleep(350 * 1000);
	assert_int_equal(check_read(x, 0, 100), 100);
	assert_int_equal(fx_reads_at(x, 0), 2);
	data_wait_fini(&w);
	fx_free(x);
}

struct job {
	struct fx *x;
	uint64_t off;
	size_t len;
	int err; /* data_read's answer */
	size_t got; /* bytes, each checked against the origin's */
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct data_wait w;
	struct data_read r;
	int i;

	data_wait_init(&w, j->x->d);
	j->err = data_read(j->x->d, j->x->o, j->off, j->len, &w, &r);
	for (i = 0; !j->err && i < r.niov; i++) {
		size_t k;

		for (k = 0; k < r.iov[i].iov_len; k++)
			assert_int_equal(((uint8_t *)r.iov[i].iov_base)[k],
					 byte_at(j->off + j->got + k));
		j->got += r.iov[i].iov_len;
	}
	if (!j->err)
		data_read_release(j->x->d, &r);
	data_wait_fini(&w);
	return NULL;
}

/*
 * A read of pages that a fragment holds, or is fetching, for another read
 * waits for that fragment instead of asking the origin: the kernel retries
 * a failed read-around page by page, and the page whose half of it is
 * still on its way used to make a request of its own and, with the origin
 * failing, wait out the timeout a second time (a SIGBUS after twice
 * --timeout). Each round: a 64 KiB read held at the origin, then a 4 KiB
 * read inside it, then the origin answers (with data, then an error).
 */
static void test_read_within_fragment(void **state)
{
	struct fx *x = fx_new_cs(4ULL << 20, 64ULL << 20, 1000, 1u << 20);
	uint64_t base = 1u << 20;
	struct job big, small;
	pthread_t tb, ts;
	int round;

	for (round = 0; round < 2; round++) {
		/* The failure in the next chunk: the hold-down answers
		 * the whole chunk's reads. */
		uint64_t at = base + (uint64_t)round * (1u << 20);

		pthread_mutex_lock(&x->f.lock);
		x->f.gate_min_len = 65536;
		x->f.gate_closed = true;
		if (round == 1) {
			x->f.fail = -ETIMEDOUT;
			x->f.fail_count = 1;
		}
		pthread_mutex_unlock(&x->f.lock);
		big = (struct job){ .x = x, .off = at, .len = 65536 };
		small = (struct job){ .x = x, .off = at + 5 * 4096 + 10,
				      .len = 4000 };
		pthread_create(&tb, NULL, job_run, &big);
		fx_wait_reads_at(x, at / CS, 1);
		pthread_create(&ts, NULL, job_run, &small);
		/* Whether the small read comes while the big one waits or
		 * after it is answered, it asks nothing. */
		usleep(20 * 1000);
		gate_open(x);
		pthread_join(tb, NULL);
		pthread_join(ts, NULL);
		assert_int_equal(fx_reads(x), round + 1);
		assert_int_equal(big.err, round ? -ETIMEDOUT : 0);
		assert_int_equal(small.err, round ? -ETIMEDOUT : 0);
		assert_int_equal(big.got, round ? 0 : 65536);
		assert_int_equal(small.got, round ? 0 : 4000);
	}
	/* A ready fragment serves a read of some of its pages, and one
	 * that runs past its end gets the rest from one more request. */
	assert_int_equal(check_read(x, base + 4096, 8192), 8192);
	assert_int_equal(fx_reads(x), 2);
	assert_int_equal(check_read(x, base + 61440, 8192), 8192);
	assert_int_equal(fx_reads(x), 3);
	fx_free(x);
	(void)state;
}

static void test_version_change(void **state)
{
	struct fx *x = fx_new(4 * CS, 1 << 20);
	struct data_wait w;
	struct data_read r;

	check_read(x, 0, 10); /* learns "v1" */
	assert_false(data_obj_stale(x->o));
	pthread_mutex_lock(&x->f.lock);
	strcpy(x->f.etag, "\"v2\"");
	pthread_mutex_unlock(&x->f.lock);
	data_wait_init(&w, x->d);
	/* Chunk 2 comes from another version: never served. */
	assert_int_equal(data_read(x->d, x->o, 2 * CS, 10, &w, &r), -ESTALE);
	assert_true(data_obj_stale(x->o));
	/* And the object stays refused, even for cached ranges. */
	assert_int_equal(data_read(x->d, x->o, 0, 10, &w, &r), -ESTALE);
	data_wait_fini(&w);
	fx_free(x);
}

static void test_memory_bound(void **state)
{
	/* 8 chunks of memory, 64 chunks of object: reading it all works
	 * and evicts as it goes. */
	struct fx *x = fx_new(64 * CS, 8 * CS);
	uint64_t off;

	for (off = 0; off < 64 * CS; off += CS / 2)
		assert_int_equal(check_read(x, off, CS / 2), CS / 2);
	assert_true(fx_reads(x) >= 64);
	fx_free(x);
}

static void test_prefetch_sequential(void **state)
{
	/* A stream prefetches once it has read 2 MiB in order (more than
	 * an mmap fault's read-around), however small the chunks. */
	struct fx *x = fx_new(1024 * CS, 1 << 20);
	struct data_stats st;
	uint64_t off;

	for (off = 0; off < 511 * CS; off += CS)
		check_read(x, off, CS);
	data_get_stats(x->d, &st);
	assert_int_equal(st.prefetched, 0);
	for (; off < 640 * CS; off += CS)
		check_read(x, off, CS);
	data_get_stats(x->d, &st);
	assert_true(st.prefetched > 0);
	fx_free(x);
}

/* Read [off, off + len) of x's object, checking its length and the first
 * and last byte of every piece: for tests of what is fetched, not of the
 * bytes (check_read checks every one). */
static void read_quick(struct fx *x, uint64_t off, size_t len)
{
	struct data_wait w;
	struct data_read r;
	uint64_t at = off;
	int i;

	data_wait_init(&w, x->d);
	assert_int_equal(data_read(x->d, x->o, off, len, &w, &r), 0);
	assert_int_equal(r.bytes, len);
	for (i = 0; i < r.niov; i++) {
		const uint8_t *b = r.iov[i].iov_base;
		size_t n = r.iov[i].iov_len;

		assert_int_equal(b[0], byte_at(at));
		assert_int_equal(b[n - 1], byte_at(at + n - 1));
		at += n;
	}
	data_read_release(x->d, &r);
	data_wait_fini(&w);
}

/* The prefetch window of x's stream that reads next at next_off (0: no
 * such stream). */
static unsigned int fx_window(struct fx *x, uint64_t next_off)
{
	unsigned int i, win = 0;

	pthread_mutex_lock(&x->d->lock);
	for (i = 0; i < DATA_STREAMS; i++)
		if (x->o->streams[i].next_off == next_off)
			win = x->o->streams[i].window;
	pthread_mutex_unlock(&x->d->lock);
	return win;
}

#define WCS (64u * 1024) /* chunks of the window tests */

/* Wait until the fetch threads have started nothing for 3 ms (at most a
 * second): with an origin that answers at once, what a read asked ahead
 * for is then in, however slowly this machine runs the threads. */
static void fx_quiesce(struct fx *x)
{
	unsigned int n = fx_reads(x), quiet = 0, i;

	for (i = 0; i < 1000 && quiet < 3; i++) {
		usleep(1000);
		if (fx_reads(x) == n) {
			quiet++;
		} else {
			n = fx_reads(x);
			quiet = 0;
		}
	}
}

static void test_window_fast_origin(void **state)
{
	/* An origin that keeps ahead of its reader never makes it wait:
	 * the stream keeps the smallest window, never the 32 chunks a slow
	 * origin needs. */
	struct fx *x = fx_new_cs(64ULL << 20, 16 << 20, 0, WCS);
	struct data_stats st;
	uint64_t off;

	for (off = 0; off < 72 * WCS; off += WCS) {
		read_quick(x, off, WCS);
		fx_quiesce(x); /* the reader is the slow side */
	}
	data_get_stats(x->d, &st);
	assert_true(st.prefetched > 0);
	/* 2; a fetch thread held up by the machine may have made one read
	 * wait. */
	assert_true(fx_window(x, off) <= 4);
	assert_true(st.window_max <= 4);
	fx_free(x);
}

static void test_window_follows_origin(void **state)
{
	/* A stream's window doubles while its reader waits for the origin,
	 * to 32 chunks, and halves back once the origin keeps ahead. */
	struct fx *x = fx_new_cs(64ULL << 20, 16 << 20, 0, WCS);
	struct data_stats st;
	uint64_t off;
	unsigned int i;

	/* 2 MiB in order prove the stream; then a slow origin, which the
	 * reader waits for on (nearly) every read. */
	for (off = 0; off < 32 * WCS; off += WCS)
		read_quick(x, off, WCS);
	x->f.delay_ms = 20;
	for (i = 0; i < 100 && fx_window(x, off) < 32; i++, off += WCS)
		read_quick(x, off, WCS);
	assert_int_equal(fx_window(x, off), 32);
	/* A fast origin: 4 windows' worth without a wait halves it, down
	 * to 2 within 128 + 64 + 32 + 16 chunks and what was in flight. */
	x->f.delay_ms = 0;
	for (i = 0; i < 500 && fx_window(x, off) > 2; i++, off += WCS) {
		read_quick(x, off, WCS);
		fx_quiesce(x);
	}
	assert_true(fx_window(x, off) <= 4);
	data_get_stats(x->d, &st);
	assert_int_equal(st.window_max, 32);
	fx_free(x);
}

static void test_no_prefetch_random(void **state)
{
	struct fx *x = fx_new(1024 * CS, 16 << 20);
	struct data_stats st;
	static const uint64_t idx[] = { 500, 17, 900, 3, 250, 777, 64, 1000 };
	size_t i;

	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++)
		check_read(x, idx[i] * CS + 7, 100);
	data_get_stats(x->d, &st);
	assert_int_equal(st.prefetched, 0);
	assert_int_equal(fx_reads(x), 8);
	fx_free(x);
}

static void test_random_reads_fetch_pages(void **state)
{
	/* 1 MiB chunks: a small random read fetches the pages it covers,
	 * not the chunk; a sequential stream then fetches whole chunks. */
	struct fx *x = fx_new_cs(64ULL << 20, 64ULL << 20, 0, 1u << 20);
	struct data_stats st;
	uint64_t off;

	check_read(x, (37ULL << 20) + 8192, 4096);
	assert_int_equal(x->f.max_len, 4096);
	/* Unaligned: the two pages it touches. */
	check_read(x, (11ULL << 20) + 70000, 4096);
	assert_int_equal(x->f.max_len, 8192);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 2);
	/* Half a chunk past where a read ended continues no stream: still
	 * pages, not the chunk. */
	check_read(x, (11ULL << 20) + 70000 + 4096 + 512 * 1024, 4096);
	assert_int_equal(x->f.max_len, 8192);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 3);
	assert_int_equal(st.prefetched, 0);
	/* Sequential: whole chunks. */
	for (off = 20ULL << 20; off < (24ULL << 20); off += 128 * 1024)
		assert_int_equal(check_read(x, off, 128 * 1024), 128 * 1024);
	assert_int_equal(x->f.max_len, 1 << 20);
	fx_free(x);
}

static void test_young_stream_exact(void **state)
{
	/* An mmap fault's read-around (up to 1 MiB, maybe in several
	 * reads) and the readahead after it look like a stream: until a
	 * stream has read 2 MiB in order it fetches exactly its ranges,
	 * prefetching nothing; then whole chunks and a window ahead. */
	struct fx *x = fx_new_cs(64ULL << 20, 64ULL << 20, 0, 1u << 20);
	uint64_t base = (9ULL << 20) + 300 * 1024, off;
	struct data_stats st;

	check_read(x, base, 128 * 1024);
	for (off = base + 128 * 1024; off < base + 1920 * 1024;
	     off += 256 * 1024) {
		check_read(x, off, 256 * 1024);
		data_get_stats(x->d, &st);
		assert_int_equal(st.prefetched, 0);
		/* In pieces of at most 256 KiB. */
		assert_true(x->f.max_len <= 256 * 1024);
	}
	/* 2176 KiB read in order: a stream now. */
	check_read(x, off, 256 * 1024);
	data_get_stats(x->d, &st);
	assert_true(st.prefetched >= 2);
	assert_int_equal(x->f.max_len, 1 << 20);
	fx_free(x);
}

static void test_exact_read_in_pieces(void **state)
{
	/* An mmap fault's 1 MiB read-around, unaligned: fetched as pieces
	 * of at most 256 KiB, all at once, not as the two chunks it
	 * touches. */
	struct fx *x = fx_new_cs(64ULL << 20, 64ULL << 20, 0, 1u << 20);
	struct data_stats st;

	assert_int_equal(check_read(x, (5ULL << 20) + 512 * 1024, 1 << 20),
			 1 << 20);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 4);
	assert_int_equal(st.origin_bytes, 1 << 20);
	assert_int_equal(x->f.max_len, 256 * 1024);
	/* The reader fetched one piece itself, the workers the others. */
	assert_int_equal(x->f.own_reads, 1);
	/* A 128 KiB read-around across a 256 KiB boundary of its chunk:
	 * one request, pieces count from the read. */
	assert_int_equal(check_read(x, (20ULL << 20) + 200 * 1024, 128 * 1024),
			 128 * 1024);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 5);
	assert_int_equal(x->f.own_reads, 2);
	/* Across a chunk boundary: one request on the reader's thread for
	 * the fragments on both sides (frag_fetch_pair), none handed to a
	 * worker. */
	assert_int_equal(check_read(x, (30ULL << 20) - 64 * 1024, 128 * 1024),
			 128 * 1024);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 6);
	assert_int_equal(st.pair_reads, 1);
	assert_int_equal(st.origin_reads, 6);
	assert_int_equal(x->f.reads, 6);
	assert_int_equal(x->f.own_reads, 3);
	/* Both fragments stay, each in its chunk: the same pages again
	 * cost nothing, and neither do the halves alone. */
	check_read(x, (30ULL << 20) - 64 * 1024, 128 * 1024);
	check_read(x, (30ULL << 20) - 64 * 1024, 64 * 1024);
	check_read(x, 30ULL << 20, 64 * 1024);
	assert_int_equal(fx_reads(x), 6);
	fx_free(x);
}

static void test_pair_fails(void **state)
{
	/* One request for both sides of a chunk boundary fails: the read
	 * fails, both fragments fail for the hold-down, and afterwards
	 * both sides come right, again with one request. */
	struct fx *x = fx_new_cs(64ULL << 20, 64ULL << 20, 50, 1u << 20);
	struct data_wait w;
	struct data_read r;
	struct data_stats st;
	uint64_t off = (8ULL << 20) - 64 * 1024;

	x->f.fail = -EIO;
	x->f.fail_count = 1;
	data_wait_init(&w, x->d);
	assert_int_equal(data_read(x->d, x->o, off, 128 * 1024, &w, &r),
			 -EIO);
	assert_int_equal(fx_reads(x), 1);
	/* Within the hold-down, either side answers at once. */
	assert_int_equal(data_read(x->d, x->o, 8ULL << 20, 4096, &w, &r),
			 -EIO);
	data_wait_fini(&w);
	assert_int_equal(fx_reads(x), 1);
	usleep(80 * 1000);
	assert_int_equal(check_read(x, off, 128 * 1024), 128 * 1024);
	assert_int_equal(fx_reads(x), 2);
	data_get_stats(x->d, &st);
	assert_int_equal(st.pair_reads, 1);
	assert_int_equal(st.errors, 2);
	fx_free(x);
}

static void test_fragment_keep(void **state)
{
	/* A random reader's small fragment stays in memory for the next
	 * read; a 128 KiB read-around does not (the kernel caches those
	 * pages), and its buffer serves the next one: every read right. */
	struct fx *x = fx_new_cs(64ULL << 20, 64ULL << 20, 0, 1u << 20);
	struct data_stats st;
	unsigned int n;
	int i;

	check_read(x, (3ULL << 20) + 8192, 4096);
	check_read(x, (7ULL << 20) + 65536, 64 * 1024);
	n = fx_reads(x);
	check_read(x, (3ULL << 20) + 8192, 4096);
	check_read(x, (7ULL << 20) + 65536, 64 * 1024);
	assert_int_equal(fx_reads(x), n);
	data_get_stats(x->d, &st);
	assert_int_equal(st.mem_hits, 2);

	/* The same read-around three times, then elsewhere: each a new
	 * request, into a recycled buffer. */
	for (i = 0; i < 4; i++)
		assert_int_equal(check_read(x, (11ULL << 20) + 4096 +
						       (i == 3 ? 5ULL << 20 : 0),
					    128 * 1024),
				 128 * 1024);
	assert_int_equal(fx_reads(x), n + 4);
	data_get_stats(x->d, &st);
	assert_int_equal(st.mem_hits, 2);
	fx_free(x);
}

static void test_overlapping_fragments(void **state)
{
	/* Pages 10-20 of a chunk, then 5-15 (a fragment of their own that
	 * overlaps the first), then 8-20, served from both: each byte once,
	 * in order. A reply that carried pages 10-15 twice was longer than
	 * the read, and the kernel failed it with EIO. */
	struct fx *x = fx_new_cs(4ULL << 20, 64ULL << 20, 0, 1u << 20);
	uint64_t base = 1u << 20;
	unsigned int n;

	assert_int_equal(check_read(x, base + 10 * 4096, 11 * 4096),
			 11 * 4096);
	assert_int_equal(check_read(x, base + 5 * 4096, 11 * 4096),
			 11 * 4096);
	n = fx_reads(x);
	assert_int_equal(check_read(x, base + 8 * 4096 + 100, 13 * 4096 - 200),
			 13 * 4096 - 200);
	assert_int_equal(fx_reads(x), n);
	fx_free(x);
}

static void test_small_objects_memory(void **state)
{
	/* 2,000 objects of 4 KiB, each one chunk, read whole under an
	 * 8 MiB budget: what stays allocated is about the budget, not
	 * 2,000 buffers of chunk_size (2 GB of heap). */
	struct fx *x = fx_new_cs(4096, 8ULL << 20, 0, 1u << 20);
	struct data_obj *keep = x->o;
	size_t before, after;
	int i;

	before = mallinfo2().uordblks;
	for (i = 0; i < 2000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(data_obj_new(x->d, name, 4096, "", 0, &x->o),
				 0);
		assert_int_equal(check_read(x, 0, 4096), 4096);
		data_obj_put(x->o);
	}
	after = mallinfo2().uordblks;
	assert_true(after < before || after - before < (16u << 20));
	/* Chunk indexes past 32 bits would share table keys: refused. */
	assert_int_equal(data_obj_new(x->d, "huge", (uint64_t)UINT32_MAX << 20,
				      "", 0, &x->o),
			 -EFBIG);
	assert_int_equal(data_obj_new(x->d, "big", (uint64_t)UINT32_MAX << 19,
				      "", 0, &x->o),
			 0);
	data_obj_put(x->o);
	x->o = keep;
	fx_free(x);
}

static void test_small_object_whole(void **state)
{
	/* A 70000-byte object in 1 MiB chunks: a 4 KiB read in its middle
	 * fetches the whole object, one request, and the next read of it
	 * asks nothing. */
	struct fx *x = fx_new_cs(70000, 64ULL << 20, 0, 1u << 20);
	struct data_stats st;

	assert_int_equal(check_read(x, 8192, 4096), 4096);
	assert_int_equal(x->f.max_len, 70000);
	assert_int_equal(check_read(x, 65536, 8192), 70000 - 65536);
	assert_int_equal(fx_reads(x), 1);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fragments, 0);
	fx_free(x);
}

/* Read the first n pages of the chunk at base of x (1 MiB chunks), one
 * page at a time, never two in a row (no stream), page n - 1 last. 11 is
 * prime to n - 1 for the n used here (127, 256), so pages 0 to n - 2 are
 * all read, once each. */
static void read_chunk_pages_at(struct fx *x, uint64_t base, unsigned int n)
{
	unsigned int i;

	for (i = 0; i + 1 < n; i++)
		assert_int_equal(check_read(x, base + (i * 11 % (n - 1)) * 4096ULL,
					    4096),
				 4096);
	assert_int_equal(check_read(x, base + (n - 1) * 4096ULL, 4096), 4096);
}

static void read_chunk_pages(struct fx *x, unsigned int n)
{
	read_chunk_pages_at(x, 0, n);
}

/* Read pages 1 to 254 of chunk 0 of x as 127 reads of two pages, in an
 * order where no read follows on from the last (no stream): fragments
 * that never start at page 0, so they cannot be put together into the
 * chunk. */
static void read_chunk_pairs(struct fx *x)
{
	unsigned int i;

	for (i = 0; i < 127; i++)
		assert_int_equal(check_read(x, (1 + 2 * (i * 11 % 127)) * 4096ULL,
					    8192),
				 8192);
}

/* A disk tier of chunk_size chunks in a new directory made from the
 * template dir; disk_free() closes it and removes the directory. */
static struct cache *disk_new_cs(char *dir, uint32_t chunk_size)
{
	struct cache_opts co = { 0 };
	struct cache *disk;

	assert_non_null(mkdtemp(dir));
	test_tmpdir_note(dir);
	co.dir = dir;
	co.max_bytes = 64ULL << 20;
	co.chunk_size = chunk_size;
	assert_int_equal(cache_open(&co, &disk), 0);
	return disk;
}

static struct cache *disk_new(char *dir)
{
	return disk_new_cs(dir, 1u << 20);
}

static void disk_free(struct cache *disk, const char *dir)
{
	cache_close(disk);
	test_rm_rf(dir);
	assert_int_equal(access(dir, F_OK), -1);
}

/* The chunks the disk tier indexes once it has n, or after 5 s: the disk
 * writers work in the background. */
static uint64_t disk_wait_chunks(struct cache *disk, uint64_t n)
{
	struct cache_stats cst;
	int i;

	for (i = 0; i < 1000; i++) {
		assert_int_equal(cache_flush(disk), 0);
		assert_int_equal(cache_stats(disk, &cst), 0);
		if (cst.chunks >= n)
			break;
		usleep(5 * 1000);
	}
	return cst.chunks;
}

static void test_random_fill(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct data_wait w;
	struct data_read r;
	struct intr_arg ia;
	pthread_t th;
	struct cache_stats cst;
	struct data_stats st;
	struct cache *disk;
	struct fx *x;

	/* The rule by bytes alone here; test_fill_requests has the other. */
	fx_fill_requests = DATA_FILL_NEVER;
	/* Without a disk tier, a chunk read a page at a time stays pages:
	 * memory alone would not keep the whole chunk for the next pass. */
	x = fx_new_cs(4ULL << 20, 64ULL << 20, 0, 1u << 20);
	read_chunk_pages(x, 256);
	assert_int_equal(fx_reads(x), 256);
	assert_int_equal(fx_max_len(x), 4096);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 0);
	fx_free(x);

	/* With one, fragments that cover the chunk are put together: 256
	 * pages cost 256 requests and nothing more, 255 do not fill. */
	disk = disk_new(dir);
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	read_chunk_pages_at(x, 1u << 20, 255);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 0);
	assert_int_equal(check_read(x, (1u << 20) + 255 * 4096ULL, 4096), 4096);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.fills_mem, 1);
	assert_int_equal(fx_reads(x), 256);
	assert_int_equal(fx_max_len(x), 4096);
	/* The whole chunk is in memory now: a read across two of its
	 * pages asks nothing. */
	assert_int_equal(check_read(x, (1u << 20) + 4096 * 7 + 100, 8000), 8000);
	assert_int_equal(fx_reads(x), 256);
	fx_free(x); /* the disk writers finish first */
	assert_int_equal(cache_flush(disk), 0);
	assert_int_equal(cache_stats(disk, &cst), 0);
	assert_int_equal(cst.chunks, 1);

	/* Fragments that do not cover it from its first page (127 reads of
	 * two pages, pages 1 to 254, then pages 0 and 1, page 1 asked for
	 * again as it is no fragment's first): the 256th page fetches the
	 * chunk whole. */
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	read_chunk_pairs(x);
	assert_int_equal(fx_reads(x), 127);
	assert_int_equal(fx_max_len(x), 8192);
	pthread_mutex_lock(&x->f.lock);
	x->f.gate_min_len = 1u << 20; /* the fill waits on the origin */
	x->f.gate_closed = true;
	pthread_mutex_unlock(&x->f.lock);
	assert_int_equal(check_read(x, 0, 8192), 8192);
	fx_wait_fill(x, 129, 1u << 20);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.fills_mem, 0);
	/* Meanwhile a read of the chunk (pages 254 and 255, the last not
	 * in memory) waits for the fill until its deadline (250 ms, no
	 * whole chunk has come yet), then fetches its own page: a read
	 * that waited for the fill itself would be interrupted after a
	 * second. */
	data_wait_init(&w, x->d);
	ia.w = &w;
	ia.delay_ms = 1000;
	pthread_create(&th, NULL, interrupter, &ia);
	assert_int_equal(data_read(x->d, x->o, 254 * 4096ULL, 8192, &w, &r), 0);
	assert_int_equal(r.bytes, 8192);
	data_read_release(x->d, &r);
	pthread_join(th, NULL);
	data_wait_fini(&w);
	assert_int_equal(fx_reads(x), 130);
	gate_open(x);
	/* Once the fill is in (indexed implies ready), the chunk's reads
	 * ask the origin nothing. */
	assert_int_equal(disk_wait_chunks(disk, 2), 2);
	assert_int_equal(check_read(x, 20 * 4096ULL, 8192), 8192);
	assert_int_equal(fx_reads(x), 130);
	/* On disk once the writers are done with it. */
	fx_free(x);
	assert_int_equal(cache_flush(disk), 0);
	assert_int_equal(cache_stats(disk, &cst), 0);
	assert_int_equal(cst.chunks, 2);

	/* The next mount of that version reads both chunks from disk. */
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	data_obj_put(x->o);
	assert_int_equal(data_obj_new(x->d, "obj", 4ULL << 20, "\"v1\"", 0,
				      &x->o),
			 0);
	assert_int_equal(check_read(x, 77 * 4096ULL, 4096), 4096);
	assert_int_equal(check_read(x, 200 * 4096ULL + 10, 300), 300);
	assert_int_equal(check_read(x, (1u << 20) + 33 * 4096ULL, 4096), 4096);
	assert_int_equal(fx_reads(x), 0);
	data_get_stats(x->d, &st);
	assert_true(st.disk_hits >= 1);
	fx_free(x);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	(void)state;
}

/*
 * A failed fragment leaves a failure under its whole chunk's key for the
 * hold-down, and the entry stays findable after it. The chunk's fill,
 * falling due later, took that failure for the chunk itself and was
 * dropped: never on disk, every pass asking the origin again.
 */
static void test_fill_after_failure(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct data_wait w;
	struct data_read r;
	struct cache_stats cst;
	struct data_stats st;
	struct cache *disk;
	struct fx *x;

	fx_fill_requests = DATA_FILL_NEVER;
	disk = disk_new(dir);
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 100, 1u << 20, disk);
	x->f.fail = -ETIMEDOUT;
	x->f.fail_count = 1;
	data_wait_init(&w, x->d);
	assert_int_equal(
		data_read(x->d, x->o, (1u << 20) + 5 * 4096ULL, 4096, &w, &r),
		-ETIMEDOUT);
	data_wait_fini(&w);
	usleep(150 * 1000); /* past the hold-down */
	/* Every page of the chunk, one read each: the last makes it whole
	 * from the fragments in memory, and it goes to disk. */
	read_chunk_pages_at(x, 1u << 20, 256);
	assert_int_equal(fx_reads(x), 257);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.fills_mem, 1);
	fx_free(x);
	assert_int_equal(cache_flush(disk), 0);
	assert_int_equal(cache_stats(disk, &cst), 0);
	assert_int_equal(cst.chunks, 1);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	(void)state;
}

/* Pages p0, p0 + 3, ... of the chunk at base: n single-page reads, none
 * next to another (no stream, no two in one fragment). */
static void read_spread_pages(struct fx *x, uint64_t base, unsigned int p0,
			      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		assert_int_equal(check_read(x, base + (p0 + 3 * i) * 4096ULL,
					    4096),
				 4096);
}

/* Read page `page` of the chunk at base (len bytes), with no fill so far:
 * it must fetch the chunk whole, the origin's reads then totalling
 * total. */
static void expect_fill(struct fx *x, uint64_t base, unsigned int page,
			unsigned int total, unsigned int len)
{
	struct data_stats st;

	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 0);
	assert_int_equal(check_read(x, base + page * 4096ULL, 4096), 4096);
	fx_wait_fill(x, total, len);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.fills_mem, 0);
}

static void test_fill_requests(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct cache *disk;
	struct fx *x;
	int i;

	disk = disk_new(dir);
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	/* 15 requests in each of four chunks: pages, nothing more. */
	for (i = 0; i < 4; i++)
		read_spread_pages(x, (uint64_t)i << 20, 0, 15);
	assert_int_equal(fx_reads(x), 60);
	assert_int_equal(fx_max_len(x), 4096);
	/* The 16th in chunk 2 fetches it whole (its pages are far from
	 * covering it), and then its reads ask nothing. */
	expect_fill(x, 2u << 20, 100, 62, 1u << 20);
	assert_int_equal(disk_wait_chunks(disk, 1), 1);
	read_spread_pages(x, 2u << 20, 1, 80);
	assert_int_equal(fx_reads(x), 62);
	fx_free(x);
	disk_free(disk, dir);

	/* The bound grows with the chunk: 64 requests for 4 MiB. */
	strcpy(dir, "/tmp/cofault-test-data-XXXXXX");
	disk = disk_new_cs(dir, 4u << 20);
	x = fx_new_disk(16ULL << 20, 64ULL << 20, 0, 4u << 20, disk);
	read_spread_pages(x, 4u << 20, 0, 63);
	assert_int_equal(fx_reads(x), 63);
	expect_fill(x, 4u << 20, 1000, 65, 4u << 20);
	fx_free(x);
	disk_free(disk, dir);
	(void)state;
}

/*
 * Fills that fall due when the memory budget has no room wait for it: the
 * last page of a chunk brings no further fragment to try again, so the
 * end of another fill must. 2 MiB of memory, no disk writers (a quarter
 * of the budget is less than a chunk), fills by bytes only, and the
 * first fill held at the origin while two more chunks fall due.
 */
static void test_fill_waits_for_room(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct data_stats st;
	struct cache *disk;
	struct fx *x;
	int i;

	fx_fill_requests = DATA_FILL_NEVER; /* the rule by bytes alone */
	disk = disk_new(dir);
	x = fx_new_disk(4ULL << 20, 2ULL << 20, 0, 1u << 20, disk);
	pthread_mutex_lock(&x->f.lock);
	x->f.gate_min_len = 1u << 20;
	x->f.gate_closed = true;
	pthread_mutex_unlock(&x->f.lock);
	for (i = 0; i < 3; i++)
		read_chunk_pages_at(x, (uint64_t)i << 20, 256);
	/* The first fill is queued to a fetch thread: it counts when it
	 * reaches the origin, which may be after the last page's read. */
	fx_wait_reads_at(x, 0, 2); /* page 0, then the fill at 0 */
	assert_int_equal(fx_reads(x), 3 * 256 + 1);
	data_get_stats(x->d, &st);
	assert_true(st.fills < 3);
	gate_open(x);
	fx_wait_fill(x, 3 * 256 + 3, 1u << 20);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fills, 3);
	assert_int_equal(st.fills_mem, 0);
	assert_int_equal(disk_wait_chunks(disk, 3), 3);
	fx_free(x);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	(void)state;
}

/*
 * cache_object_rejoin, made to fail with -EBUSY (a busy index) while
 * rejoin_fails is above 0. Called by the disk writers: atomics.
 */
int __real_cache_object_rejoin(struct cache *c, const char *origin,
			       const char *key, const char *etag, uint64_t size,
			       int64_t mtime, uint64_t *obj_id);
int __wrap_cache_object_rejoin(struct cache *c, const char *origin,
			       const char *key, const char *etag, uint64_t size,
			       int64_t mtime, uint64_t *obj_id);
static int rejoin_fails;
static unsigned int rejoin_calls;

int __wrap_cache_object_rejoin(struct cache *c, const char *origin,
			       const char *key, const char *etag, uint64_t size,
			       int64_t mtime, uint64_t *obj_id)
{
	__atomic_add_fetch(&rejoin_calls, 1, __ATOMIC_RELAXED);
	if (__atomic_sub_fetch(&rejoin_fails, 1, __ATOMIC_RELAXED) >= 0)
		return -EBUSY;
	return __real_cache_object_rejoin(c, origin, key, etag, size, mtime,
					  obj_id);
}

/* disk_wait_chunks for up to 30 s: chunks written again after a clear
 * come from one thread, by direct I/O, and a disk that other work keeps
 * busy took more than 5 s for five of them. */
static uint64_t disk_wait_rewritten(struct cache *disk, uint64_t n)
{
	int i;

	for (i = 0; i < 5 && disk_wait_chunks(disk, n) < n; i++)
		;
	return disk_wait_chunks(disk, n);
}

/*
 * After a clear of disk under x's open object: read a page of a new chunk
 * of it every 100 ms from chunk first on (each fetches its chunk whole and
 * is indexed before the next) until the object is in the index again.
 * The first such chunk finds the object gone, the next one's writer
 * registers it again. Bounded: 60 chunks, 6 s. Returns the last chunk
 * read.
 */
static uint64_t read_until_rejoined(struct fx *x, struct cache *disk,
				    uint64_t first)
{
	uint64_t i;

	for (i = first; i < first + 60; i++) {
		assert_int_equal(check_read(x, i << 20, 4096), 4096);
		fx_wait_reads(x, (unsigned int)(2 * i + 2));
		assert_int_equal(cache_flush(disk), 0);
		if (!cache_object_known(disk, "fake:", "obj"))
			return i;
		usleep(100 * 1000);
	}
	fail_msg("the object was not registered again");
	return 0;
}

/*
 * A fixture over a new disk tier in dir whose open object had chunk 0
 * cached when the cache was cleared under it. Every page read fetches
 * its chunk whole: the caller sets fx_fill_requests back to 0.
 */
static struct fx *fx_cleared(char *dir, struct cache **disk)
{
	struct fx *x;

	fx_fill_requests = 1;
	*disk = disk_new(dir);
	x = fx_new_disk(64ULL << 20, 64ULL << 20, 0, 1u << 20, *disk);
	assert_int_equal(check_read(x, 0, 4096), 4096);
	assert_int_equal(disk_wait_chunks(*disk, 1), 1);
	assert_int_equal(cache_clear(*disk, NULL), 0);
	assert_int_equal(cache_object_known(*disk, "fake:", "obj"), -ENOENT);
	return x;
}

/*
 * A cache cleared under an open object, and the first attempt to register
 * it again fails: a later chunk tries again a second or two later, so the
 * object is cached again within seconds, not after the minute for which
 * the drop is remembered.
 */
static void test_rejoin_after_error(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct cache *disk;
	struct fx *x;
	uint64_t i;

	x = fx_cleared(dir, &disk);
	__atomic_store_n(&rejoin_fails, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&rejoin_calls, 0, __ATOMIC_RELAXED);
	i = read_until_rejoined(x, disk, 1);
	assert_int_equal(__atomic_load_n(&rejoin_calls, __ATOMIC_RELAXED), 2);
	/* Cached again: the chunks in memory (0 to i) and the next one. */
	assert_int_equal(check_read(x, (i + 1) << 20, 4096), 4096);
	assert_int_equal(disk_wait_rewritten(disk, i + 2), i + 2);
	fx_free(x);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	(void)state;
}

/*
 * Disk lookups of chunks lookup_first and the LOOKUP_SPAN after it
 * (cache_chunk_read and cache_chunk_hold, wrapped). Called by readers and
 * workers: atomics.
 */
int __real_cache_chunk_read(struct cache *c, uint64_t obj_id, uint64_t idx,
			    void *buf, size_t len);
int __wrap_cache_chunk_read(struct cache *c, uint64_t obj_id, uint64_t idx,
			    void *buf, size_t len);
int __real_cache_chunk_hold(struct cache *c, uint64_t obj_id, uint64_t idx,
			    size_t len, struct cache_hold *h);
int __wrap_cache_chunk_hold(struct cache *c, uint64_t obj_id, uint64_t idx,
			    size_t len, struct cache_hold *h);
/* A byte of the disk map: a garbage byte has some bit of these set. */
#define LOOKUP_SPAN 8
static uint64_t lookup_first = UINT64_MAX;
static unsigned int lookups;

static void count_lookup(uint64_t idx)
{
	uint64_t first = __atomic_load_n(&lookup_first, __ATOMIC_RELAXED);

	if (idx >= first && idx - first < LOOKUP_SPAN)
		__atomic_add_fetch(&lookups, 1, __ATOMIC_RELAXED);
}

int __wrap_cache_chunk_read(struct cache *c, uint64_t obj_id, uint64_t idx,
			    void *buf, size_t len)
{
	count_lookup(idx);
	return __real_cache_chunk_read(c, obj_id, idx, buf, len);
}

int __wrap_cache_chunk_hold(struct cache *c, uint64_t obj_id, uint64_t idx,
			    size_t len, struct cache_hold *h)
{
	count_lookup(idx);
	return __real_cache_chunk_hold(c, obj_id, idx, len, h);
}

/*
 * When an open object joins the disk tier again after a clear, the map of
 * the chunks the tier holds starts empty: chunks never written are
 * fetched from the origin without a disk lookup. The map was once left
 * unzeroed there; malloc is perturbed (M_PERTURB; under ASan its own
 * fill) so that such garbage shows, and eight chunks in a row are read,
 * one for each bit of a map byte, as the fill sets only some of them.
 */
static void test_rejoin_map_clean(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct cache *disk;
	struct fx *x;
	uint64_t i, j;

	mallopt(M_PERTURB, 0x5a);
	x = fx_cleared(dir, &disk);
	i = read_until_rejoined(x, disk, 1);
	assert_true(i + 2 + LOOKUP_SPAN <= 64);
	__atomic_store_n(&lookups, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&lookup_first, i + 2, __ATOMIC_RELAXED);
	for (j = i + 2; j < i + 2 + LOOKUP_SPAN; j++)
		assert_int_equal(check_read(x, j << 20, 4096), 4096);
	__atomic_store_n(&lookup_first, UINT64_MAX, __ATOMIC_RELAXED);
	assert_int_equal(__atomic_load_n(&lookups, __ATOMIC_RELAXED), 0);
	fx_free(x);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	mallopt(M_PERTURB, 0);
	(void)state;
}

/*
 * A cache cleared under an open object whose chunks are still in memory:
 * once the object is registered again, those chunks are written again
 * too, with their bytes, so the next mount need not fetch them.
 */
static void test_rewrite_after_clear(void **state)
{
	static uint8_t buf[1u << 20];
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct cache *disk;
	struct fx *x;
	uint64_t i, last, id;
	size_t j;

	fx_fill_requests = 1; /* every page read fetches its chunk whole */
	disk = disk_new(dir);
	x = fx_new_disk(64ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	for (i = 0; i < 4; i++)
		assert_int_equal(check_read(x, i << 20, 4096), 4096);
	assert_int_equal(disk_wait_chunks(disk, 4), 4);
	assert_int_equal(cache_clear(disk, NULL), 0);
	last = read_until_rejoined(x, disk, 4);
	/* Every chunk read so far is in memory: all are on disk again. */
	assert_int_equal(disk_wait_rewritten(disk, last + 1), last + 1);
	assert_int_equal(cache_object(disk, "fake:", "obj", "\"v1\"",
				      64ULL << 20, 0, &id),
			 0);
	for (i = 0; i <= last; i++) {
		assert_int_equal(
			cache_chunk_read(disk, id, i, buf, sizeof(buf)), 0);
		for (j = 0; j < sizeof(buf); j += 4093)
			assert_int_equal(buf[j], byte_at((i << 20) + j));
	}
	fx_free(x);
	disk_free(disk, dir);
	fx_fill_requests = 0;
	(void)state;
}

struct read_arg {
	struct fx *x;
	struct data_wait w;
	uint64_t off;
	size_t len;
	int rc; /* data_read's */
	size_t bytes; /* read, and matching the origin's */
	bool done; /* under x->f.lock */
};

static void *checked_reader(void *arg)
{
	struct read_arg *a = arg;
	struct data_read r;
	size_t i, got = 0;

	a->rc = data_read(a->x->d, a->x->o, a->off, a->len, &a->w, &r);
	if (a->rc)
		return NULL;
	for (i = 0; i < (size_t)r.niov; i++) {
		const uint8_t *p = r.iov[i].iov_base;
		size_t k;

		for (k = 0; k < r.iov[i].iov_len; k++, got++)
			if (p[k] != byte_at(a->off + got))
				goto out;
	}
out:
	a->bytes = got;
	data_read_release(a->x->d, &r);
	pthread_mutex_lock(&a->x->f.lock);
	a->done = true;
	pthread_mutex_unlock(&a->x->f.lock);
	return NULL;
}

/* a's read on a thread of its own; interrupted if it takes over 5 s. */
static void read_bounded(struct read_arg *a)
{
	pthread_t th;
	bool done = false;
	int i;

	a->done = false;
	pthread_create(&th, NULL, checked_reader, a);
	for (i = 0; i < 1000 && !done; i++) {
		usleep(5 * 1000);
		pthread_mutex_lock(&a->x->f.lock);
		done = a->done;
		pthread_mutex_unlock(&a->x->f.lock);
	}
	if (!done)
		data_wait_interrupt(&a->w);
	pthread_join(th, NULL);
}

/* Wait, at most 5 s, until a's read sleeps on a chunk. */
static void wait_sleeping(struct read_arg *a)
{
	bool sleeping = false;
	int i;

	for (i = 0; i < 1000 && !sleeping; i++) {
		pthread_mutex_lock(&a->x->d->lock);
		sleeping = a->w.chunk != NULL;
		pthread_mutex_unlock(&a->x->d->lock);
		if (!sleeping)
			usleep(5 * 1000);
	}
	assert_true(sleeping);
}

/* A fixture over disk whose object (named path) is new to it, fills by 4
 * requests a chunk and readers waiting at most fill_wait_ms for one. */
static struct fx *fx_fill_new(struct cache *disk, const char *path,
			      unsigned int fill_wait_ms)
{
	struct fx *x;

	fx_fill_requests = 4;
	fx_fill_wait_ms = fill_wait_ms;
	x = fx_new_disk(4ULL << 20, 64ULL << 20, 0, 1u << 20, disk);
	fx_fill_requests = 0;
	fx_fill_wait_ms = 0;
	data_obj_put(x->o);
	assert_int_equal(data_obj_new(x->d, path, 4ULL << 20, "", 0, &x->o),
			 0);
	return x;
}

/* Fill chunk 0 of x (fx_fill_new): pages 0, 10, 20 and 30, then the fill,
 * which the fake origin holds at its gate. The origin had n reads
 * before. */
static void fill_held(struct fx *x, unsigned int n)
{
	unsigned int p;

	pthread_mutex_lock(&x->f.lock);
	x->f.gate_min_len = 1u << 20;
	x->f.gate_closed = true;
	pthread_mutex_unlock(&x->f.lock);
	for (p = 0; p < 40; p += 10)
		assert_int_equal(check_read(x, p * 4096ULL, 4096), 4096);
	fx_wait_fill(x, n + 5, 1u << 20);
}

/* The origin has had reads reads, and x's fill counters say so. */
static void expect_fill_stats(struct fx *x, unsigned int reads,
			      uint64_t waits, uint64_t stalls, uint64_t hedges)
{
	struct data_stats st;

	assert_int_equal(fx_reads(x), reads);
	data_get_stats(x->d, &st);
	assert_int_equal(st.fill_waits, waits);
	assert_int_equal(st.fill_stalls, stalls);
	assert_int_equal(st.fill_hedges, hedges);
}

/* Read [off, off + len) of a->x on a thread of its own, interrupted
 * after 5 s; all of it must come, right. With gated, the read must
 * sleep first (for the fill held at the gate), then the gate opens. */
static void read_ok(struct read_arg *a, uint64_t off, size_t len,
		    bool gated)
{
	pthread_t th;

	a->off = off;
	a->len = len;
	data_wait_init(&a->w, a->x->d);
	if (gated) {
		a->done = false;
		pthread_create(&th, NULL, checked_reader, a);
		wait_sleeping(a);
		gate_open(a->x);
		pthread_join(th, NULL);
	} else {
		read_bounded(a);
	}
	data_wait_fini(&a->w);
	assert_int_equal(a->rc, 0);
	assert_int_equal(a->bytes, len);
}

/*
 * Reads of a chunk that a fetch thread is fetching whole for the disk
 * tier (a fill) wait for it when it is due about as soon as their own
 * request would be (the first fill of a mount, with no time to go by),
 * unless their pages are in memory already, and until its deadline
 * (data_opts.fill_wait_ms here). Past that the fill is stalled: they
 * fetch their own pages, and later ones do not wait. A fill due long
 * after a page would come is not waited for.
 */
static void test_fill_wait(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct read_arg a = { 0 };
	struct cache *disk = disk_new(dir);
	double t0;

	/* A fill that comes before its deadline: a read of page 10, in
	 * memory, does not wait; one of pages 100 and 101 is served from
	 * the fill, with no request of its own. */
	a.x = fx_fill_new(disk, "obj", 60 * 1000);
	fill_held(a.x, 0);
	read_ok(&a, 10 * 4096ULL, 4096, false);
	expect_fill_stats(a.x, 5, 0, 0, 0);
	read_ok(&a, 100 * 4096ULL + 10, 5000, true);
	expect_fill_stats(a.x, 5, 1, 0, 0);
	assert_int_equal(disk_wait_chunks(disk, 1), 1);
	fx_free(a.x);

	/* A fill held past its deadline: the read waits that long, then
	 * fetches its own page (a read that waited for the fill itself
	 * would be interrupted after 5 s); the next read does not wait. A
	 * read of the whole chunk still waits for the fill, and does not
	 * start again at its deadline: it needs all of it. */
	t0 = mono(); /* before the fill starts: its deadline is later */
	a.x = fx_fill_new(disk, "obj2", 300);
	fill_held(a.x, 0);
	read_ok(&a, 200 * 4096ULL, 4096, false);
	assert_true(mono() - t0 >= 0.3);
	expect_fill_stats(a.x, 6, 1, 1, 1);
	read_ok(&a, 210 * 4096ULL, 4096, false);
	expect_fill_stats(a.x, 7, 1, 1, 2);
	read_ok(&a, 0, 1u << 20, true);
	expect_fill_stats(a.x, 7, 1, 1, 2);
	/* Once the fill is in, the chunk's reads ask the origin nothing. */
	assert_int_equal(disk_wait_chunks(disk, 2), 2);
	read_ok(&a, 220 * 4096ULL, 4096, false);
	expect_fill_stats(a.x, 7, 1, 1, 2);
	fx_free(a.x);

	/* Whole chunks take a second, a page next to nothing: a read does
	 * not wait for a fill under way, deadline or not. */
	a.x = fx_fill_new(disk, "obj3", 60 * 1000);
	a.x->f.delay_ms = 1000;
	read_ok(&a, 3ULL << 20, 1u << 20, false);
	a.x->f.delay_ms = 0;
	fill_held(a.x, 1);
	read_ok(&a, 100 * 4096ULL, 4096, false);
	expect_fill_stats(a.x, 7, 0, 0, 1);
	gate_open(a.x);
	assert_int_equal(disk_wait_chunks(disk, 4), 4);
	fx_free(a.x);

	disk_free(disk, dir);
	(void)state;
}

/* A read waiting on a fill past its deadline, its object gone stale
 * meanwhile (another read met a new version): -ESTALE, never 0 bytes,
 * which the kernel would take for the end of the file. */
static void test_fill_wait_stale(void **state)
{
	char dir[] = "/tmp/cofault-test-data-XXXXXX";
	struct read_arg a = { 0 };
	struct cache *disk = disk_new(dir);
	struct data_wait w;
	struct data_read r;
	pthread_t th;

	a.x = fx_fill_new(disk, "obj", 300);
	fill_held(a.x, 0);
	a.off = 200 * 4096ULL;
	a.len = 4096;
	data_wait_init(&a.w, a.x->d);
	pthread_create(&th, NULL, checked_reader, &a);
	wait_sleeping(&a);
	pthread_mutex_lock(&a.x->f.lock);
	strcpy(a.x->f.etag, "\"v2\"");
	pthread_mutex_unlock(&a.x->f.lock);
	data_wait_init(&w, a.x->d);
	assert_int_equal(data_read(a.x->d, a.x->o, 2ULL << 20, 4096, &w, &r),
			 -ESTALE);
	data_wait_fini(&w);
	pthread_join(th, NULL);
	data_wait_fini(&a.w);
	assert_int_equal(a.rc, -ESTALE);
	gate_open(a.x);
	fx_free(a.x);
	disk_free(disk, dir);
	(void)state;
}

static void test_big_read_small_chunks(void **state)
{
	/* FUSE's largest read (1 MiB) over the smallest chunks (4 KiB):
	 * 256 chunks for one read, all served. */
	struct fx *x = fx_new_cs(8ULL << 20, 64ULL << 20, 0, 4096);

	assert_int_equal(check_read(x, 0, 1 << 20), 1 << 20);
	assert_int_equal(check_read(x, (3ULL << 20) + 100, 1 << 20), 1 << 20);
	fx_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_empty_object),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_interrupt),
		cmocka_unit_test(test_interrupt_own_fetch),
		cmocka_unit_test(test_interrupt_pair),
		cmocka_unit_test(test_interrupt_before_wait),
		cmocka_unit_test(test_error_not_sticky),
		cmocka_unit_test(test_error_holddown),
		cmocka_unit_test(test_read_within_fragment),
		cmocka_unit_test(test_version_change),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_prefetch_sequential),
		cmocka_unit_test(test_window_fast_origin),
		cmocka_unit_test(test_window_follows_origin),
		cmocka_unit_test(test_no_prefetch_random),
		cmocka_unit_test(test_random_reads_fetch_pages),
		cmocka_unit_test(test_young_stream_exact),
		cmocka_unit_test(test_exact_read_in_pieces),
		cmocka_unit_test(test_pair_fails),
		cmocka_unit_test(test_fragment_keep),
		cmocka_unit_test(test_overlapping_fragments),
		cmocka_unit_test(test_small_objects_memory),
		cmocka_unit_test(test_small_object_whole),
		cmocka_unit_test(test_big_read_small_chunks),
		cmocka_unit_test(test_random_fill),
		cmocka_unit_test(test_fill_after_failure),
		cmocka_unit_test(test_fill_requests),
		cmocka_unit_test(test_rejoin_after_error),
		cmocka_unit_test(test_rejoin_map_clean),
		cmocka_unit_test(test_rewrite_after_clear),
		cmocka_unit_test(test_fill_waits_for_room),
		cmocka_unit_test(test_fill_wait),
		cmocka_unit_test(test_fill_wait_stale),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
