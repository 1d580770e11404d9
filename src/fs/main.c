/*
 * The cofault program: subcommand dispatch, --version and --help.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fault/fault.h"
#include "fs/cmd.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} main_cmds[] = {
	{ "mount", fs_cmd_mount, "mount an HTTP(S) directory or S3 bucket" },
	{ "unmount", fs_cmd_unmount, "unmount a cofault mount" },
	{ "cache", fs_cmd_cache, "show, clear or verify the chunk cache" },
	{ "prefetch", fs_cmd_prefetch, "warm the chunk cache for files or trees" },
	{ "run", fault_cmd_run,
	  "run a program with cofault's mmap shim preloaded" },
	{ "kmod", fault_cmd_kmod, "state of the cofault kernel module" },
};

static void main_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: cofault COMMAND [ARGS...]\n"
		   "       cofault --version | --help\n\ncommands:\n");
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		fprintf(f, "  %-9s %s\n", main_cmds[i].name,
			main_cmds[i].summary);
	fprintf(f, "\n'cofault COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("cofault %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		main_usage(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
		if (!strcmp(argv[1], main_cmds[i].name))
			return main_cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "cofault: unknown command '%s'\n", argv[1]);
	main_usage(stderr);
	return 2;
}
