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
	 * byte, end. */
	char *next, *end;
	/* Every mapping, for data_pool_fini(). */
	void **maps;
	size_t nmaps, maps_cap;
};

void *data_pool_take(struct data_pool *p);
void data_pool_put(struct data_pool *p, void *buf);
void data_pool_fini(struct data_pool *p);

#endif
