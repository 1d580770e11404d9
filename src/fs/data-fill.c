/*
 * Random readers' chunks made whole for the disk tier. A random reader
 * fetches pages, which live in memory only; once a chunk's pages have cost
 * the origin as much as the chunk (data_fill_account), the chunk is put
 * together from them or fetched whole, and persisted like any chunk.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fs/data-int.h"

/*
 * Probes of the chunk table that frag_cover() may spend: a chunk read a
 * page at a time takes one per page (256 for 1 MiB chunks).
 */
#define DATA_COVER_PROBES 1024

/*
 * Find ready fragments of chunk idx of o that together hold all of it,
 * into parts (room for one per page), walking from the chunk's first page:
 * at each page not yet covered, a fragment that starts there, the
 * shortest first, since a random reader's fragments are single pages.
 * Fragments that start elsewhere (unaligned records) are not found; the
 * chunk is fetched instead. Returns how many, 0 when they do not cover it
 * or the probe budget ran out. Caller holds d->lock.
 */
static unsigned int frag_cover(struct data *d, const struct data_obj *o,
			       uint64_t idx, size_t clen, struct chunk **parts)
{
	unsigned int npages = (unsigned int)((clen + DATA_BLOCK - 1) /
					     DATA_BLOCK);
	unsigned int p = 0, n = 0, probes = 0;

	while (p < npages) {
		unsigned int e, emax = p + DATA_PIECE_PAGES - 1;
		struct chunk *f = NULL;

		if (emax > npages - 1)
			emax = npages - 1;
		for (e = p; e <= emax; e++) {
			if (++probes > DATA_COVER_PROBES)
				return 0;
			f = chunk_find(d, o->id, data_key_frag(idx, p, e));
			if (f && f->state == CHUNK_READY && f->buf)
				break;
			f = NULL;
		}
		if (!f)
			return 0;
		parts[n++] = f;
		p = e + 1;
	}
	return n;
}

/*
 * Put chunk idx of o together from fragments in memory that cover it
 * (frag_cover) and queue it for the disk tier, as if fetched whole. The
 * copy runs without d->lock, the fragments referenced meanwhile. Returns
 * 1 when the chunk is now on its way to disk (or another thread brought
 * it in meanwhile, or o went stale), 0 when it must be fetched: not
 * covered, no memory, or the disk writers are behind. Caller holds
 * d->lock, dropped and retaken.
 */
static int frag_assemble(struct data *d, struct data_obj *o, uint64_t idx)
{
	size_t clen = chunk_len(d, o, idx);
	uint64_t cstart = idx * d->o.chunk_size;
	struct chunk **parts, *w;
	enum data_whole whole;
	unsigned int n, i;
	char *buf = NULL;

	if (!d->npersisters || d->npersist >= d->persist_cap)
		return 0;
	parts = malloc((clen / DATA_BLOCK + 1) * sizeof(*parts));
	if (!parts)
		return 0;
	n = frag_cover(d, o, idx, clen, parts);
	/* Referenced first: making room evicts from the LRU. */
	for (i = 0; i < n; i++)
		data_chunk_ref(d, parts[i]);
	if (n && data_make_room(d, clen))
		buf = data_spare_take(d, clen);
	if (!buf) {
		for (i = 0; i < n; i++)
			data_chunk_unref(d, parts[i]);
		free(parts);
		return 0;
	}
	d->mem_used += clen;
	pthread_mutex_unlock(&d->lock);
	/* Ready fragments' bytes no longer change. */
	for (i = 0; i < n; i++)
		memcpy(buf + (parts[i]->off - cstart), parts[i]->buf,
		       parts[i]->len);
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < n; i++)
		data_chunk_unref(d, parts[i]);
	free(parts);
	w = NULL;
	/* The lock was dropped: another thread may have brought the chunk
	 * in, or failed a fragment of it, meanwhile. */
	whole = o->stale ? DATA_WHOLE_THERE : data_whole_state(d, o, idx);
	if (whole == DATA_WHOLE_NONE)
		w = data_entry_new(d, o, data_key_chunk(idx), idx, cstart);
	if (!w) {
		d->mem_used -= clen;
		data_spare_put(d, buf, clen);
		return whole == DATA_WHOLE_THERE;
	}
	w->len = clen;
	w->buf = buf;
	w->state = CHUNK_READY;
	w->fill = true;
	/* The persist queue's references, as chunk_finish() hands over. */
	w->obj = data_obj_get(o);
	w->refs = 1;
	list_append(&d->persist, w);
	d->npersist++;
	pthread_cond_signal(&d->persist_cv);
	d->stats.fills++;
	d->stats.fills_mem++;
	return 1;
}

/* Whether chunk idx of o should be made whole: its fragments fetched as
 * many bytes as it holds, or took fill_requests requests. Caller holds
 * d->lock; o->frag is set. */
static bool fill_due(const struct data *d, const struct data_obj *o,
		     uint64_t idx)
{
	return (uint64_t)o->frag[idx].pages * DATA_BLOCK >=
		       chunk_len(d, o, idx) ||
	       o->frag[idx].reqs >= d->o.fill_requests;
}

/*
 * Have the workers fetch chunk idx of o whole for the disk tier, at
 * prefetch priority, marked as a fill. False when the memory budget has
 * no room for it now. Caller holds d->lock.
 */
static bool fill_queue(struct data *d, struct data_obj *o, uint64_t idx)
{
	struct chunk *f;
	int err;

	data_chunk_want(d, o, idx, false, &err);
	f = chunk_find(d, o->id, data_key_chunk(idx));
	if (!f || f->state == CHUNK_FAILED)
		return false;
	f->fill = true;
	d->stats.fills++;
	return true;
}

/*
 * Fragment c of o came from the origin. Random readers never read whole
 * chunks, so without this the disk tier would never see their data, and
 * every epoch of a random reader would ask the origin again. Once a
 * chunk's fragments have fetched as many bytes as the chunk holds, or
 * taken fill_requests requests (fill_due: a reader going through the
 * chunk then reads the rest of it from memory, and the chunk costs the
 * origin those requests' pages and itself), the chunk is made whole and
 * persisted like any chunk: put together from
 * its fragments when they are all still in memory (frag_assemble: a
 * reader that went through the whole chunk while it fitted in memory,
 * the usual random epoch, costs the origin its pages and nothing more),
 * else fetched whole by the workers, at prefetch priority and marked as
 * a fill. That is a rent-or-buy rule, and why that much:
 *  - a reader that goes through all of a chunk, in any order, costs the
 *    origin at most twice the chunk once (its pages, then the chunk),
 *    and nothing after: within twice the least any rule can promise
 *    without knowing what comes next;
 *  - a reader that reads less than a chunk's worth of a chunk, the
 *    usual single pass of random reads or mmap faults over a big file,
 *    costs its pages and nothing more. With half the chunk as the
 *    threshold (and readers then waiting for fills), a measured pass
 *    of 64 KiB records through mmap fetched 35% more bytes and ran at
 *    0.3 to 0.8 of the speed;
 *  - pages fetched again (the memory tier let them go, or an epoch
 *    ended) count again, so a chunk read over and over is filled even
 *    when no single pass covers it.
 * A chunk put together from memory is in the disk writers' queue at
 * once, which is drained before the process exits. A fill still queued
 * for the origin when the file system is unmounted is dropped, and the
 * next pass fills that chunk instead. Only with a disk tier: a whole
 * chunk in memory alone would be evicted before the next epoch. Caller
 * holds d->lock, which frag_assemble() drops and retakes.
 */
void data_fill_account(struct data *d, struct data_obj *o, struct chunk *c)
{
	enum data_whole whole;
	unsigned int pages = (unsigned int)((c->len + DATA_BLOCK - 1) /
					    DATA_BLOCK);
	struct frag_cost *f;
	unsigned int sum;

	if (!d->o.disk || o->stale)
		return;
	if (!o->frag) {
		o->frag = calloc(obj_nchunks(d, o), sizeof(*o->frag));
		if (!o->frag)
			return;
	}
	f = &o->frag[c->idx];
	sum = f->pages + pages;
	f->pages = sum > UINT16_MAX ? UINT16_MAX : (uint16_t)sum;
	if (f->reqs < UINT16_MAX)
		f->reqs++;
	if (!fill_due(d, o, c->idx))
		return;
	whole = data_whole_state(d, o, c->idx);
	if (whole == DATA_WHOLE_HELD ||
	    (whole == DATA_WHOLE_NONE && !frag_assemble(d, o, c->idx) &&
	     !fill_queue(d, o, c->idx))) {
		/* The last pages of a pass fill several chunks at once and
		 * the budget may have no room for this one yet, or a failed
		 * fragment holds the chunk down: the count stays, and
		 * data_fill_retry() (or the chunk's next fragment) queues
		 * it later. */
		if (c->idx < o->fill_next)
			o->fill_next = c->idx;
		return;
	}
	o->frag[c->idx] = (struct frag_cost){ 0 };
}

/*
 * Queue the fills of o that data_fill_account() had no memory for, in chunk
 * order, until the budget says no again. Called when one of o's whole
 * chunks is done with, its memory now evictable. Caller holds d->lock.
 */
void data_fill_retry(struct data *d, struct data_obj *o)
{
	uint64_t nchunks = obj_nchunks(d, o);
	uint64_t idx, held = DATA_NO_FILL;

	if (o->fill_next == DATA_NO_FILL || o->stale)
		return;
	for (idx = o->fill_next; idx < nchunks; idx++) {
		enum data_whole whole;

		if (!fill_due(d, o, idx))
			continue;
		whole = data_whole_state(d, o, idx);
		if (whole == DATA_WHOLE_HELD) {
			/* Later, past its hold-down; the rest go now. */
			if (held == DATA_NO_FILL)
				held = idx;
			continue;
		}
		if (whole == DATA_WHOLE_NONE && !fill_queue(d, o, idx)) {
			o->fill_next = held < idx ? held : idx;
			return;
		}
		o->frag[idx] = (struct frag_cost){ 0 };
	}
	o->fill_next = held;
}
