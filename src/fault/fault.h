/*
 * Subcommands of the cofault program that live in src/fault: the user-space
 * side of the cooperative fault layer. Each takes the subcommand's own
 * argc/argv (argv[0] is the subcommand name) and returns an exit status.
 */
#ifndef FAULT_FAULT_H
#define FAULT_FAULT_H

/*
 * cofault run [--mount DIR] [--any-fuse] [--debug] -- CMD [ARGS...]:
 * exec CMD with libcofault-preload.so prepended to LD_PRELOAD. Returns only
 * on failure: 2 for a usage error, 125 when the shim or DIR is unusable,
 * 126/127 when CMD cannot be run / is not found (as env(1) does).
 */
int fault_cmd_run(int argc, char **argv);

/* cofault kmod: the state of the cofault kernel module. */
int fault_cmd_kmod(int argc, char **argv);

#endif /* FAULT_FAULT_H */
