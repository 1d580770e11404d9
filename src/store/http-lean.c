/*
 * The lean path of a reader's own ranged GET. libcurl opens the connection
 * (TCP, TLS with its checks, the pool's options) and keeps it; the request
 * and the framing of its answer are written here, on that connection,
 * with curl_easy_send and curl_easy_recv over TLS and with send and recv
 * on a plain connection (lean_direct), the body received straight into
 * the caller's buffer. A libcurl transfer costs about 25 us more per
 * request than that on loopback (bench/reqcost: its state machine,
 * callbacks, buffer copy and polls), a quarter of a random 4 KiB read
 * through the mount. Anything but the plain case (redirects, chunked
 * bodies, interim answers, odd status lines) goes back to libcurl.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/http-int.h"

/* Headers beyond this are left to libcurl, which allows more and says
 * why it gives up. */
#define LEAN_HEADER_MAX (16 * 1024)
#define LEAN_REQUEST_MAX (8 * 1024)
/* An error answer's body up to this is read, so the connection stays. */
#define LEAN_DISCARD_MAX (64 * 1024)
/* How often a wait looks at the pool's abort flag (a reader's token
 * wakes it at once). libcurl's transfers look about as often. */
#define LEAN_WAIT_SLICE_MS 250
/*
 * A wait for an answer asks the kernel to wake it only once this many of
 * the bytes it waits for are in (SO_RCVLOWAT), at most. Small enough that
 * the receive buffer the kernel sizes for it never clamps the window.
 */
#define LEAN_LOWAT_MAX (16 * 1024)
/* The first slice of a wait with a low-water mark; see lean_wait. */
#define LEAN_LOWAT_SLICE_MS 2

enum lean_answer {
	LEAN_DONE, /* an answer, or a failure that libcurl's would match */
	LEAN_STALE, /* the connection ended before any byte of an answer */
	LEAN_DECLINE, /* not one for this path: ask libcurl */
};

bool http_lean_usable(void)
{
	/* libcurl reads these; so would a lean connection's connect,
	 * and then speak to the proxy as if it were the origin. */
	static const char *const vars[] = { "http_proxy",  "HTTP_PROXY",
					    "https_proxy", "HTTPS_PROXY",
					    "all_proxy",   "ALL_PROXY" };
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return false;
	}
	return true;
}

void http_lean_init(struct http_lean *l)
{
	l->wake_fd = -1;
}

void http_lean_close(struct http_lean *l)
{
	if (!l->easy)
		return;
	curl_multi_remove_handle(l->multi, l->easy);
	curl_easy_cleanup(l->easy);
	l->easy = NULL;
	l->lowat = 0;
	l->origin[0] = '\0';
}

void http_lean_free(struct http_lean *l)
{
	http_lean_close(l);
	if (l->multi)
		curl_multi_cleanup(l->multi);
	l->multi = NULL;
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->wake_fd = -1;
}

/*
 * The reader's token fired: wake a wait wherever it is, the connect's in
 * libcurl or a plain connection's in poll. Any thread, while armed.
 */
static void lean_wake(void *arg)
{
	struct http_lean *l = arg;

	curl_multi_wakeup(l->multi);
	if (l->wake_fd >= 0)
		eventfd_write(l->wake_fd, 1);
}

/*
 * Whether l's connection is spoken on with the system calls themselves.
 * A profile of 8,000 cold random 4 KiB reads put about a seventh of the
 * daemon's user time in libcurl's own code under curl_easy_send,
 * curl_easy_recv and curl_multi_poll, around one system call each; on a
 * plain connection that libcurl only opened, its sending and receiving
 * are exactly those calls. TLS stays with libcurl.
 */
static bool lean_direct(const struct http_lean *l)
{
	return l->plain && l->wake_fd >= 0;
}

/* One wait of up to ms for events on a direct connection's socket, or a
 * wake. 1: the socket is ready (or failed), 0: not (yet), -errno. */
static int lean_poll(struct http_lean *l, int events, int ms)
{
	struct pollfd p[2] = {
		{ .fd = l->sock, .events = (short)events },
		{ .fd = l->wake_fd, .events = POLLIN },
	};
	eventfd_t v;

	if (poll(p, 2, ms) < 0)
		return errno == EINTR ? 0 : -errno;
	/* A wake from a request before this one is drained here too: one
	 * spurious wake-up, after which the token says what it meant. */
	if (p[1].revents)
		eventfd_read(l->wake_fd, &v);
	return p[0].revents ? 1 : 0;
}

/*
 * url as "scheme://authority" in origin and the request target that
 * follows it; false for what this path does not send: userinfo, other
 * schemes, bytes a request line cannot carry.
 */
static bool lean_split(const char *url, char *origin, size_t cap,
		       const char **target)
{
	const char *a, *e, *s;
	size_t n;

	if (!strncmp(url, "http://", 7))
		a = url + 7;
	else if (!strncmp(url, "https://", 8))
		a = url + 8;
	else
		return false;
	e = a + strcspn(a, "/?#");
	if (e == a || memchr(a, '@', (size_t)(e - a)))
		return false;
	n = (size_t)(e - url);
	if (n >= cap)
		return false;
	for (s = url; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '#')
			return false;
	memcpy(origin, url, n);
	origin[n] = '\0';
	*target = e;
	return true;
}

/*
 * A request written into a fixed buffer piece by piece: snprintf's
 * format parsing was a tenth of the daemon's user time on a 4 KiB read.
 * Once a piece does not fit, len is past cap and the request is not
 * sent.
 */
struct lean_req {
	char *buf;
	size_t len, cap;
};

static void lean_put(struct lean_req *q, const char *s, size_t n)
{
	if (q->len < q->cap && n < q->cap - q->len)
		memcpy(q->buf + q->len, s, n);
	q->len += n;
}

static void lean_puts(struct lean_req *q, const char *s)
{
	lean_put(q, s, strlen(s));
}

static void lean_put_u64(struct lean_req *q, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	lean_put(q, d + i, sizeof(d) - i);
}

/*
 * Wake l's waits for an answer only once n more of its bytes are in,
 * rather than at each segment: nginx, for one, sends a 206's headers and
 * its body apart, and a thread woken for the headers alone found no body,
 * polled and slept again (up to two polls and three receives a 4 KiB
 * read; bench/README.md). Only on plain connections: TLS may hold part of
 * a record, so fewer bytes than n may be left to arrive on the socket.
 */
static void lean_lowat(struct http_lean *l, size_t n)
{
	int v = n > LEAN_LOWAT_MAX ? LEAN_LOWAT_MAX : n ? (int)n : 1;

	if (!l->plain || v == l->lowat)
		return;
	if (!setsockopt(l->sock, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)))
		l->lowat = v;
}

/* Whether l's socket has any byte to read that its low-water mark keeps
 * a wait from seeing. */
static bool lean_held_back(struct http_lean *l)
{
	int n = 0;

	return l->lowat > 1 && !ioctl(l->sock, FIONREAD, &n) && n > 0;
}

/*
 * Wait until l's socket is ready for events, the deadline, the reader's
 * token or the pool's abort.
 *
 * A low-water mark is the answer's size as asked; an answer shorter than
 * that (an error, a range cut at the object's end) would never wake the
 * wait. So while one is set, slices start short and double: at the end of
 * each, bytes held back by the mark end the wait (the mark goes back to
 * 1). A short answer costs at most its own time again, plus 2 ms.
 */
static CURLcode lean_wait(struct http_lean *l, const struct http_lean_env *env,
			  int events, uint64_t deadline)
{
	struct curl_waitfd w = { .fd = l->sock, .events = (short)events };
	uint64_t slice = LEAN_LOWAT_SLICE_MS;
	bool direct = lean_direct(l);
	int pev = ((events & CURL_WAIT_POLLIN) ? POLLIN : 0) |
		  ((events & CURL_WAIT_POLLOUT) ? POLLOUT : 0);

	for (;;) {
		uint64_t now = mono_ms(), left;
		int nfds = 0;

		if (cancel_fired(env->cx) ||
		    __atomic_load_n(env->aborted, __ATOMIC_ACQUIRE))
			return CURLE_ABORTED_BY_CALLBACK;
		if (now >= deadline)
			return CURLE_OPERATION_TIMEDOUT;
		left = deadline - now;
		if (l->lowat <= 1 || !(events & CURL_WAIT_POLLIN))
			slice = LEAN_WAIT_SLICE_MS;
		w.revents = 0;
		if (direct) {
			int ready = lean_poll(
				l, pev, (int)(left < slice ? left : slice));

			if (ready < 0)
				return CURLE_RECV_ERROR;
			if (ready)
				return CURLE_OK;
		} else {
			if (curl_multi_poll(l->multi, &w, 1,
					    (int)(left < slice ? left : slice),
					    &nfds) != CURLM_OK)
				return CURLE_RECV_ERROR;
			if (w.revents)
				return CURLE_OK;
		}
		if ((events & CURL_WAIT_POLLIN) && lean_held_back(l)) {
			lean_lowat(l, 1);
			return CURLE_OK;
		}
		if (slice < LEAN_WAIT_SLICE_MS)
			slice *= 2;
	}
}

/*
 * Open l's connection to origin through l->multi, so that the reader's
 * token (armed on l->multi by the caller) ends a stalled connect or TLS
 * handshake at once. detail gets libcurl's reason of a failure.
 */
static CURLcode lean_connect(struct http_lean *l,
			     const struct http_lean_env *env,
			     const char *origin, uint64_t deadline,
			     char *detail)
{
	const struct http_pool_opts *o = env->opts;
	char url[sizeof(l->origin) + 1];
	uint64_t now = mono_ms();
	long ctimeout;
	CURLcode rc;
	CURL *e;

	if (now >= deadline)
		return CURLE_OPERATION_TIMEDOUT;
	ctimeout = (long)(o->connect_timeout_ms &&
					  o->connect_timeout_ms < deadline - now ?
				  o->connect_timeout_ms :
				  deadline - now);
	e = curl_easy_init();
	if (!e)
		return CURLE_OUT_OF_MEMORY;
	snprintf(url, sizeof(url), "%s/", origin);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* TLS offers only HTTP/1.1 (ALPN): this path speaks nothing else,
	 * and an origin that also speaks HTTP/2 would otherwise pick it. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, detail);
	if (curl_multi_add_handle(l->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		return CURLE_OUT_OF_MEMORY;
	}
	rc = http_drive(l->multi, e, env->cx, env->aborted);
	/* detail is the caller's for this attempt only. */
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	if (rc == CURLE_OK &&
	    (curl_easy_getinfo(e, CURLINFO_ACTIVESOCKET, &l->sock) !=
		     CURLE_OK ||
	     l->sock == CURL_SOCKET_BAD))
		rc = CURLE_COULDNT_CONNECT;
	if (rc != CURLE_OK) {
		curl_multi_remove_handle(l->multi, e);
		curl_easy_cleanup(e);
		return rc;
	}
	/* It stays in the multi that drove it: its connection lives in
	 * that multi's cache. */
	l->easy = e;
	l->lowat = 0;
	l->plain = !strncmp(origin, "http://", 7);
	snprintf(l->origin, sizeof(l->origin), "%s", origin);
	return CURLE_OK;
}

/* A direct send's or receive's result k as libcurl would give it. */
static CURLcode lean_rc(ssize_t k, CURLcode fail)
{
	if (k >= 0)
		return CURLE_OK;
	return errno == EAGAIN || errno == EWOULDBLOCK ? CURLE_AGAIN : fail;
}

static CURLcode lean_send(struct http_lean *l, const struct http_lean_env *env,
			  const char *buf, size_t len, uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		size_t n = 0;
		CURLcode rc;

		if (lean_direct(l)) {
			ssize_t k = send(l->sock, buf + off, len - off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (k < 0 && errno == EINTR)
				continue;
			rc = lean_rc(k, CURLE_SEND_ERROR);
			n = k > 0 ? (size_t)k : 0;
		} else {
			rc = curl_easy_send(l->easy, buf + off, len - off, &n);
		}

		if (rc == CURLE_AGAIN) {
			rc = lean_wait(l, env, CURL_WAIT_POLLOUT, deadline);
			if (rc != CURLE_OK)
				return rc;
			continue;
		}
		if (rc != CURLE_OK)
			return rc;
		off += n;
	}
	return CURLE_OK;
}

/*
 * Up to cap bytes into buf, at least one unless *n is 0: the end of the
 * stream. TLS may hold bytes the socket no longer shows, so this reads
 * before it waits, but for the first read of an answer (wait_first):
 * nothing of it can be here yet, and the read would only say so.
 */
static CURLcode lean_recv(struct http_lean *l, const struct http_lean_env *env,
			  char *buf, size_t cap, size_t *n, uint64_t deadline,
			  bool wait_first)
{
	for (;;) {
		CURLcode rc;

		if (wait_first) {
			rc = lean_wait(l, env, CURL_WAIT_POLLIN, deadline);
			if (rc != CURLE_OK)
				return rc;
			wait_first = false;
		}
		*n = 0;
		if (lean_direct(l)) {
			ssize_t k = recv(l->sock, buf, cap, MSG_DONTWAIT);

			if (k < 0 && errno == EINTR)
				continue;
			/* As with libcurl, 0 bytes is the stream's end. */
			rc = lean_rc(k, CURLE_RECV_ERROR);
			*n = k > 0 ? (size_t)k : 0;
		} else {
			rc = curl_easy_recv(l->easy, buf, cap, n);
		}
		if (rc != CURLE_AGAIN)
			return rc;
		wait_first = true;
	}
}

/* Whether the header line [line, line + len) is named name. */
static bool lean_hdr_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && line[n] == ':' && !strncasecmp(line, name, n);
}

/* Whether the header line [line, line + len) holds token, in any case. */
static bool lean_hdr_has(const char *line, size_t len, const char *token)
{
	size_t n = strlen(token), i;

	for (i = 0; i + n <= len; i++)
		if (!strncasecmp(line + i, token, n))
			return true;
	return false;
}

/*
 * Read the error answer's body of length len, of which have bytes are
 * already here, to keep the connection; close it when that cannot be
 * done cheaply. The status is the answer either way.
 */
static void lean_discard(struct http_lean *l, const struct http_lean_env *env,
			 int64_t len, size_t have, bool keep, char *scratch,
			 size_t cap, uint64_t deadline)
{
	size_t left;

	if (!keep || len < 0 || len > LEAN_DISCARD_MAX || have > (size_t)len) {
		http_lean_close(l);
		return;
	}
	left = (size_t)len - have;
	while (left) {
		size_t n = 0;

		lean_lowat(l, left);
		if (lean_recv(l, env, scratch, left < cap ? left : cap, &n,
			      deadline, false) != CURLE_OK ||
		    !n) {
			http_lean_close(l);
			return;
		}
		left -= n;
	}
}

/* Is there an LF without its CR in h[from, to)? h[from - 1] is looked at
 * too, so an answer read in pieces is judged the same. */
static bool lean_bare_lf(const char *h, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			return true;
	return false;
}

/*
 * The answer to x->req on l: headers into x->resp through the same
 * parser as libcurl's answers, the body into the request's buffer.
 */
static enum lean_answer lean_answer(struct http_lean *l,
				    const struct http_lean_env *env,
				    struct http_xfer *x, uint64_t deadline,
				    CURLcode *rc, char *detail)
{
	const struct http_req *q = x->req;
	struct http_resp *r = x->resp;
	char h[LEAN_HEADER_MAX + 1];
	size_t got = 0, hlen, extra, want, body;
	const char *end = NULL, *line, *eol;
	bool keep, have_len = false, http10;

	/* The headers, whole. */
	while (!end) {
		size_t n = 0, from = got > 3 ? got - 3 : 0;

		if (got == LEAN_HEADER_MAX)
			goto decline;
		/* A whole answer of the range holds at least its body.
		 * Set before the first wait only: once a short answer has
		 * dropped the mark, its headers' rest is not held back. */
		if (!got)
			lean_lowat(l, q->range_len);
		*rc = lean_recv(l, env, h + got, LEAN_HEADER_MAX - got, &n,
				deadline, !got);
		if (*rc == CURLE_RECV_ERROR && !got) {
			/* Reset by a server that had closed it. */
			http_lean_close(l);
			return LEAN_STALE;
		}
		if (*rc != CURLE_OK)
			goto fail;
		if (!n) {
			if (!got) {
				http_lean_close(l);
				return LEAN_STALE;
			}
			*rc = CURLE_RECV_ERROR;
			snprintf(detail, CURL_ERROR_SIZE,
				 "connection closed in the answer's headers");
			goto fail;
		}
		got += n;
		h[got] = '\0';
		end = memmem(h + from, got - from, "\r\n\r\n", 4);
		/* Lines ended by a bare LF (which libcurl accepts) would
		 * never end the headers here: the wait would run to the
		 * timeout on every such answer. */
		if (lean_bare_lf(h, got - n, end ? (size_t)(end - h) : got))
			goto decline;
	}
	hlen = (size_t)(end - h) + 4;
	/* HTTP/1.x and a three-digit status, or libcurl's rules apply. An
	 * HTTP/1.0 answer ends its connection unless it says otherwise. */
	http10 = !strncmp(h, "HTTP/1.0 ", 9);
	keep = !http10;
	if ((!http10 && strncmp(h, "HTTP/1.1 ", 9)) ||
	    !isdigit((unsigned char)h[9]) ||
	    !isdigit((unsigned char)h[10]) || !isdigit((unsigned char)h[11]) ||
	    (h[12] != ' ' && h[12] != '\r'))
		goto decline;
	for (line = h; line < end + 2; line = eol + 2) {
		size_t len;

		/* Every LF here ends a CRLF (lean_bare_lf): the first is
		 * the line's end, found by memchr at a fraction of what a
		 * memmem costs on so short a line. */
		eol = (const char *)memchr(line, '\n',
					   (size_t)(end + 2 - line)) -
		      1;
		len = (size_t)(eol - line);
		if (line != h) {
			/* Folded or unnamed lines, a transfer coding, two
			 * lengths: framing this path does not guess at. */
			if (*line == ' ' || *line == '\t' ||
			    !memchr(line, ':', len) ||
			    lean_hdr_is(line, len, "transfer-encoding"))
				goto decline;
			if (lean_hdr_is(line, len, "content-length")) {
				if (have_len)
					goto decline;
				have_len = true;
			}
			if (lean_hdr_is(line, len, "connection")) {
				if (lean_hdr_has(line, len, "close"))
					keep = false;
				else if (lean_hdr_has(line, len, "keep-alive"))
					keep = true;
			}
		}
		http_header_line(x, line, len + 2);
	}
	extra = got - hlen;
	if ((r->status >= 100 && r->status < 200) ||
	    (r->status >= 300 && r->status < 400))
		goto decline; /* interim answers and redirects */
	if (r->status < 200 || r->status >= 300) {
		lean_discard(l, env, r->content_length, extra, keep, h,
			     LEAN_HEADER_MAX, deadline);
		*rc = CURLE_OK;
		return LEAN_DONE;
	}
	if (r->content_length < 0)
		goto decline; /* a body that ends with the connection */
	if (r->status == 200 && !http_200_is_range(q, r)) {
		/* The whole object instead of the range: as libcurl's
		 * write callback, stop rather than download it. */
		x->aborted_range = true;
		*rc = CURLE_WRITE_ERROR;
		http_lean_close(l);
		return LEAN_DONE;
	}
	if ((uint64_t)r->content_length > q->cap) {
		x->overflow = true;
		*rc = CURLE_WRITE_ERROR;
		http_lean_close(l);
		return LEAN_DONE;
	}
	want = (size_t)r->content_length;
	/* Bytes past the body answer nothing we asked. */
	if (extra > want)
		keep = false;
	body = extra < want ? extra : want;
	memcpy(q->buf, h + hlen, body);
	while (body < want) {
		size_t n = 0;

		lean_lowat(l, want - body);
		*rc = lean_recv(l, env, (char *)q->buf + body, want - body, &n,
				deadline, false);
		if (*rc != CURLE_OK) {
			r->body_len = body;
			goto fail;
		}
		if (!n) {
			r->body_len = body;
			*rc = CURLE_PARTIAL_FILE;
			http_lean_close(l);
			return LEAN_DONE;
		}
		body += n;
	}
	r->body_len = body;
	if (!keep)
		http_lean_close(l);
	*rc = CURLE_OK;
	return LEAN_DONE;

fail:
	http_lean_close(l);
	return LEAN_DONE;
decline:
	http_lean_close(l);
	return LEAN_DECLINE;
}

/*
 * Make l's connection one to origin: the one it has, or a new one when it
 * has none or one to another origin (*reused says which). The caller has
 * l->multi and has armed env->cx on it.
 */
static CURLcode lean_ensure(struct http_lean *l,
			    const struct http_lean_env *env, const char *origin,
			    uint64_t deadline, char *detail, bool *reused)
{
	if (l->easy && strcmp(l->origin, origin))
		http_lean_close(l);
	*reused = l->easy != NULL;
	return *reused ? CURLE_OK :
			 lean_connect(l, env, origin, deadline, detail);
}

CURLcode http_lean_open(struct http_lean *l, const struct http_lean_env *env,
			const char *url, char *detail)
{
	char origin[sizeof(l->origin)];
	const char *target;
	bool reused;
	CURLcode rc;

	if (!lean_split(url, origin, sizeof(origin), &target))
		return CURLE_UNSUPPORTED_PROTOCOL; /* not one for this path */
	if (!l->multi && !(l->multi = curl_multi_init()))
		return CURLE_OUT_OF_MEMORY;
	if (!cancel_arm(env->cx, http_multi_wake, l->multi))
		return CURLE_ABORTED_BY_CALLBACK;
	rc = lean_ensure(l, env, origin, mono_ms() + env->budget_ms,
			 detail, &reused);
	cancel_disarm(env->cx);
	return rc;
}

enum http_lean_result http_lean_get(struct http_lean *l,
				    const struct http_lean_env *env,
				    struct http_xfer *x, CURLcode *rc,
				    char *detail)
{
	const struct http_req *q = x->req;
	char origin[sizeof(l->origin)], req[LEAN_REQUEST_MAX];
	struct lean_req lq = { 0 };
	const char *target, *host, *s;
	enum http_lean_result res = HTTP_LEAN_RAN;
	uint64_t deadline;
	int len, tries;

	if (!env->cx || q->head || !q->range_len ||
	    q->sink != HTTP_SINK_FIXED || q->headers || q->aws_sigv4 ||
	    q->userpwd || q->want_error_body ||
	    !lean_split(q->url, origin, sizeof(origin), &target))
		return HTTP_LEAN_NOT_MINE;
	if (q->if_match)
		for (s = q->if_match; *s; s++)
			if ((unsigned char)*s < ' ' || *s == 0x7f)
				return HTTP_LEAN_NOT_MINE;
	host = strstr(origin, "://") + 3;
	lq.buf = req;
	lq.cap = sizeof(req);
	lean_puts(&lq, *target == '/' ? "GET " : "GET /");
	lean_puts(&lq, target);
	lean_puts(&lq, " HTTP/1.1\r\nHost: ");
	lean_puts(&lq, host);
	lean_puts(&lq, "\r\nUser-Agent: " PACKAGE_NAME "/" PACKAGE_VERSION
		       "\r\nAccept: */*\r\nRange: bytes=");
	lean_put_u64(&lq, q->range_off);
	lean_put(&lq, "-", 1);
	lean_put_u64(&lq, q->range_off + q->range_len - 1);
	if (q->if_match && q->if_match[0]) {
		lean_puts(&lq, "\r\nIf-Match: ");
		lean_puts(&lq, q->if_match);
	}
	lean_put(&lq, "\r\n\r\n", 4);
	if (lq.len >= lq.cap)
		return HTTP_LEAN_NOT_MINE;
	len = (int)lq.len;
	if (!l->multi && !(l->multi = curl_multi_init()))
		return HTTP_LEAN_NOT_MINE;
	/* Without one, this handle's plain connections go through libcurl. */
	if (l->wake_fd < 0)
		l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!cancel_arm(env->cx, lean_wake, l)) {
		*rc = CURLE_ABORTED_BY_CALLBACK;
		return HTTP_LEAN_RAN;
	}
	deadline = mono_ms() + env->budget_ms;
	/*
	 * A kept-alive connection the server has closed meanwhile fails
	 * before any byte of an answer: then once more on a new one (a GET
	 * is safe to repeat). A new connection's failure is the answer.
	 */
	for (tries = 0; tries < 2; tries++) {
		enum lean_answer a;
		bool reused;

		*rc = lean_ensure(l, env, origin, deadline, detail, &reused);
		if (*rc != CURLE_OK)
			break;
		*rc = lean_send(l, env, req, (size_t)len, deadline);
		if (*rc == CURLE_OK) {
			a = lean_answer(l, env, x, deadline, rc, detail);
		} else {
			http_lean_close(l);
			a = *rc == CURLE_SEND_ERROR ? LEAN_STALE : LEAN_DONE;
		}
		if (a == LEAN_STALE && reused)
			continue;
		if (a == LEAN_STALE) {
			*rc = CURLE_GOT_NOTHING;
			snprintf(detail, CURL_ERROR_SIZE,
				 "connection closed without an answer");
		}
		if (a == LEAN_DECLINE)
			res = HTTP_LEAN_DECLINED;
		break;
	}
	cancel_disarm(env->cx);
	return res;
}
