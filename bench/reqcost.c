/*
 * reqcost: what one small ranged GET costs a client of an HTTP origin, by
 * four clients in one run, so the difference is the client's own:
 *
 *   bare     HTTP/1.1 written and parsed by hand on one kept-alive socket
 *            (what a client without an HTTP library, such as httpfs2, pays)
 *   libcurl  curl_easy_perform on one reused handle, Range set per request
 *            (the floor of a libcurl transfer, which cofault's transfer
 *            loop and fetch threads use)
 *   cofault  cofault's own client (http_perform) on this thread with a
 *            cancel token, the way a reader fetches its own small read:
 *            the lean path (a connection libcurl opened, the request and
 *            the answer's framing by cofault), its answer checks, pooled
 *            handles, interruptible wait
 *   idle     libcurl again, each request after the connection sat idle for
 *            a second: the wake-up cost a first read after a pause pays
 *
 * Offsets are random and 4 KiB aligned (seeded, the same for every client).
 * Every answer's bytes are compared with the local copy of the file.
 *
 *   reqcost URL PORT LOCAL_FILE [N [BYTES]]
 *
 * URL is the file on a plain-http origin on 127.0.0.1:PORT. Prints one
 * line per client: microseconds per request (median and mean) and the
 * number of wrong answers; exits 1 when there was any.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cancel.h"
#include "store/http.h"

#define REQ_IDLE_N 5	      /* requests after an idle second */
#define REQ_HDR_MAX 4096      /* bare client: room for the answer's headers */

struct body {
	char *buf;
	size_t len, cap;
};

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static size_t body_cb(char *p, size_t size, size_t n, void *user)
{
	struct body *b = user;
	size_t len = size * n;

	if (b->len + len > b->cap)
		return 0; /* more than asked for: a wrong answer */
	memcpy(b->buf + b->len, p, len);
	b->len += len;
	return len;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void report(const char *name, double *us, size_t n, unsigned bad)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		sum += us[i];
	qsort(us, n, sizeof(*us), cmp_double);
	printf("%-8s %8.1f us median %8.1f us mean  %zu requests, %u wrong\n",
	       name, us[n / 2], sum / (double)n, n, bad);
}

/* Compare an answer with the local file's bytes at off. */
static int check(int fd, uint64_t off, const char *got, size_t len,
		 char *want)
{
	return pread(fd, want, len, (off_t)off) != (ssize_t)len ||
	       memcmp(got, want, len) != 0;
}

static int bare_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -errno;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -errno;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/*
 * One GET of [off, off + len) on the kept-alive socket s; the body goes to
 * out. Returns 0, or -1 on a malformed or short answer.
 */
static int bare_get(int s, const char *path, uint64_t off, size_t len,
		    char *out, char *hdr)
{
	char req[1024];
	size_t got = 0, body = 0;
	char *end = NULL, *cl;
	int n;

	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Range: bytes=%llu-%llu\r\n\r\n",
		     path, (unsigned long long)off,
		     (unsigned long long)(off + len - 1));
	if (write(s, req, (size_t)n) != n)
		return -1;
	/* Headers first, then exactly the body the length announces. */
	while (!end) {
		ssize_t k = read(s, hdr + got, REQ_HDR_MAX - 1 - got);

		if (k <= 0)
			return -1;
		got += (size_t)k;
		hdr[got] = '\0';
		end = strstr(hdr, "\r\n\r\n");
		if (!end && got == REQ_HDR_MAX - 1)
			return -1;
	}
	cl = strcasestr(hdr, "\r\nContent-Length:");
	if (strncmp(hdr, "HTTP/1.1 206", 12) || !cl || cl > end ||
	    strtoull(cl + 17, NULL, 10) != len)
		return -1;
	body = got - (size_t)(end + 4 - hdr);
	if (body > len)
		return -1;
	memcpy(out, end + 4, body);
	while (body < len) {
		ssize_t k = read(s, out + body, len - body);

		if (k <= 0)
			return -1;
		body += (size_t)k;
	}
	return 0;
}

static int curl_get(CURL *h, struct body *b, uint64_t off, size_t len)
{
	char range[64];
	long status = 0;

	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	b->len = 0;
	curl_easy_setopt(h, CURLOPT_RANGE, range);
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return status == 206 && b->len == len ? 0 : -1;
}

/*
 * n libcurl GETs at offs on h, each after an idle second when idle; times
 * in us, one report line as name. Returns the wrong answers, -1 when a
 * request failed.
 */
static int curl_series(CURL *h, struct body *b, const uint64_t *offs,
		       size_t n, bool idle, int fd, char *want, double *us,
		       const char *name)
{
	unsigned int bad = 0;
	size_t i;
	double t0;

	for (i = 0; i < n; i++) {
		if (idle)
			sleep(1);
		t0 = now_us();
		if (curl_get(h, b, offs[i], b->cap)) {
			fprintf(stderr, "reqcost: libcurl request failed\n");
			return -1;
		}
		us[i] = now_us() - t0;
		bad += (unsigned int)check(fd, offs[i], b->buf, b->cap, want);
	}
	report(name, us, n, bad);
	return (int)bad;
}

/*
 * n GETs at offs by cofault's client, on this thread with a cancel token
 * (http_run_here, the path of a reader's own small read); times in us.
 * Returns the wrong answers, -1 when a request failed.
 */
static int cofault_series(const char *url, const uint64_t *offs, size_t n,
			  char *buf, size_t len, int fd, char *want, double *us)
{
	struct http_pool_opts o = { .timeout_ms = 30000,
				    .connect_timeout_ms = 5000,
				    .max_connections = 4 };
	struct http_pool *p;
	struct cancel cx;
	unsigned int bad = 0;
	int err = 0;
	size_t i;

	if (http_pool_new(&o, &p))
		return -1;
	cancel_init(&cx);
	cancel_set_current(&cx);
	for (i = 0; i < n && !err; i++) {
		struct http_req q = { .url = url,
				      .range_off = offs[i],
				      .range_len = len,
				      .sink = HTTP_SINK_FIXED,
				      .buf = buf,
				      .cap = len };
		struct http_resp r = { 0 };
		double t0 = now_us();

		err = http_perform(p, &q, &r);
		us[i] = now_us() - t0;
		if (err)
			fprintf(stderr, "reqcost: cofault's client: %s\n",
				r.error);
		else
			bad += (unsigned int)check(fd, offs[i], buf, len, want);
		http_resp_free(&r);
	}
	cancel_set_current(NULL);
	cancel_destroy(&cx);
	http_pool_free(p);
	if (err)
		return -1;
	report("cofault", us, n, bad);
	return (int)bad;
}

int main(int argc, char **argv)
{
	const char *url, *path;
	size_t n = 4000, len = 4096, i;
	uint64_t *offs, blocks;
	double *us, t0;
	char *buf, *want, *hdr;
	struct body b;
	unsigned int wrong = 0;
	int bad;
	struct stat st;
	int port, fd, s;
	CURL *h;

	if (argc < 4) {
		fprintf(stderr, "usage: reqcost URL PORT LOCAL_FILE [N [BYTES]]\n");
		return 2;
	}
	url = argv[1];
	port = atoi(argv[2]);
	if (argc > 4)
		n = strtoul(argv[4], NULL, 10);
	if (argc > 5)
		len = strtoul(argv[5], NULL, 10);
	path = strstr(url, "://");
	path = path ? strchr(path + 3, '/') : NULL;
	fd = open(argv[3], O_RDONLY);
	if (!path || fd < 0 || fstat(fd, &st) < 0 || !n || !len ||
	    (uint64_t)st.st_size < len) {
		fprintf(stderr, "reqcost: bad arguments\n");
		return 2;
	}
	blocks = ((uint64_t)st.st_size - len) / 4096 + 1;
	offs = calloc(n, sizeof(*offs));
	us = calloc(n, sizeof(*us));
	buf = malloc(len);
	want = malloc(len);
	hdr = malloc(REQ_HDR_MAX);
	if (!offs || !us || !buf || !want || !hdr)
		return 1;
	srand(42);
	for (i = 0; i < n; i++)
		offs[i] = ((uint64_t)rand() % blocks) * 4096;

	s = bare_connect(port);
	if (s < 0) {
		fprintf(stderr, "reqcost: connect: %s\n", strerror(-s));
		return 1;
	}
	for (i = 0, bad = 0; i < n; i++) {
		t0 = now_us();
		if (bare_get(s, path, offs[i], len, buf, hdr)) {
			fprintf(stderr, "reqcost: bad answer from the origin\n");
			return 1;
		}
		us[i] = now_us() - t0;
		bad += check(fd, offs[i], buf, len, want);
	}
	close(s);
	report("bare", us, n, (unsigned int)bad);
	wrong += (unsigned int)bad;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	h = curl_easy_init();
	b = (struct body){ .buf = buf, .cap = len };
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	bad = curl_series(h, &b, offs, n, false, fd, want, us, "libcurl");
	if (bad < 0)
		return 1;
	wrong += (unsigned int)bad;
	bad = cofault_series(url, offs, n, buf, len, fd, want, us);
	if (bad < 0)
		return 1;
	wrong += (unsigned int)bad;
	bad = curl_series(h, &b, offs, n < REQ_IDLE_N ? n : REQ_IDLE_N, true,
			  fd, want, us, "idle");
	if (bad < 0)
		return 1;
	wrong += (unsigned int)bad;
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return wrong ? 1 : 0;
}
