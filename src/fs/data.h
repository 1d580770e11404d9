/*
 * The data path between FUSE reads and the origin: file data is handled in
 * fixed-size chunks, each fetched once however many readers want it
 * (single flight), by a pool of fetch threads, kept in a bounded in-memory
 * LRU and, when configured, in the persistent chunk cache. Sequential
 * streams fetch whole chunks and prefetch; other reads fetch just their
 * pages, small ones on the reader's own thread. Readers wait
 * interruptibly: a signal ends the wait, never the fetch (a reader's own
 * request is handed to the workers).
 */
#ifndef FS_DATA_H
#define FS_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/cancel.h"
#include "store/store.h"

struct data;
struct cache;

struct data_opts {
	struct store *store; /* not owned */
	struct cache *disk; /* persistent tier, may be NULL; not owned */
	const char *origin_id; /* names the origin in the disk cache */
	uint32_t chunk_size;
	unsigned int fetch_threads;
	uint64_t max_memory; /* bound on chunk buffers held in memory */
	/* A failed fetch answers new readers of its chunk with the same
	 * error for this long before the origin is tried again. */
	int error_holddown_ms;
	/* Serve streams' reads of chunks on the disk tier by splice. */
	bool splice;
	/* Requests for fragments of one chunk after which it is fetched
	 * whole for the disk tier (0: 16 per MiB of chunk, at least 4;
	 * DATA_FILL_NEVER: never, only the rule by bytes). */
	unsigned int fill_requests;
	/* How long at most exact reads wait for a fill a fetch thread has
	 * started before they fetch their own pages (0: four times what
	 * whole chunks took lately, at least 250 ms). */
	unsigned int fill_wait_ms;
};
/* data_opts.fill_requests: more than a chunk's 16-bit count reaches. */
#define DATA_FILL_NEVER 65536u

/*
 * One version of one object: path, size and validator are fixed for its
 * life, so chunks of different versions never mix. Reference counted;
 * data_obj_new returns a new reference, release with data_obj_put.
 */
struct data_obj;

int data_new(const struct data_opts *o, struct data **out);
void data_free(struct data *d);

/*
 * A new object. With an empty etag the first origin answer names the
 * version; the object joins the disk tier then (data_version_needed says
 * when opening it that way loses nothing). -EFBIG for an object of 2^32
 * chunks or more (16 TiB with 4 KiB chunks).
 */
int data_obj_new(struct data *d, const char *path, uint64_t size,
		 const char *etag, int64_t mtime, struct data_obj **out);
/*
 * Whether path must be opened with a known version: true when the disk
 * tier may hold chunks of some version of it, which only a version known
 * before the first read can select without asking the origin for data.
 * False when there is no disk tier or it has never seen path.
 */
bool data_version_needed(struct data *d, const char *path);
struct data_obj *data_obj_get(struct data_obj *o);
void data_obj_put(struct data_obj *o);
uint64_t data_obj_size(const struct data_obj *o);
uint64_t data_obj_id(const struct data_obj *o);
const char *data_obj_path(const struct data_obj *o);
/* Copy o's version (STORE_ETAG_MAX) to out; false while none is known. */
bool data_obj_version(struct data_obj *o, char *out);
/* True once a read found the origin holds another version. */
bool data_obj_stale(const struct data_obj *o);
/* The origin holds another version, as attributes showed: reads through
 * handles still open on o fail with -ESTALE from now on. */
void data_obj_set_stale(struct data_obj *o);

/*
 * A reader's handle on the chunks one read needs; the iovecs point into
 * chunk buffers that stay valid until data_read_release.
 */
/* Entries one read may need: a 1 MiB read (FUSE's largest) of 4 KiB
 * chunks, or a few pieces of each chunk it touches. */
#define DATA_READ_MAX 272
/*
 * What a read returns, in order: iov[i] is either memory (fd[i] < 0) or,
 * with iov_base NULL, iov_len bytes at pos[i] of fd[i], a data file of the
 * disk tier whose chunk is held (verified, locked) for a splice. Both stay
 * valid until data_read_release. nfd counts the file segments.
 */
struct data_read {
	struct iovec iov[DATA_READ_MAX];
	int fd[DATA_READ_MAX];
	uint64_t pos[DATA_READ_MAX];
	int niov;
	int nfd;
	size_t bytes;
	void *pins[DATA_READ_MAX]; /* private */
	int npins;
};

/*
 * A wait that another thread can cut short (a FUSE_INTERRUPT).
 * data_wait_interrupt may be called from any thread, any number of times,
 * until the read that uses the wait returns.
 */
struct data_wait {
	struct data *d;
	bool interrupted; /* under d's lock */
	void *chunk; /* what the reader sleeps on, under d's lock */
	/* Ends an origin request the reader makes itself (small random
	 * reads are fetched on the reader's own thread). */
	struct cancel cancel;
};

void data_wait_init(struct data_wait *w, struct data *d);
/* After the last data_wait_interrupt can run. */
void data_wait_fini(struct data_wait *w);
void data_wait_interrupt(struct data_wait *w);

/*
 * Read [off, off + len) of o, clipped to its size, into r. stream_hint
 * identifies the reading stream for prefetch (e.g. the file handle).
 * Returns 0 (r->bytes may be 0 at EOF), -EINTR when w was interrupted,
 * -ESTALE when the origin's object changed, -EIO and friends.
 * On 0 the caller must call data_read_release(r) after using the iovecs.
 */
int data_read(struct data *d, struct data_obj *o, uint64_t off, size_t len,
	      struct data_wait *w, struct data_read *r);
void data_read_release(struct data *d, struct data_read *r);

/* Stopping: every reader waiting now or later gets -EIO at once. Fetches
 * in progress are left to the origin client's own abort. */
void data_abort(struct data *d);

/* Counters for `cofault` status output and tests. */
struct data_stats {
	uint64_t origin_reads, origin_bytes, disk_hits, mem_hits;
	uint64_t prefetched, errors;
	uint64_t fragments; /* origin reads of part of a chunk */
	/* Of those, reads across a chunk boundary that asked for the
	 * fragments on both sides with one request. */
	uint64_t pair_reads;
	/* Chunks made whole for the disk tier because random reads'
	 * fragments of them had cost as much; of those, fills_mem were put
	 * together from fragments in memory, with no request. */
	uint64_t fills, fills_mem;
	/* Reads that waited for a fill under way, and of those the ones it
	 * kept past its deadline (they then fetched their own pages); and
	 * fragments asked for while their chunk's fill was queued or under
	 * way. */
	uint64_t fill_waits, fill_stalls, fill_hedges;
	uint64_t spliced; /* reads served (partly) from held chunks */
	/* Chunks written to the disk tier, and of those the ones a fetch
	 * thread wrote through the page cache because the direct writers
	 * were behind. */
	uint64_t disk_writes, disk_writes_buffered;
	/* The deepest prefetch window a stream reached, in chunks. */
	uint64_t window_max;
};
void data_get_stats(struct data *d, struct data_stats *st);

#endif
