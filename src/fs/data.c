/*
 * The data path: chunk single flight, fetch threads, the in-memory LRU and
 * the sequential-stream prefetcher. One mutex (d->lock) guards the chunk
 * table, the queues and the LRU; it is never held across I/O. Random
 * readers' chunks are made whole for the disk tier in data-fill.c; the
 * state both share is in data-int.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "common/bloom.h"
#include "common/log.h"
#include "common/mono.h"
#include "fs/data.h"
#include "fs/data-disk.h"
#include "fs/data-int.h"

/*
 * Chunks a stream prefetches ahead: DATA_MIN_WINDOW once it is proven,
 * twice as many each time its reader had to wait for one, up to
 * DATA_MAX_WINDOW, and half as many after DATA_CALM_WINDOWS windows' worth
 * read without a wait (stream_advance). An origin faster than its reader
 * rarely makes it wait, and a deeper window would only hold more chunks
 * in memory and fetch more that a reader who stops never reads; a slow
 * one (20 ms a request) keeps the whole window.
 */
#define DATA_MIN_WINDOW 2
#define DATA_MAX_WINDOW 32
#define DATA_CALM_WINDOWS 4
#define DATA_STREAM_SLACK (128u * 1024) /* see stream_find() */
/*
 * Bytes a stream reads in order before it counts as one (whole chunks,
 * prefetch): more than an mmap fault's read-around, which the kernel may
 * send as several requests in a row (up to 1 MiB, in 512 KiB reads when
 * splicing). At least a chunk, too.
 */
#define DATA_STREAM_PROOF (2u * 1024 * 1024)
/* Smallest chunk held for splicing: with smaller ones a read would be
 * spliced from many short ranges, each a lock and a checksum pass. */
#define DATA_HOLD_MIN_CHUNK (256u * 1024)
/* Held entries at most: each keeps a file descriptor and a range lock. */
#define DATA_HELD_MAX 128
/*
 * Fetched chunks waiting for the disk tier's writers, and the writers.
 * They write by direct I/O, which waits for the device; a fetch thread
 * that finds the queue full waits a little for room, then writes its
 * chunk itself through the page cache, so a slow disk never holds
 * fetching up for long. 32 chunks of 1 MiB are 32 ms of a disk writing
 * 1 GB/s.
 */
#define DATA_PERSIST_MAX 32
#define DATA_PERSIST_WAIT_MS 50 /* see persist_wait_room() */
/*
 * Exact reads wait for a fill a worker has started when it is due no
 * later than their own request would be (fill_worth_waiting()), and at
 * most until its deadline: DATA_FILL_WAIT_TIMES what whole chunks have
 * taken lately, at least DATA_FILL_WAIT_MIN_MS. A fill that takes longer
 * is stalled: its readers fetch their own pages.
 */
#define DATA_FILL_WAIT_TIMES 4
#define DATA_FILL_WAIT_MIN_MS 250
/* Alignment of chunk buffers: what a direct write needs. */
#define DATA_BUF_ALIGN CACHE_DIRECT_ALIGN

static bool key_is_frag(uint64_t key)
{
	return key & 0xffffffffu;
}

static unsigned int frag_first(const struct chunk *c)
{
	return (unsigned int)(c->key >> 16 & 0xffff);
}

static unsigned int frag_last(const struct chunk *c)
{
	return (unsigned int)(c->key & 0xffff) - 1;
}

/* The bits of struct frag_bucket.pages for pages first to last. */
static uint64_t frag_bits(const struct data *d, unsigned int first,
			  unsigned int last)
{
	unsigned int a = first >> d->frag_shift, b = last >> d->frag_shift;
	uint64_t m = 0;

	if (b - a >= 63)
		return ~(uint64_t)0;
	for (; a <= b; a++)
		m |= (uint64_t)1 << (a & 63);
	return m;
}

static void chunk_unhash(struct data *d, struct chunk *c)
{
	struct chunk **pp = &d->table[chunk_hash(d, c->obj_id, c->key)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	c->hnext = NULL;
	if (key_is_frag(c->key)) {
		struct frag_bucket *fb =
			&d->ftable[chunk_hash(d, c->obj_id,
					      data_key_chunk(c->idx))];

		pp = &fb->head;
		while (*pp && *pp != c)
			pp = &(*pp)->fnext;
		if (*pp)
			*pp = c->fnext;
		c->fnext = NULL;
		if (!fb->head)
			fb->pages = 0;
	}
	c->hashed = false;
}

/* Wait on cond until the monotonic time t (seconds); as
 * pthread_cond_timedwait. cond uses CLOCK_MONOTONIC. */
static int cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock,
			   double t)
{
	struct timespec ts;

	if (t < 0)
		t = 0;
	ts.tv_sec = (time_t)t;
	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L)
		ts.tv_nsec = 999999999L;
	return pthread_cond_timedwait(cond, lock, &ts);
}

/* A failure whose hold-down is over: the origin is worth another try. */
static bool failure_expired(const struct data *d, const struct chunk *c)
{
	return c->state == CHUNK_FAILED &&
	       (mono_s() - c->fail_time) * 1000.0 >= d->o.error_holddown_ms;
}

/* What the spares of both kinds hold. Caller holds d->lock. */
static uint64_t spare_bytes(const struct data *d)
{
	return d->nspare * (uint64_t)d->o.chunk_size +
	       d->npiece * (uint64_t)DATA_PIECE_BYTES;
}

/*
 * A buffer for a whole chunk len long, aligned for a direct write to the
 * disk tier: a chunk_size spare if there is one when len is chunk_size,
 * else a new one. A shorter chunk (a small file's, an object's tail) gets
 * one of its own length: --max-memory counts chunks by their length, and
 * 2,000 files of 4 KiB held 2 GB of address space in chunk_size buffers.
 * Caller holds d->lock.
 */
char *data_spare_take(struct data *d, size_t len)
{
	void *buf;

	if (len == d->o.chunk_size && d->nspare)
		return d->spare[--d->nspare];
	len = (len + DATA_BUF_ALIGN - 1) / DATA_BUF_ALIGN * DATA_BUF_ALIGN;
	return posix_memalign(&buf, DATA_BUF_ALIGN, len) ? NULL : buf;
}

/* Keep a buffer data_spare_take(d, len) gave for reuse, or free it.
 * Spares (both kinds) count against --max-memory like chunks: one is kept
 * only while chunks and spares together stay within it. Caller holds
 * d->lock. */
void data_spare_put(struct data *d, char *buf, size_t len)
{
	if (len == d->o.chunk_size && d->nspare < d->spare_cap &&
	    d->mem_used + spare_bytes(d) + d->o.chunk_size <= d->o.max_memory)
		d->spare[d->nspare++] = buf;
	else
		free(buf);
}

/* A buffer for a fragment of len bytes: from the pool when it fits in a
 * page, a piece spare when it is one that is not kept (DATA_FRAG_KEEP).
 * Caller holds d->lock. */
static char *frag_buf_take(struct data *d, size_t len)
{
	if (len <= DATA_POOL_PAGE)
		return data_pool_take(&d->pool);
	if (len <= DATA_FRAG_KEEP)
		return malloc(len);
	if (d->npiece)
		return d->piece[--d->npiece];
	return malloc(DATA_PIECE_BYTES);
}

/* Caller holds d->lock. */
static void frag_buf_put(struct data *d, char *buf, size_t len)
{
	if (len <= DATA_POOL_PAGE)
		data_pool_put(&d->pool, buf);
	else if (len > DATA_FRAG_KEEP && d->npiece < d->piece_cap &&
	    d->mem_used + spare_bytes(d) + DATA_PIECE_BYTES <=
		    d->o.max_memory)
		d->piece[d->npiece++] = buf;
	else
		free(buf);
}

/* Give c's buffer back for reuse. Caller holds d->lock. */
static void chunk_drop_buf(struct data *d, struct chunk *c)
{
	if (!c->buf)
		return;
	if (c->frag)
		frag_buf_put(d, c->buf, c->len);
	else
		data_spare_put(d, c->buf, c->len);
	c->buf = NULL;
}

/* Caller holds d->lock; c is unhashed, out of every list, unreferenced. */
static void chunk_destroy(struct data *d, struct chunk *c)
{
	if (c->held) {
		data_disk_release(&c->hold);
		__atomic_sub_fetch(&d->nheld, 1, __ATOMIC_RELAXED);
	} else {
		d->mem_used -= c->len;
	}
	pthread_cond_destroy(&c->cond);
	chunk_drop_buf(d, c);
	free(c);
}

/* Caller holds d->lock. */
void data_chunk_ref(struct data *d, struct chunk *c)
{
	if (c->in_lru) {
		list_remove(&d->lru, c);
		c->in_lru = false;
	}
	c->refs++;
}

/* Caller holds d->lock. */
void data_chunk_unref(struct data *d, struct chunk *c)
{
	if (--c->refs)
		return;
	if (c->drop_behind && c->state == CHUNK_READY && c->hashed) {
		chunk_unhash(d, c);
		chunk_destroy(d, c);
		return;
	}
	/* Failed chunks stay findable for the hold-down, like ready ones;
	 * they hold no buffer, so memory pressure never needs them gone. */
	if ((c->state == CHUNK_READY || c->state == CHUNK_FAILED) &&
	    c->hashed) {
		list_append(&d->lru, c);
		c->in_lru = true;
		return;
	}
	if (c->hashed)
		chunk_unhash(d, c);
	chunk_destroy(d, c);
}

/*
 * A new entry of o under key, hashed; no buffer, no references, state
 * CHUNK_QUEUED. Caller holds d->lock.
 */
struct chunk *data_entry_new(struct data *d, const struct data_obj *o,
			     uint64_t key, uint64_t idx, uint64_t off)
{
	struct chunk *c = calloc(1, sizeof(*c));
	size_t b;

	if (!c)
		return NULL;
	pthread_cond_init(&c->cond, &d->cond_attr);
	c->obj_id = o->id;
	c->idx = idx;
	c->key = key;
	c->off = off;
	c->state = CHUNK_QUEUED;
	c->hashed = true;
	b = chunk_hash(d, o->id, key);
	c->hnext = d->table[b];
	d->table[b] = c;
	if (key_is_frag(key)) {
		struct frag_bucket *fb =
			&d->ftable[chunk_hash(d, o->id, data_key_chunk(idx))];

		c->fnext = fb->head;
		fb->head = c;
		fb->pages |= frag_bits(d, frag_first(c), frag_last(c));
	}
	return c;
}

/* Hand an entry nobody fetches to the workers, ahead of prefetch.
 * Caller holds d->lock. */
static void entry_to_workers(struct data *d, struct chunk *c)
{
	c->owner = NULL;
	c->state = CHUNK_QUEUED;
	list_append(&d->demand, c);
	pthread_cond_signal(&d->work);
}

/* Make room for need more bytes by dropping unreferenced ready chunks.
 * Caller holds d->lock. Returns true when the budget now allows it. */
bool data_make_room(struct data *d, size_t need)
{
	/* A spare buffer is memory already counted: use it before evicting
	 * (the caller takes one), and free the rest while over budget. */
	while (d->npiece && d->mem_used + spare_bytes(d) + need >
				    d->o.max_memory)
		free(d->piece[--d->npiece]);
	while (d->nspare > 1 &&
	       d->mem_used + spare_bytes(d) + need > d->o.max_memory)
		free(d->spare[--d->nspare]);
	if (d->nspare && need <= d->o.chunk_size)
		need = 0;
	while (d->mem_used + need > d->o.max_memory && d->lru.head) {
		struct chunk *c = d->lru.head;

		list_remove(&d->lru, c);
		c->in_lru = false;
		chunk_unhash(d, c);
		chunk_destroy(d, c);
	}
	return d->mem_used + need <= d->o.max_memory;
}

/*
 * Forget failure c (its hold-down is over): unhashed, so the next look
 * for its key finds nothing; freed now if unreferenced, else by the last
 * reader waiting on it (data_chunk_unref frees what is unhashed). Caller
 * holds d->lock.
 */
static void failure_drop(struct data *d, struct chunk *c)
{
	chunk_unhash(d, c);
	if (c->in_lru) {
		list_remove(&d->lru, c);
		c->in_lru = false;
		chunk_destroy(d, c);
	}
}

/*
 * Find or queue the entry key of o: [off, off + len) of chunk idx, a
 * fragment when frag. Caller holds d->lock. With for_demand the entry is
 * returned referenced (and a queued prefetch is promoted); else it is
 * only queued, and NULL comes back (also when memory is short).
 */
static struct chunk *entry_want(struct data *d, struct data_obj *o,
				uint64_t key, uint64_t idx, uint64_t off,
				size_t len, bool frag, bool for_demand,
				void *owner, int *err)
{
	struct chunk *c = chunk_find(d, o->id, key);
	char *buf;

	*err = 0;
	if (c && failure_expired(d, c)) {
		/* Old failure: try the origin again. */
		failure_drop(d, c);
		c = NULL;
	}
	if (c) {
		if (!for_demand)
			return NULL;
		if (c->state == CHUNK_QUEUED && c->prefetch) {
			/* Demand reads jump ahead of prefetch. */
			list_remove(&d->prefetch, c);
			c->prefetch = false;
			list_append(&d->demand, c);
		}
		if (c->state == CHUNK_READY)
			d->stats.mem_hits++;
		data_chunk_ref(d, c);
		return c;
	}
	/* Demand may overshoot the budget (readers must progress);
	 * prefetch never does. */
	if (!data_make_room(d, len) && !for_demand)
		return NULL;
	buf = frag ? frag_buf_take(d, len) : data_spare_take(d, len);
	c = buf ? data_entry_new(d, o, key, idx, off) : NULL;
	if (!c) {
		if (buf && frag)
			frag_buf_put(d, buf, len);
		else
			free(buf);
		*err = -ENOMEM;
		return NULL;
	}
	c->buf = buf;
	c->frag = frag;
	c->len = len;
	c->drop_behind = frag && len > DATA_FRAG_KEEP;
	c->obj = data_obj_get(o);
	c->refs = 1; /* the queue's */
	c->prefetch = !for_demand;
	d->mem_used += len;
	if (owner) {
		c->state = CHUNK_FETCHING;
		c->owner = owner;
	} else {
		list_append(for_demand ? &d->demand : &d->prefetch, c);
		pthread_cond_signal(&d->work);
	}
	if (!for_demand)
		d->stats.prefetched++;
	if (!for_demand)
		return NULL;
	c->refs++;
	return c;
}

/* The whole chunk idx of o; see entry_want. */
struct chunk *data_chunk_want(struct data *d, struct data_obj *o,
			      uint64_t idx, bool for_demand, int *err)
{
	return entry_want(d, o, data_key_chunk(idx), idx,
			  idx * d->o.chunk_size, chunk_len(d, o, idx), false,
			  for_demand, NULL, err);
}

/*
 * A fragment of chunk idx of o that holds page p and is worth waiting
 * for: ready, on its way, or failed within the hold-down. A ready one
 * first, then the one reaching furthest. Caller holds d->lock.
 */
static struct chunk *frag_holding(struct data *d, const struct data_obj *o,
				  uint64_t idx, unsigned int p)
{
	const struct frag_bucket *fb =
		&d->ftable[chunk_hash(d, o->id, data_key_chunk(idx))];
	struct chunk *c, *best = NULL;

	if (!(fb->pages & frag_bits(d, p, p)))
		return NULL;
	for (c = fb->head; c; c = c->fnext) {
		if (c->obj_id != o->id || c->idx != idx || frag_first(c) > p ||
		    frag_last(c) < p || failure_expired(d, c) ||
		    (c->state == CHUNK_READY && !c->buf))
			continue;
		if (!best ||
		    (c->state == CHUNK_READY) > (best->state == CHUNK_READY) ||
		    ((c->state == CHUNK_READY) ==
			     (best->state == CHUNK_READY) &&
		     frag_last(c) > frag_last(best)))
			best = c;
	}
	return best;
}

/*
 * Whether an exact read of bytes [lo, hi) of a chunk clen long needs the
 * whole chunk: it touches the chunk's first and last pages, or the chunk
 * is no longer than a piece. See exact_want().
 */
static bool exact_needs_whole(size_t clen, uint64_t lo, uint64_t hi)
{
	if (hi > clen)
		hi = clen;
	return (lo < DATA_BLOCK && hi > (clen - 1) / DATA_BLOCK * DATA_BLOCK) ||
	       clen <= DATA_PIECE_BYTES;
}

/*
 * Whether an exact read should wait for fill c, which a worker has
 * started, rather than ask for its pages: by the recent times of both
 * kinds, c is due no later than a request of the read's own would be, and
 * it is not stalled. From a far origin a fill started earlier comes about
 * as soon as a new request would; from loopback a 1 MiB fill takes as
 * long as several single pages, and a reader that always waited for it
 * read 15% slower, for 7% fewer requests, in a random epoch over 32 MiB.
 * The first fill of a mount, with no time to go by, is waited for.
 * Caller holds d->lock.
 */
static bool fill_worth_waiting(const struct data *d, const struct chunk *c)
{
	double now = mono_s();

	return now < c->fill_due && c->fill_eta - now <= d->page_s;
}

/* Whether ready fragments in memory hold pages first to last of chunk idx
 * of o. Caller holds d->lock. */
static bool frags_ready(struct data *d, const struct data_obj *o,
			uint64_t idx, unsigned int first, unsigned int last)
{
	unsigned int p = first;

	while (p <= last) {
		struct chunk *f = frag_holding(d, o, idx, p);

		if (!f || f->state != CHUNK_READY)
			return false;
		p = frag_last(f) + 1;
	}
	return true;
}

/*
 * Pin in r what an exact read of [off, off + len) needs from chunk idx:
 * the chunk itself when it is in memory (or on its way), else the pages
 * that cover the read, as fragments of at most DATA_PIECE_PAGES pages
 * from the read's first page, so that an mmap fault's 1 MiB read-around
 * is fetched as several ranges at once rather than one after the other.
 * Counted from the read, not aligned: a 128 KiB read-around is then one
 * request on the reader's thread, where aligned pieces split half of
 * them in two and handed one half to the workers. A page that a fragment
 * in memory, or on its way, holds is taken from it (frag_holding), and the
 * next piece starts after that fragment.
 * New fragments are owned by the reader w, which fetches them itself,
 * the first always and the next while *owned (the bytes it took so far)
 * stays within DATA_OWN_BYTES: for a 4 KiB read, handing the request to a
 * worker and waking the reader again cost as much as the transfer. The
 * rest go to the workers. Caller holds d->lock.
 */
static int exact_want(struct data *d, struct data_obj *o, uint64_t idx,
		      uint64_t off, size_t len, struct data_wait *w,
		      size_t *owned, bool no_fill, struct data_read *r)
{
	uint64_t cstart = idx * d->o.chunk_size;
	size_t clen = chunk_len(d, o, idx);
	uint64_t lo, hi;
	unsigned int first, last, a, b;
	struct chunk *c;
	bool fill_pending;
	int err;

	lo = off > cstart ? off - cstart : 0;
	hi = off + len - cstart;
	if (hi > clen)
		hi = clen;
	first = (unsigned int)(lo / DATA_BLOCK);
	last = (unsigned int)((hi - 1) / DATA_BLOCK);
	c = chunk_find(d, o->id, data_key_chunk(idx));
	fill_pending = c && c->fill &&
		       (c->state == CHUNK_QUEUED || c->state == CHUNK_FETCHING);
	/*
	 * A fill still queued is not waited for: the read would wait behind
	 * the prefetch queue for a whole chunk instead of its own pages. One
	 * a worker has started is when it is due about as soon as a request
	 * of the read's own would be (fill_worth_waiting): then a request of
	 * its own would cost the origin what the fill makes useless, and
	 * gain the reader little. Past its deadline a fill is stalled, and a
	 * failed fill is no reader's error: neither is waited for, nor is
	 * any fill once one of them made this read start again (no_fill: see
	 * data_read). Nor is one when the read's pages are in memory.
	 */
	if (c && c->fill &&
	    (no_fill || c->state == CHUNK_QUEUED ||
	     c->state == CHUNK_FAILED ||
	     (c->state == CHUNK_FETCHING &&
	      (!fill_worth_waiting(d, c) ||
	       frags_ready(d, o, idx, first, last)))))
		c = NULL;
	/*
	 * A chunk no longer than a piece is fetched whole: one request
	 * either way, the rest of a small file is what comes next, the disk
	 * tier keeps whole chunks only, and an origin that ignores Range
	 * still serves a file that fits (its answer, the whole object, is
	 * the range asked for).
	 */
	if ((c && !failure_expired(d, c)) || exact_needs_whole(clen, lo, hi)) {
		if (r->npins == DATA_READ_MAX)
			return -EINVAL;
		/* A demand entry comes back, or -ENOMEM in err. */
		c = data_chunk_want(d, o, idx, true, &err);
		if (!c)
			return err;
		r->pins[r->npins++] = c;
		return 0;
	}
	for (a = first; a <= last; a = b + 1) {
		uint64_t pend;
		size_t plen;
		bool own;

		if (r->npins == DATA_READ_MAX)
			return -EINVAL;
		/* Pages another read brought, or is bringing, are not asked
		 * for again. */
		c = frag_holding(d, o, idx, a);
		if (c) {
			if (c->state == CHUNK_READY)
				d->stats.mem_hits++;
			data_chunk_ref(d, c);
			r->pins[r->npins++] = c;
			b = frag_last(c);
			continue;
		}
		b = a + DATA_PIECE_PAGES - 1;
		if (b > last)
			b = last;
		pend = (uint64_t)(b + 1) * DATA_BLOCK;
		if (pend > clen)
			pend = clen;
		plen = (size_t)(pend - (uint64_t)a * DATA_BLOCK);
		own = !*owned || *owned + plen <= DATA_OWN_BYTES;
		c = entry_want(d, o, data_key_frag(idx, a, b), idx,
			       cstart + (uint64_t)a * DATA_BLOCK, plen, true,
			       true, own ? w : NULL, &err);
		if (!c)
			return err;
		/* A new fragment (no other holds page a): a request. */
		if (fill_pending)
			d->stats.fill_hedges++;
		if (c->owner == w)
			*owned += plen;
		r->pins[r->npins++] = c;
	}
	return 0;
}

/* o's disk tier id, 0 while none; see struct data_obj. */
static uint64_t obj_disk(const struct data_obj *o)
{
	return __atomic_load_n(&o->disk_id, __ATOMIC_ACQUIRE);
}

/*
 * A fragment whose chunk the disk tier holds: copy the fragment's bytes
 * from it, and keep the whole chunk in memory too (later random reads
 * nearby are then memory hits). Returns 0 on a disk hit. No lock held.
 */
static int frag_from_disk(struct data *d, struct chunk *c)
{
	struct data_obj *o = c->obj;
	size_t clen = chunk_len(d, o, c->idx);
	uint64_t cstart = c->idx * d->o.chunk_size;
	char *whole;
	int err;

	/* A spare is already faulted in; most lookups of a cold object
	 * miss, and a fresh buffer per miss would cost page faults. */
	pthread_mutex_lock(&d->lock);
	whole = data_spare_take(d, clen);
	pthread_mutex_unlock(&d->lock);
	if (!whole)
		return -ENOMEM;
	err = data_disk_read(d->o.disk, obj_disk(o), c->idx, whole, clen);
	if (err) {
		pthread_mutex_lock(&d->lock);
		data_spare_put(d, whole, clen);
		pthread_mutex_unlock(&d->lock);
		return err;
	}
	memcpy(c->buf, whole + (c->off - cstart), c->len);
	pthread_mutex_lock(&d->lock);
	if (!chunk_find(d, o->id, data_key_chunk(c->idx)) &&
	    data_make_room(d, clen)) {
		struct chunk *w = data_entry_new(d, o, data_key_chunk(c->idx),
						 c->idx, cstart);

		if (w) {
			w->len = clen;
			w->buf = whole;
			w->state = CHUNK_READY;
			d->mem_used += clen;
			list_append(&d->lru, w);
			w->in_lru = true;
			whole = NULL;
		}
	}
	pthread_mutex_unlock(&d->lock);
	free(whole);
	return 0;
}

static bool disk_may_have(const struct data_obj *o, uint64_t idx)
{
	return obj_disk(o) &&
	       (__atomic_load_n(&o->disk_map[idx / 8], __ATOMIC_RELAXED) &
		(1u << (idx % 8)));
}

/* Bytes of o's disk_map: a bit per chunk. */
static size_t obj_map_bytes(const struct data *d, const struct data_obj *o)
{
	return (size_t)(obj_nchunks(d, o) / 8 + 1);
}

/* Read into map (map_bytes long) which chunks of disk tier object id the
 * tier holds; all bits set when that cannot be read (look up all). Zeroed
 * first: the index only sets the bits of the chunks it finds. */
static void disk_map_read(struct data *d, const struct data_obj *o, uint64_t id,
			  uint8_t *map, size_t map_bytes)
{
	memset(map, 0, map_bytes);
	if (data_disk_map(d->o.disk, id, obj_nchunks(d, o), map))
		memset(map, 0xff, map_bytes);
}

/*
 * Register o's version etag with the disk tier and read which of its
 * chunks it holds, then publish disk_id. Caller holds o->disk_lock, or
 * is o's only user. No d->lock: this is SQLite work.
 */
static void obj_join_disk(struct data *d, struct data_obj *o, const char *etag)
{
	size_t map_bytes = obj_map_bytes(d, o);
	uint64_t id;

	o->disk_tried = true;
	id = data_disk_object(d->o.disk, d->o.origin_id, o->path, etag,
			      o->size, o->mtime);
	if (!id)
		return;
	if (d->known)
		bloom_add(d->known, o->path);
	o->disk_map = malloc(map_bytes);
	if (!o->disk_map)
		return;
	disk_map_read(d, o, id, o->disk_map, map_bytes);
	__atomic_store_n(&o->disk_id, id, __ATOMIC_RELEASE);
}

/*
 * The disk tier dropped o's object (id old) while o was open: join it
 * again under a new id, or leave it (id 0) when another version took its
 * place. On any other failure old stays: chunks persisted meanwhile are
 * dropped too, and the drop is reported again for another try a second
 * or two later (data_disk_rejoin). The map starts over from the new
 * object's chunks: those of old are gone. A reader meanwhile may pair
 * either id with either map; that only costs an index lookup that misses.
 * The new id when o joined again, else 0. Caller holds o->disk_lock.
 */
static uint64_t obj_rejoin_disk(struct data *d, struct data_obj *o,
				uint64_t old, const char *etag)
{
	size_t map_bytes = obj_map_bytes(d, o), i;
	uint8_t *map = NULL;
	uint64_t id = 0;
	int err;

	if (obj_disk(o) != old)
		return 0; /* another thread did it */
	err = data_disk_rejoin(d->o.disk, old, d->o.origin_id, o->path, etag,
			       o->size, o->mtime, &id);
	if (err == -EEXIST)
		__atomic_store_n(&o->disk_id, 0, __ATOMIC_RELEASE);
	if (err)
		return 0;
	/* Read aside, then copied: readers use the map without a lock. */
	map = malloc(map_bytes);
	if (map)
		disk_map_read(d, o, id, map, map_bytes);
	for (i = 0; i < map_bytes; i++)
		__atomic_store_n(&o->disk_map[i], map ? map[i] : 0xff,
				 __ATOMIC_RELAXED);
	free(map);
	__atomic_store_n(&o->disk_id, id, __ATOMIC_RELEASE);
	return id;
}

static void disk_mark(struct data_obj *o, uint64_t idx)
{
	__atomic_fetch_or(&o->disk_map[idx / 8], (uint8_t)(1u << (idx % 8)),
			  __ATOMIC_RELAXED);
}

/*
 * o joined the disk tier again under id after a clear (obj_rejoin_disk),
 * which took its chunks off the disk: write the whole chunks of it still
 * in memory again, so that the next mount need not fetch them. Here, on
 * the thread that found the drop, one at a time by direct I/O (chunk
 * buffers are aligned), each pinned like a reader's only while written
 * and looked up by index, so that d->lock is never held for long: at
 * most --max-memory, once per clear, and no more once the data path
 * stops. A chunk being fetched, or queued or being written under the old
 * id (c->obj set), is written under the new one by chunk_persist. No
 * lock held.
 */
static void obj_persist_again(struct data *d, struct data_obj *o, uint64_t id)
{
	uint64_t idx, n = obj_nchunks(d, o);
	struct chunk *c;

	for (idx = 0; idx < n; idx++) {
		pthread_mutex_lock(&d->lock);
		if (d->stop || d->persist_stop || o->stale ||
		    obj_disk(o) != id) {
			pthread_mutex_unlock(&d->lock);
			return;
		}
		c = chunk_find(d, o->id, data_key_chunk(idx));
		if (!c || c->held || !c->buf || c->obj ||
		    c->state != CHUNK_READY || c->len != chunk_len(d, o, idx)) {
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		/* A reader's pin: the buffer stays, unchanged. */
		data_chunk_ref(d, c);
		pthread_mutex_unlock(&d->lock);
		data_disk_write(d->o.disk, id, idx, c->buf, c->len, true);
		disk_mark(o, idx);
		pthread_mutex_lock(&d->lock);
		d->stats.disk_writes++;
		data_chunk_unref(d, c);
		pthread_mutex_unlock(&d->lock);
	}
}

/*
 * o's disk tier id for persisting a chunk, joining the tier first when o
 * was opened before its version was known and the origin has named one
 * since, or again when the tier dropped it while open. 0: memory only.
 * No lock held.
 */
static uint64_t obj_disk_id(struct data *d, struct data_obj *o)
{
	uint64_t id = obj_disk(o);
	char etag[STORE_ETAG_MAX];
	uint64_t rejoined = 0;

	/* Joined and not dropped, the usual case: no lock at all. */
	if (!d->o.disk || (id && !data_disk_dropped(d->o.disk, id)))
		return id;
	pthread_mutex_lock(&d->lock);
	memcpy(etag, o->etag, sizeof(etag));
	pthread_mutex_unlock(&d->lock);
	/* Without a validator a cached chunk could be of another version. */
	if (!etag[0])
		return 0;
	pthread_mutex_lock(&o->disk_lock);
	if (id)
		rejoined = obj_rejoin_disk(d, o, id, etag);
	else if (!o->disk_tried)
		obj_join_disk(d, o, etag);
	pthread_mutex_unlock(&o->disk_lock);
	if (rejoined)
		obj_persist_again(d, o, rejoined);
	return obj_disk(o);
}

/*
 * Whether a whole chunk found on the disk tier should be held for
 * splicing rather than read into memory: splicing is on, chunks are big
 * enough for a read to span few, and descriptors are left. Unlocked read
 * of nheld: the bound is loose by the number of workers.
 */
static bool hold_wanted(struct data *d)
{
	return d->o.splice && d->o.chunk_size >= DATA_HOLD_MIN_CHUNK &&
	       __atomic_load_n(&d->nheld, __ATOMIC_RELAXED) < DATA_HELD_MAX;
}

/*
 * Over the bound on held entries: close the least recently used idle one.
 * Caller holds d->lock.
 */
static void held_trim(struct data *d)
{
	struct chunk *c;

	if (d->nheld <= DATA_HELD_MAX)
		return;
	for (c = d->lru.head; c && !c->held; c = c->next)
		;
	if (!c)
		return; /* every held entry is in use */
	list_remove(&d->lru, c);
	c->in_lru = false;
	chunk_unhash(d, c);
	chunk_destroy(d, c);
}

/* [off, off + len) of o from the origin into buf, of o's version.
 * Caller holds o (a chunk's reference) but not d->lock. */
static int origin_read(struct data *d, struct data_obj *o, char *buf,
		       uint64_t off, size_t len)
{
	char etag_seen[STORE_ETAG_MAX] = "";
	char expect[STORE_ETAG_MAX];
	int err;

	pthread_mutex_lock(&d->lock);
	memcpy(expect, o->etag, sizeof(expect));
	pthread_mutex_unlock(&d->lock);
	err = d->o.store->ops->read(d->o.store, o->path, expect, buf, off, len,
				    etag_seen);
	if (err)
		return err;
	pthread_mutex_lock(&d->lock);
	/* The first answer fixes the version of an object whose listing
	 * had no validator; any later answer must agree, so one open file
	 * never mixes bytes of two versions. */
	if (!o->etag[0])
		memcpy(o->etag, etag_seen, sizeof(o->etag));
	else if (etag_seen[0] && strcmp(o->etag, etag_seen))
		err = -ESTALE;
	pthread_mutex_unlock(&d->lock);
	return err;
}

/* Fetch one entry: disk tier first, then the origin. No lock held. */
static int chunk_fetch(struct data *d, struct chunk *c, bool *from_disk)
{
	struct data_obj *o = c->obj;
	bool on_disk;

	*from_disk = false;
	on_disk = disk_may_have(o, c->idx);
	if (on_disk && !c->frag && hold_wanted(d) &&
	    !data_disk_hold(d->o.disk, obj_disk(o), c->idx, c->len,
			    &c->hold)) {
		c->held = true;
		*from_disk = true;
		return 0;
	}
	if (on_disk &&
	    !(c->frag ? frag_from_disk(d, c) :
			data_disk_read(d->o.disk, obj_disk(o), c->idx, c->buf,
				       c->len))) {
		*from_disk = true;
		return 0;
	}
	return origin_read(d, o, c->buf, c->off, c->len);
}

enum data_whole data_whole_state(struct data *d, struct data_obj *o,
				 uint64_t idx)
{
	struct chunk *c = chunk_find(d, o->id, data_key_chunk(idx));

	if (!c)
		return DATA_WHOLE_NONE;
	if (c->state != CHUNK_FAILED)
		return DATA_WHOLE_THERE;
	if (!failure_expired(d, c))
		return DATA_WHOLE_HELD;
	failure_drop(d, c);
	return DATA_WHOLE_NONE;
}

/*
 * A fragment of chunk idx failed: remember the failure for the whole
 * chunk, since the kernel retries a failed read page by page, each page a
 * fragment of its own that must get the answer at once too. Caller holds
 * d->lock.
 */
static void chunk_mark_failed(struct data *d, struct data_obj *o, uint64_t idx,
			      int err, double when)
{
	uint64_t key = data_key_chunk(idx);
	struct chunk *m = chunk_find(d, o->id, key);

	if (m)
		return; /* the chunk's own entry speaks for it */
	m = data_entry_new(d, o, key, idx, idx * d->o.chunk_size);
	if (!m)
		return;
	m->state = CHUNK_FAILED;
	m->err = err;
	m->fail_time = when;
	list_append(&d->lru, m);
	m->in_lru = true;
}

/* Write the whole chunk c, fetched from the origin, to the disk tier: by
 * direct I/O when direct. No lock held; c and c->obj are referenced.
 * False when the object has no place in the disk tier. */
static bool chunk_persist(struct data *d, struct chunk *c, bool direct)
{
	struct data_obj *o = c->obj;
	uint64_t id = obj_disk_id(d, o), now;

	if (!id)
		return false;
	data_disk_write(d->o.disk, id, c->idx, c->buf, c->len, direct);
	/* o joined the tier again meanwhile (obj_persist_again skipped c,
	 * being written here): the write under the old id is lost. Read
	 * once: another thread may set the id to 0 (another version took
	 * the object's place) between two reads. */
	now = obj_disk(o);
	if (now && now != id)
		data_disk_write(d->o.disk, now, c->idx, c->buf, c->len, direct);
	disk_mark(o, c->idx);
	return true;
}

/* A persist thread: write queued chunks until the queue is empty and
 * persist_stop is set, then return. */
static void *data_persister(void *arg)
{
	struct data *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct data_obj *o;
		struct chunk *c;
		bool written;

		while (!d->persist.head && !d->persist_stop)
			pthread_cond_wait(&d->persist_cv, &d->lock);
		c = d->persist.head;
		if (!c)
			break;
		list_remove(&d->persist, c);
		pthread_mutex_unlock(&d->lock);
		written = chunk_persist(d, c, true);
		pthread_mutex_lock(&d->lock);
		d->stats.disk_writes += written;
		d->npersist--;
		pthread_cond_signal(&d->persist_room);
		o = c->obj;
		c->obj = NULL;
		data_chunk_unref(d, c);
		data_fill_retry(d, o);
		pthread_mutex_unlock(&d->lock);
		data_obj_put(o);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/*
 * Wait, at most DATA_PERSIST_WAIT_MS, for room in the persist queue. Under
 * a cold read the CPUs are busy and the writers, which sleep on the device,
 * run late: the queue fills for a moment though the disk keeps up, and
 * writing through the page cache then costs the copy the queue is there to
 * save. A disk that is really behind still gets the fallback after the
 * wait. Caller holds d->lock.
 */
static void persist_wait_room(struct data *d)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += DATA_PERSIST_WAIT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (d->npersist >= d->persist_cap && !d->persist_stop)
		if (pthread_cond_timedwait(&d->persist_room, &d->lock,
					   &until) == ETIMEDOUT)
			break;
}

/*
 * Publish the outcome of c's fetch to its readers, queue a fetched chunk
 * for the disk tier (or write it here when the queue stays full), and drop
 * the fetcher's references (the queue takes them over). Caller holds
 * d->lock, which is dropped and retaken around a disk write or a wait.
 */
static void chunk_finish(struct data *d, struct chunk *c, int err,
			 bool from_disk)
{
	struct data_obj *o = c->obj;
	bool whole = !c->frag;

	if (err) {
		c->state = CHUNK_FAILED;
		c->err = err;
		d->stats.errors++;
		if (err == -ESTALE)
			o->stale = true;
		/* Readers arriving within the hold-down get the same answer
		 * at once (the kernel retries a failed readahead page by
		 * page, and each retry must not wait out the timeout again);
		 * later ones start a new fetch, as the origin may be back. */
		c->fail_time = mono_s();
		if (c->frag)
			chunk_mark_failed(d, o, c->idx, err, c->fail_time);
		/* A failed fill answers nobody who did not wait for it. */
		if (c->fill && c->hashed)
			chunk_unhash(d, c);
		d->mem_used -= c->len;
		chunk_drop_buf(d, c); /* by its length: a piece is recycled */
		c->len = 0;
	} else {
		c->state = CHUNK_READY;
		if (c->held) {
			/* The bytes are in the data file: no buffer. */
			d->mem_used -= c->len;
			chunk_drop_buf(d, c);
			__atomic_add_fetch(&d->nheld, 1, __ATOMIC_RELAXED);
			held_trim(d);
		}
		if (from_disk) {
			d->stats.disk_hits++;
		} else {
			d->stats.origin_reads++;
			d->stats.origin_bytes += c->len;
			if (c->frag) {
				d->stats.fragments++;
				data_fill_account(d, o, c);
			}
		}
	}
	pthread_cond_broadcast(&c->cond);
	if (!err && !from_disk && !c->frag && d->o.disk) {
		bool written;

		if (d->npersist >= d->persist_cap && d->npersisters)
			persist_wait_room(d);
		if (d->npersist < d->persist_cap && d->npersisters) {
			/* The queue takes over both references. */
			list_append(&d->persist, c);
			d->npersist++;
			pthread_cond_signal(&d->persist_cv);
			return;
		}
		/* Queue full: the device is behind. Persist here, outside
		 * the lock, through the page cache; the fetcher's reference
		 * keeps the buffer alive and it no longer changes. */
		pthread_mutex_unlock(&d->lock);
		written = chunk_persist(d, c, false);
		pthread_mutex_lock(&d->lock);
		d->stats.disk_writes += written;
		d->stats.disk_writes_buffered += written;
	}
	c->obj = NULL;
	data_chunk_unref(d, c);
	if (whole)
		data_fill_retry(d, o);
	pthread_mutex_unlock(&d->lock);
	data_obj_put(o);
	pthread_mutex_lock(&d->lock);
}

/* Moving average of a time in seconds: *avg, 0 before the first. */
static void avg_time(double *avg, double took)
{
	*avg = *avg ? 0.75 * *avg + 0.25 * took : took;
}

/* How long readers wait for a fill that starts now (see
 * DATA_FILL_WAIT_TIMES). Caller holds d->lock. */
static double fill_wait_s(const struct data *d)
{
	double s = DATA_FILL_WAIT_TIMES * d->whole_s;

	if (d->o.fill_wait_ms)
		return d->o.fill_wait_ms / 1000.0;
	return s > DATA_FILL_WAIT_MIN_MS / 1000.0 ? s :
						    DATA_FILL_WAIT_MIN_MS / 1000.0;
}

static void *data_worker(void *arg)
{
	struct data *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct chunk *c;
		bool from_disk;
		double start;
		int err;

		while (!d->stop && !d->demand.head && !d->prefetch.head)
			pthread_cond_wait(&d->work, &d->lock);
		if (d->stop)
			break;
		if (d->demand.head) {
			c = d->demand.head;
			list_remove(&d->demand, c);
		} else {
			c = d->prefetch.head;
			list_remove(&d->prefetch, c);
		}
		c->state = CHUNK_FETCHING;
		start = mono_s();
		if (c->fill) {
			c->fill_eta = start + d->whole_s;
			c->fill_due = start + fill_wait_s(d);
		}
		pthread_mutex_unlock(&d->lock);

		err = chunk_fetch(d, c, &from_disk);

		pthread_mutex_lock(&d->lock);
		if (!err && !from_disk && !c->frag)
			avg_time(&d->whole_s, mono_s() - start);
		chunk_finish(d, c, err, from_disk);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int data_new(const struct data_opts *o, struct data **out)
{
	struct data *d;
	unsigned int i;

	*out = NULL;
	/*
	 * Chunk and fragment buffers come and go at a high rate. By default
	 * glibc returns freed memory to the kernel (munmap of a 1 MiB block,
	 * MADV_DONTNEED of an arena's top) and the next allocation faults it
	 * in again, zeroed: for a 4 KiB random read that was 24 page faults
	 * and more time than the transfer. --max-memory bounds the buffers,
	 * so the process keeps what it freed.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, INT_MAX);
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->o = *o;
	if (!d->o.chunk_size)
		d->o.chunk_size = 1024 * 1024;
	if (!d->o.fetch_threads)
		d->o.fetch_threads = 16;
	if (!d->o.max_memory)
		d->o.max_memory = 256ULL * 1024 * 1024;
	if (!d->o.fill_requests) {
		uint64_t n = (uint64_t)DATA_FILL_REQUESTS_PER_MIB *
			     d->o.chunk_size / (1024 * 1024);

		d->o.fill_requests = n < DATA_FILL_REQUESTS_MIN ?
					     DATA_FILL_REQUESTS_MIN :
				     n > UINT16_MAX ? UINT16_MAX :
						      (unsigned int)n;
	}
	if (d->o.error_holddown_ms < 0)
		d->o.error_holddown_ms = 0;
	/* Sized for the most entries the budget allows, all of them 4 KiB
	 * fragments of random reads, at two per bucket: sized by chunks, a
	 * random read's lookups walked chains tens of entries long and took
	 * 5% of the daemon's time. */
	d->nbuckets = d->o.max_memory / DATA_BLOCK / 2 + 1021;
	d->table = calloc(d->nbuckets, sizeof(*d->table));
	d->ftable = calloc(d->nbuckets, sizeof(*d->ftable));
	while ((d->o.chunk_size / DATA_BLOCK) >> d->frag_shift > 64)
		d->frag_shift++;
	d->spare_cap = (size_t)(d->o.max_memory / d->o.chunk_size / 4) + 1;
	d->spare = calloc(d->spare_cap, sizeof(*d->spare));
	/* Enough for every fetch thread and as many readers at once. */
	d->piece_cap = 2 * (size_t)d->o.fetch_threads;
	d->piece = calloc(d->piece_cap, sizeof(*d->piece));
	d->threads = calloc(d->o.fetch_threads, sizeof(*d->threads));
	if (!d->table || !d->ftable || !d->threads || !d->spare ||
	    !d->piece) {
		free(d->piece);
		free(d->spare);
		free(d->ftable);
		free(d->table);
		free(d->threads);
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&d->cond_attr);
	pthread_condattr_setclock(&d->cond_attr, CLOCK_MONOTONIC);
	pthread_cond_init(&d->work, NULL);
	pthread_cond_init(&d->persist_cv, NULL);
	pthread_cond_init(&d->persist_room, &d->cond_attr);
	d->next_obj_id = 1;
	if (d->o.disk)
		d->known = data_disk_known_filter(d->o.disk, d->o.origin_id);
	d->persist_cap = DATA_PERSIST_MAX;
	if (d->persist_cap > d->o.max_memory / d->o.chunk_size / 4)
		d->persist_cap = (unsigned int)(d->o.max_memory /
						d->o.chunk_size / 4);
	for (i = 0; d->o.disk && d->persist_cap &&
		    i < DATA_PERSIST_THREADS; i++) {
		if (pthread_create(&d->persisters[i], NULL, data_persister,
				   d))
			break; /* fewer writers; none: fetchers write */
		d->npersisters = i + 1;
	}
	for (i = 0; i < d->o.fetch_threads; i++) {
		int rc = pthread_create(&d->threads[i], NULL, data_worker, d);

		if (rc) {
			d->nthreads = i;
			data_free(d);
			return -rc;
		}
	}
	d->nthreads = d->o.fetch_threads;
	*out = d;
	return 0;
}

void data_free(struct data *d)
{
	unsigned int i;
	size_t b;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->work);
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	/* No fetcher queues a chunk now: the writers drain the queue. */
	pthread_mutex_lock(&d->lock);
	d->persist_stop = true;
	pthread_cond_broadcast(&d->persist_cv);
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < d->npersisters; i++)
		pthread_join(d->persisters[i], NULL);
	/* Queued chunks still hold object references. */
	while (d->demand.head || d->prefetch.head) {
		struct chunk_list *l = d->demand.head ? &d->demand : &d->prefetch;
		struct chunk *c = l->head;

		list_remove(l, c);
		data_obj_put(c->obj);
		c->obj = NULL;
	}
	for (b = 0; b < d->nbuckets; b++) {
		while (d->table[b]) {
			struct chunk *c = d->table[b];

			d->table[b] = c->hnext;
			chunk_destroy(d, c);
		}
	}
	while (d->nspare)
		free(d->spare[--d->nspare]);
	free(d->spare);
	while (d->npiece)
		free(d->piece[--d->npiece]);
	free(d->piece);
	data_pool_fini(&d->pool);
	free(d->ftable);
	free(d->table);
	free(d->threads);
	bloom_free(d->known);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->persist_cv);
	pthread_cond_destroy(&d->persist_room);
	pthread_condattr_destroy(&d->cond_attr);
	free(d);
}

int data_obj_new(struct data *d, const char *path, uint64_t size,
		 const char *etag, int64_t mtime, struct data_obj **out)
{
	struct data_obj *o;

	*out = NULL;
	/* Table keys hold a chunk's index in 32 bits (data_key_chunk). */
	if (size / d->o.chunk_size >= UINT32_MAX)
		return -EFBIG;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->path = strdup(path);
	if (!o->path) {
		free(o);
		return -ENOMEM;
	}
	o->d = d;
	o->refs = 1;
	o->fill_next = DATA_NO_FILL;
	o->size = size;
	o->mtime = mtime;
	snprintf(o->etag, sizeof(o->etag), "%s", etag ? etag : "");
	pthread_mutex_init(&o->disk_lock, NULL);
	/* The disk tier keys chunks by validator; without one, a cached
	 * chunk could belong to another version, so such objects stay in
	 * memory only until an answer names the version. */
	if (d->o.disk && o->etag[0])
		obj_join_disk(d, o, o->etag);
	pthread_mutex_lock(&d->lock);
	o->id = d->next_obj_id++;
	pthread_mutex_unlock(&d->lock);
	*out = o;
	return 0;
}

struct data_obj *data_obj_get(struct data_obj *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
	return o;
}

void data_obj_put(struct data_obj *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL))
		return;
	pthread_mutex_destroy(&o->disk_lock);
	free(o->disk_map);
	free(o->frag);
	free(o->path);
	free(o);
}

bool data_version_needed(struct data *d, const char *path)
{
	return d->o.disk && (!d->known || bloom_maybe(d->known, path)) &&
	       data_disk_known(d->o.disk, d->o.origin_id, path);
}

uint64_t data_obj_size(const struct data_obj *o)
{
	return o->size;
}

const char *data_obj_path(const struct data_obj *o)
{
	return o->path;
}

uint64_t data_obj_id(const struct data_obj *o)
{
	return o->id;
}

bool data_obj_version(struct data_obj *o, char *out)
{
	struct data *d = o->d;

	pthread_mutex_lock(&d->lock);
	memcpy(out, o->etag, STORE_ETAG_MAX);
	pthread_mutex_unlock(&d->lock);
	return out[0] != 0;
}

void data_obj_set_stale(struct data_obj *o)
{
	struct data *d = o->d;

	pthread_mutex_lock(&d->lock);
	o->stale = true;
	pthread_mutex_unlock(&d->lock);
}

bool data_obj_stale(const struct data_obj *o)
{
	struct data *d = o->d;
	bool stale;

	pthread_mutex_lock(&d->lock);
	stale = o->stale;
	pthread_mutex_unlock(&d->lock);
	return stale;
}

void data_wait_init(struct data_wait *w, struct data *d)
{
	w->d = d;
	w->interrupted = false;
	w->chunk = NULL;
	cancel_init(&w->cancel);
}

void data_wait_fini(struct data_wait *w)
{
	cancel_destroy(&w->cancel);
}

void data_wait_interrupt(struct data_wait *w)
{
	struct data *d = w->d;

	pthread_mutex_lock(&d->lock);
	w->interrupted = true;
	if (w->chunk)
		pthread_cond_broadcast(&((struct chunk *)w->chunk)->cond);
	pthread_mutex_unlock(&d->lock);
	/* After interrupted is set: a request it ends finds the flag. */
	cancel_fire(&w->cancel);
}

/*
 * The sequential stream a read of [off, off + len) continues: one that
 * stopped near off and that the read moves forward (readahead may overlap
 * a little, and FUSE threads may take requests a little out of order).
 * The slack is small on purpose: a random read that lands just past a
 * stream's end would otherwise cost a whole chunk and a prefetch. NULL:
 * the read starts no known stream. Caller holds d->lock.
 */
static struct data_stream *stream_find(struct data_obj *o, uint64_t off,
				       size_t len)
{
	unsigned int i;

	for (i = 0; i < DATA_STREAMS; i++) {
		struct data_stream *t = &o->streams[i];

		if (t->used && off <= t->next_off + DATA_STREAM_SLACK &&
		    off + len > t->next_off)
			return t;
	}
	return NULL;
}

/*
 * Whether s, after a further read of len bytes, counts as a stream: it
 * read DATA_STREAM_PROOF in order, or everything from its start to the
 * end of o.
 */
static bool stream_proven(const struct data *d, const struct data_obj *o,
			  const struct data_stream *s, size_t len)
{
	uint64_t need = d->o.chunk_size > DATA_STREAM_PROOF ?
				d->o.chunk_size : DATA_STREAM_PROOF;

	if (o->size > s->start && need > o->size - s->start)
		need = o->size - s->start;
	return s->seq + len >= need;
}

/*
 * Record a read in its stream s, or in a new one when s is NULL, and
 * queue chunks ahead of a continuing stream once it is proven
 * (stream_proven): DATA_MIN_WINDOW of them at first, twice as many after
 * a read of the stream had to wait for its chunk (data_read marks the
 * stream starved), up to DATA_MAX_WINDOW, and half as many once it has
 * read DATA_CALM_WINDOWS windows without a wait. A read that continues
 * none starts a stream with no prefetch, so random access costs nothing
 * extra. Caller holds d->lock.
 */
static void stream_advance(struct data *d, struct data_obj *o,
			   struct data_stream *s, uint64_t off, size_t len)
{
	uint64_t cs = d->o.chunk_size, last, idx, end_idx;
	unsigned int i;
	int err;

	d->tick++;
	if (!s) {
		s = &o->streams[0];
		for (i = 1; i < DATA_STREAMS; i++)
			if (o->streams[i].used < s->used)
				s = &o->streams[i];
		memset(s, 0, sizeof(*s));
		s->next_off = off + len;
		s->used = d->tick;
		s->seq = len;
		s->start = off;
		return;
	}
	s->next_off = off + len;
	s->used = d->tick;
	s->seq += len;
	if (!stream_proven(d, o, s, 0))
		return; /* not yet a stream worth reading ahead for */
	if (!s->window && d->o.disk) {
		/*
		 * Just proven. What it read so far came as exact ranges,
		 * which live in memory only: fetch those chunks whole too,
		 * so that the disk tier has the stream's every chunk and a
		 * later mount reads the file without the origin.
		 */
		for (idx = s->start / cs; idx < off / cs; idx++)
			data_chunk_want(d, o, idx, false, &err);
	}
	if (!s->window) {
		s->window = DATA_MIN_WINDOW;
	} else if (s->starved) {
		s->window *= 2;
		if (s->window > DATA_MAX_WINDOW)
			s->window = DATA_MAX_WINDOW;
	} else if (s->window > DATA_MIN_WINDOW &&
		   s->calm >= (uint64_t)s->window * cs * DATA_CALM_WINDOWS) {
		s->window /= 2;
		s->calm = 0;
	}
	s->starved = false;
	if (s->window > d->stats.window_max)
		d->stats.window_max = s->window;
	if (!o->size)
		return;
	last = (o->size - 1) / cs;
	idx = (off + len) / cs;
	if (s->ahead > idx)
		idx = s->ahead;
	end_idx = (off + len) / cs + s->window;
	if (end_idx > last)
		end_idx = last;
	for (; idx <= end_idx; idx++) {
		if (d->mem_used + cs > d->o.max_memory && !d->lru.head)
			break;
		data_chunk_want(d, o, idx, false, &err);
	}
	s->ahead = idx;
}

/*
 * A reader's own fetch of fragment c was interrupted: it goes to the
 * workers, since a signal ends the wait, never the fetch, and the retry
 * that follows the signal finds it in flight or done. The origin was
 * slower than the reader's signals, and the kernel retries a failed
 * readahead page by page: the workers fetch the whole chunk too, so the
 * retries wait on it instead of each starting a request of its own that
 * the next signal ends again. Caller holds d->lock.
 */
static void frag_own_interrupted(struct data *d, struct chunk *c)
{
	int e;

	entry_to_workers(d, c);
	data_chunk_want(d, c->obj, c->idx, false, &e);
}

/*
 * Fetch the fragment c that reader w owns, on w's thread. An interrupt
 * ends the request at once (w->cancel): frag_own_interrupted. Caller
 * holds d->lock, dropped meanwhile.
 */
static void frag_fetch_own(struct data *d, struct chunk *c,
			   struct data_wait *w)
{
	bool from_disk;
	double start;
	int err;

	c->owner = NULL;
	pthread_mutex_unlock(&d->lock);
	cancel_set_current(&w->cancel);
	start = mono_s();
	err = chunk_fetch(d, c, &from_disk);
	cancel_set_current(NULL);
	pthread_mutex_lock(&d->lock);
	if (!err && !from_disk)
		avg_time(&d->page_s, mono_s() - start);
	if (err == -EINTR)
		frag_own_interrupted(d, c);
	else
		chunk_finish(d, c, err, from_disk);
}

/*
 * Whether fragments a and b, both reader w's, are best fetched by one
 * request (frag_fetch_pair): b starts where a ends, in the next chunk (a
 * read across a chunk boundary, such as an mmap fault's read-around),
 * they fit in a piece buffer, and neither chunk may be on disk. Caller
 * holds d->lock.
 */
static bool frag_pair(const struct data *d, const struct chunk *a,
		      const struct chunk *b, const struct data_wait *w)
{
	return a->owner == w && b->owner == w && a->frag && b->frag &&
	       a->obj == b->obj && b->idx == a->idx + 1 &&
	       a->off + a->len == b->off &&
	       a->len + b->len <= DATA_PIECE_BYTES &&
	       !disk_may_have(a->obj, a->idx) &&
	       !disk_may_have(b->obj, b->idx);
}

/*
 * Fetch the fragments a and b of frag_pair() with one request, into a
 * piece buffer, then each its part: the copy costs less than a second
 * round trip to the origin. As frag_fetch_own otherwise, for both. Caller
 * holds d->lock, dropped meanwhile.
 */
static void frag_fetch_pair(struct data *d, struct chunk *a, struct chunk *b,
			    struct data_wait *w)
{
	struct chunk *both[2] = { a, b };
	double start;
	char *tmp;
	int err, i;

	tmp = frag_buf_take(d, DATA_PIECE_BYTES);
	if (!tmp) {
		frag_fetch_own(d, a, w);
		frag_fetch_own(d, b, w);
		return;
	}
	a->owner = NULL;
	b->owner = NULL;
	pthread_mutex_unlock(&d->lock);
	cancel_set_current(&w->cancel);
	start = mono_s();
	err = origin_read(d, a->obj, tmp, a->off, a->len + b->len);
	cancel_set_current(NULL);
	if (!err) {
		memcpy(a->buf, tmp, a->len);
		memcpy(b->buf, tmp + a->len, b->len);
	}
	pthread_mutex_lock(&d->lock);
	frag_buf_put(d, tmp, DATA_PIECE_BYTES);
	if (!err)
		avg_time(&d->page_s, mono_s() - start);
	for (i = 0; i < 2; i++) {
		if (err == -EINTR)
			frag_own_interrupted(d, both[i]);
		else
			chunk_finish(d, both[i], err, false);
	}
	if (!err) {
		/* One request, which chunk_finish counted twice. */
		d->stats.origin_reads--;
		d->stats.fragments--;
		d->stats.pair_reads++;
	}
}

int data_read(struct data *d, struct data_obj *o, uint64_t off, size_t len,
	      struct data_wait *w, struct data_read *r)
{
	uint64_t cs = d->o.chunk_size, idx, first, last;
	struct data_stream *stream;
	size_t owned = 0;
	bool exact, waited = false, ahead, no_fill = false, refill = false;
	bool fill_waited = false;
	uint64_t pos;
	int err = 0, i;

	/* The counts only: every array entry below one is written before it
	 * is read, and zeroing the whole (about 10 KiB of arrays) was half a
	 * percent of the daemon's CPU on cold random 4 KiB reads. */
	r->niov = 0;
	r->nfd = 0;
	r->npins = 0;
	r->bytes = 0;
	if (off >= o->size || !len)
		return 0;
	if (len > o->size - off)
		len = (size_t)(o->size - off);
	first = off / cs;
	last = (off + len - 1) / cs;
	if (last - first + 1 > DATA_READ_MAX)
		return -EINVAL;

	pthread_mutex_lock(&d->lock);
	if (o->stale) {
		err = -ESTALE;
		goto out_unlock;
	}
	stream = stream_find(o, off, len);
	/*
	 * Reads that continue no stream fetch exactly the pages they ask
	 * for, and so does a stream until it is proven (stream_proven):
	 * before that it is only a guess (an mmap fault's
	 * read-around and the readahead that follows it look like one).
	 * Streams then fetch whole chunks.
	 */
	exact = !stream || !stream_proven(d, o, stream, len);
	/* Whether this read's chunks had a window fetched ahead for them: a
	 * wait of the read that proves a stream says nothing of its size. */
	ahead = !exact && stream->window;
again:
	for (idx = first; idx <= last; idx++) {
		struct chunk *c;

		if (exact) {
			err = exact_want(d, o, idx, off, len, w, &owned,
					 no_fill, r);
			if (err)
				goto out_unpin;
			continue;
		}
		c = data_chunk_want(d, o, idx, true, &err);
		if (!c)
			goto out_unpin;
		r->pins[r->npins++] = c;
	}
	if (!no_fill)
		stream_advance(d, o, stream, off, len);
	for (i = 0; i < r->npins; i++) {
		if (((struct chunk *)r->pins[i])->owner != w)
			continue;
		if (i + 1 < r->npins &&
		    frag_pair(d, r->pins[i], r->pins[i + 1], w)) {
			frag_fetch_pair(d, r->pins[i], r->pins[i + 1], w);
			i++;
			continue;
		}
		frag_fetch_own(d, r->pins[i], w);
	}
	/*
	 * Each pin holds the byte at pos, the first one the pins before it
	 * did not give, and gives from there: fragments may overlap (one
	 * read asked for pages 10-20, another for 5-15), and a reply must
	 * carry each byte once, or it is longer than the read and the
	 * kernel fails it with EIO.
	 */
	pos = off;
	for (i = 0; i < r->npins; i++) {
		struct chunk *c = r->pins[i];
		uint64_t from = pos - c->off;
		uint64_t to = off + len - c->off;

		while ((c->state == CHUNK_QUEUED || c->state == CHUNK_FETCHING) &&
		       !w->interrupted && !d->aborted) {
			w->chunk = c;
			waited = true;
			/* A started fill (exact_want), until its deadline:
			 * then the read starts again without it. A read that
			 * needs the whole chunk waits for it as for any, and
			 * is the only one that waits for a queued fill. */
			if (!exact || !c->fill || c->state != CHUNK_FETCHING ||
			    no_fill || exact_needs_whole(c->len, from, to)) {
				pthread_cond_wait(&c->cond, &d->lock);
				continue;
			}
			if (!fill_waited) {
				fill_waited = true;
				d->stats.fill_waits++;
			}
			if (cond_wait_until(&c->cond, &d->lock, c->fill_due) ==
				    ETIMEDOUT &&
			    c->state == CHUNK_FETCHING) {
				d->stats.fill_stalls++;
				refill = true;
				break;
			}
		}
		w->chunk = NULL;
		if (refill)
			goto out_unpin;
		if (c->state == CHUNK_FAILED) {
			err = c->err;
			/* An exact read that waited for a fill asks for its
			 * own pages instead: the fill's failure is not the
			 * read's (a stale object's is). */
			refill = exact && c->fill && !no_fill &&
				 err != -ESTALE;
			goto out_unpin;
		}
		if (c->state != CHUNK_READY) {
			err = d->aborted && !w->interrupted ? -EIO : -EINTR;
			goto out_unpin;
		}
		if (to > c->len)
			to = c->len;
		if (stream && !c->frag && to == c->len)
			c->drop_behind = true;
		if (c->held) {
			r->iov[r->niov].iov_base = NULL;
			r->fd[r->niov] = c->hold.fd;
			r->pos[r->niov] = c->hold.off + from;
			r->nfd++;
		} else {
			r->iov[r->niov].iov_base = c->buf + from;
			r->fd[r->niov] = -1;
		}
		r->iov[r->niov].iov_len = (size_t)(to - from);
		r->bytes += (size_t)(to - from);
		r->niov++;
		pos = c->off + to;
	}
	if (r->nfd)
		d->stats.spliced++;
	/*
	 * Whether the stream's reader caught up with what was fetched for it
	 * (its window grows at its next read) or not. Unless the slot went
	 * to another stream while the lock was dropped.
	 */
	if (ahead && stream->next_off == off + len) {
		if (waited) {
			stream->starved = true;
			stream->calm = 0;
		} else {
			stream->calm += len;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return 0;

out_unpin:
	for (i = 0; i < r->npins; i++) {
		struct chunk *c = r->pins[i];

		/* Never fetched here: the workers take it over. */
		if (c->owner == w)
			entry_to_workers(d, c);
		data_chunk_unref(d, c);
	}
	r->npins = 0;
	r->niov = 0;
	r->bytes = 0;
	/* A fill given up on for an object that went stale meanwhile: not
	 * 0 bytes, which the kernel would take for the end of the file. */
	if (refill && o->stale && !err)
		err = -ESTALE;
	if (refill && !o->stale) {
		refill = false;
		no_fill = true;
		owned = 0;
		err = 0;
		goto again;
	}
out_unlock:
	pthread_mutex_unlock(&d->lock);
	return err;
}

void data_read_release(struct data *d, struct data_read *r)
{
	int i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; i < r->npins; i++)
		data_chunk_unref(d, r->pins[i]);
	pthread_mutex_unlock(&d->lock);
	r->npins = 0;
}

void data_abort(struct data *d)
{
	size_t b;

	pthread_mutex_lock(&d->lock);
	d->aborted = true;
	for (b = 0; b < d->nbuckets; b++) {
		struct chunk *c;

		for (c = d->table[b]; c; c = c->hnext)
			pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&d->lock);
}

void data_get_stats(struct data *d, struct data_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->stats;
	pthread_mutex_unlock(&d->lock);
}
