/*
 * URL helpers: percent-decoding of names taken from listings, encoding of
 * paths and keys for requests, the file-name rule of the mount, and a
 * minimal split of an origin URL into scheme, authority and path.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/url.h"

static int url_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Shared by both decoders; form: a bare '+' is a space. */
static int url_decode_common(const char *in, size_t len, bool form,
			     char **out)
{
	char *buf, *p;
	size_t i;

	*out = NULL;
	/* Decoding never grows the string; len + 1 cannot wrap for a buffer. */
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	p = buf;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				goto out_inval;
			hi = url_hexval((unsigned char)in[i + 1]);
			lo = url_hexval((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				goto out_inval;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (form && c == '+') {
			c = ' ';
		}
		/* A NUL would silently cut the name short. */
		if (c == '\0')
			goto out_inval;
		*p++ = (char)c;
	}
	*p = '\0';
	*out = buf;
	return 0;

out_inval:
	free(buf);
	return -EINVAL;
}

int url_decode(const char *in, size_t len, char **out)
{
	return url_decode_common(in, len, false, out);
}

int url_decode_form(const char *in, size_t len, char **out)
{
	return url_decode_common(in, len, true, out);
}

static bool url_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

char *url_encode(const char *s, bool keep_slash)
{
	/* Upper-case hex: S3's canonical request requires it. */
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *q;
	size_t n = 0;
	char *buf, *p;

	if (strlen(s) > (SIZE_MAX - 1) / 3)
		return NULL;
	for (q = (const unsigned char *)s; *q; q++) {
		if (url_unreserved(*q) || (keep_slash && *q == '/'))
			n++;
		else
			n += 3;
	}
	buf = malloc(n + 1);
	if (!buf)
		return NULL;
	p = buf;
	for (q = (const unsigned char *)s; *q; q++) {
		if (url_unreserved(*q) || (keep_slash && *q == '/')) {
			*p++ = (char)*q;
		} else {
			*p++ = '%';
			*p++ = hex[*q >> 4];
			*p++ = hex[*q & 15];
		}
	}
	*p = '\0';
	return buf;
}

bool url_name_valid(const char *name)
{
	size_t len;

	if (!name || !name[0])
		return false;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	/* strnlen: a hostile name need not be scanned past the limit. */
	len = strnlen(name, 256);
	if (len > 255)
		return false;
	return !memchr(name, '/', len);
}

static bool url_scheme_char(unsigned char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
		return true;
	return !first &&
	       ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

/*
 * Whether the authority [auth, end) ends in a port that is one: nothing,
 * or ':' and at most 65535 in decimal digits (an empty port is allowed,
 * as RFC 3986 does). Anything else is most often a password with a '/'
 * in it, written without %-encoding: "http://key:pa/ss@host/" puts "pa"
 * where the port goes, and the rest of the password in the path.
 */
static bool url_port_ok(const char *auth, const char *end)
{
	const char *host = auth, *c, *p;
	unsigned long v = 0;

	for (p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	if (host < end && *host == '[') {
		c = memchr(host, ']', (size_t)(end - host));
		if (!c)
			return false;
		if (++c == end)
			return true;
		if (*c != ':')
			return false;
	} else {
		c = memchr(host, ':', (size_t)(end - host));
		if (!c)
			return true;
	}
	for (p = c + 1; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return false;
	}
	return true;
}

void url_shown(const char *url, char *buf, size_t size)
{
	const char *sep, *auth, *end, *at = NULL, *p;
	size_t before;

	if (!size)
		return;
	sep = strstr(url, "://");
	auth = sep ? sep + 3 : url;
	end = auth + strcspn(auth, "/?#");
	for (p = auth; p < end; p++)
		if (*p == '@')
			at = p;
	/* No port where one goes and an '@' further on: the user
	 * information ran past a '/' (url_port_ok). Cut to that '@'. */
	if (!at && !url_port_ok(auth, end)) {
		const char *stop = auth + strcspn(auth, "?#");

		for (p = end; p < stop; p++)
			if (*p == '@')
				at = p;
	}
	before = (size_t)(auth - url);
	if (at)
		snprintf(buf, size, "%.*s%.*s", (int)before, url,
			 (int)strcspn(at + 1, "?#"), at + 1);
	else
		snprintf(buf, size, "%.*s", (int)strcspn(url + before, "?#") +
						    (int)before, url);
}

int url_split(const char *url, struct url_parts *out)
{
	const char *p, *auth, *path, *end;
	size_t i, slen;

	memset(out, 0, sizeof(*out));
	if (!url)
		return -EINVAL;
	for (p = url; *p && *p != ':'; p++)
		if (!url_scheme_char((unsigned char)*p, p == url))
			return -EINVAL;
	if (p == url || strncmp(p, "://", 3) != 0)
		return -EINVAL;
	slen = (size_t)(p - url);
	auth = p + 3;
	path = auth + strcspn(auth, "/?#");
	/* Every origin cofault talks to needs a host or a bucket. */
	if (path == auth || !url_port_ok(auth, path))
		return -EINVAL;
	end = path + strcspn(path, "?#");

	out->scheme = strndup(url, slen);
	out->authority = strndup(auth, (size_t)(path - auth));
	if (end == path || *path != '/')
		out->path = strdup("/");
	else
		out->path = strndup(path, (size_t)(end - path));
	if (!out->scheme || !out->authority || !out->path) {
		url_parts_free(out);
		return -ENOMEM;
	}
	for (i = 0; i < slen; i++)
		if (out->scheme[i] >= 'A' && out->scheme[i] <= 'Z')
			out->scheme[i] = (char)(out->scheme[i] - 'A' + 'a');
	return 0;
}

void url_parts_free(struct url_parts *p)
{
	if (!p)
		return;
	free(p->scheme);
	free(p->authority);
	free(p->path);
	p->scheme = NULL;
	p->authority = NULL;
	p->path = NULL;
}
