/*
 * The HTTP client core. Transfers run on the pool's transfer loop: one
 * thread driving one curl multi handle, with at most max_connections
 * transfers in it at once (the rest wait their turn in order), so the loop
 * never has more connections busy than that. Callers prepare an easy
 * handle, hand it to the loop and sleep until it ends; an abort of the
 * pool ends every transfer at once, stalled ones too. The exception is a
 * thread with a cancel token: a reader fetching its own small read runs
 * the transfer itself (http_run_here). Every easy handle shares the DNS
 * cache and TLS sessions through a CURLSH. Connections are not shared
 * that way: libcurl does not support one connection cache used by
 * several threads at once (CURLSHOPT_SHARE), and its reports of crashes
 * in that code are real. The loop's multi handle keeps the loop's
 * keep-alive connections, and each pooled handle's private multi handle
 * its own (http_run_here). Easy handles are pooled. A request is
 * retried with exponential backoff and full jitter until the pool's
 * deadline; answers are checked (status, Content-Range, body length)
 * before they count.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/cancel.h"
#include "common/log.h"
#include "store/http-int.h"

/* Error bodies are only ever parsed for a code and a message. */
#define HTTP_MAX_ERROR_BODY (64 * 1024)
#define HTTP_BACKOFF_BASE_MS 100
#define HTTP_BACKOFF_MAX_MS 2000

/*
 * One transfer handed to the loop by http_run_loop, on the caller's
 * stack. The caller owns it and sleeps on done_cv until done; from
 * submission until then the loop owns easy.
 */
struct http_job {
	CURL *easy;
	pthread_cond_t done_cv; /* signalled when done is set */
	bool done; /* under pool->loop_lock */
	CURLcode result; /* under pool->loop_lock, once done */
	struct http_job *next; /* incoming queue, then the loop's own list */
};

struct http_pool {
	struct http_pool_opts opts;
	CURLSH *share;
	/* One mutex per curl_lock_data, as libcurl asks share users. */
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock; /* protects idle[] and nidle */
	struct http_handle **idle; /* not in use; connections stay cached */
	size_t nidle;
	size_t cap;
	int aborted; /* atomic: set once by http_pool_abort */
	/*
	 * The transfer loop. multi is the loop thread's alone, but for
	 * curl_multi_wakeup, which any thread may call.
	 */
	CURLM *multi;
	pthread_t loop;
	pthread_mutex_t loop_lock; /* incoming, loop_stop, jobs' done */
	/* Submitted, not yet in the multi handle, in order. */
	struct http_job *incoming, *incoming_tail;
	bool loop_stop;
	/* Readers' own ranged GETs may take the lean path (http-lean.c):
	 * no proxy is configured, and the origin's answers did not have to
	 * go back to libcurl HTTP_LEAN_MAX_DECLINES times in a row.
	 * Atomic, both. */
	int lean;
	int lean_declines;
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a,
		       void *user)
{
	struct http_pool *p = user;

	pthread_mutex_lock(&p->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	struct http_pool *p = user;

	pthread_mutex_unlock(&p->share_locks[data]);
}

#define HTTP_RECV_BUFFER (512 * 1024)
/* Answers in a row the lean path gave back before it is given up. */
#define HTTP_LEAN_MAX_DECLINES 3
/* The transfer loop's longest sleep (libcurl refuses an endless one). */
#define HTTP_LOOP_IDLE_MS (3600 * 1000)

static bool pool_aborted(struct http_pool *p)
{
	return __atomic_load_n(&p->aborted, __ATOMIC_ACQUIRE);
}

void http_pool_abort(struct http_pool *p)
{
	__atomic_store_n(&p->aborted, 1, __ATOMIC_RELEASE);
	/* The loop ends every transfer it drives, stalled ones too. */
	curl_multi_wakeup(p->multi);
}

/* libcurl calls this often during a transfer: the way to cut it short. */
static int xferinfo_cb(void *user, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	return pool_aborted(user) ? 1 : 0;
}

/* Hand j's result to its caller. Loop thread; j leaves the multi. */
static void job_end(struct http_pool *p, struct http_job *j, CURLcode rc)
{
	curl_multi_remove_handle(p->multi, j->easy);
	pthread_mutex_lock(&p->loop_lock);
	j->result = rc;
	j->done = true;
	/* Under the lock: once it is released the caller may return and
	 * j, on its stack, is gone. */
	pthread_cond_signal(&j->done_cv);
	pthread_mutex_unlock(&p->loop_lock);
}

/*
 * The next submitted job, if the bound lets one more in, or any job on
 * an abort or the stop (to end it). Caller holds loop_lock.
 */
static struct http_job *loop_take(struct http_pool *p, unsigned int nactive,
				  bool ending)
{
	struct http_job *j = p->incoming;

	if (!j || (!ending && p->opts.max_connections &&
		   nactive >= p->opts.max_connections))
		return NULL;
	p->incoming = j->next;
	if (!p->incoming)
		p->incoming_tail = NULL;
	return j;
}

/*
 * The transfer loop: take submitted jobs into the multi handle while the
 * bound allows, end them all on an abort or the stop, run libcurl, hand
 * finished ones back, and sleep until a socket, a libcurl timeout or
 * curl_multi_wakeup (a new job, a finished one's turn, an abort, the
 * stop) wants attention.
 */
static void *loop_main(void *arg)
{
	struct http_pool *p = arg;
	struct http_job *active = NULL, *j, **pj;
	unsigned int nactive = 0;
	bool stop, ending, ended;
	int running, queued;

	for (;;) {
		pthread_mutex_lock(&p->loop_lock);
		stop = p->loop_stop;
		ending = stop || pool_aborted(p);
		while ((j = loop_take(p, nactive, ending))) {
			pthread_mutex_unlock(&p->loop_lock);
			if (ending) {
				job_end(p, j, CURLE_ABORTED_BY_CALLBACK);
			} else if (curl_multi_add_handle(p->multi, j->easy) !=
				   CURLM_OK) {
				job_end(p, j, CURLE_OUT_OF_MEMORY);
			} else {
				j->next = active;
				active = j;
				nactive++;
			}
			pthread_mutex_lock(&p->loop_lock);
		}
		pthread_mutex_unlock(&p->loop_lock);
		if (ending) {
			while ((j = active)) {
				active = j->next;
				/* Its connection is closed, never reused
				 * half-read. */
				job_end(p, j, CURLE_ABORTED_BY_CALLBACK);
			}
			nactive = 0;
		}
		if (stop)
			return NULL;
		curl_multi_perform(p->multi, &running);
		ended = false;
		for (;;) {
			CURLMsg *msg = curl_multi_info_read(p->multi, &queued);
			CURLcode rc;
			CURL *e;

			if (!msg)
				break;
			if (msg->msg != CURLMSG_DONE)
				continue;
			/* msg dies with the handle's removal: copy first. */
			e = msg->easy_handle;
			rc = msg->data.result;
			for (pj = &active; (j = *pj) && j->easy != e;)
				pj = &j->next;
			if (j) {
				*pj = j->next;
				nactive--;
				job_end(p, j, rc);
				ended = true;
			}
		}
		/* A turn came free: let the next job in before sleeping. */
		if (ended)
			continue;
		/* libcurl shortens the wait to its own next timeout, and
		 * every change the loop must see calls curl_multi_wakeup:
		 * an idle pool sleeps. */
		curl_multi_poll(p->multi, NULL, 0, HTTP_LOOP_IDLE_MS, NULL);
	}
}

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;

static void http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

int http_pool_new(const struct http_pool_opts *o, struct http_pool **out)
{
	struct http_pool *p;
	int i;

	*out = NULL;
	pthread_once(&http_global_once, http_global_init);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->opts = *o;
	if (!p->opts.timeout_ms)
		p->opts.timeout_ms = 30000;
	if (!p->opts.connect_timeout_ms)
		p->opts.connect_timeout_ms = 10000;
	p->cap = 64;
	p->lean = http_lean_usable();
	p->idle = calloc(p->cap, sizeof(*p->idle));
	p->share = curl_share_init();
	if (!p->idle || !p->share)
		goto out_free;
	pthread_mutex_init(&p->lock, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->share_locks[i], NULL);
	curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
	curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(p->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	/* loop_take bounds the loop's transfers, in the order they came. */
	p->multi = curl_multi_init();
	if (!p->multi)
		goto out_locks;
	pthread_mutex_init(&p->loop_lock, NULL);
	if (pthread_create(&p->loop, NULL, loop_main, p)) {
		pthread_mutex_destroy(&p->loop_lock);
		curl_multi_cleanup(p->multi);
		goto out_locks;
	}
	*out = p;
	return 0;

out_locks:
	pthread_mutex_destroy(&p->lock);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->share_locks[i]);
out_free:
	if (p->share)
		curl_share_cleanup(p->share);
	free(p->idle);
	free(p);
	return -ENOMEM;
}

static void handle_free(struct http_handle *h)
{
	if (!h)
		return;
	if (h->multi)
		curl_multi_cleanup(h->multi);
	http_lean_free(&h->lean);
	curl_easy_cleanup(h->easy);
	free(h);
}

void http_pool_free(struct http_pool *p)
{
	size_t i;

	if (!p)
		return;
	pthread_mutex_lock(&p->loop_lock);
	p->loop_stop = true;
	pthread_mutex_unlock(&p->loop_lock);
	curl_multi_wakeup(p->multi);
	pthread_join(p->loop, NULL);
	/* Before the easy handles and the share it may still refer to. */
	curl_multi_cleanup(p->multi);
	pthread_mutex_destroy(&p->loop_lock);
	for (i = 0; i < p->nidle; i++)
		handle_free(p->idle[i]);
	curl_share_cleanup(p->share);
	free(p->idle);
	pthread_mutex_destroy(&p->lock);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->share_locks[i]);
	free(p);
}

static struct http_handle *pool_get(struct http_pool *p)
{
	struct http_handle *h = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->nidle)
		h = p->idle[--p->nidle];
	pthread_mutex_unlock(&p->lock);
	if (h)
		return h; /* attempt() sets what a request may change */
	h = calloc(1, sizeof(*h));
	if (h) {
		http_lean_init(&h->lean);
		h->easy = curl_easy_init();
	}
	if (h && !h->easy) {
		free(h);
		h = NULL;
	}
	return h;
}

/*
 * Idle handles beyond this many keep no connection open, lean or in their
 * private multi handle: a burst of readers leaves the origin no more idle
 * connections than that. pool_get takes the handle parked last, so the
 * ones still connected are reused first.
 */
static size_t pool_lean_keep(const struct http_pool *p)
{
	return p->opts.max_connections ? p->opts.max_connections : 8;
}

static void pool_put(struct http_pool *p, struct http_handle *h)
{
	pthread_mutex_lock(&p->lock);
	if (p->nidle < p->cap) {
		/* Before it is parked: from then on another thread may
		 * take it. Rare, and a close is short. */
		if (p->nidle >= pool_lean_keep(p)) {
			http_lean_close(&h->lean);
			if (h->multi) {
				curl_multi_cleanup(h->multi);
				h->multi = NULL;
			}
		}
		p->idle[p->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	handle_free(h);
}

void http_pool_warm(struct http_pool *p, const char *url)
{
	char detail[CURL_ERROR_SIZE] = "";
	struct http_lean_env env = { .opts = &p->opts,
				     .aborted = &p->aborted,
				     .budget_ms = p->opts.connect_timeout_ms };
	struct http_handle *h;
	struct cancel cx; /* never fired: http_pool_abort ends the wait */
	CURLcode rc;

	if (!__atomic_load_n(&p->lean, __ATOMIC_RELAXED))
		return;
	h = pool_get(p);
	if (!h)
		return;
	cancel_init(&cx);
	env.cx = &cx;
	rc = http_lean_open(&h->lean, &env, url, detail);
	cancel_destroy(&cx);
	if (rc != CURLE_OK)
		log_debug("no connection opened ahead of the first read: %s",
			  detail[0] ? detail : curl_easy_strerror(rc));
	pool_put(p, h);
}

int http_status_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 412:
		return -ESTALE;
	case 416:
		return -EINVAL;
	case 429:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static const char *month_names[] = { "Jan", "Feb", "Mar", "Apr",
				     "May", "Jun", "Jul", "Aug",
				     "Sep", "Oct", "Nov", "Dec" };

/* Digits at *s after spaces, at most max of them, into *v; advances *s.
 * False when there are none. */
static bool read_num(const char **s, int max, int *v)
{
	const char *p = *s;
	int n = 0;

	while (*p == ' ')
		p++;
	*v = 0;
	while (n < max && *p >= '0' && *p <= '9') {
		*v = *v * 10 + (*p++ - '0');
		n++;
	}
	*s = p;
	return n > 0;
}

/* Days from 1970-01-01 to y-m-d (m 1..12), proleptic Gregorian. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

int64_t http_parse_date(const char *s)
{
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", the only form
	 * RFC 7231 lets servers send. Parsed by hand: every answer has
	 * one, and sscanf and timegm were a few percent of a small read's
	 * cost. */
	int mday, year, hour, min, sec, i;

	if (!s)
		return 0;
	while (*s && *s != ',')
		s++;
	if (*s != ',')
		return 0;
	s++;
	if (!read_num(&s, 2, &mday))
		return 0;
	while (*s == ' ')
		s++;
	for (i = 0; i < 12; i++)
		if (!strncasecmp(s, month_names[i], 3))
			break;
	if (i == 12)
		return 0;
	s += 3;
	if (!read_num(&s, 4, &year) || !read_num(&s, 2, &hour) ||
	    *s++ != ':' || !read_num(&s, 2, &min) || *s++ != ':' ||
	    !read_num(&s, 2, &sec))
		return 0;
	if (year < 1970 || mday < 1 || mday > 31 || hour > 23 || min > 59 ||
	    sec > 60)
		return 0;
	return days_from_civil(year, i + 1, mday) * 86400 + hour * 3600 +
	       min * 60 + sec;
}

/* "bytes a-b/total" (total may be "*") into r's range, when well formed
 * and a <= b; else r keeps has_range false. */
static void parse_content_range(const char *v, struct http_resp *r)
{
	unsigned long long a, b;
	long long total = -1;
	char *end;

	while (*v == ' ')
		v++;
	if (strncasecmp(v, "bytes", 5))
		return;
	v += 5;
	if (*v != ' ')
		return;
	while (*v == ' ')
		v++;
	if (v[0] == '*' && v[1] == '/') {
		/* A 416's: no range, only the length there is. */
		if (v[2] < '0' || v[2] > '9')
			return;
		errno = 0;
		total = strtoll(v + 2, &end, 10);
		if (!errno && (*end == '\0' || *end == ' ' || *end == '\r'))
			r->unsatisfied_total = total;
		return;
	}
	if (*v < '0' || *v > '9')
		return;
	errno = 0;
	a = strtoull(v, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return;
	b = strtoull(end + 1, &end, 10);
	if (errno || *end != '/' || a > b)
		return;
	v = end + 1;
	if (*v != '*') {
		if (*v < '0' || *v > '9')
			return;
		total = strtoll(v, &end, 10);
		if (errno)
			return;
	}
	r->has_range = true;
	r->range_total = total;
	r->range_start = a;
	r->range_end = b;
}

/* Copy v[0..n) into dst[0..cap) without surrounding blanks, truncating;
 * false when it was truncated. */
static bool copy_trimmed(char *dst, size_t cap, const char *v, size_t n)
{
	bool fits;

	while (n && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	fits = n < cap;
	if (!fits)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return fits;
}

bool http_header_line(struct http_xfer *x, const char *buf, size_t len)
{
	struct http_resp *r = x->resp;
	char value[256];
	const char *colon;
	size_t name_len;

	x->header_bytes += len;
	if (x->header_bytes > HTTP_MAX_HEADER_BYTES) {
		x->header_overflow = true;
		return false;
	}
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		/* A new answer (after a redirect or a 100): start afresh. */
		const char *sp = memchr(buf, ' ', len);

		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		r->etag[0] = '\0';
		r->mtime = 0;
		r->content_length = -1;
		r->content_type[0] = '\0';
		r->has_range = false;
		r->unsatisfied_total = -1;
		r->accept_ranges = false;
		return true;
	}
	colon = memchr(buf, ':', len);
	if (!colon)
		return true;
	name_len = (size_t)(colon - buf);
	/* The names read here are 4 to 14 bytes long; the others (Server,
	 * Date, Connection, ...) are not copied at all. */
	if (name_len < 4 || name_len > 14)
		return true;
#define HDR_IS(lit) (name_len == sizeof(lit) - 1 && !strncasecmp(buf, lit, name_len))
#define VALUE() copy_trimmed(value, sizeof(value), colon + 1, len - name_len - 1)
	if (HDR_IS("etag")) {
		/* Cut short, it would name no version: sent in If-Match it
		 * would fail every read. Too long is as good as none. */
		if (!copy_trimmed(r->etag, sizeof(r->etag), colon + 1,
				  len - name_len - 1))
			r->etag[0] = '\0';
	} else if (HDR_IS("last-modified")) {
		VALUE();
		r->mtime = http_parse_date(value);
	} else if (HDR_IS("content-length")) {
		char *end;
		long long v;

		VALUE();
		v = strtoll(value, &end, 10);
		r->content_length = (end != value && v >= 0) ? v : -1;
	} else if (HDR_IS("content-type")) {
		copy_trimmed(r->content_type, sizeof(r->content_type),
			     colon + 1, len - name_len - 1);
	} else if (HDR_IS("accept-ranges")) {
		VALUE();
		r->accept_ranges = !strncasecmp(value, "bytes", 5);
	} else if (HDR_IS("content-range")) {
		VALUE();
		parse_content_range(value, r);
	}
#undef VALUE
#undef HDR_IS
	return true;
}

static size_t header_cb(char *buf, size_t size, size_t n, void *user)
{
	return http_header_line(user, buf, size * n) ? size * n : 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *user)
{
	struct http_xfer *x = user;
	const struct http_req *q = x->req;
	struct http_resp *r = x->resp;
	size_t len = size * n;

	if (r->status >= 300 || r->status < 200) {
		/* An error answer: keep a bounded prefix for the caller. */
		if (q->want_error_body && r->body_len < HTTP_MAX_ERROR_BODY) {
			size_t take = len;
			char *nb;

			if (take > HTTP_MAX_ERROR_BODY - r->body_len)
				take = HTTP_MAX_ERROR_BODY - r->body_len;
			nb = realloc(r->body, r->body_len + take + 1);
			if (!nb)
				return 0;
			r->body = nb;
			memcpy(r->body + r->body_len, data, take);
			r->body_len += take;
			r->body[r->body_len] = '\0';
		}
		return len;
	}
	if (q->range_len && r->status == 200 && !http_200_is_range(q, r)) {
		/* The server ignored Range and is sending the whole object:
		 * stop now rather than download it. */
		x->aborted_range = true;
		return 0;
	}
	switch (q->sink) {
	case HTTP_SINK_NONE:
		return len;
	case HTTP_SINK_FIXED:
		if (len > q->cap - r->body_len) {
			x->overflow = true;
			return 0;
		}
		memcpy((char *)q->buf + r->body_len, data, len);
		r->body_len += len;
		return len;
	case HTTP_SINK_GROW:
		if (len > q->cap - r->body_len) {
			x->overflow = true;
			return 0;
		}
		if (r->body_len + len + 1 > x->cap_grow) {
			size_t ncap = x->cap_grow ? x->cap_grow : 16384;
			char *nb;

			while (ncap < r->body_len + len + 1)
				ncap *= 2;
			nb = realloc(r->body, ncap);
			if (!nb)
				return 0;
			r->body = nb;
			x->cap_grow = ncap;
		}
		memcpy(r->body + r->body_len, data, len);
		r->body_len += len;
		r->body[r->body_len] = '\0';
		return len;
	}
	return 0;
}

static bool default_retryable(long status)
{
	return status >= 500 || status == 429 || status == 408;
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

enum attempt_result { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FAIL };

/* Run the transfer on h through the pool's loop and wait for its end. */
static CURLcode http_run_loop(struct http_pool *p, CURL *h)
{
	struct http_job j = { .easy = h };

	pthread_cond_init(&j.done_cv, NULL);
	pthread_mutex_lock(&p->loop_lock);
	if (p->incoming_tail)
		p->incoming_tail->next = &j;
	else
		p->incoming = &j;
	p->incoming_tail = &j;
	pthread_mutex_unlock(&p->loop_lock);
	curl_multi_wakeup(p->multi);
	pthread_mutex_lock(&p->loop_lock);
	while (!j.done)
		pthread_cond_wait(&j.done_cv, &p->loop_lock);
	pthread_mutex_unlock(&p->loop_lock);
	pthread_cond_destroy(&j.done_cv);
	return j.result;
}

void http_multi_wake(void *m)
{
	curl_multi_wakeup(m);
}

/* How often a driven transfer looks at its token and the pool's abort
 * between libcurl's own wake-ups (the token's firing wakes it at once). */
#define HTTP_DRIVE_SLICE_MS 250

CURLcode http_drive(CURLM *m, CURL *e, struct cancel *cx, const int *aborted)
{
	CURLcode rc = CURLE_OK;
	int running = 1, queued;
	CURLMsg *msg;

	for (;;) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			return CURLE_OUT_OF_MEMORY;
		if (!running)
			break;
		if (cancel_fired(cx) || __atomic_load_n(aborted, __ATOMIC_ACQUIRE))
			return CURLE_ABORTED_BY_CALLBACK;
		/* libcurl shortens the wait to its own next timeout. */
		if (curl_multi_poll(m, NULL, 0, HTTP_DRIVE_SLICE_MS, NULL) !=
		    CURLM_OK)
			return CURLE_OUT_OF_MEMORY;
	}
	while ((msg = curl_multi_info_read(m, &queued)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
			rc = msg->data.result;
	return rc;
}

/*
 * Run the transfer on h on the calling thread, through h's private multi
 * handle, so that firing cx (curl_multi_wakeup) ends it at once whatever
 * the origin is doing (the connection of an ended transfer is closed,
 * never reused half-read): the way of a reader that fetches its own
 * small read and waits for nothing else. Handing that to the loop would
 * cost two thread wake-ups per request, a fifth of a 4 KiB read from a
 * fast origin (measured). Such transfers are outside the loop's bound:
 * one connection per waiting reader.
 */
static CURLcode http_run_here(struct http_pool *p, struct http_handle *h,
				struct cancel *cx)
{
	CURLcode rc;
	CURLM *m;

	if (!h->multi)
		h->multi = curl_multi_init();
	m = h->multi;
	if (!m || curl_multi_add_handle(m, h->easy) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	if (!cancel_arm(cx, http_multi_wake, m)) {
		curl_multi_remove_handle(m, h->easy);
		return CURLE_ABORTED_BY_CALLBACK;
	}
	rc = http_drive(m, h->easy, cx, &p->aborted);
	cancel_disarm(cx);
	curl_multi_remove_handle(m, h->easy);
	return rc;
}

/* What an attempt answers, back to nothing. */
static void resp_reset(struct http_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->status = 0;
	r->content_length = -1;
	r->has_range = false;
	r->unsatisfied_total = -1;
	r->etag[0] = '\0';
	r->mtime = 0;
	r->accept_ranges = false;
	free(r->final_url);
	r->final_url = NULL;
	r->error[0] = '\0';
}

/* One try. Sets *err and resp->error on failure. */
static enum attempt_result attempt(struct http_pool *p, struct http_handle *hh,
				   const struct http_req *q,
				   struct http_resp *r, uint64_t budget_ms,
				   int *err)
{
	CURL *h = hh->easy;
	struct http_xfer x = { .req = q, .resp = r };
	char range[64];
	struct curl_slist *hdrs = NULL, *it;
	char ifm[STORE_ETAG_MAX + 16];
	char detail[CURL_ERROR_SIZE] = "";
	struct cancel *cx = cancel_current();
	/* A request made over TLS never goes on in clear text: anyone on the
	 * path could then change the bytes (and echo the ETag). */
	bool lean = false, https = !strncasecmp(q->url, "https:", 6);
	CURLcode rc;
	enum attempt_result res = ATTEMPT_FAIL;

	resp_reset(r);
	if (cx && __atomic_load_n(&p->lean, __ATOMIC_RELAXED)) {
		struct http_lean_env env = { .opts = &p->opts,
					     .aborted = &p->aborted,
					     .cx = cx,
					     .budget_ms = budget_ms };

		switch (http_lean_get(&hh->lean, &env, &x, &rc, detail)) {
		case HTTP_LEAN_RAN:
			lean = true;
			if (__atomic_load_n(&p->lean_declines,
					    __ATOMIC_RELAXED))
				__atomic_store_n(&p->lean_declines, 0,
						 __ATOMIC_RELAXED);
			goto answered;
		case HTTP_LEAN_DECLINED:
			/* An origin whose answers the lean path cannot
			 * frame (always chunked, say) would cost every read
			 * a request twice: give up on it. */
			if (__atomic_add_fetch(&p->lean_declines, 1,
					       __ATOMIC_RELAXED) >=
			    HTTP_LEAN_MAX_DECLINES)
				__atomic_store_n(&p->lean, 0,
						 __ATOMIC_RELAXED);
			/* It may have read an answer it would not frame:
			 * libcurl starts from nothing. */
			resp_reset(r);
			x = (struct http_xfer){ .req = q, .resp = r };
			detail[0] = '\0';
			break;
		case HTTP_LEAN_NOT_MINE:
			break;
		}
	}

	/*
	 * What every request of the pool shares is set once per handle: a
	 * curl_easy_reset() and the full set of options before each request
	 * put a 4 KiB GET at a median 1.14x libcurl's own floor in
	 * bench/reqcost, against 1.02x now. Everything a request may set is
	 * set, or cleared, below for every request.
	 */
	if (!hh->configured) {
		curl_easy_setopt(h, CURLOPT_SHARE, p->share);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_USERAGENT,
				 PACKAGE_NAME "/" PACKAGE_VERSION);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
		/* Idle keep-alive connections a connection cache holds. */
		if (p->opts.max_connections)
			curl_easy_setopt(h, CURLOPT_MAXCONNECTS,
					 (long)p->opts.max_connections);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER,
				 p->opts.insecure ? 0L : 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST,
				 p->opts.insecure ? 0L : 2L);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, p);
		hh->configured = true;
	}
	curl_easy_setopt(h, CURLOPT_URL, q->url);
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR,
			 https ? "https" : "http,https");
	/* Chunk-sized bodies want few, large recv()s and write callbacks;
	 * libcurl allocates this buffer for every transfer, so a small
	 * range gets a small one. */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE,
			 q->range_len && q->range_len < HTTP_RECV_BUFFER ?
				 (long)(q->range_len < 16384 ? 16384 :
							       q->range_len) :
				 (long)HTTP_RECV_BUFFER);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(p->opts.connect_timeout_ms < budget_ms ?
					p->opts.connect_timeout_ms :
					budget_ms));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)budget_ms);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, q->no_follow ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	if (q->head)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (q->range_len) {
		snprintf(range, sizeof(range), "%llu-%llu",
			 (unsigned long long)q->range_off,
			 (unsigned long long)(q->range_off + q->range_len - 1));
		curl_easy_setopt(h, CURLOPT_RANGE, range);
	} else {
		curl_easy_setopt(h, CURLOPT_RANGE, NULL);
	}
	for (it = q->headers; it; it = it->next)
		hdrs = curl_slist_append(hdrs, it->data);
	if (q->if_match && q->if_match[0]) {
		snprintf(ifm, sizeof(ifm), "If-Match: %s", q->if_match);
		hdrs = curl_slist_append(hdrs, ifm);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, q->aws_sigv4);
	if (q->aws_sigv4)
		curl_easy_setopt(h, CURLOPT_USERPWD, q->userpwd);

	rc = cx ? http_run_here(p, hh, cx) : http_run_loop(p, h);
	/* The buffer, the range and the headers are ours only during the
	 * call. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	/* Signing material must not outlive the request inside the handle. */
	if (q->aws_sigv4)
		curl_easy_setopt(h, CURLOPT_USERPWD, NULL);
	curl_slist_free_all(hdrs);

answered:
	/* A 200 whose body never came (Content-Length: 0) never reached
	 * write_cb's check: it is the origin's whole answer, not a transfer
	 * cut short, and asking again would get it again until the
	 * timeout. */
	if (rc == CURLE_OK && q->range_len && !q->head && r->status == 200 &&
	    !http_200_is_range(q, r))
		x.aborted_range = true;
	if (x.header_overflow) {
		snprintf(r->error, sizeof(r->error),
			 "answer headers exceed %d bytes",
			 HTTP_MAX_HEADER_BYTES);
		*err = -EIO;
		goto out;
	}
	if (x.aborted_range) {
		snprintf(r->error, sizeof(r->error),
			 "origin ignores Range requests (answered 200 with the whole object)");
		*err = -EIO;
		goto out;
	}
	if (x.overflow) {
		snprintf(r->error, sizeof(r->error),
			 "origin sent more data than requested (%zu bytes)",
			 q->cap);
		*err = -EIO;
		goto out;
	}
	if (rc != CURLE_OK) {
		/* libcurl's own words say more ("self-signed certificate",
		 * "Failed to connect to 127.0.0.1 port 1"); they name the
		 * host, never userinfo or headers. */
		snprintf(r->error, sizeof(r->error), "%s",
			 detail[0] ? detail : curl_easy_strerror(rc));
		if (rc == CURLE_PEER_FAILED_VERIFICATION ||
		    rc == CURLE_SSL_CACERT_BADFILE)
			snprintf(r->error, sizeof(r->error),
				 "TLS certificate not trusted (%.150s); "
				 "--insecure skips the check",
				 detail[0] ? detail : curl_easy_strerror(rc));
		if (rc == CURLE_PARTIAL_FILE)
			snprintf(r->error, sizeof(r->error),
				 "truncated body (connection closed before Content-Length)");
		if (rc == CURLE_UNSUPPORTED_PROTOCOL && https)
			snprintf(r->error, sizeof(r->error),
				 "redirected away from HTTPS; refused");
		*err = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		if (rc == CURLE_COULDNT_RESOLVE_HOST)
			*err = -EHOSTUNREACH;
		else if (rc == CURLE_COULDNT_CONNECT)
			*err = -ECONNREFUSED;
		else if (rc == CURLE_PEER_FAILED_VERIFICATION ||
			 rc == CURLE_SSL_CACERT_BADFILE)
			*err = -EACCES;
		res = curl_retryable(rc) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
		goto out;
	}
	if (r->status < 200 || r->status >= 300) {
		bool retry = q->retryable ? q->retryable(r->status, r->body,
							 r->body_len) :
					    default_retryable(r->status);

		snprintf(r->error, sizeof(r->error), "HTTP %ld", r->status);
		*err = http_status_errno(r->status);
		if (*err == -EAGAIN)
			*err = -EIO;
		res = retry ? ATTEMPT_RETRY : ATTEMPT_FAIL;
		goto out;
	}
	if (q->range_len && !q->head) {
		/* Only these two say which bytes the body is (a 200 was
		 * checked to be the whole object from offset 0). */
		if (r->status != 200 && r->status != 206) {
			snprintf(r->error, sizeof(r->error),
				 "origin answered HTTP %ld to a range request",
				 r->status);
			*err = -EIO;
			goto out;
		}
		if (r->status == 206 &&
		    (!r->has_range || r->range_start != q->range_off ||
		     r->range_end != q->range_off + q->range_len - 1)) {
			snprintf(r->error, sizeof(r->error),
				 "origin answered a different range than requested");
			*err = -EIO;
			goto out;
		}
		if (r->body_len != q->range_len) {
			snprintf(r->error, sizeof(r->error),
				 "short body: %zu of %zu bytes", r->body_len,
				 q->range_len);
			*err = -EIO;
			res = ATTEMPT_RETRY;
			goto out;
		}
	}
	*err = 0;
	res = ATTEMPT_OK;
out:
	/* The lean path follows no redirect. */
	if (r->status && !lean) {
		char *eff = NULL;

		curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &eff);
		/* Out of memory: the caller takes the URL asked for, as if
		 * no redirect had been followed. */
		if (eff && strcmp(eff, q->url))
			r->final_url = strdup(eff);
	}
	return res;
}

/* Sleep ms before a retry; true when the token fired meanwhile. Slices
 * of 10 ms keep a cancelled wait within a signal's latency bound. */
static bool http_backoff(struct cancel *cx, uint64_t ms)
{
	while (ms) {
		uint64_t step = cx && ms > 10 ? 10 : ms;

		if (cx && cancel_fired(cx))
			return true;
		usleep((useconds_t)step * 1000);
		ms -= step;
	}
	return cx && cancel_fired(cx);
}

int http_perform(struct http_pool *p, const struct http_req *q,
		 struct http_resp *r)
{
	uint64_t start = mono_ms();
	uint64_t deadline = start + p->opts.timeout_ms;
	struct cancel *cx = cancel_current();
	unsigned int tries = 0;
	int err = -EIO;
	struct http_handle *h;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	r->unsatisfied_total = -1;
	h = pool_get(p);
	if (!h) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		uint64_t now = mono_ms();
		enum attempt_result res;
		uint64_t backoff, cap;

		if (now >= deadline)
			break;
		if (pool_aborted(p)) {
			snprintf(r->error, sizeof(r->error), "stopping");
			err = -ECANCELED;
			break;
		}
		res = attempt(p, h, q, r, deadline - now, &err);
		tries++;
		if (res == ATTEMPT_OK) {
			pool_put(p, h);
			return 0;
		}
		if (cx && cancel_fired(cx)) {
			snprintf(r->error, sizeof(r->error), "interrupted");
			err = -EINTR;
			break;
		}
		if (res == ATTEMPT_FAIL || pool_aborted(p)) {
			if (pool_aborted(p)) {
				snprintf(r->error, sizeof(r->error), "stopping");
				err = -ECANCELED;
			}
			break;
		}
		/* Full jitter (AWS architecture blog's scheme): spreads the
		 * retries of many readers hitting one failing origin. */
		cap = HTTP_BACKOFF_BASE_MS << (tries < 5 ? tries : 5);
		if (cap > HTTP_BACKOFF_MAX_MS)
			cap = HTTP_BACKOFF_MAX_MS;
		backoff = (uint64_t)random() % (cap + 1);
		now = mono_ms();
		if (now + backoff >= deadline)
			break;
		log_debug("retrying %s after %s (try %u, %llu ms)",
			  q->head ? "HEAD" : "GET", r->error, tries,
			  (unsigned long long)backoff);
		if (http_backoff(cx, backoff)) {
			snprintf(r->error, sizeof(r->error), "interrupted");
			err = -EINTR;
			break;
		}
	}
	pool_put(p, h);
	if (mono_ms() >= deadline && tries > 1) {
		char prev[sizeof(r->error)];

		memcpy(prev, r->error, sizeof(prev));
		snprintf(r->error, sizeof(r->error),
			 "gave up after %u tries in %u ms: %.180s", tries,
			 p->opts.timeout_ms, prev);
	}
	return err;
}

void http_resp_free(struct http_resp *r)
{
	free(r->final_url);
	r->final_url = NULL;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
