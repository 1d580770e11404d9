noinst_LTLIBRARIES += src/common/libcommon.la
src_common_libcommon_la_SOURCES = \
	src/common/bloom.c src/common/bloom.h \
	src/common/cancel.c src/common/cancel.h \
	src/common/log.c src/common/log.h \
	src/common/mono.c src/common/mono.h \
	src/common/url.c src/common/url.h
