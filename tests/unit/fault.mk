# Unit tests of the fault layer's user-space side.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-fault-mountinfo
TESTS += tests/unit/test-fault-mountinfo

tests_unit_test_fault_mountinfo_SOURCES = tests/unit/test-fault-mountinfo.c \
	src/fault/mountinfo.c src/fault/mountinfo.h
tests_unit_test_fault_mountinfo_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fault_mountinfo_LDADD = $(CMOCKA_LIBS)
endif
