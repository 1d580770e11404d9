# Unit tests of the URL helpers and the directory listing parsers, with the
# index pages they are checked against.
listing_test_data = \
	tests/data/listings/capture.sh \
	tests/data/listings/apache-empty.html \
	tests/data/listings/apache-fancy.html \
	tests/data/listings/apache-icons.html \
	tests/data/listings/apache-plain.html \
	tests/data/listings/apache-table.html \
	tests/data/listings/bad-names.json \
	tests/data/listings/edge-links.html \
	tests/data/listings/malformed.json \
	tests/data/listings/nginx-empty.html \
	tests/data/listings/nginx-empty.json \
	tests/data/listings/nginx-rounded.html \
	tests/data/listings/nginx.html \
	tests/data/listings/nginx.json \
	tests/data/listings/not-listing.json \
	tests/data/listings/python-empty.html \
	tests/data/listings/python.html \
	tests/data/listings/truncated.html
EXTRA_DIST += $(listing_test_data)

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-url tests/unit/test-listing
TESTS += tests/unit/test-url tests/unit/test-listing

tests_unit_test_url_SOURCES = tests/unit/test-url.c
tests_unit_test_url_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_url_LDADD = src/common/libcommon.la $(CMOCKA_LIBS)

# The parser is compiled in directly so that the test does not need the
# rest of the store (libcurl and the origins).
tests_unit_test_listing_SOURCES = tests/unit/test-listing.c \
	src/store/listing.c src/store/store-dir.c
tests_unit_test_listing_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_listing_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) \
	$(XML_CFLAGS) $(JSON_CFLAGS)
tests_unit_test_listing_LDADD = src/common/libcommon.la $(XML_LIBS) \
	$(JSON_LIBS) $(CMOCKA_LIBS) $(PTHREAD_LIBS)
endif
