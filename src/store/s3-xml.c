/*
 * ListObjectsV2 and <Error> parsing with libxml2's tree API. The input is
 * whatever an endpoint sent (maybe an HTML page, maybe truncated, maybe
 * hostile): the parser never loads external entities or DTDs, never
 * touches the network, and rejects anything that is not the expected root.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/url.h"
#include "store/s3-xml.h"

/* Pages of a real listing have at most 1000 entries; anything far beyond
 * that is not S3 and must not make us allocate without bound. */
#define S3_XML_MAX_ENTRIES 100000

/* No DTD loading, no entity substitution, no network, no messages on
 * stderr: the body is untrusted. */
#define S3_XML_OPTIONS                                                         \
	(XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t s3_xml_once = PTHREAD_ONCE_INIT;

static void s3_xml_init(void)
{
	/* libxml2 2.9 wants this before it is used from several threads. */
	xmlInitParser();
}

static void s3_xml_silent(void *ctx, const char *msg, ...)
{
}

static bool name_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       !strcmp((const char *)n->name, name);
}

/* Text content of n; a new string or NULL on ENOMEM. */
static char *node_text(const xmlNode *n)
{
	xmlChar *c = xmlNodeGetContent(n);
	char *s;

	if (!c)
		return strdup("");
	s = strdup((const char *)c);
	xmlFree(c);
	return s;
}

/* Copy the text of n into dst[0..cap), truncating; false when it was
 * truncated. */
static bool node_text_into(const xmlNode *n, char *dst, size_t cap)
{
	xmlChar *c = xmlNodeGetContent(n);
	int len = snprintf(dst, cap, "%s", c ? (const char *)c : "");

	if (c)
		xmlFree(c);
	return len >= 0 && (size_t)len < cap;
}

char *s3_xml_url_decode(const char *s)
{
	char *out;

	return url_decode_form(s, strlen(s), &out) ? NULL : out;
}

int64_t s3_xml_parse_time(const char *s)
{
	struct tm tm = {0};
	int n = 0;

	if (!s)
		return 0;
	while (isspace((unsigned char)*s))
		s++;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	/* Fractions and the 'Z' are ignored: S3 always writes UTC. */
	return (int64_t)timegm(&tm);
}

static xmlDoc *parse_doc(const char *body, size_t len)
{
	xmlDoc *doc;

	pthread_once(&s3_xml_once, s3_xml_init);
	if (!body || !len || len > (size_t)0x7fffffff)
		return NULL;
	/* S3 never sends a DTD; refusing one up front rules out entity
	 * expansion tricks (billion laughs, external entities) wholesale. */
	if (memmem(body, len, "<!DOCTYPE", 9))
		return NULL;
	/* XML_PARSE_NOERROR does not cover encoding errors, which libxml2
	 * prints through the generic handler; that handler is per thread. */
	xmlSetGenericErrorFunc(NULL, s3_xml_silent);
	doc = xmlReadMemory(body, (int)len, "s3.xml", NULL, S3_XML_OPTIONS);
	if (doc && (doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

void s3_xml_page_free(struct s3_xml_page *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nobjects; i++)
		free(p->objects[i].key);
	for (i = 0; i < p->nprefixes; i++)
		free(p->prefixes[i]);
	free(p->objects);
	free(p->prefixes);
	free(p->next_token);
	memset(p, 0, sizeof(*p));
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -EPROTO;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EPROTO;
	while (isspace((unsigned char)*end))
		end++;
	if (*end || v > (unsigned long long)INT64_MAX)
		return -EPROTO;
	*out = v;
	return 0;
}

/* Key text, decoded when the page is url-encoded. NULL: *err says why. */
static char *key_text(const xmlNode *n, bool url, int *err)
{
	char *raw = node_text(n), *dec;

	if (!raw) {
		*err = -ENOMEM;
		return NULL;
	}
	if (!url)
		return raw;
	dec = s3_xml_url_decode(raw);
	free(raw);
	if (!dec)
		*err = -EPROTO;
	return dec;
}

static int parse_contents(const xmlNode *c, bool url, struct s3_xml_object *o,
			  char *why, size_t why_len)
{
	const xmlNode *n;
	bool have_size = false;
	int err = 0;

	memset(o, 0, sizeof(*o));
	for (n = c->children; n; n = n->next) {
		if (name_is(n, "Key")) {
			if (o->key) {
				snprintf(why, why_len,
					 "<Contents> with two <Key>");
				return -EPROTO;
			}
			o->key = key_text(n, url, &err);
			if (!o->key) {
				snprintf(why, why_len, "undecodable <Key>");
				return err;
			}
		} else if (name_is(n, "Size")) {
			char t[64];

			node_text_into(n, t, sizeof(t));
			if (parse_u64(t, &o->size)) {
				snprintf(why, why_len, "bad <Size> '%.40s'", t);
				return -EPROTO;
			}
			have_size = true;
		} else if (name_is(n, "LastModified")) {
			char t[64];

			node_text_into(n, t, sizeof(t));
			o->mtime = s3_xml_parse_time(t);
		} else if (name_is(n, "ETag")) {
			/* Too long to keep whole is as good as none: cut
			 * short, If-Match would fail every read. */
			if (!node_text_into(n, o->etag, sizeof(o->etag)))
				o->etag[0] = '\0';
		}
	}
	if (!o->key || !have_size) {
		snprintf(why, why_len, "<Contents> without <Key> or <Size>");
		return -EPROTO;
	}
	return 0;
}

static int parse_prefixes(const xmlNode *c, bool url, struct s3_xml_page *p,
			  char *why, size_t why_len)
{
	const xmlNode *n;
	int err = 0;

	for (n = c->children; n; n = n->next) {
		char **np;
		char *s;

		if (!name_is(n, "Prefix"))
			continue;
		if (p->nprefixes >= S3_XML_MAX_ENTRIES) {
			snprintf(why, why_len, "more than %d entries in a page",
				 S3_XML_MAX_ENTRIES);
			return -EPROTO;
		}
		s = key_text(n, url, &err);
		if (!s) {
			snprintf(why, why_len, "undecodable <Prefix>");
			return err;
		}
		np = realloc(p->prefixes, (p->nprefixes + 1) * sizeof(*np));
		if (!np) {
			free(s);
			return -ENOMEM;
		}
		p->prefixes = np;
		p->prefixes[p->nprefixes++] = s;
	}
	return 0;
}

int s3_xml_parse_list(const char *body, size_t len, struct s3_xml_page *out,
		      char *why, size_t why_len)
{
	char dummy[8];
	xmlDoc *doc;
	xmlNode *root, *n;
	bool url = false, have_trunc = false;
	size_t cap = 0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!why) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	why[0] = '\0';
	doc = parse_doc(body, len);
	if (!doc) {
		snprintf(why, why_len, "answer is not well-formed XML%s",
			 len ? " (truncated or not S3?)" : " (empty body)");
		return -EPROTO;
	}
	root = xmlDocGetRootElement(doc);
	if (!root || !name_is(root, "ListBucketResult")) {
		snprintf(why, why_len,
			 "answer is <%.40s>, not a ListBucketResult",
			 root ? (const char *)root->name : "nothing");
		err = -EPROTO;
		goto out_doc;
	}
	/* EncodingType decides how every key is read, wherever it sits. */
	for (n = root->children; n; n = n->next) {
		if (name_is(n, "EncodingType")) {
			char t[16];

			node_text_into(n, t, sizeof(t));
			url = !strcmp(t, "url");
		}
	}
	for (n = root->children; n; n = n->next) {
		if (name_is(n, "Contents")) {
			if (out->nobjects >= S3_XML_MAX_ENTRIES) {
				snprintf(why, why_len,
					 "more than %d entries in a page",
					 S3_XML_MAX_ENTRIES);
				err = -EPROTO;
				goto out_free;
			}
			if (out->nobjects == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct s3_xml_object *no;

				no = realloc(out->objects, ncap * sizeof(*no));
				if (!no) {
					err = -ENOMEM;
					goto out_free;
				}
				out->objects = no;
				cap = ncap;
			}
			err = parse_contents(n, url,
					     &out->objects[out->nobjects], why,
					     why_len);
			if (err) {
				free(out->objects[out->nobjects].key);
				goto out_free;
			}
			out->nobjects++;
		} else if (name_is(n, "CommonPrefixes")) {
			err = parse_prefixes(n, url, out, why, why_len);
			if (err)
				goto out_free;
		} else if (name_is(n, "IsTruncated")) {
			char t[16];

			node_text_into(n, t, sizeof(t));
			if (!strcmp(t, "true")) {
				out->truncated = true;
			} else if (strcmp(t, "false")) {
				snprintf(why, why_len,
					 "bad <IsTruncated> '%.10s'", t);
				err = -EPROTO;
				goto out_free;
			}
			have_trunc = true;
		} else if (name_is(n, "NextContinuationToken")) {
			free(out->next_token);
			out->next_token = node_text(n);
			if (!out->next_token) {
				err = -ENOMEM;
				goto out_free;
			}
		}
	}
	if (!have_trunc) {
		snprintf(why, why_len,
			 "ListBucketResult without <IsTruncated>");
		err = -EPROTO;
		goto out_free;
	}
	if (out->truncated && (!out->next_token || !out->next_token[0])) {
		snprintf(why, why_len,
			 "truncated listing without <NextContinuationToken>");
		err = -EPROTO;
		goto out_free;
	}
	xmlFreeDoc(doc);
	return 0;

out_free:
	s3_xml_page_free(out);
out_doc:
	xmlFreeDoc(doc);
	return err;
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *out)
{
	xmlDoc *doc;
	xmlNode *root, *n;
	int err = -EPROTO;

	memset(out, 0, sizeof(*out));
	doc = parse_doc(body, len);
	if (!doc)
		return -EPROTO;
	root = xmlDocGetRootElement(doc);
	if (!root || !name_is(root, "Error"))
		goto out_doc;
	for (n = root->children; n; n = n->next) {
		if (name_is(n, "Code"))
			node_text_into(n, out->code, sizeof(out->code));
		else if (name_is(n, "Message"))
			node_text_into(n, out->message, sizeof(out->message));
		else if (name_is(n, "Region"))
			node_text_into(n, out->region, sizeof(out->region));
	}
	/* These end up in log lines: no control characters from the wire. */
	sanitize(out->code);
	sanitize(out->message);
	sanitize(out->region);
	if (out->code[0])
		err = 0;
out_doc:
	xmlFreeDoc(doc);
	return err;
}
