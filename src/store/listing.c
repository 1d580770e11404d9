/*
 * Directory index pages to struct store_dir. JSON (nginx autoindex_format
 * json) goes through json-c; everything else through libxml2's forgiving
 * HTML parser, whose links name the entries and whose neighbouring text
 * (a <pre> line or the cells of a table row) gives dates and sizes.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>
#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/log.h"
#include "common/url.h"
#include "store/listing.h"

/* nginx's JSON is two levels deep; anything much deeper is not a listing. */
#define LISTING_JSON_DEPTH 8
/* Enough for "21-Nov-2026 21:10    1572864" and Apache's description. */
#define LISTING_TEXT_MAX 256

/* The entries being built and an index of their names for deduplication. */
struct listing_ctx {
	struct store_dir *dir;
	const char *dir_path;
	size_t *slots; /* index + 1 into dir->ents, 0 when free */
	size_t nslots; /* a power of two, or 0 */
};

static pthread_once_t listing_once = PTHREAD_ONCE_INIT;

/* libxml2 wants its global state set up once before threads use it. */
static void listing_init(void)
{
	xmlInitParser();
}

static bool listing_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static unsigned char listing_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool listing_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Names in messages come from the network: keep them short and printable
 * so a hostile listing cannot write escape sequences to a terminal.
 */
static void listing_printable(char *dst, size_t size, const char *src,
			      size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 4 < size; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i < len) {
		memcpy(dst + n, "...", 3);
		n += 3;
	}
	dst[n] = '\0';
}

static void listing_warn_name(const char *what, const char *raw, size_t len)
{
	char buf[80];

	listing_printable(buf, sizeof(buf), raw, len);
	log_warn("listing: skipping entry \"%s\": %s", buf, what);
}

/* FNV-1a: names are short and the table is private to one parse. */
static size_t listing_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static struct store_dirent *listing_find(struct listing_ctx *ctx,
					 const char *name)
{
	size_t mask = ctx->nslots - 1, i;

	if (!ctx->nslots)
		return NULL;
	for (i = listing_hash(name) & mask; ctx->slots[i]; i = (i + 1) & mask) {
		struct store_dirent *e = &ctx->dir->ents[ctx->slots[i] - 1];

		if (!strcmp(e->name, name))
			return e;
	}
	return NULL;
}

static void listing_slot_put(size_t *slots, size_t nslots, const char *name,
			     size_t idx)
{
	size_t mask = nslots - 1, i;

	for (i = listing_hash(name) & mask; slots[i]; i = (i + 1) & mask)
		;
	slots[i] = idx + 1;
}

/* Keep the table at most half full so probes stay short. */
static int listing_reserve(struct listing_ctx *ctx)
{
	size_t nslots, i, *slots;

	if ((ctx->dir->n + 1) * 2 <= ctx->nslots)
		return 0;
	nslots = ctx->nslots ? ctx->nslots * 2 : 64;
	if (nslots < ctx->nslots || nslots > SIZE_MAX / sizeof(*slots))
		return -ENOMEM;
	slots = calloc(nslots, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (i = 0; i < ctx->dir->n; i++)
		listing_slot_put(slots, nslots, ctx->dir->ents[i].name, i);
	free(ctx->slots);
	ctx->slots = slots;
	ctx->nslots = nslots;
	return 0;
}

/*
 * Add name, or complete an entry already seen: Apache's icon column links
 * to each entry once more, before the link that the date and size follow.
 */
static int listing_add(struct listing_ctx *ctx, const char *name,
		       const struct store_attr *attr)
{
	struct store_dirent *e = listing_find(ctx, name);
	int err;

	if (e) {
		if (!e->attr.mtime)
			e->attr.mtime = attr->mtime;
		if (!e->attr.size_exact && !e->attr.size) {
			e->attr.size = attr->size;
			e->attr.size_exact = attr->size_exact;
		}
		return 0;
	}
	err = listing_reserve(ctx);
	if (err)
		return err;
	err = store_dir_add(ctx->dir, name, attr);
	if (err)
		return err;
	listing_slot_put(ctx->slots, ctx->nslots, name, ctx->dir->n - 1);
	return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t listing_days(int64_t y, unsigned int m, unsigned int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool listing_leap(unsigned int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool listing_date_ok(unsigned int y, unsigned int m, unsigned int d)
{
	static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30,
					      31, 31, 30, 31, 30, 31};

	if (y < 1000 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	return m != 2 || d <= 28 || listing_leap(y);
}

/* Read exactly n digits at *p; advances *p. */
static bool listing_num(const char **p, const char *end, unsigned int n,
			unsigned int *out)
{
	unsigned int v = 0;

	if ((size_t)(end - *p) < n)
		return false;
	while (n--) {
		if (!listing_digit((unsigned char)**p))
			return false;
		v = v * 10 + (unsigned int)(**p - '0');
		(*p)++;
	}
	*out = v;
	return true;
}

/* Read one or two digits (RFC 1123 days, lax hours). */
static bool listing_num12(const char **p, const char *end, unsigned int *out)
{
	if (!listing_num(p, end, 1, out))
		return false;
	if (*p < end && listing_digit((unsigned char)**p))
		*out = *out * 10 + (unsigned int)(*(*p)++ - '0');
	return true;
}

static bool listing_month(const char **p, const char *end, unsigned int *out)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	unsigned int i;

	if (end - *p < 3)
		return false;
	for (i = 0; i < 12; i++) {
		if (listing_lower((unsigned char)(*p)[0]) == months[i * 3] &&
		    listing_lower((unsigned char)(*p)[1]) ==
			    months[i * 3 + 1] &&
		    listing_lower((unsigned char)(*p)[2]) ==
			    months[i * 3 + 2]) {
			*p += 3;
			*out = i + 1;
			return true;
		}
	}
	return false;
}

static bool listing_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/*
 * A date token as index pages print it: "21-Nov-2026" (nginx, old Apache),
 * "2026-11-21" (Apache), "2026-Nov-21" (lighttpd). Whole token only.
 */
static bool listing_parse_date(const char *p, const char *end, unsigned int *y,
			       unsigned int *m, unsigned int *d)
{
	const char *q = p;

	if (listing_num12(&q, end, d) && listing_char(&q, end, '-') &&
	    listing_month(&q, end, m) && listing_char(&q, end, '-') &&
	    listing_num(&q, end, 4, y) && q == end)
		return listing_date_ok(*y, *m, *d);
	q = p;
	if (!listing_num(&q, end, 4, y) || !listing_char(&q, end, '-'))
		return false;
	if (!listing_num(&q, end, 2, m) && !listing_month(&q, end, m))
		return false;
	if (!listing_char(&q, end, '-') || !listing_num(&q, end, 2, d) ||
	    q != end)
		return false;
	return listing_date_ok(*y, *m, *d);
}

/* "hh:mm" or "hh:mm:ss", whole token only; seconds in seconds. */
static bool listing_parse_time(const char *p, const char *end, int64_t *secs)
{
	unsigned int h, mi, s = 0;

	if (!listing_num12(&p, end, &h) || !listing_char(&p, end, ':') ||
	    !listing_num(&p, end, 2, &mi))
		return false;
	if (p < end &&
	    (!listing_char(&p, end, ':') || !listing_num(&p, end, 2, &s)))
		return false;
	if (p != end || h > 23 || mi > 59 || s > 60)
		return false;
	*secs = (int64_t)h * 3600 + mi * 60 + s;
	return true;
}

/*
 * A size token: "-" (none, a directory), "12345" (bytes, exact), "1.2K",
 * "12K", "2M", "3.4 GiB"-like suffixes (an estimate: the server rounded).
 * Returns false when the token is no size at all.
 */
static bool listing_parse_size(const char *p, const char *end,
			       struct store_attr *attr)
{
	static const char units[] = "kmgtpe";
	uint64_t v = 0, frac = 0, fdiv = 1, mult = 1;
	const char *u;
	bool exact = true;

	if (end - p == 1 && *p == '-')
		return true;
	if (p == end || !listing_digit((unsigned char)*p))
		return false;
	for (; p < end && listing_digit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p < end && *p == '.') {
		exact = false;
		for (p++; p < end && listing_digit((unsigned char)*p); p++) {
			/* Precision beyond a few digits adds nothing. */
			if (fdiv < 1000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fdiv *= 10;
			}
		}
	}
	if (p < end &&
	    (u = memchr(units, listing_lower((unsigned char)*p), 6)) != NULL) {
		exact = false;
		mult = (uint64_t)1 << (10 * (u - units + 1));
		p++;
		if (p < end && listing_lower((unsigned char)*p) == 'i')
			p++;
		if (p < end && listing_lower((unsigned char)*p) == 'b')
			p++;
	} else if (p < end && listing_lower((unsigned char)*p) == 'b') {
		p++;
	}
	/* A file's size is an off_t: beyond that it is no size at all. */
	if (p != end || v > (uint64_t)INT64_MAX / mult)
		return false;
	v *= mult;
	if (frac) {
		/* frac < 1000: the product cannot wrap below exabytes. */
		uint64_t f = mult <= UINT64_MAX / 1000 ? frac * mult / fdiv
						       : mult / fdiv * frac;

		if (f <= (uint64_t)INT64_MAX - v)
			v += f;
	}
	attr->size = v;
	attr->size_exact = exact;
	return true;
}

static const char *listing_token(const char **p, const char *end,
				 const char **tend)
{
	const char *s = *p;

	while (s < end && listing_space((unsigned char)*s))
		s++;
	if (s == end)
		return NULL;
	*tend = s;
	while (*tend < end && !listing_space((unsigned char)**tend))
		(*tend)++;
	*p = *tend;
	return s;
}

/*
 * The text after a link: "date time size ..." in every server that gives
 * them at all. A size is believed only after a date, so that words after
 * links on unrelated pages do not become sizes.
 */
static void listing_parse_text(const char *text, size_t len,
			       struct store_attr *attr)
{
	const char *p = text, *end = text + len, *t, *te;
	unsigned int y, m, d;
	int64_t secs;

	t = listing_token(&p, end, &te);
	if (!t || !listing_parse_date(t, te, &y, &m, &d))
		return;
	t = listing_token(&p, end, &te);
	if (!t || !listing_parse_time(t, te, &secs))
		return;
	/* Apache prints the server's local time; UTC is the best guess. */
	attr->mtime = listing_days(y, m, d) * 86400 + secs;
	t = listing_token(&p, end, &te);
	if (t)
		listing_parse_size(t, te, attr);
}

/* "Sat, 21 Nov 2026 21:10:00 GMT", nginx's JSON mtime (RFC 1123). */
static bool listing_parse_http_date(const char *s, int64_t *out)
{
	const char *p = s, *end = s + strlen(s), *q;
	unsigned int y, m, d;
	int64_t secs;

	q = memchr(p, ',', (size_t)(end - p));
	if (q)
		p = q + 1;
	while (p < end && *p == ' ')
		p++;
	if (!listing_num12(&p, end, &d) || !listing_char(&p, end, ' ') ||
	    !listing_month(&p, end, &m) || !listing_char(&p, end, ' ') ||
	    !listing_num(&p, end, 4, &y) || !listing_char(&p, end, ' '))
		return false;
	q = memchr(p, ' ', (size_t)(end - p));
	if (!q || strcmp(q, " GMT") != 0)
		return false;
	if (!listing_parse_time(p, q, &secs) || !listing_date_ok(y, m, d))
		return false;
	*out = listing_days(y, m, d) * 86400 + secs;
	return true;
}

static bool listing_is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->name &&
	       !xmlStrcasecmp(n->name, (const xmlChar *)name);
}

/* Append the text of n and its descendants to buf, up to LISTING_TEXT_MAX. */
static void listing_append_content(char *buf, size_t *len, xmlNode *n)
{
	xmlChar *c = xmlNodeGetContent(n);
	size_t cl;

	if (!c)
		return;
	cl = strlen((const char *)c);
	if (cl > LISTING_TEXT_MAX - *len)
		cl = LISTING_TEXT_MAX - *len;
	memcpy(buf + *len, c, cl);
	*len += cl;
	xmlFree(c);
}

/*
 * Gather the text that describes the entry linked by a: the following cells
 * of its table row, or the rest of its line in a <pre>. The buffer holds
 * LISTING_TEXT_MAX + 2 bytes.
 */
static size_t listing_context_text(xmlNode *a, char *buf)
{
	xmlNode *n, *cell = NULL;
	size_t len = 0, i;

	for (n = a->parent; n && n->type == XML_ELEMENT_NODE; n = n->parent) {
		if (listing_is(n, "td") || listing_is(n, "th")) {
			cell = n;
			break;
		}
		if (!listing_is(n, "span") && !listing_is(n, "b") &&
		    !listing_is(n, "strong") && !listing_is(n, "code") &&
		    !listing_is(n, "tt") && !listing_is(n, "i") &&
		    !listing_is(n, "em"))
			break;
	}
	if (cell) {
		for (n = cell->next; n && len < LISTING_TEXT_MAX; n = n->next) {
			if (!listing_is(n, "td") && !listing_is(n, "th"))
				continue;
			listing_append_content(buf, &len, n);
			buf[len++] = ' ';
		}
	} else {
		for (n = a->next; n && len < LISTING_TEXT_MAX; n = n->next) {
			char *nl;
			size_t start = len;

			if (listing_is(n, "a") || listing_is(n, "br") ||
			    listing_is(n, "li") || listing_is(n, "tr"))
				break;
			listing_append_content(buf, &len, n);
			nl = memchr(buf + start, '\n', len - start);
			if (nl) {
				len = (size_t)(nl - buf);
				break;
			}
		}
	}
	/* &nbsp; arrives as U+00A0: make it the space it stands for. */
	for (i = 0; i + 1 < len; i++) {
		if ((unsigned char)buf[i] == 0xc2 &&
		    (unsigned char)buf[i + 1] == 0xa0) {
			buf[i] = ' ';
			buf[i + 1] = ' ';
		}
	}
	buf[len] = '\0';
	return len;
}

/* A scheme ("http:", "mailto:") before any '/': not a link to a child. */
static bool listing_has_scheme(const char *href)
{
	const char *p = href;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return false;
	for (p++; *p && *p != ':' && *p != '/'; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      listing_digit(c) || c == '+' || c == '-' || c == '.'))
			return false;
	}
	return *p == ':';
}

/* One byte of a percent-encoded string, escapes decoded; advances *p. */
static int listing_pct_byte(const char **p)
{
	static const char hex[] = "0123456789abcdef";
	const char *s = *p, *h, *l;

	if (s[0] == '%' && s[1] && s[2] &&
	    (h = memchr(hex, listing_lower((unsigned char)s[1]), 16)) &&
	    (l = memchr(hex, listing_lower((unsigned char)s[2]), 16))) {
		*p += 3;
		return (int)((h - hex) << 4 | (l - hex));
	}
	(*p)++;
	return (unsigned char)s[0];
}

/*
 * If the absolute-path href lies under dir_path, return what follows it.
 * Compared byte by decoded byte: "%C3%A9", "%c3%a9" and a raw "é" in UTF-8
 * name the same directory.
 */
static const char *listing_strip_dir(const char *href, const char *dir)
{
	const char *h = href, *d = dir;

	while (*d) {
		if (!*h || listing_pct_byte(&h) != listing_pct_byte(&d))
			return NULL;
	}
	/* Tolerate a dir_path given without its trailing slash. */
	if (d > dir && d[-1] != '/') {
		if (*h != '/')
			return NULL;
		h++;
	}
	return h;
}

/* Turn one link into an entry, or ignore it. Returns 0 or -ENOMEM. */
static int listing_take_link(struct listing_ctx *ctx, xmlNode *a,
			     const char *href)
{
	struct store_attr attr = {0};
	char text[LISTING_TEXT_MAX + 2];
	const char *rel, *end, *slash;
	char *name;
	int err;

	while (*href && listing_space((unsigned char)*href))
		href++;
	end = href + strlen(href);
	while (end > href && listing_space((unsigned char)end[-1]))
		end--;
	/* Sort links ("?C=M;O=A"), fragments and queries are never entries. */
	if (end == href || memchr(href, '?', (size_t)(end - href)) ||
	    memchr(href, '#', (size_t)(end - href)))
		return 0;
	if (href[0] == '/') {
		/* "//host/...": another host, whatever the path. */
		if (href[1] == '/')
			return 0;
		rel = listing_strip_dir(href,
					ctx->dir_path ? ctx->dir_path : "/");
		if (!rel || rel > end)
			return 0;
	} else if (listing_has_scheme(href)) {
		/* We do not know our own host name here; no absolute URLs. */
		return 0;
	} else {
		rel = href;
	}
	/* Servers write "./a:b" so that "a:" does not read as a scheme. */
	while (end - rel >= 2 && rel[0] == '.' && rel[1] == '/')
		rel += 2;
	if (rel == end || (end - rel == 1 && rel[0] == '.') ||
	    (end - rel >= 2 && rel[0] == '.' && rel[1] == '.' &&
	     (end - rel == 2 || rel[2] == '/')))
		return 0;
	slash = memchr(rel, '/', (size_t)(end - rel));
	if (slash) {
		/* "a/b", "a//": not a direct child. */
		if (slash + 1 != end)
			return 0;
		attr.is_dir = true;
	} else {
		slash = end;
	}

	err = url_decode(rel, (size_t)(slash - rel), &name);
	if (err == -ENOMEM)
		return err;
	if (err) {
		listing_warn_name("malformed percent-encoding", rel,
				  (size_t)(slash - rel));
		return 0;
	}
	if (!url_name_valid(name)) {
		listing_warn_name("not a valid file name", rel,
				  (size_t)(slash - rel));
		free(name);
		return 0;
	}
	if (listing_context_text(a, text))
		listing_parse_text(text, strlen(text), &attr);
	if (attr.is_dir) {
		/* A directory's "size" in a listing is never its content. */
		attr.size = 0;
		attr.size_exact = false;
	}
	err = listing_add(ctx, name, &attr);
	free(name);
	return err;
}

/* Next node in document order below root, without recursion. */
static xmlNode *listing_next(xmlNode *n, xmlNode *root)
{
	if (n->type == XML_ELEMENT_NODE && n->children)
		return n->children;
	while (n && n != root) {
		if (n->next)
			return n->next;
		n = n->parent;
	}
	return NULL;
}

static int listing_parse_html(struct listing_ctx *ctx, const char *body,
			      size_t len)
{
	htmlDocPtr doc;
	xmlNode *root, *n;
	int err = 0;

	if (len > INT_MAX)
		return -EPROTO;
	doc = htmlReadMemory(body, (int)len, NULL, NULL,
			     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
				     HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (!doc)
		return -EPROTO;
	root = xmlDocGetRootElement(doc);
	if (!root) {
		err = -EPROTO;
		goto out_free_doc;
	}
	for (n = root; n && !err; n = listing_next(n, root)) {
		xmlChar *href;

		if (!listing_is(n, "a"))
			continue;
		href = xmlGetProp(n, (const xmlChar *)"href");
		if (!href)
			continue;
		err = listing_take_link(ctx, n, (const char *)href);
		xmlFree(href);
	}
out_free_doc:
	xmlFreeDoc(doc);
	return err;
}

/* One object of nginx's JSON array. Returns 0, 1 when it has no name. */
static int listing_json_entry(struct listing_ctx *ctx, json_object *o)
{
	struct store_attr attr = {0};
	json_object *v;
	const char *name, *type = NULL;
	int len;

	if (!json_object_object_get_ex(o, "name", &v) ||
	    !json_object_is_type(v, json_type_string))
		return 1;
	name = json_object_get_string(v);
	len = json_object_get_string_len(v);
	/* strlen: a "\u0000" inside the name would cut it short. */
	if (len < 0 || strlen(name) != (size_t)len || !url_name_valid(name)) {
		listing_warn_name("not a valid file name", name, strlen(name));
		return 0;
	}
	if (json_object_object_get_ex(o, "type", &v) &&
	    json_object_is_type(v, json_type_string))
		type = json_object_get_string(v);
	if (type && !strcmp(type, "directory")) {
		attr.is_dir = true;
	} else if (type && strcmp(type, "file") != 0) {
		/* "other": sockets, devices, dangling links; nothing to read.
		 */
		log_debug("listing: skipping \"%s\" of type %s", name, type);
		return 0;
	}
	if (json_object_object_get_ex(o, "mtime", &v) &&
	    json_object_is_type(v, json_type_string))
		listing_parse_http_date(json_object_get_string(v), &attr.mtime);
	if (!attr.is_dir && json_object_object_get_ex(o, "size", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0) {
		attr.size = json_object_get_uint64(v);
		attr.size_exact = true;
	}
	return listing_add(ctx, name, &attr);
}

static int listing_parse_json(struct listing_ctx *ctx, const char *body,
			      size_t len)
{
	struct json_tokener *tok;
	json_object *root;
	size_t i, n, end, named = 0, unnamed = 0;
	int err = 0;

	if (len > INT_MAX)
		return -EPROTO;
	tok = json_tokener_new_ex(LISTING_JSON_DEPTH);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success) {
		err = -EPROTO;
		goto out_free;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (!listing_space((unsigned char)body[end])) {
			err = -EPROTO;
			goto out_free;
		}
	}
	if (!json_object_is_type(root, json_type_array)) {
		err = -EPROTO;
		goto out_free;
	}
	n = json_object_array_length(root);
	for (i = 0; i < n && !err; i++) {
		json_object *o = json_object_array_get_idx(root, i);

		if (!json_object_is_type(o, json_type_object)) {
			err = -EPROTO;
			break;
		}
		err = listing_json_entry(ctx, o);
		if (err == 1) {
			unnamed++;
			err = 0;
		} else {
			named++;
		}
	}
	/* Objects that never carry a name are some other JSON document. */
	if (!err && unnamed && !named)
		err = -EPROTO;
out_free:
	json_object_put(root);
	json_tokener_free(tok);
	return err;
}

/* application/json, or a body that opens like JSON. */
static bool listing_is_json(const char *body, size_t len,
			    const char *content_type)
{
	static const char json[] = "application/json";
	size_t i;

	if (content_type) {
		const char *p = content_type;

		while (listing_space((unsigned char)*p))
			p++;
		for (i = 0; i < sizeof(json) - 1; i++)
			if (listing_lower((unsigned char)p[i]) != json[i])
				break;
		if (i == sizeof(json) - 1 &&
		    (!p[i] || p[i] == ';' ||
		     listing_space((unsigned char)p[i])))
			return true;
	}
	i = 0;
	/* A UTF-8 byte order mark is not part of the document. */
	if (len >= 3 && !memcmp(body, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < len && listing_space((unsigned char)body[i]))
		i++;
	return i < len && (body[i] == '[' || body[i] == '{');
}

int listing_parse(const char *body, size_t len, const char *content_type,
		  const char *dir_path, struct store_dir *out)
{
	struct listing_ctx ctx = {.dir = out, .dir_path = dir_path};
	size_t i;
	int err;

	pthread_once(&listing_once, listing_init);
	for (i = 0; i < len && listing_space((unsigned char)body[i]); i++)
		;
	/* An empty answer is not even an empty directory's page. */
	if (i == len)
		return -EPROTO;
	if (listing_is_json(body, len, content_type))
		err = listing_parse_json(&ctx, body, len);
	else
		err = listing_parse_html(&ctx, body, len);
	free(ctx.slots);
	if (err)
		store_dir_free(out);
	return err;
}
