/*
 * "cofault run": run a program with libcofault-preload.so in LD_PRELOAD, so
 * its mmap() of files on cofault mounts gets cooperative, interruptible page
 * faults without being rebuilt. Everything is handed to the shim through
 * the environment, which CMD's children inherit too.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fault/dev.h"
#include "fault/fault.h"

/* Where "make install" puts the shim; set by src/fault/local.mk. */
#ifndef COFAULT_PRELOAD_PATH
#error "COFAULT_PRELOAD_PATH must be defined by the build"
#endif

/* Exit statuses of env(1), nohup(1) and friends. */
#define RUN_EXIT_USAGE 2
#define RUN_EXIT_FAIL 125
#define RUN_EXIT_CANNOT_EXEC 126
#define RUN_EXIT_NOT_FOUND 127

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: cofault run [OPTIONS] [--] COMMAND [ARGS...]\n"
		"\n"
		"Run COMMAND with cofault's mmap shim preloaded: its mmap() "
		"of\n"
		"files on cofault mounts goes through /dev/cofault "
		"(cooperative,\n"
		"interruptible page faults) when the module is loaded, and is\n"
		"plain mmap() otherwise.\n"
		"\n"
		"  --mount DIR   only files of the mount holding DIR\n"
		"  --any-fuse    files of any FUSE mount, not only cofault's\n"
		"  --debug       the shim reports each file mapping on stderr\n"
		"  -h, --help    this text\n"
		"\n"
		"COFAULT_PRELOAD_LIB overrides the shim's path (%s).\n",
		COFAULT_PRELOAD_PATH);
}

/* Does the first LD_PRELOAD entry of list name a sanitizer runtime? */
static bool run_asan_first(const char *list)
{
	size_t n = strcspn(list, ": ");
	const char *hit = strstr(list, "libasan");

	if (!hit)
		hit = strstr(list, "libclang_rt.asan");
	return hit && (size_t)(hit - list) < n;
}

/*
 * Put shim first in LD_PRELOAD (after an ASan runtime, which insists on
 * coming first), keeping what was there. 0 or -errno.
 */
static int run_set_preload(const char *shim)
{
	const char *old = getenv("LD_PRELOAD");
	size_t first;
	char *val;
	int n, err;

	while (old && (*old == ':' || *old == ' '))
		old++;
	if (!old || !*old)
		return setenv("LD_PRELOAD", shim, 1) ? -errno : 0;
	if (run_asan_first(old)) {
		first = strcspn(old, ": ");
		n = asprintf(&val, "%.*s:%s:%s", (int)first, old, shim,
			     old + first + (old[first] ? 1 : 0));
	} else {
		n = asprintf(&val, "%s:%s", shim, old);
	}
	if (n < 0)
		return -ENOMEM;
	/* A trailing ':' (nothing after the ASan runtime) is harmless. */
	err = setenv("LD_PRELOAD", val, 1) ? -errno : 0;
	free(val);
	return err;
}

/* Check DIR and export it, absolute, as COFAULT_PRELOAD_MOUNT. 0 or -errno */
static int run_set_mount(const char *dir)
{
	char abs[PATH_MAX];
	struct statfs sfs;
	struct stat st;

	if (!realpath(dir, abs) || stat(abs, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(abs, &sfs) == 0 && sfs.f_type != FAULT_FUSE_SUPER_MAGIC)
		fprintf(stderr,
			"cofault run: warning: %s is not a FUSE mount: nothing "
			"will be mapped through /dev/cofault\n",
			abs);
	return setenv("COFAULT_PRELOAD_MOUNT", abs, 1) ? -errno : 0;
}

int fault_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"mount", required_argument, NULL, 'm'},
		{"any-fuse", no_argument, NULL, 'a'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *mount = NULL, *shim;
	bool any_fuse = false, debug = false;
	int c, err;

	/* '+': stop at COMMAND, whose own options are not ours. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mount = optarg;
			break;
		case 'a':
			any_fuse = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			run_usage(stderr);
			return RUN_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "cofault run: no command given\n");
		run_usage(stderr);
		return RUN_EXIT_USAGE;
	}

	shim = getenv("COFAULT_PRELOAD_LIB");
	if (!shim || !*shim)
		shim = COFAULT_PRELOAD_PATH;
	/* The dynamic linker splits LD_PRELOAD at both. */
	if (strpbrk(shim, ": ")) {
		fprintf(stderr, "cofault run: %s: ':' or ' ' in the path\n",
			shim);
		return RUN_EXIT_FAIL;
	}
	/* ld.so would only print a warning and run CMD without it. */
	if (access(shim, R_OK) < 0) {
		fprintf(stderr, "cofault run: %s: %s\n", shim, strerror(errno));
		return RUN_EXIT_FAIL;
	}
	if (mount) {
		err = run_set_mount(mount);
		if (err) {
			fprintf(stderr, "cofault run: --mount %s: %s\n", mount,
				strerror(-err));
			return RUN_EXIT_FAIL;
		}
	}
	if ((any_fuse && setenv("COFAULT_PRELOAD_ANY_FUSE", "1", 1)) ||
	    (debug && setenv("COFAULT_PRELOAD_DEBUG", "1", 1))) {
		perror("cofault run: setenv");
		return RUN_EXIT_FAIL;
	}
	err = run_set_preload(shim);
	if (err) {
		fprintf(stderr, "cofault run: LD_PRELOAD: %s\n",
			strerror(-err));
		return RUN_EXIT_FAIL;
	}
	if (debug) {
		err = fault_dev_get();
		fprintf(stderr, "cofault run: LD_PRELOAD=%s; %s%s\n",
			getenv("LD_PRELOAD"),
			err >= 0 ? "/dev/cofault is available"
				 : "/dev/cofault unavailable, plain mmap: ",
			err >= 0 ? "" : strerror(-err));
	}

	execvp(argv[optind], argv + optind);
	err = errno;
	fprintf(stderr, "cofault run: %s: %s\n", argv[optind], strerror(err));
	return err == ENOENT ? RUN_EXIT_NOT_FOUND : RUN_EXIT_CANNOT_EXEC;
}
