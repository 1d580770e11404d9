/*
 * libcofault-preload.so: an LD_PRELOAD shim that sends unmodified programs'
 * mmap() of files on cofault mounts through /dev/cofault (see dev.c), and
 * everything else, and every failure, to the real mmap() untouched.
 *
 * It runs inside arbitrary, often multithreaded and forking programs, in
 * every mmap() they make, including glibc's own and those made while the
 * dynamic linker is still starting them: so no locks (nothing for fork() to
 * catch held), no malloc and no stdio streams on any path, errno preserved,
 * and recursion through dlsym() guarded. Environment, read once at load:
 *   COFAULT_PRELOAD_ANY_FUSE=1  any FUSE mount, not only fuse.cofault ones
 *   COFAULT_PRELOAD_MOUNT=DIR   only files of the filesystem holding DIR
 *   COFAULT_PRELOAD_DEBUG=1     one line on stderr per file mapping
 */
#include "config.h"

/* This file defines both mmap and mmap64: keep the headers from renaming. */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault/dev.h"
#include "fault/mountinfo.h"

#define PRELOAD_EXPORT __attribute__((visibility("default")))

typedef void *(*preload_mmap32_fn)(void *, size_t, int, int, int, off_t);

/* The next mmap and mmap64 (glibc's, or another interposer's). */
static _Atomic(preload_mmap32_fn) preload_next_mmap;
static _Atomic(fault_mmap_fn) preload_next_mmap64;

/*
 * Set while this thread is inside dlsym(), which may allocate and so map:
 * those nested calls go straight to the system call. initial-exec: the shim
 * is loaded at start-up, so its TLS is static and reaching it never calls
 * malloc the way a dynamic TLS access can.
 */
static __thread int preload_in_dlsym __attribute__((tls_model("initial-exec")));

/* Configuration, written by the constructor before preload_ready is set. */
static bool preload_any_fuse;
static bool preload_debug;
static bool preload_have_mount; /* COFAULT_PRELOAD_MOUNT was given */
static bool preload_mount_ok;	/* ... and stat() of it worked */
static dev_t preload_mount_dev;
static _Atomic bool preload_ready;

/* Why a file mapping went the way it did (debug output, cached verdicts). */
enum preload_verdict {
	PRELOAD_UNKNOWN = 0, /* not decided yet; the cache's empty value */
	PRELOAD_SELECTED,    /* a cofault mount (or any FUSE): try the device */
	PRELOAD_NOT_FUSE,
	PRELOAD_NOT_COFAULT, /* FUSE, but another filesystem */
	PRELOAD_OTHER_MOUNT, /* not the COFAULT_PRELOAD_MOUNT one */
	PRELOAD_NOT_REGULAR,
	PRELOAD_UNREADABLE, /* statfs or mountinfo failed: not cached */
};

static const char *const preload_verdict_text[] = {
	[PRELOAD_UNKNOWN] = "undecided",
	[PRELOAD_SELECTED] = "selected",
	[PRELOAD_NOT_FUSE] = "not FUSE",
	[PRELOAD_NOT_COFAULT] = "FUSE, not a cofault mount",
	[PRELOAD_OTHER_MOUNT] = "outside COFAULT_PRELOAD_MOUNT",
	[PRELOAD_NOT_REGULAR] = "not a regular file",
	[PRELOAD_UNREADABLE] = "cannot classify",
};

/*
 * Verdicts per st_dev, so the mount table is read once per filesystem, not
 * per mmap(). Open addressing, insert-only, lock-free: a slot's key is
 * claimed by compare-and-swap, then its verdict stored; a reader that finds
 * the key before the verdict simply decides again (same answer). When full,
 * verdicts are no longer cached, which costs time, never correctness. A
 * device number reused by a later mount keeps the old verdict; the module
 * checks every file itself, so a wrong guess only costs a fallback.
 */
#define PRELOAD_CACHE_SLOTS 64
static _Atomic unsigned long long preload_cache_dev[PRELOAD_CACHE_SLOTS];
static _Atomic unsigned char preload_cache_verdict[PRELOAD_CACHE_SLOTS];

static unsigned int preload_cache_hash(dev_t dev)
{
	return (unsigned int)(((unsigned long long)dev *
			       0x9e3779b97f4a7c15ULL) >>
			      58);
}

/* The cached verdict for dev, or PRELOAD_UNKNOWN. dev 0 is never cached. */
static enum preload_verdict preload_cache_get(dev_t dev)
{
	unsigned int i, slot = preload_cache_hash(dev);
	unsigned long long key;

	for (i = 0; i < PRELOAD_CACHE_SLOTS; i++) {
		key = atomic_load_explicit(
			&preload_cache_dev[(slot + i) % PRELOAD_CACHE_SLOTS],
			memory_order_acquire);
		if (key == 0)
			break;
		if (key == dev)
			return atomic_load_explicit(
				&preload_cache_verdict[(slot + i) %
						       PRELOAD_CACHE_SLOTS],
				memory_order_acquire);
	}
	return PRELOAD_UNKNOWN;
}

static void preload_cache_put(dev_t dev, enum preload_verdict v)
{
	unsigned int i, slot = preload_cache_hash(dev), s;
	unsigned long long key;

	if (dev == 0)
		return;
	for (i = 0; i < PRELOAD_CACHE_SLOTS; i++) {
		s = (slot + i) % PRELOAD_CACHE_SLOTS;
		key = 0;
		if (atomic_compare_exchange_strong(&preload_cache_dev[s], &key,
						   (unsigned long long)dev) ||
		    key == dev) {
			atomic_store_explicit(&preload_cache_verdict[s], v,
					      memory_order_release);
			return;
		}
	}
}

/* Is dev a cofault mount, says /proc/self/mountinfo? */
static enum preload_verdict preload_classify_mount(dev_t dev)
{
	int fd, r;

	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return PRELOAD_UNREADABLE;
	r = fault_mountinfo_find(fd, dev);
	close(fd);
	if (r < 0)
		return PRELOAD_UNREADABLE;
	/* Absent: a line too long to read, or unmounted meanwhile. */
	return r == FAULT_MOUNT_COFAULT ? PRELOAD_SELECTED
					: PRELOAD_NOT_COFAULT;
}

/* Should fd's mapping go to the device? The verdict, cached per st_dev. */
static enum preload_verdict preload_select(int fd)
{
	enum preload_verdict v;
	dev_t dev;
	int err;

	if (fault_dev_check_file(fd, &dev) < 0)
		return PRELOAD_NOT_REGULAR;
	if (preload_have_mount &&
	    (!preload_mount_ok || dev != preload_mount_dev))
		return PRELOAD_OTHER_MOUNT;
	v = preload_cache_get(dev);
	if (v != PRELOAD_UNKNOWN)
		return v;
	err = fault_dev_check_fuse(fd);
	if (err == -EXDEV)
		v = PRELOAD_NOT_FUSE;
	else if (err < 0)
		return PRELOAD_UNREADABLE;
	else if (preload_any_fuse)
		v = PRELOAD_SELECTED;
	else
		v = preload_classify_mount(dev);
	if (v != PRELOAD_UNREADABLE)
		preload_cache_put(dev, v);
	return v;
}

/* "cofault-preload: mmap fd 3 off 0 len 4096: <what> (<why>)" on stderr. */
static void preload_log(int fd, off64_t offset, size_t length, const char *what,
			const char *why, int err)
{
	char line[256];
	const char *name = err ? strerrorname_np(-err) : NULL;
	int n;

	/* snprintf with only %s and integers neither allocates nor maps. */
	n = snprintf(
		line, sizeof(line),
		"cofault-preload: mmap fd %d off %lld len %zu: %s (%s%s%s)\n",
		fd, (long long)offset, length, what, why, name ? ": " : "",
		name ? name : "");
	if (n > 0)
		(void)!write(STDERR_FILENO, line,
			     (size_t)n < sizeof(line) ? (size_t)n
						      : sizeof(line) - 1);
}

/* Only while dlsym() runs or if it failed: the kernel's mmap, no wrapper. */
static void *preload_sys_mmap(void *addr, size_t length, int prot, int flags,
			      int fd, off64_t offset)
{
#ifdef SYS_mmap2
	if (offset & 4095) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	return (void *)syscall(SYS_mmap2, addr, length, prot, flags, fd,
			       (long)(offset >> 12));
#else
	return (void *)syscall(SYS_mmap, addr, length, prot, flags, fd, offset);
#endif
}

/* dlsym(RTLD_NEXT, name), guarded against the mmap() it may make itself. */
static void *preload_dlsym(const char *name)
{
	int saved_errno = errno;
	void *sym;

	preload_in_dlsym = 1;
	sym = dlsym(RTLD_NEXT, name);
	preload_in_dlsym = 0;
	errno = saved_errno;
	return sym;
}

/*
 * The next mmap64 and mmap, resolved on first use. Racing threads store the
 * same pointer, so no once-control (which a fork() could catch half-run) is
 * needed; a nested call from inside dlsym() gets the system call instead.
 */
static fault_mmap_fn preload_real_mmap64(void)
{
	fault_mmap_fn fn;

	fn = atomic_load_explicit(&preload_next_mmap64, memory_order_acquire);
	if (fn)
		return fn;
	if (preload_in_dlsym)
		return preload_sys_mmap;
	fn = (fault_mmap_fn)preload_dlsym("mmap64");
	if (!fn)
		return preload_sys_mmap;
	atomic_store_explicit(&preload_next_mmap64, fn, memory_order_release);
	return fn;
}

static preload_mmap32_fn preload_real_mmap32(void)
{
	preload_mmap32_fn fn;

	fn = atomic_load_explicit(&preload_next_mmap, memory_order_acquire);
	if (fn || preload_in_dlsym)
		return fn;
	fn = (preload_mmap32_fn)preload_dlsym("mmap");
	if (fn)
		atomic_store_explicit(&preload_next_mmap, fn,
				      memory_order_release);
	return fn;
}

/*
 * Try the device for a file mapping the configuration selects. Returns
 * true with *out set if the device mapped it; false means: do exactly what
 * the real mmap would, as if the shim were not there.
 */
static bool preload_try_device(void *addr, size_t length, int prot, int flags,
			       int fd, off64_t offset, void **out)
{
	enum preload_verdict v;
	int err;

	if (!fault_dev_mappable(prot, flags, fd))
		return false;
	if (!atomic_load_explicit(&preload_ready, memory_order_acquire) ||
	    preload_in_dlsym)
		return false;
	v = preload_select(fd);
	if (v != PRELOAD_SELECTED) {
		if (preload_debug)
			preload_log(fd, offset, length, "plain mmap",
				    preload_verdict_text[v], 0);
		return false;
	}
	err = fault_dev_mmap(preload_real_mmap64(), addr, length, prot, flags,
			     fd, offset, out);
	if (preload_debug)
		preload_log(fd, offset, length,
			    err ? "plain mmap" : "via /dev/cofault",
			    err ? "selected, /dev/cofault failed" : "selected",
			    err);
	return err == 0;
}

PRELOAD_EXPORT void *mmap64(void *addr, size_t length, int prot, int flags,
			    int fd, off64_t offset)
{
	int saved_errno = errno;
	fault_mmap_fn fn;
	void *p;

	if (preload_try_device(addr, length, prot, flags, fd, offset, &p)) {
		errno = saved_errno;
		return p;
	}
	fn = preload_real_mmap64();
	errno = saved_errno;
	return fn(addr, length, prot, flags, fd, offset);
}

PRELOAD_EXPORT void *mmap(void *addr, size_t length, int prot, int flags,
			  int fd, off_t offset)
{
	int saved_errno = errno;
	preload_mmap32_fn fn;
	void *p;

	if (preload_try_device(addr, length, prot, flags, fd, offset, &p)) {
		errno = saved_errno;
		return p;
	}
	fn = preload_real_mmap32();
	errno = saved_errno;
	if (!fn)
		return preload_sys_mmap(addr, length, prot, flags, fd, offset);
	return fn(addr, length, prot, flags, fd, offset);
}

/* True for a set environment variable other than "", "0", "no", "false". */
static bool preload_env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && *v && strcmp(v, "0") != 0 && strcasecmp(v, "no") != 0 &&
	       strcasecmp(v, "false") != 0;
}

/*
 * Runs when the shim is loaded, before the program's main() and normally
 * before it has threads. mmap() calls made earlier go to the real mmap.
 */
__attribute__((constructor)) static void preload_init(void)
{
	int saved_errno = errno;
	const char *dir;
	struct stat st;

	preload_real_mmap64();
	preload_real_mmap32();
	preload_any_fuse = preload_env_flag("COFAULT_PRELOAD_ANY_FUSE");
	preload_debug = preload_env_flag("COFAULT_PRELOAD_DEBUG");
	dir = getenv("COFAULT_PRELOAD_MOUNT");
	if (dir && *dir) {
		preload_have_mount = true;
		if (stat(dir, &st) == 0) {
			preload_mount_ok = true;
			preload_mount_dev = st.st_dev;
		} else if (preload_debug) {
			preload_log(-1, 0, 0, "no file mapping selected",
				    "COFAULT_PRELOAD_MOUNT cannot be read",
				    -errno);
		}
	}
	atomic_store_explicit(&preload_ready, true, memory_order_release);
	errno = saved_errno;
}
