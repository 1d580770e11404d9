/*
 * Unit tests of the S3 XML parsers (listings, error bodies) over captured
 * and hand-made pages in tests/data/s3/, and of S3's key encoding.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/url.h"
#include "store/s3-xml.h"

static char *slurp(const char *name, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/tests/data/s3/%s", SRCDIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int parse_file(const char *name, struct s3_xml_page *p, char *why,
		      size_t why_len)
{
	size_t len;
	char *body = slurp(name, &len);
	int err = s3_xml_parse_list(body, len, p, why, why_len);

	free(body);
	return err;
}

static void test_s3rver_root(void **state)
{
	struct s3_xml_page p;
	char why[200];

	assert_int_equal(parse_file("s3rver-root.xml", &p, why, sizeof(why)),
			 0);
	assert_false(p.truncated);
	assert_null(p.next_token);
	assert_int_equal(p.nobjects, 1);
	assert_string_equal(p.objects[0].key, "top.txt");
	assert_int_equal(p.objects[0].size, 7);
	assert_string_equal(p.objects[0].etag,
			    "\"c953dd53ed62596f44b88a8344f843a9\"");
	/* 2026-11-21T21:18:55Z */
	assert_int_equal(p.objects[0].mtime, 1795295935);
	assert_int_equal(p.nprefixes, 3);
	assert_string_equal(p.prefixes[0], "dir/");
	assert_string_equal(p.prefixes[1], "other/");
	assert_string_equal(p.prefixes[2], "top.txt/");
	s3_xml_page_free(&p);
}

static void test_s3rver_page(void **state)
{
	struct s3_xml_page p;

	assert_int_equal(parse_file("s3rver-page.xml", &p, NULL, 0), 0);
	assert_true(p.truncated);
	assert_string_equal(p.next_token,
			    "1Wuu2UTfszKpSePnImBwMOoE1TT0GA2Kr+d6cJG+ng4=");
	assert_int_equal(p.nobjects, 2);
	/* No EncodingType in the answer: keys are taken literally. */
	assert_string_equal(p.objects[0].key, "dir/a b+c%=&.bin");
	assert_int_equal(p.objects[0].size, 5000);
	assert_int_equal(p.nprefixes, 1);
	assert_string_equal(p.prefixes[0], "dir/sub/");
	s3_xml_page_free(&p);
}

static void test_aws_encoded(void **state)
{
	struct s3_xml_page p;

	assert_int_equal(parse_file("aws-encoded.xml", &p, NULL, 0), 0);
	assert_false(p.truncated);
	assert_int_equal(p.nobjects, 4);
	assert_string_equal(p.objects[0].key, "in/dir a/plus+sign");
	assert_string_equal(p.objects[1].key, "in/dir a/space here");
	assert_int_equal(p.objects[1].size, 0);
	assert_string_equal(p.objects[2].key, "in/dir a/caf\xc3\xa9=&%");
	assert_int_equal(p.objects[2].size, 17179869184ULL);
	assert_string_equal(p.objects[2].etag,
			    "\"9e107d9d372bb6826bd81d3542a419d6-3\"");
	assert_string_equal(p.objects[3].key, "in/dir a/ctl\x01"
					      "char");
	assert_int_equal(p.objects[0].mtime, 1714566896);
	assert_int_equal(p.nprefixes, 2);
	assert_string_equal(p.prefixes[0], "in/dir a/sub dir/");
	assert_string_equal(p.prefixes[1], "in/dir a//");
	s3_xml_page_free(&p);
}

static void test_aws_truncated(void **state)
{
	struct s3_xml_page p;

	assert_int_equal(parse_file("aws-truncated.xml", &p, NULL, 0), 0);
	assert_true(p.truncated);
	assert_string_equal(p.next_token,
			    "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	assert_int_equal(p.nobjects, 1);
	assert_string_equal(p.objects[0].etag,
			    "\"0cc175b9c0f1b6a831c399e269772661\"");
	s3_xml_page_free(&p);
}

static void test_empty_listing(void **state)
{
	struct s3_xml_page p;

	assert_int_equal(parse_file("empty.xml", &p, NULL, 0), 0);
	assert_int_equal(p.nobjects, 0);
	assert_int_equal(p.nprefixes, 0);
	assert_false(p.truncated);
	s3_xml_page_free(&p);
}

/* Every one of these must be refused with a reason, never crash. */
static void test_bad_listings(void **state)
{
	static const struct {
		const char *file;
		const char *why; /* substring of the reason */
	} cases[] = {
		{"truncated-no-token.xml", "NextContinuationToken"},
		{"bad-size.xml", "Size"},
		{"no-key.xml", "without <Key>"},
		{"bad-escape.xml", "undecodable"},
		{"cut.xml", "not well-formed"},
		{"html.html", "not well-formed"},
		{"xhtml.xml", "<html>"},
		{"entities.xml", "not well-formed"},
		{"error-signature.xml", "<Error>"},
		{"s3rver-nosuchbucket.xml", "<Error>"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct s3_xml_page p;
		char why[200];

		assert_int_equal(
			parse_file(cases[i].file, &p, why, sizeof(why)),
			-EPROTO);
		if (!strstr(why, cases[i].why))
			fail_msg("%s: reason '%s' lacks '%s'", cases[i].file,
				 why, cases[i].why);
		assert_null(p.objects);
		assert_null(p.prefixes);
		assert_null(p.next_token);
	}
}

/* An ETag too long to keep whole is kept as none, never cut short. */
static void test_long_etag(void **state)
{
	char body[1024], etag[201], why[200];
	struct s3_xml_page p;

	(void)state;
	memset(etag, 'e', sizeof(etag) - 1);
	etag[sizeof(etag) - 1] = '\0';
	snprintf(body, sizeof(body),
		 "<ListBucketResult><IsTruncated>false</IsTruncated>"
		 "<Contents><Key>a</Key><Size>1</Size><ETag>%s</ETag></Contents>"
		 "<Contents><Key>b</Key><Size>1</Size><ETag>\"v\"</ETag>"
		 "</Contents></ListBucketResult>",
		 etag);
	assert_int_equal(s3_xml_parse_list(body, strlen(body), &p, why,
					   sizeof(why)),
			 0);
	assert_int_equal(p.nobjects, 2);
	assert_string_equal(p.objects[0].etag, "");
	assert_string_equal(p.objects[1].etag, "\"v\"");
	s3_xml_page_free(&p);
}

static void test_empty_body(void **state)
{
	struct s3_xml_page p;
	struct s3_xml_error e;
	char why[100];

	assert_int_equal(s3_xml_parse_list("", 0, &p, why, sizeof(why)),
			 -EPROTO);
	assert_non_null(strstr(why, "empty"));
	assert_int_equal(s3_xml_parse_list(NULL, 0, &p, NULL, 0), -EPROTO);
	assert_int_equal(s3_xml_parse_error("", 0, &e), -EPROTO);
	assert_string_equal(e.code, "");
}

static void test_errors(void **state)
{
	static const struct {
		const char *file;
		const char *code;
		const char *msg_part;
		const char *region;
	} cases[] = {
		{"error-signature.xml", "SignatureDoesNotMatch",
		 "does not match", ""},
		{"error-slowdown.xml", "SlowDown", "reduce", ""},
		{"error-expired.xml", "ExpiredToken", "expired", ""},
		{"error-region.xml", "AuthorizationHeaderMalformed",
		 "expecting 'eu-west-1'", "eu-west-1"},
		{"error-accessdenied.xml", "AccessDenied", "Access Denied", ""},
		{"s3rver-nosuchbucket.xml", "NoSuchBucket", "does not exist",
		 ""},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct s3_xml_error e;
		size_t len;
		char *body = slurp(cases[i].file, &len);

		assert_int_equal(s3_xml_parse_error(body, len, &e), 0);
		assert_string_equal(e.code, cases[i].code);
		assert_non_null(strstr(e.message, cases[i].msg_part));
		assert_string_equal(e.region, cases[i].region);
		free(body);
	}
}

static void test_not_errors(void **state)
{
	static const char *files[] = {"html.html", "cut.xml", "s3rver-root.xml",
				      "entities.xml"};
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct s3_xml_error e;
		size_t len;
		char *body = slurp(files[i], &len);

		assert_int_equal(s3_xml_parse_error(body, len, &e), -EPROTO);
		free(body);
	}
	{
		static const char nocode[] =
			"<Error><Message>x</Message></Error>";
		struct s3_xml_error e;

		assert_int_equal(
			s3_xml_parse_error(nocode, sizeof(nocode) - 1, &e),
			-EPROTO);
	}
	{
		/* Control characters never reach a log line. */
		static const char ctl[] =
			"<Error><Code>X</Code><Message>a&#10;b&#9;c&#13;</"
			"Message></Error>";
		struct s3_xml_error e;

		assert_int_equal(s3_xml_parse_error(ctl, sizeof(ctl) - 1, &e),
				 0);
		assert_null(strchr(e.message, '\n'));
		assert_string_equal(e.message, "a b c ");
	}
}

static void test_url_decode(void **state)
{
	char *s;

	s = s3_xml_url_decode("a+b%2Bc%25%3D%26%C3%A9/x");
	assert_string_equal(s, "a b+c%=&\xc3\xa9/x");
	free(s);
	s = s3_xml_url_decode("");
	assert_string_equal(s, "");
	free(s);
	assert_null(s3_xml_url_decode("%"));
	assert_null(s3_xml_url_decode("%2"));
	assert_null(s3_xml_url_decode("ab%zz"));
	assert_null(s3_xml_url_decode("a%00b"));
}

static void test_parse_time(void **state)
{
	assert_int_equal(s3_xml_parse_time("1970-01-01T00:00:00.000Z"), 0);
	assert_int_equal(s3_xml_parse_time("2024-05-01T12:34:56.000Z"),
			 1714566896);
	assert_int_equal(s3_xml_parse_time("2024-05-01T12:34:56Z"), 1714566896);
	assert_int_equal(s3_xml_parse_time("yesterday"), 0);
	assert_int_equal(s3_xml_parse_time("2024-13-01T00:00:00Z"), 0);
	assert_int_equal(s3_xml_parse_time(NULL), 0);
}

/* S3's rule: every byte but A-Z a-z 0-9 - . _ ~ and '/' is %XX, upper
 * case; this is what curl signs and what the server re-derives. */
static void test_key_encoding(void **state)
{
	static const struct {
		const char *key, *enc;
	} cases[] = {
		{"plain/key-1_2.3~", "plain/key-1_2.3~"},
		{"a b", "a%20b"},
		{"a+b", "a%2Bb"},
		{"100%", "100%25"},
		{"x=1&y=2", "x%3D1%26y%3D2"},
		{"caf\xc3\xa9", "caf%C3%A9"},
		{"a//b", "a//b"},
		{"q?#[]@!$'()*,;:",
		 "q%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A"},
		{"\x01\x7f\xff", "%01%7F%FF"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = url_encode(cases[i].key, true);

		assert_string_equal(e, cases[i].enc);
		free(e);
	}
	{
		/* In a query value (prefix=, continuation-token=) '/' too. */
		char *e = url_encode("dir/a+b=", false);

		assert_string_equal(e, "dir%2Fa%2Bb%3D");
		free(e);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3rver_root),
		cmocka_unit_test(test_s3rver_page),
		cmocka_unit_test(test_aws_encoded),
		cmocka_unit_test(test_aws_truncated),
		cmocka_unit_test(test_empty_listing),
		cmocka_unit_test(test_bad_listings),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_not_errors),
		cmocka_unit_test(test_url_decode),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_key_encoding),
		cmocka_unit_test(test_long_etag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
