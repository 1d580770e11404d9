/*
 * Unit tests for src/common/url.c: percent-decoding and encoding, the
 * file-name rule, and splitting origin URLs.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/url.h"

static void check_decode(const char *in, const char *want)
{
	char *out = (char *)0x1;

	assert_int_equal(url_decode(in, strlen(in), &out), 0);
	assert_non_null(out);
	assert_string_equal(out, want);
	free(out);
}

static void check_decode_fails(const char *in, size_t len)
{
	char *out = (char *)0x1;

	assert_int_equal(url_decode(in, len, &out), -EINVAL);
	assert_null(out);
}

static void test_decode(void **state)
{
	check_decode("", "");
	check_decode("plain.txt", "plain.txt");
	check_decode("with%20space.txt", "with space.txt");
	check_decode("100%25.txt", "100%.txt");
	check_decode("hash%23tag", "hash#tag");
	check_decode("caf%C3%A9", "caf\xc3\xa9");
	check_decode("caf%c3%a9", "caf\xc3\xa9");
	check_decode("%E6%97%A5%E6%9C%AC", "\xe6\x97\xa5\xe6\x9c\xac");
	/* '+' is a plus in a path, not a space. */
	check_decode("plus+sign", "plus+sign");
	check_decode("a%2Fb", "a/b");
	check_decode("%ff%FE", "\xff\xfe");
	check_decode("%41%42%43", "ABC");
}

static void test_decode_len(void **state)
{
	const char *in = "abc%20def";
	char *out;

	/* Only in[0..len) counts; it need not be NUL-terminated there. */
	assert_int_equal(url_decode(in, 3, &out), 0);
	assert_string_equal(out, "abc");
	free(out);
	assert_int_equal(url_decode(in, 6, &out), 0);
	assert_string_equal(out, "abc ");
	free(out);
	/* A cut escape is malformed even if the full string is not. */
	check_decode_fails(in, 5);
	check_decode_fails(in, 4);
	assert_int_equal(url_decode(in, 0, &out), 0);
	assert_string_equal(out, "");
	free(out);
}

static void test_decode_bad(void **state)
{
	check_decode_fails("%", 1);
	check_decode_fails("a%", 2);
	check_decode_fails("a%4", 3);
	check_decode_fails("a%zz", 4);
	check_decode_fails("a%4g", 4);
	check_decode_fails("a%g4", 4);
	check_decode_fails("%00", 3);
	check_decode_fails("a%00b", 5);
	/* A raw NUL within len is refused as well. */
	check_decode_fails("a\0b", 3);
}

static void check_encode(const char *in, bool keep_slash, const char *want)
{
	char *out = url_encode(in, keep_slash);

	assert_non_null(out);
	assert_string_equal(out, want);
	free(out);
}

static void test_encode(void **state)
{
	check_encode("", false, "");
	check_encode("AZaz09-._~", false, "AZaz09-._~");
	check_encode("with space.txt", false, "with%20space.txt");
	check_encode("100%.txt", false, "100%25.txt");
	check_encode("a+b", false, "a%2Bb");
	check_encode("q?#&=", false, "q%3F%23%26%3D");
	check_encode("a/b c/d", true, "a/b%20c/d");
	check_encode("a/b c/d", false, "a%2Fb%20c%2Fd");
	check_encode("caf\xc3\xa9", false, "caf%C3%A9");
	check_encode("\x01\x7f\xff", false, "%01%7F%FF");
	check_encode("!*'();:@$,[]", false,
		     "%21%2A%27%28%29%3B%3A%40%24%2C%5B%5D");
}

static void test_encode_roundtrip(void **state)
{
	char in[256], *enc, *dec;
	int i;

	for (i = 0; i < 255; i++)
		in[i] = (char)(i + 1);
	in[255] = '\0';
	enc = url_encode(in, false);
	assert_non_null(enc);
	assert_int_equal(url_decode(enc, strlen(enc), &dec), 0);
	assert_string_equal(dec, in);
	free(enc);
	free(dec);
}

static void test_name_valid(void **state)
{
	char name[300];

	assert_true(url_name_valid("a"));
	assert_true(url_name_valid(".hidden"));
	assert_true(url_name_valid("..."));
	assert_true(url_name_valid("..a"));
	assert_true(url_name_valid("with space"));
	assert_true(url_name_valid("colon:name"));
	assert_true(url_name_valid("caf\xc3\xa9"));
	assert_false(url_name_valid(NULL));
	assert_false(url_name_valid(""));
	assert_false(url_name_valid("."));
	assert_false(url_name_valid(".."));
	assert_false(url_name_valid("a/b"));
	assert_false(url_name_valid("/"));
	assert_false(url_name_valid("a/"));

	memset(name, 'x', sizeof(name));
	name[255] = '\0';
	assert_true(url_name_valid(name));
	name[255] = 'x';
	name[256] = '\0';
	assert_false(url_name_valid(name));
	name[299] = '\0';
	assert_false(url_name_valid(name));
}

static void check_split(const char *url, const char *scheme,
			const char *authority, const char *path)
{
	struct url_parts p;

	assert_int_equal(url_split(url, &p), 0);
	assert_string_equal(p.scheme, scheme);
	assert_string_equal(p.authority, authority);
	assert_string_equal(p.path, path);
	url_parts_free(&p);
	assert_null(p.scheme);
	assert_null(p.authority);
	assert_null(p.path);
}

static void test_split(void **state)
{
	check_split("http://127.0.0.1/", "http", "127.0.0.1", "/");
	check_split("http://127.0.0.1", "http", "127.0.0.1", "/");
	check_split("HTTPS://Host.Example:8443/a/b%20c/?x=1#f", "https",
		    "Host.Example:8443", "/a/b%20c/");
	check_split("http://127.0.0.1:8080?q", "http", "127.0.0.1:8080", "/");
	check_split("http://127.0.0.1#frag", "http", "127.0.0.1", "/");
	check_split("s3://bucket", "s3", "bucket", "/");
	check_split("s3://bucket/prefix/key", "s3", "bucket", "/prefix/key");
	check_split("http://[::1]:80/x", "http", "[::1]:80", "/x");
	check_split("http://user@127.0.0.1/x", "http", "user@127.0.0.1", "/x");
	check_split("git+ssh://h/p", "git+ssh", "h", "/p");
	check_split("http://u:p@h:65535/", "http", "u:p@h:65535", "/");
	check_split("http://h:/x", "http", "h:", "/x");
	check_split("http://[::1]/x", "http", "[::1]", "/x");
}

static void test_split_bad(void **state)
{
	struct url_parts p;

	assert_int_equal(url_split(NULL, &p), -EINVAL);
	assert_int_equal(url_split("", &p), -EINVAL);
	assert_int_equal(url_split("127.0.0.1/x", &p), -EINVAL);
	assert_int_equal(url_split("http:/127.0.0.1/x", &p), -EINVAL);
	assert_int_equal(url_split("://127.0.0.1/x", &p), -EINVAL);
	assert_int_equal(url_split("1http://127.0.0.1/", &p), -EINVAL);
	assert_int_equal(url_split("ht tp://127.0.0.1/", &p), -EINVAL);
	assert_int_equal(url_split("http:///x", &p), -EINVAL);
	assert_int_equal(url_split("http://", &p), -EINVAL);
	/* No port where one goes: a password with an unencoded '/'. */
	assert_int_equal(url_split("http://key:pa/ss@host/d/", &p), -EINVAL);
	assert_int_equal(url_split("https://host:8a/", &p), -EINVAL);
	assert_int_equal(url_split("https://host:65536/", &p), -EINVAL);
	assert_int_equal(url_split("http://[::1]x/", &p), -EINVAL);
	assert_int_equal(url_split("http://[::1/", &p), -EINVAL);
	assert_null(p.scheme);
	assert_null(p.authority);
	assert_null(p.path);
	/* Freeing a failed or empty split is harmless. */
	url_parts_free(&p);
	url_parts_free(NULL);
}

static void check_shown(const char *url, const char *want)
{
	char buf[128];

	url_shown(url, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_shown(void **state)
{
	char small[12];

	(void)state;
	check_shown("http://127.0.0.1/a/b", "http://127.0.0.1/a/b");
	check_shown("https://AKIAX:wJalrSecret@minio.example/x",
		    "https://minio.example/x");
	/* The last '@' of the authority ends the user information. */
	check_shown("http://u:p@ss@host:81/d@t/", "http://host:81/d@t/");
	check_shown("http://u:secret@host", "http://host");
	check_shown("http://host/f?X-Amz-Signature=abc#frag", "http://host/f");
	check_shown("http://u:secret@host?token=1", "http://host");
	/* Not a URL at all: still no user information, no query. */
	check_shown("u:secret@host/p?q", "host/p");
	/* A password with an unencoded '/': no port where one goes, so
	 * all up to the last '@' before the query is user information. */
	check_shown("https://AKID:abc/def@minio.example/b?x@y",
		    "https://minio.example/b");
	check_shown("http://key:pa/ss@host", "http://host");
	/* A valid port: an '@' in the path is the path's. */
	check_shown("http://host:80/a@b/c", "http://host:80/a@b/c");
	check_shown("http://host:x/no-at", "http://host:x/no-at");
	check_shown("", "");
	/* Truncated, never overflowing. */
	url_shown("http://u:secret@host/long/path", small, sizeof(small));
	assert_string_equal(small, "http://host");
	url_shown("http://x", small, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_decode_len),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_bad),
		cmocka_unit_test(test_shown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
