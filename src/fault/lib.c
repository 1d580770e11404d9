/*
 * libcofault: cofault_mmap(), mmap(2) through /dev/cofault for files of FUSE
 * mounts and plain mmap(2) for everything else. The only state is the device
 * descriptor cached in dev.c; see include/cofault.h for the contract.
 */
#include "config.h"

#include <errno.h>
#include <sys/mman.h>

#include <cofault.h>

#include "fault/dev.h"

/* Built with -fvisibility=hidden: only these are the library's ABI. */
#define LIB_EXPORT __attribute__((visibility("default")))

/* The mmap the device path calls: plain mmap(2), whoever provides it. */
static void *lib_real_mmap(void *addr, size_t length, int prot, int flags,
			   int fd, off64_t offset)
{
	return mmap(addr, length, prot, flags, fd, offset);
}

LIB_EXPORT void *cofault_mmap2(void *addr, size_t length, int prot, int flags,
			       int fd, off_t offset, int *how)
{
	int saved_errno = errno;
	void *p;

	if (how)
		*how = COFAULT_HOW_NONE;
	if (fault_dev_mappable(prot, flags, fd) &&
	    fault_dev_check_file(fd, NULL) == 0 &&
	    fault_dev_check_fuse(fd) == 0 &&
	    fault_dev_mmap(lib_real_mmap, addr, length, prot, flags, fd, offset,
			   &p) == 0) {
		if (how)
			*how = COFAULT_HOW_DEVICE;
		errno = saved_errno;
		return p;
	}
	/*
	 * Every refusal above, including the module's own, ends here, so the
	 * caller sees exactly what mmap(2) makes of the arguments.
	 */
	errno = saved_errno;
	p = mmap(addr, length, prot, flags, fd, offset);
	if (p != MAP_FAILED && how)
		*how = COFAULT_HOW_MMAP;
	return p;
}

LIB_EXPORT void *cofault_mmap(void *addr, size_t length, int prot, int flags,
			      int fd, off_t offset)
{
	return cofault_mmap2(addr, length, prot, flags, fd, offset, NULL);
}

LIB_EXPORT int cofault_probe(int fd)
{
	int saved_errno = errno;
	int err = 0, dev;

	if (fd >= 0) {
		err = fault_dev_check_file(fd, NULL);
		if (!err)
			err = fault_dev_check_fuse(fd);
	}
	if (!err) {
		dev = fault_dev_get();
		err = dev < 0 ? dev : 0;
	}
	errno = saved_errno;
	return err;
}

LIB_EXPORT const char *cofault_how_name(int how)
{
	switch (how) {
	case COFAULT_HOW_NONE:
		return "none";
	case COFAULT_HOW_DEVICE:
		return "device";
	case COFAULT_HOW_MMAP:
		return "mmap";
	}
	return "unknown";
}
