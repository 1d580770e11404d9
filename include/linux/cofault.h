/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cofault kernel/user ABI: the /dev/cofault ioctls shared by kmod/cofault.c
 * and user space (libcofault, the cofault tool). Fixed-width fields,
 * explicit padding, reserved fields that must be zero; the first ioctl on an
 * open device must be COFAULT_IOC_API, which negotiates the version and
 * feature bits in the style of userfaultfd's UFFDIO_API.
 */
#ifndef _UAPI_LINUX_COFAULT_H
#define _UAPI_LINUX_COFAULT_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define COFAULT_DEVICE "/dev/cofault"
#define COFAULT_API 1

/* Feature bits, reported by COFAULT_IOC_API. */
#define COFAULT_FEATURE_MAP (1ULL << 0) /* COFAULT_IOC_MAP exists */
#define COFAULT_FEATURE_STATS (1ULL << 1) /* COFAULT_IOC_STATS exists */
#define COFAULT_FEATURES_ALL (COFAULT_FEATURE_MAP | COFAULT_FEATURE_STATS)

struct cofault_api {
	__u64 api; /* in: COFAULT_API; out: the version served */
	__u64 features; /* in: wanted; out: granted (subset of wanted) */
	__u64 reserved[6]; /* in: zero */
};

/* Flags for cofault_map.flags. */
#define COFAULT_MAP_CLOEXEC (1U << 0) /* mapping fd gets O_CLOEXEC */
#define COFAULT_MAP_FLAGS_ALL (COFAULT_MAP_CLOEXEC)

struct cofault_map {
	__s32 fd; /* in: fd of a regular file on a FUSE mount, readable */
	__u32 flags; /* in: COFAULT_MAP_* */
	__s32 map_fd; /* out: fd to mmap() in place of fd */
	__u32 pad; /* zero */
	__u64 reserved[6]; /* in: zero */
};

#define COFAULT_HIST_BUCKETS 16 /* wait-time histogram, log2 microseconds */

struct cofault_stats {
	__u64 faults;
	__u64 hits;
	__u64 misses;
	__u64 retries;
	__u64 interrupted;
	__u64 lock_held;
	__u64 sigbus;
	__u64 wait_us_hist[COFAULT_HIST_BUCKETS]; /* bucket i: < 2^i us... */
	__u64 plain; /* misses taken as plain faults (filemap_fault) */
	__u64 reserved[7];
};

#define COFAULT_IOC_MAGIC 0xCF
#define COFAULT_IOC_API _IOWR(COFAULT_IOC_MAGIC, 0x00, struct cofault_api)
#define COFAULT_IOC_MAP _IOWR(COFAULT_IOC_MAGIC, 0x01, struct cofault_map)
#define COFAULT_IOC_STATS _IOR(COFAULT_IOC_MAGIC, 0x02, struct cofault_stats)

#endif /* _UAPI_LINUX_COFAULT_H */
