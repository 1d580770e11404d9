# Tests of libcofault, the LD_PRELOAD shim and "cofault run", on a host
# without the kernel module: everything must come out as plain mmap with
# identical data and errno. tests/kmod/ repeats them with the module loaded.

check_PROGRAMS += \
	tests/integration/preload-check \
	tests/integration/preload-fusefs \
	doc/examples/mmap-timeout

tests_integration_preload_check_SOURCES = tests/integration/preload-check.c
tests_integration_preload_check_LDADD = src/fault/libcofault.la $(PTHREAD_LIBS)

tests_integration_preload_fusefs_SOURCES = tests/integration/preload-fusefs.c
tests_integration_preload_fusefs_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS)
tests_integration_preload_fusefs_LDADD = $(FUSE_LIBS)

doc_examples_mmap_timeout_SOURCES = doc/examples/mmap-timeout.c
doc_examples_mmap_timeout_LDADD = src/fault/libcofault.la

TESTS += \
	tests/integration/preload-transparent.sh \
	tests/integration/preload-fuse.sh \
	tests/integration/preload-mount.sh
dist_check_SCRIPTS += \
	tests/integration/preload-transparent.sh \
	tests/integration/preload-fuse.sh \
	tests/integration/preload-mount.sh
EXTRA_DIST += \
	tests/integration/preload-lib.sh \
	doc/examples/README.md \
	doc/examples/loader.py
# Sourced by tests/kmod/guest.sh inside the QEMU guests.
EXTRA_DIST += tests/kmod/preload-guest.sh
