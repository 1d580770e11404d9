# The fault layer's user-space side linked into the cofault program.
noinst_LTLIBRARIES += src/fault/libfault.la
src_fault_libfault_la_SOURCES = src/fault/cmd-kmod.c src/fault/fault.h
noinst_HEADERS += include/linux/cofault.h

# "cofault run" (dev.c is compiled into each target below: the shim must
# depend neither on the library's install location nor on sanitizers).
src_fault_libfault_la_SOURCES += \
	src/fault/cmd-run.c \
	src/fault/dev.c src/fault/dev.h
# The mount-table reader, also used by the daemon's watch (src/fs/watch.c).
src_fault_libfault_la_SOURCES += src/fault/mountinfo.c src/fault/mountinfo.h
src_fault_libfault_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCOFAULT_PRELOAD_PATH='"$(pkglibdir)/libcofault-preload.so"'

# libcofault: cofault_mmap() for programs (include/cofault.h).
lib_LTLIBRARIES += src/fault/libcofault.la
include_HEADERS += include/cofault.h
src_fault_libcofault_la_SOURCES = \
	src/fault/lib.c \
	src/fault/dev.c src/fault/dev.h
src_fault_libcofault_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
src_fault_libcofault_la_LDFLAGS = $(AM_LDFLAGS) -no-undefined \
	-version-info 0:0:0

# libcofault-preload.so: the LD_PRELOAD shim, found by "cofault run" in
# $(pkglibdir). No $(SAN_CFLAGS)/$(SAN_LDFLAGS), even in sanitizer builds:
# it is preloaded into programs built without them, where an ASan runtime
# that is not first in the link map aborts the program.
pkglib_LTLIBRARIES += src/fault/libcofault-preload.la
src_fault_libcofault_preload_la_SOURCES = \
	src/fault/preload.c \
	src/fault/mountinfo.c src/fault/mountinfo.h \
	src/fault/dev.c src/fault/dev.h
src_fault_libcofault_preload_la_CFLAGS = $(WARN_CFLAGS) -fvisibility=hidden
src_fault_libcofault_preload_la_LDFLAGS = -module -avoid-version -shared \
	-no-undefined
