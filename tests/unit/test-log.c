/*
 * Unit tests of the log sink (src/common/log.c): text from the network in
 * a message reaches the log with its control bytes replaced, as one line.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "test-tmpdir.h"

static void test_printable(void **state)
{
	/* ESC, BEL, NUL-free C0 bytes, DEL; UTF-8 ("é") and '~' pass. */
	char s[] = "a\x1b]0;title\x07"
		   "b\r\nc\td\x7f"
		   "e\xc3\xa9~";

	(void)state;
	log_printable(s);
	assert_string_equal(s, "a?]0;title?b??c?d?e\xc3\xa9~");
}

static void test_log_line(void **state)
{
	char *dir = test_tmpdir(), *path, buf[512];
	const char *key = "x\x1b[2J\nforged: line";
	size_t n;
	FILE *f;

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/log", dir) > 0);
	assert_int_equal(log_open(LOG_TO_FILE, path, false), 0);
	log_warn("skipping key '%s'", key);
	log_close();
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* One line, ending the message; the key's bytes made printable. */
	assert_non_null(strstr(buf, "skipping key 'x?[2J?forged: line'\n"));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
	assert_null(strchr(buf, '\x1b'));
	free(path);
	test_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable),
		cmocka_unit_test(test_log_line),
	};

	return cmocka_run_group_tests(tests, NULL, test_tmpdirs_rm);
}
