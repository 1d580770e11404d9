/*
 * The /dev/cofault client shared by libcofault and the LD_PRELOAD shim: the
 * cached, negotiated device descriptor and the map-through-the-device step.
 * Only system calls and atomics, because it runs inside other programs'
 * mmap() calls (see dev.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/cofault.h>

#include "fault/dev.h"

/*
 * The published descriptor, -1 until one is open and negotiated. Set by
 * compare-and-swap only, so racing first users each open one and the losers
 * close theirs: no lock, hence nothing a fork() can catch held. The
 * descriptor survives fork(); O_CLOEXEC drops it at exec, where the library
 * is loaded afresh.
 */
static _Atomic int dev_fd = -1;
/* st_rdev of the device, so a descriptor the program closed is noticed. */
static _Atomic unsigned long long dev_rdev;

/* Open and negotiate a new descriptor: the fd or -errno. */
static int dev_open(void)
{
	struct cofault_api api;
	struct stat st;
	int fd, err;

	fd = open(COFAULT_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/*
	 * Never one of 0 to 2: a program that closed stdin or stdout expects
	 * its own next open there (a daemon reopening /dev/null), and would
	 * write its output into the device.
	 */
	if (fd <= STDERR_FILENO) {
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);

		err = hi < 0 ? -errno : 0;
		close(fd);
		if (err)
			return err;
		fd = hi;
	}
	memset(&api, 0, sizeof(api));
	api.api = COFAULT_API;
	api.features = COFAULT_FEATURES_ALL;
	if (ioctl(fd, COFAULT_IOC_API, &api) < 0) {
		err = -errno;
		/* A module of another version fails with its own in api.api. */
		if (err == -EINVAL && api.api != COFAULT_API)
			err = -EPROTO;
		goto out_close;
	}
	if (api.api != COFAULT_API) {
		err = -EPROTO;
		goto out_close;
	}
	if (!(api.features & COFAULT_FEATURE_MAP)) {
		err = -EOPNOTSUPP;
		goto out_close;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out_close;
	}
	atomic_store_explicit(&dev_rdev, st.st_rdev, memory_order_relaxed);
	return fd;

out_close:
	close(fd);
	return err;
}

/*
 * Is fd still the descriptor we opened? A program may close descriptors it
 * does not know about and the number be reused for another file: never
 * issue our ioctls on that.
 */
static bool dev_still_ours(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev ==
		       atomic_load_explicit(&dev_rdev, memory_order_relaxed);
}

int fault_dev_get(void)
{
	int fd, nfd, seen;

	fd = atomic_load_explicit(&dev_fd, memory_order_acquire);
	if (fd >= 0) {
		if (dev_still_ours(fd))
			return fd;
		/* Forget it, but do not close it: it is someone else's now. */
		atomic_compare_exchange_strong(&dev_fd, &fd, -1);
	}
	nfd = dev_open();
	if (nfd < 0)
		return nfd;
	seen = -1;
	if (atomic_compare_exchange_strong_explicit(&dev_fd, &seen, nfd,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return nfd;
	/* Another thread published one first: use that, drop ours. */
	close(nfd);
	return seen;
}

bool fault_dev_mappable(int prot, int flags, int fd)
{
	int type = flags & MAP_TYPE;

	if (fd < 0 || (flags & MAP_ANONYMOUS))
		return false;
	if ((type == MAP_SHARED || type == MAP_SHARED_VALIDATE) &&
	    (prot & PROT_WRITE))
		return false;
	/* The module refuses these: its mmap-time security checks would
	 * see its own anonymous file, not the mapped one. */
	return !(prot & PROT_EXEC);
}

int fault_dev_check_file(int fd, dev_t *dev)
{
	struct statx stx;

	/*
	 * Mask 0 plus DONT_SYNC: FUSE answers from its inode cache instead of
	 * sending GETATTR, so a stalled daemon cannot stall the mmap() here;
	 * stx_mode's type bits and the device are always filled in.
	 */
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0, &stx) < 0)
		return -errno;
	if (!S_ISREG(stx.stx_mode))
		return -EINVAL;
	if (dev)
		*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	return 0;
}

int fault_dev_check_fuse(int fd)
{
	struct statfs sfs;

	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	return sfs.f_type == FAULT_FUSE_SUPER_MAGIC ? 0 : -EXDEV;
}

int fault_dev_mmap(fault_mmap_fn real_mmap, void *addr, size_t length, int prot,
		   int flags, int fd, off64_t offset, void **out)
{
	struct cofault_map map;
	void *p;
	int dev, err;

	*out = NULL;
	dev = fault_dev_get();
	if (dev < 0)
		return dev;
	memset(&map, 0, sizeof(map));
	map.fd = fd;
	/* CLOEXEC: another thread's fork+exec must not inherit it. */
	map.flags = COFAULT_MAP_CLOEXEC;
	if (ioctl(dev, COFAULT_IOC_MAP, &map) < 0)
		return -errno;
	p = real_mmap(addr, length, prot, flags, map.map_fd, offset);
	err = p == MAP_FAILED ? -errno : 0;
	/* The mapping holds its own reference to the file. */
	close(map.map_fd);
	if (err)
		return err;
	*out = p;
	return 0;
}
