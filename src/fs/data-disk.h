/*
 * The data path's view of the persistent chunk cache (src/cache): thin
 * wrappers that turn every disk-tier failure into "not cached", since a
 * broken or full cache disk must never fail a read.
 */
#ifndef FS_DATA_DISK_H
#define FS_DATA_DISK_H

#include <stddef.h>
#include <stdint.h>

struct cache;

/* Object id in the disk tier, or 0 when it cannot be used. */
uint64_t data_disk_object(struct cache *c, const char *origin,
			  const char *path, const char *etag, uint64_t size,
			  int64_t mtime);
/* 0 when the chunk was present and verified, else -ENOENT. */
/* cache_chunk_map, logged on failure; -errno then. */
int data_disk_map(struct cache *c, uint64_t obj, uint64_t nchunks,
		  uint8_t *map);
int data_disk_read(struct cache *c, uint64_t obj, uint64_t idx, void *buf,
		   size_t len);
void data_disk_write(struct cache *c, uint64_t obj, uint64_t idx,
		     const void *buf, size_t len);

#endif
