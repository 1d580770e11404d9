/*
 * AWS credentials and settings for the S3 origin, found the way the AWS
 * CLI finds them: environment, then the shared credentials and config
 * files, then the EC2 instance metadata service (IMDSv2). Temporary
 * credentials are refreshed before they expire. Nothing here ever logs a
 * secret or a session token. Internal to src/store/.
 */
#ifndef STORE_S3_CREDS_H
#define STORE_S3_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One signing identity. Owned by whoever holds it; wipe and free with
 * s3_secret_clear(), which zeroes the memory before freeing it. */
struct s3_secret {
	char *key_id;
	char *secret;
	char *token;	 /* session token, NULL for long-term keys */
	int64_t expires; /* seconds since the epoch, 0: does not expire */
};

void s3_secret_clear(struct s3_secret *s);

/* What one profile of the shared files says (any field may be NULL). */
struct s3_profile {
	struct s3_secret cred;
	char *region;
	char *endpoint_url;
	bool found; /* the profile has a section in at least one file */
};

/*
 * Read profile `name` from the credentials file (section [name]) and the
 * config file (section [profile name], or [default] for "default"); the
 * credentials file wins for keys set in both. Either path may be NULL or
 * name a missing file. Comment lines (# or ;), blank lines and indented
 * sub-settings are ignored. Returns 0 (check out->found), -EINVAL when the
 * profile has a key id without a secret or the reverse (out->cred is then
 * empty, the rest of the profile kept: its region still applies to keys
 * from elsewhere), -ENOMEM, or -errno for an unreadable existing file
 * (out then empty). Whatever it returns, *out is the caller's to free
 * with s3_profile_free.
 */
int s3_creds_read_profile(const char *cred_path, const char *config_path,
			  const char *name, struct s3_profile *out);
void s3_profile_free(struct s3_profile *p);

/*
 * Parse the instance metadata credential document (JSON with Code,
 * AccessKeyId, SecretAccessKey, Token, Expiration). Returns 0, -EPROTO for
 * anything else or a Code other than "Success", -ENOMEM.
 */
int s3_creds_parse_imds(const char *body, size_t len, struct s3_secret *out);

/*
 * Fetch credentials from the instance metadata service at endpoint
 * (e.g. "http://169.254.169.254"): IMDSv2 token, role name, role
 * credentials; falls back to IMDSv1 when the token request is refused.
 * Bounded by short timeouts. Returns 0, -ENOENT when there is no service
 * or no role, -EPROTO, -ENOMEM.
 */
int s3_creds_imds_fetch(const char *endpoint, struct s3_secret *out);

enum s3_creds_source {
	S3_CREDS_NONE,
	S3_CREDS_ENV,
	S3_CREDS_PROFILE,
	S3_CREDS_IMDS,
};

/* Where the chain looks; NULLs mean the process environment's choice. */
struct s3_creds_opts {
	const char *profile; /* --profile; it also makes env keys ignored */
};

/* Settings found along the way, for the caller to use as defaults. */
struct s3_creds_config {
	char *region;	    /* AWS_REGION, AWS_DEFAULT_REGION, profile */
	char *endpoint_url; /* AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, profile */
	char *profile;	    /* the profile name in effect */
};

void s3_creds_config_free(struct s3_creds_config *c);

/*
 * Read region and endpoint settings (no credentials, no network).
 * Returns 0, -ENOENT when an explicitly named profile exists in neither
 * file, -ENOMEM.
 */
int s3_creds_load_config(const struct s3_creds_opts *o,
			 struct s3_creds_config *out);

/* The resolved credential chain; thread-safe. */
struct s3_creds;

/*
 * Resolve the chain once. Returns 0 with *out set, -ENOENT when no source
 * has credentials (the message says where it looked), -EINVAL for a
 * half-set source (a key id without a secret), -ENOMEM. why[0..why_len)
 * gets a one-line reason on failure.
 */
int s3_creds_new(const struct s3_creds_opts *o, struct s3_creds **out,
		 char *why, size_t why_len);
void s3_creds_free(struct s3_creds *c);
enum s3_creds_source s3_creds_source(const struct s3_creds *c);

/*
 * A copy of the current credentials in *out (clear it with
 * s3_secret_clear()), refreshed first when they expire within a few
 * minutes or were marked stale. Returns 0, or -errno when the
 * credentials are expired and cannot be refreshed.
 */
int s3_creds_get(struct s3_creds *c, struct s3_secret *out);

/*
 * The origin said the token expired: refresh on the next get. Returns
 * true when the source can produce new credentials (instance metadata,
 * a profile whose files may have been rewritten).
 */
bool s3_creds_mark_stale(struct s3_creds *c);

#endif
