/*
 * intr-read: measure how promptly a signal ends a read() that waits on a
 * slow origin.
 *
 *   intr-read [-r] [-a ALARM_MS] [-m MAX_MS] [-p PERIOD_MS] [-t TIMEOUT_MS]
 *             [-o OFFSET] [-l LENGTH] MOUNTED [ORIGINAL]
 *
 * Installs a SIGALRM handler (with SA_RESTART if -r), arms a one-shot
 * timer of ALARM_MS (default 200) and calls pread() once. Prints what came
 * back and the handler latency: handler entry minus timer expiry, in ms.
 *
 * Without -r: passes (exit 0) if pread() failed with EINTR and the latency
 * is under MAX_MS (default 20). With -r: passes if pread() returned data
 * (a signal may cut it short) equal to ORIGINAL's; exits 3 if it got EINTR
 * anyway, so the caller can tell that case from wrong data (exit 1).
 *
 * With -p PERIOD_MS the timer repeats every PERIOD_MS (as a profiler's
 * does) and pread() is called again after each EINTR or short count, as
 * careful programs do; passes if all the data arrives, right, within
 * -t TIMEOUT_MS (default 15000): a fetch that each interruption cancels
 * would never finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct timespec handler_ts;
static volatile sig_atomic_t handled;

static void on_alarm(int sig)
{
	clock_gettime(CLOCK_MONOTONIC, &handler_ts);
	handled = 1;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1e3 + (b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Compare buf with ORIGINAL at off; 0 if equal, -errno or -EILSEQ. */
static int check_data(const char *orig, off_t off, const char *buf, size_t len)
{
	char *want = malloc(len);
	int fd = open(orig, O_RDONLY), ret = 0;

	if (!want || fd < 0)
		ret = -errno;
	else if (pread(fd, want, len, off) != (ssize_t)len)
		ret = -EIO;
	else if (memcmp(want, buf, len) != 0)
		ret = -EILSEQ;
	if (fd >= 0)
		close(fd);
	free(want);
	return ret;
}

/* The read buffer lives as long as the process: main has many exits,
 * and atexit frees it for all of them (before LeakSanitizer looks). */
static char *read_buf;

static void free_read_buf(void)
{
	free(read_buf);
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	struct itimerval it = {{0, 0}, {0, 0}};
	struct timespec armed, expiry, done;
	long alarm_ms = 200, len = 4096, period_ms = 0, limit_ms = 15000;
	long eintrs = 0;
	double max_ms = 20, lat, took;
	int restart = 0, opt, fd, err;
	off_t off = 0;
	ssize_t n;
	char *buf;

	while ((opt = getopt(argc, argv, "ra:m:o:l:p:t:")) != -1) {
		switch (opt) {
		case 'p':
			period_ms = strtol(optarg, NULL, 10);
			break;
		case 't':
			limit_ms = strtol(optarg, NULL, 10);
			break;
		case 'r':
			restart = 1;
			break;
		case 'a':
			alarm_ms = strtol(optarg, NULL, 10);
			break;
		case 'm':
			max_ms = strtod(optarg, NULL);
			break;
		case 'o':
			off = strtoll(optarg, NULL, 10);
			break;
		case 'l':
			len = strtol(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (optind >= argc || len < 1 || alarm_ms < 1)
		goto usage;
	buf = read_buf = malloc(len);
	atexit(free_read_buf);
	fd = open(argv[optind], O_RDONLY);
	if (!buf || fd < 0) {
		perror("intr-read: open");
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	if (sigaction(SIGALRM, &sa, NULL)) {
		perror("intr-read: sigaction");
		return 1;
	}
	it.it_value.tv_sec = alarm_ms / 1000;
	it.it_value.tv_usec = alarm_ms % 1000 * 1000;
	it.it_interval.tv_sec = period_ms / 1000;
	it.it_interval.tv_usec = period_ms % 1000 * 1000;
	clock_gettime(CLOCK_MONOTONIC, &armed);
	if (setitimer(ITIMER_REAL, &it, NULL)) {
		perror("intr-read: setitimer");
		return 1;
	}
	if (!period_ms) {
		n = pread(fd, buf, len, off);
		err = errno;
		clock_gettime(CLOCK_MONOTONIC, &done);
	} else {
		/* As a careful program reads: on after EINTR and short
		 * counts (a signal may end a read part way), until done. */
		n = 0;
		err = 0;
		for (;;) {
			ssize_t r = pread(fd, buf + n, len - n, off + n);

			err = errno;
			clock_gettime(CLOCK_MONOTONIC, &done);
			if (r > 0)
				n += r;
			else if (r < 0 && err == EINTR)
				eintrs++;
			else if (r < 0) {
				n = -1;
				break;
			}
			if (n == len || r == 0 ||
			    ms_between(&armed, &done) > limit_ms)
				break;
		}
		if (n >= 0 && n < len && err == EINTR)
			n = -1;
	}
	if (period_ms) {
		memset(&it, 0, sizeof(it));
		setitimer(ITIMER_REAL, &it, NULL);
		printf("periodic=%ldms eintr_retries=%ld read_ms=%.3f ",
		       period_ms, eintrs, ms_between(&armed, &done));
		if (n < 0) {
			printf("result=%s\n", strerror(err));
			fprintf(stderr, "intr-read: no data within %ld ms\n",
				limit_ms);
			return 1;
		}
		printf("result=%zd-bytes\n", n);
		if (n != len || (optind + 1 < argc &&
				 check_data(argv[optind + 1], off, buf, len))) {
			fprintf(stderr, "intr-read: WRONG or short data\n");
			return 1;
		}
		return 0;
	}

	expiry = armed;
	expiry.tv_nsec += alarm_ms % 1000 * 1000000L;
	expiry.tv_sec += alarm_ms / 1000 + expiry.tv_nsec / 1000000000L;
	expiry.tv_nsec %= 1000000000L;
	lat = handled ? ms_between(&expiry, &handler_ts) : -1;
	took = ms_between(&armed, &done);

	if (n < 0)
		printf("result=%s", err == EINTR ? "EINTR" : strerror(err));
	else
		printf("result=%zd-bytes", n);
	printf(" handler_latency_ms=%.3f read_ms=%.3f sa_restart=%d\n", lat,
	       took, restart);
	fflush(stdout);

	if (!restart) {
		if (n >= 0 || err != EINTR) {
			fprintf(stderr, "intr-read: want EINTR\n");
			return 1;
		}
		if (!handled || lat >= max_ms) {
			fprintf(stderr, "intr-read: latency %.3f ms >= %.1f\n",
				lat, max_ms);
			return 1;
		}
		return 0;
	}
	if (n < 0 && err == EINTR)
		return 3;
	/* A signal may end a read part way: a short count is fine, as long
	 * as it is not zero and the bytes are right. */
	if (n <= 0) {
		fprintf(stderr, "intr-read: want %ld bytes\n", len);
		return 1;
	}
	if (optind + 1 < argc) {
		int ret = check_data(argv[optind + 1], off, buf, n);

		if (ret) {
			fprintf(stderr, "intr-read: data: %s\n",
				ret == -EILSEQ ? "WRONG DATA" : strerror(-ret));
			return 1;
		}
	}
	return 0;
usage:
	fprintf(stderr, "usage: intr-read [-r] [-a ALARM_MS] [-m MAX_MS] "
			"[-p PERIOD_MS]\n"
			"       [-t TIMEOUT_MS] [-o OFFSET] [-l LENGTH] "
			"MOUNTED [ORIGINAL]\n");
	return 2;
}
