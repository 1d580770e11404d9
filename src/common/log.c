/*
 * Logging sink. The daemon logs to stderr in the foreground and to syslog
 * or a file once it has detached; one mutex keeps lines from interleaving.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_target log_target_now = LOG_TO_STDERR; /* under log_lock */
static FILE *log_file; /* under log_lock */
static bool log_debug_on;
static bool log_quiet;

int log_open(enum log_target target, const char *path, bool debug)
{
	FILE *f = NULL;

	if (target == LOG_TO_FILE) {
		/* 0600: messages may name private object keys. */
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			      0600);
		if (fd < 0)
			return -errno;
		f = fdopen(fd, "a");
		if (!f) {
			int err = -errno;
			close(fd);
			return err;
		}
		setvbuf(f, NULL, _IOLBF, 0);
	} else if (target == LOG_TO_SYSLOG) {
		openlog("cofault", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	log_target_now = target;
	log_debug_on = debug;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

void log_close(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	if (log_target_now == LOG_TO_SYSLOG)
		closelog();
	log_target_now = LOG_TO_STDERR;
	pthread_mutex_unlock(&log_lock);
}

void log_set_quiet(bool quiet)
{
	log_quiet = quiet;
}

bool log_debug_enabled(void)
{
	return log_debug_on;
}

static const char *log_level_name(int level)
{
	switch (level) {
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void log_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int saved = errno;

	if (log_quiet)
		return;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_printable(line);

	pthread_mutex_lock(&log_lock);
	if (log_target_now == LOG_TO_SYSLOG) {
		syslog(level, "%s", line);
	} else {
		FILE *out = log_target_now == LOG_TO_FILE && log_file ?
				    log_file :
				    stderr;
		if (log_target_now == LOG_TO_FILE) {
			struct timespec ts;
			struct tm tm;
			char stamp[32];

			clock_gettime(CLOCK_REALTIME, &ts);
			gmtime_r(&ts.tv_sec, &tm);
			strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S",
				 &tm);
			fprintf(out, "%s.%03ldZ [%d] %s: %s\n", stamp,
				ts.tv_nsec / 1000000, (int)getpid(),
				log_level_name(level), line);
		} else {
			fprintf(out, "cofault: %s: %s\n", log_level_name(level),
				line);
		}
	}
	pthread_mutex_unlock(&log_lock);
	errno = saved;
}
