/*
 * The AWS credential chain in the AWS CLI's order: environment, shared
 * files, instance metadata. The instance metadata service is spoken to
 * with libcurl directly, not through the http pool: it needs a PUT, very
 * short timeouts and no retry policy of its own, and it must never be
 * confused with the origin's connections. Secrets are kept in memory only,
 * wiped when dropped, and never logged.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "common/log.h"
#include "store/s3-creds.h"
#include "store/s3-xml.h"

/* Refresh temporary credentials this long before they expire, so that a
 * request signed just before the refresh still lands in time. */
#define S3_CREDS_REFRESH_MARGIN 300
#define S3_IMDS_DEFAULT "http://169.254.169.254"
#define S3_IMDS_TOKEN_TTL "21600"
#define S3_IMDS_CONNECT_MS 1000L
#define S3_IMDS_TIMEOUT_MS 3000L
#define S3_IMDS_MAX_BODY 16384
/* A shared file bigger than this is not a credentials file. */
#define S3_CREDS_MAX_LINE 4096

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void s3_secret_clear(struct s3_secret *s)
{
	if (!s)
		return;
	wipe_free(s->key_id);
	wipe_free(s->secret);
	wipe_free(s->token);
	memset(s, 0, sizeof(*s));
}

static int secret_copy(struct s3_secret *dst, const struct s3_secret *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->key_id = strdup(src->key_id ? src->key_id : "");
	dst->secret = strdup(src->secret ? src->secret : "");
	dst->token = src->token ? strdup(src->token) : NULL;
	dst->expires = src->expires;
	if (!dst->key_id || !dst->secret || (src->token && !dst->token)) {
		s3_secret_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

void s3_profile_free(struct s3_profile *p)
{
	if (!p)
		return;
	s3_secret_clear(&p->cred);
	free(p->region);
	free(p->endpoint_url);
	memset(p, 0, sizeof(*p));
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Set *slot to a copy of v unless a file read earlier already set it. */
static int set_once(char **slot, const char *v, bool override)
{
	char *c;

	if (*slot && !override)
		return 0;
	c = strdup(v);
	if (!c)
		return -ENOMEM;
	wipe_free(*slot);
	*slot = c;
	return 0;
}

/*
 * Read the section for `name` of one INI file. In the config file a
 * profile's section is "[profile NAME]" ("[default]" also for default);
 * in the credentials file it is "[NAME]". Values from the credentials file
 * override, values from the config file only fill gaps.
 */
static int read_ini(const char *path, const char *name, bool is_config,
		    struct s3_profile *out)
{
	char line[S3_CREDS_MAX_LINE];
	bool in_section = false;
	unsigned long lineno = 0;
	FILE *f;
	int err = 0;

	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *val;
		size_t n = strlen(line);

		lineno++;
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			int c;

			/* An over-long line: skip the rest of it. */
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			log_warn("%s:%lu: line too long, ignored", path,
				 lineno);
			continue;
		}
		/* Indented lines belong to a nested setting ("s3 =" followed
		 * by its own keys), which the flat keys we want never are. */
		if (line[0] == ' ' || line[0] == '\t')
			continue;
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			char *sec;

			if (!end) {
				in_section = false;
				continue;
			}
			*end = '\0';
			sec = trim(s + 1);
			if (is_config) {
				if (!strncmp(sec, "profile", 7) &&
				    isspace((unsigned char)sec[7]))
					in_section =
						!strcmp(trim(sec + 8), name);
				else
					in_section = !strcmp(name, "default") &&
						     !strcmp(sec, "default");
			} else {
				in_section = !strcmp(sec, name);
			}
			if (in_section)
				out->found = true;
			continue;
		}
		if (!in_section)
			continue;
		eq = strchr(s, '=');
		if (!eq)
			continue;
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (!*val)
			continue;
		if (!strcasecmp(key, "aws_access_key_id"))
			err = set_once(&out->cred.key_id, val, !is_config);
		else if (!strcasecmp(key, "aws_secret_access_key"))
			err = set_once(&out->cred.secret, val, !is_config);
		else if (!strcasecmp(key, "aws_session_token"))
			err = set_once(&out->cred.token, val, !is_config);
		else if (!strcasecmp(key, "region"))
			err = set_once(&out->region, val, !is_config);
		else if (!strcasecmp(key, "endpoint_url"))
			err = set_once(&out->endpoint_url, val, !is_config);
		if (err)
			break;
	}
	/* The buffer held secrets. */
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return err;
}

int s3_creds_read_profile(const char *cred_path, const char *config_path,
			  const char *name, struct s3_profile *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	/* Credentials file first: its values must win over the config's. */
	err = read_ini(cred_path, name, false, out);
	if (!err)
		err = read_ini(config_path, name, true, out);
	if (err)
		goto out_free;
	if (!out->cred.key_id != !out->cred.secret) {
		s3_secret_clear(&out->cred);
		return -EINVAL;
	}
	if (!out->cred.key_id)
		s3_secret_clear(&out->cred); /* a token alone is useless */
	return 0;

out_free:
	s3_profile_free(out);
	return err;
}

int s3_creds_parse_imds(const char *body, size_t len, struct s3_secret *out)
{
	struct json_tokener *tok;
	json_object *doc, *v;
	const char *code, *key, *secret, *token, *exp;
	int err = -EPROTO;

	memset(out, 0, sizeof(*out));
	if (!body || !len || len > S3_IMDS_MAX_BODY)
		return -EPROTO;
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	doc = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (!doc || !json_object_is_type(doc, json_type_object))
		goto out_doc;
#define STR(field, var)                                                        \
	var = json_object_object_get_ex(doc, field, &v) &&                     \
			      json_object_is_type(v, json_type_string)         \
		      ? json_object_get_string(v)                              \
		      : NULL
	STR("Code", code);
	STR("AccessKeyId", key);
	STR("SecretAccessKey", secret);
	STR("Token", token);
	STR("Expiration", exp);
#undef STR
	if ((code && strcmp(code, "Success")) || !key || !*key || !secret ||
	    !*secret)
		goto out_doc;
	out->key_id = strdup(key);
	out->secret = strdup(secret);
	out->token = token && *token ? strdup(token) : NULL;
	out->expires = exp ? s3_xml_parse_time(exp) : 0;
	if (!out->key_id || !out->secret || (token && *token && !out->token)) {
		s3_secret_clear(out);
		err = -ENOMEM;
		goto out_doc;
	}
	err = 0;
out_doc:
	if (doc)
		json_object_put(doc);
	return err;
}

struct imds_buf {
	char data[S3_IMDS_MAX_BODY + 1];
	size_t len;
	bool overflow;
};

static size_t imds_write(char *d, size_t size, size_t n, void *user)
{
	struct imds_buf *b = user;
	size_t len = size * n;

	if (len > S3_IMDS_MAX_BODY - b->len) {
		b->overflow = true;
		return 0;
	}
	memcpy(b->data + b->len, d, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* One request to the metadata service. Returns 0 with *status set when
 * an answer arrived, -ENOENT when nothing answers. */
static int imds_call(const char *url, bool put, const char *header,
		     struct imds_buf *b, long *status)
{
	struct curl_slist *h = NULL;
	CURL *c;
	CURLcode rc;
	int err = 0;

	b->len = 0;
	b->data[0] = '\0';
	b->overflow = false;
	*status = 0;
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	if (header) {
		h = curl_slist_append(NULL, header);
		if (!h) {
			err = -ENOMEM;
			goto out_curl;
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, S3_IMDS_CONNECT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, S3_IMDS_TIMEOUT_MS);
	/* The service is a local hop; a proxy from the environment would
	 * send the token and the credentials elsewhere. */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, imds_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	if (put) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		log_debug("instance metadata %s: %s", url,
			  curl_easy_strerror(rc));
		err = b->overflow ? -EPROTO : -ENOENT;
		goto out_hdr;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out_hdr:
	curl_slist_free_all(h);
out_curl:
	curl_easy_cleanup(c);
	return err;
}

int s3_creds_imds_fetch(const char *endpoint, struct s3_secret *out)
{
	struct imds_buf *b;
	char url[512], role[256], hdr[600] = "";
	const char *tok_hdr = NULL;
	size_t elen;
	long status;
	int err;

	memset(out, 0, sizeof(*out));
	if (!endpoint || !*endpoint)
		endpoint = S3_IMDS_DEFAULT;
	elen = strlen(endpoint);
	while (elen && endpoint[elen - 1] == '/')
		elen--;
	if (elen > 300)
		return -EINVAL;
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;

	snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)elen,
		 endpoint);
	err = imds_call(
		url, true,
		"X-aws-ec2-metadata-token-ttl-seconds: " S3_IMDS_TOKEN_TTL, b,
		&status);
	if (err)
		goto out_free;
	if (status == 200 && b->len && b->len < 512) {
		snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s",
			 trim(b->data));
		tok_hdr = hdr;
	} else if (status == 403) {
		/* IMDSv2 explicitly forbidden (e.g. hop limit): no creds. */
		err = -ENOENT;
		goto out_free;
	}
	/* Other answers (404, 405): an IMDSv1-only service; go on without
	 * a token, as the AWS CLI does. */

	snprintf(url, sizeof(url),
		 "%.*s/latest/meta-data/iam/security-credentials/", (int)elen,
		 endpoint);
	err = imds_call(url, false, tok_hdr, b, &status);
	if (err)
		goto out_free;
	if (status != 200 || !b->len) {
		err = -ENOENT;
		goto out_free;
	}
	/* The first line is the role name. */
	b->data[strcspn(b->data, "\r\n")] = '\0';
	snprintf(role, sizeof(role), "%s", trim(b->data));
	if (!role[0] || strchr(role, '/') || strchr(role, '?')) {
		err = -EPROTO;
		goto out_free;
	}
	snprintf(url, sizeof(url),
		 "%.*s/latest/meta-data/iam/security-credentials/%s", (int)elen,
		 endpoint, role);
	err = imds_call(url, false, tok_hdr, b, &status);
	if (err)
		goto out_free;
	if (status != 200) {
		err = -ENOENT;
		goto out_free;
	}
	err = s3_creds_parse_imds(b->data, b->len, out);
out_free:
	explicit_bzero(b, sizeof(*b));
	explicit_bzero(hdr, sizeof(hdr));
	free(b);
	return err;
}

/* ~/ expansion for paths in AWS_* variables, as the AWS CLI does it. */
static char *expand_home(const char *p)
{
	const char *home = getenv("HOME");
	char *r;

	if (p[0] == '~' && (p[1] == '/' || !p[1]) && home) {
		if (asprintf(&r, "%s%s", home, p + 1) < 0)
			return NULL;
		return r;
	}
	return strdup(p);
}

static int file_paths(char **cred, char **config)
{
	const char *e;

	*cred = *config = NULL;
	e = getenv("AWS_SHARED_CREDENTIALS_FILE");
	*cred = expand_home(e && *e ? e : "~/.aws/credentials");
	e = getenv("AWS_CONFIG_FILE");
	*config = expand_home(e && *e ? e : "~/.aws/config");
	if (!*cred || !*config) {
		free(*cred);
		free(*config);
		return -ENOMEM;
	}
	return 0;
}

static const char *profile_name(const struct s3_creds_opts *o)
{
	const char *e;

	if (o && o->profile && *o->profile)
		return o->profile;
	e = getenv("AWS_PROFILE");
	if (e && *e)
		return e;
	e = getenv("AWS_DEFAULT_PROFILE");
	return e && *e ? e : "default";
}

static const char *env_nonempty(const char *name)
{
	const char *e = getenv(name);

	return e && *e ? e : NULL;
}

void s3_creds_config_free(struct s3_creds_config *c)
{
	if (!c)
		return;
	free(c->region);
	free(c->endpoint_url);
	free(c->profile);
	memset(c, 0, sizeof(*c));
}

int s3_creds_load_config(const struct s3_creds_opts *o,
			 struct s3_creds_config *out)
{
	struct s3_profile p;
	const char *name = profile_name(o), *e;
	char *cred_path, *config_path;
	int err;

	memset(out, 0, sizeof(*out));
	err = file_paths(&cred_path, &config_path);
	if (err)
		return err;
	err = s3_creds_read_profile(cred_path, config_path, name, &p);
	free(cred_path);
	free(config_path);
	if (err == -EINVAL) {
		/* Half a key pair is s3_creds_new()'s problem to report. */
		err = 0;
		p.found = true;
	}
	if (err)
		return err;
	if (o && o->profile && *o->profile && !p.found) {
		s3_profile_free(&p);
		return -ENOENT;
	}
	out->profile = strdup(name);
	e = env_nonempty("AWS_REGION");
	if (!e)
		e = env_nonempty("AWS_DEFAULT_REGION");
	out->region = e ? strdup(e) : p.region ? strdup(p.region) : NULL;
	e = env_nonempty("AWS_ENDPOINT_URL_S3");
	if (!e)
		e = env_nonempty("AWS_ENDPOINT_URL");
	out->endpoint_url = e		     ? strdup(e)
			    : p.endpoint_url ? strdup(p.endpoint_url)
					     : NULL;
	s3_profile_free(&p);
	if (!out->profile || (e && !out->endpoint_url)) {
		s3_creds_config_free(out);
		return -ENOMEM;
	}
	return 0;
}

struct s3_creds {
	pthread_mutex_t lock;
	enum s3_creds_source source; /* set once by s3_creds_new() */
	char *profile;	      /* profile name, for S3_CREDS_PROFILE re-reads */
	char *imds_endpoint;  /* for S3_CREDS_IMDS */
	struct s3_secret cur; /* protected by lock */
	bool stale;	      /* protected by lock: refresh on the next get */
};

/* Load from the source into *out (no lock needed: touches no state). */
static int creds_load(struct s3_creds *c, struct s3_secret *out)
{
	struct s3_profile p;
	char *cred_path, *config_path;
	int err;

	memset(out, 0, sizeof(*out));
	switch (c->source) {
	case S3_CREDS_PROFILE:
		err = file_paths(&cred_path, &config_path);
		if (err)
			return err;
		err = s3_creds_read_profile(cred_path, config_path, c->profile,
					    &p);
		free(cred_path);
		free(config_path);
		if (err) {
			s3_profile_free(&p);
			return err;
		}
		if (!p.cred.key_id) {
			s3_profile_free(&p);
			return -ENOENT;
		}
		*out = p.cred;
		memset(&p.cred, 0, sizeof(p.cred));
		s3_profile_free(&p);
		return 0;
	case S3_CREDS_IMDS:
		return s3_creds_imds_fetch(c->imds_endpoint, out);
	default:
		return -ENOENT;
	}
}

static bool imds_disabled(void)
{
	const char *e = getenv("AWS_EC2_METADATA_DISABLED");

	return e && !strcasecmp(e, "true");
}

int s3_creds_new(const struct s3_creds_opts *o, struct s3_creds **out,
		 char *why, size_t why_len)
{
	const char *name = profile_name(o);
	const char *ek = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *es = env_nonempty("AWS_SECRET_ACCESS_KEY");
	struct s3_creds *c;
	struct s3_profile p;
	char *cred_path, *config_path;
	int err;

	*out = NULL;
	snprintf(why, why_len, "out of memory");
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->profile = strdup(name);
	if (!c->profile) {
		err = -ENOMEM;
		goto out_free;
	}

	/* An explicit --profile means "use this profile", so the AWS CLI
	 * skips the environment's keys then; so do we. */
	if (!(o && o->profile && *o->profile) && (ek || es)) {
		const char *tok = env_nonempty("AWS_SESSION_TOKEN")
					  ? getenv("AWS_SESSION_TOKEN")
				  : env_nonempty("AWS_SECURITY_TOKEN")
					  ? getenv("AWS_SECURITY_TOKEN")
					  : NULL;

		if (!ek || !es) {
			snprintf(why, why_len, "%s is set but %s is not",
				 ek ? "AWS_ACCESS_KEY_ID"
				    : "AWS_SECRET_ACCESS_KEY",
				 ek ? "AWS_SECRET_ACCESS_KEY"
				    : "AWS_ACCESS_KEY_ID");
			err = -EINVAL;
			goto out_free;
		}
		c->source = S3_CREDS_ENV;
		c->cur.key_id = strdup(ek);
		c->cur.secret = strdup(es);
		c->cur.token = tok ? strdup(tok) : NULL;
		/* Without its token the key would be sent alone and refused
		 * as if it were wrong. */
		if (!c->cur.key_id || !c->cur.secret ||
		    (tok && !c->cur.token)) {
			err = -ENOMEM;
			goto out_free;
		}
		goto out_ok;
	}

	err = file_paths(&cred_path, &config_path);
	if (err)
		goto out_free;
	err = s3_creds_read_profile(cred_path, config_path, name, &p);
	if (err == -EINVAL) {
		snprintf(why, why_len,
			 "profile '%s' has only one of aws_access_key_id and "
			 "aws_secret_access_key",
			 name);
	} else if (err) {
		snprintf(why, why_len, "cannot read %s or %s: %s", cred_path,
			 config_path, strerror(-err));
	} else if (o && o->profile && *o->profile && !p.found) {
		snprintf(why, why_len, "profile '%s' not found in %s or %s",
			 name, cred_path, config_path);
		err = -ENOENT;
	}
	free(cred_path);
	free(config_path);
	if (err) {
		s3_profile_free(&p);
		goto out_free;
	}
	if (p.cred.key_id) {
		c->source = S3_CREDS_PROFILE;
		c->cur = p.cred;
		memset(&p.cred, 0, sizeof(p.cred));
		s3_profile_free(&p);
		goto out_ok;
	}
	s3_profile_free(&p);
	if (o && o->profile && *o->profile) {
		snprintf(why, why_len,
			 "profile '%s' has no "
			 "aws_access_key_id/aws_secret_access_key",
			 name);
		err = -ENOENT;
		goto out_free;
	}

	if (!imds_disabled()) {
		const char *ep =
			env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");

		c->imds_endpoint = strdup(ep ? ep : S3_IMDS_DEFAULT);
		if (!c->imds_endpoint) {
			err = -ENOMEM;
			goto out_free;
		}
		c->source = S3_CREDS_IMDS;
		err = creds_load(c, &c->cur);
		if (!err)
			goto out_ok;
		if (err == -ENOMEM)
			goto out_free;
		log_debug("no credentials from instance metadata at %s: %s",
			  c->imds_endpoint, strerror(-err));
	}
	snprintf(why, why_len,
		 "no AWS credentials found (looked in "
		 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile '%s' of the "
		 "shared files, instance metadata); for a public bucket use "
		 "--no-sign-request",
		 name);
	err = -ENOENT;
	goto out_free;

out_ok:
	if (c->source == S3_CREDS_IMDS && c->cur.expires &&
	    c->cur.expires < (int64_t)time(NULL))
		log_warn("instance metadata credentials are already expired");
	log_debug("AWS credentials from %s",
		  c->source == S3_CREDS_ENV	  ? "the environment"
		  : c->source == S3_CREDS_PROFILE ? "the shared files"
						  : "instance metadata");
	why[0] = '\0';
	*out = c;
	return 0;

out_free:
	s3_creds_free(c);
	return err;
}

void s3_creds_free(struct s3_creds *c)
{
	if (!c)
		return;
	s3_secret_clear(&c->cur);
	free(c->profile);
	free(c->imds_endpoint);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

enum s3_creds_source s3_creds_source(const struct s3_creds *c)
{
	return c ? c->source : S3_CREDS_NONE;
}

static bool refreshable(const struct s3_creds *c)
{
	return c->source == S3_CREDS_IMDS || c->source == S3_CREDS_PROFILE;
}

int s3_creds_get(struct s3_creds *c, struct s3_secret *out)
{
	int64_t now = (int64_t)time(NULL);
	int err = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	/* Refresh under the lock: one fetch, the other threads wait for it
	 * instead of all asking the metadata service at once. */
	if (refreshable(c) &&
	    (c->stale || (c->cur.expires &&
			  c->cur.expires - now < S3_CREDS_REFRESH_MARGIN))) {
		struct s3_secret fresh;

		err = creds_load(c, &fresh);
		if (!err) {
			s3_secret_clear(&c->cur);
			c->cur = fresh;
			c->stale = false;
			log_debug("AWS credentials refreshed");
		} else if (!c->cur.expires || c->cur.expires > now) {
			/* Keep using what still works; try again next time. */
			log_warn("refreshing AWS credentials failed: %s",
				 strerror(-err));
			err = 0;
		} else {
			log_err("AWS credentials expired and refreshing them "
				"failed: %s",
				strerror(-err));
			err = -EACCES;
		}
	}
	if (!err)
		err = secret_copy(out, &c->cur);
	pthread_mutex_unlock(&c->lock);
	return err;
}

bool s3_creds_mark_stale(struct s3_creds *c)
{
	if (!c || !refreshable(c))
		return false;
	pthread_mutex_lock(&c->lock);
	c->stale = true;
	pthread_mutex_unlock(&c->lock);
	return true;
}
