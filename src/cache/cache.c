/*
 * The disk cache's public face (cache.h): opening a cache directory, the
 * chunk read and write paths, and the maintenance calls behind
 * `cofault cache stats|clear|verify`.
 *
 * Every chunk read is verified against the CRC32C in the index: at 5-6 GB/s
 * (SSE4.2) it costs about a tenth of a page-cache read, and it is what makes
 * sharing the directory with a process that evicts, and a crash, safe: a
 * mismatch is re-checked against the index and reported as a miss, never as
 * data. The zero-copy path (cache-hold.c) verifies the same way, in place.
 *
 * Locks: c->lock (queue, access times, limits), c->db_lock (the writing
 * foreground SQLite connection) and c->rd_lock (the reading one) are never
 * held together.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache-int.h"
#include "common/log.h"

#define NOSPC_WARN_PERIOD_S 60

int64_t cache_now_locked(struct cache *c)
{
	struct timespec ts;
	int64_t now;

	/* Wall clock: access times are compared across processes and boots. */
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (now <= c->clock_us)
		now = c->clock_us + 1;
	c->clock_us = now;
	return now;
}

int cache_chunk_row(struct cache *c, uint64_t obj, uint64_t idx, uint32_t *len,
		    uint32_t *crc)
{
	int err;

	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_chunk_get(&c->rd, obj, idx, len, crc);
	pthread_mutex_unlock(&c->rd_lock);
	return err;
}

void cache_touch(struct cache *c, uint64_t obj, uint64_t idx)
{
	pthread_mutex_lock(&c->lock);
	/* A full buffer drops the access: LRU is approximate by design. */
	if (c->ntouch < CACHE_TOUCH_MAX) {
		struct cache_touch *t = &c->touch[c->ntouch++];

		t->obj = obj;
		t->idx = idx;
		t->atime = cache_now_locked(c);
	}
	if (c->ntouch >= CACHE_TOUCH_MAX / 2)
		pthread_cond_signal(&c->wake);
	cache_evict_nudge_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void cache_warn_nospc(struct cache *c, const char *why, int err)
{
	time_t now = time(NULL);
	bool warn;

	pthread_mutex_lock(&c->lock);
	warn = !c->nospc_warned || now - c->nospc_warned >= NOSPC_WARN_PERIOD_S;
	if (warn)
		c->nospc_warned = now;
	pthread_mutex_unlock(&c->lock);
	if (warn)
		log_warn("cache: %s: %s: not caching for now", why,
			 strerror(err));
	else
		log_debug("cache: %s: %s", why, strerror(err));
}

/* mkdir -p, each new level 0700 whatever the umask. */
static int cache_mkdir_p(const char *dir)
{
	char *p, *s = strdup(dir);
	int err = 0;

	if (!s)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		char ch = *p;

		if (ch != '/' && ch)
			continue;
		*p = '\0';
		if (mkdir(s, 0700) == 0) {
			if (chmod(s, 0700) < 0) {
				err = -errno;
				break;
			}
		} else if (errno != EEXIST) {
			err = -errno;
			break;
		}
		if (!ch)
			break;
		*p = ch;
	}
	free(s);
	return err;
}

/* The directory must be ours; take group and other bits away if set. */
static int cache_check_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid()) {
		log_err("cache: %s belongs to uid %u", dir,
			(unsigned int)st.st_uid);
		return -EACCES;
	}
	if ((st.st_mode & 07777) != 0700) {
		if (st.st_mode & 077)
			log_warn("cache: %s was mode %o, now 0700", dir,
				 (unsigned int)(st.st_mode & 07777));
		if (chmod(dir, 0700) < 0)
			return -errno;
	}
	return 0;
}

/*
 * SQLite creates the -wal and -shm files with the database file's mode:
 * creating that one 0600 ourselves makes all three private.
 */
static int cache_create_index_file(const char *path)
{
	struct stat st;
	int fd, err = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 ||
	    ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0))
		err = -errno;
	close(fd);
	return err;
}

static int unlink_obj(const struct cache *c, uint64_t obj, void *arg)
{
	cache_store_unlink(c, obj);
	return 0;
}

/*
 * Remove a damaged index and every data file: a new index numbers objects
 * from 1 again, and must not find old bytes under those ids.
 */
static int cache_reset_index(struct cache *c)
{
	static const char *const suffix[] = {"-wal", "-shm", ""};
	char path[4096];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", c->index_path, suffix[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
	}
	cache_store_scan(c, unlink_obj, NULL);
	return cache_create_index_file(c->index_path);
}

static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 2);

	if (p) {
		memcpy(p, a, la);
		p[la] = '/';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

int cache_open(const struct cache_opts *o, struct cache **out)
{
	uint32_t cs = o ? o->chunk_size : 0;
	struct cache *c;
	bool wiped;
	int err;

	*out = NULL;
	if (!o || !o->dir || !*o->dir)
		return -EINVAL;
	if (cs && !cache_chunk_size_ok(cs))
		return -EINVAL;
	/* Without it holds are refused (-EAGAIN) and chunks read by copy:
	 * nothing to fail the open for. */
	(void)cache_guard_install();
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->db_lock, NULL);
	pthread_mutex_init(&c->rd_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->share_lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->done, NULL);
	c->share_fd = -1;
	c->share_slot = -1;
	c->dir = strdup(o->dir);
	c->data_dir = path_join(o->dir, "data");
	c->index_path = path_join(o->dir, "index.db");
	if (!c->dir || !c->data_dir || !c->index_path) {
		err = -ENOMEM;
		goto out_free;
	}

	/*
	 * A maintenance command only looks at a cache that exists: a typo
	 * in --cache-dir, or a directory that is not a cache (a home), must
	 * not be created, made private or given an index.
	 */
	if (o->maintenance && access(c->index_path, F_OK) < 0) {
		err = -errno;
		goto out_free;
	}
	err = cache_mkdir_p(c->dir);
	if (!err)
		err = cache_check_dir(c->dir);
	if (!err)
		err = cache_store_mkdirs(c);
	if (!err)
		err = cache_create_index_file(c->index_path);
	if (err) {
		log_err("cache: %s: %s", c->dir, strerror(-err));
		goto out_free;
	}
	err = cache_index_open(&c->fg, c->index_path);
	if (!err)
		err = cache_index_setup(&c->fg, &cs, o->reset_on_mismatch,
					&wiped);
	if (err == -EUCLEAN && o->maintenance) {
		/* Left for a mount to reset: others may be using it. */
		log_err("cache: %s is damaged", c->index_path);
	} else if (err == -EUCLEAN) {
		/* Only a cache: start afresh rather than refuse to mount. */
		log_err("cache: %s is damaged: starting an empty cache",
			c->index_path);
		cache_index_close(&c->fg);
		err = cache_reset_index(c);
		if (!err)
			err = cache_index_open(&c->fg, c->index_path);
		if (!err)
			err = cache_index_setup(&c->fg, &cs,
						o->reset_on_mismatch, &wiped);
	}
	if (err)
		goto out_index;
	/* After the setup: the schema is there to prepare against. */
	err = cache_index_open(&c->rd, c->index_path);
	c->rd.chunk_size = cs;
	if (!err)
		err = cache_index_read_only(&c->rd);
	if (err)
		goto out_index;
	c->chunk_size = cs;
	c->direct = true;
	c->no_evict = o->maintenance;
	if (wiped)
		cache_store_scan(c, unlink_obj, NULL);
	c->max_bytes = o->max_bytes ? o->max_bytes : cache_default_size(c->dir);
	if (!c->max_bytes)
		c->max_bytes = 1ull << 30; /* statvfs failed: be modest */
	c->min_free_bytes = o->min_free_bytes;
	/* Maintenance handles never write: they only read the others'. */
	(void)cache_share_open(c, !c->no_evict);
	c->idx_gen = cache_share_gen(c);
	if (cache_index_totals(&c->fg, NULL, NULL, &c->idx_bytes) < 0)
		c->idx_bytes = 0;
	err = cache_evict_start(c);
	if (err)
		goto out_share;
	*out = c;
	return 0;

out_share:
	cache_share_close(c);
out_index:
	cache_index_close(&c->rd);
	cache_index_close(&c->fg);
out_free:
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->share_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->rd_lock);
	pthread_mutex_destroy(&c->db_lock);
	free(c->index_path);
	free(c->data_dir);
	free(c->dir);
	free(c);
	return err;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	cache_evict_stop(c);
	/* The thread's last pass emptied the queue; this is a safety net. */
	for (size_t i = 0; i < c->npending; i++)
		close(c->pending[i].fd);
	cache_share_close(c);
	cache_index_close(&c->rd);
	cache_index_close(&c->fg);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->share_lock);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->rd_lock);
	pthread_mutex_destroy(&c->db_lock);
	free(c->index_path);
	free(c->data_dir);
	free(c->dir);
	free(c);
}

uint32_t cache_chunk_size(const struct cache *c)
{
	return c->chunk_size;
}

static int cache_object_reg(struct cache *c, const char *origin,
			    const char *key, const char *etag, uint64_t size,
			    int64_t mtime, bool replace, uint64_t *obj_id)
{
	uint64_t stale;
	int err;

	*obj_id = 0;
	if (!origin || !key || size > (uint64_t)INT64_MAX)
		return -EINVAL;
	/* The usual case, an object the index knows, is a lookup: it need
	 * not queue behind another thread's registration. */
	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_object_find(&c->rd, origin, key, etag, size, mtime,
				      obj_id);
	pthread_mutex_unlock(&c->rd_lock);
	if (!err)
		return 0;
	pthread_mutex_lock(&c->db_lock);
	err = cache_index_object(&c->fg, origin, key, etag, size, mtime,
				 replace, obj_id, &stale);
	pthread_mutex_unlock(&c->db_lock);
	if (stale) {
		log_debug("cache: %s %s changed: dropped object %" PRIu64,
			  origin, key, stale);
		cache_store_unlink(c, stale);
	}
	return err;
}

int cache_object(struct cache *c, const char *origin, const char *key,
		 const char *etag, uint64_t size, int64_t mtime,
		 uint64_t *obj_id)
{
	return cache_object_reg(c, origin, key, etag, size, mtime, true,
				obj_id);
}

int cache_object_rejoin(struct cache *c, const char *origin, const char *key,
			const char *etag, uint64_t size, int64_t mtime,
			uint64_t *obj_id)
{
	return cache_object_reg(c, origin, key, etag, size, mtime, false,
				obj_id);
}

/* Forget the entries noted more than CACHE_DROPPED_KEEP_S ago; the count
 * is published once, for the lock-free hint. Caller holds c->lock. */
static void cache_dropped_expire(struct cache *c, time_t now)
{
	size_t i, n = 0;

	for (i = 0; i < c->ndropped; i++)
		if (now - c->dropped[i].when <= CACHE_DROPPED_KEEP_S)
			c->dropped[n++] = c->dropped[i];
	__atomic_store_n(&c->ndropped, n, __ATOMIC_RELEASE);
}

/* obj_id's entry among the drops, noted now (unreported) when it is not
 * there. Caller holds c->lock. */
static struct cache_dropped *cache_dropped_entry(struct cache *c,
						 uint64_t obj_id, time_t now)
{
	size_t i, n;

	cache_dropped_expire(c, now);
	n = c->ndropped;
	for (i = 0; i < n; i++)
		if (c->dropped[i].obj == obj_id)
			return &c->dropped[i];
	if (n == CACHE_DROPPED_MAX) {
		memmove(c->dropped, c->dropped + 1,
			(n - 1) * sizeof(c->dropped[0]));
		n--;
	}
	c->dropped[n].obj = obj_id;
	c->dropped[n].when = now;
	c->dropped[n].retry_at = 0;
	c->dropped[n].reported = false;
	__atomic_store_n(&c->ndropped, n + 1, __ATOMIC_RELEASE);
	return &c->dropped[n];
}

void cache_note_dropped(struct cache *c, uint64_t obj_id)
{
	pthread_mutex_lock(&c->lock);
	cache_dropped_entry(c, obj_id, time(NULL));
	pthread_mutex_unlock(&c->lock);
}

bool cache_object_dropped(struct cache *c, uint64_t obj_id)
{
	bool found = false;
	time_t now;
	size_t i;

	/* The usual case, nothing dropped lately, without the lock. */
	if (!__atomic_load_n(&c->ndropped, __ATOMIC_ACQUIRE))
		return false;
	now = time(NULL);
	pthread_mutex_lock(&c->lock);
	cache_dropped_expire(c, now);
	for (i = 0; i < c->ndropped; i++) {
		if (c->dropped[i].obj != obj_id || c->dropped[i].reported ||
		    now < c->dropped[i].retry_at)
			continue;
		c->dropped[i].reported = true;
		found = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

void cache_object_drop_retry(struct cache *c, uint64_t obj_id)
{
	struct cache_dropped *e;
	time_t now = time(NULL);

	pthread_mutex_lock(&c->lock);
	e = cache_dropped_entry(c, obj_id, now);
	e->when = now;
	e->retry_at = now + CACHE_DROPPED_RETRY_S;
	e->reported = false;
	pthread_mutex_unlock(&c->lock);
}

int cache_object_known(struct cache *c, const char *origin, const char *key)
{
	int err;

	if (!origin || !key)
		return -EINVAL;
	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_object_known(&c->rd, origin, key);
	pthread_mutex_unlock(&c->rd_lock);
	return err;
}

int cache_object_keys(struct cache *c, const char *origin,
		      void (*fn)(void *arg, const char *key), void *arg)
{
	int err;

	if (!origin || !fn)
		return -EINVAL;
	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_object_keys(&c->rd, origin, fn, arg);
	pthread_mutex_unlock(&c->rd_lock);
	return err;
}

static void map_set(uint8_t *map, uint64_t nchunks, uint64_t idx)
{
	if (idx < nchunks)
		map[idx / 8] |= (uint8_t)(1u << (idx % 8));
}

int cache_chunk_map(struct cache *c, uint64_t obj_id, uint64_t nchunks,
		    uint8_t *map)
{
	struct cache_chunk_ref refs[256];
	uint64_t after = UINT64_MAX; /* binds as -1: before chunk 0 */
	size_t n;
	int err;

	do {
		pthread_mutex_lock(&c->rd_lock);
		err = cache_index_chunks_after(&c->rd, obj_id, after, refs,
					       sizeof(refs) / sizeof(refs[0]),
					       &n);
		pthread_mutex_unlock(&c->rd_lock);
		if (err)
			return err;
		for (size_t i = 0; i < n; i++) {
			if (refs[i].obj != obj_id) {
				n = 0;
				break;
			}
			map_set(map, nchunks, refs[i].idx);
			after = refs[i].idx;
		}
	} while (n == sizeof(refs) / sizeof(refs[0]));
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->npending; i++) {
		const struct cache_chunk_ref *r = &c->pending[i].ref;

		if (r->obj == obj_id)
			map_set(map, nchunks, r->idx);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Look in the write queue; caller holds c->lock. */
static bool cache_pending_find(struct cache *c, uint64_t obj, uint64_t idx,
			       uint32_t *len, uint32_t *crc)
{
	for (size_t i = c->npending; i-- > 0;) {
		const struct cache_chunk_ref *r = &c->pending[i].ref;

		if (r->obj == obj && r->idx == idx) {
			*len = r->len;
			*crc = r->crc;
			return true;
		}
	}
	return false;
}

/*
 * Read and verify one chunk whose index entry says (ilen, icrc). 0, or
 * -EBADMSG when the bytes do not match, or -errno.
 */
static int cache_read_verify(struct cache *c, int fd, uint64_t idx, void *buf,
			     uint32_t ilen, uint32_t icrc)
{
	int err;

	err = cache_store_pread(fd, buf, ilen, (off_t)(idx * c->chunk_size));
	if (err == -ENODATA)
		return -EBADMSG;
	if (err)
		return err;
	return cache_crc32c(0, buf, ilen) == icrc ? 0 : -EBADMSG;
}

/*
 * The slow path after a failed check. The first look was unlocked: the
 * chunk may have been evicted (rows first, holes after) or rewritten since.
 * Under a read lock on the chunk's range no writer or evictor can change
 * it, so look again: still indexed and still bad means the bytes on disk
 * are bad, and it is dropped if the lock becomes a write lock at once.
 * 0: buf now holds len verified bytes. -ENOENT: gone or changed, not our
 * business, or bad but held by another reader. -EBADMSG: dropped as bad
 * (logged). Other -errno.
 */
static int cache_recheck(struct cache *c, uint64_t obj, uint64_t idx, void *buf,
			 size_t len, const char *what)
{
	uint32_t ilen, icrc;
	const char *why;
	int fd, err;

	fd = cache_store_open(c, obj, O_RDWR);
	if (fd == -ENOENT) {
		/* No data file at all: any row for it is stale. */
		ilen = 0;
		why = "has no data file";
		goto out_check_row;
	}
	if (fd < 0)
		return fd;
	err = cache_store_lock(c, fd, idx, F_RDLCK, true);
	if (err)
		goto out_close;
	err = cache_chunk_row(c, obj, idx, &ilen, &icrc);
	if (err)
		goto out_close;
	if (ilen != len || ilen > c->chunk_size) {
		why = "has the wrong length";
		err = -EBADMSG;
	} else {
		why = "failed its checksum";
		err = cache_read_verify(c, fd, idx, buf, ilen, icrc);
		if (err == -EIO) {
			/* A bad sector, say: as good as corrupt. */
			why = "could not be read";
			err = -EBADMSG;
		}
	}
	/*
	 * Dropped only under a write lock, as every punch is: another reader
	 * may hold the range to splice from it (cache-hold.c), a chunk of
	 * another length included. Not waited for, since a hold can last:
	 * a miss for now, and a later read, verify or eviction drops it.
	 */
	if (err == -EBADMSG && cache_store_lock(c, fd, idx, F_WRLCK, false))
		err = -ENOENT;
	if (err == -EBADMSG) {
		pthread_mutex_lock(&c->db_lock);
		err = cache_index_chunk_del(&c->fg, obj, idx, icrc);
		pthread_mutex_unlock(&c->db_lock);
		if (!err) {
			cache_store_punch(c, fd, obj, idx);
			log_warn("cache: chunk %" PRIu64 "/%" PRIu64
				 " %s (%s): dropped",
				 obj, idx, why, what);
			err = -EBADMSG;
		}
	}
out_close:
	close(fd); /* releases the lock */
	return err;

out_check_row:
	pthread_mutex_lock(&c->db_lock);
	err = cache_index_chunk_get(&c->fg, obj, idx, &ilen, &icrc);
	if (!err)
		err = cache_index_chunk_del(&c->fg, obj, idx, icrc);
	pthread_mutex_unlock(&c->db_lock);
	if (err)
		return err;
	log_warn("cache: chunk %" PRIu64 "/%" PRIu64 " %s (%s): dropped", obj,
		 idx, why, what);
	return -EBADMSG;
}

int cache_chunk_read(struct cache *c, uint64_t obj_id, uint64_t idx, void *buf,
		     size_t len)
{
	uint32_t ilen, icrc;
	bool pending;
	int fd, err;

	if (!len || len > c->chunk_size ||
	    idx > (uint64_t)INT64_MAX / c->chunk_size)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	pending = cache_pending_find(c, obj_id, idx, &ilen, &icrc);
	pthread_mutex_unlock(&c->lock);
	if (!pending) {
		err = cache_chunk_row(c, obj_id, idx, &ilen, &icrc);
		if (err)
			return err;
	}
	/*
	 * The fast path takes no lock: a verified checksum is proof enough.
	 * A chunk still queued is only ever read here (its writer holds the
	 * range lock until it is indexed).
	 */
	if (ilen != len) {
		err = -EBADMSG;
	} else {
		fd = cache_store_open(c, obj_id, O_RDONLY);
		if (fd < 0) {
			err = fd == -ENOENT ? -EBADMSG : fd;
		} else {
			err = cache_read_verify(c, fd, idx, buf, ilen, icrc);
			close(fd);
		}
	}
	/*
	 * Unreadable (a bad sector, say) is as good as corrupt: dropped and
	 * fetched again, not an EIO for every read of the chunk.
	 */
	if (err == -EIO)
		err = -EBADMSG;
	if (err == -EBADMSG && !pending)
		err = cache_recheck(c, obj_id, idx, buf, len, "read");
	if (err == -EBADMSG)
		return -ENOENT;
	if (err)
		return err;

	cache_touch(c, obj_id, idx);
	return 0;
}

static bool is_nospc(int err)
{
	return err == -ENOSPC || err == -EDQUOT;
}

static int cache_chunk_write_reserved(struct cache *c, uint64_t obj_id,
				      uint64_t idx, const void *buf,
				      size_t len, bool direct);

void cache_inflight_add(struct cache *c, uint64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->inflight_bytes += bytes;
	cache_share_add(c, bytes);
	pthread_mutex_unlock(&c->lock);
}

void cache_inflight_sub(struct cache *c, uint64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->inflight_bytes -= bytes;
	cache_share_sub(c, bytes);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Reserve len bytes for a chunk write if the directory has room for them:
 * if the index, the bytes in flight of every handle (ours, and those other
 * processes publish in the share: written and not yet indexed, or being
 * evicted and not yet punched) and len stay within the limit.
 * Returns whether it did; cache_chunk_put gives them back if the chunk is
 * not queued, the eviction thread once it is indexed.
 *
 * The index's totals are not read for every write: that is a read
 * transaction on the reading connection, under rd_lock, which every
 * lookup waits for. The figure last read is kept with the share's count
 * of bytes indexed just before that read; every chunk any process indexed
 * since was added to the count after its commit, and stayed in its
 * writer's slot until then, so figure plus growth is never below what the
 * index holds, only above it by what was evicted or cleared meanwhile. A
 * write this bound lets through, anywhere below the limit, needs nothing
 * fresher; only one it would refuse, near the limit, has the totals read
 * again (fresh) and the dead processes' slots cleared before it is
 * refused. (A process that dies between a commit and its count is missed
 * until the next eviction pass reads the totals: one batch at most. One
 * that could not map the share is seen through the index only.)
 */
static bool cache_reserve(struct cache *c, size_t len, bool fresh)
{
	uint64_t others, bytes = 0, gen = 0, est;
	bool read = false, room;

	if (fresh) {
		gen = cache_share_gen(c);
		pthread_mutex_lock(&c->rd_lock);
		read = cache_index_totals(&c->rd, NULL, NULL, &bytes) == 0;
		pthread_mutex_unlock(&c->rd_lock);
	}
	/*
	 * Taken before the others' slots are read, and given back if there
	 * is no room: of two writers racing for the last room in two
	 * processes, at least one sees the other's bytes (the slots are
	 * sequentially consistent atomics), so at worst both are refused,
	 * never both let past the limit. Read first and taken after, each
	 * could find room for one chunk and take it. Taken after the totals
	 * are read, not before: held across that read (and the wait for
	 * rd_lock), it would be counted against others for longer.
	 */
	cache_inflight_add(c, len);
	/*
	 * The slots after the totals and before the count (read below), as
	 * the eviction thread changes them in the other orders: count up
	 * then slot down for a chunk indexed, slot up, rows deleted, holes
	 * punched, slot down for chunks evicted. A chunk being indexed or
	 * evicted is counted twice for a moment, never not at all.
	 */
	others = cache_share_others(c, fresh);
	pthread_mutex_lock(&c->lock);
	if (read) {
		c->idx_bytes = bytes;
		c->idx_gen = gen;
	}
	/* inflight_bytes holds len now. */
	est = c->idx_bytes + (cache_share_gen(c) - c->idx_gen) + others +
	      c->inflight_bytes;
	room = est <= c->max_bytes;
	if (!room) {
		c->inflight_bytes -= len;
		cache_share_sub(c, len);
	}
	pthread_mutex_unlock(&c->lock);
	return room;
}

static int cache_chunk_put(struct cache *c, uint64_t obj_id, uint64_t idx,
			   const void *buf, size_t len, bool direct)
{
	bool low;
	int err;

	if (!len || len > c->chunk_size ||
	    idx > (uint64_t)INT64_MAX / c->chunk_size)
		return -EINVAL;
	/* Not cached, without a word: the loss was logged once. */
	if (__atomic_load_n(&c->layout_lost, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&c->lock);
	low = c->low_space;
	/* The floor may have been looked at long ago: look again. */
	if (low)
		cache_evict_nudge_locked(c);
	pthread_mutex_unlock(&c->lock);
	if (low) {
		cache_warn_nospc(c, "free space under the floor", ENOSPC);
		return 0;
	}
	if (!cache_reserve(c, len, false) && !cache_reserve(c, len, true)) {
		/*
		 * At the limit: wait for one eviction pass to free headroom,
		 * so the newest chunk replaces the least recently used. The
		 * callers are fetch threads whose reader was already served,
		 * so this is off every read's critical path.
		 */
		pthread_mutex_lock(&c->lock);
		c->want_room = true;
		pthread_mutex_unlock(&c->lock);
		cache_evict_kick(c, true);
		if (!cache_reserve(c, len, true)) {
			log_debug("cache: at its limit, chunk %" PRIu64
				  "/%" PRIu64 " not cached",
				  obj_id, idx);
			return 0;
		}
	}
	err = cache_chunk_write_reserved(c, obj_id, idx, buf, len, direct);
	if (err)
		cache_inflight_sub(c, len);
	return err < 0 ? err : 0;
}

int cache_chunk_write(struct cache *c, uint64_t obj_id, uint64_t idx,
		      const void *buf, size_t len)
{
	return cache_chunk_put(c, obj_id, idx, buf, len, false);
}

int cache_chunk_write_direct(struct cache *c, uint64_t obj_id, uint64_t idx,
			     const void *buf, size_t len)
{
	return cache_chunk_put(c, obj_id, idx, buf, len, true);
}

/*
 * Give back the room of a chunk written, or partly written, that will not
 * be indexed (its write, sync or commit failed): unless the index has that
 * chunk already, from another writer or an earlier write. Its bytes are
 * then that chunk's (an object id names one version), the same as this
 * write's: left alone, they are checked against the index's CRC32C by
 * every read as always, where a punch dropped a good chunk. A lookup that
 * fails punches too: bytes left that nothing indexes would hold their
 * room until a cache_verify, where punching an indexed chunk costs one
 * miss (its next read fails the check and drops the row).
 */
void cache_write_undo(struct cache *c, int fd, uint64_t obj, uint64_t idx)
{
	uint32_t len, crc;

	if (cache_chunk_row(c, obj, idx, &len, &crc) != 0)
		cache_store_punch(c, fd, obj, idx);
}

/*
 * The write proper, with len bytes reserved (cache_reserve). Returns 0
 * when queued (the reservation then lasts until the chunk is indexed), 1
 * when not cached without error, -errno; on anything but 0 the caller
 * returns the reservation.
 */
static int cache_chunk_write_reserved(struct cache *c, uint64_t obj_id,
				      uint64_t idx, const void *buf, size_t len,
				      bool direct)
{
	struct cache_pending *p;
	off_t off = (off_t)(idx * c->chunk_size);
	uint32_t crc;
	int fd, err;

	crc = cache_crc32c(0, buf, len);
	fd = cache_store_open(c, obj_id, O_RDWR | O_CREAT);
	if (fd < 0) {
		if (is_nospc(fd)) {
			cache_warn_nospc(c, "create", -fd);
			return 1;
		}
		return fd;
	}
	/*
	 * Held until the chunk is indexed (the queue owns fd): no evictor
	 * punches, and no reader drops, a chunk being rewritten. Not
	 * waited for: whoever has the range now is a reader checking or
	 * holding this very chunk (so it is cached already), an evictor
	 * punching it, or another writer of it. A held chunk stays locked
	 * as long as its holder keeps it, in this process or another, and
	 * a writer that waited for it stalled its queue; at unmount, where
	 * the holds go after the writers are joined, the daemon hung.
	 */
	err = cache_store_lock(c, fd, idx, F_WRLCK, false);
	if (err) {
		close(fd);
		return err == -EAGAIN ? 1 : err;
	}
	err = cache_store_write(c, fd, buf, len, off, direct);
	if (err) {
		cache_write_undo(c, fd, obj_id, idx);
		close(fd);
		if (is_nospc(err)) {
			cache_warn_nospc(c, "write", -err);
			return 1;
		}
		log_warn("cache: write of chunk %" PRIu64 "/%" PRIu64 ": %s",
			 obj_id, idx, strerror(-err));
		return err;
	}

	pthread_mutex_lock(&c->lock);
	while (c->npending == CACHE_PENDING_MAX && !c->stop) {
		pthread_cond_signal(&c->wake);
		pthread_cond_wait(&c->done, &c->lock);
	}
	if (c->stop) {
		pthread_mutex_unlock(&c->lock);
		cache_write_undo(c, fd, obj_id, idx);
		close(fd);
		return 1;
	}
	p = &c->pending[c->npending++];
	p->ref.obj = obj_id;
	p->ref.idx = idx;
	p->ref.len = (uint32_t)len;
	p->ref.crc = crc;
	p->atime = cache_now_locked(c);
	p->fd = fd;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int cache_flush(struct cache *c)
{
	cache_evict_kick(c, true);
	return 0;
}

void cache_set_limits(struct cache *c, uint64_t max_bytes,
		      uint64_t min_free_bytes)
{
	pthread_mutex_lock(&c->lock);
	c->max_bytes = max_bytes ? max_bytes : cache_default_size(c->dir);
	c->min_free_bytes = min_free_bytes;
	cache_share_set_limits(c, c->max_bytes, c->min_free_bytes);
	pthread_mutex_unlock(&c->lock);
	cache_evict_kick(c, false);
}

int cache_stats(struct cache *c, struct cache_stats *st)
{
	int err;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_totals(&c->rd, &st->objects, &st->chunks, &st->bytes);
	pthread_mutex_unlock(&c->rd_lock);
	if (err)
		return err;
	pthread_mutex_lock(&c->lock);
	st->max_bytes = c->max_bytes;
	st->min_free_bytes = c->min_free_bytes;
	pthread_mutex_unlock(&c->lock);
	st->chunk_size = c->chunk_size;
	cache_share_handles(c, &st->handles, &st->handles_max_bytes,
			    &st->handles_min_free_bytes);
	return cache_store_fs_free(c->dir, &st->fs_free_bytes, NULL);
}

/*
 * Punch the chunks of obj's file that hold bytes but have no index row:
 * left by a crash between a write and its indexing, or between an
 * eviction's commit and its punch. Under the chunk's write lock (taken
 * without waiting, skipped when busy) no writer is between the two.
 */
static void cache_reclaim(struct cache *c, uint64_t obj, uint64_t *chunks)
{
	uint64_t cs = c->chunk_size;
	off_t pos = 0, data, hole;
	int fd;

	fd = cache_store_open(c, obj, O_RDWR);
	if (fd < 0)
		return;
	while ((data = lseek(fd, pos, SEEK_DATA)) >= 0 &&
	       (hole = lseek(fd, data, SEEK_HOLE)) > data) {
		for (uint64_t idx = (uint64_t)data / cs;
		     idx * cs < (uint64_t)hole; idx++) {
			uint32_t len, crc;
			int err;

			if (cache_store_lock(c, fd, idx, F_WRLCK, false))
				continue;
			err = cache_chunk_row(c, obj, idx, &len, &crc);
			if (err == -ENOENT) {
				cache_store_punch(c, fd, obj, idx);
				(*chunks)++;
			}
			cache_store_lock(c, fd, idx, F_UNLCK, false);
		}
		pos = hole;
	}
	close(fd);
}

struct cache_sweep {
	bool reclaim;	    /* also punch unindexed chunks of live objects */
	uint64_t reclaimed; /* chunks */
};

/* Unlink a data file whose object is no longer indexed. */
static int cache_sweep_one(const struct cache *cc, uint64_t obj, void *arg)
{
	struct cache *c = (struct cache *)cc;
	struct cache_sweep *sw = arg;
	int err;

	pthread_mutex_lock(&c->rd_lock);
	err = cache_index_obj_exists(&c->rd, obj);
	pthread_mutex_unlock(&c->rd_lock);
	if (err == -ENOENT) {
		log_debug("cache: removing orphan data file %" PRIu64, obj);
		cache_store_unlink(c, obj);
		return 0;
	}
	if (!err && sw->reclaim)
		cache_reclaim(c, obj, &sw->reclaimed);
	return err;
}

int cache_clear(struct cache *c, const char *origin)
{
	struct cache_sweep sw = {.reclaim = false};
	uint64_t *ids;
	size_t n;
	int err;

	pthread_mutex_lock(&c->db_lock);
	err = cache_index_clear(&c->fg, origin, false, &ids, &n);
	if (err == -ENOSPC) {
		/*
		 * The index needs room for its journal even to delete: free
		 * the data first (readers of it just miss), then retry.
		 */
		log_warn("cache: file system full: removing data first");
		err = cache_index_clear(&c->fg, origin, true, &ids, &n);
		pthread_mutex_unlock(&c->db_lock);
		for (size_t i = 0; !err && i < n; i++)
			cache_store_unlink(c, ids[i]);
		free(ids);
		if (err)
			return err;
		pthread_mutex_lock(&c->db_lock);
		err = cache_index_clear(&c->fg, origin, false, &ids, &n);
	}
	pthread_mutex_unlock(&c->db_lock);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++)
		cache_store_unlink(c, ids[i]);
	free(ids);
	if (!origin)
		err = cache_store_scan(c, cache_sweep_one, &sw);
	return err;
}

int cache_verify(struct cache *c, uint64_t *checked, uint64_t *bad)
{
	struct cache_chunk_ref refs[256];
	uint64_t obj = 0, idx = 0, fd_obj = 0;
	void *buf;
	int fd = -1, err = 0;
	size_t n;

	*checked = *bad = 0;
	buf = malloc(c->chunk_size);
	if (!buf)
		return -ENOMEM;
	do {
		pthread_mutex_lock(&c->rd_lock);
		err = cache_index_chunks_after(&c->rd, obj, idx, refs, 256, &n);
		pthread_mutex_unlock(&c->rd_lock);
		for (size_t i = 0; !err && i < n; i++) {
			struct cache_chunk_ref *r = &refs[i];
			int e;

			if (fd < 0 || fd_obj != r->obj) {
				if (fd >= 0)
					close(fd);
				fd = cache_store_open(c, r->obj, O_RDONLY);
				fd_obj = r->obj;
			}
			(*checked)++;
			if (r->len > c->chunk_size)
				e = -EBADMSG;
			else if (fd < 0)
				e = fd == -ENOENT ? -EBADMSG : fd;
			else
				e = cache_read_verify(c, fd, r->idx, buf,
						      r->len, r->crc);
			/* Unreadable is bad, as for a read: not a stop. */
			if (e == -EBADMSG || e == -EIO)
				e = cache_recheck(c, r->obj, r->idx, buf,
						  r->len, "verify");
			if (e == -EBADMSG)
				(*bad)++;
			else if (e && e != -ENOENT)
				err = e;
			obj = r->obj;
			idx = r->idx;
		}
	} while (!err && n == 256);
	if (fd >= 0)
		close(fd);
	free(buf);
	if (!err) {
		struct cache_sweep sw = {.reclaim = true};

		err = cache_store_scan(c, cache_sweep_one, &sw);
		if (sw.reclaimed)
			log_info("cache: reclaimed %" PRIu64
				 " unindexed chunks",
				 sw.reclaimed);
	}
	return err;
}

/* statvfs of dir, or of its nearest existing parent. */
static int cache_fs_total(const char *dir, uint64_t *total)
{
	char *p = strdup(dir && *dir ? dir : ".");
	int err;

	*total = 0;
	if (!p)
		return -ENOMEM;
	while ((err = cache_store_fs_free(p, NULL, total)) == -ENOENT) {
		char *slash = strrchr(p, '/');

		if (!slash) {
			strcpy(p, ".");
			continue;
		}
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(p);
	return err;
}

uint64_t cache_default_size(const char *dir)
{
	uint64_t total;

	return cache_fs_total(dir, &total) ? 0 : total / 10;
}

uint64_t cache_default_min_free(const char *dir)
{
	uint64_t total, v;

	if (cache_fs_total(dir, &total))
		return 0;
	v = total / 20;
	return v < (4ull << 30) ? v : 4ull << 30;
}
