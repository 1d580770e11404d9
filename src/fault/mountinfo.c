/*
 * The mount-table reader of the preload shim: is a device number a cofault
 * mount? Parses /proc/self/mountinfo (proc(5)) line by line in a fixed
 * buffer, since the shim may not allocate.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fault/mountinfo.h"

#define MOUNTINFO_LINE_MAX 8192
#define MOUNTINFO_FIELDS_MAX 64

/* Write a decimal number into buf (at least 21 bytes); returns its end. */
static char *mountinfo_utoa(char *buf, unsigned long long v)
{
	char tmp[21];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*buf++ = tmp[--n];
	*buf = '\0';
	return buf;
}

/*
 * One line (NUL-terminated, split in place): its kind if it is majmin's
 * mount, -1 if another device's. Fields: id parent MAJ:MIN root mountpoint
 * options [optional fields...] - fstype source superoptions.
 */
static int mountinfo_line(char *line, const char *majmin)
{
	char *field[MOUNTINFO_FIELDS_MAX], *save = NULL, *tok;
	const char *fstype, *source;
	int n = 0, i;

	for (tok = strtok_r(line, " ", &save); tok && n < MOUNTINFO_FIELDS_MAX;
	     tok = strtok_r(NULL, " ", &save))
		field[n++] = tok;
	if (n < 3 || strcmp(field[2], majmin) != 0)
		return -1;
	for (i = 6; i < n && strcmp(field[i], "-") != 0; i++)
		;
	if (i + 2 >= n)
		return FAULT_MOUNT_OTHER;
	fstype = field[i + 1];
	source = field[i + 2];
	/*
	 * The daemon mounts with subtype "cofault" (fstype fuse.cofault); a
	 * kernel or mount helper without subtypes leaves plain "fuse" and the
	 * fsname as the source.
	 */
	if (strcmp(fstype, "fuse.cofault") == 0)
		return FAULT_MOUNT_COFAULT;
	if ((strcmp(fstype, "fuse") == 0 || strcmp(fstype, "fuseblk") == 0) &&
	    strcmp(source, "cofault") == 0)
		return FAULT_MOUNT_COFAULT;
	return FAULT_MOUNT_OTHER;
}

int fault_mountinfo_find(int fd, dev_t dev)
{
	char buf[MOUNTINFO_LINE_MAX], majmin[48], *p, *line, *nl;
	size_t have = 0, rest;
	bool skipping = false; /* inside a line longer than buf */
	ssize_t n;
	int r;

	p = mountinfo_utoa(majmin, major(dev));
	*p++ = ':';
	mountinfo_utoa(p, minor(dev));

	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return FAULT_MOUNT_ABSENT;
		have += (size_t)n;
		line = buf;
		while ((nl = memchr(line, '\n', (size_t)(buf + have - line)))) {
			*nl = '\0';
			r = skipping ? -1 : mountinfo_line(line, majmin);
			skipping = false;
			if (r >= 0)
				return r;
			line = nl + 1;
		}
		rest = (size_t)(buf + have - line);
		if (rest == sizeof(buf) - 1) {
			/* No end of line in a full buffer: drop it all. */
			skipping = true;
			rest = 0;
		}
		memmove(buf, line, rest);
		have = rest;
	}
}
