/*
 * Data files of the disk cache: one sparse file per object, chunk i at
 * offset i * chunk_size, under data/<id & 0xff in hex>/<id>. Eviction
 * punches a hole (FALLOC_FL_PUNCH_HOLE) over the chunk.
 *
 * Why not one file per chunk: bench/cache-layout.c on ext4 (virtio disk)
 * measured, for 1 MiB chunks, 777-854 MB/s written (fdatasync per chunk /
 * per 16 chunks) for the sparse file against 749 / 571 MB/s for a file per
 * chunk, and with 64 KiB chunks 179 / 651 MB/s against 93 / 115 MB/s: a
 * file per chunk needs an fdatasync per chunk even when batched, whereas
 * one fdatasync covers a whole batch of chunks of one object. Reads were
 * equal (3.1 vs 2.6 GB/s with CRC32C, page cache), and punching a hole
 * costs about what an unlink does (470 vs 620 us per 1 MiB). Fewer inodes
 * and directory entries too.
 *
 * Files are created 0600 and the directories 0700 whatever the umask.
 *
 * Byte-range locks (OFD, so they work between threads and processes alike)
 * keep a chunk's bytes and its index row in step: a writer holds a write
 * lock on the chunk from pwrite until the row is committed, the evictor a
 * non-blocking write lock from the row's deletion until the hole is
 * punched, and a reader whose checksum failed a read lock while it decides
 * whether the chunk is really bad, made a non-blocking write lock to drop
 * it. Verified reads take no lock at all.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache/cache-int.h"
#include "common/log.h"

static void store_path(const struct cache *c, uint64_t obj, char *buf,
		       size_t size, bool dir_only)
{
	if (dir_only)
		snprintf(buf, size, "%s/%02x", c->data_dir,
			 (unsigned int)(obj & 0xff));
	else
		snprintf(buf, size, "%s/%02x/%" PRIu64, c->data_dir,
			 (unsigned int)(obj & 0xff), obj);
}

/* mkdir 0700, and chmod because the umask may have taken bits away. */
static int store_mkdir(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return chmod(path, 0700) < 0 ? -errno : 0;
	return errno == EEXIST ? 0 : -errno;
}

int cache_store_mkdirs(const struct cache *c)
{
	return store_mkdir(c->data_dir);
}

int cache_store_open(const struct cache *c, uint64_t obj, int flags)
{
	char path[4096];
	int fd;

	store_path(c, obj, path, sizeof(path), false);
	fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ENOENT && (flags & O_CREAT)) {
		char dir[4096];
		int err;

		store_path(c, obj, dir, sizeof(dir), true);
		err = store_mkdir(dir);
		if (err)
			return err;
		fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	if (fd < 0)
		return -errno;
	if (flags & O_CREAT) {
		struct stat st;

		/* The umask may have removed bits; never add any for others. */
		if (fstat(fd, &st) == 0 && (st.st_mode & 07777) != 0600 &&
		    fchmod(fd, 0600) < 0) {
			int err = -errno;

			close(fd);
			return err;
		}
	}
	return fd;
}

int cache_store_unlink(const struct cache *c, uint64_t obj)
{
	char path[4096];

	store_path(c, obj, path, sizeof(path), false);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_warn("cache: unlink %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

void cache_store_punch(const struct cache *c, int fd, uint64_t obj,
		       uint64_t idx)
{
	off_t off = (off_t)(idx * c->chunk_size);
	bool own = fd < 0;

	if (own) {
		fd = cache_store_open(c, obj, O_RDWR);
		if (fd < 0)
			return; /* no file, no bytes to give back */
	}
	/*
	 * The whole slot, not just the chunk's length: a short tail chunk
	 * would otherwise keep its last block allocated. A file system
	 * without hole punching keeps the bytes (the index no longer counts
	 * them), so that is worth a debug line only.
	 */
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
		      (off_t)c->chunk_size) < 0)
		log_debug("cache: punch %" PRIu64 "/%" PRIu64 ": %s", obj, idx,
			  strerror(errno));
	if (own)
		close(fd);
}

int cache_store_lock(const struct cache *c, int fd, uint64_t idx, int type,
		     bool wait)
{
	struct flock fl = {
		.l_type = (short)type,
		.l_whence = SEEK_SET,
		.l_start = (off_t)(idx * c->chunk_size),
		.l_len = c->chunk_size,
	};

	/* OFD locks: per open file, so threads of one process exclude too. */
	while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
	}
	return 0;
}

int cache_store_pread(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA; /* past the end: never written */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int cache_store_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENOSPC;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * With direct, the aligned head of a chunk goes to the disk by direct I/O:
 * the bytes are already in the mounted file's page cache (the kernel keeps
 * what a reader was given), so a buffered write would copy them once more
 * in the CPU and keep a second copy in memory until writeback. On a cold
 * read the CPU is the bottleneck and copies are most of its work; this one
 * the device does. The unaligned tail of a short last chunk, and file
 * systems without direct I/O (F_SETFL refuses O_DIRECT), go buffered.
 */
int cache_store_write(struct cache *c, int fd, const void *buf, size_t len,
		      off_t off, bool direct)
{
	size_t head = 0;
	int err;

	if (direct && __atomic_load_n(&c->direct, __ATOMIC_RELAXED) &&
	    (uintptr_t)buf % CACHE_DIRECT_ALIGN == 0 &&
	    off % CACHE_DIRECT_ALIGN == 0)
		head = len - len % CACHE_DIRECT_ALIGN;
	if (head) {
		int fl = fcntl(fd, F_GETFL);

		/*
		 * Allocate first, size included: a direct write into a hole
		 * or past the end of the file takes the inode's lock
		 * exclusively (ext4) for the whole transfer, so writers of
		 * one file would queue; into allocated blocks inside the
		 * file they proceed side by side.
		 */
		if (fallocate(fd, 0, off, (off_t)head) < 0 &&
		    errno != EOPNOTSUPP)
			return -errno;
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
			log_debug("cache: no direct I/O in %s: %s", c->data_dir,
				  strerror(errno));
			__atomic_store_n(&c->direct, false, __ATOMIC_RELAXED);
			head = 0;
		} else {
			err = cache_store_pwrite(fd, buf, head, off);
			fcntl(fd, F_SETFL, fl);
			if (err == -EINVAL) {
				/* An alignment the device refuses: go
				 * buffered from now on. */
				log_debug("cache: direct write refused in %s",
					  c->data_dir);
				__atomic_store_n(&c->direct, false,
						 __ATOMIC_RELAXED);
				head = 0;
			} else if (err) {
				return err;
			}
		}
	}
	if (head == len)
		return 0;
	err = cache_store_pwrite(fd, (const char *)buf + head, len - head,
				 off + (off_t)head);
	if (!err)
		/* Start writeback now: the index thread's fdatasync then
		 * waits less. */
		sync_file_range(fd, off + (off_t)head, (off_t)(len - head),
				SYNC_FILE_RANGE_WRITE);
	return err;
}

int cache_store_scan(const struct cache *c,
		     int (*fn)(const struct cache *c, uint64_t obj, void *arg),
		     void *arg)
{
	int err = 0;

	for (unsigned int h = 0; h < 256 && !err; h++) {
		char dir[4096];
		struct dirent *de;
		DIR *d;

		store_path(c, h, dir, sizeof(dir), true);
		d = opendir(dir);
		if (!d) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		while (!err && (de = readdir(d))) {
			char *end;
			uint64_t obj;

			if (de->d_name[0] < '0' || de->d_name[0] > '9')
				continue;
			errno = 0;
			obj = strtoull(de->d_name, &end, 10);
			if (*end || errno || (obj & 0xff) != h)
				continue;
			err = fn(c, obj, arg);
		}
		closedir(d);
	}
	return err;
}

int cache_store_fs_free(const char *dir, uint64_t *avail, uint64_t *total)
{
	struct statvfs sv;

	if (statvfs(dir, &sv) < 0)
		return -errno;
	if (avail)
		*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (total)
		*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}
