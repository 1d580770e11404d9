/*
 * Logging for the daemon and the command-line tool: to stderr in the
 * foreground, to syslog or a file once daemonized. Thread-safe.
 * Never pass credentials, signed URLs or authorization headers to it.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG, LOG_TO_FILE };

/* Choose where messages go; path is used only with LOG_TO_FILE. */
int log_open(enum log_target target, const char *path, bool debug);
void log_close(void);
bool log_debug_enabled(void);
/* Drop every message (used while a failure is reported as one line, by
 * the caller, with the reason the failing code left). */
void log_set_quiet(bool quiet);

/*
 * Replace every control byte of s (below 0x20, and 0x7f) with '?', in
 * place; UTF-8 passes. Messages carry text from the network (object keys,
 * listings, an origin's error texts): none of it may move a terminal's
 * cursor, retitle it or start a line of its own in a log. log_msg does
 * this to every message.
 */
void log_printable(char *s);

/* level is a syslog priority: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG. */
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                  \
	do {                                            \
		if (log_debug_enabled())                \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
