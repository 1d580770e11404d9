/*
 * Unit tests of the HTTP client core (src/store/http.c) against a scripted
 * server on 127.0.0.1 that answers what real servers only do by accident:
 * ignored ranges, short and long bodies, wrong Content-Range, huge
 * headers, transient 503s. Also the status-to-errno and date rules. The
 * answer tests run twice: as the transfer loop's requests, and as a
 * reader's own (a cancel token set), which take the lean path
 * (src/store/http-lean.c) and must come to the same results.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cancel.h"
#include "store/http.h"

#define MAX_SCRIPT 8

/*
 * The scripted server: answer i goes to the i-th connection (the last
 * one repeats); each connection serves one request and closes. The script
 * holds its own copies, and the server writes a copy of its own: a client
 * has its answer before the server's write returns, and the test that
 * scripted it may be gone by then (its buffers with it).
 */
struct srv {
	int fd;
	int port;
	pthread_t th;
	pthread_mutex_t lock;
	char *answers[MAX_SCRIPT];     /* under lock; owned, from script() */
	size_t answer_len[MAX_SCRIPT]; /* under lock */
	int nanswers;
	int served; /* under lock */
	char last_req[4096]; /* under lock */
	bool stop;
};

static struct srv S;
/* The token get_range's requests run under: NULL for the loop's path,
 * set for the lean group's. */
static struct cancel *T_CX;
static struct cancel lean_cx;

static void *srv_main(void *arg)
{
	for (;;) {
		int c = accept(S.fd, NULL, NULL);
		char req[4096];
		size_t got = 0;
		char *ans;
		size_t alen;
		int i;

		if (c < 0)
			return NULL;
		if (S.stop) {
			close(c);
			return NULL;
		}
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		pthread_mutex_lock(&S.lock);
		i = S.served < S.nanswers ? S.served : S.nanswers - 1;
		S.served++;
		alen = i >= 0 ? S.answer_len[i] : 0;
		ans = alen ? malloc(alen) : NULL;
		if (ans)
			memcpy(ans, S.answers[i], alen);
		snprintf(S.last_req, sizeof(S.last_req), "%s", req);
		pthread_mutex_unlock(&S.lock);
		if (ans && write(c, ans, alen) < 0) {
			/* the client may have hung up: fine */
		}
		free(ans);
		shutdown(c, SHUT_WR);
		close(c);
	}
}

static int srv_setup(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1;

	memset(&S, 0, sizeof(S));
	pthread_mutex_init(&S.lock, NULL);
	S.fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(S.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(S.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(S.fd, 16), 0);
	getsockname(S.fd, (struct sockaddr *)&a, &len);
	S.port = ntohs(a.sin_port);
	pthread_create(&S.th, NULL, srv_main, NULL);
	return 0;
}

/* Drop the script's answers: under S.lock, or once the server is gone. */
static void script_clear(void)
{
	int i;

	for (i = 0; i < MAX_SCRIPT; i++) {
		free(S.answers[i]);
		S.answers[i] = NULL;
	}
	S.nanswers = 0;
}

static int srv_teardown(void **state)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };

	S.stop = true;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)S.port);
	connect(c, (struct sockaddr *)&a, sizeof(a));
	close(c);
	pthread_join(S.th, NULL);
	close(S.fd);
	script_clear();
	return 0;
}

static void script(int n, ...)
{
	va_list ap;
	int i;

	va_start(ap, n);
	pthread_mutex_lock(&S.lock);
	script_clear();
	for (i = 0; i < n; i++) {
		S.answers[i] = strdup(va_arg(ap, const char *));
		assert_non_null(S.answers[i]);
		S.answer_len[i] = strlen(S.answers[i]);
	}
	S.nanswers = n;
	S.served = 0;
	S.last_req[0] = '\0';
	pthread_mutex_unlock(&S.lock);
	va_end(ap);
}

static int served(void)
{
	int n;

	pthread_mutex_lock(&S.lock);
	n = S.served;
	pthread_mutex_unlock(&S.lock);
	return n;
}

static struct http_pool *pool(unsigned int timeout_ms)
{
	struct http_pool_opts o = { .timeout_ms = timeout_ms,
				    .connect_timeout_ms = 1000 };
	struct http_pool *p;

	assert_int_equal(http_pool_new(&o, &p), 0);
	return p;
}

/* GET [off, off+len) of /obj into buf. */
static int get_range(struct http_pool *p, uint64_t off, size_t len, char *buf,
		     struct http_resp *r, const char *if_match)
{
	char url[64];
	struct http_req q = { .sink = HTTP_SINK_FIXED };
	int err;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/obj", S.port);
	q.url = url;
	q.range_off = off;
	q.range_len = len;
	q.buf = buf;
	q.cap = len;
	q.if_match = if_match;
	cancel_set_current(T_CX);
	err = http_perform(p, &q, r);
	cancel_set_current(NULL);
	return err;
}

static void test_errno_map(void **state)
{
	assert_int_equal(http_status_errno(200), 0);
	assert_int_equal(http_status_errno(206), 0);
	assert_int_equal(http_status_errno(404), -ENOENT);
	assert_int_equal(http_status_errno(410), -ENOENT);
	assert_int_equal(http_status_errno(401), -EACCES);
	assert_int_equal(http_status_errno(403), -EACCES);
	assert_int_equal(http_status_errno(412), -ESTALE);
	assert_int_equal(http_status_errno(500), -EIO);
	assert_int_equal(http_status_errno(503), -EIO);
}

static void test_parse_date(void **state)
{
	assert_int_equal(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT"),
			 784111777);
	assert_int_equal(http_parse_date("Sat, 21 Nov 2026 21:10:00 GMT"),
			 1795295400);
	assert_int_equal(http_parse_date("garbage"), 0);
	assert_int_equal(http_parse_date(""), 0);
	assert_int_equal(http_parse_date(NULL), 0);
	assert_int_equal(http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT"), 0);
	assert_int_equal(http_parse_date("Sun, 06 Nov 1994 08:49 GMT"), 0);
	assert_int_equal(http_parse_date("Sun, 06 Nov 1994 25:49:37 GMT"), 0);
	assert_int_equal(http_parse_date("Sun, 00 Nov 1994 08:49:37 GMT"), 0);
	assert_int_equal(http_parse_date("Sun, 06 Nov 1969 08:49:37 GMT"), 0);
}

static void test_parse_date_vs_libc(void **state)
{
	/* The hand parser agrees with strftime and timegm on every day
	 * from 1970 to 2400, leap years and centuries included. */
	char buf[64];
	struct tm tm;
	time_t t;

	for (t = 0; t < 13569465600; t += 86400 - 7) {
		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (http_parse_date(buf) != (int64_t)t)
			fail_msg("%s: %lld, want %lld", buf,
				 (long long)http_parse_date(buf), (long long)t);
	}
}

/* Whether req is a GET of /obj whose header lines each end in CRLF and
 * whose only empty line is the last. */
static bool req_well_framed(const char *req)
{
	const char *end = strstr(req, "\r\n\r\n");
	const char *p;

	if (strncmp(req, "GET /obj HTTP/1.1\r\n", 19) || !end ||
	    end[4] != '\0')
		return false;
	for (p = req; p < end; p++)
		if ((*p == '\n') != (p > req && p[-1] == '\r'))
			return false;
	return true;
}

static void test_range_ok(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[10];

	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/100\r\n"
		  "Content-Length: 10\r\nETag: \"abc\"\r\n\r\n0123456789");
	assert_int_equal(get_range(p, 10, 10, buf, &r, NULL), 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_string_equal(r.etag, "\"abc\"");
	assert_non_null(strstr(S.last_req, "Range: bytes=10-19"));
	assert_non_null(strstr(S.last_req, "\r\nHost: 127.0.0.1:"));
	assert_non_null(strstr(S.last_req, "\r\nUser-Agent: " PACKAGE_NAME "/"));
	assert_true(req_well_framed(S.last_req));
	assert_int_equal(served(), 1);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_range_ignored(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[10];

	script(1, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
		  "0000000000111111111122222222223333333333444444444455555555556666666666777777777788888888889999999999");
	assert_int_equal(get_range(p, 10, 10, buf, &r, NULL), -EIO);
	assert_non_null(strstr(r.error, "Range"));
	assert_int_equal(served(), 1); /* not retried: it is the server */
	http_resp_free(&r);
	http_pool_free(p);
}

/* An empty 200 to a range request is the server's whole answer, not a
 * transfer cut short: it fails at once, on either path, rather than being
 * asked again until the timeout. */
static void test_empty_200(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[10];

	(void)state;
	script(1, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(get_range(p, 10, 10, buf, &r, NULL), -EIO);
	assert_non_null(strstr(r.error, "Range"));
	assert_int_equal(served(), 1);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_whole_object_200_ok(void **state)
{
	/* A 200 is fine when the range asked for was the whole object. */
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];

	script(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "abcd", 4);
	http_resp_free(&r);
	http_pool_free(p);
}

/* The 10 bytes at off, answered by answer, fail with -EIO saying why. */
static void range_fails(const char *answer, uint64_t off, const char *why)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[10];

	script(1, answer);
	assert_int_equal(get_range(p, off, 10, buf, &r, NULL), -EIO);
	assert_non_null(strstr(r.error, why));
	http_resp_free(&r);
	http_pool_free(p);
}

/* Only a 206 (or a 200 of the whole object) says which bytes came. */
static void test_other_2xx(void **state)
{
	range_fails("HTTP/1.1 203 Non-Authoritative Information\r\n"
		    "Content-Length: 10\r\n\r\n0123456789",
		    503, "HTTP 203");
}

/* An ETag too long to keep whole is kept as none, never cut short; one
 * that fits stays whole. */
static void test_etag_too_long(void **state)
{
	static const size_t lens[] = { 200, STORE_ETAG_MAX - 3 };
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char ans[512], etag[201], buf[10];
	size_t i;

	for (i = 0; i < 2; i++) {
		memset(etag, 'e', lens[i]);
		etag[lens[i]] = '\0';
		snprintf(ans, sizeof(ans),
			 "HTTP/1.1 206 Partial Content\r\nETag: \"%s\"\r\n"
			 "Content-Range: bytes 0-9/100\r\n"
			 "Content-Length: 10\r\n\r\n0123456789",
			 etag);
		script(1, ans);
		assert_int_equal(get_range(p, 0, 10, buf, &r, NULL), 0);
		/* The quotes make the second exactly as long as fits. */
		assert_int_equal(strlen(r.etag), i ? STORE_ETAG_MAX - 1 : 0);
		http_resp_free(&r);
	}
	http_pool_free(p);
}

static void test_short_body(void **state)
{
	struct http_pool *p = pool(1500);
	struct http_resp r;
	char buf[10];
	memset(buf, 'X', sizeof(buf));

	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\n"
		  "Content-Length: 10\r\n\r\n01234");
	assert_int_equal(get_range(p, 0, 10, buf, &r, NULL), -EIO);
	assert_true(served() >= 1);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_wrong_content_range(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[10];

	static const char *const bad[] = {
		"bytes 20-29/100", /* another range */
		"bytes 10-x/100", /* malformed, each a different way */
		"bytes 10-19/abc",
		"bytes=10-19/100",
		"bytes 19-10/100",
		"bytes -10-19/100",
		"bytes 10-19",
		"bytes 10-99999999999999999999999/100",
	};
	char hdr[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 206 Partial Content\r\nContent-Range: %s\r\n"
			 "Content-Length: 10\r\n\r\n0123456789",
			 bad[i]);
		script(1, hdr);
		assert_int_equal(get_range(p, 10, 10, buf, &r, NULL), -EIO);
		assert_non_null(strstr(r.error, "range"));
		http_resp_free(&r);
	}
	/* Well formed, an unknown total: accepted. */
	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 10-19/*\r\n"
		  "Content-Length: 10\r\n\r\n0123456789");
	assert_int_equal(get_range(p, 10, 10, buf, &r, NULL), 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_int_equal(r.range_total, -1);
	http_resp_free(&r);
	http_pool_free(p);
}

/* A 416 says the object's length: "bytes *\/N" (an empty object: 0). */
static void test_unsatisfied_length(void **state)
{
	static const struct {
		const char *hdr;
		long long want;
	} cases[] = {
		{"bytes */0", 0},  {"bytes */4096", 4096}, {"bytes */", -1},
		{"bytes */x", -1}, {"bytes */12x", -1},	   {"bytes 0-0/*", -1},
		{"bytes=*/0", -1},
	};
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[16], hdr[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 416 Range Not Satisfiable\r\n"
			 "Content-Range: %s\r\nContent-Length: 0\r\n\r\n",
			 cases[i].hdr);
		script(1, hdr);
		assert_int_equal(get_range(p, 0, 1, buf, &r, NULL), -EINVAL);
		assert_int_equal(r.status, 416);
		assert_int_equal(r.unsatisfied_total, cases[i].want);
		http_resp_free(&r);
	}
	http_pool_free(p);
}

static void test_long_body(void **state)
{
	range_fails("HTTP/1.1 206 Partial Content\r\n"
		    "Content-Range: bytes 0-9/100\r\n"
		    "Content-Length: 20\r\n\r\n01234567890123456789",
		    0, "more data");
}

static void test_retry_503(void **state)
{
	struct http_pool *p = pool(5000);
	struct http_resp r;
	char buf[4];

	script(2, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
	       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\n"
	       "Content-Length: 4\r\n\r\nwxyz");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "wxyz", 4);
	assert_int_equal(served(), 2);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_persistent_503_bounded(void **state)
{
	struct http_pool *p = pool(1200);
	struct http_resp r;
	struct timespec a, b;
	char buf[4];
	double dt;

	script(1, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &b);
	dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(dt < 3.0); /* the deadline holds */
	assert_true(served() >= 2);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_not_found_no_retry(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];

	script(1, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), -ENOENT);
	assert_int_equal(served(), 1);
	http_resp_free(&r);
	script(1, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), -EACCES);
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_if_match_412(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];

	script(1, "HTTP/1.1 412 Precondition Failed\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(get_range(p, 0, 4, buf, &r, "\"v1\""), -ESTALE);
	assert_non_null(strstr(S.last_req, "\r\nIf-Match: \"v1\"\r\n"));
	assert_true(req_well_framed(S.last_req));
	http_resp_free(&r);
	http_pool_free(p);
}

/*
 * A pooled handle keeps the options every request shares and sets the
 * rest per request: nothing one request set (a method, a range, headers,
 * signing material) reaches the next one on the same handle.
 */
static void test_options_per_request(void **state)
{
	struct http_pool *p = pool(3000);
	struct curl_slist *extra = curl_slist_append(NULL, "X-Test: 1");
	struct http_req q = { .sink = HTTP_SINK_NONE };
	struct http_resp r;
	char url[64], buf[4];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/obj", S.port);
	/* A signed HEAD with a header of its own. */
	script(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n");
	q.url = url;
	q.head = true;
	q.headers = extra;
	q.aws_sigv4 = "aws:amz:us-east-1:s3";
	q.userpwd = "AKIDEXAMPLE:secret";
	assert_int_equal(http_perform(p, &q, &r), 0);
	http_resp_free(&r);
	assert_non_null(strstr(S.last_req, "HEAD /obj"));
	assert_non_null(strstr(S.last_req, "X-Test: 1"));
	assert_non_null(strstr(S.last_req, "Authorization: AWS4-HMAC-SHA256"));
	/* Then a plain ranged GET, with If-Match. */
	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
		  "Content-Length: 4\r\n\r\nabcd");
	assert_int_equal(get_range(p, 0, 4, buf, &r, "\"v1\""), 0);
	http_resp_free(&r);
	assert_non_null(strstr(S.last_req, "GET /obj"));
	assert_non_null(strstr(S.last_req, "Range: bytes=0-3"));
	assert_null(strstr(S.last_req, "X-Test"));
	assert_null(strstr(S.last_req, "Authorization"));
	assert_null(strstr(S.last_req, "AKIDEXAMPLE"));
	/* Then a whole GET: no range, no If-Match left over. */
	script(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd");
	memset(&q, 0, sizeof(q));
	q.url = url;
	q.sink = HTTP_SINK_GROW;
	q.cap = 100;
	assert_int_equal(http_perform(p, &q, &r), 0);
	assert_int_equal(r.body_len, 4);
	http_resp_free(&r);
	assert_non_null(strstr(S.last_req, "GET /obj"));
	assert_null(strstr(S.last_req, "Range:"));
	assert_null(strstr(S.last_req, "If-Match"));
	assert_null(strstr(S.last_req, "Authorization"));
	assert_int_equal(served(), 1);
	curl_slist_free_all(extra);
	http_pool_free(p);
	(void)state;
}

/* A 206 of "abcd" (bytes 0-3 of 4) after lines padding headers of about
 * lines x 100 bytes, into ans[cap]. */
static const char *padded_answer(char *ans, size_t cap, int lines)
{
	size_t n;
	int i;

	n = (size_t)snprintf(ans, cap, "HTTP/1.1 206 Partial Content\r\n");
	for (i = 0; i < lines; i++)
		n += (size_t)snprintf(ans + n, cap - n, "X-Pad-%d: %080d\r\n",
				      i, i);
	snprintf(ans + n, cap - n,
		 "Content-Range: bytes 0-3/4\r\nContent-Length: 4\r\n\r\nabcd");
	return ans;
}

static void test_huge_headers(void **state)
{
	static char ans[128 * 1024];
	struct http_pool *p = pool(2000);
	struct http_resp r;
	char buf[4];

	script(1, padded_answer(ans, sizeof(ans), 1000));
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), -EIO);
	print_message("huge headers: %s\n", r.error);
	assert_non_null(strstr(r.error, "headers"));
	http_resp_free(&r);
	http_pool_free(p);
}

static void test_connection_refused(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 800,
				    .connect_timeout_ms = 300 };
	struct http_req q = { .head = true };
	struct http_pool *p;
	struct http_resp r;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char url[64];
	int err;

	/* A port that was just free: bound, never listened on. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &len);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	assert_int_equal(http_pool_new(&o, &p), 0);
	q.url = url;
	err = http_perform(p, &q, &r);
	assert_true(err == -ECONNREFUSED || err == -EIO ||
		    err == -ETIMEDOUT);
	assert_true(r.error[0] != '\0');
	http_resp_free(&r);
	http_pool_free(p);
	close(fd);
}

/*
 * A second server for the transfer loop's bounds: every connection gets
 * its own thread, which answers each request on it after hold_ms (or
 * never, with stall) and counts the connections open at once.
 */
struct hold_srv {
	int fd, port;
	pthread_t th;
	pthread_mutex_t lock;
	int open, max_open, requests; /* under lock */
	int hold_ms;
	bool stall;
	/* When set, request i gets answer[i] (the last one repeats), its
	 * headers split_ms before its body; else the 10-byte 206 below. */
	const char *answer[4];
	size_t answer_len[4];
	int nanswers;
	int split_ms;
};

static struct hold_srv H;

/* All of [a, a + len) to c; false if the client has gone. */
static bool write_all(int c, const char *a, size_t len)
{
	while (len) {
		ssize_t n = write(c, a, len);

		if (n <= 0)
			return false;
		a += n;
		len -= (size_t)n;
	}
	return true;
}

/* Answer i of H's script to c, split as the script says. */
static bool hold_answer(int c, int i)
{
	int k = i < H.nanswers ? i : H.nanswers - 1;
	const char *a = H.answer[k];
	size_t len = H.answer_len[k];
	const char *body = strstr(a, "\r\n\r\n");
	size_t head = body ? (size_t)(body + 4 - a) : len;

	if (!H.split_ms)
		return write_all(c, a, len);
	if (!write_all(c, a, head))
		return false;
	usleep((useconds_t)H.split_ms * 1000);
	return write_all(c, a + head, len - head);
}

static void *hold_conn(void *arg)
{
	int c = (int)(intptr_t)arg;
	const char ans[] = "HTTP/1.1 206 Partial Content\r\n"
			   "Content-Range: bytes 0-9/100\r\n"
			   "Content-Length: 10\r\n\r\n0123456789";
	char req[4096];
	size_t got = 0;

	for (;;) {
		ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
		char *end;
		int i;

		if (n <= 0)
			break;
		got += (size_t)n;
		req[got] = '\0';
		end = strstr(req, "\r\n\r\n");
		if (!end)
			continue;
		pthread_mutex_lock(&H.lock);
		i = H.requests++;
		pthread_mutex_unlock(&H.lock);
		if (H.stall)
			continue; /* read on until the client hangs up */
		usleep((useconds_t)H.hold_ms * 1000);
		if (H.nanswers ? !hold_answer(c, i) :
				 !write_all(c, ans, sizeof(ans) - 1))
			break;
		got = 0;
	}
	pthread_mutex_lock(&H.lock);
	H.open--;
	pthread_mutex_unlock(&H.lock);
	close(c);
	return NULL;
}

static void *hold_main(void *arg)
{
	for (;;) {
		int c = accept(H.fd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			return NULL;
		pthread_mutex_lock(&H.lock);
		H.open++;
		if (H.open > H.max_open)
			H.max_open = H.open;
		pthread_mutex_unlock(&H.lock);
		if (pthread_create(&t, NULL, hold_conn, (void *)(intptr_t)c)) {
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}

static void hold_start(int hold_ms, bool stall)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	memset(&H, 0, sizeof(H));
	pthread_mutex_init(&H.lock, NULL);
	H.hold_ms = hold_ms;
	H.stall = stall;
	H.fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(H.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(H.fd, 64), 0);
	getsockname(H.fd, (struct sockaddr *)&a, &len);
	H.port = ntohs(a.sin_port);
	pthread_create(&H.th, NULL, hold_main, NULL);
}

/*
 * Stop accepting, and wait (up to 10 s) for the connection threads, which
 * end when their clients hang up: the next hold_start clears H.
 */
static void hold_stop(void)
{
	int i, open = 1;

	shutdown(H.fd, SHUT_RDWR);
	pthread_join(H.th, NULL);
	close(H.fd);
	for (i = 0; i < 1000 && open; i++) {
		pthread_mutex_lock(&H.lock);
		open = H.open;
		pthread_mutex_unlock(&H.lock);
		if (open)
			usleep(10000);
	}
	assert_int_equal(open, 0);
}

struct getter {
	struct http_pool *p;
	int n; /* requests to make */
	int ok; /* answered correctly */
	int err; /* the last error */
	struct cancel *cx; /* the thread's token, or NULL */
};

static void *getter_main(void *arg)
{
	struct getter *g = arg;
	char url[64];
	int i;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/obj", H.port);
	cancel_set_current(g->cx);
	for (i = 0; i < g->n; i++) {
		struct http_req q = { .url = url, .sink = HTTP_SINK_FIXED,
				      .range_len = 10, .cap = 10 };
		struct http_resp r;
		char buf[10];

		q.buf = buf;
		g->err = http_perform(g->p, &q, &r);
		if (!g->err && !memcmp(buf, "0123456789", 10))
			g->ok++;
		http_resp_free(&r);
	}
	return NULL;
}

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Eight threads at once through a pool of two connections: never more
 * than two open, and every request answered. */
static void test_connection_bound(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 20000,
				    .connect_timeout_ms = 1000,
				    .max_connections = 2 };
	struct getter g[8];
	pthread_t t[8];
	int i;

	hold_start(30, false);
	assert_int_equal(http_pool_new(&o, &g[0].p), 0);
	for (i = 0; i < 8; i++) {
		g[i] = (struct getter){ .p = g[0].p, .n = 3 };
		pthread_create(&t[i], NULL, getter_main, &g[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(g[i].ok, 3);
	}
	http_pool_free(g[0].p);
	hold_stop();
	assert_int_equal(H.requests, 24);
	assert_true(H.max_open >= 1 && H.max_open <= 2);
}

/*
 * A transfer the origin never answers ends at once when the pool is
 * aborted (the daemon stopping): the loop ends it, not its 20 s timeout.
 * So does a reader's own request when its token fires, woken by it.
 */
static void test_stalled_abort_and_cancel(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 20000,
				    .connect_timeout_ms = 1000 };
	struct cancel cx;
	struct getter g = { .n = 1 }, gc = { .n = 1 };
	pthread_t t, tc;
	double t0;

	hold_start(0, true);
	cancel_init(&cx);
	assert_int_equal(http_pool_new(&o, &g.p), 0);
	gc.p = g.p;
	gc.cx = &cx;
	pthread_create(&tc, NULL, getter_main, &gc);
	pthread_create(&t, NULL, getter_main, &g);
	/* Both requests reach the server, then nothing comes back. */
	for (t0 = mono_ms(); mono_ms() - t0 < 5000;) {
		int n;

		pthread_mutex_lock(&H.lock);
		n = H.requests;
		pthread_mutex_unlock(&H.lock);
		if (n == 2)
			break;
		usleep(10000);
	}
	assert_int_equal(H.requests, 2);
	/*
	 * Long enough for the reader's wait to sleep in slices of 250 ms:
	 * only a wake from the token ends it well before its slice does
	 * (a lost wake took 150 ms or more here, a wake under 1 ms).
	 */
	usleep(600 * 1000);
	t0 = mono_ms();
	cancel_fire(&cx);
	pthread_join(tc, NULL);
	assert_int_equal(gc.err, -EINTR);
	printf("the reader's own request ended %.1f ms after its token "
	       "fired\n",
	       mono_ms() - t0);
	assert_true(mono_ms() - t0 < 100);
	t0 = mono_ms();
	http_pool_abort(g.p);
	pthread_join(t, NULL);
	assert_int_equal(g.err, -ECANCELED);
	assert_true(mono_ms() - t0 < 2000);
	http_pool_free(g.p);
	cancel_destroy(&cx);
	hold_stop();
}

/*
 * Answers the lean path leaves to libcurl (a chunked body, a redirect,
 * headers over its 16 KiB): the request is made again through libcurl,
 * which gets them right.
 */
static void test_lean_declines(void **state)
{
	static char big[32 * 1024];
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char loc[128], buf[4];

	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(served(), 2);
	http_resp_free(&r);

	snprintf(loc, sizeof(loc),
		 "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/other\r\n"
		 "Content-Length: 0\r\n\r\n", S.port);
	script(3, loc, loc,
	       "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
	       "Content-Length: 4\r\n\r\nefgh");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "efgh", 4);
	assert_non_null(strstr(S.last_req, "GET /other"));
	http_resp_free(&r);

	/* About 20 KiB of headers. */
	script(1, padded_answer(big, sizeof(big), 200));
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(served(), 2);
	http_resp_free(&r);
	http_pool_free(p);
}

/* An HTTP/1.0 answer is framed as well (its connection then ends). */
static void test_lean_http10(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];

	script(1, "HTTP/1.0 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
		  "Content-Length: 4\r\n\r\nabcd");
	assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(served(), 1);
	http_resp_free(&r);
	http_pool_free(p);
}

/* An origin whose every answer goes back to libcurl (always chunked)
 * costs two requests a read three times, then one: the lean path gives
 * up on it. */
static void test_lean_gives_up(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];
	int i;

	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
	for (i = 0; i < 5; i++) {
		assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
		assert_memory_equal(buf, "abcd", 4);
		http_resp_free(&r);
	}
	assert_int_equal(served(), 3 * 2 + 2);
	http_pool_free(p);
}

/*
 * The scripted server closes every connection after its answer: the next
 * request finds its kept-alive connection gone and opens another, without
 * an error and without asking twice.
 */
static void test_lean_closed_keepalive(void **state)
{
	struct http_pool *p = pool(3000);
	struct http_resp r;
	char buf[4];
	int i;

	script(1, "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\n"
		  "Content-Length: 4\r\n\r\nabcd");
	for (i = 0; i < 3; i++) {
		memset(buf, 0, sizeof(buf));
		assert_int_equal(get_range(p, 0, 4, buf, &r, NULL), 0);
		assert_memory_equal(buf, "abcd", 4);
		http_resp_free(&r);
	}
	assert_int_equal(served(), 3);
	http_pool_free(p);
}

/* A server that keeps connections open: a reader's requests all go over
 * one, kept alive between them. */
static void test_lean_keepalive(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 5000,
				    .connect_timeout_ms = 1000 };
	struct getter g = { .n = 20, .cx = &lean_cx };
	pthread_t t;

	hold_start(0, false);
	assert_int_equal(http_pool_new(&o, &g.p), 0);
	pthread_create(&t, NULL, getter_main, &g);
	pthread_join(t, NULL);
	assert_int_equal(g.ok, 20);
	http_pool_free(g.p);
	hold_stop();
	assert_int_equal(H.requests, 20);
	assert_int_equal(H.max_open, 1);
}

/*
 * Six readers at once open six connections; once they are done, no more
 * stay open than the pool's bound on connections (2 here).
 */
static void test_lean_idle_bound(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 5000,
				    .connect_timeout_ms = 1000,
				    .max_connections = 2 };
	struct cancel cx[6];
	struct getter g[6];
	pthread_t t[6];
	double t0;
	int i, open = -1;

	hold_start(50, false);
	assert_int_equal(http_pool_new(&o, &g[0].p), 0);
	for (i = 0; i < 6; i++) {
		cancel_init(&cx[i]);
		g[i] = (struct getter){ .p = g[0].p, .n = 2, .cx = &cx[i] };
		pthread_create(&t[i], NULL, getter_main, &g[i]);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(g[i].ok, 2);
	}
	for (t0 = mono_ms(); mono_ms() - t0 < 3000;) {
		pthread_mutex_lock(&H.lock);
		open = H.open;
		pthread_mutex_unlock(&H.lock);
		if (open <= 2)
			break;
		usleep(10000);
	}
	assert_true(H.max_open > 2); /* they did run at once */
	assert_true(open >= 1 && open <= 2);
	http_pool_free(g[0].p);
	for (i = 0; i < 6; i++)
		cancel_destroy(&cx[i]);
	hold_stop();
}

/*
 * A reader's wait asks the kernel to wake it only once the bytes it asked
 * for are in (SO_RCVLOWAT). Answers shorter than that, from a server that
 * keeps the connection open, must still come back at once rather than at
 * the timeout: a 404 with a body, a 412 without one. Then a whole answer
 * whose headers come 20 ms before its body, on the same connection.
 */
static void test_lean_short_answers(void **state)
{
	enum { LEN = 20000 }; /* more than one low-water mark's worth */
	struct http_pool_opts o = { .timeout_ms = 5000,
				    .connect_timeout_ms = 1000 };
	struct http_req q = { .sink = HTTP_SINK_FIXED, .range_len = LEN,
			      .cap = LEN };
	char *ok = malloc(LEN + 128), *buf = malloc(LEN), url[64];
	int hlen, i, err[3];
	double t0, ms[3];
	struct http_pool *p;
	struct http_resp r;

	assert_non_null(ok);
	assert_non_null(buf);
	hlen = snprintf(ok, 128,
			"HTTP/1.1 206 Partial Content\r\n"
			"Content-Range: bytes 0-%d/%d\r\n"
			"Content-Length: %d\r\n\r\n",
			LEN - 1, LEN, LEN);
	for (i = 0; i < LEN; i++)
		ok[hlen + i] = (char)('a' + i % 26);
	hold_start(0, false);
	H.answer[0] = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n"
		      "not found";
	H.answer[1] = "HTTP/1.1 412 Precondition Failed\r\n"
		      "Content-Length: 0\r\n\r\n";
	H.answer[2] = ok;
	for (i = 0; i < 2; i++)
		H.answer_len[i] = strlen(H.answer[i]);
	H.answer_len[2] = (size_t)hlen + LEN;
	H.nanswers = 3;
	H.split_ms = 20;
	assert_int_equal(http_pool_new(&o, &p), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/obj", H.port);
	q.url = url;
	q.buf = buf;
	q.if_match = "\"v1\"";
	cancel_set_current(&lean_cx);
	for (i = 0; i < 3; i++) {
		memset(buf, 0, LEN);
		t0 = mono_ms();
		err[i] = http_perform(p, &q, &r);
		ms[i] = mono_ms() - t0;
		http_resp_free(&r);
	}
	cancel_set_current(NULL);
	assert_int_equal(err[0], -ENOENT);
	assert_int_equal(err[1], -ESTALE);
	assert_int_equal(err[2], 0);
	assert_memory_equal(buf, ok + hlen, LEN);
	/* Not the 5 s timeout: the split costs its 20 ms and a few more. */
	for (i = 0; i < 3; i++)
		assert_true(ms[i] < 1000);
	http_pool_free(p);
	hold_stop();
	assert_int_equal(H.requests, 3);
	assert_int_equal(H.max_open, 1);
	free(ok);
	free(buf);
}

/* Header lines ended by a bare LF, on a connection the server keeps: the
 * lean path gives the answer to libcurl at once instead of waiting for a
 * CRLF CRLF that never comes. */
static void test_lean_bare_lf(void **state)
{
	struct http_pool_opts o = { .timeout_ms = 5000,
				    .connect_timeout_ms = 1000 };
	struct http_req q = { .sink = HTTP_SINK_FIXED, .range_off = 100,
			      .range_len = 10, .cap = 10 };
	char buf[10], url[64];
	struct http_pool *p;
	struct http_resp r;
	double t0, ms;
	int err;

	hold_start(0, false);
	H.answer[0] = "HTTP/1.1 206 Partial Content\n"
		      "Content-Range: bytes 100-109/1000\n"
		      "Content-Length: 10\n\n0123456789";
	H.answer_len[0] = strlen(H.answer[0]);
	H.nanswers = 1;
	assert_int_equal(http_pool_new(&o, &p), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/obj", H.port);
	q.url = url;
	q.buf = buf;
	cancel_set_current(&lean_cx);
	t0 = mono_ms();
	err = http_perform(p, &q, &r);
	ms = mono_ms() - t0;
	cancel_set_current(NULL);
	assert_int_equal(err, 0);
	assert_memory_equal(buf, "0123456789", 10);
	assert_true(ms < 1000);
	http_resp_free(&r);
	http_pool_free(p);
	hold_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_map),
		cmocka_unit_test(test_parse_date),
		cmocka_unit_test(test_parse_date_vs_libc),
		cmocka_unit_test(test_range_ok),
		cmocka_unit_test(test_range_ignored),
		cmocka_unit_test(test_whole_object_200_ok),
		cmocka_unit_test(test_empty_200),
		cmocka_unit_test(test_other_2xx),
		cmocka_unit_test(test_etag_too_long),
		cmocka_unit_test(test_short_body),
		cmocka_unit_test(test_wrong_content_range),
		cmocka_unit_test(test_unsatisfied_length),
		cmocka_unit_test(test_long_body),
		cmocka_unit_test(test_retry_503),
		cmocka_unit_test(test_persistent_503_bounded),
		cmocka_unit_test(test_not_found_no_retry),
		cmocka_unit_test(test_if_match_412),
		cmocka_unit_test(test_options_per_request),
		cmocka_unit_test(test_huge_headers),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_connection_bound),
		cmocka_unit_test(test_stalled_abort_and_cancel),
	};

	const struct CMUnitTest lean[] = {
		cmocka_unit_test(test_range_ok),
		cmocka_unit_test(test_range_ignored),
		cmocka_unit_test(test_whole_object_200_ok),
		cmocka_unit_test(test_empty_200),
		cmocka_unit_test(test_other_2xx),
		cmocka_unit_test(test_etag_too_long),
		cmocka_unit_test(test_short_body),
		cmocka_unit_test(test_wrong_content_range),
		cmocka_unit_test(test_unsatisfied_length),
		cmocka_unit_test(test_long_body),
		cmocka_unit_test(test_retry_503),
		cmocka_unit_test(test_persistent_503_bounded),
		cmocka_unit_test(test_not_found_no_retry),
		cmocka_unit_test(test_if_match_412),
		cmocka_unit_test(test_huge_headers),
		cmocka_unit_test(test_lean_declines),
		cmocka_unit_test(test_lean_http10),
		cmocka_unit_test(test_lean_gives_up),
		cmocka_unit_test(test_lean_closed_keepalive),
		cmocka_unit_test(test_lean_keepalive),
		cmocka_unit_test(test_lean_idle_bound),
		cmocka_unit_test(test_lean_short_answers),
		cmocka_unit_test(test_lean_bare_lf),
	};
	int failed;

	failed = cmocka_run_group_tests_name("loop", tests, srv_setup,
					     srv_teardown);
	cancel_init(&lean_cx);
	T_CX = &lean_cx;
	failed += cmocka_run_group_tests_name("lean", lean, srv_setup,
					      srv_teardown);
	cancel_destroy(&lean_cx);
	return failed;
}
