/*
 * The S3 origin: a bucket, or a prefix of one, as a read-only tree.
 * Directories are the common prefixes of a ListObjectsV2 listing with
 * delimiter '/'; sizes, times and ETags come from the listing, data from
 * ranged GETs pinned to an ETag with If-Match. Requests are signed by
 * libcurl (CURLOPT_AWS_SIGV4) with credentials from s3-creds.c; S3's
 * error bodies are parsed by s3-xml.c and turned into -errno here.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/url.h"
#include "store/http.h"
#include "store/s3-creds.h"
#include "store/s3-xml.h"
#include "store/store.h"

#define S3_DEFAULT_REGION "us-east-1"
/* A listing page is about 300 bytes a key, 1000 keys at most. */
#define S3_MAX_LIST_BODY (16u * 1024 * 1024)
/* Bounds on one directory listing, against an endpoint whose
 * continuation tokens never end. */
#define S3_MAX_PAGES 20000
#define S3_MAX_ENTRIES (10u * 1000 * 1000)
/* Invalid names are reported one by one up to this, then counted. */
#define S3_MAX_NAME_WARNINGS 10
/*
 * curl before 8.x neither sends x-amz-content-sha256 nor lets it change
 * the payload hash it signs, which is always the hash of the empty body
 * for our GETs and HEADs. Sending that same hash satisfies S3 (which
 * wants the header) with every curl version, and it is signed.
 */
#define S3_EMPTY_SHA256                                                        \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct store_s3 {
	struct store base;
	struct http_pool *pool;
	struct s3_creds *creds; /* NULL with --no-sign-request */
	char *obj_base;		/* object URL = obj_base + "/" + encoded key */
	char *list_base;	/* listing URL = list_base + "?" + query */
	char *prefix; /* key prefix of the mount root: "" or ends in '/' */
	char *sigv4;  /* "aws:amz:REGION:s3" */
	char *shown;  /* s3://bucket/prefix, for messages */
	char *desc;   /* describe() */
	bool requester_pays;
};

static struct store_s3 *to_s3(struct store *s)
{
	return (struct store_s3 *)s;
}

/* What an S3 error code means for the caller and for a person. */
struct s3_code {
	const char *code;
	int err;
	const char *hint; /* NULL: S3's own message is clear enough */
};

static const struct s3_code s3_codes[] = {
	{"NoSuchBucket", -ENOENT, "the bucket does not exist"},
	{"NoSuchKey", -ENOENT, NULL},
	{"AccessDenied", -EACCES, "access denied by the bucket's policy"},
	{"AllAccessDisabled", -EACCES, NULL},
	{"AccountProblem", -EACCES, NULL},
	{"SignatureDoesNotMatch", -EACCES, "wrong secret access key"},
	{"InvalidAccessKeyId", -EACCES, "unknown access key id"},
	{"ExpiredToken", -EACCES, "the session token has expired"},
	{"TokenRefreshRequired", -EACCES, "the session token has expired"},
	{"InvalidToken", -EACCES, "the session token is invalid"},
	{"RequestTimeTooSkewed", -EACCES,
	 "this machine's clock is off by more than 15 minutes"},
	{"AuthorizationHeaderMalformed", -EINVAL,
	 "the request was signed for the wrong region"},
	{"PermanentRedirect", -EIO,
	 "the bucket is in another region (use --region) or needs another "
	 "endpoint"},
	{"IllegalLocationConstraintException", -EIO,
	 "the bucket is in another region (use --region)"},
	{"InvalidBucketName", -EINVAL, NULL},
	{"PreconditionFailed", -ESTALE, NULL},
	{"InvalidRange", -EINVAL, NULL},
	{"InvalidObjectState", -EACCES,
	 "the object is archived (restore it first)"},
	{"SlowDown", -EIO, "the bucket keeps asking to slow down"},
	{"RequestTimeout", -ETIMEDOUT, NULL},
	{"NotImplemented", -EOPNOTSUPP, NULL},
};

static const struct s3_code *s3_code_find(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(s3_codes) / sizeof(s3_codes[0]); i++)
		if (!strcmp(code, s3_codes[i].code))
			return &s3_codes[i];
	return NULL;
}

/* The client core's retry rule, told about S3: 503 SlowDown and 500
 * InternalError are worth another try, 501 NotImplemented never is, and a
 * 400 RequestTimeout is S3 dropping a slow connection. */
static bool s3_retryable(long status, const char *body, size_t len)
{
	if (status == 501)
		return false;
	if (status >= 500 || status == 429)
		return true;
	if (status == 400 && body &&
	    memmem(body, len, "<Code>RequestTimeout</Code>", 27))
		return true;
	return false;
}

/* Explain a failed request in the log and in store_last_error(); returns
 * the errno to give the caller. */
static int s3_fail(struct store_s3 *s, const char *what, const char *key,
		   int err, const struct http_resp *r)
{
	struct s3_xml_error e;
	const struct s3_code *c = NULL;
	char msg[512];

	if (r->status >= 300 && r->body &&
	    !s3_xml_parse_error(r->body, r->body_len, &e)) {
		c = s3_code_find(e.code);
		if (c)
			err = c->err;
		snprintf(msg, sizeof(msg), "%s (%s: %s)%s%s%s",
			 c && c->hint ? c->hint : "S3 error", e.code,
			 e.message[0] ? e.message : "no message",
			 e.region[0] ? " [bucket region: " : "", e.region,
			 e.region[0] ? "]" : "");
	} else if (r->status == 403) {
		/* HEAD answers carry no body to say why. */
		snprintf(msg, sizeof(msg),
			 "access denied (HTTP 403; wrong credentials or no "
			 "permission)");
	} else if (r->status == 400 && !r->body) {
		snprintf(msg, sizeof(msg),
			 "bad request (HTTP 400; expired token or wrong "
			 "region?)");
	} else if (r->status >= 300) {
		snprintf(msg, sizeof(msg), "%s%s", r->error,
			 r->body && r->body_len
				 ? " (the answer is no S3 error document)"
				 : "");
	} else {
		snprintf(msg, sizeof(msg), "%s",
			 r->error[0] ? r->error : strerror(-err));
	}
	store_set_error("%s", msg);
	/* A missing key is an ordinary answer to a lookup; a changed one
	 * is handled by the caller, an interrupted one was asked for. */
	if (err == -ENOENT || err == -ESTALE || err == -EINTR)
		log_debug("%s %s%s: %s", what, s->shown, key, msg);
	else
		log_err("%s %s%s: %s", what, s->shown, key, msg);
	return err;
}

/*
 * Perform q with the S3 headers and signature added. When the origin says
 * the session token expired and the source can refresh, refresh once and
 * try again. Returns 0 or -errno (explained with s3_fail()).
 */
static int s3_perform(struct store_s3 *s, const char *what, const char *key,
		      struct http_req *q, struct http_resp *r)
{
	struct curl_slist *h = NULL, *t;
	struct s3_secret sec;
	char *userpwd = NULL, *tokhdr = NULL;
	int err, attempt;

	/* Callers free *r whatever happens, even when no request was made. */
	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->unsatisfied_total = -1;
	q->want_error_body = true;
	q->retryable = s3_retryable;
	/* Following a redirect would replay a signature made for another
	 * URL; S3 answers wrong-region requests with an error body instead. */
	q->no_follow = true;
	for (attempt = 0; attempt < 2; attempt++) {
		memset(&sec, 0, sizeof(sec));
		h = curl_slist_append(NULL,
				      "x-amz-content-sha256: " S3_EMPTY_SHA256);
		if (h && s->requester_pays) {
			t = curl_slist_append(h,
					      "x-amz-request-payer: requester");
			h = t ? t : (curl_slist_free_all(h), NULL);
		}
		if (!h) {
			err = -ENOMEM;
			break;
		}
		if (s->creds) {
			err = s3_creds_get(s->creds, &sec);
			if (err) {
				store_set_error("AWS credentials expired and "
						"could not be refreshed");
				curl_slist_free_all(h);
				return err;
			}
			if (asprintf(&userpwd, "%s:%s", sec.key_id,
				     sec.secret) < 0)
				userpwd = NULL;
			if (sec.token &&
			    asprintf(&tokhdr, "x-amz-security-token: %s",
				     sec.token) < 0)
				tokhdr = NULL;
			t = tokhdr ? curl_slist_append(h, tokhdr) : h;
			if (!userpwd || (sec.token && (!tokhdr || !t))) {
				err = -ENOMEM;
				goto out_secret;
			}
			h = t;
			q->aws_sigv4 = s->sigv4;
			q->userpwd = userpwd;
		}
		q->headers = h;
		err = http_perform(s->pool, q, r);
		q->headers = NULL;
		q->userpwd = NULL;
	out_secret:
		/* The list and the strings held the token and the secret. */
		for (t = h; t; t = t->next)
			explicit_bzero(t->data, strlen(t->data));
		curl_slist_free_all(h);
		h = NULL;
		if (userpwd)
			explicit_bzero(userpwd, strlen(userpwd));
		if (tokhdr)
			explicit_bzero(tokhdr, strlen(tokhdr));
		free(userpwd);
		free(tokhdr);
		userpwd = tokhdr = NULL;
		if (!err || err == -ENOMEM || attempt || !sec.token) {
			s3_secret_clear(&sec);
			break;
		}
		s3_secret_clear(&sec);
		/* Expired temporary credentials: S3 says ExpiredToken in a
		 * body; a HEAD only gets a bare 400. */
		if (!((r->status == 400 &&
		       (!r->body ||
			memmem(r->body, r->body_len, "Token</Code>", 12))) ||
		      (r->status == 403 && r->body &&
		       memmem(r->body, r->body_len, "<Code>ExpiredToken</Code>",
			      25))))
			break;
		if (!s3_creds_mark_stale(s->creds))
			break;
		log_info("%s %s%s: token expired, refreshing credentials", what,
			 s->shown, key);
		http_resp_free(r);
	}
	if (err && err != -ENOMEM)
		err = s3_fail(s, what, key, err, r);
	else if (err)
		store_set_error("out of memory");
	return err;
}

/* Full key of a mount path: the root prefix plus the path. */
static char *s3_key(struct store_s3 *s, const char *path, bool dir)
{
	char *k;

	if (asprintf(&k, "%s%s%s", s->prefix, path, dir && path[0] ? "/" : "") <
	    0)
		return NULL;
	return k;
}

static char *s3_object_url(struct store_s3 *s, const char *key)
{
	char *enc = url_encode(key, true), *u;

	if (!enc)
		return NULL;
	if (asprintf(&u, "%s/%s", s->obj_base, enc) < 0)
		u = NULL;
	free(enc);
	return u;
}

/*
 * One ListObjectsV2 page of pfx. Parameters are in the order SigV4's
 * canonical query wants (sorted by name), because curl 7.x signs the
 * query exactly as written.
 */
static int s3_list_page(struct store_s3 *s, const char *pfx, const char *token,
			int max_keys, struct s3_xml_page *page)
{
	struct http_req q = {.sink = HTTP_SINK_GROW, .cap = S3_MAX_LIST_BODY};
	struct http_resp r;
	char *epfx, *etok = NULL, *url = NULL, mk[32] = "", why[200];
	int err;

	memset(page, 0, sizeof(*page));
	epfx = url_encode(pfx, false);
	if (token)
		etok = url_encode(token, false);
	if (!epfx || (token && !etok)) {
		err = -ENOMEM;
		goto out_free;
	}
	if (max_keys > 0)
		snprintf(mk, sizeof(mk), "&max-keys=%d", max_keys);
	if (asprintf(&url,
		     "%s?%s%s%sdelimiter=%%2F&encoding-type=url&list-type=2%s&"
		     "prefix=%s",
		     s->list_base, token ? "continuation-token=" : "",
		     token ? etok : "", token ? "&" : "", mk, epfx) < 0) {
		url = NULL;
		err = -ENOMEM;
		goto out_free;
	}
	q.url = url;
	err = s3_perform(s, "listing", pfx, &q, &r);
	if (err)
		goto out_resp;
	err = s3_xml_parse_list(r.body, r.body_len, page, why, sizeof(why));
	if (err == -EPROTO) {
		const char *ct = r.content_type;

		store_set_error("the endpoint did not answer like S3: %s%s%s%s",
				why, ct[0] ? " (Content-Type " : "", ct,
				ct[0] ? ")" : "");
		log_err("listing %s%s: %s", s->shown, pfx, store_last_error());
	}
out_resp:
	http_resp_free(&r);
out_free:
	free(url);
	free(epfx);
	free(etok);
	return err;
}

/* Add name unless it cannot be a file name in the mount. */
static int s3_add(struct store_s3 *s, struct store_dir *d, const char *pfx,
		  const char *name, const struct store_attr *a,
		  unsigned int *nbad)
{
	if (!url_name_valid(name)) {
		if (++*nbad <= S3_MAX_NAME_WARNINGS)
			log_warn("%s%s: skipping key '%.300s%s%s': not a valid "
				 "file name",
				 s->shown, pfx, pfx, name,
				 a->is_dir ? "/" : "");
		return 0;
	}
	return store_dir_add(d, name, a);
}

static int dirent_cmp(const void *a, const void *b)
{
	const struct store_dirent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	/* Directories first, so the duplicate that goes is the file. */
	return (int)y->attr.is_dir - (int)x->attr.is_dir;
}

/*
 * A key that is both an object and a prefix ("a" and "a/b") shows once,
 * as a directory: the directory is the only way to reach what is under
 * it, while the object is one file.
 */
static void s3_dedupe(struct store_s3 *s, struct store_dir *d)
{
	size_t i, j;

	if (d->n < 2)
		return;
	qsort(d->ents, d->n, sizeof(d->ents[0]), dirent_cmp);
	for (i = 1, j = 0; i < d->n; i++) {
		if (!strcmp(d->ents[i].name, d->ents[j].name)) {
			log_debug("%s: '%s' is both a key and a prefix; "
				  "showing the directory",
				  s->shown, d->ents[i].name);
			free(d->ents[i].name);
			continue;
		}
		d->ents[++j] = d->ents[i];
	}
	d->n = j + 1;
}

static bool token_seen(char **seen, size_t n, const char *tok)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(seen[i], tok))
			return true;
	return false;
}

static int s3_list_prefix(struct store_s3 *s, const char *pfx,
			  struct store_dir *out)
{
	struct s3_xml_page page;
	char **seen = NULL;
	size_t nseen = 0, i, plen = strlen(pfx);
	unsigned int pages = 0, nbad = 0;
	char *token = NULL;
	int err = 0;

	for (;;) {
		err = s3_list_page(s, pfx, token, 0, &page);
		if (err)
			goto out_free;
		pages++;
		for (i = 0; i < page.nobjects && !err; i++) {
			const struct s3_xml_object *o = &page.objects[i];
			struct store_attr a = {.size = o->size,
					       .mtime = o->mtime,
					       .size_exact = true};

			if (strncmp(o->key, pfx, plen)) {
				log_warn("%s: listing of '%s' returned key "
					 "'%.300s' outside it",
					 s->shown, pfx, o->key);
				continue;
			}
			/* The marker object "dir/" of the directory itself. */
			if (!o->key[plen])
				continue;
			snprintf(a.etag, sizeof(a.etag), "%s", o->etag);
			err = s3_add(s, out, pfx, o->key + plen, &a, &nbad);
		}
		for (i = 0; i < page.nprefixes && !err; i++) {
			struct store_attr a = {.is_dir = true,
					       .size_exact = true};
			char *p = page.prefixes[i];
			size_t n = strlen(p);

			if (n <= plen || strncmp(p, pfx, plen) ||
			    p[n - 1] != '/') {
				log_warn("%s: listing of '%s' returned prefix "
					 "'%.300s' outside it",
					 s->shown, pfx, p);
				continue;
			}
			p[n - 1] = '\0';
			err = s3_add(s, out, pfx, p + plen, &a, &nbad);
		}
		if (err)
			goto out_page;
		if (!page.truncated)
			break;
		if (pages >= S3_MAX_PAGES || out->n > S3_MAX_ENTRIES) {
			store_set_error("listing of '%s' did not end after %u "
					"pages (%zu entries)",
					pfx, pages, out->n);
			log_err("%s: %s", s->shown, store_last_error());
			err = -EIO;
			goto out_page;
		}
		if (token_seen(seen, nseen, page.next_token)) {
			store_set_error("listing of '%s' loops: the endpoint "
					"repeated a continuation token",
					pfx);
			log_err("%s: %s", s->shown, store_last_error());
			err = -EIO;
			goto out_page;
		}
		{
			char **ns = realloc(seen, (nseen + 1) * sizeof(*ns));

			if (!ns) {
				err = -ENOMEM;
				goto out_page;
			}
			seen = ns;
		}
		seen[nseen++] = page.next_token;
		token = page.next_token;
		page.next_token = NULL;
		s3_xml_page_free(&page);
	}
	if (nbad > S3_MAX_NAME_WARNINGS)
		log_warn("%s%s: %u keys skipped in all (not valid file names)",
			 s->shown, pfx, nbad);
	s3_dedupe(s, out);
out_page:
	s3_xml_page_free(&page);
out_free:
	for (i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	return err;
}

static int store_s3_list(struct store *st, const char *path,
			 struct store_dir *out)
{
	struct store_s3 *s = to_s3(st);
	char *pfx = s3_key(s, path, true);
	int err;

	if (!pfx)
		return -ENOMEM;
	err = s3_list_prefix(s, pfx, out);
	free(pfx);
	/* No partial listings: the caller gets all entries or none. */
	if (err)
		store_dir_free(out);
	return err;
}

/* Does any key start with "path/"? Then path is a directory. */
static int s3_is_prefix(struct store_s3 *s, const char *path)
{
	struct s3_xml_page page;
	char *pfx = s3_key(s, path, true);
	int err;

	if (!pfx)
		return -ENOMEM;
	err = s3_list_page(s, pfx, NULL, 1, &page);
	free(pfx);
	if (err)
		return err;
	err = page.nobjects || page.nprefixes ? 0 : -ENOENT;
	s3_xml_page_free(&page);
	return err;
}

static int store_s3_stat(struct store *st, const char *path,
			 struct store_attr *out)
{
	struct store_s3 *s = to_s3(st);
	struct http_req q = {.head = true, .sink = HTTP_SINK_NONE};
	struct http_resp r;
	char *key, *url;
	int err;

	memset(out, 0, sizeof(*out));
	out->size_exact = true;
	if (!path[0]) {
		out->is_dir = true;
		return 0;
	}
	key = s3_key(s, path, false);
	url = key ? s3_object_url(s, key) : NULL;
	if (!url) {
		free(key);
		return -ENOMEM;
	}
	q.url = url;
	err = s3_perform(s, "HEAD", key, &q, &r);
	if (!err && r.content_length < 0) {
		/* S3 always says; something between us and it dropped it.
		 * An empty file in its place would lose the data. */
		snprintf(r.error, sizeof(r.error),
			 "the endpoint reports no length for the object");
		err = s3_fail(s, "HEAD", key, -EIO, &r);
	} else if (!err) {
		out->size = (uint64_t)r.content_length;
		out->mtime = r.mtime;
		snprintf(out->etag, sizeof(out->etag), "%s", r.etag);
	} else if (err == -ENOENT) {
		/* No such object; a directory exists implicitly when any key
		 * is under it. (Listings settle "both": see s3_dedupe.) */
		err = s3_is_prefix(s, path);
		if (!err)
			out->is_dir = true;
	}
	http_resp_free(&r);
	free(url);
	free(key);
	return err;
}

static int store_s3_read(struct store *st, const char *path, const char *etag,
			 void *buf, uint64_t off, size_t len, char *etag_out)
{
	struct store_s3 *s = to_s3(st);
	struct http_req q = {.sink = HTTP_SINK_FIXED,
			     .buf = buf,
			     .cap = len,
			     .range_off = off,
			     .range_len = len};
	struct http_resp r;
	char *key, *url;
	int err;

	key = s3_key(s, path, false);
	url = key ? s3_object_url(s, key) : NULL;
	if (!url) {
		free(key);
		return -ENOMEM;
	}
	q.url = url;
	if (etag && etag[0])
		q.if_match = etag;
	err = s3_perform(s, "reading", key, &q, &r);
	if (!err && etag && etag[0] && r.etag[0] && strcmp(etag, r.etag)) {
		/* The endpoint ignored If-Match: the bytes are of another
		 * version and must not be mixed with the caller's. */
		log_debug("reading %s%s: ETag %s, expected %s", s->shown, key,
			  r.etag, etag);
		store_set_error("the object changed while it was read");
		err = -ESTALE;
	}
	if (!err && etag_out)
		snprintf(etag_out, STORE_ETAG_MAX, "%s", r.etag);
	http_resp_free(&r);
	free(url);
	free(key);
	return err;
}

static const char *store_s3_describe(struct store *st)
{
	return to_s3(st)->desc;
}

static void store_s3_abort(struct store *st)
{
	http_pool_abort(to_s3(st)->pool);
}

static void store_s3_destroy(struct store *st)
{
	struct store_s3 *s = to_s3(st);

	if (!s)
		return;
	http_pool_free(s->pool);
	s3_creds_free(s->creds);
	free(s->obj_base);
	free(s->list_base);
	free(s->prefix);
	free(s->sigv4);
	free(s->shown);
	free(s->desc);
	free(s);
}

static const struct store_ops store_s3_ops = {
	.name = "s3",
	.stat = store_s3_stat,
	.list = store_s3_list,
	.read = store_s3_read,
	.describe = store_s3_describe,
	.abort = store_s3_abort,
	.destroy = store_s3_destroy,
};

/* Bucket names as S3 allows them (the older, laxer rules included:
 * upper case and '_' exist in us-east-1 and in other stores). */
static bool s3_bucket_valid(const char *b, size_t n)
{
	size_t i;

	if (n < 3 || n > 255)
		return false;
	for (i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

/*
 * Split "s3://bucket[/prefix]" into the bucket and a prefix that is ""
 * or ends in '/'. The prefix must be made of valid names: the mount root
 * cannot sit on "..", "." or an empty segment.
 */
static int s3_parse_url(const char *url, char **bucket, char **prefix)
{
	const char *b = url + 5, *slash;
	size_t blen;
	char *p, *seg, *save;
	int err = 0;

	*bucket = *prefix = NULL;
	if (strncasecmp(url, "s3://", 5))
		return -EINVAL;
	slash = strchr(b, '/');
	blen = slash ? (size_t)(slash - b) : strlen(b);
	if (!s3_bucket_valid(b, blen)) {
		store_set_error("'%.*s' is not a valid bucket name",
				(int)(blen > 80 ? 80 : blen), b);
		return -EINVAL;
	}
	*bucket = strndup(b, blen);
	p = strdup(slash ? slash + 1 : "");
	if (!*bucket || !p) {
		err = -ENOMEM;
		goto out_free;
	}
	/* Check every segment on a scratch copy. */
	{
		char *scratch = strdup(p);

		if (!scratch) {
			err = -ENOMEM;
			goto out_free;
		}
		for (seg = strtok_r(scratch, "/", &save); seg;
		     seg = strtok_r(NULL, "/", &save)) {
			if (!url_name_valid(seg)) {
				store_set_error("prefix segment '%.80s' is not "
						"a valid file name",
						seg);
				err = -EINVAL;
				break;
			}
		}
		free(scratch);
		if (!err && (strstr(p, "//") || p[0] == '/')) {
			store_set_error(
				"the prefix has an empty segment ('//')");
			err = -EINVAL;
		}
		if (err)
			goto out_free;
	}
	if (p[0] && p[strlen(p) - 1] != '/') {
		char *q;

		if (asprintf(&q, "%s/", p) < 0) {
			err = -ENOMEM;
			goto out_free;
		}
		free(p);
		p = q;
	}
	*prefix = p;
	return 0;

out_free:
	free(*bucket);
	free(p);
	*bucket = NULL;
	return err;
}

/* Endpoint and bucket into the two base URLs. */
static int s3_bases(struct store_s3 *s, const char *endpoint,
		    const char *region, const char *bucket, bool vhost)
{
	struct url_parts u;
	char *ep = NULL;
	size_t plen;
	int err;

	if (!endpoint) {
		/* AWS itself: virtual-hosted, except for dotted names,
		 * which the wildcard certificate does not cover. */
		if (asprintf(&ep, "https://s3.%s.amazonaws.com", region) < 0)
			return -ENOMEM;
		vhost = !strchr(bucket, '.');
		endpoint = ep;
	}
	err = url_split(endpoint, &u);
	if (err || (strcmp(u.scheme, "http") && strcmp(u.scheme, "https")) ||
	    strchr(u.authority, '@')) {
		char shown[256];

		/* Never the credentials the endpoint was refused for. */
		url_shown(endpoint, shown, sizeof(shown));
		store_set_error(
			"endpoint '%s' is not %s http:// or https:// URL%s",
			shown, err ? "a valid" : "an",
			!err && strchr(u.authority, '@')
				? " without credentials"
				: "");
		if (!err)
			url_parts_free(&u);
		free(ep);
		return -EINVAL;
	}
	plen = strlen(u.path);
	while (plen && u.path[plen - 1] == '/')
		plen--;
	if (vhost) {
		if (asprintf(&s->obj_base, "%s://%s.%s%.*s", u.scheme, bucket,
			     u.authority, (int)plen, u.path) < 0)
			s->obj_base = NULL;
		if (asprintf(&s->list_base, "%s://%s.%s%.*s/", u.scheme, bucket,
			     u.authority, (int)plen, u.path) < 0)
			s->list_base = NULL;
	} else {
		if (asprintf(&s->obj_base, "%s://%s%.*s/%s", u.scheme,
			     u.authority, (int)plen, u.path, bucket) < 0)
			s->obj_base = NULL;
		s->list_base = s->obj_base ? strdup(s->obj_base) : NULL;
	}
	/* describe() names the bucket only: it becomes the file system's
	 * name in the mount table, where spaces would be escaped. */
	s->desc = strdup(s->shown);
	url_parts_free(&u);
	free(ep);
	return s->obj_base && s->list_base && s->desc ? 0 : -ENOMEM;
}

int store_s3_open(const struct store_opts *o, struct store **out)
{
	struct s3_creds_opts co = {.profile = o->profile};
	struct s3_creds_config cfg;
	struct http_pool_opts po = {.insecure = o->insecure,
				    .timeout_ms = o->timeout_ms,
				    .connect_timeout_ms = o->connect_timeout_ms,
				    .max_connections = o->max_connections};
	struct store_s3 *s;
	const char *region, *endpoint;
	char *bucket = NULL, why[400];
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &store_s3_ops;
	s->requester_pays = o->requester_pays;
	err = s3_parse_url(o->url, &bucket, &s->prefix);
	if (err)
		goto out_free;
	if (asprintf(&s->shown, "s3://%s/%s", bucket, s->prefix) < 0) {
		s->shown = NULL;
		err = -ENOMEM;
		goto out_free;
	}
	err = s3_creds_load_config(&co, &cfg);
	if (err == -ENOENT) {
		store_set_error("profile '%s' not found in the AWS config or "
				"credentials file",
				o->profile);
		goto out_free;
	}
	if (err)
		goto out_free;
	region = S3_DEFAULT_REGION;
	if (o->region && *o->region)
		region = o->region;
	else if (cfg.region)
		region = cfg.region;
	endpoint = o->endpoint && *o->endpoint ? o->endpoint : cfg.endpoint_url;
	/* A custom endpoint means path-style: most S3-compatible stores
	 * have no DNS entry per bucket. */
	err = s3_bases(s, endpoint, region, bucket, o->virtual_hosted);
	if (!err && asprintf(&s->sigv4, "aws:amz:%s:s3", region) < 0) {
		s->sigv4 = NULL;
		err = -ENOMEM;
	}
	s3_creds_config_free(&cfg);
	if (err)
		goto out_free;
	if (!o->no_sign_request) {
		err = s3_creds_new(&co, &s->creds, why, sizeof(why));
		if (err) {
			store_set_error("%s", why);
			goto out_free;
		}
	}
	err = http_pool_new(&po, &s->pool);
	if (err)
		goto out_free;
	log_debug("S3 origin %s, region %s, %s, objects at %s/", s->shown,
		  region, s->creds ? "signed requests" : "unsigned requests",
		  s->obj_base);
	free(bucket);
	*out = &s->base;
	return 0;

out_free:
	free(bucket);
	store_s3_destroy(&s->base);
	return err;
}
