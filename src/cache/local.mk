# The persistent chunk cache: a convenience library the daemon links.
noinst_LTLIBRARIES += src/cache/libcache.la
src_cache_libcache_la_SOURCES = \
	src/cache/cache.c src/cache/cache.h src/cache/cache-int.h \
	src/cache/cache-index.c \
	src/cache/cache-store.c \
	src/cache/cache-hold.c \
	src/cache/cache-guard.c \
	src/cache/cache-evict.c \
	src/cache/cache-share.c \
	src/cache/cache-crc.c
src_cache_libcache_la_CFLAGS = $(AM_CFLAGS) $(SQLITE_CFLAGS)
src_cache_libcache_la_LIBADD = src/common/libcommon.la $(SQLITE_LIBS) \
	$(PTHREAD_LIBS)

# Layout and throughput measurements, built on demand only, e.g.
# make bench/cache-bench && bench/cache-bench NEW_DIR 512 1024 4
EXTRA_PROGRAMS = bench/cache-layout bench/cache-bench
bench_cache_layout_SOURCES = bench/cache-layout.c
bench_cache_layout_LDADD = src/cache/libcache.la
bench_cache_bench_SOURCES = bench/cache-bench.c
bench_cache_bench_LDADD = src/cache/libcache.la
CLEANFILES += bench/cache-layout bench/cache-bench
