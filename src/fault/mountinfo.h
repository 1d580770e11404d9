/*
 * Finding a filesystem's type in /proc/self/mountinfo without malloc or
 * stdio, for the preload shim (which runs inside other programs' mmap()),
 * and for the daemon's watch of its own mount (src/fs/watch.c).
 */
#ifndef FAULT_MOUNTINFO_H
#define FAULT_MOUNTINFO_H

#include <sys/types.h>

/* What the mount table says of one device number. */
enum fault_mount_kind {
	FAULT_MOUNT_ABSENT = 0, /* no (readable) line for it */
	FAULT_MOUNT_COFAULT,	/* a cofault mount */
	FAULT_MOUNT_OTHER,	/* anything else */
};

/*
 * Read a mountinfo stream from fd (from where it stands) until the first
 * line of device dev: returns an enum fault_mount_kind, or -errno if reading
 * failed. Lines longer than 8 KiB are skipped (such a line for dev reads as
 * FAULT_MOUNT_ABSENT). Thread-safe and async-signal-safe: a stack buffer,
 * read(2) and string functions only. fd is left open.
 */
int fault_mountinfo_find(int fd, dev_t dev);

#endif /* FAULT_MOUNTINFO_H */
