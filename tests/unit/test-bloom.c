/*
 * Unit tests of the Bloom filter (src/common/bloom.c): never a wrong
 * "not added", and wrong "maybe"s near the rate it is sized for.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "common/bloom.h"

#define N 20000

static void test_no_false_negatives(void **state)
{
	struct bloom *b = bloom_new(N);
	char key[64];
	int i;

	assert_non_null(b);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "train/shard-%05d.tar", i);
		bloom_add(b, key);
	}
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "train/shard-%05d.tar", i);
		assert_true(bloom_maybe(b, key));
	}
	bloom_free(b);
}

static void test_false_positive_rate(void **state)
{
	struct bloom *b = bloom_new(N);
	char key[64];
	int i, wrong = 0;

	assert_non_null(b);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "a/%d", i);
		bloom_add(b, key);
	}
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "b/%d", i);
		wrong += bloom_maybe(b, key);
	}
	/* Sized for 1% or less; 2% leaves room for the hash's luck. */
	assert_true(wrong < N / 50);
	bloom_free(b);
}

static void test_empty_and_tiny(void **state)
{
	struct bloom *b = bloom_new(0);

	assert_non_null(b);
	assert_false(bloom_maybe(b, ""));
	assert_false(bloom_maybe(b, "x"));
	bloom_add(b, "");
	assert_true(bloom_maybe(b, ""));
	bloom_free(b);
	bloom_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_false_negatives),
		cmocka_unit_test(test_false_positive_rate),
		cmocka_unit_test(test_empty_and_tiny),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
