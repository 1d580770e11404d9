/*
 * Holding a chunk for a zero-copy read: the caller hands the kernel a
 * range of the chunk's data file (splice into /dev/fuse) instead of reading
 * it into memory and writing it out again.
 *
 * The bytes must still be verified, and must not change between the check
 * and the splice. A hold therefore takes a read lock on the chunk's range
 * (no writer or evictor of any process changes a locked range; see
 * cache-store.c), checks the index under it, and computes the CRC32C over
 * a read-only mapping of the range: the page cache is read in place, not
 * copied. A page the disk cannot read fails the hold with -EIO
 * (cache-guard.c). The lock lasts until the caller is done with the range.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cache/cache-int.h"

/* CRC32C of len bytes at off of fd, read through a mapping. */
static int hold_crc(int fd, off_t off, size_t len, uint32_t *crc)
{
	void *p;
	int err;

	/* MAP_POPULATE: one pass over the page tables instead of a fault
	 * per few pages; the pages are in the page cache or read now. */
	p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, off);
	if (p == MAP_FAILED)
		return -errno;
	/* A page the disk cannot give is -EIO here, not a SIGBUS. */
	err = cache_guarded_crc32c(p, len, crc);
	munmap(p, len);
	return err;
}

int cache_chunk_hold(struct cache *c, uint64_t obj_id, uint64_t idx,
		     size_t len, struct cache_hold *h)
{
	uint32_t ilen, icrc, crc = 0;
	off_t off;
	int fd, err;

	h->fd = -1;
	if (!len || len > c->chunk_size ||
	    idx > (uint64_t)INT64_MAX / c->chunk_size)
		return -EINVAL;
	off = (off_t)(idx * c->chunk_size);
	fd = cache_store_open(c, obj_id, O_RDONLY);
	if (fd < 0)
		return fd;
	/* Not waiting: a writer or evictor at work means "read it the
	 * ordinary way", which copes with both. */
	err = cache_store_lock(c, fd, idx, F_RDLCK, false);
	if (err)
		goto out_close;
	err = cache_chunk_row(c, obj_id, idx, &ilen, &icrc);
	if (err)
		goto out_close;
	if (ilen != len) {
		err = -EBADMSG;
		goto out_close;
	}
	/*
	 * Indexed and locked: the range holds every byte that was written
	 * (rows are committed after the bytes are durable, and deleted
	 * before holes are punched, both under a write lock). Checking the
	 * size is cheaper than a SIGBUS should the file be shorter anyway.
	 */
	if (lseek(fd, 0, SEEK_END) < off + (off_t)len) {
		err = -EBADMSG;
		goto out_close;
	}
	err = hold_crc(fd, off, len, &crc);
	if (err)
		goto out_close;
	if (crc != icrc) {
		err = -EBADMSG;
		goto out_close;
	}
	cache_touch(c, obj_id, idx);
	h->fd = fd;
	h->off = (uint64_t)off;
	h->len = len;
	return 0;

out_close:
	close(fd); /* releases the lock */
	return err;
}

void cache_chunk_release(struct cache_hold *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}
