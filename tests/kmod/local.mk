# Kernel-module tests: boot each installed kernel under QEMU (TCG), load
# cofault.ko and run tests/kmod/guest.sh inside (see tests/kmod/qemu.sh).
# They skip (77) when QEMU, busybox or a kernel with headers is missing.
check_PROGRAMS += tests/kmod/cftest tests/kmod/delayfs
tests_kmod_cftest_SOURCES = tests/kmod/cftest.c
tests_kmod_cftest_LDADD = $(PTHREAD_LIBS)
tests_kmod_delayfs_SOURCES = tests/kmod/delayfs.c
tests_kmod_delayfs_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS)
tests_kmod_delayfs_LDADD = $(FUSE_LIBS)

TESTS += tests/kmod/qemu.sh
dist_check_SCRIPTS += tests/kmod/qemu.sh
EXTRA_DIST += tests/kmod/guest.sh tests/kmod/guest-init.sh
CLEANFILES += tests/kmod/console-*.log
