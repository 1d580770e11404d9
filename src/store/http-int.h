/*
 * Private to src/store/http*.c: the pooled handle, one attempt's state as
 * the answer's callbacks see it, and the lean path of a reader's own
 * ranged GET (http-lean.c).
 */
#ifndef STORE_HTTP_INT_H
#define STORE_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#include "common/cancel.h"
#include "common/mono.h"
#include "store/http.h"

/* Bound on all headers of one answer: a lying or hostile server cannot
 * make us buffer without limit. */
#define HTTP_MAX_HEADER_BYTES (64 * 1024)

/*
 * A kept-alive connection that libcurl opened (CONNECT_ONLY) and that the
 * lean path speaks HTTP/1.1 on itself. Owned by its http_handle, used by
 * one thread at a time (the handle's).
 */
struct http_lean {
	CURL *easy; /* NULL: no connection */
	/* Drove the connect, keeps easy (and so its connection) and wakes
	 * a wait on curl_multi_wakeup. Kept across connections. */
	CURLM *multi;
	curl_socket_t sock;
	/* The socket's SO_RCVLOWAT as lean_lowat last set it; 0: not set
	 * on this connection yet (and never on a TLS one). */
	int lowat;
	bool plain; /* http://: the socket carries the answer's own bytes */
	/*
	 * An eventfd that a wait on a plain connection polls beside the
	 * socket, written by the reader's token (the multi's wakeup is for
	 * the connect): such a connection's bytes are sent, received and
	 * waited for with the system calls themselves, without libcurl's
	 * bookkeeping around each. -1: none (http_lean_init), and a plain
	 * connection goes through libcurl like a TLS one.
	 */
	int wake_fd;
	char origin[256]; /* "scheme://authority" easy is connected to */
};

/*
 * A pooled easy handle and, once a transfer has run on its caller's own
 * thread (http_run_here), the private multi handle that drove it. They are
 * kept together so that a reader's first small read costs no multi set-up
 * (a socketpair and more) on whichever FUSE thread it lands.
 */
struct http_handle {
	CURL *easy;
	CURLM *multi; /* NULL until needed; holds no easy handle when idle */
	bool configured; /* the options every request shares are set */
	struct http_lean lean;
};

/* State of one attempt, reached from the libcurl callbacks. */
struct http_xfer {
	const struct http_req *req;
	struct http_resp *resp;
	size_t header_bytes;
	bool aborted_range; /* a 200 to a ranged GET: stopped reading */
	bool overflow; /* more body than asked for */
	bool header_overflow;
	size_t cap_grow;
};

/* Whether r, a 200 to q's ranged GET, is the range asked for: the whole
 * object, which is exactly the range from offset 0. Anything else means
 * the origin ignored Range, an empty body included. */
static inline bool http_200_is_range(const struct http_req *q,
				     const struct http_resp *r)
{
	return q->range_off == 0 && r->content_length >= 0 &&
	       (uint64_t)r->content_length == q->range_len;
}

/* One header line of an answer (the status line included, with or
 * without its CRLF) into x->resp; false once the headers exceed
 * HTTP_MAX_HEADER_BYTES. */
bool http_header_line(struct http_xfer *x, const char *line, size_t len);

void http_multi_wake(void *multi);

/*
 * Drive e, already in m, on the calling thread until it ends (its result),
 * cx fires or the pool's abort flag is set (CURLE_ABORTED_BY_CALLBACK).
 * The caller arms cx with http_multi_wake on m around the call.
 */
CURLcode http_drive(CURLM *m, CURL *e, struct cancel *cx, const int *aborted);

/* What the lean path needs of its pool for one attempt. */
struct http_lean_env {
	const struct http_pool_opts *opts;
	const int *aborted; /* the pool's abort flag, read atomically */
	struct cancel *cx; /* the calling reader's token */
	uint64_t budget_ms; /* for this attempt, connecting included */
};

/* What http_lean_get did with a request. */
enum http_lean_result {
	HTTP_LEAN_RAN, /* answered, or failed as a transfer would */
	HTTP_LEAN_NOT_MINE, /* not a request for it: nothing was sent */
	HTTP_LEAN_DECLINED, /* sent, but the answer was not one for it */
};

/*
 * Run x->req, a plain ranged GET into a fixed buffer, on l's connection
 * (opened, or reopened to another origin, as needed), answering as
 * libcurl's transfer would: x->resp's status and headers, the body in
 * req->buf, x's flags, *rc as the transfer's end and detail (at least
 * CURL_ERROR_SIZE bytes) with the reason of a failure. NOT_MINE for a
 * request it does not take (signed, with extra headers, not a ranged GET
 * into a buffer); DECLINED for an answer it does not frame (a redirect,
 * a chunked body, headers over 16 KiB, not HTTP/1.x): then x and *rc
 * mean nothing and the caller runs the request through libcurl. Calling
 * thread only.
 */
enum http_lean_result http_lean_get(struct http_lean *l,
				    const struct http_lean_env *env,
				    struct http_xfer *x, CURLcode *rc,
				    char *detail);

/*
 * Open l's connection to the origin of url ahead of its first request,
 * if it has none to it: what http_lean_get would open first. CURLE_OK,
 * or why not (detail as for http_lean_get). Calling thread only.
 */
CURLcode http_lean_open(struct http_lean *l, const struct http_lean_env *env,
			const char *url, char *detail);

/* Whether requests may take the lean path at all: no proxy is set in the
 * environment (the lean path does not speak to proxies). */
bool http_lean_usable(void);

/* A zeroed l made ready: no connection, no eventfd yet. */
void http_lean_init(struct http_lean *l);
/* Close l's connection, if any; l->multi stays. */
void http_lean_close(struct http_lean *l);
/* Close l's connection, free its multi handle and its eventfd. */
void http_lean_free(struct http_lean *l);

#endif
