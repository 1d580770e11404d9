/*
 * The origin interface: what the filesystem needs from a remote store.
 * Implemented by the HTTP(S) directory origin (store-httpdir.c) and the S3
 * origin (store-s3.c); both sit on the shared client core in http.h.
 *
 * Paths are relative to the mount root, made of decoded names joined by
 * '/': "" is the root, "a/b c" a file in a subdirectory. Each origin encodes
 * them by its own rules. All functions are thread-safe and return 0 or
 * -errno (ENOENT, EACCES, EIO, ETIMEDOUT, ESTALE, ENOMEM, ...).
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ETAG_MAX 160

struct store_attr {
	uint64_t size;
	int64_t mtime; /* seconds since the epoch, 0 when unknown */
	char etag[STORE_ETAG_MAX]; /* validator, "" when unknown */
	bool is_dir;
	bool size_exact; /* false: an estimate (e.g. "1.2K" in a listing) */
};

struct store_dirent {
	char *name; /* decoded, valid per url_name_valid() */
	struct store_attr attr;
};

struct store_dir {
	struct store_dirent *ents; /* owned; free with store_dir_free() */
	size_t n;
	size_t cap;
};

/* Append a copy of name with attr; -ENOMEM. */
int store_dir_add(struct store_dir *d, const char *name,
		  const struct store_attr *attr);
void store_dir_free(struct store_dir *d);

struct store;

struct store_ops {
	const char *name; /* "http", "s3" */
	/* Metadata of one path; for "" the root, which is always a dir. */
	int (*stat)(struct store *s, const char *path, struct store_attr *out);
	/* Entries of a directory (no "." or ".."); *out must be zeroed. */
	int (*list)(struct store *s, const char *path, struct store_dir *out);
	/*
	 * Read exactly len bytes at off of a file whose size the caller knows
	 * (off + len <= size, len > 0). etag, when not "", is the version the
	 * caller expects: a different version gives -ESTALE. The version
	 * actually read is copied to etag_out (STORE_ETAG_MAX) when not NULL.
	 * A short, long, or unranged answer is -EIO, never partial data.
	 */
	int (*read)(struct store *s, const char *path, const char *etag,
		    void *buf, uint64_t off, size_t len, char *etag_out);
	/*
	 * Make every request in progress, and every later one, fail at once
	 * (the daemon is stopping and must not wait out timeouts).
	 */
	void (*abort)(struct store *s);
	/*
	 * May be NULL. Open what the first read will need (a connection its
	 * requests can use) ahead of it, so that the first read from a new
	 * mount costs what later ones do. Best effort, bounded by the
	 * connect timeout; abort ends it.
	 */
	void (*warm)(struct store *s);
	/* A one-line description of the origin for messages, e.g. the URL. */
	const char *(*describe)(struct store *s);
	void (*destroy)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

struct store_opts {
	const char *url; /* http(s)://... or s3://bucket[/prefix] */
	bool insecure; /* skip TLS verification */
	unsigned int timeout_ms; /* bound on one operation, retries included */
	unsigned int connect_timeout_ms;
	unsigned int max_connections;
	/* S3 only */
	const char *endpoint;
	const char *region;
	const char *profile;
	bool no_sign_request;
	bool virtual_hosted;
	bool requester_pays;
};

/* Create the origin for opts->url; *out is set on success. */
int store_open(const struct store_opts *opts, struct store **out);
void store_close(struct store *s);
void store_abort(struct store *s);

/*
 * The reason for the last failure on this thread, for one-line messages
 * ("Connection refused", "HTTP 403: AccessDenied ..."); "" when none.
 * Origins set it with store_set_error; never put credentials in it.
 */
const char *store_last_error(void);
void store_set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

int store_http_open(const struct store_opts *opts, struct store **out);
int store_s3_open(const struct store_opts *opts, struct store **out);

#endif
