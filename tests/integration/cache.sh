#!/bin/bash
# The persistent chunk cache through real mounts: a remount serves cached
# data with zero origin data requests; a corrupted chunk is detected and
# fetched again; kill -9 of the daemon mid-read leaves nothing wrong
# behind; a small --cache-size keeps the directory near its limit; a full
# cache disk only costs speed; two mounts share one cache directory while
# both read and evict; a cache cleared under a live mount is filled again;
# an index locked by another process past the busy timeout only costs speed.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
MiB=1048576
SHARE_SECONDS=${CACHE_SHARE_SECONDS:-60}

www=$T/www
mkdir -p "$www/d"
cf_random_file "$www/big" $((48 * MiB))
for i in 0 1 2 3 4 5 6 7; do
	cf_random_file "$www/d/f$i" $((3 * MiB + i * 4097))
done
cf_nginx_start "$www"
CACHE=$T/cache

all_same() {
	local f
	cf_same_file "$1/big" "$www/big"
	for f in "$www"/d/*; do
		cf_same_file "$1/d/${f##*/}" "$f"
	done
}

data_gets() { cf_nginx_count '"GET /(big|d/f)'; }

# --- 1. remount: cached data costs the origin nothing ----------------------
m=$T/m1
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
all_same "$m"
cf_unmount "$m"
# Nothing was cached: the first reads' answers named the versions, and
# opening cost no HEAD.
heads=$(cf_nginx_count '"HEAD /')
[ "$heads" = 0 ] || cf_fail "first mount: $heads HEAD requests at open"
before=$(data_gets)
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
all_same "$m"
cf_unmount "$m"
after=$(data_gets)
if [ "$after" != "$before" ]; then
	grep -E '"GET /(big|d/f)' "$NGINX_ACCESS_LOG" | tail -n $((after - before)) >&2
	cf_fail "remount: $((after - before)) origin data requests for cached data"
fi
[ "$(cf_nginx_count '"HEAD /')" -gt 0 ] ||
	cf_fail "remount: cached files opened without learning their version"
# The big file streamed from the cache by splice, not through memory.
spliced=$(sed -n 's/.*spliced reads \([0-9]*\).*/\1/p' \
	"$T/cofault-$(basename "$m").log" | tail -n 1)
[ "${spliced:-0}" -gt 0 ] || cf_fail "remount: no read was spliced"
cf_log "remount: 0 data requests for cached data, $spliced reads spliced"

# --- 2. a corrupted chunk is dropped, fetched again, and logged ------------
"$COFAULT" cache verify --cache-dir "$CACHE" >/dev/null ||
	cf_fail "cache verify found bad chunks before the corruption"
# Every data file is an object; flip a byte in the middle of each.
n=0
for f in $(find "$CACHE/data" -type f); do
	size=$(stat -c %s "$f")
	[ "$size" -gt 4096 ] || continue
	python3 - "$f" $((size / 2)) <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
PY
	n=$((n + 1))
done
[ "$n" -gt 0 ] || cf_fail "no cache data files found under $CACHE/data"
before=$(data_gets)
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
cf_mount "$NGINX_URL" "$m" --cache-dir "$CACHE"
all_same "$m"
cf_unmount "$m"
after=$(data_gets)
[ "$after" -gt "$before" ] ||
	cf_fail "corrupted chunks were served without a refetch"
grep -qiE "checksum|crc" "$T/cofault-m1.log" ||
	cf_fail "the daemon did not log the bad checksum"
cf_log "corruption: $n files damaged, $((after - before)) chunks refetched"

# --- 3. kill -9 mid-read, then remount: everything still right -------------
K=$T/cache-kill
m=$T/m2
cf_mount "$NGINX_URL" "$m" --cache-dir "$K"
pid=$(cf_pids_with_arg "$m" | head -n 1)
[ -n "$pid" ] || cf_fail "no daemon for $m"
(cat "$m/big" "$m"/d/* >/dev/null 2>&1) &
reader=$!
sleep 0.4
kill -9 "$pid"
wait "$reader" 2>/dev/null || true
umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true
cf_wait_until 10 cf_not_mounted "$m" || cf_fail "dead mount did not go away"
cf_mount "$NGINX_URL" "$m" --cache-dir "$K"
all_same "$m"
cf_unmount "$m"
out=$("$COFAULT" cache verify --cache-dir "$K") ||
	cf_fail "after kill -9: $out"
cf_log "kill -9: $out"

# --- 4. a small cache stays near its limit ----------------------------------
S=$T/cache-small
m=$T/m3
limit=$((6 * MiB))
cf_mount "$NGINX_URL" "$m" --cache-dir "$S" --cache-size $limit
( while sleep 0.1; do du -sB1 "$S/data" 2>/dev/null | cut -f1; done ) \
	>"$T/du.log" &
sampler=$!
CF_PIDS="$CF_PIDS $sampler"
all_same "$m"
all_same "$m"
kill "$sampler"
cf_unmount "$m"
max=$(sort -n "$T/du.log" | tail -n 1)
# Blocks really used (holes punched on eviction do not count). The bound
# the issue sets: the limit plus one chunk per reader (one reader here;
# each file system block of metadata aside).
bound=$((limit + MiB + 64 * 1024))
cf_log "small cache: at most $max bytes on disk, limit $limit"
[ "${max:-0}" -le "$bound" ] ||
	cf_fail "cache directory reached $max bytes, limit $limit"

# --- 5. a full cache disk costs speed only ----------------------------------
tiny=$T/tiny
mkdir -p "$tiny"
# read_tiny NAME PATTERN WHY: a mount NAME with its cache on the tiny
# file system reads every file right, and its log matches PATTERN.
read_tiny() {
	local m=$T/$1
	cf_mount "$NGINX_URL" "$m" --cache-dir "$tiny/c" \
		--cache-size $((256 * MiB)) --cache-min-free 0
	all_same "$m"
	cf_unmount "$m"
	grep -qi "$2" "$T/cofault-$1.log" || cf_fail "$3"
}
if mount -t tmpfs -o size=3m,mode=0700 tmpfs "$tiny" 2>/dev/null; then
	CF_MOUNTS="$CF_MOUNTS $tiny"
	read_tiny m4 "space\|full\|ENOSPC" "a full cache disk was not reported"
	# Full to the last byte before the mount: the index cannot even
	# open its shared-memory file. The mount goes on without the cache.
	cat /dev/zero >"$tiny/filler" 2>/dev/null || :
	read_tiny m5 "reading without it" \
		"a cache that could not open was not reported"
	umount "$tiny"
	cf_log "full cache disk: reads correct, warning logged, mounts when full"
else
	cf_log "full cache disk: not checked (cannot mount a tmpfs here)"
fi

# --- 6. two mounts share one cache directory, reading and evicting -------
SH=$T/cache-shared
ma=$T/ma
mb=$T/mb
cf_mount "$NGINX_URL" "$ma" --cache-dir "$SH" --cache-size $((8 * MiB))
cf_mount "$NGINX_URL" "$mb" --cache-dir "$SH" --cache-size $((8 * MiB))
# stats, from a handle of its own, reports the mounts' limit, not its
# file system's default.
"$COFAULT" cache stats --cache-dir "$SH" >"$T/stats.txt" ||
	cf_fail "cache stats failed"
grep -Eq "^limit +$((8 * MiB)) .*the smallest of the 2 mounts" \
	"$T/stats.txt" || cf_fail "cache stats: $(cat "$T/stats.txt")"
( while sleep 0.1; do du -sB1 "$SH/data" 2>/dev/null | cut -f1; done ) \
	>"$T/du-shared.log" &
sampler=$!
CF_PIDS="$CF_PIDS $sampler"
end=$(($(date +%s) + SHARE_SECONDS))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
	i=$((RANDOM % 8))
	j=$((RANDOM % 8))
	cf_same_file "$ma/d/f$i" "$www/d/f$i" &
	a=$!
	cf_same_file "$mb/d/f$j" "$www/d/f$j" || cf_fail "shared cache: $mb/d/f$j"
	wait "$a" || cf_fail "shared cache: $ma/d/f$i"
	echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
	rounds=$((rounds + 1))
done
kill "$sampler"
cf_unmount "$ma"
cf_unmount "$mb"
out=$("$COFAULT" cache verify --cache-dir "$SH") || cf_fail "shared cache: $out"
# The maintenance commands look only at a cache that exists: a mistyped or
# foreign directory is left as it was (not created, not made private), and
# a damaged index is left for a mount to reset, not reset under others.
"$COFAULT" cache stats --cache-dir "$T/no-cache" 2>"$T/m.err" &&
	cf_fail "cache stats of a missing directory succeeded"
grep -q "no chunk cache in" "$T/m.err" || cf_fail "missing: $(cat "$T/m.err")"
[ ! -e "$T/no-cache" ] || cf_fail "cache stats created $T/no-cache"
mkdir -m 755 "$T/not-cache"
"$COFAULT" cache clear --cache-dir "$T/not-cache" 2>/dev/null &&
	cf_fail "cache clear of a foreign directory succeeded"
[ "$(stat -c %a "$T/not-cache")" = 755 ] && [ -z "$(ls -A "$T/not-cache")" ] ||
	cf_fail "cache clear changed a foreign directory: $(ls -ld "$T/not-cache"; ls -A "$T/not-cache")"
cp -a "$SH" "$T/damaged"
printf '%0100d' 0 | dd of="$T/damaged/index.db" conv=notrunc status=none
cp "$T/damaged/index.db" "$T/damaged-index.db"
ndata=$(find "$T/damaged/data" -type f | wc -l)
"$COFAULT" cache verify --cache-dir "$T/damaged" 2>"$T/m.err" &&
	cf_fail "cache verify of a damaged index succeeded"
grep -q "is damaged" "$T/m.err" || cf_fail "damaged: $(cat "$T/m.err")"
cmp -s "$T/damaged/index.db" "$T/damaged-index.db" &&
	[ "$(find "$T/damaged/data" -type f | wc -l)" = "$ndata" ] ||
	cf_fail "cache verify reset a damaged index"
rm -rf "$T/damaged" "$T/damaged-index.db"
cf_log "shared cache: $rounds rounds of two mounts, $out"
# Each process counts the other's chunks too, written and not yet
# indexed included: the two together stay within the limit plus one
# chunk per reader, as one mount does.
max=$(sort -n "$T/du-shared.log" | tail -n 1)
bound=$((8 * MiB + 2 * MiB + 64 * 1024))
cf_log "shared cache: at most $max bytes on disk, limit $((8 * MiB))"
[ "${max:-0}" -le "$bound" ] ||
	cf_fail "shared cache directory reached $max bytes, limit $((8 * MiB))"

# --- 7. a cache cleared under a live mount is filled again ----------------
# `cofault cache clear` drops the objects the mount had registered. The
# mount learns it when a chunk it writes finds its object gone (the chunks
# written until then are not kept), registers the object again and caches
# what it reads after: a remount reads that from the cache. It used to write every later
# chunk under the dropped id, each one thrown away when indexed.
CL=$T/cache-clear
m=$T/m7
range() { dd if="$1" bs=1M skip="$2" count="$3" status=none; }
# Little memory: a chunk whose write the clear dropped is not written
# again while memory still serves it, so what is read at the end must not
# be there from before.
# cl_stat FIELD: a figure of `cache stats` of this directory.
cl_stat() {
	"$COFAULT" cache stats --cache-dir "$CL" |
		awk -v f="$1" '$1 == f { print $2 }'
}
cl_registered() { [ "$(cl_stat objects)" -gt 0 ] 2>/dev/null; }
cf_mount "$NGINX_URL" "$m" --cache-dir "$CL" --max-memory 4M
range "$m/big" 0 1 >/dev/null
# The mount registers the file when it first writes one of its chunks, on
# a writer thread after the read: a clear before that drops nothing of
# the mount's, which then has no drop to notice.
cf_wait_until 20 cl_registered ||
	cf_fail "cleared cache: the mount never registered its file"
"$COFAULT" cache clear --cache-dir "$CL" >/dev/null ||
	cf_fail "cache clear under a live mount failed"
# Single chunks, apart (no stream), until the mount has registered the
# object again (the write before was dropped when indexed), bounded.
objects=0
for k in 32 35 38 41 44 47; do
	range "$m/big" "$k" 1 >/dev/null
	sleep 1
	objects=$(cl_stat objects)
	[ "${objects:-0}" = 0 ] || break
done
[ "${objects:-0}" != 0 ] ||
	cf_fail "cleared cache: the mount never registered its file again"
# The index holds $1 chunks or more, and held as many half a second ago.
chunks_settled() {
	local n
	n=$(cl_stat chunks)
	[ "${n:-0}" -ge "$1" ] && sleep 0.5 && [ "$(cl_stat chunks)" = "$n" ]
}
base=$(cl_stat chunks)
range "$m/big" 8 16 >/dev/null
# Writes still queued at an unmount are not all kept (a limit of its own):
# wait, bounded, until the 16 chunks read and any prefetched are indexed.
cf_wait_until 20 chunks_settled $((base + 16)) ||
	cf_fail "cleared cache: $(cl_stat chunks) chunks indexed, $base before 16"
cf_unmount "$m"
grep -q "was dropped from the cache while open" "$T/cofault-m7.log" ||
	cf_fail "cleared cache: the mount did not notice the clear"
mark=$(wc -l <"$NGINX_ACCESS_LOG")
cf_mount "$NGINX_URL" "$m" --cache-dir "$CL"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
cmp -s <(range "$m/big" 8 16) <(range "$www/big" 8 16) ||
	cf_fail "cleared cache: wrong bytes after the remount"
cf_unmount "$m"
# Requests for those 16 MiB (the access log ends in the Range asked for);
# the remount's prefetch past them may fetch what was never read.
tail -n +$((mark + 1)) "$NGINX_ACCESS_LOG" | grep '"GET /big ' |
	awk -v lo=$((8 * MiB)) -v hi=$((24 * MiB)) '{
		r = $NF; gsub(/"|bytes=/, "", r); split(r, b, "-")
		if (b[1] + 0 < hi && b[2] + 0 >= lo) print }' >"$T/cleared.log"
n=$(wc -l <"$T/cleared.log")
if [ "$n" != 0 ]; then
	cat "$T/cleared.log" >&2
	cf_fail "cleared cache: $n origin requests for 16 MiB read after the clear"
fi
cf_log "cleared cache: filled again, 0 requests for what was read after it"

# --- 8. an index locked past the busy timeout costs speed only -------------
# Another process holds the index's write lock longer than the mount waits
# for it (a long "cache clear", say): the mount goes on without the cache,
# says so, and reads right.
python3 - "$CL/index.db" >"$T/locker.out" 2>&1 <<'PY' &
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(25)
db.execute("ROLLBACK")
PY
locker=$!
CF_PIDS="$CF_PIDS $locker"
cf_wait_until 20 grep -q locked "$T/locker.out" ||
	cf_fail "locked index: could not lock it: $(cat "$T/locker.out")"
cf_mount "$NGINX_URL" "$T/m8" --cache-dir "$CL"
all_same "$T/m8"
cf_unmount "$T/m8"
kill "$locker" 2>/dev/null || :
grep -q "reading without it" "$T/cofault-m8.log" ||
	cf_fail "locked index: the mount did not say it reads without the cache"
cf_log "locked index: mounted without the cache, reads right"
cf_log "ok"
