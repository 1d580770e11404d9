/*
 * Internal interfaces of the disk cache, for src/cache/ only: the handle,
 * the SQLite index (cache-index.c), the data files (cache-store.c), the
 * table of bytes in flight shared with other processes (cache-share.c),
 * the eviction thread (cache-evict.c) and the checksum (cache-crc.c).
 */
#ifndef CACHE_CACHE_INT_H
#define CACHE_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cache/cache.h"

/* A chunk size cache_opts allows: a power of two, 4 KiB to 64 MiB. Also
 * what the index may record; anything else there is damage. */
static inline bool cache_chunk_size_ok(uint64_t cs)
{
	return cs >= 4096 && cs <= (64u << 20) && !(cs & (cs - 1));
}

struct sqlite3;
struct sqlite3_stmt;

/* CRC32C of buf, continuing from crc (0 to start). Thread-safe. */
uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same without the hardware path, for the tests. */
uint32_t cache_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* CRC32C of len bytes at p, a mapping of a cache file, into *crc: -EIO, not
 * a SIGBUS, when a page of it cannot be read (cache-guard.c). */
int cache_guarded_crc32c(const void *p, size_t len, uint32_t *crc);

/* Record that a chunk of obj_id found it gone when indexed (cache.c). */
void cache_note_dropped(struct cache *c, uint64_t obj_id);

/* ---- index (cache-index.c) ---- */

enum cache_stmt {
	CACHE_ST_OBJ_GET,
	CACHE_ST_OBJ_DEL,
	CACHE_ST_OBJ_ADD,
	CACHE_ST_CHUNK_GET,
	CACHE_ST_CHUNK_PUT,
	CACHE_ST_CHUNK_DEL,
	CACHE_ST_CHUNK_TOUCH,
	CACHE_ST_LRU,
	CACHE_ST_TOTALS,
	CACHE_ST_OBJ_COUNT,
	CACHE_ST_CHUNK_NEXT,
	CACHE_ST_OBJ_EXISTS,
	CACHE_ST_OBJ_KEYS,
	CACHE_ST_COUNT
};

/*
 * One SQLite connection and its prepared statements. Not thread-safe: each
 * user owns one (the foreground one is guarded by cache.db_lock, the
 * eviction thread owns its own).
 */
struct cache_db {
	struct sqlite3 *db;
	struct sqlite3_stmt *st[CACHE_ST_COUNT];
	/* The chunk size its chunk rows are read, written and evicted in:
	 * set once after cache_index_setup, before any use. */
	uint32_t chunk_size;
	bool layout_lost; /* a write found another chunk size; logged */
};

struct cache_chunk_ref {
	uint64_t obj;
	uint64_t idx;
	uint32_t len;
	uint32_t crc;
	int64_t atime; /* set by cache_index_lru only */
};

int cache_index_open(struct cache_db *d, const char *path);
void cache_index_close(struct cache_db *d);
/* Create the schema; settle the chunk size (see cache_opts.chunk_size). */
int cache_index_setup(struct cache_db *d, uint32_t *chunk_size, bool reset,
		      bool *wiped);
/* Refuse every write on d from now on: for a connection meant to read. */
int cache_index_read_only(struct cache_db *d);
int cache_index_begin(struct cache_db *d);
int cache_index_commit(struct cache_db *d);
void cache_index_rollback(struct cache_db *d);
/*
 * Find or create, in a write transaction (the caller looks for a hit with
 * cache_index_object_find first); *stale is the id of an object dropped
 * because its identity changed (0 if none): the caller removes its data
 * file. Unless replace, an object of another identity is left as it is
 * and the answer is -EEXIST.
 */
int cache_index_object(struct cache_db *d, const char *origin, const char *key,
		       const char *etag, uint64_t size, int64_t mtime,
		       bool replace, uint64_t *id, uint64_t *stale);
/* The object (origin, key) of this identity: 0 and *id, -ENOENT when the
 * index has none (or one of another identity), or -errno. Reads only. */
int cache_index_object_find(struct cache_db *d, const char *origin,
			    const char *key, const char *etag, uint64_t size,
			    int64_t mtime, uint64_t *id);
int cache_index_chunk_get(struct cache_db *d, uint64_t obj, uint64_t idx,
			  uint32_t *len, uint32_t *crc);
/* -ENOENT when the object is gone (its chunks must not be indexed). */
int cache_index_chunk_put(struct cache_db *d, const struct cache_chunk_ref *r,
			  int64_t atime);
/* Delete only if the row still has this crc: a rewrite is left alone. */
int cache_index_chunk_del(struct cache_db *d, uint64_t obj, uint64_t idx,
			  uint32_t crc);
int cache_index_chunk_touch(struct cache_db *d, uint64_t obj, uint64_t idx,
			    int64_t atime);
/*
 * The n least recently used chunks that come after *after in (atime, obj,
 * idx) order, so that a walk resumes where it stopped; an after with
 * atime INT64_MIN starts from the oldest. *nout set.
 */
int cache_index_lru(struct cache_db *d, const struct cache_chunk_ref *after,
		    struct cache_chunk_ref *out, size_t n, size_t *nout);
/* Chunks after (obj, idx) in key order, for verify. */
int cache_index_chunks_after(struct cache_db *d, uint64_t obj, uint64_t idx,
			     struct cache_chunk_ref *out, size_t n,
			     size_t *nout);
int cache_index_totals(struct cache_db *d, uint64_t *objects, uint64_t *chunks,
		       uint64_t *bytes);
int cache_index_obj_exists(struct cache_db *d, uint64_t obj);
/* 0 when (origin, key) has an object row, whatever its identity. */
int cache_index_object_known(struct cache_db *d, const char *origin,
			     const char *key);
/* Call fn(arg, key) for every object key of origin. */
int cache_index_object_keys(struct cache_db *d, const char *origin,
			    void (*fn)(void *arg, const char *key), void *arg);
/*
 * Delete the objects of origin (all if NULL), or with list_only just list
 * them; the ids are returned in a malloc'd array the caller frees.
 */
int cache_index_clear(struct cache_db *d, const char *origin, bool list_only,
		      uint64_t **ids, size_t *nids);

/* ---- data files (cache-store.c) ---- */

/* Open obj's data file; O_CREAT creates it (and its directory) 0600. */
int cache_store_open(const struct cache *c, uint64_t obj, int flags);
int cache_store_unlink(const struct cache *c, uint64_t obj);
/* Give chunk idx's slot back to the file system; fd < 0: open it. */
void cache_store_punch(const struct cache *c, int fd, uint64_t obj,
		       uint64_t idx);
/*
 * Lock chunk idx's range of fd (F_RDLCK or F_WRLCK), waiting or not
 * (-EAGAIN); released by closing fd.
 */
int cache_store_lock(const struct cache *c, int fd, uint64_t idx, int type,
		     bool wait);
int cache_store_pread(int fd, void *buf, size_t len, off_t off);
int cache_store_pwrite(int fd, const void *buf, size_t len, off_t off);
/* Write a chunk's bytes at off: by direct I/O when direct and buf, off and
 * the file system allow it (see c->direct), buffered otherwise. 0 or
 * -errno. */
int cache_store_write(struct cache *c, int fd, const void *buf, size_t len,
		      off_t off, bool direct);
int cache_store_mkdirs(const struct cache *c);
/* Call fn for every data file's object id; stops on a non-zero return. */
int cache_store_scan(const struct cache *c,
		     int (*fn)(const struct cache *c, uint64_t obj, void *arg),
		     void *arg);
/* Free space for the user on dir's file system, in bytes. */
int cache_store_fs_free(const char *dir, uint64_t *avail, uint64_t *total);

/* ---- bytes in flight, shared between processes (cache-share.c) ---- */

struct cache_share;

/*
 * Map <dir>/inflight (c->dir set); with claim, also take a slot there and
 * publish c->max_bytes and c->min_free_bytes in it. The handle works without either: then the
 * functions below count nothing (or, without a slot, nothing of ours) and
 * the limit is kept as far as this handle sees. 0 or -errno (logged).
 */
int cache_share_open(struct cache *c, bool claim);
/* Clear and give back our slot, unmap. */
void cache_share_close(struct cache *c);
/* Our slot's bytes in flight (written and not yet indexed, or evicted and
 * not yet punched); callers hold c->lock and change c->inflight_bytes
 * alike. */
void cache_share_add(struct cache *c, uint64_t bytes);
void cache_share_sub(struct cache *c, uint64_t bytes);
/* Both of the above, c->inflight_bytes and our slot, under c->lock
 * (taken here): a write's reservation, an eviction's hold (cache.c). */
void cache_inflight_add(struct cache *c, uint64_t bytes);
void cache_inflight_sub(struct cache *c, uint64_t bytes);
void cache_share_set_limits(struct cache *c, uint64_t max_bytes,
			    uint64_t min_free);
/* Count bytes just committed to the index; call before cache_share_sub. */
void cache_share_indexed(struct cache *c, uint64_t bytes);
/* The count of bytes ever indexed (0 without the share). */
uint64_t cache_share_gen(struct cache *c);
/*
 * The bytes not yet indexed of every other slot. Without check, dead
 * processes' slots count too (no system call: an over-estimate); with it,
 * each non-empty slot's owner is checked and a dead one's slot cleared.
 */
uint64_t cache_share_others(struct cache *c, bool check);
/* Live handles with a slot, ours included, the smallest of their limits
 * and the largest of their free-space floors (0, 0, 0 when none). */
void cache_share_handles(struct cache *c, uint32_t *n, uint64_t *min_max,
			 uint64_t *max_floor);

/* ---- the handle (cache.c) and the eviction thread (cache-evict.c) ---- */

/* A chunk written but not yet durable and indexed. */
struct cache_pending {
	struct cache_chunk_ref ref;
	int64_t atime;
	int fd; /* owned: closed once indexed */
};

struct cache_touch {
	uint64_t obj;
	uint64_t idx;
	int64_t atime;
};

#define CACHE_PENDING_MAX 64
#define CACHE_TOUCH_MAX 4096
#define CACHE_DROPPED_MAX 64
#define CACHE_DROPPED_KEEP_S 60
/* A drop whose caller could not register again (cache_object_drop_retry)
 * is reported again after one to two seconds: soon enough that a passing
 * error (a busy index) costs a file few uncached chunks, and seldom
 * enough that a lasting one costs the index one attempt a second. */
#define CACHE_DROPPED_RETRY_S 2

struct cache_dropped {
	uint64_t obj;
	time_t when;	 /* noted, or last given back for a retry */
	time_t retry_at; /* not reported before this; 0: at once */
	bool reported;
};

struct cache {
	/* Set at open, read-only afterwards. */
	char *dir;
	char *data_dir;
	char *index_path;
	uint32_t chunk_size;
	bool no_evict; /* cache_opts.maintenance */
	/* The table shared with other processes (cache-share.c), NULL when
	 * it could not be mapped; its descriptor holds our slot's lock, and
	 * share_slot is -1 when we have none. */
	struct cache_share *share;
	int share_fd;
	int share_slot;
	pthread_mutex_t share_lock; /* serialises clearing others' slots */
	/* Chunk writes may use direct I/O: true at open, cleared (atomically,
	 * by any writer) the first time the file system refuses it. */
	bool direct;
	/* Another process emptied the directory for another chunk size:
	 * false at open, set (atomically) by the eviction thread when the
	 * index refuses a chunk for it (cache_db.layout_lost). Writes stop
	 * then: each would be refused too, and the punch that gives its room
	 * back would land in the middle of the other process's chunks. */
	bool layout_lost;

	/*
	 * The callers' threads' connections: fg for the statements that
	 * write, rd for those that only read. Two, so that a lookup never
	 * queues behind a write waiting (up to the busy timeout) for another
	 * process's transaction: in WAL a read does not wait for writers.
	 */
	pthread_mutex_t db_lock;
	struct cache_db fg; /* protected by db_lock */
	pthread_mutex_t rd_lock;
	struct cache_db rd; /* protected by rd_lock */

	pthread_mutex_t lock;
	pthread_cond_t wake; /* eviction thread waits on it */
	pthread_cond_t done; /* writers and cache_flush wait on it */
	/* Everything below, to bg, is protected by lock. */
	uint64_t max_bytes;
	uint64_t min_free_bytes;
	struct cache_pending pending[CACHE_PENDING_MAX];
	size_t npending;
	struct cache_touch touch[CACHE_TOUCH_MAX];
	size_t ntouch;
	uint64_t pass_requested; /* passes asked for */
	uint64_t pass_done;	 /* passes completed */
	int64_t clock_us;	 /* last access time handed out */
	bool low_space;		 /* last pass: free space under the floor */
	/*
	 * The index's bytes when its totals were last read, and the share's
	 * count of bytes indexed (cache_share_gen) taken just before that
	 * read: idx_bytes plus the count's growth since is never less than
	 * the index holds (see cache_reserve in cache.c).
	 */
	uint64_t idx_bytes;
	uint64_t idx_gen;
	/*
	 * Bytes reserved by this handle's writers and not yet indexed (being
	 * written, or queued), and bytes its evictor has taken out of the
	 * index and not yet punched; mirrored in its slot of the share. A
	 * write that would take the index plus every handle's such bytes
	 * past max_bytes is not cached (and asks the evictor for headroom).
	 * Each write takes its room before it looks at others'
	 * (cache_reserve), so writers racing for the last room are refused
	 * rather than let past it. The directory stays within its limit
	 * whatever the evictor's lag or another process's writes, except
	 * while space whose rows are gone is not yet given back by a path
	 * other than eviction: a clear (until its unlinks), a stale
	 * object's drop, a bad chunk's drop (one chunk), and the chunks of
	 * a process that died before indexing them (until a verify).
	 */
	uint64_t inflight_bytes;
	bool want_room; /* a write was refused since the last pass */
	/*
	 * Seconds between passes nobody asked for: 1 while the cache is in
	 * use, doubled after each pass that found nothing to do (up to
	 * EVICT_IDLE_PERIOD_S in cache-evict.c), so that an idle mount does
	 * not wake. cache_evict_nudge_locked brings it back at the first
	 * use.
	 */
	unsigned int period_s;
	bool nudged; /* a use after an idle spell: pass now */
	/*
	 * Objects whose chunks found them gone from the index when indexed
	 * (a clear, a newer version from another process), for
	 * cache_object_dropped, which reports each once; kept a while after
	 * that, so that chunks still queued under the old id do not report
	 * it again. Entries older than CACHE_DROPPED_KEEP_S go; when full,
	 * the oldest. ndropped is also read without the lock, as a hint.
	 */
	struct cache_dropped dropped[CACHE_DROPPED_MAX];
	size_t ndropped;
	bool stop;
	time_t nospc_warned; /* last "not cached" warning */

	struct cache_db bg; /* eviction thread only */
	pthread_t thread;
	bool thread_started;
};

/*
 * A use of the cache (an access, a write refused for space): if the
 * eviction thread has slowed down for an idle spell, wake it now so that
 * access times, the free-space check and other processes' changes are
 * looked at as often as while in use. Caller holds c->lock.
 */
void cache_evict_nudge_locked(struct cache *c);

/* Access time for a new record, strictly increasing within the process. */
int64_t cache_now_locked(struct cache *c);
/* Chunk idx of obj's row on the foreground connection: cache_index_chunk_get
 * under db_lock. */
int cache_chunk_row(struct cache *c, uint64_t obj, uint64_t idx, uint32_t *len,
		    uint32_t *crc);
/* Record an access to a chunk; the eviction thread writes it to the index. */
void cache_touch(struct cache *c, uint64_t obj, uint64_t idx);
/*
 * Punch chunk idx of obj, written through fd under its write lock, unless
 * the index has that chunk (cache.c). Caller holds no lock of the handle.
 */
void cache_write_undo(struct cache *c, int fd, uint64_t obj, uint64_t idx);
/* Log the "cache full, not caching" warning, at most once a minute. */
void cache_warn_nospc(struct cache *c, const char *why, int err);
int cache_evict_start(struct cache *c);
void cache_evict_stop(struct cache *c);
/* Ask for a pass; with wait, block until it completed. Caller holds no lock. */
void cache_evict_kick(struct cache *c, bool wait);

#endif
