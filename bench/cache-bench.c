/*
 * Throughput of the disk cache through its API (src/cache/cache.h): chunk
 * writes until durable and indexed, then verified chunk reads from the page
 * cache, by 1 and by several threads sharing one handle.
 * Usage: cache-bench DIR [MIB [CHUNK_KIB [THREADS]]]; DIR must not exist.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"

struct job {
	struct cache *c;
	uint64_t obj;
	uint64_t first, count;
	size_t cs;
	int write;
	unsigned long errors;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = malloc(j->cs);

	if (!buf)
		return NULL;
	memset(buf, 0x5a, j->cs);
	for (uint64_t i = j->first; i < j->first + j->count; i++) {
		int err;

		buf[0] = (unsigned char)i;
		if (j->write)
			err = cache_chunk_write(j->c, j->obj, i, buf, j->cs);
		else
			err = cache_chunk_read(j->c, j->obj, i, buf, j->cs);
		if (err)
			j->errors++;
	}
	free(buf);
	return NULL;
}

static double phase(struct cache *c, uint64_t obj, uint64_t n, size_t cs,
		    int threads, int write, unsigned long *errors)
{
	struct job jobs[64];
	pthread_t t[64];
	double start = now_s();

	*errors = 0;
	for (int k = 0; k < threads; k++) {
		jobs[k] = (struct job){
			.c = c,
			.obj = obj,
			.cs = cs,
			.write = write,
			.first = n * k / threads,
			.count = n * (k + 1) / threads - n * k / threads,
		};
		pthread_create(&t[k], NULL, run, &jobs[k]);
	}
	for (int k = 0; k < threads; k++) {
		pthread_join(t[k], NULL);
		*errors += jobs[k].errors;
	}
	if (write)
		cache_flush(c);
	return now_s() - start;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 2 ? strtoull(argv[2], NULL, 10) : 512;
	size_t cs = (argc > 3 ? strtoul(argv[3], NULL, 10) : 1024) * 1024;
	int threads = argc > 4 ? atoi(argv[4]) : 4;
	struct cache_opts o = {0};
	unsigned long errors;
	struct cache *c;
	uint64_t obj, n;
	double t;
	int err;

	if (argc < 2 || !cs || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: %s DIR [MIB [CHUNK_KIB [THREADS]]]\n",
			argv[0]);
		return 2;
	}
	n = mib * 1024 * 1024 / cs;
	o.dir = argv[1];
	o.chunk_size = (uint32_t)cs;
	o.max_bytes = 4 * mib << 20;
	err = cache_open(&o, &c);
	if (err) {
		fprintf(stderr, "cache_open: %s\n", strerror(-err));
		return 1;
	}
	for (int threads_now = 1; threads_now <= threads;
	     threads_now = threads_now == threads ? threads + 1 : threads) {
		char key[32];

		snprintf(key, sizeof(key), "bench-%d", threads_now);
		cache_object(c, "bench", key, "e", n * cs, 0, &obj);
		t = phase(c, obj, n, cs, threads_now, 1, &errors);
		printf("write+flush %2d thr %4zu KiB: %8.1f MB/s (%lu "
		       "errors)\n",
		       threads_now, cs >> 10, n * cs / t / 1e6, errors);
		t = phase(c, obj, n, cs, threads_now, 0, &errors);
		printf("read+verify %2d thr %4zu KiB: %8.1f MB/s, %8.0f "
		       "chunks/s"
		       " (%lu misses)\n",
		       threads_now, cs >> 10, n * cs / t / 1e6, n / t, errors);
	}
	cache_close(c);
	return 0;
}
