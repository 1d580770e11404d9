/*
 * Helpers shared by the disk cache's unit tests: a scratch directory per
 * test, deterministic chunk contents, and a count of the warnings logged
 * (log_msg is wrapped at link time with -Wl,--wrap=log_msg).
 * Include after <cmocka.h>; each test binary includes it once.
 */
#ifndef TESTS_UNIT_CACHE_TEST_H
#define TESTS_UNIT_CACHE_TEST_H

#include <stdarg.h>
#include <stdatomic.h>
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

void __real_log_msg(int level, const char *fmt, ...);
void __wrap_log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void __wrap_log_msg(int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (level == LOG_WARNING)
		atomic_fetch_add(&test_warnings, 1);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	__real_log_msg(level, "%s", buf);
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
