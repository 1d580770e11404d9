/*
 * A minimal read-only passthrough FUSE filesystem for the preload tests:
 * mounts SRCDIR at MOUNTPOINT with whatever -o subtype=/fsname= the test
 * gives, so the shim's "is this a cofault mount?" decision can be tested
 * against cofault-named and other FUSE mounts without an origin server.
 *
 * Usage: preload-fusefs SRCDIR MOUNTPOINT [libfuse options, e.g. -f -o ...]
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The source directory; set once in main() before fuse_main(). */
static const char *fusefs_src;

/* SRCDIR + path into buf; -ENAMETOOLONG if it does not fit. */
static int fusefs_path(char *buf, size_t size, const char *path)
{
	int n = snprintf(buf, size, "%s%s", fusefs_src, path);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int fusefs_getattr(const char *path, struct stat *st,
			  struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int err = fusefs_path(p, sizeof(p), path);

	if (err)
		return err;
	if (lstat(p, st) < 0)
		return -errno;
	/* Read-only, like cofault. */
	st->st_mode &= ~(mode_t)0222;
	return 0;
}

static int fusefs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			  off_t off, struct fuse_file_info *fi,
			  enum fuse_readdir_flags flags)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int err = fusefs_path(p, sizeof(p), path);

	if (err)
		return err;
	d = opendir(p);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (fill(buf, de->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static int fusefs_open(const char *path, struct fuse_file_info *fi)
{
	char p[PATH_MAX];
	int fd, err = fusefs_path(p, sizeof(p), path);

	if (err)
		return err;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	/* Let the page cache serve mmap like the real daemon does. */
	fi->keep_cache = 1;
	return 0;
}

static int fusefs_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);

	return n < 0 ? -errno : (int)n;
}

static int fusefs_release(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static const struct fuse_operations fusefs_ops = {
	.getattr = fusefs_getattr,
	.readdir = fusefs_readdir,
	.open = fusefs_open,
	.read = fusefs_read,
	.release = fusefs_release,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr,
			"usage: %s SRCDIR MOUNTPOINT [libfuse options]\n",
			argv[0]);
		return 2;
	}
	fusefs_src = argv[1];
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &fusefs_ops, NULL);
}
