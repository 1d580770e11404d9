/*
 * The client side of /dev/cofault shared by libcofault and the LD_PRELOAD
 * shim: one cached, negotiated device descriptor per process and the
 * COFAULT_IOC_MAP + mmap sequence. Private to src/fault/.
 *
 * Everything here is thread-safe, lock-free, async-signal-safe in practice
 * (system calls and atomics only, no malloc, no stdio) and fork-safe, because
 * the shim runs it inside arbitrary programs' mmap() calls.
 */
#ifndef FAULT_DEV_H
#define FAULT_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* statfs(2) f_type of every FUSE filesystem (linux/magic.h). */
#define FAULT_FUSE_SUPER_MAGIC 0x65735546

/*
 * The mmap to call on the mapping descriptor (and nothing else): the shim
 * passes the next definition of mmap64 so as not to call itself.
 */
typedef void *(*fault_mmap_fn)(void *addr, size_t length, int prot, int flags,
			       int fd, off64_t offset);

/*
 * The process's /dev/cofault descriptor, opened (O_RDWR | O_CLOEXEC) and
 * negotiated (COFAULT_IOC_API) on first use. Returns it (owned here: never
 * close it) or -errno: -ENOENT when the module is not loaded, -EPROTO for
 * another API version, -EOPNOTSUPP when COFAULT_FEATURE_MAP is not granted.
 * Failures are not cached, so a module loaded later is found.
 */
int fault_dev_get(void);

/*
 * Can the device map this kind of mapping? False for anonymous mappings,
 * negative descriptors, shared writable mappings (the module refuses
 * those: the filesystem is read-only) and executable ones (refused too:
 * see kmod/cofault.c, cofault_map_mmap).
 */
bool fault_dev_mappable(int prot, int flags, int fd);

/*
 * Is fd a regular file? 0 if so, with *dev (may be NULL) set to its st_dev,
 * else -EBADF or -EINVAL. Reads the cached inode without asking a FUSE
 * daemon (AT_STATX_DONT_SYNC), so it cannot block on a stalled one.
 */
int fault_dev_check_file(int fd, dev_t *dev);

/*
 * Is fd's file on a FUSE filesystem? 0 if so, -EXDEV if not, or -errno.
 * statfs(2) is a round trip to a FUSE daemon: callers that can cache a
 * per-device answer should (the shim does).
 */
int fault_dev_check_fuse(int fd);

/*
 * Map fd through the device: COFAULT_IOC_MAP, real_mmap() of the mapping
 * descriptor with the caller's arguments, close it. 0 with *out set, or
 * -errno (nothing mapped; with MAP_FIXED the old range may have been
 * unmapped, as after any failed MAP_FIXED mmap, so the caller's fallback must
 * map it again). The caller has checked fault_dev_mappable(). errno is
 * clobbered.
 */
int fault_dev_mmap(fault_mmap_fn real_mmap, void *addr, size_t length, int prot,
		   int flags, int fd, off64_t offset, void **out);

#endif /* FAULT_DEV_H */
