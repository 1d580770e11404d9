/*
 * Page-sized buffers for the data path's smallest fragments (a 4 KiB
 * random read keeps one in memory), carved from larger mappings and
 * recycled, so that a fresh fragment costs neither an arena growth
 * (malloc's mprotect) nor a trip through the allocator.
 */
#ifndef FS_DATA_POOL_H
#define FS_DATA_POOL_H

#include <stddef.h>

/* Bytes of one buffer: the largest fragment the pool serves. */
#define DATA_POOL_PAGE 4096u
/*
 * Fresh buffers are faulted in this many bytes at a time, just before the
 * first of them is handed out. Left to be touched, each one cost the data
 * path a page fault (a trap, with the data lock held across it): 7.4% of
 * the daemon's CPU samples on cold random 4 KiB reads, 3.8% with one
 * madvise for 16 pages (bench/README.md). It keeps the zeroing and skips
 * the traps, with at most 64 KiB faulted in before it is used.
 */
#define DATA_POOL_BATCH (64u * 1024)

/*
 * Not thread-safe: its user serializes every call (data.c holds d->lock).
 * Zero-initialized it is an empty pool; data_pool_fini() unmaps it all.
 */
struct data_pool {
	/* Free buffers still backed by memory, linked through their first
	 * word; at most DATA_POOL_KEEP of them. */
	void *free;
	size_t nfree;
	/* Free buffers whose memory went back to the kernel
	 * (MADV_DONTNEED): a stack of their addresses, since writing a link
	 * into one would fault its page in again. */
	void **released;
	size_t nreleased, released_cap;
	/* The newest mapping, handed out from its start: next unused
	 * byte, end of the part already faulted in, end. */
	char *next, *ready, *end;
	/* Every mapping, for data_pool_fini(). */
	void **maps;
	size_t nmaps, maps_cap;
};

void *data_pool_take(struct data_pool *p);
void data_pool_put(struct data_pool *p, void *buf);
void data_pool_fini(struct data_pool *p);

#endif
