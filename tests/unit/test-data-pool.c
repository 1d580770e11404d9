/*
 * Unit tests of the fragment page pool (src/fs/data-pool.c): buffers are
 * distinct and keep their bytes, fresh ones are faulted in a batch at a
 * time, freed ones are reused before any new mapping, and frees past the
 * bound give their memory back.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/data-pool.h"

/* More than one mapping's worth (512 buffers of 4 KiB in 2 MiB). */
#define N 600

/* Whether the page at p is backed by memory. */
static bool resident(void *p)
{
	unsigned char v = 0;

	assert_int_equal(mincore(p, DATA_POOL_PAGE, &v), 0);
	return v & 1;
}

static void fill(unsigned char *b, unsigned int seed)
{
	size_t i;

	for (i = 0; i < DATA_POOL_PAGE; i++)
		b[i] = (unsigned char)(seed * 131 + i);
}

static bool filled(const unsigned char *b, unsigned int seed)
{
	size_t i;

	for (i = 0; i < DATA_POOL_PAGE; i++)
		if (b[i] != (unsigned char)(seed * 131 + i))
			return false;
	return true;
}

static int by_addr(const void *a, const void *b)
{
	void *const *pa = a, *const *pb = b;
	uintptr_t x = (uintptr_t)*pa, y = (uintptr_t)*pb;

	return x < y ? -1 : x > y;
}

/* N buffers at once: page-aligned, no two overlapping, each keeps what
 * was written to it while the others are written. */
static void test_distinct(void **state)
{
	struct data_pool p = { 0 };
	void *b[N], *s[N];
	int i;

	for (i = 0; i < N; i++) {
		b[i] = data_pool_take(&p);
		assert_non_null(b[i]);
		assert_int_equal((uintptr_t)b[i] % DATA_POOL_PAGE, 0);
		fill(b[i], (unsigned int)i);
	}
	for (i = 0; i < N; i++)
		assert_true(filled(b[i], (unsigned int)i));
	memcpy(s, b, sizeof(b));
	qsort(s, N, sizeof(s[0]), by_addr);
	for (i = 1; i < N; i++)
		assert_true((char *)s[i] >= (char *)s[i - 1] + DATA_POOL_PAGE);
	assert_int_equal(p.nmaps, 2);
	data_pool_fini(&p);
	assert_int_equal(p.nmaps, 0);
	assert_null(p.free);
}

/* Whether this kernel faults pages in on request (Linux 5.14 and later). */
static bool can_populate(void)
{
	bool ok = false;
#ifdef MADV_POPULATE_WRITE
	void *m = mmap(NULL, DATA_POOL_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	ok = !madvise(m, DATA_POOL_PAGE, MADV_POPULATE_WRITE);
	munmap(m, DATA_POOL_PAGE);
#endif
	return ok;
}

/* A fresh buffer comes faulted in with the rest of its batch, and no
 * more: the pages are there before they are touched, and what the pool
 * holds untouched stays within one batch. Across a new mapping too. */
static void test_prefault(void **state)
{
	const size_t per = DATA_POOL_BATCH / DATA_POOL_PAGE;
	struct data_pool p = { 0 };
	char *first = NULL, *b;
	size_t i;

	if (!can_populate())
		skip();
	for (i = 0; i < N; i++) {
		b = data_pool_take(&p);
		assert_non_null(b);
		/* Taken, not yet written: already backed. */
		assert_true(resident(b));
		if (i % 512 == 0)
			first = b; /* a new mapping's first buffer */
		if (i % per == 0 && (i % 512) + per < 512) {
			/* The batch this one opened is in; the next not. */
			assert_true(
				resident(b + DATA_POOL_BATCH - DATA_POOL_PAGE));
			assert_false(resident(b + DATA_POOL_BATCH));
		}
		assert_ptr_equal(b, first + (i % 512) * DATA_POOL_PAGE);
	}
	assert_int_equal(p.nmaps, 2);
	data_pool_fini(&p);
}

/* A freed buffer is the next one taken, and taking it maps nothing. */
static void test_reuse(void **state)
{
	struct data_pool p = { 0 };
	void *a, *b;
	int i;

	a = data_pool_take(&p);
	assert_non_null(a);
	for (i = 0; i < 10000; i++) {
		data_pool_put(&p, a);
		b = data_pool_take(&p);
		assert_ptr_equal(a, b);
	}
	assert_int_equal(p.nmaps, 1);
	assert_int_equal(p.nfree, 0);
	data_pool_fini(&p);
}

/* Frees past the bound give their pages back to the kernel; every buffer
 * is still reused (those kept first) before a new mapping is made. */
static void test_release(void **state)
{
	struct data_pool p = { 0 };
	void *b[N];
	size_t kept, i;
	int j;

	for (j = 0; j < N; j++) {
		b[j] = data_pool_take(&p);
		fill(b[j], (unsigned int)j);
		assert_true(resident(b[j]));
	}
	for (j = 0; j < N; j++)
		data_pool_put(&p, b[j]);
	kept = p.nfree;
	assert_true(kept > 0 && kept < N);
	assert_int_equal(kept + p.nreleased, N);
	/* The first ones freed were kept, the rest released. */
	for (j = (int)kept; j < N; j++)
		assert_false(resident(b[j]));
	for (i = 0; i < N; i++) {
		void *t = data_pool_take(&p);

		assert_non_null(t);
		/* Kept ones come back first: they cost no fault. */
		if (i < kept)
			assert_true(resident(t));
		memset(t, 0xa5, DATA_POOL_PAGE);
	}
	assert_int_equal(p.nfree, 0);
	assert_int_equal(p.nreleased, 0);
	assert_int_equal(p.nmaps, 2);
	data_pool_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distinct),
		cmocka_unit_test(test_prefault),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
