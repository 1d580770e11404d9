/*
 * Helpers shared by the disk cache's unit tests: a scratch directory per
 * test, deterministic chunk contents, a count of the warnings logged and a
 * record of the chunk writes refused at the limit (log_msg is wrapped at
 * link time with -Wl,--wrap=log_msg).
 * Include after <cmocka.h>; each test binary includes it once.
 */
#ifndef TESTS_UNIT_CACHE_TEST_H
#define TESTS_UNIT_CACHE_TEST_H

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "common/log.h"
#include "test-tmpdir.h"

/* Not every test binary uses every helper. */
#define TEST_UNUSED __attribute__((unused))

static atomic_int test_warnings;

/*
 * Chunk writes cache_chunk_put refused at the limit, as (object, index),
 * seen in its debug line: a refusal is by design (the room may be held by
 * another handle's chunks not yet indexed), and only its log tells a test
 * that a missing chunk was refused rather than lost. Debug lines are
 * recorded only while test_debug_begin is in effect, and never printed.
 */
enum { TEST_REFUSED_MAX = 256 };
static pthread_mutex_t test_refused_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t test_refused_at[TEST_REFUSED_MAX][2]; /* test_refused_lock */
static int test_nrefused; /* under test_refused_lock; may pass the max */

void __real_log_msg(int level, const char *fmt, ...);
void __wrap_log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void __wrap_log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	uint64_t obj, idx;
	va_list ap;

	if (level == LOG_WARNING)
		atomic_fetch_add(&test_warnings, 1);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (level != LOG_DEBUG) {
		__real_log_msg(level, "%s", buf);
		return;
	}
	if (sscanf(buf, "cache: at its limit, chunk %" SCNu64 "/%" SCNu64, &obj,
		   &idx) == 2) {
		pthread_mutex_lock(&test_refused_lock);
		if (test_nrefused < TEST_REFUSED_MAX) {
			test_refused_at[test_nrefused][0] = obj;
			test_refused_at[test_nrefused][1] = idx;
		}
		test_nrefused++;
		pthread_mutex_unlock(&test_refused_lock);
	}
}

/* Record the refusals from now on (debug lines on, to the wrapper only). */
TEST_UNUSED static void test_debug_begin(void)
{
	pthread_mutex_lock(&test_refused_lock);
	test_nrefused = 0;
	pthread_mutex_unlock(&test_refused_lock);
	log_open(LOG_TO_STDERR, NULL, true);
}

TEST_UNUSED static void test_debug_end(void)
{
	log_open(LOG_TO_STDERR, NULL, false);
}

/* How many writes were refused since test_debug_begin. */
TEST_UNUSED static int test_refusals(void)
{
	int n;

	pthread_mutex_lock(&test_refused_lock);
	n = test_nrefused;
	pthread_mutex_unlock(&test_refused_lock);
	return n;
}

/* Whether the write of chunk idx of obj was refused at the limit. */
TEST_UNUSED static bool test_refused(uint64_t obj, uint64_t idx)
{
	bool found = false;

	pthread_mutex_lock(&test_refused_lock);
	for (int i = 0; i < test_nrefused && i < TEST_REFUSED_MAX; i++)
		if (test_refused_at[i][0] == obj &&
		    test_refused_at[i][1] == idx)
			found = true;
	pthread_mutex_unlock(&test_refused_lock);
	return found;
}

/* Contents of chunk idx of object seed: distinct for every pair. */
TEST_UNUSED static void test_fill(void *buf, size_t len, uint64_t seed,
				  uint64_t idx)
{
	uint64_t x =
		seed * 0x9e3779b97f4a7c15ull + idx * 0xbf58476d1ce4e5b9ull + 1;
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

TEST_UNUSED static int test_check(const void *buf, size_t len, uint64_t seed,
				  uint64_t idx)
{
	void *want = malloc(len);
	int same;

	test_fill(want, len, seed, idx);
	same = memcmp(buf, want, len) == 0;
	free(want);
	return same;
}

/* Path of an object's data file, as cache-store.c lays it out. */
TEST_UNUSED static void test_data_path(char *out, size_t size, const char *dir,
				       uint64_t obj)
{
	snprintf(out, size, "%s/data/%02x/%llu", dir,
		 (unsigned int)(obj & 0xff), (unsigned long long)obj);
}

#endif
