/*
 * Bloom filter; see bloom.h. One 64-bit FNV-1a hash of the string, split
 * into two halves, gives the BLOOM_K bit positions by double hashing
 * (Kirsch and Mitzenmacher), so a lookup hashes the string once.
 */
#include "config.h"

#include <stdlib.h>

#include "common/bloom.h"

#define BLOOM_BITS_PER 10 /* bits per expected string: about 1% wrong */
#define BLOOM_K 7 /* bit positions per string: best for 10 bits */
#define BLOOM_MIN_BITS 1024u

struct bloom {
	uint64_t mask; /* bits - 1; bits is a power of two */
	uint8_t *bits; /* set with atomics, never cleared */
};

static uint64_t bloom_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* Mix, so that the two halves are independent enough. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

struct bloom *bloom_new(size_t n)
{
	struct bloom *b = calloc(1, sizeof(*b));
	uint64_t bits = BLOOM_MIN_BITS;

	if (!b)
		return NULL;
	while (bits < (uint64_t)n * BLOOM_BITS_PER && bits < (1ULL << 40))
		bits <<= 1;
	b->mask = bits - 1;
	b->bits = calloc((size_t)(bits / 8), 1);
	if (!b->bits) {
		free(b);
		return NULL;
	}
	return b;
}

void bloom_free(struct bloom *b)
{
	if (!b)
		return;
	free(b->bits);
	free(b);
}

void bloom_add(struct bloom *b, const char *s)
{
	uint64_t h = bloom_hash(s), h1 = h & 0xffffffffu, h2 = (h >> 32) | 1;
	unsigned int i;

	for (i = 0; i < BLOOM_K; i++) {
		uint64_t bit = (h1 + i * h2) & b->mask;

		__atomic_fetch_or(&b->bits[bit / 8], (uint8_t)(1u << (bit % 8)),
				  __ATOMIC_RELAXED);
	}
}

bool bloom_maybe(const struct bloom *b, const char *s)
{
	uint64_t h = bloom_hash(s), h1 = h & 0xffffffffu, h2 = (h >> 32) | 1;
	unsigned int i;

	for (i = 0; i < BLOOM_K; i++) {
		uint64_t bit = (h1 + i * h2) & b->mask;

		if (!(__atomic_load_n(&b->bits[bit / 8], __ATOMIC_RELAXED) &
		      (1u << (bit % 8))))
			return false;
	}
	return true;
}
