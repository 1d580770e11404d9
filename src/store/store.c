/*
 * Choosing the origin client for a mount URL.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "common/log.h"
#include "store/store.h"

int store_open(const struct store_opts *opts, struct store **out)
{
	*out = NULL;
	if (!strncasecmp(opts->url, "s3://", 5))
		return store_s3_open(opts, out);
	if (!strncasecmp(opts->url, "http://", 7) ||
	    !strncasecmp(opts->url, "https://", 8))
		return store_http_open(opts, out);
	return -EPROTONOSUPPORT;
}

void store_abort(struct store *s)
{
	if (s && s->ops->abort)
		s->ops->abort(s);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->destroy(s);
}

static __thread char store_err[256];

const char *store_last_error(void)
{
	return store_err;
}

void store_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(store_err, sizeof(store_err), fmt, ap);
	va_end(ap);
	/* Shown on the terminal that mounted, and may quote the origin. */
	log_printable(store_err);
}
