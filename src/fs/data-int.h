/*
 * The data path's private parts, for its own files only: data.c (the chunk
 * table, reads, the fetch and disk-writer threads, prefetch) and
 * data-fill.c (random readers' chunks made whole for the disk tier).
 */
#ifndef FS_DATA_INT_H
#define FS_DATA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "fs/data.h"
#include "fs/data-pool.h"

#define DATA_STREAMS 8 /* sequential streams tracked per object */
#define DATA_PERSIST_THREADS 2 /* disk writers (see data.c) */

enum chunk_state { CHUNK_QUEUED, CHUNK_FETCHING, CHUNK_READY, CHUNK_FAILED };

/*
 * An entry of the chunk table is a whole chunk (what sequential streams
 * fetch, and what the disk tier stores) or a fragment: the pages of one
 * chunk that a small random read asks for, fetched alone so that a 4 KiB
 * read costs a 4 KiB request, not a whole chunk. Fragments live in memory
 * only; the disk tier gets the whole chunk once its fragments have cost
 * as much (see data_fill_account()).
 */
/*
 * A chain of struct data.ftable, and which pages its fragments may hold:
 * bit (page >> data.frag_shift) % 64 is set for each page of each
 * fragment put on the chain, and all are cleared only when the chain
 * empties. A clear bit means no fragment there holds the page, so a
 * random reader's miss (most of its reads) skips the walk, whose every
 * entry was a cache miss. A set bit may be stale: then the walk decides.
 */
struct frag_bucket {
	struct chunk *head;
	uint64_t pages;
};

struct chunk {
	uint64_t obj_id, idx; /* idx: the chunk, for both kinds */
	uint64_t key; /* table key: data_key_chunk() or data_key_frag() */
	uint64_t off; /* object offset of buf[0] */
	bool frag;
	/* The reader (its data_wait) that fetches this fragment on its own
	 * thread, until it starts; NULL for the workers' entries. Under
	 * d->lock. */
	void *owner;
	struct chunk *hnext; /* hash chain, while hashed */
	/* A fragment's chain in struct data.ftable, while hashed. */
	struct chunk *fnext;
	struct chunk *prev, *next; /* LRU (ready, unreferenced) or queue */
	struct data_obj *obj; /* reference while queued or fetching */
	pthread_cond_t cond; /* broadcast when the fetch ends */
	enum chunk_state state;
	int err; /* CHUNK_FAILED */
	double fail_time; /* CHUNK_FAILED: when, monotonic seconds */
	int refs; /* readers, plus one for the queue/worker */
	bool hashed, in_lru, prefetch;
	/* A whole chunk fetched for the disk tier because random reads of
	 * it added up (data_fill_account): while it is queued, exact reads of
	 * the chunk fetch their own pages instead of waiting for it; once a
	 * worker has started it, they wait for it when it is due about as
	 * soon as their own request would be, and until fill_due at most
	 * (see exact_want()). */
	bool fill;
	/* A fill's expected arrival and its deadline, monotonic seconds: set
	 * by its worker when it starts, then fixed. */
	double fill_eta, fill_due;
	/* A sequential stream read past its end, or a fragment longer
	 * than DATA_FRAG_KEEP: the kernel's page cache now holds these
	 * bytes, so the buffer goes back to the spares as soon as the last
	 * reader lets go instead of aging in the LRU (recycled buffers are
	 * already faulted in; fresh ones are not). */
	bool drop_behind;
	size_t len;
	char *buf;
	/*
	 * A whole chunk the disk tier holds can be served from its data file
	 * instead of a buffer (buf NULL): held for splicing, verified, and
	 * locked against eviction until the entry goes. Set by the fetcher
	 * before CHUNK_READY, then fixed.
	 */
	bool held;
	struct cache_hold hold;
};

struct chunk_list {
	struct chunk *head, *tail;
};

struct data_stream {
	uint64_t next_off; /* where a sequential reader reads next */
	uint64_t ahead; /* first chunk index not yet prefetched */
	unsigned int window; /* chunks to keep ahead */
	/* Its last read waited for a chunk fetched ahead for it: the
	 * window grows at its next read. */
	bool starved;
	uint64_t calm; /* bytes it read since its reader last waited */
	uint64_t used; /* d->tick at last use, for replacement */
	uint64_t seq; /* bytes read in order by this stream */
	uint64_t start; /* where it began */
};

/* What the fragments of one chunk have cost the origin (saturating). */
struct frag_cost {
	uint16_t pages, reqs;
};

#define DATA_NO_FILL UINT64_MAX /* struct data_obj.fill_next: none */

struct data_obj {
	struct data *d;
	uint64_t id;
	int refs; /* atomic */
	char *path;
	uint64_t size;
	int64_t mtime;
	char etag[STORE_ETAG_MAX]; /* under d->lock once shared */
	bool stale; /* under d->lock */
	/*
	 * Object id in the disk tier, 0 while none. Set at open when the
	 * version is known then, else when the first chunk to persist finds
	 * the version the origin named (obj_disk_id); set again, under
	 * disk_lock, when the tier dropped the object while open
	 * (obj_rejoin_disk). Published with release after disk_map is
	 * filled; read with acquire, no lock.
	 */
	uint64_t disk_id;
	/*
	 * With disk_id: a bit per chunk that the disk tier may hold (set
	 * from its index when joining it, and by our own writes), so that a
	 * chunk it certainly lacks costs no index lookup: a cold random read
	 * must not pay for one. Bytes are read and set with atomics, no lock.
	 */
	uint8_t *disk_map;
	/*
	 * Per chunk, what its fragments have cost the origin since the chunk
	 * was last made whole, for data_fill_account(). Allocated by the first
	 * fragment; under d->lock.
	 */
	struct frag_cost *frag;
	/*
	 * The lowest chunk whose fill fell due (fill_due) when the memory
	 * budget had no room to fetch it, DATA_NO_FILL when none:
	 * data_fill_retry() tries again from there when one of o's whole
	 * chunks is done, so a retry with still no room costs one look, not
	 * a walk over a big object's chunks. Under d->lock.
	 */
	uint64_t fill_next;
	pthread_mutex_t disk_lock; /* one thread joins the disk tier */
	bool disk_tried; /* under disk_lock: joined, or failed to */
	struct data_stream streams[DATA_STREAMS]; /* under d->lock */
};

struct data {
	struct data_opts o;
	pthread_mutex_t lock;
	pthread_cond_t work; /* a chunk was queued, or stop */
	struct chunk **table; /* hashed chunks, by (obj_id, key) */
	/*
	 * The hashed fragments again, by (obj_id, idx) alone, so that a read
	 * finds one that holds its pages though it asked for other ones: the
	 * kernel retries a failed read-around page by page, and a page
	 * whose read-around is still on its way must wait for it rather
	 * than ask the origin again (and wait out a failing origin twice).
	 */
	struct frag_bucket *ftable;
	size_t nbuckets; /* of both tables */
	/* A page's bit in struct frag_bucket.pages: page >> frag_shift. */
	unsigned int frag_shift;
	struct chunk_list lru; /* head: least recently used */
	struct chunk_list demand, prefetch; /* queued fetches */
	pthread_condattr_t cond_attr; /* CLOCK_MONOTONIC: chunks, persist_room */
	/*
	 * Seconds a whole chunk took from the origin, and a reader's own
	 * fragment: moving averages of the recent ones (0 before the first).
	 * What a fill under way will take, what a read's own request would,
	 * and how long a fill may take before readers stop waiting for it.
	 * Under lock.
	 */
	double whole_s, page_s;
	uint64_t mem_used; /* bytes of chunk buffers */
	unsigned int nheld; /* held entries (struct chunk.held) */
	/* Recycled chunk_size buffers: a fresh 1 MiB malloc is an mmap whose
	 * 256 page faults and zeroing cost more than the copy into it. */
	char **spare;
	size_t nspare, spare_cap;
	/*
	 * Recycled DATA_PIECE_BYTES buffers, for fragments longer than
	 * DATA_FRAG_KEEP. Every 128 KiB read-around used to get fresh heap
	 * that then aged in the LRU: 32 page faults, and the heap's growth,
	 * on the fault's path. Counted against --max-memory like spares.
	 */
	char **piece;
	size_t npiece, piece_cap;
	/* Buffers of fragments no longer than a page (a random 4 KiB
	 * read's): see data-pool.c. Under lock. */
	struct data_pool pool;
	uint64_t next_obj_id;
	uint64_t tick;
	bool stop;
	bool aborted; /* data_abort: readers stop waiting */
	pthread_t *threads;
	unsigned int nthreads;
	/*
	 * Whole chunks fetched from the origin, waiting for a persist
	 * thread to write them to the disk tier. Each is READY, keeps its
	 * fetcher's chunk and object references (so it is in no other list)
	 * and is linked by prev/next. Under lock, like the counts.
	 */
	struct chunk_list persist;
	unsigned int npersist;
	/* Bound of npersist: DATA_PERSIST_MAX, or a quarter of the memory
	 * budget's chunks when that is less, as queued chunks cannot be
	 * evicted. Set at creation. */
	unsigned int persist_cap;
	pthread_cond_t persist_cv; /* a chunk was queued, or persist_stop */
	pthread_cond_t persist_room; /* the queue went below its bound */
	bool persist_stop; /* set after the fetch threads are joined */
	pthread_t persisters[DATA_PERSIST_THREADS];
	unsigned int npersisters;
	/*
	 * Paths the disk tier held at start, and those this mount added
	 * since: a path it says "never" of needs no index query at open
	 * (which took 0.5 ms after a page-cache drop, under the inode
	 * table's lock). Another process's additions after the start are
	 * missed: such a file's first read asks the origin, whose answer
	 * names the version, and joins the disk tier then. NULL: query
	 * every time. Lock-free (see bloom.h).
	 */
	struct bloom *known;
	struct data_stats stats;
};

/* Fragments are whole pages; a key names the first and last page of the
 * chunk in 16 bits each, enough for chunks up to 256 MiB. */
#define DATA_BLOCK 4096u
/* Largest fragment: bigger exact reads are fetched in pieces at once. */
#define DATA_PIECE_PAGES 64u
#define DATA_PIECE_BYTES (DATA_PIECE_PAGES * DATA_BLOCK)
/*
 * Of an exact read's new fragments, the reader fetches this many bytes
 * itself; the rest go to the workers at once. A 128 KiB read-around
 * across a chunk boundary is then one request on the reader's thread
 * (frag_fetch_pair: one request for the fragments on both sides), while
 * a 1 MiB read-around still has its pieces fetched side by side.
 */
#define DATA_OWN_BYTES DATA_PIECE_BYTES
/*
 * Longest fragment kept in memory once its readers are done. Longer ones
 * are an mmap fault's read-around or a young stream's read, whose pages
 * the kernel now caches itself: they go back to the piece spares at once
 * (see struct data.piece). Shorter ones are what random readers ask for
 * (a 4 KiB pread, a 64 KiB record) and stay in the LRU for the next
 * epoch.
 */
#define DATA_FRAG_KEEP (64u * 1024)

/*
 * Requests for fragments of one chunk after which it is fetched whole
 * (data_fill_account), by default, per MiB of chunk: a 1 MiB fetch from a fast
 * origin takes about as long as 8 to 16 requests for single pages, and
 * from a far one about as long as one; a bigger chunk takes longer in
 * proportion. A single pass of random reads or mmap faults over a file of
 * many chunks makes one to four requests per chunk and never gets here.
 */
#define DATA_FILL_REQUESTS_PER_MIB 16
#define DATA_FILL_REQUESTS_MIN 4

static inline uint64_t data_key_chunk(uint64_t idx)
{
	return idx << 32;
}

static inline uint64_t data_key_frag(uint64_t idx, unsigned int first,
				     unsigned int last)
{
	return idx << 32 | (uint64_t)first << 16 | (last + 1);
}

static inline size_t chunk_hash(const struct data *d, uint64_t obj,
				uint64_t key)
{
	uint64_t h = obj * 0x9e3779b97f4a7c15ULL ^ (key + 0x632be59bd9b4e019ULL);

	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return (size_t)(h % d->nbuckets);
}

static inline void list_remove(struct chunk_list *l, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
}

static inline void list_append(struct chunk_list *l, struct chunk *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

static inline struct chunk *chunk_find(struct data *d, uint64_t obj,
				       uint64_t key)
{
	struct chunk *c = d->table[chunk_hash(d, obj, key)];

	while (c && !(c->obj_id == obj && c->key == key))
		c = c->hnext;
	return c;
}

static inline uint64_t obj_nchunks(const struct data *d,
				   const struct data_obj *o)
{
	return (o->size + d->o.chunk_size - 1) / d->o.chunk_size;
}

static inline size_t chunk_len(const struct data *d,
			       const struct data_obj *o, uint64_t idx)
{
	uint64_t start = idx * d->o.chunk_size;
	uint64_t left = o->size - start;

	return left < d->o.chunk_size ? (size_t)left : d->o.chunk_size;
}

/*
 * Shared by the data path's files; each says what it needs held, which is
 * d->lock for all of them.
 */
void data_chunk_ref(struct data *d, struct chunk *c);
void data_chunk_unref(struct data *d, struct chunk *c);
struct chunk *data_entry_new(struct data *d, const struct data_obj *o,
			     uint64_t key, uint64_t idx, uint64_t off);
bool data_make_room(struct data *d, size_t need);
char *data_spare_take(struct data *d, size_t len);
void data_spare_put(struct data *d, char *buf, size_t len);
struct chunk *data_chunk_want(struct data *d, struct data_obj *o,
			      uint64_t idx, bool for_demand, int *err);

/*
 * What stands for chunk idx of o as a whole, to a fill. A failed fragment
 * leaves a failure under the whole chunk's key (its hold-down), findable
 * until something drops it: that is no chunk, and a fill that took it for
 * one would never be made. A failure whose hold-down is over is dropped
 * here, as a read would drop it.
 */
enum data_whole {
	DATA_WHOLE_NONE,  /* nothing: a fill may make it */
	DATA_WHOLE_THERE, /* an entry, in memory or on its way: no fill */
	DATA_WHOLE_HELD,  /* a failure still held down: fill later */
};
enum data_whole data_whole_state(struct data *d, struct data_obj *o,
				 uint64_t idx);

/* data-fill.c: a fragment c of o came from the origin; count what it cost
 * and make its chunk whole when that is due. Caller holds d->lock, which
 * may be dropped and retaken. */
void data_fill_account(struct data *d, struct data_obj *o, struct chunk *c);
/* data-fill.c: queue the fills of o that waited for memory. Caller holds
 * d->lock. */
void data_fill_retry(struct data *d, struct data_obj *o);

#endif
