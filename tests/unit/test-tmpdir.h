/*
 * Scratch directories for unit tests. A failed cmocka assertion jumps out
 * of the test, past its own clean-up, so every directory made here is also
 * noted, and test_tmpdirs_rm (each binary's group teardown, which cmocka
 * runs after failures too) removes whatever is left.
 * Include after <cmocka.h>. Test thread only.
 */
#ifndef TESTS_UNIT_TEST_TMPDIR_H
#define TESTS_UNIT_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not every test binary uses every helper. */
#define TEST_TMPDIR_UNUSED __attribute__((unused))

/* Scratch directories made and not yet removed, owned here; test thread
 * only. */
static char *test_dirs[256];
static size_t test_ndirs;

static int test_rm_one(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Remove path and all below it; a noted directory is forgotten. */
TEST_TMPDIR_UNUSED static void test_rm_rf(const char *path)
{
	size_t i;

	nftw(path, test_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (i = 0; i < test_ndirs; i++) {
		if (strcmp(test_dirs[i], path) == 0) {
			/* path may be this very string: it is not used
			 * after the free. */
			free(test_dirs[i]);
			test_dirs[i] = test_dirs[--test_ndirs];
			return;
		}
	}
}

/* Note dir (just made) for test_tmpdirs_rm. */
TEST_TMPDIR_UNUSED static void test_tmpdir_note(const char *dir)
{
	char *p = strdup(dir);

	assert_non_null(p);
	assert_true(test_ndirs < sizeof(test_dirs) / sizeof(test_dirs[0]));
	test_dirs[test_ndirs++] = p;
}

/* A new scratch directory under TMPDIR; the caller frees it after
 * test_rm_rf. */
TEST_TMPDIR_UNUSED static char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/cofault-test-XXXXXX", base) < 0)
		return NULL;
	if (!mkdtemp(p)) {
		free(p);
		return NULL;
	}
	test_tmpdir_note(p);
	return p;
}

/* Group teardown: remove every scratch directory still there. */
TEST_TMPDIR_UNUSED static int test_tmpdirs_rm(void **state)
{
	(void)state;
	while (test_ndirs)
		test_rm_rf(test_dirs[test_ndirs - 1]);
	return 0;
}

#endif
