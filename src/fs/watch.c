/*
 * Noticing that a session has ended without polling an idle mount. The
 * session loop returns only once every request is answered, so the thread
 * that runs fs_watch_wait tells the store and the data path to stop
 * waiting (fs.c). A session ends by:
 *  - a signal: libfuse's handler marks it exited, and the handler chained
 *    after it here wakes the watch through an eventfd;
 *  - an unmount: poll(2) on /proc/self/mountinfo reports every change of
 *    the mount table, and libfuse marks the session exited once the
 *    kernel drops the connection;
 *  - a connection aborted through the fuse control file system: no table
 *    changes and no signal comes, and the loop waits for the requests in
 *    flight. So while any request that may wait on the origin is under
 *    way (fs_watch_busy), the watch looks every FS_WATCH_BUSY_MS at the
 *    session and at the device (POLLERR once aborted); with none, it
 *    sleeps, and the next such request wakes it;
 *  - the loop returning for any other reason (fs_watch_end).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fault/mountinfo.h"
#include "fs/watch.h"

static const int watch_signals[] = { SIGTERM, SIGINT, SIGHUP };
#define WATCH_NSIGNALS (sizeof(watch_signals) / sizeof(watch_signals[0]))

/*
 * Written by fs_watch_init before the handlers are installed, read by the
 * handlers afterwards. The eventfd is created once and never closed: a
 * handler running on another thread while fs_watch_fini puts the old ones
 * back could otherwise write into a descriptor reused meanwhile.
 */
static int watch_fd = -1;
static struct sigaction watch_prev[WATCH_NSIGNALS];
static bool watch_chained[WATCH_NSIGNALS];
static int watch_ended; /* atomic: fs_watch_end was called */
/* Atomic, sequentially consistent: requests between fs_watch_busy and
 * fs_watch_idle; whether the watch sleeps without a timeout, which the
 * request that makes watch_busy 1 ends by waking it; and whether such a
 * request came since the watch last looked, which keeps it looking one
 * more slice (one request at a time must not wake it for each). */
static int watch_busy;
static int watch_asleep;
static int watch_recent;

static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static void watch_make_fd(void)
{
	watch_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static void watch_wake(void)
{
	uint64_t one = 1;

	/* Only fails when the count is full: the watch is awake anyway. */
	if (write(watch_fd, &one, sizeof(one)) < 0)
		return;
}

/* Take the wake-ups counted so far (the watch thread only). */
static void watch_drain(void)
{
	uint64_t count;

	/* Only fails when there were none (EAGAIN): nothing to take. */
	if (read(watch_fd, &count, sizeof(count)) < 0)
		return;
}

/* Async-signal-safe: libfuse's handler, then write(2). */
static void watch_on_signal(int sig)
{
	int saved = errno;
	size_t i;

	for (i = 0; i < WATCH_NSIGNALS; i++)
		if (watch_signals[i] == sig && watch_chained[i])
			watch_prev[i].sa_handler(sig);
	watch_wake();
	errno = saved;
}

int fs_watch_init(void)
{
	size_t i;

	pthread_once(&watch_once, watch_make_fd);
	if (watch_fd < 0)
		return -EMFILE;
	__atomic_store_n(&watch_ended, 0, __ATOMIC_RELEASE);
	for (i = 0; i < WATCH_NSIGNALS; i++) {
		struct sigaction sa;

		watch_chained[i] = false;
		if (sigaction(watch_signals[i], NULL, &watch_prev[i]))
			return -errno;
		/*
		 * Only a plain handler (libfuse's) is chained: a signal that
		 * was ignored or left to its default stays so, since then
		 * libfuse does not end the session on it either.
		 */
		if ((watch_prev[i].sa_flags & SA_SIGINFO) ||
		    watch_prev[i].sa_handler == SIG_DFL ||
		    watch_prev[i].sa_handler == SIG_IGN)
			continue;
		sa = watch_prev[i];
		sa.sa_handler = watch_on_signal;
		watch_chained[i] = true;
		if (sigaction(watch_signals[i], &sa, NULL)) {
			int err = -errno;

			watch_chained[i] = false;
			fs_watch_fini();
			return err;
		}
	}
	return 0;
}

void fs_watch_fini(void)
{
	size_t i;

	for (i = 0; i < WATCH_NSIGNALS; i++) {
		struct sigaction cur;

		if (!watch_chained[i])
			continue;
		if (sigaction(watch_signals[i], NULL, &cur) == 0 &&
		    !(cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_handler == watch_on_signal)
			sigaction(watch_signals[i], &watch_prev[i], NULL);
		watch_chained[i] = false;
	}
}

void fs_watch_end(void)
{
	__atomic_store_n(&watch_ended, 1, __ATOMIC_RELEASE);
	if (watch_fd >= 0)
		watch_wake();
}

void fs_watch_busy(void)
{
	if (__atomic_fetch_add(&watch_busy, 1, __ATOMIC_SEQ_CST))
		return;
	/* Read first: the line stays shared while the flag is set. */
	if (!__atomic_load_n(&watch_recent, __ATOMIC_RELAXED))
		__atomic_store_n(&watch_recent, 1, __ATOMIC_SEQ_CST);
	if (__atomic_exchange_n(&watch_asleep, 0, __ATOMIC_SEQ_CST) &&
	    watch_fd >= 0)
		watch_wake();
}

void fs_watch_idle(void)
{
	__atomic_sub_fetch(&watch_busy, 1, __ATOMIC_SEQ_CST);
}

/*
 * May the watch sleep without a timeout? Only with no request under way,
 * and none started during the last slice: a steady stream of requests,
 * even one at a time, costs the watch a wake-up a slice, not one each.
 * Marked asleep before the count is read: a request that starts after the
 * read sees the mark and wakes the watch, one that started before is
 * counted here.
 */
static bool watch_may_sleep(void)
{
	if (__atomic_exchange_n(&watch_recent, 0, __ATOMIC_SEQ_CST))
		return false;
	__atomic_store_n(&watch_asleep, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&watch_busy, __ATOMIC_SEQ_CST))
		return true;
	/* A wake-up a request sent meanwhile is drained later. */
	__atomic_store_n(&watch_asleep, 0, __ATOMIC_SEQ_CST);
	return false;
}

/* Does the mount table (read from the start of fd) still hold dev? */
static bool watch_mounted(int fd, dev_t dev)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return false;
	return fault_mountinfo_find(fd, dev) > 0;
}

/*
 * Was the connection aborted? The kernel answers POLLERR on its device
 * then. libfuse learns it only when a worker reads the device, and with
 * every worker waiting on the origin none does: so the watch looks too.
 */
static bool watch_aborted(struct fuse_session *se)
{
	struct pollfd pf = {.fd = fuse_session_fd(se), .events = 0};

	return pf.fd >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR);
}

void fs_watch_wait(struct fuse_session *se, dev_t dev)
{
	struct pollfd pf[2];
	int mi;

	mi = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	pf[0].fd = watch_fd;
	pf[0].events = POLLIN;
	pf[1].fd = mi;
	pf[1].events = POLLPRI;
	while (!fuse_session_exited(se) &&
	       !__atomic_load_n(&watch_ended, __ATOMIC_ACQUIRE)) {
		/* Mounted and idle: sleep until the table or a signal
		 * changes, or a request starts. */
		int timeout = FS_WATCH_SLICE_MS;

		if (mi >= 0 && watch_mounted(mi, dev))
			timeout = watch_may_sleep() ? -1 : FS_WATCH_BUSY_MS;

		if (poll(pf, mi >= 0 ? 2 : 1, timeout) > 0 &&
		    (pf[0].revents & POLLIN))
			watch_drain();
		if (watch_aborted(se))
			break;
	}
	if (mi >= 0)
		close(mi);
}
