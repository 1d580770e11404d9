/*
 * The fault layer as the cofault program sees it: subcommands about the
 * kernel module and about running programs with the mmap shim. (libcofault
 * and the preload shim have their own headers.)
 */
#ifndef FAULT_FAULT_H
#define FAULT_FAULT_H

/*
 * `cofault kmod status`: whether cofault.ko is loaded, the API version it
 * serves, its parameters and counters. argv[0] is "kmod". Prints to stdout;
 * returns the exit status: 0 loaded, 1 not loaded or unusable, 2 usage.
 */
int fault_cmd_kmod(int argc, char **argv);

/*
 * `cofault run [--mount DIR] [--any-fuse] [--debug] -- CMD [ARGS...]`: exec
 * CMD with libcofault-preload.so put first in LD_PRELOAD. argv[0] is "run".
 * Returns only on failure: 2 usage, 125 when the shim or DIR is unusable,
 * 126/127 when CMD cannot be run / is not found (as env(1) does).
 */
int fault_cmd_run(int argc, char **argv);

#endif /* FAULT_FAULT_H */
