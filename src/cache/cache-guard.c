/*
 * Reading a cache file through a mapping without dying of it. A page of a
 * mapped file that the kernel cannot read (a disk error, a file cut short
 * under the mapping) is a SIGBUS at the instruction that touches it, and by
 * default that ends the daemon and every mount it serves. The zero-copy
 * hold (cache-hold.c) checksums its chunk through a mapping, so that one
 * bad sector would cost every reader; here the touch runs under a SIGBUS
 * handler that, for a fault inside the range this thread is reading, jumps
 * back and answers -EIO, which the caller treats as a chunk it cannot read.
 *
 * Any other SIGBUS goes to the handler that was there before, or to the
 * default action. cache_open installs the handler (cache_guard_install);
 * until then cache_guarded_crc32c answers -EAGAIN and holds are not taken.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cache/cache-int.h"

/* The range one thread is reading; only that thread and the SIGBUS
 * handler running on it touch it. */
struct guard {
	sigjmp_buf env;
	const char *lo, *hi;
	volatile sig_atomic_t armed;
};

static __thread struct guard guard;

/* Installing the handler, guard_prev and guard_on: written under
 * guard_lock, guard_prev before the handler that reads it is installed. */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction guard_prev;
static bool guard_on; /* atomic reads */

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
	struct guard *g = &guard;
	const char *a = si->si_addr;

	/* si_code > 0: raised by a fault, so si_addr means something. */
	if (g->armed && si->si_code > 0 && a >= g->lo && a < g->hi) {
		g->armed = 0;
		siglongjmp(g->env, 1);
	}
	if (guard_prev.sa_flags & SA_SIGINFO) {
		guard_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (guard_prev.sa_handler != SIG_DFL &&
	    guard_prev.sa_handler != SIG_IGN) {
		guard_prev.sa_handler(sig);
		return;
	}
	/* Ignored before: a sent one stays ignored (a fault cannot be). */
	if (guard_prev.sa_handler == SIG_IGN && si->si_code <= 0)
		return;
	/* The default action, as if this handler had never been there: a
	 * faulting instruction would fault again on return, a sent signal
	 * is raised again (blocked here, delivered on return). */
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

int cache_guard_install(void)
{
	struct sigaction cur, sa;
	int err = 0;

	pthread_mutex_lock(&guard_lock);
	if (sigaction(SIGBUS, NULL, &cur)) {
		err = -errno;
		goto out;
	}
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == guard_handler)
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	guard_prev = cur;
	if (sigaction(SIGBUS, &sa, NULL))
		err = -errno;
	else
		__atomic_store_n(&guard_on, true, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&guard_lock);
	return err;
}

int cache_guarded_crc32c(const void *p, size_t len, uint32_t *crc)
{
	struct guard *g = &guard;

	/* Unguarded, a bad page would end the process: the caller reads
	 * the chunk another way. */
	if (!__atomic_load_n(&guard_on, __ATOMIC_ACQUIRE))
		return -EAGAIN;
	g->lo = p;
	g->hi = (const char *)p + len;
	/* savemask: the jump leaves the handler, whose entry blocked
	 * SIGBUS; the thread's mask must be what it was here. */
	if (sigsetjmp(g->env, 1))
		return -EIO;
	g->armed = 1;
	atomic_signal_fence(memory_order_seq_cst);
	*crc = cache_crc32c(0, p, len);
	atomic_signal_fence(memory_order_seq_cst);
	g->armed = 0;
	return 0;
}
