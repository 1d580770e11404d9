/*
 * libcofault: mmap() a file of a cofault mount so that page faults on it are
 * cooperative and interruptible (through /dev/cofault, the cofault kernel
 * module), and fall back to plain mmap() wherever that is not possible.
 *
 * Link with `pkg-config --libs libcofault`. Every function is thread-safe
 * and may be used in a child after fork(). The library keeps one piece of
 * global state, the /dev/cofault descriptor it opens on first use (O_CLOEXEC,
 * never closed); a program that closes descriptors it did not open (a
 * daemonizing close_range(), say) is detected and the device reopened.
 */
#ifndef COFAULT_H
#define COFAULT_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library is built with 64-bit file offsets; on a 32-bit system compile
 * with -D_FILE_OFFSET_BITS=64 (this line refuses to compile otherwise).
 */
typedef char cofault_off_t_is_64_bits[sizeof(off_t) == 8 ? 1 : -1];

/* How cofault_mmap2() mapped, as stored through its 'how' argument. */
enum cofault_how {
	COFAULT_HOW_NONE = 0, /* it failed: MAP_FAILED, errno as mmap sets it */
	COFAULT_HOW_DEVICE = 1, /* through /dev/cofault: cooperative faults */
	COFAULT_HOW_MMAP = 2, /* plain mmap(2) (see cofault_probe() for why) */
};

/*
 * mmap(2) with the same arguments, return value and errno. When fd is a
 * regular file of a FUSE filesystem, the module is loaded and the mapping is
 * neither a shared writable one nor PROT_EXEC, it is made through
 * /dev/cofault: a fault on a page the daemon is still fetching then sleeps
 * interruptibly, without the mmap lock, so signal handlers run, timers fire
 * and other threads can map and unmap. In every other case, and whenever the
 * device path fails, it is plain mmap(2), and errno is exactly what mmap(2)
 * left. On success errno is left as it was on entry.
 *
 * The result is an ordinary file mapping of fd's file: release it with
 * munmap(2); mprotect, madvise, msync and fork behave as for mmap(2).
 * mremap(2) keeps the kind of mapping (a grown or moved mapping made through
 * the device still faults cooperatively).
 */
void *cofault_mmap(void *addr, size_t length, int prot, int flags, int fd,
		   off_t offset);

/*
 * cofault_mmap(), also telling which way it went: *how (how may be NULL) is
 * set to one of enum cofault_how.
 */
void *cofault_mmap2(void *addr, size_t length, int prot, int flags, int fd,
		    off_t offset, int *how);

/*
 * Would cofault_mmap() use /dev/cofault for a read-only mapping of fd?
 * Returns 0 if so, else a negative errno saying why not:
 *   -EBADF       fd is not an open descriptor
 *   -EINVAL      fd is not a regular file
 *   -EXDEV       the file is not on a FUSE filesystem
 *   -ENOENT      /dev/cofault does not exist (the module is not loaded)
 *   -EACCES      /dev/cofault cannot be opened by this process
 *   -EPROTO      the module speaks another API version
 *   -EOPNOTSUPP  the module lacks the mapping feature
 * fd may be -1 to ask about the device only. errno is left unchanged.
 */
int cofault_probe(int fd);

/* A short constant English name for a cofault_how value ("device", ...). */
const char *cofault_how_name(int how);

#ifdef __cplusplus
}
#endif

#endif /* COFAULT_H */
