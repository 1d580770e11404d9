/*
 * The disk cache's background thread: it makes queued chunk writes durable
 * and indexes them (one fdatasync per object file and one transaction per
 * batch), flushes the access times that reads record in memory, and evicts
 * least-recently-used chunks until the cache is under its byte limit and
 * the file system above its free-space floor. Reads and writes never wait
 * for eviction. It has its own SQLite connection (cache.bg).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache-int.h"
#include "common/log.h"

/* Period of a pass with nothing asked for: access times, other processes. */
#define EVICT_PERIOD_S 1
/*
 * The longest period after passes that found nothing to do. Only the
 * free-space floor may then be looked at late: space that other programs
 * take while the mount is idle is given back within this, and at once
 * when the cache is used again (cache_evict_nudge_locked).
 */
#define EVICT_IDLE_PERIOD_S 32
/* Chunks deleted per transaction, so readers and writers get turns. */
#define EVICT_BATCH 64

/* Index the chunks queued so far; thread only. Whether there were any. */
static bool evict_flush_writes(struct cache *c)
{
	struct cache_pending batch[CACHE_PENDING_MAX];
	bool ok[CACHE_PENDING_MAX];
	uint64_t bytes = 0, indexed = 0;
	size_t n;
	int err;

	pthread_mutex_lock(&c->lock);
	n = c->npending;
	memcpy(batch, c->pending, n * sizeof(batch[0]));
	pthread_mutex_unlock(&c->lock);
	if (!n)
		return false;

	/*
	 * Durable first: only then may the index say present. One fdatasync
	 * per object file writes it all out, but a writeback error is
	 * reported once to each open file, and never to a file opened after
	 * someone (another process too) was told of it: only the file a
	 * chunk was written through is sure to learn that it was lost. The
	 * others are asked with sync_file_range, which reports the same way
	 * without the device cache flush that a second fdatasync costs.
	 */
	for (size_t i = 0; i < n; i++) {
		const char *what = "fdatasync";
		size_t j;
		int e;

		for (j = 0; j < i; j++)
			if (batch[j].ref.obj == batch[i].ref.obj)
				break;
		if (j == i) {
			e = fdatasync(batch[i].fd);
		} else if (ok[j]) {
			what = "sync_file_range";
			e = sync_file_range(batch[i].fd, 0, 0,
					    SYNC_FILE_RANGE_WAIT_AFTER);
		} else {
			ok[i] = false; /* logged for the first */
			continue;
		}
		ok[i] = e == 0;
		if (!ok[i]) {
			err = errno;
			if (err == ENOSPC || err == EDQUOT)
				cache_warn_nospc(c, what, err);
			else
				log_warn("cache: %s of object %" PRIu64 ": %s",
					 what, batch[i].ref.obj, strerror(err));
		}
	}
	err = cache_index_begin(&c->bg);
	for (size_t i = 0; !err && i < n; i++) {
		int e;

		if (!ok[i])
			continue;
		e = cache_index_chunk_put(&c->bg, &batch[i].ref,
					  batch[i].atime);
		if (e == -ENOENT) { /* object dropped meanwhile */
			ok[i] = false;
			if (!c->bg.layout_lost)
				cache_note_dropped(c, batch[i].ref.obj);
		} else
			err = e;
	}
	if (!err)
		err = cache_index_commit(&c->bg);
	else
		cache_index_rollback(&c->bg);
	if (c->bg.layout_lost)
		__atomic_store_n(&c->layout_lost, true, __ATOMIC_RELAXED);
	if (err == -ENOSPC)
		cache_warn_nospc(c, "index", -err);
	for (size_t i = 0; i < n; i++) {
		if (err || !ok[i])
			/* Not our row: another process's commit of the
			 * chunk, or an earlier one, keeps its bytes. */
			cache_write_undo(c, batch[i].fd, batch[i].ref.obj,
					 batch[i].ref.idx);
		else
			indexed += batch[i].ref.len;
		bytes += batch[i].ref.len;
		close(batch[i].fd);
	}

	/*
	 * Only now does the batch leave the bytes in flight, the indexed
	 * ones counted as such first: others see them twice for a moment,
	 * never not at all (cache-share.c).
	 */
	cache_share_indexed(c, indexed);
	/* Writers only append, so our batch is still at the front. */
	pthread_mutex_lock(&c->lock);
	c->inflight_bytes -= bytes;
	cache_share_sub(c, bytes);
	c->npending -= n;
	memmove(c->pending, c->pending + n,
		c->npending * sizeof(c->pending[0]));
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
	return true;
}

/* Write the in-memory access times to the index; thread only. Whether
 * there were any. */
static bool evict_flush_touches(struct cache *c)
{
	struct cache_touch *t;
	size_t n;
	int err;

	pthread_mutex_lock(&c->lock);
	n = c->ntouch;
	t = malloc(n * sizeof(*t) + 1);
	if (t)
		memcpy(t, c->touch, n * sizeof(*t));
	/* Without memory the times are lost: LRU gets slightly less exact. */
	c->ntouch = 0;
	pthread_mutex_unlock(&c->lock);
	if (!t || !n)
		goto out_free;
	err = cache_index_begin(&c->bg);
	for (size_t i = 0; !err && i < n; i++)
		err = cache_index_chunk_touch(&c->bg, t[i].obj, t[i].idx,
					      t[i].atime);
	if (!err)
		err = cache_index_commit(&c->bg);
	else
		cache_index_rollback(&c->bg);
out_free:
	free(t);
	return n > 0;
}

/* Delete the chosen rows in one transaction; deleted[] says which went. */
static int evict_rows(struct cache *c, const struct cache_chunk_ref *lru,
		      const bool *chosen, bool *deleted, size_t n)
{
	int err;

	err = cache_index_begin(&c->bg);
	for (size_t i = 0; i < n; i++) {
		int e = -ENOENT;

		if (!err && chosen[i])
			e = cache_index_chunk_del(&c->bg, lru[i].obj,
						  lru[i].idx, lru[i].crc);
		deleted[i] = e == 0;
		if (e && e != -ENOENT)
			err = e;
	}
	if (!err)
		return cache_index_commit(&c->bg);
	cache_index_rollback(&c->bg);
	return err;
}

/*
 * Evict up to EVICT_BATCH least recently used chunks of those after *pos,
 * about goal (> 0) bytes; add what was freed to *freed and move *pos to
 * the last chunk looked at. Returns the number looked at (0: none left)
 * or -errno.
 */
static int evict_batch(struct cache *c, struct cache_chunk_ref *pos,
		       uint64_t goal, uint64_t *freed)
{
	struct cache_chunk_ref lru[EVICT_BATCH];
	bool chosen[EVICT_BATCH], deleted[EVICT_BATCH], punched = false;
	int fds[EVICT_BATCH];
	uint64_t want = 0;
	size_t i, n;
	int err, nd = 0;

	err = cache_index_lru(&c->bg, pos, lru, EVICT_BATCH, &n);
	if (err || !n)
		return err;
	/* Until the chosen would free goal (at most: a row may have gone). */
	for (i = 0; i < n && want < goal; i++) {
		fds[i] = cache_store_open(c, lru[i].obj, O_RDWR);
		/*
		 * Locked: being rewritten or checked by a reader, leave it.
		 * No data file: nothing to punch, only the row to drop.
		 */
		if (fds[i] >= 0)
			chosen[i] = !cache_store_lock(c, fds[i], lru[i].idx,
						      F_WRLCK, false);
		else
			chosen[i] = fds[i] == -ENOENT;
		if (chosen[i])
			want += lru[i].len;
	}
	/* The rows after are the next batch's, should this one fall short. */
	n = i;
	*pos = lru[n - 1];
	/*
	 * Held as bytes in flight from before the rows go until the holes
	 * are punched: a writer that reads the index's totals in between
	 * (cache_reserve) would otherwise take room still on disk, and the
	 * directory would pass the limit by a batch for that moment.
	 */
	cache_inflight_add(c, want);
	err = evict_rows(c, lru, chosen, deleted, n);
	if (err == -ENOSPC) {
		/*
		 * On a full disk the index cannot grow its journal: give the
		 * data back first, still under the locks (a reader of these
		 * chunks now fails the checksum and misses), then retry.
		 */
		for (i = 0; i < n; i++)
			if (chosen[i] && fds[i] >= 0)
				cache_store_punch(c, fds[i], lru[i].obj,
						  lru[i].idx);
		punched = true;
		err = evict_rows(c, lru, chosen, deleted, n);
	}
	/*
	 * Otherwise rows first, holes after, under the range lock: a reader
	 * that looked a chunk up before the commit reads zeros, fails the
	 * checksum, finds the row gone and reports a miss.
	 */
	for (i = 0; i < n; i++) {
		if (!err && deleted[i]) {
			if (!punched && fds[i] >= 0)
				cache_store_punch(c, fds[i], lru[i].obj,
						  lru[i].idx);
			*freed += lru[i].len;
			nd++;
		}
		if (fds[i] >= 0)
			close(fds[i]);
	}
	cache_inflight_sub(c, want);
	if (nd)
		log_debug("cache: evicted %d chunks", nd);
	return err ? err : (int)n;
}

/* Evict until under the limit and above the floor; thread only. Whether
 * it was asked for room or freed any. */
static bool evict_shrink(struct cache *c)
{
	uint64_t max, floor, chunks, bytes, avail, need, freed = 0, headroom;
	uint64_t inflight, total, gen, seen = 0;
	struct cache_chunk_ref pos = { .atime = INT64_MIN };
	bool low, want_room;
	int n, err;

	/* A maintenance handle's limits are defaults, not the mounts'. */
	if (c->no_evict)
		return false;
	pthread_mutex_lock(&c->lock);
	max = c->max_bytes;
	floor = c->min_free_bytes;
	want_room = c->want_room;
	c->want_room = false;
	pthread_mutex_unlock(&c->lock);
	/* A write was refused at the limit: free an eighth of the cache (at
	 * least a few chunks) so that new chunks replace the least recently
	 * used ones, in batches rather than one refusal at a time. */
	headroom = max / 8;
	if (headroom < 4ull * c->chunk_size)
		headroom = 4ull * c->chunk_size;
	if (headroom > max / 2)
		headroom = max / 2;

	/*
	 * Our own chunks written and not yet indexed take room too: none of
	 * them is in the index yet, since this thread indexes them. Other
	 * processes' are left out: a batch of theirs is in the index from
	 * its commit and in their slot until just after, so counting both
	 * here could free a batch's worth for nothing. The writers'
	 * reservations (cache_reserve) keep the directory within the limit;
	 * this pass only makes room, and a writer refused while others'
	 * chunks are in flight finds it once those are indexed.
	 */
	if (cache_index_totals(&c->bg, NULL, &chunks, &bytes) < 0)
		return want_room;
	pthread_mutex_lock(&c->lock);
	inflight = c->inflight_bytes;
	pthread_mutex_unlock(&c->lock);
	total = bytes + inflight;
	if (cache_store_fs_free(c->dir, &avail, NULL) < 0)
		avail = UINT64_MAX;
	/*
	 * The need is measured once per pass: space that other programs
	 * take meanwhile is answered by the next pass, not by emptying the
	 * cache in one go.
	 */
	need = total > max ? total - max : 0;
	if (want_room && total + headroom > max &&
	    total + headroom - max > need)
		need = total + headroom - max;
	if (floor > avail && floor - avail > need)
		need = floor - avail;

	/*
	 * Oldest first, walking past the chunks that cannot go now (held by
	 * a reader, being written): a later pass tries them again. No more
	 * rows are looked at than the index held when the pass began, so
	 * rows that others touch or add meanwhile cannot keep it going.
	 */
	while (freed < need && seen < chunks) {
		n = evict_batch(c, &pos, need - freed, &freed);
		if (n <= 0)
			break;
		seen += (uint64_t)n;
	}

	/* Still under the floor with nothing left to evict: stop caching. */
	if (cache_store_fs_free(c->dir, &avail, NULL) < 0)
		avail = UINT64_MAX;
	low = floor && avail < floor;
	gen = cache_share_gen(c);
	err = cache_index_totals(&c->bg, NULL, NULL, &bytes);
	pthread_mutex_lock(&c->lock);
	c->low_space = low;
	/* Read afresh each pass: clears, verifies and other processes'
	 * evictions all show up here. */
	if (!err) {
		c->idx_bytes = bytes;
		c->idx_gen = gen;
	}
	pthread_mutex_unlock(&c->lock);
	return want_room || freed > 0;
}

static void *evict_main(void *arg)
{
	struct cache *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct timespec ts;
		uint64_t target;
		bool stopping, busy;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->period_s;
		while (!c->stop && !c->npending && !c->nudged &&
		       c->pass_done == c->pass_requested &&
		       c->ntouch < CACHE_TOUCH_MAX / 2) {
			if (pthread_cond_timedwait(&c->wake, &c->lock, &ts) ==
			    ETIMEDOUT)
				break;
		}
		c->nudged = false;
		target = c->pass_requested;
		stopping = c->stop;
		pthread_mutex_unlock(&c->lock);

		/* Each of the three, not the first that finds work. */
		busy = evict_flush_writes(c);
		busy = evict_flush_touches(c) || busy;
		busy = evict_shrink(c) || busy;

		pthread_mutex_lock(&c->lock);
		busy = busy || target > c->pass_done;
		if (busy)
			c->period_s = EVICT_PERIOD_S;
		else if (c->period_s < EVICT_IDLE_PERIOD_S)
			c->period_s *= 2;
		if (target > c->pass_done)
			c->pass_done = target;
		pthread_cond_broadcast(&c->done);
		if (stopping)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void cache_evict_nudge_locked(struct cache *c)
{
	if (c->period_s <= EVICT_PERIOD_S)
		return;
	c->period_s = EVICT_PERIOD_S;
	c->nudged = true;
	pthread_cond_signal(&c->wake);
}

int cache_evict_start(struct cache *c)
{
	int err;

	err = cache_index_open(&c->bg, c->index_path);
	if (err)
		return err;
	c->bg.chunk_size = c->chunk_size;
	/* The first pass applies the limits at once. */
	c->pass_requested = 1;
	c->period_s = EVICT_PERIOD_S;
	err = -pthread_create(&c->thread, NULL, evict_main, c);
	if (err) {
		cache_index_close(&c->bg);
		return err;
	}
	c->thread_started = true;
	return 0;
}

void cache_evict_stop(struct cache *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_broadcast(&c->wake);
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->thread_started = false;
	cache_index_close(&c->bg);
}

void cache_evict_kick(struct cache *c, bool wait)
{
	uint64_t want;

	pthread_mutex_lock(&c->lock);
	want = ++c->pass_requested;
	pthread_cond_signal(&c->wake);
	while (wait && !c->stop && c->pass_done < want)
		pthread_cond_wait(&c->done, &c->lock);
	pthread_mutex_unlock(&c->lock);
}
