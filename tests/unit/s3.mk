# The S3 origin's tests: cmocka unit tests of its parsers and credential
# chain, a libFuzzer target for the listing parser (with clang), and
# integration tests against s3rver behind a SigV4-checking front.
# s3rver is installed by the caller (see doc/s3.md):
#   npm install --prefix "$top_builddir/tests/node" s3rver@3
s3_test_data = \
	tests/data/s3/aws-encoded.xml \
	tests/data/s3/aws-truncated.xml \
	tests/data/s3/bad-escape.xml \
	tests/data/s3/bad-size.xml \
	tests/data/s3/cut.xml \
	tests/data/s3/empty.xml \
	tests/data/s3/entities.xml \
	tests/data/s3/error-accessdenied.xml \
	tests/data/s3/error-expired.xml \
	tests/data/s3/error-region.xml \
	tests/data/s3/error-signature.xml \
	tests/data/s3/error-slowdown.xml \
	tests/data/s3/html.html \
	tests/data/s3/no-key.xml \
	tests/data/s3/s3rver-nosuchbucket.xml \
	tests/data/s3/s3rver-page.xml \
	tests/data/s3/s3rver-root.xml \
	tests/data/s3/truncated-no-token.xml \
	tests/data/s3/xhtml.xml
EXTRA_DIST += $(s3_test_data) doc/s3.md \
	tests/fuzz/fuzz-s3-list.c \
	tests/integration/s3-front.py \
	tests/integration/s3-imds.py \
	tests/integration/s3-lib.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-s3-xml tests/unit/test-s3-creds
TESTS += tests/unit/test-s3-xml tests/unit/test-s3-creds

# The parsers are compiled in directly: no libcurl, no origin.
tests_unit_test_s3_xml_SOURCES = tests/unit/test-s3-xml.c src/store/s3-xml.c
tests_unit_test_s3_xml_CPPFLAGS = $(AM_CPPFLAGS) -DSRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_s3_xml_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(XML_CFLAGS)
tests_unit_test_s3_xml_LDADD = src/common/libcommon.la $(XML_LIBS) \
	$(CMOCKA_LIBS) $(PTHREAD_LIBS)

tests_unit_test_s3_creds_SOURCES = tests/unit/test-s3-creds.c \
	src/store/s3-creds.c src/store/s3-xml.c
tests_unit_test_s3_creds_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) \
	$(CURL_CFLAGS) $(XML_CFLAGS) $(JSON_CFLAGS)
tests_unit_test_s3_creds_LDADD = src/common/libcommon.la $(CURL_LIBS) \
	$(XML_LIBS) $(JSON_LIBS) $(CMOCKA_LIBS) $(PTHREAD_LIBS)
# A copy of one chosen string fails: the out-of-memory paths.
tests_unit_test_s3_creds_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=strdup
endif

# The origin without FUSE, driven by the integration scripts.
check_PROGRAMS += tests/integration/s3-probe
tests_integration_s3_probe_SOURCES = tests/integration/s3-probe.c
tests_integration_s3_probe_LDADD = src/store/libstore.la src/common/libcommon.la \
	$(PTHREAD_LIBS)

s3_integration_tests = \
	tests/integration/s3-store.sh \
	tests/integration/s3-errors.sh \
	tests/integration/s3-mount.sh
dist_check_SCRIPTS += $(s3_integration_tests)
TESTS += $(s3_integration_tests)

# libFuzzer needs clang; the target is built apart from the gcc objects
# and run for a short fixed time by its wrapper script.
if HAVE_CLANG
TESTS += tests/fuzz/fuzz-s3-list.sh
# Built by "make check" before any test runs (a rule naming the test's
# .log would replace automake's own and the log would never be made).
check_DATA = tests/fuzz/fuzz-s3-list
endif
dist_check_SCRIPTS += tests/fuzz/fuzz-s3-list.sh
CLEANFILES += tests/fuzz/fuzz-s3-list
tests/fuzz/fuzz-s3-list: $(top_srcdir)/tests/fuzz/fuzz-s3-list.c \
		$(top_srcdir)/src/store/s3-xml.c $(top_srcdir)/src/store/s3-xml.h \
		$(top_srcdir)/src/common/url.c
	$(AM_V_CC)$(MKDIR_P) tests/fuzz && \
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined \
		-I$(top_builddir) -I$(top_srcdir)/src $(XML_CFLAGS) \
		-o $@ $(top_srcdir)/tests/fuzz/fuzz-s3-list.c \
		$(top_srcdir)/src/store/s3-xml.c $(top_srcdir)/src/common/url.c \
		$(XML_LIBS) -lpthread
