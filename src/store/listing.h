/*
 * Parsers for directory index pages served by ordinary web servers:
 * nginx autoindex (HTML and JSON), Apache mod_autoindex, Python's
 * http.server. HTML goes through libxml2's HTML parser, JSON through json-c.
 */
#ifndef STORE_LISTING_H
#define STORE_LISTING_H

#include <stddef.h>

#include "store/store.h"

/*
 * Parse the index page body[0..len) of the directory whose URL path (as
 * requested, percent-encoded, ending in '/') is dir_path. content_type is
 * the answer's Content-Type (may be NULL: sniff). Entries whose names are
 * not valid file names are skipped with a warning; links that leave the
 * directory (parent, other paths, other hosts, sort links with '?') are
 * ignored. Fills *out (zeroed by the caller). Returns 0, -EPROTO for a body
 * that is no listing at all, -ENOMEM.
 */
int listing_parse(const char *body, size_t len, const char *content_type,
		  const char *dir_path, struct store_dir *out);

#endif
