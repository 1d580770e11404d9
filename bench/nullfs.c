/*
 * nullfs: the FUSE ceiling for the benchmarks. A read-only low-level FUSE
 * filesystem with one file, "data", of a given size, whose bytes come from
 * memory (a fixed pseudo-random 1 MiB pattern, repeated), so a read through
 * it costs only the kernel round trips and one copy.
 *
 * With --stream=URL the bytes come from a plain HTTP origin instead: the
 * ceiling for a FUSE server fed by that origin (stream.c).
 *
 *   nullfs [--size=BYTES] MOUNTPOINT [FUSE options, e.g. -f]
 *   nullfs [--size=BYTES] --dump   (the file's bytes on stdout, to verify)
 *   nullfs --stream=URL [--splice] MOUNTPOINT [FUSE options]
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"

#define NULLFS_PATTERN (1024 * 1024)
#define NULLFS_MAX_READ (4 * 1024 * 1024)
#define NULLFS_FILE_INO 2
#define NULLFS_NAME "data"

static uint64_t nullfs_size = 1024ULL * 1024 * 1024;
/* NULLFS_PATTERN bytes followed by their start again, so that any read of
 * up to NULLFS_MAX_READ bytes is one contiguous slice. Written once before
 * the session starts, read-only afterwards. */
static unsigned char *nullfs_buf;
/* Set before the session starts: bytes from the origin (stream.c). */
static int nullfs_stream;

/* Fill the buffer with the pattern; 0 or -ENOMEM. */
static int nullfs_pattern(void)
{
	uint64_t s = 0x2545f4914f6cdd1dULL;
	size_t i;

	nullfs_buf = malloc(NULLFS_PATTERN + NULLFS_MAX_READ);
	if (!nullfs_buf)
		return -ENOMEM;
	for (i = 0; i < NULLFS_PATTERN; i += sizeof(s)) {
		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		memcpy(nullfs_buf + i, &s, sizeof(s));
	}
	for (i = NULLFS_PATTERN; i < NULLFS_PATTERN + NULLFS_MAX_READ; i++)
		nullfs_buf[i] = nullfs_buf[i % NULLFS_PATTERN];
	return 0;
}

static void nullfs_init(void *userdata, struct fuse_conn_info *conn)
{
	if (nullfs_stream)
		stream_want(conn);
}

static void nullfs_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = nullfs_size;
		st->st_blocks = (nullfs_size + 511) / 512;
	}
}

static void nullfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, NULLFS_NAME) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = NULLFS_FILE_INO;
	e.attr_timeout = 3600;
	e.entry_timeout = 3600;
	nullfs_stat(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void nullfs_getattr(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct stat st;

	if (ino != FUSE_ROOT_ID && ino != NULLFS_FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	nullfs_stat(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void nullfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	static const char *const names[] = {".", "..", NULLFS_NAME};
	char buf[512];
	size_t used = 0;
	struct stat st;
	off_t i;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (size > sizeof(buf))
		size = sizeof(buf);
	for (i = off; i < 3; i++) {
		size_t n;

		nullfs_stat(i == 2 ? NULLFS_FILE_INO : FUSE_ROOT_ID, &st);
		n = fuse_add_direntry(req, buf + used, size - used, names[i],
				      &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void nullfs_open(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	if (ino != NULLFS_FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void nullfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	if (nullfs_stream) {
		stream_read(req, size, off);
		return;
	}
	if ((uint64_t)off >= nullfs_size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > NULLFS_MAX_READ)
		size = NULLFS_MAX_READ;
	if (size > nullfs_size - off)
		size = nullfs_size - off;
	fuse_reply_buf(req, (char *)nullfs_buf + off % NULLFS_PATTERN, size);
}

static const struct fuse_lowlevel_ops nullfs_ops = {
	.init = nullfs_init,
	.lookup = nullfs_lookup,
	.getattr = nullfs_getattr,
	.readdir = nullfs_readdir,
	.open = nullfs_open,
	.read = nullfs_read,
};

/* Write the file's bytes to stdout; 0 or -errno. */
static int nullfs_dump(void)
{
	uint64_t off = 0;

	while (off < nullfs_size) {
		size_t at = off % NULLFS_PATTERN, n = NULLFS_PATTERN - at;

		if (n > nullfs_size - off)
			n = nullfs_size - off;
		if (fwrite(nullfs_buf + at, 1, n, stdout) != n)
			return -EIO;
		off += n;
	}
	return fflush(stdout) ? -EIO : 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	const char *url = NULL;
	int i, dump = 0, splice_it = 0, ret = 1;

	/* Take our own options out; libfuse parses the rest. */
	fuse_opt_add_arg(&args, argv[0]);
	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--size=", 7) == 0)
			nullfs_size = strtoull(argv[i] + 7, NULL, 10);
		else if (strcmp(argv[i], "--dump") == 0)
			dump = 1;
		else if (strncmp(argv[i], "--stream=", 9) == 0)
			url = argv[i] + 9;
		else if (strcmp(argv[i], "--splice") == 0)
			splice_it = 1;
		else
			fuse_opt_add_arg(&args, argv[i]);
	}
	if (nullfs_pattern())
		return 1;
	if (dump)
		return nullfs_dump() ? 1 : 0;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		return 1;
	if (opts.show_help || !opts.mountpoint) {
		printf("usage: %s [--size=BYTES] MOUNTPOINT [options]\n"
		       "       %s [--size=BYTES] --dump\n"
		       "       %s --stream=http://A.B.C.D:PORT/PATH [--splice]"
		       " MOUNTPOINT [options]\n",
		       argv[0], argv[0], argv[0]);
		fuse_cmdline_help();
		ret = opts.show_help ? 0 : 2;
		goto out_args;
	}
	if (url) {
		int err = stream_open(url, splice_it, &nullfs_size);

		if (err) {
			fprintf(stderr, "nullfs: %s: %s\n", url,
				err == -EPROTO
					? "not a 200 with a Content-Length"
					: strerror(-err));
			goto out_args;
		}
		nullfs_stream = 1;
	} else if (splice_it) {
		fprintf(stderr, "nullfs: --splice is for --stream\n");
		goto out_args;
	}
	fuse_opt_add_arg(&args, "-oro,default_permissions,fsname=nullfs");
	se = fuse_session_new(&args, &nullfs_ops, sizeof(nullfs_ops), NULL);
	if (!se)
		goto out_args;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(opts.foreground);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(cfg, opts.clone_fd);
	fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
	/* A stream's replies must leave in the socket's order. */
	ret = opts.singlethread || nullfs_stream
		      ? fuse_session_loop(se)
		      : fuse_session_loop_mt(se, cfg);
	ret = ret ? 1 : 0;
	fuse_loop_cfg_destroy(cfg);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_args:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	free(nullfs_buf);
	stream_close();
	return ret;
}
