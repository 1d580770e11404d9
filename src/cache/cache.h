/*
 * Persistent on-disk chunk cache: fixed-size chunks of remote objects kept
 * under one directory, indexed in SQLite, checksummed with CRC32C, bounded
 * by a byte limit and a free-space floor, evicted least-recently-used by a
 * background thread. Several processes may share one directory.
 *
 * Every function may be called from any number of threads at once, except
 * that cache_close() must not race with any other call on the same handle.
 * Functions return 0 or -errno unless stated otherwise.
 *
 * Locking, for the caller's planning: a handle has two SQLite connections
 * for the callers' threads, one for lookups and one for the calls that
 * write, each behind a mutex held only for single statements (a chunk
 * lookup takes a few microseconds, under 1% of a 1 MiB read), and one for
 * its thread. Reads never write to the database, and never wait for a
 * call that does. Between processes, SQLite's locks (WAL, busy timeout)
 * order the index, byte-range locks on the data files order chunk writes,
 * eviction and corruption checks, and verified reads take no lock; a small
 * shared mapping (<dir>/inflight) tells each process what the others have
 * written and not yet indexed. A call that must write the index
 * (cache_object creating or replacing an object, dropping a bad chunk,
 * clear) can wait for another process's transaction, up to the busy
 * timeout; the other threads' lookups go on meanwhile.
 */
#ifndef CACHE_CACHE_H
#define CACHE_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CACHE_DEFAULT_CHUNK_SIZE (1u << 20)

struct cache;

struct cache_opts {
	/* Created with mode 0700 if missing; must be private to the user. */
	const char *dir;
	/*
	 * Bytes of chunk data kept at most; 0 means cache_default_size(dir).
	 * What counts is the directory: the index and every process's
	 * chunks written and not yet indexed, so that it stays within the
	 * limit (writers racing for the last room are refused; the
	 * exceptions, all brief or rare, are in cache-int.h).
	 */
	uint64_t max_bytes;
	/* Evict until the file system has this much free; 0 disables. */
	uint64_t min_free_bytes;
	/*
	 * Chunk size in bytes (a power of two, 4 KiB to 64 MiB). 0 means the
	 * size the directory records, or CACHE_DEFAULT_CHUNK_SIZE for a new
	 * one: the maintenance commands use 0.
	 */
	uint32_t chunk_size;
	/*
	 * A directory that records another chunk size is refused with
	 * -ESTALE, unless this is set: then it is emptied and takes the new
	 * size (which any other process still using it will see as misses).
	 */
	bool reset_on_mismatch;
	/*
	 * For the maintenance commands (stats, clear, verify): this handle
	 * never evicts, whatever the limits, so that looking at a directory
	 * leaves the chunks of the mounts using it alone. It opens only a
	 * cache that exists (-ENOENT, and nothing created, if the index
	 * does not), and does not reset a damaged one (-EUCLEAN).
	 */
	bool maintenance;
};

struct cache_stats {
	uint64_t objects;
	uint64_t chunks;
	uint64_t bytes; /* sum of the chunk lengths indexed */
	uint64_t max_bytes;
	uint64_t min_free_bytes;
	uint64_t fs_free_bytes; /* available to the user, now */
	uint32_t chunk_size;
	/*
	 * Handles that may write to the directory now (maintenance ones
	 * aside), in any process, this one included: how many, the
	 * smallest of their max_bytes and the largest of their
	 * min_free_bytes, which are what bound the directory (the two
	 * above are this handle's own). All 0 when there are none, or they
	 * cannot be known.
	 */
	uint32_t handles;
	uint64_t handles_max_bytes;
	uint64_t handles_min_free_bytes;
};

/*
 * Open (creating if needed) the cache in o->dir and start its eviction
 * thread (which indexes writes, and evicts unless o->maintenance). On
 * success *out is a new handle; release it with cache_close().
 * -ESTALE: chunk size mismatch (see reset_on_mismatch).
 */
int cache_open(const struct cache_opts *o, struct cache **out);

/* Index the writes still queued, stop the thread, free c. NULL is a no-op. */
void cache_close(struct cache *c);

/*
 * Install the process's SIGBUS handler that turns an unreadable page of a
 * held chunk into an error (cache_chunk_hold), passing every other SIGBUS
 * on to the handler it replaces. cache_open calls it; a program that
 * installs its own SIGBUS handler later calls it again, so that holds stay
 * guarded. Does nothing when it is already the handler. 0 or -errno.
 */
int cache_guard_install(void);

/* The chunk size in use: the caller splits objects by it. */
uint32_t cache_chunk_size(const struct cache *c);

/*
 * Find or create the object (origin, key) and set *obj_id for the chunk
 * calls. The object is identified by its ETag, or by size and mtime when
 * etag is NULL or empty; when that identity differs from the one recorded,
 * the old object and all its chunks are dropped and a new id returned
 * (ids are never reused, so a stale id only ever misses).
 */
int cache_object(struct cache *c, const char *origin, const char *key,
		 const char *etag, uint64_t size, int64_t mtime,
		 uint64_t *obj_id);

/*
 * 0 when the index has an object (origin, key) of any version, -ENOENT
 * when it has none: then no chunk of it can be cached, and the caller may
 * skip learning the object's version before its first read.
 */
int cache_object_known(struct cache *c, const char *origin, const char *key);
/*
 * Whether obj_id was dropped from the index while in use: a chunk written
 * for it found the object gone when it was indexed (`cofault cache clear`,
 * or a newer version registered by another process), and was not kept.
 * True once per drop seen (a drop seen again within a minute is the same
 * one); the caller may then register its version again with
 * cache_object_rejoin, or stop writing chunks of it.
 */
bool cache_object_dropped(struct cache *c, uint64_t obj_id);
/*
 * The caller could not register obj_id's version again after
 * cache_object_dropped reported it (an error, not -EEXIST): report the
 * drop once more after a second or two, so that a passing error does not
 * stop the object's caching until the drop is forgotten.
 */
void cache_object_drop_retry(struct cache *c, uint64_t obj_id);
/*
 * cache_object for a version dropped while in use: created again when the
 * index has no object (origin, key), found when it has this version, and
 * -EEXIST, changing nothing, when it has another. A process holding an
 * old version open must not drop the newer one that another registered.
 */
int cache_object_rejoin(struct cache *c, const char *origin, const char *key,
			const char *etag, uint64_t size, int64_t mtime,
			uint64_t *obj_id);
/*
 * Call fn(arg, key) for the key of every object of origin the index
 * holds, any version; 0 or -errno. fn runs under the cache's index lock:
 * it must not call into c.
 */
int cache_object_keys(struct cache *c, const char *origin,
		      void (*fn)(void *arg, const char *key), void *arg);

/*
 * Read chunk idx of obj_id into buf. len is the chunk's expected length:
 * the chunk size, or the object's tail for the last chunk.
 * 0: buf holds len bytes whose CRC32C matched the index.
 * -ENOENT: not cached, or dropped because it was corrupt or of another
 * length; the caller fetches it from the origin (and may cache_chunk_write
 * it). Other -errno: the cache failed; treat it as a miss too.
 * Never a database write: the access time is recorded in memory and
 * flushed by the eviction thread.
 */
int cache_chunk_read(struct cache *c, uint64_t obj_id, uint64_t idx, void *buf,
		     size_t len);

/*
 * A chunk held for serving straight from its data file: [off, off + len)
 * of fd holds the chunk's bytes, verified against the index's CRC32C, and
 * no process may rewrite or evict it until cache_chunk_release. For
 * splice(2) to FUSE, so that warm reads cost no copy through memory.
 */
struct cache_hold {
	int fd; /* owned; -1 when not held */
	uint64_t off;
	size_t len;
};

/*
 * Hold chunk idx of obj_id, of expected length len. -ENOENT: not cached;
 * -EAGAIN: being written or evicted right now; -EBADMSG: it failed its
 * check (cache_chunk_read then drops and logs it). The caller reads such
 * chunks with cache_chunk_read instead. Records an access like a read.
 */
int cache_chunk_hold(struct cache *c, uint64_t obj_id, uint64_t idx,
		     size_t len, struct cache_hold *h);
void cache_chunk_release(struct cache_hold *h);

/*
 * Mark in map (nchunks bits, bit i of byte i / 8 for chunk i; the caller
 * zeroes it) the chunks of obj_id that are indexed or queued now. A
 * snapshot for skipping lookups of chunks certainly not cached: other
 * processes may add and evict chunks after it is taken, so a set bit is
 * still checked by cache_chunk_read.
 */
int cache_chunk_map(struct cache *c, uint64_t obj_id, uint64_t nchunks,
		    uint8_t *map);

/*
 * Store chunk idx of obj_id (len bytes, at most the chunk size). The data
 * is written to the page cache and queued; the eviction thread makes it
 * durable (fdatasync) and only then indexes it, in one transaction per
 * batch. Until then this process reads it back from the queue; other
 * processes see it once indexed. buf is not kept. Blocks only while the
 * queue (64 chunks) is full, or at the byte limit for one eviction pass.
 * A chunk that another writer has queued, or that a reader holds or an
 * evictor is dropping, is left alone: not written, and 0 returned. A full
 * disk or quota (ENOSPC, EDQUOT) or free space under the floor with nothing
 * left to evict is not an error: the chunk is simply not cached, and a
 * warning is logged at most once a minute. Returns 0 then; -errno only for
 * bad arguments or unexpected I/O errors, which the caller may log and
 * ignore.
 */
int cache_chunk_write(struct cache *c, uint64_t obj_id, uint64_t idx,
		      const void *buf, size_t len);
/*
 * cache_chunk_write for a caller that can wait for the device: buf, when
 * aligned to CACHE_DIRECT_ALIGN, goes to the disk by direct I/O instead of
 * through the page cache (the caller's thread waits for the transfer). On
 * a file system without direct I/O it is cache_chunk_write.
 */
int cache_chunk_write_direct(struct cache *c, uint64_t obj_id, uint64_t idx,
			     const void *buf, size_t len);

/*
 * Wait until every chunk written and every access recorded before the call
 * is in the index, and one eviction pass has run after that.
 */
int cache_flush(struct cache *c);

/* Buffer, offset and length alignment of a direct write: the largest
 * logical block size in use, so that every device accepts it. */
#define CACHE_DIRECT_ALIGN 4096

/* Change the limits; the next eviction pass (started now) applies them. */
void cache_set_limits(struct cache *c, uint64_t max_bytes,
		      uint64_t min_free_bytes);

int cache_stats(struct cache *c, struct cache_stats *st);

/* Drop every object of origin, or everything when origin is NULL. */
int cache_clear(struct cache *c, const char *origin);

/*
 * Read back every indexed chunk and check its CRC32C; drop (and log) the bad
 * ones. Also removes data files of objects no longer indexed and gives
 * back the space of chunks written but never indexed (a crash between the
 * two). *checked and *bad count chunks. Slow: reads the whole cache.
 */
int cache_verify(struct cache *c, uint64_t *checked, uint64_t *bad);

/*
 * Default limit: 10% of the file system holding dir (or its nearest
 * existing parent). 0 if that cannot be determined.
 */
uint64_t cache_default_size(const char *dir);

/* Default free-space floor: 5% of that file system, at most 4 GiB. */
uint64_t cache_default_min_free(const char *dir);

#endif
