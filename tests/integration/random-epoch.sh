#!/bin/bash
# A random reader's second epoch comes from the disk cache. Random reads
# fetch only the pages they ask for, which the disk tier (whole chunks)
# cannot keep; once a chunk's pages have cost the origin a chunk's worth,
# the chunk is fetched whole and persisted. So a reader that visits every
# page in random order costs the origin twice the file once, and nothing
# at all the next time, after a remount; a reader that touches a few pages
# costs exactly those pages.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
MiB=1048576
PAGES=$((4 * MiB / 4096))

www=$T/www
mkdir -p "$www"
cf_random_file "$www/all" $((4 * MiB)) # 4 chunks of the default 1 MiB
cf_random_file "$www/few" $((4 * MiB))
cf_nginx_start "$www"
CACHE=$T/cache
m=$T/m

gets() { cf_nginx_count "\"GET /$1 "; }

# epoch FILE ORIGINAL SEED COUNT: pread COUNT distinct 4 KiB pages of FILE
# in a seeded random order, no readahead (POSIX_FADV_RANDOM), each checked
# against ORIGINAL; prints the number of bad pages.
epoch() {
	timeout 300 python3 - "$@" <<'EOF' || echo "reader failed"
import os, random, sys
path, orig, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pages = list(range(os.path.getsize(orig) // 4096))
random.Random(seed).shuffle(pages)
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
bad = 0
with open(orig, "rb") as f:
    for p in pages[:count]:
        f.seek(p * 4096)
        bad += os.pread(fd, 4096, p * 4096) != f.read(4096)
os.close(fd)
print(bad)
EOF
}

chunks_cached() {
	"$COFAULT" cache stats --cache-dir "$CACHE" | awk '$1 == "chunks" { print $2 }'
}
four_cached() { [ "$(chunks_cached)" -ge 4 ]; }

# --- 1. every page once, in random order: then every chunk is on disk -------
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
bad=$(epoch "$m/all" "$www/all" 1 "$PAGES")
[ "$bad" = 0 ] || cf_fail "first epoch: $bad bad pages"
# The last page of a chunk queues the chunk; it is persisted in the
# background.
cf_wait_until 60 four_cached ||
	cf_fail "first epoch: $(chunks_cached) chunks cached after 60 s, want 4"
cf_unmount "$m"
first=$(gets all)
# One request per page, then each chunk once: twice the file.
[ "$first" = $((PAGES + 4)) ] ||
	cf_fail "first epoch: $first requests, want $((PAGES + 4)) (a page each, then 4 chunks)"
filled=$(sed -n 's/.*chunks filled \([0-9]*\).*/\1/p' "$T/cofault-m.log" | tail -n 1)
[ "$filled" = 4 ] || cf_fail "first epoch: daemon says $filled chunks filled, want 4"
cf_log "first epoch: $PAGES pages, $first origin requests, 4 chunks filled"

# --- 2. the second epoch, after a remount, asks the origin nothing ----------
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
bad=$(epoch "$m/all" "$www/all" 2 "$PAGES")
[ "$bad" = 0 ] || cf_fail "second epoch: $bad bad pages"
cf_unmount "$m"
second=$(($(gets all) - first))
[ "$second" = 0 ] || cf_fail "second epoch: $second origin requests, want 0"
cf_log "second epoch: $PAGES pages, 0 origin requests"

# --- 3. a sparse reader costs exactly its pages -----------------------------
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
bad=$(epoch "$m/few" "$www/few" 3 64)
[ "$bad" = 0 ] || cf_fail "sparse reader: $bad bad pages"
cf_unmount "$m"
few=$(gets few)
[ "$few" = 64 ] || cf_fail "sparse reader: $few origin requests for 64 pages"
filled=$(sed -n 's/.*chunks filled \([0-9]*\).*/\1/p' "$T/cofault-m.log" | tail -n 1)
[ "$filled" = 0 ] || cf_fail "sparse reader: $filled chunks filled, want 0"
cf_log "sparse reader: 64 pages, 64 origin requests, nothing filled"
