/*
 * Unit tests of the AWS credential chain: shared-file parsing, the order
 * of sources, the instance metadata document, and the IMDSv2 token flow
 * and refresh against a small fake metadata service on 127.0.0.1.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/s3-creds.h"

static char tmpdir[] = "/tmp/test-s3-creds.XXXXXX";

/* strdup() of a string equal to this one fails (NULL: none does). */
static const char *strdup_fails_for;

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);

char *__wrap_strdup(const char *s)
{
	if (strdup_fails_for && !strcmp(s, strdup_fails_for)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

static char *tmp_path(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static char *write_file(const char *name, const char *text)
{
	char *p = tmp_path(name);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

static const char creds_text[] =
	"# comment line\n"
	"; another comment\n"
	"[default]\n"
	"aws_access_key_id = AKIDDEFAULT\n"
	"aws_secret_access_key=secretdefault\r\n"
	"\n"
	"[dev]\n"
	"  aws_access_key_id = AKINDENTED\n" /* nested: ignored */
	"aws_access_key_id\t=\tAKIDDEV  \n"
	"aws_secret_access_key = secret/dev+key=\n"
	"aws_session_token = tokendev\n"
	"[half]\n"
	"aws_access_key_id = AKIDHALF\n"
	"[profile both]\n" /* not a profile name in this file */
	"aws_access_key_id = AKIDWRONG\n"
	"aws_secret_access_key = wrong\n"
	"[broken\n"
	"aws_access_key_id = AKIDBROKEN\n";

static const char config_text[] = "[default]\n"
				  "region = eu-west-3\n"
				  "[profile dev]\n"
				  "region = ap-south-1\n"
				  "endpoint_url = http://127.0.0.1:9/\n"
				  "aws_access_key_id = AKIDFROMCONFIG\n"
				  "s3 =\n"
				  "  endpoint_url = http://nested.invalid/\n"
				  "[profile cfgonly]\n"
				  "aws_access_key_id = AKIDCFG\n"
				  "aws_secret_access_key = secretcfg\n"
				  "[profile  spaced ]\n"
				  "region = us-west-2\n"
				  "[profile half]\n"
				  "region = me-south-1\n"
				  "[sso-session dev]\n"
				  "region = xx-none-1\n";

static void test_profile_default(void **state)
{
	char *c = write_file("credentials", creds_text);
	char *g = write_file("config", config_text);
	struct s3_profile p;

	assert_int_equal(s3_creds_read_profile(c, g, "default", &p), 0);
	assert_true(p.found);
	assert_string_equal(p.cred.key_id, "AKIDDEFAULT");
	assert_string_equal(p.cred.secret, "secretdefault");
	assert_null(p.cred.token);
	assert_string_equal(p.region, "eu-west-3");
	assert_null(p.endpoint_url);
	s3_profile_free(&p);
	free(c);
	free(g);
}

static void test_profile_named(void **state)
{
	char *c = write_file("credentials", creds_text);
	char *g = write_file("config", config_text);
	struct s3_profile p;

	assert_int_equal(s3_creds_read_profile(c, g, "dev", &p), 0);
	/* The credentials file wins over the config file. */
	assert_string_equal(p.cred.key_id, "AKIDDEV");
	assert_string_equal(p.cred.secret, "secret/dev+key=");
	assert_string_equal(p.cred.token, "tokendev");
	assert_string_equal(p.region, "ap-south-1");
	assert_string_equal(p.endpoint_url, "http://127.0.0.1:9/");
	s3_profile_free(&p);

	assert_int_equal(s3_creds_read_profile(c, g, "cfgonly", &p), 0);
	assert_string_equal(p.cred.key_id, "AKIDCFG");
	assert_null(p.region);
	s3_profile_free(&p);

	assert_int_equal(s3_creds_read_profile(c, g, "spaced", &p), 0);
	assert_true(p.found);
	assert_null(p.cred.key_id);
	assert_string_equal(p.region, "us-west-2");
	s3_profile_free(&p);

	/* "[profile both]" in the credentials file is not profile "both". */
	assert_int_equal(s3_creds_read_profile(c, g, "both", &p), 0);
	assert_false(p.found);
	s3_profile_free(&p);
	free(c);
	free(g);
}

static void test_profile_missing(void **state)
{
	char *c = write_file("credentials", creds_text);
	char *g = write_file("config", config_text);
	char *none = tmp_path("does-not-exist");
	struct s3_profile p;

	assert_int_equal(s3_creds_read_profile(c, g, "nosuch", &p), 0);
	assert_false(p.found);
	assert_null(p.cred.key_id);
	s3_profile_free(&p);
	assert_int_equal(s3_creds_read_profile(none, NULL, "default", &p), 0);
	assert_false(p.found);
	s3_profile_free(&p);
	/* A key id without its secret is an error, not half a key. */
	assert_int_equal(s3_creds_read_profile(c, g, "half", &p), -EINVAL);
	assert_null(p.cred.key_id);
	assert_null(p.cred.secret);
	/* The rest of the profile stays: its region applies to keys from
	 * the environment. */
	assert_string_equal(p.region, "me-south-1");
	s3_profile_free(&p);
	/* A section header without ']' opens no section. */
	assert_int_equal(s3_creds_read_profile(c, g, "broken", &p), 0);
	assert_false(p.found);
	s3_profile_free(&p);
	free(c);
	free(g);
	free(none);
}

static void test_imds_document(void **state)
{
	static const char ok[] =
		"{\"Code\":\"Success\",\"LastUpdated\":\"2024-05-01T00:00:"
		"00Z\","
		"\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAX\","
		"\"SecretAccessKey\":\"sek\",\"Token\":\"tok\","
		"\"Expiration\":\"2024-05-01T06:00:00Z\"}";
	static const char failed[] =
		"{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"AccessKeyId\":"
		"\"A\","
		"\"SecretAccessKey\":\"s\"}";
	static const char nokey[] =
		"{\"Code\":\"Success\",\"SecretAccessKey\":\"s\"}";
	static const char garbage[] = "<html>not json</html>";
	static const char notobj[] = "[1,2,3]";
	struct s3_secret s;

	assert_int_equal(s3_creds_parse_imds(ok, sizeof(ok) - 1, &s), 0);
	assert_string_equal(s.key_id, "ASIAX");
	assert_string_equal(s.secret, "sek");
	assert_string_equal(s.token, "tok");
	assert_int_equal(s.expires, 1714543200);
	s3_secret_clear(&s);
	assert_null(s.key_id);
	assert_int_equal(s3_creds_parse_imds(failed, sizeof(failed) - 1, &s),
			 -EPROTO);
	assert_int_equal(s3_creds_parse_imds(nokey, sizeof(nokey) - 1, &s),
			 -EPROTO);
	assert_int_equal(s3_creds_parse_imds(garbage, sizeof(garbage) - 1, &s),
			 -EPROTO);
	assert_int_equal(s3_creds_parse_imds(notobj, sizeof(notobj) - 1, &s),
			 -EPROTO);
	assert_int_equal(s3_creds_parse_imds("", 0, &s), -EPROTO);
}

/* --- a fake instance metadata service -------------------------------- */

struct fake_imds {
	int fd;
	int port;
	pthread_t thread;
	bool v1_only;	/* answer the token PUT with 405 */
	int expires_in; /* seconds from now for the Expiration field */
	pthread_mutex_t lock;
	int creds_served; /* protected by lock */
	int unauthorized; /* protected by lock: requests without token */
	int puts;	  /* protected by lock */
	bool stop;
};

static void fake_answer(int c, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, strlen(body));

	if (write(c, head, (size_t)n) < 0 || write(c, body, strlen(body)) < 0)
		return;
}

static void fake_handle(struct fake_imds *f, int c)
{
	char req[8192], method[16] = "", path[512] = "", body[1024];
	size_t len = 0;
	bool has_token, has_ttl;

	while (len < sizeof(req) - 1) {
		ssize_t n = read(c, req + len, sizeof(req) - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	sscanf(req, "%15s %511s", method, path);
	has_token = strstr(req, "X-aws-ec2-metadata-token: TOKEN-1\r\n");
	has_ttl = strstr(req, "X-aws-ec2-metadata-token-ttl-seconds: ");
	if (!strcmp(method, "PUT") && !strcmp(path, "/latest/api/token")) {
		pthread_mutex_lock(&f->lock);
		f->puts++;
		pthread_mutex_unlock(&f->lock);
		if (f->v1_only)
			fake_answer(c, 405, "");
		else if (!has_ttl)
			fake_answer(c, 400, "missing ttl");
		else
			fake_answer(c, 200, "TOKEN-1");
		return;
	}
	if (!f->v1_only && !has_token) {
		pthread_mutex_lock(&f->lock);
		f->unauthorized++;
		pthread_mutex_unlock(&f->lock);
		fake_answer(c, 401, "");
		return;
	}
	if (!strcmp(path, "/latest/meta-data/iam/security-credentials/")) {
		fake_answer(c, 200, "the-role\n");
	} else if (!strcmp(path, "/latest/meta-data/iam/security-credentials/"
				 "the-role")) {
		char exp[64];
		time_t t = time(NULL) + f->expires_in;
		struct tm tm;
		int n;

		gmtime_r(&t, &tm);
		strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		pthread_mutex_lock(&f->lock);
		n = ++f->creds_served;
		pthread_mutex_unlock(&f->lock);
		snprintf(body, sizeof(body),
			 "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA%d\","
			 "\"SecretAccessKey\":\"secret%d\",\"Token\":\"tok%d\","
			 "\"Expiration\":\"%s\"}",
			 n, n, n, exp);
		fake_answer(c, 200, body);
	} else {
		fake_answer(c, 404, "");
	}
}

static void *fake_main(void *arg)
{
	struct fake_imds *f = arg;

	for (;;) {
		int c = accept(f->fd, NULL, NULL);

		if (c < 0)
			break;
		pthread_mutex_lock(&f->lock);
		if (f->stop) {
			pthread_mutex_unlock(&f->lock);
			close(c);
			break;
		}
		pthread_mutex_unlock(&f->lock);
		fake_handle(f, c);
		close(c);
	}
	return NULL;
}

static void fake_start(struct fake_imds *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	pthread_mutex_init(&f->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->fd, 16), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&a, &alen), 0);
	f->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake_imds *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_mutex_unlock(&f->lock);
	/* Wake the accept() with one last connection. */
	{
		struct sockaddr_in a = {.sin_family = AF_INET};
		int c = socket(AF_INET, SOCK_STREAM, 0);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons((uint16_t)f->port);
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
			shutdown(f->fd, SHUT_RDWR);
		close(c);
	}
	pthread_join(f->thread, NULL);
	close(f->fd);
	pthread_mutex_destroy(&f->lock);
}

static void test_imds_v2(void **state)
{
	struct fake_imds f = {.expires_in = 3600};
	struct s3_secret s;
	char ep[64];

	fake_start(&f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d/", f.port);
	assert_int_equal(s3_creds_imds_fetch(ep, &s), 0);
	assert_string_equal(s.key_id, "ASIA1");
	assert_string_equal(s.secret, "secret1");
	assert_string_equal(s.token, "tok1");
	assert_true(s.expires > time(NULL) + 3500);
	s3_secret_clear(&s);
	fake_stop(&f);
	assert_int_equal(f.puts, 1);
	assert_int_equal(f.unauthorized, 0);
}

static void test_imds_v1_fallback(void **state)
{
	struct fake_imds f = {.expires_in = 3600, .v1_only = true};
	struct s3_secret s;
	char ep[64];

	fake_start(&f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	assert_int_equal(s3_creds_imds_fetch(ep, &s), 0);
	assert_string_equal(s.key_id, "ASIA1");
	s3_secret_clear(&s);
	fake_stop(&f);
}

static void test_imds_absent(void **state)
{
	struct fake_imds f = {0};
	struct s3_secret s;
	char ep[64];

	/* A port that was just free: nothing listens there. */
	fake_start(&f);
	fake_stop(&f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	assert_int_equal(s3_creds_imds_fetch(ep, &s), -ENOENT);
	assert_null(s.key_id);
}

/* --- the chain ---------------------------------------------------------- */

static void clear_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_SECURITY_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static int setup_files(void **state)
{
	char *c = write_file("credentials", creds_text);
	char *g = write_file("config", config_text);

	clear_env();
	setenv("AWS_SHARED_CREDENTIALS_FILE", c, 1);
	setenv("AWS_CONFIG_FILE", g, 1);
	free(c);
	free(g);
	return 0;
}

static void expect_key(struct s3_creds *c, const char *key, const char *tok)
{
	struct s3_secret s;

	assert_int_equal(s3_creds_get(c, &s), 0);
	assert_string_equal(s.key_id, key);
	if (tok)
		assert_string_equal(s.token, tok);
	else
		assert_null(s.token);
	s3_secret_clear(&s);
}

static void test_chain_env(void **state)
{
	struct s3_creds_opts o = {0};
	struct s3_creds *c;
	char why[300];

	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenv", 1);
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), 0);
	assert_int_equal(s3_creds_source(c), S3_CREDS_ENV);
	expect_key(c, "AKIDENV", "tokenv");
	assert_false(s3_creds_mark_stale(c));
	s3_creds_free(c);

	/* A token that cannot be copied fails the chain: the key alone
	 * would be refused by the store as if it were wrong. */
	strdup_fails_for = "tokenv";
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -ENOMEM);
	strdup_fails_for = NULL;

	/* An explicit profile beats the environment, as in the AWS CLI. */
	o.profile = "dev";
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), 0);
	assert_int_equal(s3_creds_source(c), S3_CREDS_PROFILE);
	expect_key(c, "AKIDDEV", "tokendev");
	s3_creds_free(c);

	/* Half a pair in the environment is an error that says so. */
	o.profile = NULL;
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "AWS_SECRET_ACCESS_KEY"));
	assert_null(strstr(why, "AKIDENV"));
}

static void test_chain_files(void **state)
{
	struct s3_creds_opts o = {0};
	struct s3_creds_config cfg;
	struct s3_creds *c;
	char why[300];

	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), 0);
	assert_int_equal(s3_creds_source(c), S3_CREDS_PROFILE);
	expect_key(c, "AKIDDEFAULT", NULL);
	s3_creds_free(c);

	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), 0);
	expect_key(c, "AKIDDEV", "tokendev");
	s3_creds_free(c);
	assert_int_equal(s3_creds_load_config(&o, &cfg), 0);
	assert_string_equal(cfg.profile, "dev");
	assert_string_equal(cfg.region, "ap-south-1");
	assert_string_equal(cfg.endpoint_url, "http://127.0.0.1:9/");
	s3_creds_config_free(&cfg);
	setenv("AWS_REGION", "sa-east-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8/", 1);
	assert_int_equal(s3_creds_load_config(&o, &cfg), 0);
	assert_string_equal(cfg.region, "sa-east-1");
	assert_string_equal(cfg.endpoint_url, "http://127.0.0.1:8/");
	s3_creds_config_free(&cfg);

	o.profile = "nosuch";
	assert_int_equal(s3_creds_load_config(&o, &cfg), -ENOENT);
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "nosuch"));

	o.profile = "half";
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "half"));
	/* Half a key pair still names the profile's region and endpoint
	 * for keys from elsewhere (and frees them: ASan's leak check). */
	unsetenv("AWS_REGION");
	unsetenv("AWS_ENDPOINT_URL");
	assert_int_equal(s3_creds_load_config(&o, &cfg), 0);
	assert_string_equal(cfg.profile, "half");
	assert_string_equal(cfg.region, "me-south-1");
	s3_creds_config_free(&cfg);

	/* Nothing anywhere: a message that names where it looked. */
	o.profile = NULL;
	unsetenv("AWS_PROFILE");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "--no-sign-request"));
}

static void test_chain_imds_refresh(void **state)
{
	struct fake_imds f = {.expires_in = 60};
	struct s3_creds_opts o = {0};
	struct s3_creds *c;
	char why[300], ep[64];

	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	fake_start(&f);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), 0);
	assert_int_equal(s3_creds_source(c), S3_CREDS_IMDS);
	/* Expiring within the refresh margin: every get refreshes. */
	expect_key(c, "ASIA2", "tok2");
	expect_key(c, "ASIA3", "tok3");
	pthread_mutex_lock(&f.lock);
	f.expires_in = 3600;
	pthread_mutex_unlock(&f.lock);
	expect_key(c, "ASIA4", "tok4");
	/* Now valid for an hour: no more fetches... */
	expect_key(c, "ASIA4", "tok4");
	/* ...until the origin says the token expired. */
	assert_true(s3_creds_mark_stale(c));
	expect_key(c, "ASIA5", "tok5");
	s3_creds_free(c);
	fake_stop(&f);
	assert_int_equal(f.creds_served, 5);
	assert_int_equal(f.unauthorized, 0);

	/* The service is gone: no credentials, and a bounded wait. */
	assert_int_equal(s3_creds_new(&o, &c, why, sizeof(why)), -ENOENT);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static int setup_dir(void **state)
{
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile_default),
		cmocka_unit_test(test_profile_named),
		cmocka_unit_test(test_profile_missing),
		cmocka_unit_test(test_imds_document),
		cmocka_unit_test(test_imds_v2),
		cmocka_unit_test(test_imds_v1_fallback),
		cmocka_unit_test(test_imds_absent),
		cmocka_unit_test_setup(test_chain_env, setup_files),
		cmocka_unit_test_setup(test_chain_files, setup_files),
		cmocka_unit_test_setup(test_chain_imds_refresh, setup_files),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
