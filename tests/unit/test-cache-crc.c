/*
 * Unit tests of cache-crc.c: CRC32C against published check values, and
 * the hardware path against the table at every alignment and length tail.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cache/cache-int.h"
#include "cache-test.h"

static void test_crc_vectors(void **state)
{
	unsigned char zeros[32] = {0}, ones[32], inc[32];

	for (int i = 0; i < 32; i++) {
		ones[i] = 0xff;
		inc[i] = (unsigned char)i;
	}
	/* RFC 3720 appendix B.4 and the usual "123456789" check value. */
	assert_int_equal(cache_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(cache_crc32c(0, zeros, 32), 0x8a9136aa);
	assert_int_equal(cache_crc32c(0, ones, 32), 0x62a8ab43);
	assert_int_equal(cache_crc32c(0, inc, 32), 0x46dd794e);
	assert_int_equal(cache_crc32c_sw(0, "123456789", 9), 0xe3069283);
	assert_int_equal(cache_crc32c(0, "", 0), 0);
}

static void test_crc_hw_matches_sw(void **state)
{
	unsigned char buf[4096 + 16];

	test_fill(buf, sizeof(buf), 7, 7);
	for (size_t off = 0; off < 16; off++)
		for (size_t len = 0; len < 80; len++)
			assert_int_equal(cache_crc32c(0, buf + off, len),
					 cache_crc32c_sw(0, buf + off, len));
	assert_int_equal(cache_crc32c(0, buf + 3, 4096),
			 cache_crc32c_sw(0, buf + 3, 4096));
	/* Continuation: crc(a + b) == crc(crc(a), b). */
	assert_int_equal(
		cache_crc32c(cache_crc32c(0, buf, 1000), buf + 1000, 3000),
		cache_crc32c(0, buf, 4000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_vectors),
		cmocka_unit_test(test_crc_hw_matches_sw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
