#!/bin/bash
# A random reader's second epoch comes from the disk cache. Random reads
# fetch only the pages they ask for, which the disk tier (whole chunks)
# cannot keep; once a chunk's fragments have cost the origin 16 requests
# or a chunk's worth of bytes, the chunk is made whole and persisted: put
# together from its fragments when they cover it in memory, else fetched
# whole. So a reader that visits every page in random order costs the
# origin 16 requests a chunk and the chunk (and what it reads of the
# chunk while the chunk is on its way), and nothing at all the next
# time; one that reads aligned 64 KiB records costs exactly its records,
# even when the file system is unmounted the moment it is done; with
# --fill-requests 0 a reader costs exactly its pages, the chunks then put
# together from memory; a reader that touches a few pages of each chunk
# costs exactly those pages.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
MiB=1048576
PAGES=$((4 * MiB / 4096))

www=$T/www
mkdir -p "$www"
cf_random_file "$www/all" $((4 * MiB)) # 4 chunks of the default 1 MiB
cf_random_file "$www/few" $((16 * MiB))
cf_random_file "$www/tight" $((4 * MiB))
cf_random_file "$www/rec" $((4 * MiB))
cf_random_file "$www/bytes" $((4 * MiB))
cf_nginx_start "$www"
CACHE=$T/cache
m=$T/m

gets() { cf_nginx_count "\"GET /$1 "; }

# epoch FILE ORIGINAL SEED COUNT [UNIT]: pread COUNT distinct aligned
# blocks of UNIT bytes (4096) of FILE in a seeded random order, no
# readahead (POSIX_FADV_RANDOM), each checked against ORIGINAL; prints the
# number of bad blocks.
epoch() {
	timeout 300 python3 - "$@" <<'EOF' || echo "reader failed"
import os, random, sys
path, orig, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
unit = int(sys.argv[5]) if len(sys.argv) > 5 else 4096
blocks = list(range(os.path.getsize(orig) // unit))
random.Random(seed).shuffle(blocks)
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
bad = 0
with open(orig, "rb") as f:
    for b in blocks[:count]:
        f.seek(b * unit)
        bad += os.pread(fd, unit, b * unit) != f.read(unit)
os.close(fd)
print(bad)
EOF
}

chunks_cached() {
	"$COFAULT" cache stats --cache-dir "$CACHE" | awk '$1 == "chunks" { print $2 }'
}

# filled LOG: what the daemon's last exit line says it filled, as
# "N (M from memory)".
filled() {
	sed -n 's/.*chunks filled \([0-9]* ([0-9]* from memory)\).*/\1/p' \
		"$1" | tail -n 1
}
cached_at_least() { [ "$(chunks_cached)" -ge "$1" ]; }

# want_filled WHAT "N (M from memory)": the daemon's last exit line says so.
want_filled() {
	local got
	got=$(filled "$T/cofault-m.log")
	[ "$got" = "$2" ] ||
		cf_fail "$1: daemon says \"$got\" chunks filled, want $2"
}

# pass FILE SEED CHUNKS [MOUNT OPTION...]: every page of FILE once, in a
# random order, on a new mount; then wait until the cache holds CHUNKS
# chunks (the fills are written in the background) and unmount.
pass() {
	local f=$1 seed=$2 want=$3 bad
	shift 3
	cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE" "$@"
	bad=$(epoch "$m/$f" "$www/$f" "$seed" "$PAGES")
	[ "$bad" = 0 ] || cf_fail "$f: $bad bad pages"
	cf_wait_until 60 cached_at_least "$want" ||
		cf_fail "$f: $(chunks_cached) chunks cached after 60 s, want $want"
	cf_unmount "$m"
}

# again FILE SEED [MOUNT OPTION...]: every page of FILE once more, in
# another random order, on a new mount over the cache with the page cache
# dropped: the origin must see no request for FILE.
again() {
	local f=$1 seed=$2 before bad
	shift 2
	before=$(gets "$f")
	cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE" "$@"
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	bad=$(epoch "$m/$f" "$www/$f" "$seed" "$PAGES")
	[ "$bad" = 0 ] || cf_fail "$f, next epoch: $bad bad pages"
	cf_unmount "$m"
	[ "$(gets "$f")" = "$before" ] ||
		cf_fail "$f, next epoch: $(($(gets "$f") - before)) origin requests, want 0"
}

# --- 1. every page once, in random order: then every chunk is on disk -------
# Each chunk is fetched whole a quarter of the way through. Reads of it
# while that fetch is on its way fetch their own pages, unless it is due
# about as soon as their own request would be; the daemon counts those
# requests. How many there are depends on how fast the machine is at the
# time; every other request is accounted for.
pass all 1 4
first=$(gets all)
during=$(sed -n 's/.*requests during fills \([0-9]*\).*/\1/p' \
	"$T/cofault-m.log" | tail -n 1)
[ -n "$during" ] || cf_fail "first epoch: no \"requests during fills\" in the log"
[ "$first" = $((4 * 16 + 4 + during)) ] ||
	cf_fail "first epoch: $first requests, want 16 a chunk, the chunk, and the $during made while a chunk was being fetched whole"
[ "$during" -le $((PAGES / 2)) ] ||
	cf_fail "first epoch: $during requests while chunks were being fetched whole, for $PAGES pages"
want_filled "first epoch" "4 (0 from memory)"
cf_log "first epoch: $PAGES pages, $first origin requests ($during during fills), 4 chunks fetched whole"

# --- 2. the second epoch, after a remount, asks the origin nothing ----------
again all 2
cf_log "second epoch: $PAGES pages, 0 origin requests"

# --- 3. aligned records cover their chunks: nothing fetched twice ---------
# 64 KiB records, 16 to a chunk, in random order: each chunk's 16th record
# completes it in memory. Unmounted at once: the daemon writes what its
# disk writers hold before it exits.
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
bad=$(epoch "$m/rec" "$www/rec" 6 64 65536)
[ "$bad" = 0 ] || cf_fail "records: $bad bad records"
cf_unmount "$m"
[ "$(gets rec)" = 64 ] ||
	cf_fail "records: $(gets rec) requests for 64 records"
want_filled records "4 (4 from memory)"
cached_at_least 8 ||
	cf_fail "records: $(chunks_cached) chunks cached after the unmount, want 8"
again rec 7
cf_log "records: 64 records, 64 origin requests, 4 chunks from memory; then 0"

# --- 4. pages the memory budget let go: each chunk is fetched whole --------
# 2 MiB of memory: the four chunks fall due at about the same time and
# the budget takes them in turn, each queued when the one before is done.
pass tight 4 12 --max-memory 2M
tight=$(gets tight)
[ "$tight" -le $((PAGES / 2)) ] ||
	cf_fail "tight memory: $tight requests for $PAGES pages, want at most $((PAGES / 2))"
want_filled "tight memory" "4 (0 from memory)"
again tight 5 --max-memory 2M
cf_log "tight memory: $PAGES pages, $tight origin requests, 4 chunks fetched whole; then 0"

# --- 5. --fill-requests 0: only the bytes count ----------------------------
# No chunk is fetched whole: each is due at its 256th page, which
# completes it in memory. Exactly one request a page, then none.
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE" --fill-requests 0
bad=$(epoch "$m/bytes" "$www/bytes" 8 "$PAGES")
[ "$bad" = 0 ] || cf_fail "--fill-requests 0: $bad bad pages"
cf_unmount "$m"
[ "$(gets bytes)" = "$PAGES" ] ||
	cf_fail "--fill-requests 0: $(gets bytes) requests for $PAGES pages"
want_filled "--fill-requests 0" "4 (4 from memory)"
again bytes 9 --fill-requests 0
cf_log "--fill-requests 0: $PAGES pages, $PAGES origin requests, 4 chunks from memory; then 0"

# --- 6. a sparse reader costs exactly its pages -----------------------------
# 64 pages of 16 chunks: about 4 a chunk, never 16.
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
bad=$(epoch "$m/few" "$www/few" 3 64)
[ "$bad" = 0 ] || cf_fail "sparse reader: $bad bad pages"
cf_unmount "$m"
few=$(gets few)
[ "$few" = 64 ] || cf_fail "sparse reader: $few origin requests for 64 pages"
want_filled "sparse reader" "0 (0 from memory)"
cf_log "sparse reader: 64 pages, 64 origin requests, nothing filled"
