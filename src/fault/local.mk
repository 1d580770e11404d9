# src/fault: the user-space side of the cooperative fault layer.
#   libcofault.la          cofault_mmap() for programs (include/cofault.h)
#   libcofault-preload.la  the LD_PRELOAD shim, installed in $(pkglibdir)
#   libfault.la            subcommands of the cofault program (fault.h)
# dev.c, the /dev/cofault client, is compiled into each: the shim must not
# depend on the library's install location, nor on sanitizer runtimes.

lib_LTLIBRARIES += src/fault/libcofault.la
include_HEADERS += include/cofault.h
src_fault_libcofault_la_SOURCES = \
	src/fault/lib.c \
	src/fault/dev.c src/fault/dev.h
src_fault_libcofault_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
src_fault_libcofault_la_LDFLAGS = $(AM_LDFLAGS) -no-undefined \
	-version-info 0:0:0

pkglib_LTLIBRARIES += src/fault/libcofault-preload.la
src_fault_libcofault_preload_la_SOURCES = \
	src/fault/preload.c \
	src/fault/dev.c src/fault/dev.h
# No $(SAN_CFLAGS)/$(SAN_LDFLAGS), even in sanitizer builds: the shim is
# preloaded into programs built without them, where an ASan runtime that is
# not first in the link map aborts the program.
src_fault_libcofault_preload_la_CFLAGS = $(WARN_CFLAGS) -fvisibility=hidden
src_fault_libcofault_preload_la_LDFLAGS = -module -avoid-version -shared \
	-no-undefined

noinst_LTLIBRARIES += src/fault/libfault.la
src_fault_libfault_la_SOURCES = \
	src/fault/fault.h \
	src/fault/cmd-run.c \
	src/fault/dev.c src/fault/dev.h
src_fault_libfault_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DCOFAULT_PRELOAD_PATH='"$(pkglibdir)/libcofault-preload.so"'
