/*
 * The watch for the end of a mount's session: readers waiting on the
 * origin must be answered as soon as the mount goes away or a signal asks
 * the daemon to stop, and an idle mount must not wake for it. One session
 * at a time per process.
 */
#ifndef FS_WATCH_H
#define FS_WATCH_H

#include <sys/types.h>

struct fuse_session;

/*
 * Chain a wake-up of the watch onto libfuse's handlers of SIGTERM, SIGINT
 * and SIGHUP: call after fuse_set_signal_handlers. 0 or -errno.
 */
int fs_watch_init(void);
/*
 * Block until se has exited (a signal, an unmount, a connection abort
 * that libfuse saw), its connection was aborted, or fs_watch_end was
 * called. dev is the mount's device
 * number: while the mount table holds it the wait sleeps until the table
 * or a signal changes or a request starts, and looks at se every
 * FS_WATCH_BUSY_MS while requests are under way; when it does not (a lazy
 * unmount with files still open, or no /proc), every FS_WATCH_SLICE_MS.
 * Called by one thread, between fs_watch_init and fs_watch_fini.
 */
void fs_watch_wait(struct fuse_session *se, dev_t dev);
/*
 * A request that may wait on the origin starts, and ends: while any is
 * under way the watch also looks at the session every FS_WATCH_BUSY_MS,
 * since an abort through the fuse control file system shows nowhere else.
 * Any thread; cheap (an atomic add, and a wake-up of a sleeping watch).
 */
void fs_watch_busy(void);
void fs_watch_idle(void);
/* The session loop returned (libfuse then clears the session's exited
 * mark, so that alone cannot end the wait): end fs_watch_wait. Any
 * thread. */
void fs_watch_end(void);
/*
 * Put libfuse's handlers back (before fuse_remove_signal_handlers, which
 * removes only its own). After fs_watch_wait has returned.
 */
void fs_watch_fini(void);

#define FS_WATCH_SLICE_MS 100
#define FS_WATCH_BUSY_MS 500

#endif
