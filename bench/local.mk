# Benchmarks, run by hand: bench/http-seq.sh (see its header).
# nullfs (the FUSE ceiling) and reqcost are built with "make check" so
# they never rot, or alone with "make bench/nullfs bench/reqcost".
check_PROGRAMS += bench/nullfs
bench_nullfs_SOURCES = bench/nullfs.c bench/stream.c bench/stream.h
bench_nullfs_CFLAGS = $(AM_CFLAGS) $(FUSE_CFLAGS)
bench_nullfs_LDADD = $(FUSE_LIBS)
# reqcost: one small ranged GET, bare socket against libcurl and cofault's
# own client (http-seq.sh's reqcost workload).
check_PROGRAMS += bench/reqcost
bench_reqcost_SOURCES = bench/reqcost.c
bench_reqcost_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS)
bench_reqcost_LDADD = src/store/libstore.la $(CURL_LIBS)
EXTRA_DIST += bench/http-seq.sh
EXTRA_DIST += bench/interrupt-cost.sh bench/read-cost.sh
# bench/compare.sh: cofault beside rclone, httpdirfs and httpfs2, with
# bench/delay-proxy.py for the slow origin; method in bench/README.md.
EXTRA_DIST += bench/compare.sh bench/delay-proxy.py bench/README.md
EXTRA_DIST += bench/lib.sh
