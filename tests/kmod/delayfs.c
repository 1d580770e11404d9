/*
 * delayfs: a tiny read-only FUSE passthrough of one flat directory whose
 * reads can be delayed, stalled or failed at run time. The kernel-module
 * tests use it as a deterministic slow daemon, beside the real one.
 *
 *   delayfs SRCDIR CTLFILE MOUNTPOINT [fuse options]
 *
 * CTLFILE is re-read on every read request: absent or "0" serve at once,
 * "N" sleeps N ms first, "stall" holds the read until the file changes,
 * "eio" fails it with EIO, and "eio-pid PID" fails reads through handles
 * that process PID opened and serves the others at once (a handle the
 * daemon has retired, beside fresh ones).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *src_dir;
static const char *ctl_path;

static void src_path(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "%s%s", src_dir, path);
}

/*
 * The control file's verdict: >= 0 delay ms, -1 stall, -2 EIO, -3 EIO for
 * handles *@pid opened.
 */
static long ctl_read(pid_t *pid)
{
	char buf[32] = "";
	FILE *f = fopen(ctl_path, "r");

	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	if (!strncmp(buf, "stall", 5))
		return -1;
	if (!strncmp(buf, "eio-pid ", 8)) {
		*pid = (pid_t)strtol(buf + 8, NULL, 10);
		return -3;
	}
	if (!strncmp(buf, "eio", 3))
		return -2;
	return strtol(buf, NULL, 10);
}

/* @opener: the process that opened the handle read through. */
static int delay_read(pid_t opener)
{
	pid_t pid = 0;
	long v;

	for (;;) {
		v = ctl_read(&pid);
		if (v == -2 || (v == -3 && pid == opener))
			return -EIO;
		if (v == -3)
			return 0;
		if (v != -1)
			break;
		usleep(50000);
	}
	if (v > 0) {
		struct timespec ts = {v / 1000, (v % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	return 0;
}

static void *dfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->kernel_cache = 1;
	cfg->entry_timeout = cfg->attr_timeout = 3600;
	return NULL;
}

static int dfs_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	char p[4096];

	(void)fi;
	src_path(p, sizeof(p), path);
	if (lstat(p, st) < 0)
		return -errno;
	st->st_mode &= ~0222;
	return 0;
}

static int dfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	char p[4096];
	struct dirent *de;
	DIR *d;

	(void)off;
	(void)fi;
	(void)flags;
	src_path(p, sizeof(p), path);
	d = opendir(p);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		fill(buf, de->d_name, NULL, 0, 0);
	closedir(d);
	return 0;
}

static int dfs_open(const char *path, struct fuse_file_info *fi)
{
	char p[4096];
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	src_path(p, sizeof(p), path);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return -errno;
	/* The descriptor, and above it the opener for "eio-pid". */
	fi->fh = (uint64_t)(uint32_t)fuse_get_context()->pid << 32 |
		 (uint32_t)fd;
	fi->keep_cache = 1;
	return 0;
}

static int dfs_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n;
	int err;

	(void)path;
	err = delay_read((pid_t)(fi->fh >> 32));
	if (err)
		return err;
	n = pread((int)(uint32_t)fi->fh, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int dfs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)(uint32_t)fi->fh);
	return 0;
}

static const struct fuse_operations dfs_ops = {
	.init = dfs_init,
	.getattr = dfs_getattr,
	.readdir = dfs_readdir,
	.open = dfs_open,
	.read = dfs_read,
	.release = dfs_release,
};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: delayfs SRCDIR CTLFILE MOUNTPOINT [options]\n");
		return 2;
	}
	src_dir = argv[1];
	ctl_path = argv[2];
	argv[2] = argv[0];
	return fuse_main(argc - 2, argv + 2, &dfs_ops, NULL);
}
