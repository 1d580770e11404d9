noinst_LTLIBRARIES += src/common/libcommon.la
src_common_libcommon_la_SOURCES = \
	src/common/log.c src/common/log.h \
	src/common/url.c src/common/url.h
