bin_PROGRAMS += cofault
cofault_SOURCES = \
	src/fs/main.c \
	src/fs/cmd.h \
	src/fs/cmd-mount.c \
	src/fs/cmd-cache.c \
	src/fs/cmd-prefetch.c \
	src/fs/fs.c src/fs/fs.h \
	src/fs/inode.c src/fs/inode.h \
	src/fs/data.c src/fs/data.h src/fs/data-int.h \
	src/fs/data-fill.c \
	src/fs/data-pool.c src/fs/data-pool.h \
	src/fs/data-disk.c src/fs/data-disk.h \
	src/fs/watch.c src/fs/watch.h
cofault_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS) $(CURL_CFLAGS)
cofault_LDADD = src/fault/libfault.la src/cache/libcache.la \
	src/store/libstore.la src/common/libcommon.la \
	$(FUSE_LIBS) $(CURL_LIBS) $(SQLITE_LIBS) $(PTHREAD_LIBS)
