/*
 * cmp-threads: several threads read files of the mount at once, each in
 * its own pseudo-random order of offsets and lengths, and check every byte
 * against the original files.
 *
 *   cmp-threads [-t THREADS] [-n READS] MOUNTED ORIGINAL [MOUNTED ORIGINAL...]
 *
 * Thread i reads pair i % pairs, so one pair and -t 8 is eight readers of
 * one file, eight pairs and -t 8 one reader per file. Each thread first
 * reads its file once in order, then -n random preads (default 64).
 * Exit 0 when all data matched.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_READ (512 * 1024)

struct reader {
	pthread_t tid;
	int id;
	const char *mounted;
	const char *original;
	long nreads;
	uint64_t seed;
	int err; /* 0 or -errno; -EILSEQ for wrong data */
	uint64_t bytes;
};

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: cheap, and each thread has its own state. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Read [off, off+len) from both files and compare; 0 or -errno. */
static int check_range(struct reader *r, int mfd, int ofd, off_t off,
		       size_t len, char *a, char *b)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(mfd, a + done, len - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ENODATA;
		done += n;
	}
	if (pread(ofd, b, len, off) != (ssize_t)len)
		return -EIO;
	if (memcmp(a, b, len) != 0) {
		size_t i = 0;

		while (a[i] == b[i])
			i++;
		fprintf(stderr, "thread %d: %s differs at offset %jd\n", r->id,
			r->mounted, (intmax_t)(off + i));
		return -EILSEQ;
	}
	r->bytes += len;
	return 0;
}

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	struct stat st;
	char *a = malloc(MAX_READ), *b = malloc(MAX_READ);
	int mfd = open(r->mounted, O_RDONLY);
	int ofd = open(r->original, O_RDONLY);
	off_t off;
	long i;

	if (!a || !b || mfd < 0 || ofd < 0 || fstat(ofd, &st)) {
		r->err = -errno;
		goto out;
	}
	/* A sequential pass from a per-thread starting point, wrapping. */
	off = st.st_size ? (off_t)(rnd(&r->seed) % st.st_size) : 0;
	for (i = 0; i < st.st_size && !r->err;) {
		off_t at = (off + i) % st.st_size;
		size_t len = MAX_READ;

		if ((off_t)len > st.st_size - at)
			len = st.st_size - at;
		r->err = check_range(r, mfd, ofd, at, len, a, b);
		i += len;
	}
	for (i = 0; i < r->nreads && !r->err && st.st_size; i++) {
		off_t at = rnd(&r->seed) % st.st_size;
		size_t len = 1 + rnd(&r->seed) % MAX_READ;

		if ((off_t)len > st.st_size - at)
			len = st.st_size - at;
		r->err = check_range(r, mfd, ofd, at, len, a, b);
	}
out:
	if (r->err && r->err != -EILSEQ)
		fprintf(stderr, "thread %d: %s: %s\n", r->id, r->mounted,
			strerror(-r->err));
	if (mfd >= 0)
		close(mfd);
	if (ofd >= 0)
		close(ofd);
	free(a);
	free(b);
	return NULL;
}

int main(int argc, char **argv)
{
	struct reader *rs;
	long threads = 8, nreads = 64;
	int opt, pairs, i, bad = 0;
	uint64_t total = 0;

	while ((opt = getopt(argc, argv, "t:n:")) != -1) {
		if (opt == 't')
			threads = strtol(optarg, NULL, 10);
		else if (opt == 'n')
			nreads = strtol(optarg, NULL, 10);
		else
			goto usage;
	}
	pairs = (argc - optind) / 2;
	if (pairs < 1 || (argc - optind) % 2 || threads < 1 || threads > 256)
		goto usage;
	rs = calloc(threads, sizeof(*rs));
	if (!rs)
		return 1;
	for (i = 0; i < threads; i++) {
		rs[i].id = i;
		rs[i].mounted = argv[optind + 2 * (i % pairs)];
		rs[i].original = argv[optind + 2 * (i % pairs) + 1];
		rs[i].nreads = nreads;
		rs[i].seed = 0x9e3779b97f4a7c15ULL * (i + 1);
		if (pthread_create(&rs[i].tid, NULL, reader_run, &rs[i])) {
			fprintf(stderr, "cmp-threads: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(rs[i].tid, NULL);
		bad |= rs[i].err != 0;
		total += rs[i].bytes;
	}
	printf("cmp-threads: %ld threads, %" PRIu64 " bytes verified%s\n",
	       threads, total, bad ? ", ERRORS" : "");
	free(rs);
	return bad ? 1 : 0;
usage:
	fprintf(stderr, "usage: cmp-threads [-t THREADS] [-n READS] "
			"MOUNTED ORIGINAL [MOUNTED ORIGINAL...]\n");
	return 2;
}
