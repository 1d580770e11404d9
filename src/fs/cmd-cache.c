/*
 * `cofault cache stats|clear|verify`: maintenance of the persistent chunk
 * cache, safe to run while mounts use the same directory (the cache's own
 * SQLite locking coordinates them).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "common/log.h"
#include "fs/cmd.h"

static const char cache_usage_text[] =
	"usage: cofault cache stats|clear|verify [--cache-dir DIR] [ORIGIN]\n"
	"\n"
	"  stats    objects, chunks and bytes held, and the limits\n"
	"  clear    drop every cached chunk (or only those of ORIGIN, the URL\n"
	"           a mount was made from)\n"
	"  verify   read every chunk back and check its checksum; bad ones are\n"
	"           dropped and counted\n";

static void cache_print_bytes(const char *label, uint64_t v)
{
	printf("%-16s %llu (%.1f MiB)\n", label, (unsigned long long)v,
	       (double)v / (1024.0 * 1024.0));
}

/*
 * This handle's limits are only the file system's defaults: the mounts
 * using the directory, if any, each have their own, and the smallest limit
 * and the largest floor apply (which says "smallest" or "largest").
 */
static void cache_print_limit(const struct cache_stats *st, const char *label,
			      uint64_t own, uint64_t mounts, const char *which)
{
	uint64_t v = st->handles ? mounts : own;

	printf("%-16s %llu (%.1f MiB), ", label, (unsigned long long)v,
	       (double)v / (1024.0 * 1024.0));
	if (!st->handles)
		printf("the default: no mount is using the directory\n");
	else if (st->handles == 1)
		printf("set by the mount using the directory\n");
	else
		printf("the %s of the %u mounts using the directory\n", which,
		       (unsigned int)st->handles);
}

int fs_cmd_cache(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cache_opts co = { .maintenance = true };
	struct cache_stats st;
	struct cache *c = NULL;
	char *dir = NULL;
	const char *verb;
	int ch, err, rc = 1;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "C:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			free(dir);
			dir = strdup(optarg);
			break;
		case 'h':
			fputs(cache_usage_text, stdout);
			free(dir);
			return 0;
		default:
			fprintf(stderr, "cofault: unknown option %s\n",
				argv[optind - 1]);
			goto out_usage;
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		goto out_usage;
	verb = argv[optind];
	if (strcmp(verb, "stats") && strcmp(verb, "clear") &&
	    strcmp(verb, "verify"))
		goto out_usage;
	if (!dir)
		dir = fs_default_cache_dir();
	if (!dir) {
		fprintf(stderr, "cofault: no cache directory: use --cache-dir\n");
		return 1;
	}
	co.dir = dir;
	/* What a mount would take; shown by stats when none is using it. */
	co.min_free_bytes = cache_default_min_free(dir);
	err = cache_open(&co, &c);
	if (err == -ENOENT) {
		fprintf(stderr, "cofault: no chunk cache in %s\n", dir);
		goto out;
	}
	if (err == -EUCLEAN) {
		fprintf(stderr,
			"cofault: the chunk cache index in %s is damaged; the "
			"next mount of it starts the cache afresh\n",
			dir);
		goto out;
	}
	if (err) {
		fprintf(stderr, "cofault: cannot open the chunk cache in %s: %s\n",
			dir, strerror(-err));
		goto out;
	}
	if (!strcmp(verb, "stats")) {
		err = cache_stats(c, &st);
		if (err)
			goto out_err;
		printf("%-16s %s\n", "directory", dir);
		printf("%-16s %llu\n", "objects",
		       (unsigned long long)st.objects);
		printf("%-16s %llu\n", "chunks", (unsigned long long)st.chunks);
		cache_print_bytes("bytes", st.bytes);
		cache_print_limit(&st, "limit", st.max_bytes,
				  st.handles_max_bytes, "smallest");
		cache_print_limit(&st, "min free", st.min_free_bytes,
				  st.handles_min_free_bytes, "largest");
		cache_print_bytes("fs free", st.fs_free_bytes);
		printf("%-16s %u\n", "chunk size", st.chunk_size);
	} else if (!strcmp(verb, "clear")) {
		err = cache_clear(c, argc - optind == 2 ? argv[optind + 1] :
							NULL);
		if (err)
			goto out_err;
	} else {
		uint64_t checked = 0, bad = 0;

		err = cache_verify(c, &checked, &bad);
		if (err)
			goto out_err;
		printf("checked %llu chunks, %llu bad (dropped)\n",
		       (unsigned long long)checked, (unsigned long long)bad);
		if (bad) {
			rc = 3;
			goto out;
		}
	}
	rc = 0;
	goto out;

out_err:
	fprintf(stderr, "cofault: cache %s: %s\n", verb, strerror(-err));
out:
	if (c)
		cache_close(c);
	free(dir);
	return rc;
out_usage:
	fputs(cache_usage_text, stderr);
	free(dir);
	return 2;
}
