/*
 * Measures the two candidate on-disk layouts of the persistent chunk cache:
 * one sparse file per object (pwrite at the chunk offset, holes punched on
 * eviction) against one file per chunk (write a temporary file, rename it,
 * unlink on eviction), with one fdatasync per chunk and with one per batch.
 * Usage: cache-layout DIR [CHUNKS [CHUNK_KIB]]; DIR must not exist.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache-int.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void report(const char *what, double secs, uint64_t bytes,
		   unsigned int ops)
{
	printf("%-44s %8.1f MB/s %9.1f us/op\n", what, bytes / secs / 1e6,
	       secs * 1e6 / ops);
}

/* batch: chunks written between two fdatasync calls (1 = every chunk). */
static void sparse_write(const char *dir, unsigned int n, size_t cs,
			 const char *buf, unsigned int batch)
{
	char path[4096];
	double t;
	int fd;

	snprintf(path, sizeof(path), "%s/obj-%u", dir, batch);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open");
	t = now_s();
	for (unsigned int i = 0; i < n; i++) {
		if (pwrite(fd, buf, cs, (off_t)i * cs) != (ssize_t)cs)
			die("pwrite");
		if ((i + 1) % batch == 0 && fdatasync(fd) < 0)
			die("fdatasync");
	}
	if (fdatasync(fd) < 0)
		die("fdatasync");
	t = now_s() - t;
	snprintf(path, sizeof(path), "sparse file, fdatasync every %u", batch);
	report(path, t, (uint64_t)n * cs, n);
	close(fd);
}

static void sparse_read_evict(const char *dir, unsigned int n, size_t cs,
			      char *buf)
{
	char path[4096];
	double t;
	int fd;

	snprintf(path, sizeof(path), "%s/obj-1", dir);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("open");
	t = now_s();
	for (unsigned int i = 0; i < n; i++) {
		if (pread(fd, buf, cs, (off_t)i * cs) != (ssize_t)cs)
			die("pread");
		cache_crc32c(0, buf, cs);
	}
	t = now_s() - t;
	report("sparse file, pread+crc32c (page cache)", t, (uint64_t)n * cs,
	       n);
	t = now_s();
	for (unsigned int i = 0; i < n; i++)
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)i * cs, cs) < 0)
			die("fallocate");
	t = now_s() - t;
	printf("%-44s %20.1f us/op\n", "sparse file, punch hole", t * 1e6 / n);
	close(fd);
}

static void perchunk_write(const char *dir, unsigned int n, size_t cs,
			   const char *buf, int sync_each)
{
	char tmp[4096], path[4096];
	int *fds = calloc(n, sizeof(*fds));
	double t;

	if (!fds)
		die("calloc");
	t = now_s();
	for (unsigned int i = 0; i < n; i++) {
		snprintf(tmp, sizeof(tmp), "%s/c%d-%u.tmp", dir, sync_each, i);
		snprintf(path, sizeof(path), "%s/c%d-%u", dir, sync_each, i);
		fds[i] = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fds[i] < 0)
			die("open");
		if (write(fds[i], buf, cs) != (ssize_t)cs)
			die("write");
		if (sync_each && fdatasync(fds[i]) < 0)
			die("fdatasync");
		if (rename(tmp, path) < 0)
			die("rename");
		if (sync_each)
			close(fds[i]);
	}
	/* Batched: each file still needs its own fdatasync. */
	for (unsigned int i = 0; !sync_each && i < n; i++) {
		if (fdatasync(fds[i]) < 0)
			die("fdatasync");
		close(fds[i]);
	}
	t = now_s() - t;
	report(sync_each ? "file per chunk, fdatasync every chunk"
			 : "file per chunk, fdatasync after batch",
	       t, (uint64_t)n * cs, n);
	free(fds);
}

static void perchunk_read_evict(const char *dir, unsigned int n, size_t cs,
				char *buf)
{
	char path[4096];
	double t;

	t = now_s();
	for (unsigned int i = 0; i < n; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/c1-%u", dir, i);
		fd = open(path, O_RDONLY);
		if (fd < 0 || pread(fd, buf, cs, 0) != (ssize_t)cs)
			die("read");
		cache_crc32c(0, buf, cs);
		close(fd);
	}
	t = now_s() - t;
	report("file per chunk, open+pread+crc32c", t, (uint64_t)n * cs, n);
	t = now_s();
	for (unsigned int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/c1-%u", dir, i);
		if (unlink(path) < 0)
			die("unlink");
	}
	t = now_s() - t;
	printf("%-44s %20.1f us/op\n", "file per chunk, unlink", t * 1e6 / n);
}

int main(int argc, char **argv)
{
	unsigned int n = argc > 2 ? (unsigned int)atoi(argv[2]) : 256;
	size_t cs = (argc > 3 ? (size_t)atoi(argv[3]) : 1024) * 1024;
	char *buf;
	double t;

	if (argc < 2 || n == 0 || cs == 0) {
		fprintf(stderr, "usage: %s DIR [CHUNKS [CHUNK_KIB]]\n",
			argv[0]);
		return 2;
	}
	if (mkdir(argv[1], 0700) < 0)
		die("mkdir");
	buf = malloc(cs);
	if (!buf)
		die("malloc");
	for (size_t i = 0; i < cs; i++)
		buf[i] = (char)(i * 2654435761u >> 13);

	t = now_s();
	for (unsigned int i = 0; i < 64; i++)
		cache_crc32c(0, buf, cs);
	report("crc32c alone", now_s() - t, 64 * (uint64_t)cs, 64);

	sparse_write(argv[1], n, cs, buf, 1);
	sparse_write(argv[1], n, cs, buf, 16);
	sparse_read_evict(argv[1], n, cs, buf);
	perchunk_write(argv[1], n, cs, buf, 1);
	perchunk_write(argv[1], n, cs, buf, 0);
	perchunk_read_evict(argv[1], n, cs, buf);
	free(buf);
	return 0;
}
