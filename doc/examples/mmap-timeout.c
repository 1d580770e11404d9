/*
 * mmap-timeout: bound how long a read from an mmap'ed file may wait for a
 * page, with a per-thread SIGALRM timer and sigsetjmp/siglongjmp. A pattern
 * to copy: mmap_read_timeout() below is self-contained.
 *
 * Why it works only with cofault's device path: a fault on a page of a FUSE
 * file that the daemon is still fetching waits in the kernel, and with plain
 * mmap(2) that wait is killable or uninterruptible, so the SIGALRM handler
 * runs only once the page has arrived (seconds late, on a stalled origin).
 * Through /dev/cofault (cofault_mmap(), or "cofault run" for unmodified
 * programs) the wait is interruptible: the handler runs on time, jumps out,
 * and the fetch goes on in the background, so a later read finds the page.
 *
 * Rules for the pattern: only jump out of code that holds no locks and
 * leaves nothing half-updated (a memcpy from the mapping is fine; malloc,
 * stdio or a lock-holding library call is not); arm the timer after
 * sigsetjmp and disarm it on both paths; sigsetjmp(env, 1) so the jump also
 * unblocks SIGALRM again.
 *
 * Build: cc -o mmap-timeout mmap-timeout.c $(pkg-config --cflags --libs
 * libcofault) Usage: mmap-timeout [-m cofault|mmap] [-t MS] [-n LEN] FILE
 * [OFFSET] Prints "how=H result=ok|timeout elapsed_ms=E late_ms=L fnv=F": L is
 * how long after the deadline control came back (0 when the data came first).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cofault.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Per thread: each thread that reads with a timeout has its own. */
static __thread sigjmp_buf timeout_env;
static __thread volatile sig_atomic_t timeout_armed;

static void timeout_on_alarm(int sig)
{
	(void)sig;
	/* A stray or late signal after the read finished: ignore it. */
	if (timeout_armed)
		siglongjmp(timeout_env, 1);
}

/* Once per process: SIGALRM jumps back into mmap_read_timeout(). */
static int timeout_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = timeout_on_alarm;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGALRM, &sa, NULL);
}

/*
 * Copy len bytes of a mapping to dst, giving up after timeout_ms. Returns 0,
 * or -ETIMEDOUT (dst partly written), or -errno if the timer failed. The
 * timer signals this thread only (SIGEV_THREAD_ID), so other threads of a
 * multithreaded program are never interrupted.
 */
static int mmap_read_timeout(void *dst, const void *src, size_t len,
			     unsigned int timeout_ms)
{
	struct sigevent sev;
	struct itimerspec its;
	timer_t timer;
	int err = 0;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGALRM;
	sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0)
		return -errno;
	if (sigsetjmp(timeout_env, 1)) {
		/* The handler jumped here: the read did not finish in time. */
		err = -ETIMEDOUT;
		goto out_delete;
	}
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = timeout_ms / 1000;
	its.it_value.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	timeout_armed = 1;
	if (timer_settime(timer, 0, &its, NULL) < 0) {
		err = -errno;
		goto out_delete;
	}
	/* The faults happen here; a signal interrupts the wait for a page. */
	memcpy(dst, src, len);
out_delete:
	timeout_armed = 0;
	timer_delete(timer); /* disarms it too */
	return err;
}

static double timeout_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void timeout_usage(void)
{
	fprintf(stderr, "usage: mmap-timeout [-m cofault|mmap] [-t MS] "
			"[-n LEN] FILE [OFFSET]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int timeout_ms = 200;
	size_t len = 4096, map_len;
	int use_cofault = 1, how = COFAULT_HOW_MMAP, c, fd, err;
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *map, *buf;
	off_t off = 0, map_off;
	double t0, elapsed;
	uint64_t h = 0xcbf29ce484222325ULL;
	struct stat st;
	size_t i;

	while ((c = getopt(argc, argv, "m:t:n:")) != -1) {
		switch (c) {
		case 'm':
			if (!strcmp(optarg, "cofault"))
				use_cofault = 1;
			else if (!strcmp(optarg, "mmap"))
				use_cofault = 0;
			else
				timeout_usage();
			break;
		case 't':
			timeout_ms = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			len = (size_t)strtoull(optarg, NULL, 0);
			break;
		default:
			timeout_usage();
		}
	}
	if (optind >= argc || len == 0)
		timeout_usage();
	if (optind + 1 < argc)
		off = (off_t)strtoll(argv[optind + 1], NULL, 0);

	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[optind]);
		return 1;
	}
	if (off < 0 || off >= st.st_size) {
		fprintf(stderr, "offset out of range\n");
		return 2;
	}
	if ((off_t)len > st.st_size - off)
		len = (size_t)(st.st_size - off);
	map_off = off & ~(off_t)(page - 1);
	map_len = len + (size_t)(off - map_off);
	/* With -m mmap under "cofault run", the shim decides instead. */
	if (use_cofault)
		map = cofault_mmap2(NULL, map_len, PROT_READ, MAP_SHARED, fd,
				    map_off, &how);
	else
		map = mmap(NULL, map_len, PROT_READ, MAP_SHARED, fd, map_off);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	buf = malloc(len);
	if (!buf || timeout_install() < 0) {
		perror("setup");
		return 1;
	}

	t0 = timeout_now_ms();
	err = mmap_read_timeout(buf, map + (off - map_off), len, timeout_ms);
	elapsed = timeout_now_ms() - t0;
	if (err && err != -ETIMEDOUT) {
		fprintf(stderr, "timer: %s\n", strerror(-err));
		return 1;
	}
	for (i = 0; !err && i < len; i++) {
		h ^= buf[i];
		h *= 0x100000001b3ULL;
	}
	printf("how=%s result=%s elapsed_ms=%.0f late_ms=%.0f fnv=%016" PRIx64
	       "\n",
	       use_cofault ? cofault_how_name(how) : "mmap()",
	       err ? "timeout" : "ok", elapsed,
	       err && elapsed > timeout_ms ? elapsed - timeout_ms : 0.0,
	       err ? 0 : h);
	munmap(map, map_len);
	free(buf);
	close(fd);
	return err ? 3 : 0;
}
