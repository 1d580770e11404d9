# Unit tests of the core: the data path, the HTTP client core and the log.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-data tests/unit/test-http \
	tests/unit/test-bloom tests/unit/test-data-pool tests/unit/test-log
TESTS += tests/unit/test-data tests/unit/test-http tests/unit/test-bloom \
	tests/unit/test-data-pool tests/unit/test-log

tests_unit_test_data_SOURCES = tests/unit/test-data.c \
	src/fs/data.c src/fs/data-fill.c src/fs/data-disk.c src/fs/data-pool.c
tests_unit_test_data_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
# A failing cache_object_rejoin (test_rejoin_after_error); disk lookups
# counted (test_rejoin_map_clean).
tests_unit_test_data_LDFLAGS = $(AM_LDFLAGS) \
	-Wl,--wrap=cache_object_rejoin -Wl,--wrap=cache_chunk_read \
	-Wl,--wrap=cache_chunk_hold
tests_unit_test_data_LDADD = src/cache/libcache.la src/common/libcommon.la \
	$(CMOCKA_LIBS) $(SQLITE_LIBS) $(PTHREAD_LIBS)

tests_unit_test_data_pool_SOURCES = tests/unit/test-data-pool.c \
	src/fs/data-pool.c
tests_unit_test_data_pool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_data_pool_LDADD = $(CMOCKA_LIBS)

tests_unit_test_bloom_SOURCES = tests/unit/test-bloom.c
tests_unit_test_bloom_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_bloom_LDADD = src/common/libcommon.la $(CMOCKA_LIBS)

tests_unit_test_log_SOURCES = tests/unit/test-log.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = src/common/libcommon.la $(CMOCKA_LIBS)

tests_unit_test_http_SOURCES = tests/unit/test-http.c
tests_unit_test_http_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_http_LDADD = src/store/libstore.la src/common/libcommon.la \
	$(CMOCKA_LIBS) $(CURL_LIBS) $(PTHREAD_LIBS)
endif
