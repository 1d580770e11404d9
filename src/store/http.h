/*
 * The HTTP client core shared by every origin: one pool of libcurl easy
 * handles that keep their connections alive across requests (a DNS cache
 * and TLS sessions shared between threads), a transfer loop thread that
 * drives them with a bound on connections, timeouts, retries with backoff
 * and jitter, range checks, and the single place where HTTP status and
 * CURLcode become -errno.
 */
#ifndef STORE_HTTP_H
#define STORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#include "store/store.h"

struct http_pool;

struct http_pool_opts {
	bool insecure;
	unsigned int timeout_ms; /* whole operation, retries included */
	unsigned int connect_timeout_ms;
	/* Connections the transfer loop opens at once (0: no bound); a
	 * reader's own transfers each add one (see http_perform). */
	unsigned int max_connections;
};

int http_pool_new(const struct http_pool_opts *o, struct http_pool **out);
void http_pool_free(struct http_pool *p);
/* Fail every transfer in progress and every later one with -ECANCELED;
 * any thread, any time before http_pool_free. */
void http_pool_abort(struct http_pool *p);
/*
 * Open a connection to url's origin for the first reader's request to
 * use: readers' plain ranged GETs take the lean path, whose connections
 * are their own, so none that other requests left open serves them.
 * Without one the first read from a new mount also pays the TCP (and
 * TLS) set-up. At most the connect timeout; a failure only leaves the
 * first read to connect itself. Any thread.
 */
void http_pool_warm(struct http_pool *p, const char *url);

/* Where the body of an answer goes. */
enum http_sink {
	HTTP_SINK_NONE, /* HEAD, or body ignored */
	HTTP_SINK_FIXED, /* into buf[0..cap): more than cap is an error */
	HTTP_SINK_GROW, /* into a malloc'd buffer, at most cap bytes */
};

struct http_req {
	const char *url; /* fully encoded */
	bool head; /* HEAD instead of GET */
	bool no_follow; /* do not follow redirects (signed requests) */
	/* Ranged GET of [range_off, range_off + range_len) when range_len. */
	uint64_t range_off;
	size_t range_len;
	const char *if_match; /* strong ETag or NULL */
	struct curl_slist *headers; /* extra headers, caller owns */
	/* Signing, for S3: CURLOPT_AWS_SIGV4 and "key:secret". */
	const char *aws_sigv4;
	const char *userpwd;
	enum http_sink sink;
	void *buf; /* HTTP_SINK_FIXED */
	size_t cap; /* FIXED: size of buf; GROW: limit */
	/* Keep error bodies (4xx/5xx) in resp->body for the caller to parse. */
	bool want_error_body;
	/*
	 * Decide from an error answer whether it is worth retrying (S3's
	 * SlowDown comes as 503, but so does a real outage); NULL: the
	 * default rule (5xx, 429, connection errors).
	 */
	bool (*retryable)(long status, const char *body, size_t len);
};

struct http_resp {
	long status;
	char etag[STORE_ETAG_MAX];
	int64_t mtime; /* Last-Modified, 0 when absent */
	int64_t content_length; /* -1 when absent */
	char content_type[128];
	/* Content-Range of a 206: bytes start-end/total (total -1 if '*'). */
	bool has_range;
	uint64_t range_start, range_end;
	int64_t range_total;
	/* Content-Range of a 416: bytes *\/total, the object's length; -1
	 * when absent. */
	int64_t unsatisfied_total;
	bool accept_ranges;
	/* Where redirects led, when that is not the URL asked for: what the
	 * links of a page answered there are relative to. NULL otherwise;
	 * owned, freed by http_resp_free. */
	char *final_url;
	char *body; /* GROW sink or error body; free() */
	size_t body_len; /* bytes received into the sink */
	char error[256]; /* human reason when the call fails */
};

/*
 * Perform req, retrying transient failures until the pool's timeout.
 * Returns 0 for a 2xx answer that passed the checks (for a ranged GET:
 * exactly range_len bytes of the requested range), otherwise -errno with a
 * reason in resp->error: 404/410 ENOENT, 401/403 EACCES, 412 ESTALE,
 * 416 EINVAL, persistent 5xx or network failure EIO, deadline ETIMEDOUT,
 * unranged or truncated answer EIO. resp->status is set whenever an
 * answer arrived. Thread-safe. The pool's transfer loop runs the request,
 * but on a thread with a cancel token (cancel_set_current), which runs it
 * itself: firing the token then ends it at once with -EINTR.
 */
int http_perform(struct http_pool *p, const struct http_req *req,
		 struct http_resp *resp);
void http_resp_free(struct http_resp *r);

/* Status to -errno, for callers that interpret answers themselves. */
int http_status_errno(long status);

/* Parse an RFC 7231 date (Last-Modified); 0 when unparseable. */
int64_t http_parse_date(const char *s);

#endif
