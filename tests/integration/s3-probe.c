/*
 * Drive the S3 origin without FUSE, for the integration tests: list a
 * tree, print attributes, copy an object to stdout through ranged reads.
 * It checks the origin on its own, so a failure points at store-s3.c and
 * not at the filesystem layer.
 *
 *   s3-probe [--endpoint URL] [--region R] [--profile P] [--no-sign-request]
 *            [--timeout MS] [--chunk BYTES] [--pause-after N] URL CMD [PATH]
 *   CMD: stat PATH | ls PATH | find | cat PATH
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store.h"

static size_t chunk = 1 << 20;
static long pause_after = -1; /* cat: wait for a line on stdin after N chunks */

static int fail(const char *what, int err)
{
	fprintf(stderr, "s3-probe: %s: %s: %s\n", what, strerror(-err),
		store_last_error());
	return 1;
}

static int print_dir(struct store *s, const char *path, bool recurse)
{
	struct store_dir d = {0};
	size_t i;
	int err;

	err = s->ops->list(s, path, &d);
	if (err) {
		store_dir_free(&d);
		return err;
	}
	for (i = 0; i < d.n && !err; i++) {
		struct store_dirent *e = &d.ents[i];
		char *sub;

		if (asprintf(&sub, "%s%s%s", path, path[0] ? "/" : "",
			     e->name) < 0)
			return -ENOMEM;
		if (!recurse)
			printf("%c %s %llu %lld %s\n",
			       e->attr.is_dir ? 'd' : 'f', e->name,
			       (unsigned long long)e->attr.size,
			       (long long)e->attr.mtime, e->attr.etag);
		else if (!e->attr.is_dir)
			printf("%s\t%llu\n", sub,
			       (unsigned long long)e->attr.size);
		if (recurse && e->attr.is_dir)
			err = print_dir(s, sub, true);
		free(sub);
	}
	store_dir_free(&d);
	return err;
}

static int cat(struct store *s, const char *path)
{
	struct store_attr a;
	char etag[STORE_ETAG_MAX];
	uint64_t off = 0;
	long n = 0;
	char *buf;
	int err;

	err = s->ops->stat(s, path, &a);
	if (err)
		return err;
	if (a.is_dir)
		return -EISDIR;
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	while (off < a.size) {
		size_t len = a.size - off < chunk ? a.size - off : chunk;

		if (n++ == pause_after) {
			char line[16];

			fprintf(stderr, "s3-probe: paused\n");
			if (!fgets(line, sizeof(line), stdin))
				break;
		}
		err = s->ops->read(s, path, a.etag, buf, off, len, etag);
		if (err)
			break;
		if (fwrite(buf, 1, len, stdout) != len) {
			err = -EIO;
			break;
		}
		off += len;
	}
	free(buf);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"endpoint", required_argument, NULL, 'e'},
		{"region", required_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'p'},
		{"no-sign-request", no_argument, NULL, 'n'},
		{"virtual-hosted", no_argument, NULL, 'v'},
		{"timeout", required_argument, NULL, 't'},
		{"chunk", required_argument, NULL, 'c'},
		{"pause-after", required_argument, NULL, 'P'},
		{"debug", no_argument, NULL, 'd'},
		{NULL, 0, NULL, 0},
	};
	struct store_opts o = {.timeout_ms = 20000};
	struct store *s;
	const char *cmd, *path;
	bool debug = false;
	int c, err;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'e':
			o.endpoint = optarg;
			break;
		case 'r':
			o.region = optarg;
			break;
		case 'p':
			o.profile = optarg;
			break;
		case 'n':
			o.no_sign_request = true;
			break;
		case 'v':
			o.virtual_hosted = true;
			break;
		case 't':
			o.timeout_ms = (unsigned int)atoi(optarg);
			break;
		case 'c':
			chunk = (size_t)atol(optarg);
			break;
		case 'P':
			pause_after = atol(optarg);
			break;
		case 'd':
			debug = true;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind < 2 || !chunk) {
		fprintf(stderr, "usage: s3-probe [options] URL "
				"stat|ls|find|cat [PATH]\n");
		return 2;
	}
	log_open(LOG_TO_STDERR, NULL, debug);
	o.url = argv[optind];
	cmd = argv[optind + 1];
	path = argc - optind > 2 ? argv[optind + 2] : "";
	err = store_open(&o, &s);
	if (err)
		return fail("open", err);
	if (!strcmp(cmd, "stat")) {
		struct store_attr a;

		err = s->ops->stat(s, path, &a);
		if (!err)
			printf("%s %llu %lld %s\n", a.is_dir ? "dir" : "file",
			       (unsigned long long)a.size, (long long)a.mtime,
			       a.etag);
	} else if (!strcmp(cmd, "ls")) {
		err = print_dir(s, path, false);
	} else if (!strcmp(cmd, "find")) {
		err = print_dir(s, path, true);
	} else if (!strcmp(cmd, "cat")) {
		err = cat(s, path);
	} else {
		fprintf(stderr, "s3-probe: unknown command %s\n", cmd);
		err = -EINVAL;
	}
	if (fflush(stdout))
		err = err ? err : -EIO;
	store_close(s);
	if (err)
		return fail(cmd, err);
	return 0;
}
