/*
 * The plain HTTP(S) origin: a directory tree served by an ordinary web
 * server with directory indexes and range requests, or one file. Sizes and
 * validators come from HEAD, directory contents from the index pages
 * (listing.c), data from ranged GETs checked by the client core.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/url.h"
#include "store/http.h"
#include "store/listing.h"
#include "store/store.h"

/* An index page larger than this is not a directory listing we serve. */
#define HTTPDIR_MAX_LISTING (64u * 1024 * 1024)

struct httpdir {
	struct store base;
	struct http_pool *pool;
	char *base_url; /* ends in '/', as given (already encoded) */
	char *base_path; /* URL path of base_url, for resolving links */
	char *single; /* decoded name when the URL names one file */
	char *single_url;
	char *shown; /* base URL without userinfo or query, for messages */
	uint64_t id; /* this store among all of the process, from 1 */
};

/*
 * The URL of the object each thread read last, for the next read of the
 * same object (most are): building it (percent-encoding, an allocation,
 * snprintf) was 5% of the daemon's user time on a 4 KiB read. A thread's
 * own, so no lock; keyed by the store's id too, as a new store may reuse
 * a freed one's address. Paths or URLs too long for it are built each
 * time.
 */
static _Thread_local struct {
	uint64_t store;
	char path[512];
	char url[2048];
} httpdir_last;

static uint64_t httpdir_ids;

static struct httpdir *to_httpdir(struct store *s)
{
	return (struct httpdir *)s;
}

/* URL of path; a directory URL ends in '/'. Returns NULL on ENOMEM. */
static char *httpdir_url(struct httpdir *d, const char *path, bool dir)
{
	char *enc, *url;
	size_t n;

	if (d->single && !dir && !strcmp(path, d->single))
		return strdup(d->single_url);
	enc = url_encode(path, true);
	if (!enc)
		return NULL;
	n = strlen(d->base_url) + strlen(enc) + 2;
	url = malloc(n);
	if (url)
		snprintf(url, n, "%s%s%s", d->base_url, enc,
			 dir && enc[0] ? "/" : "");
	free(enc);
	return url;
}

/*
 * URL of the object at path for a read: the thread's last one when it is
 * that object's, else built, and remembered when it fits. *owned gets
 * what the caller frees (NULL for the remembered one). NULL on ENOMEM.
 */
static const char *httpdir_read_url(struct httpdir *d, const char *path,
				    char **owned)
{
	size_t pn, un;

	*owned = NULL;
	if (d->single && !strcmp(path, d->single))
		return d->single_url;
	if (httpdir_last.store == d->id && !strcmp(httpdir_last.path, path))
		return httpdir_last.url;
	*owned = httpdir_url(d, path, false);
	if (!*owned)
		return NULL;
	pn = strlen(path);
	un = strlen(*owned);
	if (pn < sizeof(httpdir_last.path) && un < sizeof(httpdir_last.url)) {
		memcpy(httpdir_last.path, path, pn + 1);
		memcpy(httpdir_last.url, *owned, un + 1);
		httpdir_last.store = d->id;
	}
	return *owned;
}

static void httpdir_fail(struct httpdir *d, const char *what,
			 const char *path, const struct http_resp *r, int err)
{
	store_set_error("%s", r->error);
	/* ENOENT is an ordinary answer to a lookup, not worth a warning; an
	 * interrupted request was cut short on purpose. */
	if (err == -ENOENT || err == -EINTR)
		log_debug("%s %s/%s: %s", what, d->shown, path, r->error);
	else
		log_warn("%s %s%s: %s", what, d->shown, path, r->error);
}

/* Whether a HEAD's failure with @status may be HEAD's alone. */
static bool httpdir_head_refused(long status)
{
	return status == 403 || status == 405 || status == 501;
}

/* Whether redirects led from url, a path without a final '/', to final,
 * one with it: the server says the name is a directory. */
static bool httpdir_to_dir(const char *url, const char *final)
{
	size_t ul = strcspn(url, "?#"), fl;

	if (!final || !ul || url[ul - 1] == '/')
		return false;
	fl = strcspn(final, "?#");
	return fl && final[fl - 1] == '/';
}

static int httpdir_stat(struct store *s, const char *path,
			struct store_attr *out)
{
	struct httpdir *d = to_httpdir(s);
	struct http_req q = { .head = true, .sink = HTTP_SINK_NONE };
	struct http_resp r;
	char *url;
	int err;

	memset(out, 0, sizeof(*out));
	if (!path[0]) {
		out->is_dir = true;
		out->size_exact = true;
		return 0;
	}
	url = httpdir_url(d, path, false);
	if (!url)
		return -ENOMEM;
	q.url = url;
	err = http_perform(d->pool, &q, &r);
	if (!err && httpdir_to_dir(url, r.final_url)) {
		/* e.g. nginx answers "/dir" with a 301 to "/dir/". */
		snprintf(r.error, sizeof(r.error),
			 "this names a directory; mount its URL with a "
			 "trailing '/'");
		err = -EISDIR;
	}
	/*
	 * A URL signed for GET (a presigned S3 or GCS link) answers HEAD
	 * with 403, and some servers refuse HEAD (405, 501): the GET below
	 * says what they would not.
	 */
	if (err && !httpdir_head_refused(r.status)) {
		httpdir_fail(d, "HEAD", path, &r, err);
		goto out;
	}
	if (err || r.content_length < 0) {
		/* No length on HEAD (chunked servers), or no HEAD: ask for
		 * one byte and read the total from Content-Range. */
		char byte;

		log_debug("HEAD %s%s: %s; asking for its first byte instead",
			  d->shown, path, err ? r.error : "no Content-Length");
		http_resp_free(&r);
		q.head = false;
		q.range_off = 0;
		q.range_len = 1;
		q.sink = HTTP_SINK_FIXED;
		q.buf = &byte;
		q.cap = 1;
		err = http_perform(d->pool, &q, &r);
		if (err && r.status == 416 && r.unsatisfied_total == 0) {
			/* "bytes *\/0": an empty object has no first byte. */
			err = 0;
			r.has_range = true;
			r.range_total = 0;
		}
		if (!err && (!r.has_range || r.range_total < 0)) {
			snprintf(r.error, sizeof(r.error),
				 "origin reports no length for the object");
			err = -EIO;
		}
		if (err) {
			httpdir_fail(d, "GET", path, &r, err);
			goto out;
		}
		r.content_length = r.range_total;
	}
	out->size = (uint64_t)r.content_length;
	out->size_exact = true;
	out->mtime = r.mtime;
	snprintf(out->etag, sizeof(out->etag), "%s", r.etag);
out:
	http_resp_free(&r);
	free(url);
	return err;
}

static int httpdir_list(struct store *s, const char *path,
			struct store_dir *out)
{
	struct httpdir *d = to_httpdir(s);
	struct http_req q = { .sink = HTTP_SINK_GROW,
			      .cap = HTTPDIR_MAX_LISTING };
	struct http_resp r;
	struct url_parts parts;
	char *url;
	int err;

	if (d->single) {
		struct store_attr a;

		if (path[0])
			return -ENOENT;
		err = httpdir_stat(s, d->single, &a);
		if (err)
			return err;
		return store_dir_add(out, d->single, &a);
	}
	url = httpdir_url(d, path, true);
	if (!url)
		return -ENOMEM;
	q.url = url;
	err = http_perform(d->pool, &q, &r);
	if (err) {
		httpdir_fail(d, "listing", path, &r, err);
		goto out;
	}
	/* A page's links are relative to where it was answered: absolute
	 * ones name the directory a redirect led to. */
	err = url_split(r.final_url ? r.final_url : url, &parts);
	if (err)
		goto out;
	err = listing_parse(r.body ? r.body : "", r.body_len,
			    r.content_type[0] ? r.content_type : NULL,
			    parts.path, out);
	url_parts_free(&parts);
	if (err == -EPROTO) {
		store_set_error("not a directory index page (Content-Type %.60s)",
				r.content_type[0] ? r.content_type : "none");
		log_warn("listing %s%s: not a directory index page (%s)",
			 d->shown, path, r.content_type);
	}
out:
	http_resp_free(&r);
	free(url);
	return err;
}

static bool etag_strong(const char *etag)
{
	return etag[0] && strncmp(etag, "W/", 2) != 0;
}

static int httpdir_read(struct store *s, const char *path, const char *etag,
			void *buf, uint64_t off, size_t len, char *etag_out)
{
	struct httpdir *d = to_httpdir(s);
	struct http_req q = { .sink = HTTP_SINK_FIXED };
	struct http_resp r;
	char *url;
	int err;

	q.url = httpdir_read_url(d, path, &url);
	if (!q.url)
		return -ENOMEM;
	q.range_off = off;
	q.range_len = len;
	q.buf = buf;
	q.cap = len;
	/* If-Match makes a replaced object fail with 412 instead of
	 * handing us bytes of the new version under the old one's name.
	 * Weak validators never match, so those are compared instead. */
	if (etag && etag_strong(etag))
		q.if_match = etag;
	err = http_perform(d->pool, &q, &r);
	if (!err && etag && etag[0] && r.etag[0] && strcmp(etag, r.etag)) {
		snprintf(r.error, sizeof(r.error),
			 "object changed (ETag %.60s, expected %.60s)", r.etag,
			 etag);
		err = -ESTALE;
	}
	if (err)
		httpdir_fail(d, "read", path, &r, err);
	else if (etag_out) {
		size_t n = strnlen(r.etag, STORE_ETAG_MAX - 1);

		memcpy(etag_out, r.etag, n);
		etag_out[n] = '\0';
	}
	http_resp_free(&r);
	free(url);
	return err;
}

static void httpdir_abort(struct store *s)
{
	http_pool_abort(to_httpdir(s)->pool);
}

static void httpdir_warm(struct store *s)
{
	struct httpdir *d = to_httpdir(s);

	http_pool_warm(d->pool, d->single ? d->single_url : d->base_url);
}

static const char *httpdir_describe(struct store *s)
{
	return to_httpdir(s)->shown;
}

static void httpdir_destroy(struct store *s)
{
	struct httpdir *d = to_httpdir(s);

	http_pool_free(d->pool);
	free(d->base_url);
	free(d->base_path);
	free(d->single);
	free(d->single_url);
	free(d->shown);
	free(d);
}

static const struct store_ops httpdir_ops = {
	.name = "http",
	.stat = httpdir_stat,
	.list = httpdir_list,
	.read = httpdir_read,
	.abort = httpdir_abort,
	.warm = httpdir_warm,
	.describe = httpdir_describe,
	.destroy = httpdir_destroy,
};

/* The URL for messages: no userinfo (may hold a password), no query. */
static char *httpdir_shown(const struct url_parts *p)
{
	size_t n = strlen(p->scheme) + strlen(p->authority) + strlen(p->path) +
		   4;
	const char *at = strrchr(p->authority, '@');
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s://%s%s", p->scheme, at ? at + 1 : p->authority,
			 p->path);
	return s;
}

int store_http_open(const struct store_opts *o, struct store **out)
{
	struct http_pool_opts po = {
		.insecure = o->insecure,
		.timeout_ms = o->timeout_ms,
		.connect_timeout_ms = o->connect_timeout_ms,
		.max_connections = o->max_connections,
	};
	struct url_parts parts;
	struct httpdir *d;
	const char *q;
	size_t len;
	int err;

	*out = NULL;
	q = strpbrk(o->url, "?#");
	len = q ? (size_t)(q - o->url) : strlen(o->url);
	d = calloc(1, sizeof(*d));
	if (d)
		d->id = __atomic_add_fetch(&httpdir_ids, 1, __ATOMIC_RELAXED);
	if (!d)
		return -ENOMEM;
	d->base.ops = &httpdir_ops;
	err = url_split(o->url, &parts);
	if (err)
		goto out_free;
	if (!parts.authority[0]) {
		err = -EINVAL;
		goto out_parts;
	}
	d->shown = httpdir_shown(&parts);
	if (len && o->url[len - 1] == '/') {
		d->base_url = strndup(o->url, len);
	} else {
		/* One file: its directory is the base, the file its only
		 * entry. The file keeps its exact URL, query included. */
		const char *slash = memrchr(o->url, '/', len);
		size_t dlen = slash ? (size_t)(slash - o->url) + 1 : 0;

		if (!slash || dlen <= strlen(parts.scheme) + 3) {
			err = -EINVAL;
			goto out_parts;
		}
		d->base_url = strndup(o->url, dlen);
		d->single_url = strdup(o->url);
		err = url_decode(o->url + dlen, len - dlen, &d->single);
		if (err)
			goto out_parts;
		if (!url_name_valid(d->single)) {
			err = -EINVAL;
			goto out_parts;
		}
	}
	d->base_path = strdup(parts.path);
	if (!d->base_url || !d->base_path || !d->shown ||
	    (d->single && !d->single_url)) {
		err = -ENOMEM;
		goto out_parts;
	}
	err = http_pool_new(&po, &d->pool);
	if (err)
		goto out_parts;
	url_parts_free(&parts);
	*out = &d->base;
	return 0;

out_parts:
	url_parts_free(&parts);
out_free:
	httpdir_destroy(&d->base);
	return err;
}
