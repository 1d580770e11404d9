/*
 * Unit tests of cache-crc.c: CRC32C against published check values, and
 * the hardware path against the table at every alignment and length tail.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Lengths around the interleaved loops' block sizes (3 x 8 KiB and
 * 3 x 256 bytes), where the lanes are joined. */
static void test_crc_interleaved(void **state)
{
	static const size_t lens[] = {
		767,	768,	769,	3 * 256 * 2 + 5, 24575, 24576, 24577,
		24576 + 768 + 9, 3 * 24576 + 1000, 1 << 20, (1 << 20) + 7,
	};
	size_t max = (1 << 20) + 16;
	unsigned char *buf = malloc(max);

	assert_non_null(buf);
	test_fill(buf, max, 11, 11);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t off = 0; off < 9; off += 4)
			assert_int_equal(cache_crc32c(0, buf + off, lens[i]),
					 cache_crc32c_sw(0, buf + off,
							 lens[i]));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_vectors),
		cmocka_unit_test(test_crc_hw_matches_sw),
		cmocka_unit_test(test_crc_interleaved),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
