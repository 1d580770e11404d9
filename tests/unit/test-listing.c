/*
 * Unit tests for src/store/listing.c against index pages captured from
 * real nginx, Apache and Python http.server instances (see
 * tests/data/listings/capture.sh) and hand-made hostile pages.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/log.h"
#include "store/listing.h"
#include "store/store.h"

#define T_1121 1795295400 /* 2026-11-21 21:10 UTC */
#define T_1120 1795161900 /* 2026-11-20 08:05 UTC */
#define T_1119 1795089600 /* 2026-11-19 12:00 UTC */
#define T_0102 1767323040 /* 2026-01-02 03:04 UTC */

#define ZEROS10 "0000000000"
#define LONG_NAME                                                              \
	"long-name-" ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10 ZEROS10   \
		ZEROS10 ZEROS10 ZEROS10 ".txt"

/* The tree capture.sh serves: what every listing of it should show. */
struct truth {
	const char *name;
	bool is_dir;
	uint64_t size;
	int64_t mtime;
	bool hidden; /* nginx leaves dot files out */
};

static const struct truth tree[] = {
	{"dir", true, 0, T_1120, false},
	{"empty", true, 0, T_1119, false},
	{".hidden", false, 42, T_1121, true},
	{"100%.txt", false, 100, T_1121, false},
	{"amp&lt<gt>.txt", false, 5, T_1121, false},
	{"big.bin", false, 1572864, T_1121, false},
	{"caf\xc3\xa9.txt", false, 3000, T_1121, false},
	{"colon:name.txt", false, 11, T_1121, false},
	{"hash#tag.txt", false, 0, T_1121, false},
	{LONG_NAME, false, 9, T_1121, false},
	{"plain.txt", false, 12345, T_1121, false},
	{"plus+sign.txt", false, 2048, T_1121, false},
	{"question?.txt", false, 7, T_1121, false},
	{"quote\".txt", false, 13, T_1121, false},
	{"with space.txt", false, 1, T_1121, false},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.txt", false, 1536, T_1121,
	 false},
};

#define NTREE (sizeof(tree) / sizeof(tree[0]))

/* How a server shows sizes and dates. */
enum show {
	SHOW_NOTHING,	    /* names only */
	SHOW_EXACT,	    /* exact bytes and a date */
	SHOW_NGINX_ROUNDED, /* bytes up to 9999, then K, M, G */
	SHOW_APACHE,	    /* bytes below 973, then 1.2K-like */
};

struct buf {
	char *data;
	size_t len;
};

static struct buf load(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	struct buf b = {NULL, 0};
	FILE *f;
	long n;

	if (!top || !*top)
		top = SRCDIR;
	snprintf(path, sizeof(path), "%s/tests/data/listings/%s", top, name);
	f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	/* Exactly the file's size: ASan sees any read past the end. */
	b.data = malloc(n ? (size_t)n : 1);
	assert_non_null(b.data);
	assert_int_equal(fread(b.data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	b.len = (size_t)n;
	return b;
}

static int parse_file(const char *file, const char *ctype, const char *dir,
		      struct store_dir *out)
{
	struct buf b = load(file);
	int err;

	memset(out, 0, sizeof(*out));
	err = listing_parse(b.data, b.len, ctype, dir, out);
	free(b.data);
	return err;
}

static int parse_str(const char *s, const char *ctype, const char *dir,
		     struct store_dir *out)
{
	size_t len = strlen(s);
	char *copy = malloc(len ? len : 1);
	int err;

	assert_non_null(copy);
	memcpy(copy, s, len);
	memset(out, 0, sizeof(*out));
	err = listing_parse(copy, len, ctype, dir, out);
	free(copy);
	return err;
}

static const struct store_dirent *find(const struct store_dir *d,
				       const char *name)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (!strcmp(d->ents[i].name, name))
			return &d->ents[i];
	return NULL;
}

static void check_tree(const struct store_dir *d, enum show show,
		       bool with_hidden)
{
	size_t i, want = 0;

	for (i = 0; i < NTREE; i++) {
		const struct truth *t = &tree[i];
		const struct store_dirent *e;
		bool exact;

		if (t->hidden && !with_hidden) {
			assert_null(find(d, t->name));
			continue;
		}
		want++;
		e = find(d, t->name);
		if (!e)
			fail_msg("entry \"%s\" missing", t->name);
		assert_int_equal(e->attr.is_dir, t->is_dir);
		if (show == SHOW_NOTHING || t->is_dir) {
			assert_int_equal(e->attr.size, 0);
			assert_false(e->attr.size_exact);
		}
		if (show == SHOW_NOTHING) {
			assert_int_equal(e->attr.mtime, 0);
			continue;
		}
		assert_int_equal(e->attr.mtime, t->mtime);
		if (t->is_dir)
			continue;
		exact = show == SHOW_EXACT ||
			(show == SHOW_NGINX_ROUNDED && t->size <= 9999) ||
			(show == SHOW_APACHE && t->size < 973);
		assert_int_equal(e->attr.size_exact, exact);
		if (exact) {
			assert_int_equal(e->attr.size, t->size);
		} else {
			/* A rounded figure: right order of magnitude. */
			assert_in_range(e->attr.size, t->size / 2, t->size * 2);
		}
	}
	assert_int_equal(d->n, want);
}

static void check_file(const char *file, const char *ctype, const char *dir,
		       enum show show, bool with_hidden)
{
	struct store_dir d;

	assert_int_equal(parse_file(file, ctype, dir, &d), 0);
	check_tree(&d, show, with_hidden);
	store_dir_free(&d);
}

static void test_nginx_html(void **state)
{
	check_file("nginx.html", "text/html", "/exact/", SHOW_EXACT, false);
	/* The sniffing path gives the same answer. */
	check_file("nginx.html", NULL, "/exact/", SHOW_EXACT, false);
}

static void test_nginx_rounded(void **state)
{
	struct store_dir d;
	const struct store_dirent *e;

	check_file("nginx-rounded.html", "text/html", "/rounded/",
		   SHOW_NGINX_ROUNDED, false);
	assert_int_equal(
		parse_file("nginx-rounded.html", NULL, "/rounded/", &d), 0);
	e = find(&d, "plain.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 12 * 1024);
	e = find(&d, "big.bin");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 2 * 1024 * 1024);
	store_dir_free(&d);
}

static void test_nginx_json(void **state)
{
	check_file("nginx.json", "application/json", "/json/", SHOW_EXACT,
		   false);
	check_file("nginx.json", NULL, "/json/", SHOW_EXACT, false);
	check_file("nginx.json", "Application/JSON; charset=utf-8", "/json/",
		   SHOW_EXACT, false);
}

static void test_apache_fancy(void **state)
{
	struct store_dir d;
	const struct store_dirent *e;

	check_file("apache-fancy.html", "text/html;charset=UTF-8", "/fancy/",
		   SHOW_APACHE, true);
	assert_int_equal(parse_file("apache-fancy.html", NULL, "/fancy/", &d),
			 0);
	e = find(&d, "big.bin");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 1572864); /* "1.5M" */
	store_dir_free(&d);
}

static void test_apache_table(void **state)
{
	check_file("apache-table.html", NULL, "/table/", SHOW_APACHE, true);
}

static void test_apache_icons(void **state)
{
	/* Every entry is linked twice: by its icon, then by its name. */
	check_file("apache-icons.html", NULL, "/icons/", SHOW_APACHE, true);
}

static void test_apache_plain(void **state)
{
	check_file("apache-plain.html", NULL, "/plain/", SHOW_NOTHING, true);
}

static void test_python(void **state)
{
	check_file("python.html", "text/html; charset=utf-8", "/", SHOW_NOTHING,
		   true);
}

static void test_empty_listings(void **state)
{
	static const struct {
		const char *file, *dir;
	} empties[] = {
		{"nginx-empty.html", "/exact/empty/"},
		{"nginx-empty.json", "/json/empty/"},
		{"apache-empty.html", "/fancy/empty/"},
		{"python-empty.html", "/empty/"},
	};
	struct store_dir d;
	size_t i;

	for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		assert_int_equal(
			parse_file(empties[i].file, NULL, empties[i].dir, &d),
			0);
		assert_int_equal(d.n, 0);
		store_dir_free(&d);
	}
}

static void test_edge_links(void **state)
{
	static const char *const absent[] = {
		"..",	       ".",
		"file.txt",    "remote.txt",
		"netpath.txt", "sub",
		"deeper.txt",  "x.txt",
		"a",	       "b",
		"a/b.txt",     "base",
		"dir",	       "raw-\xc3\x83\xc2\xa9.txt",
		"anchor",      "",
	};
	struct store_dir d;
	const struct store_dirent *e;
	char max[256];
	size_t i;

	assert_int_equal(parse_file("edge-links.html", NULL, "/base/dir/", &d),
			 0);
	for (i = 0; i < d.n; i++)
		assert_true(strlen(d.ents[i].name) <= 255);
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (find(&d, absent[i]))
			fail_msg("\"%s\" should have been skipped", absent[i]);

	e = find(&d, "abs.txt");
	assert_non_null(e);
	assert_false(e->attr.is_dir);
	assert_int_equal(e->attr.mtime, T_0102);
	assert_false(e->attr.size_exact);
	assert_in_range(e->attr.size, 1200, 1240); /* "1.2K" */

	e = find(&d, "absdir");
	assert_non_null(e);
	assert_true(e->attr.is_dir);
	assert_int_equal(e->attr.mtime, T_0102);

	e = find(&d, "colon:x.txt");
	assert_non_null(e);
	e = find(&d, "spaced.txt");
	assert_non_null(e);

	/* The second link of a duplicate completes the first. */
	e = find(&d, "dup.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.mtime, T_0102);
	assert_int_equal(e->attr.size, 77);
	assert_true(e->attr.size_exact);

	/* 255 bytes is the limit, not over it; a bad date gives no attrs. */
	memset(max, 'y', 251);
	memcpy(max + 251, ".txt", 5);
	e = find(&d, max);
	assert_non_null(e);
	assert_int_equal(e->attr.mtime, 0);
	assert_int_equal(e->attr.size, 0);

	e = find(&d, "raw-\xc3\xa9.txt");
	assert_non_null(e);

	/* Only the first token after the date is the size. */
	e = find(&d, "plus+sign.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 12);
	assert_true(e->attr.size_exact);

	e = find(&d, "UPPER.TXT");
	assert_non_null(e);

	assert_int_equal(d.n, 9);
	store_dir_free(&d);
}

static void test_json_bad_names(void **state)
{
	struct store_dir d;
	const struct store_dirent *e;
	size_t i;

	assert_int_equal(parse_file("bad-names.json", NULL, "/", &d), 0);
	for (i = 0; i < d.n; i++)
		assert_true(strlen(d.ents[i].name) <= 255);
	assert_null(find(&d, ".."));
	assert_null(find(&d, "."));
	assert_null(find(&d, "a/b"));
	assert_null(find(&d, ""));
	assert_null(find(&d, "nul"));
	assert_null(find(&d, "sock"));

	/* Kept once, with the first entry's attributes. */
	e = find(&d, "ok.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 5);
	assert_true(e->attr.size_exact);
	assert_int_equal(e->attr.mtime, T_1121);

	e = find(&d, "neg.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.size, 0);
	assert_false(e->attr.size_exact);

	e = find(&d, "huge.bin");
	assert_non_null(e);
	assert_true(e->attr.size == UINT64_MAX);
	assert_true(e->attr.size_exact);

	e = find(&d, "badtime.txt");
	assert_non_null(e);
	assert_int_equal(e->attr.mtime, 0);
	assert_int_equal(e->attr.size, 3);

	/* JSON names are literal, never percent-decoded. */
	e = find(&d, "%41.txt");
	assert_non_null(e);

	e = find(&d, "sub");
	assert_non_null(e);
	assert_true(e->attr.is_dir);
	assert_int_equal(e->attr.mtime, T_1120);
	assert_int_equal(e->attr.size, 0);

	assert_int_equal(d.n, 6);
	store_dir_free(&d);
}

static void test_json_not_listing(void **state)
{
	static const char *const bad[] = {
		"{}",
		"[1, 2, 3]",
		"[{\"name\":\"a\"}, 7]",
		"[{\"x\":1}, {\"y\":2}]",
		"[[]]",
		"[] trailing",
		"[{\"name\":\"a\"}]]",
		"[",
		"[{",
		"[{\"name\":",
		"[\"a.txt\"]",
		"[{\"name\":\"a\",}",
	};
	struct store_dir d;
	size_t i;

	assert_int_equal(parse_file("malformed.json", NULL, "/", &d), -EPROTO);
	assert_int_equal(d.n, 0);
	assert_null(d.ents);
	assert_int_equal(parse_file("not-listing.json", NULL, "/", &d),
			 -EPROTO);
	assert_int_equal(parse_file("nginx.html", "application/json", "/", &d),
			 -EPROTO);
	assert_int_equal(parse_str("null", "application/json", "/", &d),
			 -EPROTO);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = parse_str(bad[i], NULL, "/", &d);

		if (err != -EPROTO)
			fail_msg("%s: got %d", bad[i], err);
		assert_int_equal(d.n, 0);
	}
	/* Valid and empty, with whitespace around. */
	assert_int_equal(parse_str(" \n[ ]\n\n", NULL, "/", &d), 0);
	assert_int_equal(d.n, 0);
}

static void test_json_deep(void **state)
{
	size_t n = 100000, i;
	char *s = malloc(2 * n);
	struct store_dir d;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	memset(&d, 0, sizeof(d));
	assert_int_equal(listing_parse(s, 2 * n, NULL, "/", &d), -EPROTO);
	free(s);
}

static void test_not_a_listing(void **state)
{
	struct store_dir d;

	assert_int_equal(parse_str("", NULL, "/", &d), -EPROTO);
	assert_int_equal(parse_str(" \r\n\t ", "text/html", "/", &d), -EPROTO);
	/* Some other page: no entries, but no error either. */
	assert_int_equal(
		parse_str("<html><body><p>Welcome! See "
			  "<a href=\"http://127.0.0.1/about\">about</a> and "
			  "<a href=\"/login?next=/\">log in</a>.</p>"
			  "</body></html>",
			  "text/html", "/", &d),
		0);
	assert_int_equal(d.n, 0);
	assert_int_equal(parse_str("just some text", "text/plain", "/", &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(parse_str("<<<>>><a href=", NULL, "/", &d), 0);
	assert_int_equal(d.n, 0);
}

static void test_dir_path_match(void **state)
{
	struct store_dir d;

	/* Escapes compare by value, whatever their case. */
	assert_int_equal(parse_str("<a href=\"/caf%c3%a9/x.txt\">x</a>"
				   "<a href=\"/caf\xc3\xa9/y.txt\">y</a>"
				   "<a href=\"/cafe/z.txt\">z</a>",
				   NULL, "/caf%C3%A9/", &d),
			 0);
	assert_int_equal(d.n, 2);
	assert_non_null(find(&d, "x.txt"));
	assert_non_null(find(&d, "y.txt"));
	store_dir_free(&d);

	/* A directory path without its final slash still works. */
	assert_int_equal(parse_str("<a href=\"/a/b/c\">c</a>"
				   "<a href=\"/a/bc\">bc</a>",
				   NULL, "/a/b", &d),
			 0);
	assert_int_equal(d.n, 1);
	assert_non_null(find(&d, "c"));
	store_dir_free(&d);

	/* The root. */
	assert_int_equal(
		parse_str("<a href=\"/top\">t</a><a href=\"/\">r</a>"
			  "<a href=\"/d/\">d</a><a href=\"/d/e\">e</a>",
			  NULL, "/", &d),
		0);
	assert_int_equal(d.n, 2);
	assert_non_null(find(&d, "top"));
	assert_true(find(&d, "d")->attr.is_dir);
	store_dir_free(&d);
}

/* Servers rarely declare a charset; raw UTF-8 in an href is still UTF-8. */
static void test_raw_utf8(void **state)
{
	struct store_dir d;

	assert_int_equal(parse_str("<html><body><pre>"
				   "<a href=\"caf\xc3\xa9.txt\">c</a>\n"
				   "<a href=\"\xe6\x97\xa5/\">d</a>\n",
				   NULL, "/", &d),
			 0);
	assert_int_equal(d.n, 2);
	assert_non_null(find(&d, "caf\xc3\xa9.txt"));
	assert_true(find(&d, "\xe6\x97\xa5")->attr.is_dir);
	store_dir_free(&d);
}

/* Sizes beyond an off_t are no sizes: such a file is asked for its own. */
static void test_huge_sizes(void **state)
{
	struct store_dir d;
	const struct store_dirent *e;

	assert_int_equal(
		parse_str("<html><body><pre>"
			  "<a href=\"big\">big</a>   01-Jan-2024 00:00   "
			  "10000000000000000000\n"
			  "<a href=\"max\">max</a>   01-Jan-2024 00:00   "
			  "9223372036854775807\n"
			  "<a href=\"nine\">nine</a>   01-Jan-2024 00:00   9E\n"
			  "<a href=\"seven\">seven</a>   01-Jan-2024 00:00   "
			  "7.9E\n",
			  NULL, "/", &d),
		0);
	assert_int_equal(d.n, 4);
	e = find(&d, "big");
	assert_false(e->attr.size_exact);
	assert_true(e->attr.size <= (uint64_t)INT64_MAX);
	e = find(&d, "max");
	assert_true(e->attr.size_exact);
	assert_true(e->attr.size == (uint64_t)INT64_MAX);
	e = find(&d, "nine");
	assert_false(e->attr.size_exact);
	assert_true(e->attr.size <= (uint64_t)INT64_MAX);
	e = find(&d, "seven");
	assert_false(e->attr.size_exact);
	assert_true(e->attr.size > 7ull << 60);
	assert_true(e->attr.size <= (uint64_t)INT64_MAX);
	store_dir_free(&d);
}

static void test_truncated(void **state)
{
	struct store_dir d;
	size_t i;

	assert_int_equal(parse_file("truncated.html", NULL, "/exact/", &d), 0);
	/* Everything before the cut is there. */
	for (i = 0; i < NTREE; i++) {
		if (tree[i].hidden)
			continue;
		if (!strcmp(tree[i].name, "plain.txt"))
			break;
		if (!find(&d, tree[i].name))
			fail_msg("entry \"%s\" missing", tree[i].name);
	}
	assert_int_equal(find(&d, "big.bin")->attr.size, 1572864);
	store_dir_free(&d);
}

/* Prefixes of every sample: no crash, no leak, no read past the end. */
static void test_every_prefix(void **state)
{
	static const char *const files[] = {
		"nginx.html",	     "nginx-rounded.html", "nginx.json",
		"apache-fancy.html", "apache-table.html",  "apache-icons.html",
		"apache-plain.html", "python.html",	   "edge-links.html",
		"bad-names.json",
	};
	size_t f, len;

	/* Thousands of warnings about the same bad names say nothing. */
	assert_int_equal(log_open(LOG_TO_FILE, "/dev/null", false), 0);
	for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		struct buf b = load(files[f]);

		/* Every third byte keeps the run short under sanitizers. */
		for (len = f % 3; len <= b.len; len += 3) {
			char *copy = malloc(len ? len : 1);
			struct store_dir d = {0};
			int err;

			assert_non_null(copy);
			memcpy(copy, b.data, len);
			err = listing_parse(copy, len, NULL, "/", &d);
			if (err != 0 && err != -EPROTO)
				fail_msg("%s[0..%zu): %d", files[f], len, err);
			if (err)
				assert_int_equal(d.n, 0);
			store_dir_free(&d);
			free(copy);
		}
		free(b.data);
	}
	log_close();
}

static void test_garbage(void **state)
{
	struct store_dir d;
	unsigned int seed = 12345;
	size_t i, round;

	assert_int_equal(log_open(LOG_TO_FILE, "/dev/null", false), 0);
	for (round = 0; round < 1000; round++) {
		size_t len = 1 + round * 37 % 4096;
		char *s = malloc(len);
		int err;

		assert_non_null(s);
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			s[i] = (char)(seed >> 16);
			/* Make tags and links likely. */
			if (seed % 7 == 0)
				s[i] = "<a href=\"/%>\n"[seed % 13];
		}
		memset(&d, 0, sizeof(d));
		err = listing_parse(
			s, len, round % 2 ? "application/json" : NULL, "/", &d);
		assert_true(err == 0 || err == -EPROTO);
		for (i = 0; i < d.n; i++)
			assert_true(strlen(d.ents[i].name) <= 255 &&
				    !strchr(d.ents[i].name, '/'));
		store_dir_free(&d);
		free(s);
	}
	log_close();
}

/* A big directory with every entry linked twice, nginx style. */
static void test_large(void **state)
{
	size_t n = 50000, i, len = 0, cap = n * 2 * 80 + 64;
	char *s = malloc(cap);
	struct store_dir d = {0};

	assert_non_null(s);
	len += (size_t)snprintf(s, cap, "<html><body><pre>");
	for (i = 0; i < 2 * n; i++)
		len += (size_t)snprintf(s + len, cap - len,
					"<a href=\"f%zu\">f</a> 21-Nov-2026 "
					"21:10 %zu\n",
					i % n, i % n);
	assert_int_equal(listing_parse(s, len, NULL, "/", &d), 0);
	assert_int_equal(d.n, n);
	assert_string_equal(d.ents[n - 1].name, "f49999");
	assert_int_equal(d.ents[n - 1].attr.size, 49999);
	assert_int_equal(d.ents[n - 1].attr.mtime, T_1121);
	store_dir_free(&d);
	free(s);
}

static void test_deep_html(void **state)
{
	size_t n = 20000, i, len = 0;
	char *s = malloc(n * 5 + 64);
	struct store_dir d = {0};
	int err;

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		memcpy(s + len, "<div>", 5);
		len += 5;
	}
	len += (size_t)sprintf(s + len, "<a href=\"deep\">deep</a>");
	err = listing_parse(s, len, NULL, "/", &d);
	assert_true(err == 0 || err == -EPROTO);
	store_dir_free(&d);
	free(s);
}

static void test_store_dir(void **state)
{
	struct store_dir d = {0};
	struct store_attr a = {.size = 7, .size_exact = true};
	char name[16];
	int i;

	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		a.mtime = i;
		assert_int_equal(store_dir_add(&d, name, &a), 0);
	}
	assert_int_equal(d.n, 1000);
	assert_true(d.cap >= d.n);
	assert_string_equal(d.ents[999].name, "n999");
	assert_int_equal(d.ents[999].attr.mtime, 999);
	assert_int_equal(d.ents[999].attr.size, 7);
	store_dir_free(&d);
	assert_int_equal(d.n, 0);
	assert_null(d.ents);
	store_dir_free(&d);
	store_dir_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nginx_html),
		cmocka_unit_test(test_nginx_rounded),
		cmocka_unit_test(test_nginx_json),
		cmocka_unit_test(test_apache_fancy),
		cmocka_unit_test(test_apache_table),
		cmocka_unit_test(test_apache_icons),
		cmocka_unit_test(test_apache_plain),
		cmocka_unit_test(test_python),
		cmocka_unit_test(test_empty_listings),
		cmocka_unit_test(test_edge_links),
		cmocka_unit_test(test_json_bad_names),
		cmocka_unit_test(test_json_not_listing),
		cmocka_unit_test(test_json_deep),
		cmocka_unit_test(test_not_a_listing),
		cmocka_unit_test(test_dir_path_match),
		cmocka_unit_test(test_huge_sizes),
		cmocka_unit_test(test_raw_utf8),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_deep_html),
		cmocka_unit_test(test_store_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
