/*
 * The data path's view of the persistent chunk cache (src/cache): thin
 * wrappers that turn every disk-tier failure into "not cached", since a
 * broken or full cache disk must never fail a read.
 */
#ifndef FS_DATA_DISK_H
#define FS_DATA_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bloom;
struct cache;
struct cache_hold;

/* Object id in the disk tier, or 0 when it cannot be used. */
uint64_t data_disk_object(struct cache *c, const char *origin,
			  const char *path, const char *etag, uint64_t size,
			  int64_t mtime);
/* cache_object_dropped: whether the disk tier dropped object id while in
 * use (a `cofault cache clear`, say); true once per drop. */
bool data_disk_dropped(struct cache *c, uint64_t id);
/*
 * After such a drop of id old, register this version of the object again
 * and set *id: -EEXIST when another version took its place (then it is
 * not to be cached any more), another -errno on a failure (logged): the
 * drop is then reported again after a second or two, to try again.
 */
int data_disk_rejoin(struct cache *c, uint64_t old, const char *origin,
		     const char *path, const char *etag, uint64_t size,
		     int64_t mtime, uint64_t *id);
/* cache_object_known; an error counts as known (the safe answer). */
bool data_disk_known(struct cache *c, const char *origin, const char *path);
/*
 * A filter of the paths of origin the disk tier holds now, for answering
 * "never seen" without a query; NULL when it cannot be built (then ask
 * data_disk_known every time).
 */
struct bloom *data_disk_known_filter(struct cache *c, const char *origin);
/* cache_chunk_map, logged on failure; -errno then. */
int data_disk_map(struct cache *c, uint64_t obj, uint64_t nchunks,
		  uint8_t *map);
/* 0 when the chunk was present and verified, else -ENOENT. */
int data_disk_read(struct cache *c, uint64_t obj, uint64_t idx, void *buf,
		   size_t len);
/*
 * cache_chunk_hold; the answers that only mean "read it the ordinary way"
 * (-ENOENT, -EAGAIN, -EBADMSG) are not logged, others are.
 */
int data_disk_hold(struct cache *c, uint64_t obj, uint64_t idx, size_t len,
		   struct cache_hold *h);
void data_disk_release(struct cache_hold *h);
/* cache_chunk_write, or cache_chunk_write_direct when direct. */
void data_disk_write(struct cache *c, uint64_t obj, uint64_t idx,
		     const void *buf, size_t len, bool direct);

#endif
