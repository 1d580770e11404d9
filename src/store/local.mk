noinst_LTLIBRARIES += src/store/libstore.la
src_store_libstore_la_SOURCES = \
	src/store/store.c src/store/store.h \
	src/store/http.c src/store/http.h \
	src/store/http-lean.c src/store/http-int.h \
	src/store/listing.c src/store/listing.h \
	src/store/store-dir.c \
	src/store/store-httpdir.c \
	src/store/store-s3.c \
	src/store/s3-creds.c src/store/s3-creds.h \
	src/store/s3-xml.c src/store/s3-xml.h
src_store_libstore_la_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(XML_CFLAGS) $(JSON_CFLAGS)
src_store_libstore_la_LIBADD = src/common/libcommon.la $(CURL_LIBS) $(XML_LIBS) $(JSON_LIBS)
