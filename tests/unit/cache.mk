# Unit tests of the persistent chunk cache (src/cache).
if HAVE_CMOCKA
cache_test_ldadd = src/cache/libcache.la src/common/libcommon.la \
	$(CMOCKA_LIBS) $(SQLITE_LIBS) $(PTHREAD_LIBS)
# Count the warnings the cache logs (tests/unit/cache-test.h).
cache_test_ldflags = $(AM_LDFLAGS) -Wl,--wrap=log_msg
cache_test_cflags = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS)

cache_tests = \
	tests/unit/test-cache-crc \
	tests/unit/test-cache-index \
	tests/unit/test-cache-store \
	tests/unit/test-cache-evict \
	tests/unit/test-cache-nospc \
	tests/unit/test-cache-sync
check_PROGRAMS += $(cache_tests)
TESTS += $(cache_tests)
noinst_HEADERS += tests/unit/cache-test.h tests/unit/test-tmpdir.h

tests_unit_test_cache_crc_SOURCES = tests/unit/test-cache-crc.c
tests_unit_test_cache_crc_CFLAGS = $(cache_test_cflags)
tests_unit_test_cache_crc_LDFLAGS = $(cache_test_ldflags)
tests_unit_test_cache_crc_LDADD = $(cache_test_ldadd)

tests_unit_test_cache_index_SOURCES = tests/unit/test-cache-index.c
tests_unit_test_cache_index_CFLAGS = $(cache_test_cflags)
tests_unit_test_cache_index_LDFLAGS = $(cache_test_ldflags)
tests_unit_test_cache_index_LDADD = $(cache_test_ldadd)

tests_unit_test_cache_store_SOURCES = tests/unit/test-cache-store.c
tests_unit_test_cache_store_CFLAGS = $(cache_test_cflags)
tests_unit_test_cache_store_LDFLAGS = $(cache_test_ldflags)
tests_unit_test_cache_store_LDADD = $(cache_test_ldadd)

tests_unit_test_cache_evict_SOURCES = tests/unit/test-cache-evict.c
# test_dead_writer holds the index's write lock itself.
tests_unit_test_cache_evict_CFLAGS = $(cache_test_cflags) $(SQLITE_CFLAGS)
# Races at chosen moments (test_race_last_room, test_race_punch).
tests_unit_test_cache_evict_LDFLAGS = $(cache_test_ldflags) \
	-Wl,--wrap=cache_share_others -Wl,--wrap=fallocate \
	-Wl,--wrap=fallocate64 -Wl,--wrap=fdatasync
tests_unit_test_cache_evict_LDADD = $(cache_test_ldadd)

tests_unit_test_cache_nospc_SOURCES = tests/unit/test-cache-nospc.c
tests_unit_test_cache_nospc_CFLAGS = $(cache_test_cflags)
tests_unit_test_cache_nospc_LDFLAGS = $(cache_test_ldflags)
tests_unit_test_cache_nospc_LDADD = $(cache_test_ldadd)

tests_unit_test_cache_sync_SOURCES = tests/unit/test-cache-sync.c
tests_unit_test_cache_sync_CFLAGS = $(cache_test_cflags)
# Pretend writeback errors on chosen descriptors, unreadable chunks, and
# files longer than they are.
tests_unit_test_cache_sync_LDFLAGS = $(cache_test_ldflags) \
	-Wl,--wrap=pwrite -Wl,--wrap=pwrite64 -Wl,--wrap=fdatasync \
	-Wl,--wrap=sync_file_range -Wl,--wrap=pread -Wl,--wrap=pread64 \
	-Wl,--wrap=lseek -Wl,--wrap=lseek64
tests_unit_test_cache_sync_LDADD = $(cache_test_ldadd)
endif
