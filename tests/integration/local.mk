# Integration tests: real servers on 127.0.0.1, real FUSE mounts.
# Each script sources lib.sh; the helpers compare data through the mount
# with the original files.
check_PROGRAMS += \
	tests/integration/cmp-mmap \
	tests/integration/cmp-threads \
	tests/integration/intr-read
tests_integration_cmp_mmap_SOURCES = tests/integration/cmp-mmap.c
tests_integration_cmp_threads_SOURCES = tests/integration/cmp-threads.c
tests_integration_cmp_threads_LDADD = $(PTHREAD_LIBS)
tests_integration_intr_read_SOURCES = tests/integration/intr-read.c

INTEGRATION_TESTS = \
	tests/integration/data.sh \
	tests/integration/listing.sh \
	tests/integration/interrupt.sh \
	tests/integration/bad-mount.sh \
	tests/integration/bad-origin.sh \
	tests/integration/unmount.sh \
	tests/integration/first-read.sh \
	tests/integration/mmap-boundary.sh
TESTS += $(INTEGRATION_TESTS)
dist_check_SCRIPTS += $(INTEGRATION_TESTS)
EXTRA_DIST += tests/integration/lib.sh tests/tools/slow_origin.py
