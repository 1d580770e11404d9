/*
 * Parsers for the XML that S3 answers with: one page of a ListObjectsV2
 * result and the <Error> body of a failed request. Pure functions over a
 * buffer (no network, no globals) so they can be unit-tested and fuzzed.
 * Internal to src/store/.
 */
#ifndef STORE_S3_XML_H
#define STORE_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One <Contents> element: an object directly under the listed prefix. */
struct s3_xml_object {
	char *key; /* full key, decoded when the page was url-encoded */
	uint64_t size;
	int64_t mtime; /* LastModified, 0 when absent or unparseable */
	char etag[STORE_ETAG_MAX]; /* as sent, quotes included */
};

/* One page of ListObjectsV2. Everything is owned by the page. */
struct s3_xml_page {
	struct s3_xml_object *objects;
	size_t nobjects;
	char **prefixes; /* <CommonPrefixes><Prefix>, decoded */
	size_t nprefixes;
	bool truncated;	  /* IsTruncated */
	char *next_token; /* NextContinuationToken, NULL when absent */
};

/*
 * Parse body[0..len) as a ListObjectsV2 result into *out (zeroed on entry).
 * Keys and prefixes are url-decoded when the page says
 * <EncodingType>url</EncodingType>. Returns 0; -EPROTO when the body is
 * not well-formed XML, not a ListBucketResult, or has an element that
 * makes no sense (a Size that is not a number, a key that does not decode,
 * IsTruncated without NextContinuationToken); -ENOMEM. A message for
 * -EPROTO goes to why[0..why_len) when why is not NULL.
 */
int s3_xml_parse_list(const char *body, size_t len, struct s3_xml_page *out,
		      char *why, size_t why_len);
void s3_xml_page_free(struct s3_xml_page *p);

/* What an S3 <Error> body says; empty strings for missing elements. */
struct s3_xml_error {
	char code[64]; /* e.g. "NoSuchBucket" */
	char message[256];
	char region[64]; /* <Region>, sent with wrong-region errors */
};

/*
 * Parse an <Error> body. Returns 0 when it is one (code is not empty),
 * -EPROTO otherwise (HTML from a proxy, empty body, truncated XML).
 */
int s3_xml_parse_error(const char *body, size_t len, struct s3_xml_error *out);

/*
 * Decode S3's encoding-type=url form: %XX escapes and '+' for a space.
 * Returns a new string (free() it), NULL for a malformed escape, a NUL
 * byte, or ENOMEM.
 */
char *s3_xml_url_decode(const char *s);

/* Parse an ISO 8601 time as S3 writes it ("2024-05-01T12:34:56.000Z");
 * 0 when unparseable. */
int64_t s3_xml_parse_time(const char *s);

#endif
