/*
 * Glue between the data path and the persistent chunk cache. A failing
 * cache disk (full, read-only, corrupt) must only cost speed: every error
 * here becomes "not cached", logged once in a while, never a read error.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "common/bloom.h"
#include "common/log.h"
#include "fs/data-disk.h"

/* Last time a disk-tier warning was logged; racy by design, it only
 * rate-limits messages. */
static time_t data_disk_warned;

static void data_disk_warn(const char *what, int err)
{
	time_t now = time(NULL);

	if (now - data_disk_warned < 60)
		return;
	data_disk_warned = now;
	log_warn("chunk cache: %s failed (%s); reading without it", what,
		 strerror(-err));
}

uint64_t data_disk_object(struct cache *c, const char *origin,
			  const char *path, const char *etag, uint64_t size,
			  int64_t mtime)
{
	uint64_t id = 0;
	int err;

	if (!c)
		return 0;
	err = cache_object(c, origin, path, etag, size, mtime, &id);
	if (err) {
		data_disk_warn("registering an object", err);
		return 0;
	}
	return id;
}

bool data_disk_dropped(struct cache *c, uint64_t id)
{
	return cache_object_dropped(c, id);
}

int data_disk_rejoin(struct cache *c, uint64_t old, const char *origin,
		     const char *path, const char *etag, uint64_t size,
		     int64_t mtime, uint64_t *id)
{
	int err;

	err = cache_object_rejoin(c, origin, path, etag, size, mtime, id);
	if (!err) {
		log_info("chunk cache: /%s was dropped from the cache while "
			 "open; caching it again",
			 path);
	} else if (err == -EEXIST) {
		log_info("chunk cache: another version of /%s replaced the one "
			 "open here; its chunks are no longer cached",
			 path);
	} else {
		data_disk_warn("registering an object again", err);
		cache_object_drop_retry(c, old);
	}
	return err;
}

bool data_disk_known(struct cache *c, const char *origin, const char *path)
{
	int err = cache_object_known(c, origin, path);

	if (err && err != -ENOENT)
		data_disk_warn("looking up an object", err);
	return err != -ENOENT;
}

static void data_disk_add_key(void *arg, const char *key)
{
	bloom_add(arg, key);
}

struct bloom *data_disk_known_filter(struct cache *c, const char *origin)
{
	struct cache_stats st;
	struct bloom *b;
	int err;

	/* Every origin's objects: a bound on this one's, no second scan. */
	err = cache_stats(c, &st);
	if (err) {
		data_disk_warn("counting objects", err);
		return NULL;
	}
	b = bloom_new((size_t)st.objects);
	if (!b)
		return NULL;
	err = cache_object_keys(c, origin, data_disk_add_key, b);
	if (err) {
		data_disk_warn("listing objects", err);
		bloom_free(b);
		return NULL;
	}
	return b;
}

int data_disk_map(struct cache *c, uint64_t obj, uint64_t nchunks,
		  uint8_t *map)
{
	int err = cache_chunk_map(c, obj, nchunks, map);

	if (err)
		data_disk_warn("listing an object's chunks", err);
	return err;
}

int data_disk_read(struct cache *c, uint64_t obj, uint64_t idx, void *buf,
		   size_t len)
{
	int err = cache_chunk_read(c, obj, idx, buf, len);

	if (err && err != -ENOENT)
		data_disk_warn("reading a chunk", err);
	return err ? -ENOENT : 0;
}

int data_disk_hold(struct cache *c, uint64_t obj, uint64_t idx, size_t len,
		   struct cache_hold *h)
{
	int err = cache_chunk_hold(c, obj, idx, len, h);

	if (err && err != -ENOENT && err != -EAGAIN && err != -EBADMSG)
		data_disk_warn("holding a chunk", err);
	return err;
}

void data_disk_release(struct cache_hold *h)
{
	cache_chunk_release(h);
}

void data_disk_write(struct cache *c, uint64_t obj, uint64_t idx,
		     const void *buf, size_t len, bool direct)
{
	int err = direct ? cache_chunk_write_direct(c, obj, idx, buf, len) :
			   cache_chunk_write(c, obj, idx, buf, len);

	if (err)
		data_disk_warn("writing a chunk", err);
}
