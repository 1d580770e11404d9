/*
 * What the processes sharing a cache directory tell each other about the
 * bytes they have on disk but not yet in the index: <dir>/inflight, a small
 * table mapped MAP_SHARED. A chunk takes space from its write on but shows
 * in the index only once durable and committed; until then only its writer
 * knew of it, and two mounts under one limit each filled the directory to
 * nearly twice it. Each handle that writes owns a slot and keeps there its
 * bytes written or queued and not yet indexed (and, for a moment, those it
 * is evicting: out of the index, not yet punched), and its limits (for
 * stats);
 * the header counts the bytes ever indexed by anyone, so that a handle can
 * bound how far the index has grown since it last read its totals without
 * reading them again (cache_reserve in cache.c).
 *
 * A slot belongs to whoever holds a write lock on its first byte: an OFD
 * lock, so two handles of one process exclude each other as two processes
 * do. A process that dies loses its locks, so a slot whose lock can be
 * taken is stale: its bytes are not counted, and whoever finds it so clears
 * it. A child forked with a handle open shares the descriptor, and with it
 * the lock, until it exits or execs (the descriptor is close-on-exec).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/cache-int.h"
#include "common/log.h"

#define SHARE_VERSION 1
#define SHARE_SLOTS 64
/* Far beyond any real sum: the limit checks add to it without overflow. */
#define SHARE_SUM_MAX (UINT64_MAX / 4)

/* One cache line each: writers of different slots do not share one. */
struct share_slot {
	/* Bytes the owner has written or queued and not yet indexed, or is
	 * evicting and has not yet punched. */
	_Atomic uint64_t bytes;
	/* The owner's limit (cache_opts.max_bytes); 0 when free. */
	_Atomic uint64_t max_bytes;
	/* The owner's free-space floor (cache_opts.min_free_bytes). */
	_Atomic uint64_t min_free;
	uint64_t reserved[5];
};

/* The file's layout; all zero when created. */
struct cache_share {
	/* SHARE_VERSION; a file of another layout is not used. */
	_Atomic uint32_t version;
	uint32_t reserved0;
	/*
	 * Bytes of chunks indexed by any handle since the file was made,
	 * added after each commit and before the writer's slot goes down:
	 * between the two, others count those bytes twice, never not at all.
	 */
	_Atomic uint64_t indexed;
	uint64_t reserved[6];
	struct share_slot slot[SHARE_SLOTS];
};

_Static_assert(sizeof(struct share_slot) == 64, "a slot is one cache line");
_Static_assert(sizeof(struct cache_share) == 64 * (SHARE_SLOTS + 1),
	       "the file's layout is fixed");

/* The byte whose lock owns slot i. */
static off_t share_lock_off(int i)
{
	return (off_t)(offsetof(struct cache_share, slot) +
		       (size_t)i * sizeof(struct share_slot));
}

/* Take slot i's lock without waiting: 0, -EAGAIN (held) or -errno. */
static int share_trylock(int fd, int i, int type)
{
	struct flock fl = {
		.l_type = (short)type,
		.l_whence = SEEK_SET,
		.l_start = share_lock_off(i),
		.l_len = 1,
	};

	while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
	}
	return 0;
}

/*
 * Open (creating it 0600, like the index) and map the file; 0 or -errno.
 * The directory was checked to be private, so the file is ours.
 */
static int share_map(struct cache *c)
{
	size_t size = sizeof(struct cache_share);
	struct cache_share *s;
	char path[4096];
	uint32_t v = 0;
	struct stat st;
	int fd, err;

	snprintf(path, sizeof(path), "%s/inflight", c->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto out_errno;
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out_close;
	}
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		goto out_errno;
	/*
	 * Two openers may both extend it: to the same size, with zeros. With
	 * its blocks, not sparse (whoever made it): a store into a hole of a
	 * shared mapping on a full file system is a SIGBUS, where this
	 * fails now and the cache goes on without the share.
	 */
	err = posix_fallocate(fd, 0, (off_t)size);
	if (err) {
		err = -err;
		goto out_close;
	}
	s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		goto out_errno;
	if (!atomic_is_lock_free(&s->indexed)) {
		/* Such atomics take a lock of this process: none of others'. */
		err = -ENOTSUP;
		goto out_unmap;
	}
	if (!atomic_compare_exchange_strong(&s->version, &v, SHARE_VERSION) &&
	    v != SHARE_VERSION) {
		err = -EPROTO;
		goto out_unmap;
	}
	c->share = s;
	c->share_fd = fd;
	return 0;

out_unmap:
	munmap(s, size);
	close(fd);
	return err;
out_errno:
	err = -errno;
out_close:
	close(fd);
	return err;
}

int cache_share_open(struct cache *c, bool claim)
{
	int err;

	c->share = NULL;
	c->share_fd = -1;
	c->share_slot = -1;
	err = share_map(c);
	if (err) {
		log_debug("cache: %s/inflight: %s: counting this process's "
			  "writes only",
			  c->dir, strerror(-err));
		return err;
	}
	if (!claim)
		return 0;
	/*
	 * The first free slot: a crashed process's is as free as one never
	 * used, and is cleared here before it counts anything.
	 */
	for (int i = 0; i < SHARE_SLOTS; i++) {
		struct share_slot *sl = &c->share->slot[i];

		err = share_trylock(c->share_fd, i, F_WRLCK);
		if (err == -EAGAIN)
			continue;
		if (err)
			break;
		atomic_store(&sl->bytes, 0);
		atomic_store(&sl->min_free, c->min_free_bytes);
		atomic_store(&sl->max_bytes, c->max_bytes);
		c->share_slot = i;
		return 0;
	}
	log_debug("cache: %s/inflight: %s: other processes do not see this "
		  "one's writes",
		  c->dir, err ? strerror(-err) : "no free slot");
	return err ? err : -EBUSY;
}

void cache_share_close(struct cache *c)
{
	if (!c->share)
		return;
	if (c->share_slot >= 0) {
		struct share_slot *sl = &c->share->slot[c->share_slot];

		/* Cleared while still ours: the next owner starts at zero. */
		atomic_store(&sl->bytes, 0);
		atomic_store(&sl->max_bytes, 0);
		atomic_store(&sl->min_free, 0);
	}
	munmap(c->share, sizeof(*c->share));
	close(c->share_fd); /* releases the slot's lock */
	c->share = NULL;
	c->share_fd = -1;
	c->share_slot = -1;
}

void cache_share_add(struct cache *c, uint64_t bytes)
{
	if (c->share_slot >= 0)
		atomic_fetch_add(&c->share->slot[c->share_slot].bytes, bytes);
}

void cache_share_sub(struct cache *c, uint64_t bytes)
{
	if (c->share_slot >= 0)
		atomic_fetch_sub(&c->share->slot[c->share_slot].bytes, bytes);
}

void cache_share_set_limits(struct cache *c, uint64_t max_bytes,
			    uint64_t min_free)
{
	if (c->share_slot >= 0) {
		struct share_slot *sl = &c->share->slot[c->share_slot];

		atomic_store(&sl->max_bytes, max_bytes);
		atomic_store(&sl->min_free, min_free);
	}
}

void cache_share_indexed(struct cache *c, uint64_t bytes)
{
	if (c->share && bytes)
		atomic_fetch_add(&c->share->indexed, bytes);
}

uint64_t cache_share_gen(struct cache *c)
{
	return c->share ? atomic_load(&c->share->indexed) : 0;
}

/*
 * Whether slot i (not ours) has a live owner. A dead owner's slot is
 * cleared under its lock, not just skipped: a crashed process may leave
 * a count that no new owner takes over for long (only the first free slot
 * is claimed), and an empty slot costs the sums no system call. Summing
 * every slot unchecked, and leaving the clearing to the next claimant,
 * would count such a crash against the limit indefinitely.
 *
 * Within the handle this is serialised: threads share the descriptor,
 * and an OFD lock taken twice through one is taken once, so the first
 * thread's unlock would let a new owner in while the second still clears
 * the slot, wiping the new owner's count.
 */
static bool share_live(struct cache *c, int i)
{
	struct share_slot *sl = &c->share->slot[i];
	bool live;

	pthread_mutex_lock(&c->share_lock);
	/* Any error but -EAGAIN counts it too: erring towards the limit. */
	live = share_trylock(c->share_fd, i, F_WRLCK) != 0;
	if (!live) {
		atomic_store(&sl->bytes, 0);
		atomic_store(&sl->max_bytes, 0);
		atomic_store(&sl->min_free, 0);
		share_trylock(c->share_fd, i, F_UNLCK);
	}
	pthread_mutex_unlock(&c->share_lock);
	return live;
}

uint64_t cache_share_others(struct cache *c, bool check)
{
	uint64_t sum = 0;

	if (!c->share)
		return 0;
	for (int i = 0; i < SHARE_SLOTS; i++) {
		uint64_t v;

		if (i == c->share_slot)
			continue;
		v = atomic_load(&c->share->slot[i].bytes);
		if (!v || (check && !share_live(c, i)))
			continue;
		sum += v < SHARE_SUM_MAX ? v : SHARE_SUM_MAX;
		if (sum > SHARE_SUM_MAX)
			sum = SHARE_SUM_MAX;
	}
	return sum;
}

void cache_share_handles(struct cache *c, uint32_t *n, uint64_t *min_max,
			 uint64_t *max_floor)
{
	*n = 0;
	*min_max = 0;
	*max_floor = 0;
	if (!c->share)
		return;
	for (int i = 0; i < SHARE_SLOTS; i++) {
		uint64_t m = atomic_load(&c->share->slot[i].max_bytes);
		uint64_t f = atomic_load(&c->share->slot[i].min_free);

		if (!m || (i != c->share_slot && !share_live(c, i)))
			continue;
		if (!*n || m < *min_max)
			*min_max = m;
		if (f > *max_floor)
			*max_floor = f;
		(*n)++;
	}
}
