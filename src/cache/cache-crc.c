/*
 * CRC32C (Castagnoli), the per-chunk checksum of the disk cache. Uses the
 * SSE4.2 crc32 instruction when the CPU has it (chosen once, at first use)
 * and a slicing-by-8 table otherwise, so every chunk read can afford to be
 * verified. No library: Debian's xxhash is not a build dependency.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "cache/cache-int.h"

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

/* Written once under crc_once, read-only afterwards. */
static uint32_t crc_table[8][256];
static uint32_t (*crc_impl)(uint32_t crc, const unsigned char *p, size_t n);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		n--;
	}
	while (n >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^
		      crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^
		      crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc;
}

/*
 * Shifting a CRC register over n zero bytes is linear over GF(2): a 32x32
 * bit matrix, applied here through four 256-entry tables (one per byte of
 * the register). It lets independent CRCs of consecutive blocks be joined:
 * crc(A || B) = shift(crc(A), |B|) ^ crc(B), with B's started at zero.
 */
struct crc_shift {
	uint32_t t[4][256];
};

/* Written once under crc_once, read-only afterwards. */
static struct crc_shift crc_shift_long, crc_shift_short;

#define CRC_LONG 8192 /* bytes per lane in the long interleaved loop */
#define CRC_SHORT 256 /* and in the short one */

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;

	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
	for (int i = 0; i < 32; i++)
		sq[i] = gf2_times(mat, mat[i]);
}

/* The tables that shift a register over len zero bytes (a power of 2). */
static void crc_shift_init(struct crc_shift *s, size_t len)
{
	uint32_t a[32], b[32], *cur = a, *next = b, *tmp;

	/* One zero bit: the register shifts right, the polynomial is
	 * folded in when a one falls out. */
	a[0] = CRC32C_POLY;
	for (int i = 1; i < 32; i++)
		a[i] = 1u << (i - 1);
	/* Square three times: one zero byte; then once per doubling. */
	for (size_t bits = 1; bits < len * 8; bits *= 2) {
		gf2_square(next, cur);
		tmp = cur;
		cur = next;
		next = tmp;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int k = 0; k < 4; k++)
			s->t[k][n] = gf2_times(cur, n << (8 * k));
}

static uint32_t crc_shift(const struct crc_shift *s, uint32_t crc)
{
	return s->t[0][crc & 0xff] ^ s->t[1][(crc >> 8) & 0xff] ^
	       s->t[2][(crc >> 16) & 0xff] ^ s->t[3][crc >> 24];
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/*
 * The crc32 instruction has a latency of three cycles but issues one per
 * cycle: three independent lanes over consecutive blocks keep it busy,
 * and the shift tables join them. About three times a single lane.
 */
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t c0 = crc, c1, c2, w0, w1, w2;
	size_t lane;

	while (n && ((uintptr_t)p & 7)) {
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
		n--;
	}
	for (lane = CRC_LONG; lane >= CRC_SHORT; lane = CRC_SHORT) {
		const struct crc_shift *s =
			lane == CRC_LONG ? &crc_shift_long : &crc_shift_short;

		while (n >= 3 * lane) {
			const unsigned char *end = p + lane;

			c1 = c2 = 0;
			for (; p < end; p += 8) {
				memcpy(&w0, p, 8);
				memcpy(&w1, p + lane, 8);
				memcpy(&w2, p + 2 * lane, 8);
				c0 = _mm_crc32_u64(c0, w0);
				c1 = _mm_crc32_u64(c1, w1);
				c2 = _mm_crc32_u64(c2, w2);
			}
			c0 = crc_shift(s, (uint32_t)c0) ^ (uint32_t)c1;
			c0 = crc_shift(s, (uint32_t)c0) ^ (uint32_t)c2;
			p += 2 * lane;
			n -= 3 * lane;
		}
		if (lane == CRC_SHORT)
			break;
	}
	while (n >= 8) {
		memcpy(&w0, p, 8);
		c0 = _mm_crc32_u64(c0, w0);
		p += 8;
		n -= 8;
	}
	while (n--)
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
	return (uint32_t)c0;
}
#endif

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] =
				crc_table[0][crc_table[t - 1][i] & 0xff] ^
				(crc_table[t - 1][i] >> 8);
	crc_shift_init(&crc_shift_long, CRC_LONG);
	crc_shift_init(&crc_shift_short, CRC_SHORT);
	crc_impl = crc_sw;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_impl = crc_hw;
#endif
}

uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_impl(~crc, buf, len);
}

uint32_t cache_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return ~crc_sw(~crc, buf, len);
}
