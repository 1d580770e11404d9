/*
 * A Bloom filter of strings: "certainly not added" or "maybe added", in
 * about ten bits per string for a 1% chance of a wrong "maybe". Adding and
 * asking are lock-free and may run on any threads at once.
 */
#ifndef COMMON_BLOOM_H
#define COMMON_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bloom;

/* A filter sized for about n strings (more may be added, at a higher
 * rate of wrong answers); NULL when out of memory. */
struct bloom *bloom_new(size_t n);
void bloom_free(struct bloom *b);
void bloom_add(struct bloom *b, const char *s);
/* False: s was never added. True: it may have been. */
bool bloom_maybe(const struct bloom *b, const char *s);

#endif
