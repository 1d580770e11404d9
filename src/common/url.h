/*
 * URL helpers shared by the origin clients: percent-decoding of names that
 * come from listings, percent-encoding of paths for requests, and the rule
 * for which names may appear as file names in the mount.
 */
#ifndef COMMON_URL_H
#define COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Decode %XX escapes in in[0..len). '+' is left as is (it is not a space in
 * a path). Returns 0 and a new NUL-terminated string in *out (free() it),
 * -EINVAL for a malformed escape or a decoded NUL byte, -ENOMEM.
 */
int url_decode(const char *in, size_t len, char **out);
/* The same, as in an HTML form (and S3's encoding-type=url): a bare '+'
 * is a space, a literal '+' comes as %2B. */
int url_decode_form(const char *in, size_t len, char **out);

/*
 * Encode every byte except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~)
 * and, when keep_slash, '/'. This is also S3's rule for object keys.
 * Returns a new string (free() it) or NULL on ENOMEM.
 */
char *url_encode(const char *s, bool keep_slash);

/*
 * True when name can be a directory entry: not empty, not "." or "..",
 * no '/', no NUL, at most 255 bytes.
 */
bool url_name_valid(const char *name);

/*
 * url as it may be shown in a message or a log: without user information
 * (what comes before the last '@' of the authority) and without the query
 * and fragment, which can carry a signature or a token. Any string is
 * accepted, a malformed URL too. A password with an unencoded '/' ends
 * the authority early ("http://key:pa/ss@host/"): when what stands there
 * has no valid port, everything up to the last '@' before the query is
 * taken for user information. Written into buf (truncated to size).
 */
void url_shown(const char *url, char *buf, size_t size);

/*
 * Split "scheme://host[:port]/path?query" into parts; NULLs allowed.
 * -EINVAL for no authority, or a port that is not one (url_shown says
 * why that matters).
 */
struct url_parts {
	char *scheme; /* lower-case, e.g. "http" */
	char *authority; /* host[:port], as written */
	char *path; /* starts with '/', "/" when absent; query dropped */
};
int url_split(const char *url, struct url_parts *out);
void url_parts_free(struct url_parts *p);

#endif
