#!/bin/bash
# bench/http-seq.sh: how close a cofault mount of an nginx origin on
# loopback comes to what the origin and FUSE can do at all. Prints, in one
# run, MiB/s and the ratio to plain curl for:
#   curl      curl -o /dev/null of the file (the origin's limit)
#   nullfs    the same size read through bench/nullfs (the FUSE ceiling)
#   stream    the file read through nullfs --stream, with and without
#             --splice: a FUSE server fed by this origin that keeps and
#             checks nothing (the ceiling for a cold read)
#   cold      sequential read through a fresh cofault mount, caches dropped
#   warm      the same file read again through the same mount
#   disk      a new mount reading what an earlier mount left in the chunk
#             cache (page cache dropped)
#   diskpc    the same with the cache files still in the page cache: what
#             serving the chunk cache costs the daemon, without the disk
#   persist   what keeping the bytes costs a cold read: cold reads with the
#             disk cache, with --no-cache, and with --no-cache beside a
#             direct write of as many bytes by dd, alternating
# then random 4 KiB preads (cold, fresh mount), random page touches through
# mmap (with the daemon's CPU time and page faults), two epochs of a random
# reader (every page of EPOCH_MIB once, then again after a remount, with
# what each cost the origin), time to first byte, and
# what one 4 KiB ranged GET costs a bare client, libcurl and cofault's
# client (reqcost).
# Every figure's bytes are verified by SHA-256 outside the timed part.
#
#   top_builddir=BUILD_DIR bench/http-seq.sh [-s SIZE_MIB] [WORKLOAD...]
#
# WORKLOAD is any of: curl nullfs stream cold warm disk diskpc persist random mmap
# epochs slowreader ttfb reqcost budget (default: all).
# MOUNT_OPTS (environment) adds options to every cofault mount, e.g.
# MOUNT_OPTS="--chunk-size 4M --fetch-threads 4".
# The random test file is kept in $TMPDIR/cofault-bench (generated once,
# 1 GiB by default), so later runs skip the generation. Run as root for
# dropping the page cache; without it the cold figure is marked "(cache
# not dropped)".

top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir
: "${top_builddir:=$top_srcdir}"
export top_builddir
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/bench/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
CF_NAME=http-seq

MOUNT_OPTS=${MOUNT_OPTS:-}
SIZE_MIB=1024
MiB=1048576
RANDOM_READS=2000
MMAP_PAGES=2000
EPOCH_MIB=${EPOCH_MIB:-32} # the random reader's epochs cover this much
CACHE_DIR=${TMPDIR:-/tmp}/cofault-bench

prepare_data() {
	bench_big_file "$CACHE_DIR" "$SIZE_MIB"
}

drop_caches() {
	sync
	if [ -w /proc/sys/vm/drop_caches ] &&
		echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		DROPPED=1
	else
		DROPPED=0
	fi
	# The origin serves from its page cache in every figure, so only the
	# mount's side starts cold.
	cat "$DATA" >/dev/null
}

# time_read FILE: read it sequentially in 1 MiB blocks; prints seconds.
time_read() {
	local t0 t1
	t0=$(date +%s%N)
	timeout 600 dd if="$1" of=/dev/null bs=1M status=none ||
		cf_fail "reading $1 failed"
	t1=$(date +%s%N)
	echo "$(((t1 - t0) / 1000))"
}

# mibs BYTES MICROSECONDS
mibs() {
	awk -v b="$1" -v us="$2" 'BEGIN { printf "%.1f", b / 1048576 / (us / 1e6) }'
}

ratio() {
	awk -v a="$1" -v b="$2" \
		'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

report() {
	printf '%-34s %10s MiB/s  %6s x curl  %s\n' "$1" "$2" \
		"$(ratio "$2" "${CURL_MIBS:-0}")" "${3:-}"
}

verify() {
	local got
	got=$(timeout 600 sha256sum <"$1" | cut -d' ' -f1)
	[ "$got" = "$2" ] || cf_fail "$1: sha256 $got, want $2 (wrong data)"
}

bench_curl() {
	local best=0 _ out sp
	for _ in 1 2 3; do
		out=$(curl -s -o /dev/null -w '%{http_code} %{speed_download}' \
			"$NGINX_URL$DATA_NAME")
		[ "${out%% *}" = 200 ] || cf_fail "curl: HTTP ${out%% *}"
		sp=$(awk -v s="${out#* }" \
			'BEGIN { printf "%.1f", s / 1048576 }')
		best=$(awk -v a="$best" -v b="$sp" \
			'BEGIN { print (b > a ? b : a) }')
	done
	CURL_MIBS=$best
	# curl verified by hash once, untimed.
	[ "$(curl -s "$NGINX_URL$DATA_NAME" | sha256sum | cut -d' ' -f1)" = \
		"$DATA_SHA" ] || cf_fail "curl: wrong data"
	report "curl -o /dev/null (best of 3)" "$CURL_MIBS"
}

bench_nullfs() {
	local us want
	bench_nullfs_mount || return 0
	us=$(time_read "$NULLFS_MNT/data")
	want=$("$NULLFS_BIN" --size="$DATA_BYTES" --dump | sha256sum |
		cut -d' ' -f1)
	verify "$NULLFS_MNT/data" "$want"
	report "nullfs (FUSE ceiling)" "$(mibs "$DATA_BYTES" "$us")"
	bench_nullfs_unmount
}

# bench_stream [--splice]: the ceiling for a FUSE server fed by this origin
# (nullfs --stream: each read one recv and one reply, or a splice with
# --splice).
bench_stream() {
	local label="recv + reply"
	[ $# -eq 0 ] || label="spliced"
	drop_caches
	bench_stream_read "$@" || return 0
	report "origin-fed FUSE ($label)" "$STREAM_MIBS" \
		"daemon CPU $STREAM_CPU s/GiB"
}

# A fresh mount each time: nothing of an earlier run can be cached in it.
fresh_mount() {
	MNT=$T/mnt.$RANDOM
	drop_caches
	# shellcheck disable=SC2086 # options, split on purpose
	cf_mount "$NGINX_URL" "$MNT" $MOUNT_OPTS "$@"
}

bench_seq() {
	local us note='' pid t0
	fresh_mount
	[ "$DROPPED" = 1 ] || note="(cache not dropped)"
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	t0=$(cpu_ticks "$pid")
	us=$(time_read "$MNT/$DATA_NAME")
	COLD_MIBS=$(mibs "$DATA_BYTES" "$us")
	note="daemon CPU $(cpu_per_gib $(($(cpu_ticks "$pid") - t0)) \
		"$DATA_BYTES") s/GiB $note"
	verify "$MNT/$DATA_NAME" "$DATA_SHA"
	report "cofault cold sequential" "$COLD_MIBS" "$note"
	if want_workload warm; then
		us=$(time_read "$MNT/$DATA_NAME")
		report "cofault warm re-read" "$(mibs "$DATA_BYTES" "$us")"
	fi
	cf_unmount "$MNT"
}

# persist_read DD [OPTION...]: one cold sequential read of the data file
# through a fresh mount with MOUNT_OPTS and the options given, and, when DD
# is a dd output flag, dd writing as many bytes with it into $T meanwhile.
# Sets PERSIST_MIBS, PERSIST_CPU and PERSIST_DD (dd's MB/s, or empty).
persist_read() {
	local dd=$1 us pid t0 ddpid='' junk=$T/persist-junk
	shift
	fresh_mount "$@"
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	if [ "$dd" != - ]; then
		dd if=/dev/zero of="$junk" bs=1M count="$SIZE_MIB" "$dd" \
			2>"$T/persist-dd" &
		ddpid=$!
	fi
	t0=$(cpu_ticks "$pid")
	us=$(time_read "$MNT/$DATA_NAME")
	PERSIST_MIBS=$(mibs "$DATA_BYTES" "$us")
	PERSIST_CPU=$(cpu_per_gib $(($(cpu_ticks "$pid") - t0)) "$DATA_BYTES")
	PERSIST_DD=
	if [ -n "$ddpid" ]; then
		wait "$ddpid" || cf_fail "dd beside the read failed"
		PERSIST_DD=$(awk '/copied/ { printf "%.0f",
			$(NF - 1) * ($NF == "GB/s" ? 1000 : 1) }' "$T/persist-dd")
		rm -f "$junk"
	fi
	verify "$MNT/$DATA_NAME" "$DATA_SHA"
	cf_unmount "$MNT"
	rm -rf "$(cf_cache_dir "$MNT")"
}

# What keeping the bytes costs a cold read on this machine. Alternating
# (the order turns each round): a cold read with the disk cache, one
# with --no-cache, and one with --no-cache while dd writes as many bytes
# by direct I/O into the file system that holds the cache (the write the
# cache does, done by another process). When the third is as slow as the
# first, the cost is the machine's for the write, not cofault's work
# around it. PERSIST_ROUNDS (default 3) rounds; the medians are printed.
bench_persist() {
	local rounds=${PERSIST_ROUNDS:-3} r k direct=oflag=direct
	local cache='' nocache='' beside='' ddr='' c1='' c2='' c3=''
	if ! dd if=/dev/zero of="$T/persist-junk" bs=1M count=1 \
		oflag=direct status=none 2>/dev/null; then
		direct=conv=fdatasync
	fi
	rm -f "$T/persist-junk"
	for r in $(seq "$rounds"); do
		for k in $( ((r % 2)) && echo "c n b" || echo "b n c"); do
			case $k in
			c)
				persist_read -
				cache="$cache $PERSIST_MIBS"
				c1="$c1 $PERSIST_CPU"
				;;
			n)
				persist_read - --no-cache
				nocache="$nocache $PERSIST_MIBS"
				c2="$c2 $PERSIST_CPU"
				;;
			b)
				persist_read "$direct" --no-cache
				beside="$beside $PERSIST_MIBS"
				c3="$c3 $PERSIST_CPU"
				ddr="$ddr $PERSIST_DD"
				;;
			esac
		done
	done
	printf '%s\n' "persist rounds (MiB/s; daemon CPU s/GiB):" \
		"  with the disk cache:      $cache;$c1" \
		"  --no-cache:               $nocache;$c2" \
		"  --no-cache beside dd:     $beside;$c3 (dd $direct, MB/s:$ddr)"
	local mc mn mb
	# shellcheck disable=SC2086 # lists of figures, split on purpose
	mc=$(median $cache)
	# shellcheck disable=SC2086
	mn=$(median $nocache)
	# shellcheck disable=SC2086
	mb=$(median $beside)
	report "cold, disk cache (median)" "$mc" "$(ratio "$mc" "$mn") x --no-cache"
	report "cold, --no-cache (median)" "$mn"
	report "cold, --no-cache beside dd" "$mb" "$(ratio "$mb" "$mn") x --no-cache"
}

# nginx_ticks: the CPU ticks nginx's master and workers have used so far.
nginx_ticks() {
	local p s=0
	for p in "$NGINX_PID" $(pgrep -P "$NGINX_PID"); do
		s=$((s + $(cpu_ticks "$p")))
	done
	echo "$s"
}

# cpu_of CMD...: run CMD, its output discarded; prints its wall time in
# microseconds and the CPU seconds (user + system) it and its children
# used.
cpu_of() {
	local tf=$T/cpu-of TIMEFORMAT='%R %U %S'
	{ time "$@" >/dev/null 2>&3; } 3>&2 2>"$tf" || return 1
	awk '{ printf "%.0f %.3f\n", $1 * 1e6, $2 + $3 }' "$tf"
}

# secs_per_gib SECONDS: CPU seconds spent on DATA_BYTES, a GiB's worth
# (cpu_per_gib does the same from clock ticks).
secs_per_gib() {
	awk -v c="$1" -v b="$DATA_BYTES" \
		'BEGIN { printf "%.2f", c / (b / 1073741824) }'
}

# budget_read LABEL PID FILE: one read of FILE by dd (of the file from the
# origin by curl when FILE is -), while PID (0: none) serves it. Appends
# "LABEL|MiB/s nginx reader server" (the three in CPU seconds a GiB) to
# $T/budget.
budget_read() {
	local label=$1 pid=$2 file=$3 n0 s0=0 s1=0 out us cpu
	n0=$(nginx_ticks)
	[ "$pid" = 0 ] || s0=$(cpu_ticks "$pid")
	if [ "$file" = - ]; then
		out=$(cpu_of curl -sf -o /dev/null "$NGINX_URL$DATA_NAME") ||
			cf_fail "budget: curl failed"
	else
		out=$(cpu_of timeout 600 dd if="$file" of=/dev/null bs=1M status=none) ||
			cf_fail "budget: reading $file failed"
	fi
	[ "$pid" = 0 ] || s1=$(cpu_ticks "$pid")
	read -r us cpu <<<"$out"
	echo "$label|$(mibs "$DATA_BYTES" "$us")" \
		"$(cpu_per_gib $(($(nginx_ticks) - n0)) "$DATA_BYTES")" \
		"$(secs_per_gib "$cpu")" \
		"$(cpu_per_gib $((s1 - s0)) "$DATA_BYTES")" >>"$T/budget"
}

# budget_col LABEL I: the median of figure I of LABEL's lines in $T/budget.
budget_col() {
	# shellcheck disable=SC2046 # a list of figures
	median $(awk -F'|' -v l="$1" -v i="$2" \
		'$1 == l { split($2, f, " "); print f[i] }' "$T/budget")
}

# Where a cold read's CPU goes, and what that allows on this machine. For
# curl, the origin-fed null FUSE server (nullfs --stream), and cofault
# cold with --no-cache and with its disk cache: the CPU seconds a GiB of
# nginx, the reader (curl, or dd through the mount) and the server, their
# sum, and the most that sum allows on nproc CPUs: nproc / sum GiB/s, as
# if every process ran all the time and none ever waited for another.
# Then dd's CPU a GiB writing as many bytes by direct I/O into the file
# system of the cache: what keeping the bytes costs, done by another
# process. BUDGET_ROUNDS (default 3) rounds; medians. Bytes of every read
# through a mount are verified afterwards, outside the measure.
bench_budget() {
	local rounds=${BUDGET_ROUNDS:-3} r opt pid out ddcpu='' label
	local cpus
	cpus=$(nproc)
	: >"$T/budget"
	for r in $(seq "$rounds"); do
		drop_caches
		budget_read curl 0 -
		drop_caches
		bench_nullfs_mount --stream="$NGINX_URL$DATA_NAME" || return 0
		budget_read "origin-fed FUSE" "$NULLFS_PID" "$NULLFS_MNT/data"
		bench_nullfs_unmount
		bench_nullfs_mount --stream="$NGINX_URL$DATA_NAME"
		verify "$NULLFS_MNT/data" "$DATA_SHA"
		bench_nullfs_unmount
		for opt in --no-cache ""; do
			# shellcheck disable=SC2086 # no option, or one
			fresh_mount $opt
			pid=$(cf_pids_with_arg "$MNT" | head -n 1)
			label="cofault, disk cache"
			[ -z "$opt" ] || label="cofault $opt"
			budget_read "$label" "$pid" "$MNT/$DATA_NAME"
			verify "$MNT/$DATA_NAME" "$DATA_SHA"
			cf_unmount "$MNT"
			rm -rf "$(cf_cache_dir "$MNT")"
		done
		out=$(cpu_of dd if=/dev/zero of="$T/budget-junk" bs=1M \
			count="$SIZE_MIB" oflag=direct status=none) ||
			cf_fail "budget: dd oflag=direct failed"
		rm -f "$T/budget-junk"
		ddcpu="$ddcpu $(secs_per_gib "${out#* }")"
	done
	printf 'CPU seconds a GiB, medians of %s rounds (nginx, reader, server; their sum; the most it allows on %s CPUs):\n' \
		"$rounds" "$cpus"
	for label in curl "origin-fed FUSE" "cofault --no-cache" \
		"cofault, disk cache"; do
		local mib ng rd sv tot bound
		mib=$(budget_col "$label" 1) ng=$(budget_col "$label" 2)
		rd=$(budget_col "$label" 3) sv=$(budget_col "$label" 4)
		tot=$(awk -v a="$ng" -v b="$rd" -v c="$sv" \
			'BEGIN { printf "%.2f", a + b + c }')
		bound=$(awk -v n="$cpus" -v t="$tot" \
			'BEGIN { if (t > 0) printf "%.0f", n * 1024 / t; else print "-" }')
		printf '  %-22s %7s MiB/s (%s x curl)  nginx %s  reader %s  server %s  sum %s  at most %s MiB/s (%s x curl)\n' \
			"$label" "$mib" "$(ratio "$mib" "${CURL_MIBS:-0}")" \
			"$ng" "$rd" "$sv" "$tot" "$bound" \
			"$(ratio "$bound" "${CURL_MIBS:-0}")"
	done
	# shellcheck disable=SC2086 # a list of figures
	printf '  dd oflag=direct writing as many bytes: %s CPU seconds a GiB (rounds:%s)\n' \
		"$(median $ddcpu)" "$ddcpu"
}

# Read the data file through a new mount over the shared chunk cache;
# report MiB/s and the daemon's CPU per GiB as LABEL.
disk_read() {
	local label=$1 note=$2 us pid t0
	MNT=$T/mnt.$RANDOM
	# shellcheck disable=SC2086 # options, split on purpose
	cf_mount "$NGINX_URL" "$MNT" $MOUNT_OPTS
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	t0=$(cpu_ticks "$pid")
	us=$(time_read "$MNT/$DATA_NAME")
	note="daemon CPU $(cpu_per_gib $(($(cpu_ticks "$pid") - t0)) \
		"$DATA_BYTES") s/GiB $note"
	verify "$MNT/$DATA_NAME" "$DATA_SHA"
	report "$label" "$(mibs "$DATA_BYTES" "$us")" "$note"
	cf_unmount "$MNT"
}

# A new mount over the chunk cache a first mount filled, page cache
# dropped: what a second run of a job sees. Then (diskpc) once more with
# the cache files left in the page cache by that read.
bench_disk() {
	local note='' first
	CF_CACHE_DIR=$T/shared-cache
	fresh_mount
	first=$MNT
	timeout 600 cat "$MNT/$DATA_NAME" >/dev/null ||
		cf_fail "filling the cache"
	cf_unmount "$first"
	if want_workload disk; then
		drop_caches
		[ "$DROPPED" = 1 ] || note="(cache not dropped)"
		disk_read "cofault new mount, disk cache" "$note"
	fi
	if want_workload diskpc; then
		cat "$CF_CACHE_DIR"/data/*/* >/dev/null
		disk_read "cofault new mount, cache in page cache" ""
	fi
	rm -rf "$CF_CACHE_DIR"
	unset CF_CACHE_DIR
}

# Random aligned 4 KiB preads on a fresh mount, each checked against the
# original (the comparison is outside the timed calls).
bench_random() {
	local out pid t0 f0
	fresh_mount
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	t0=$(cpu_ns "$pid")
	f0=$(minflt "$pid")
	out=$(timeout 600 python3 - "$MNT/$DATA_NAME" "$DATA" \
		"$RANDOM_READS" <<'EOF'
import os, random, sys, time
path, orig, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(orig)
rng = random.Random(42)
offs = [rng.randrange(size // 4096) * 4096 for _ in range(n)]
fd, od = os.open(path, os.O_RDONLY), os.open(orig, os.O_RDONLY)
lat, bad = [], 0
for off in offs:
    t0 = time.perf_counter()
    b = os.pread(fd, 4096, off)
    lat.append(time.perf_counter() - t0)
    bad += b != os.pread(od, 4096, off)
lat.sort()
tot = sum(lat)
print("%.0f %.3f %.3f %.3f %d" % (n / tot, lat[n // 2] * 1e3,
      lat[n * 99 // 100] * 1e3, lat[-1] * 1e3, bad))
EOF
) || cf_fail "random reads failed"
	# shellcheck disable=SC2086 # five numbers, split on purpose
	set -- $out
	[ "$5" = 0 ] || cf_fail "random reads: $5 blocks with WRONG DATA"
	printf '%-34s %10s IOPS   p50 %s ms  p99 %s ms  max %s ms\n' \
		"cofault random 4 KiB preads (cold)" "$1" "$2" "$3" "$4"
	printf '%-34s %s us CPU, %s minor page faults per 100\n' \
		"  daemon, per read" \
		"$(awk -v t=$(($(cpu_ns "$pid") - t0)) -v n="$RANDOM_READS" \
			'BEGIN { printf "%.1f", t / 1000 / n }')" \
		"$((($(minflt "$pid") - f0) * 100 / RANDOM_READS))"
	cf_unmount "$MNT"
}

# Origin requests and bytes sent since line $1 of nginx's access log
# (combined format: the body's length is field 10).
origin_since() {
	tail -n +"$(($1 + 1))" "$NGINX_ACCESS_LOG" | awk '
		$6 == "\"GET" { n++; b += $10 }
		END { printf "%d %.1f", n, b / 1048576 }'
}

# epoch_pass SEED: read every 4 KiB page of the first EPOCH_MIB of the
# file through $MNT in a seeded random order (no readahead), each page
# checked outside the timed call; prints "IOPS bad".
epoch_pass() {
	timeout 900 python3 - "$MNT/$DATA_NAME" "$DATA" "$EPOCH_MIB" "$1" <<'EOF'
import os, random, sys, time
path, orig, mib, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pages = list(range(mib * 256))
random.Random(seed).shuffle(pages)
fd, od = os.open(path, os.O_RDONLY), os.open(orig, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
tot, bad = 0.0, 0
for p in pages:
    t0 = time.perf_counter()
    b = os.pread(fd, 4096, p * 4096)
    tot += time.perf_counter() - t0
    bad += b != os.pread(od, 4096, p * 4096)
print("%.0f %d" % (len(pages) / tot, bad))
EOF
}

# Two epochs of a random reader over EPOCH_MIB of the file: every page
# once, in random order, on a fresh mount and cache; then again after a
# remount with the page cache dropped. Prints each epoch's IOPS and what
# it cost the origin (requests, MiB).
bench_epochs() {
	local out mark chunks i
	CF_CACHE_DIR=$T/epoch-cache
	rm -rf "$CF_CACHE_DIR"
	fresh_mount
	mark=$(wc -l <"$NGINX_ACCESS_LOG")
	# shellcheck disable=SC2046 # two numbers
	set -- $(epoch_pass 1) || cf_fail "epoch 1 failed"
	[ "$2" = 0 ] || cf_fail "epoch 1: $2 pages with WRONG DATA"
	out=$1
	# The chunks filled during the pass are written in the
	# background; the second epoch is about what reached the disk.
	for i in $(seq 300); do
		chunks=$("$COFAULT" cache stats --cache-dir "$CF_CACHE_DIR" |
			awk '$1 == "chunks" { print $2 }')
		[ "${chunks:-0}" -ge "$EPOCH_MIB" ] && break
		sleep 0.1
	done
	cf_unmount "$MNT"
	# shellcheck disable=SC2046 # two numbers
	set -- $out $(origin_since "$mark")
	printf '%-34s %10s IOPS   origin: %s requests, %s MiB; %s chunks cached\n' \
		"cofault epoch 1 (${EPOCH_MIB} MiB, 4 KiB)" "$1" "$2" "$3" "$chunks"
	MNT=$T/mnt.$RANDOM
	# shellcheck disable=SC2086 # options, split on purpose
	cf_mount "$NGINX_URL" "$MNT" $MOUNT_OPTS
	drop_caches
	mark=$(wc -l <"$NGINX_ACCESS_LOG")
	# shellcheck disable=SC2046 # two numbers
	set -- $(epoch_pass 2) || cf_fail "epoch 2 failed"
	[ "$2" = 0 ] || cf_fail "epoch 2: $2 pages with WRONG DATA"
	out=$1
	cf_unmount "$MNT"
	# shellcheck disable=SC2046 # two numbers
	set -- $out $(origin_since "$mark")
	printf '%-34s %10s IOPS   origin: %s requests, %s MiB\n' \
		"cofault epoch 2, remounted" "$1" "$2" "$3"
	unset CF_CACHE_DIR
}

# Minor page faults a process has taken so far.
minflt() {
	awk '{ print $10 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU time a process's threads have used so far, in nanoseconds: clock
# ticks (10 ms) are too coarse for 2,000 reads of some 50 us each.
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%d", s }'
}

# Random page touches through a shared mapping of a fresh mount, each
# page checked against the original outside the timed part; with the
# daemon's CPU time and minor page faults per touch, steadier than time
# on a loaded machine.
bench_mmap() {
	local out pid t0 f0
	fresh_mount
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	t0=$(cpu_ticks "$pid")
	f0=$(minflt "$pid")
	out=$(timeout 600 python3 - "$MNT/$DATA_NAME" "$DATA" \
		"$MMAP_PAGES" <<'EOF'
import mmap, os, random, sys, time
path, orig, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
size = os.path.getsize(orig)
rng = random.Random(7)
offs = [rng.randrange(size // 4096) * 4096 for _ in range(n)]
f = open(path, "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
od = os.open(orig, os.O_RDONLY)
lat, got = [], []
for off in offs:
    t0 = time.perf_counter()
    got.append(m[off:off + 4096])
    lat.append(time.perf_counter() - t0)
bad = sum(g != os.pread(od, 4096, o) for g, o in zip(got, offs))
tot = sum(lat)
lat.sort()
print("%.0f %.0f %.0f %d" % (n / tot, tot / n * 1e6, lat[n // 2] * 1e6, bad))
EOF
) || cf_fail "mmap touches failed"
	# shellcheck disable=SC2086 # four numbers, split on purpose
	set -- $out
	[ "$4" = 0 ] || cf_fail "mmap touches: $4 pages with WRONG DATA"
	printf '%-34s %10s pages/s  mean %s us  p50 %s us\n' \
		"cofault random mmap page touches" "$1" "$2" "$3"
	printf '%-34s %s ms CPU, %s minor page faults\n' \
		"  daemon, per 100 touches" \
		"$(awk -v t=$(($(cpu_ticks "$pid") - t0)) \
			-v hz="$(getconf CLK_TCK)" -v n="$MMAP_PAGES" \
			'BEGIN { printf "%.1f", t / hz * 1000 / n * 100 }')" \
		"$((($(minflt "$pid") - f0) * 100 / MMAP_PAGES))"
	cf_unmount "$MNT"
}

# A sequential reader slower than the origin (a training loop that works
# on what it reads) that stops part of the way: SLOW_MIB MiB in 1 MiB
# reads with SLOW_MS between them, each checked. What it cost the origin
# beyond what it read is the prefetch it did not need; with the daemon's
# peak memory and the deepest prefetch window it logged.
SLOW_MIB=64
SLOW_MS=5
bench_slowreader() {
	local out pid mark orig win
	fresh_mount
	pid=$(cf_pids_with_arg "$MNT" | head -n 1)
	mark=$(wc -l <"$NGINX_ACCESS_LOG")
	out=$(timeout 600 python3 - "$MNT/$DATA_NAME" "$DATA" "$SLOW_MIB" \
		"$SLOW_MS" <<'EOF'
import os, sys, time
path, orig, mib, ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd, od = os.open(path, os.O_RDONLY), os.open(orig, os.O_RDONLY)
bad, t0 = 0, time.perf_counter()
for i in range(mib):
    bad += os.pread(fd, 1 << 20, i << 20) != os.pread(od, 1 << 20, i << 20)
    time.sleep(ms / 1000)
print("%.0f %d" % (mib / (time.perf_counter() - t0), bad))
EOF
) || cf_fail "slow reader failed"
	# shellcheck disable=SC2086 # two numbers, split on purpose
	set -- $out
	[ "$2" = 0 ] || cf_fail "slow reader: $2 MiB with WRONG DATA"
	sleep 1 # what was prefetched lands, and nginx logs it
	orig=$(origin_since "$mark")
	printf '%-34s %s MiB/s; origin sent %s MiB in %s requests; daemon peak %s MiB\n' \
		"slow reader, ${SLOW_MIB} MiB then stop" "$1" "${orig#* }" \
		"${orig% *}" "$(daemon_hwm_mib "$pid")"
	cf_unmount "$MNT"
	win=$(grep -o 'window up to [0-9]*' \
		"$T/cofault-$(basename "$MNT").log" | tail -n 1 | grep -o '[0-9]*$')
	printf '%-34s window up to %s chunks\n' "  prefetch" "${win:-?}"
}

# Time to the first 4 KiB of a file: curl's ranged GET, against open +
# pread through a fresh mount; and how long the mount itself takes.
bench_ttfb() {
	local curl_ms t0 mount_ms got
	curl_ms=$(curl -s -o /dev/null -r 0-4095 -w '%{time_starttransfer}' \
		"$NGINX_URL$DATA_NAME" | awk '{ printf "%.2f", $1 * 1000 }')
	drop_caches
	MNT=$T/mnt.$RANDOM
	t0=$(date +%s%N)
	# shellcheck disable=SC2086 # options, split on purpose
	cf_mount "$NGINX_URL" "$MNT" $MOUNT_OPTS
	mount_ms=$(awk -v d="$(($(date +%s%N) - t0))" \
		'BEGIN { printf "%.1f", d / 1e6 }')
	got=$(python3 - "$MNT/$DATA_NAME" <<'EOF'
import hashlib, os, sys, time
t0 = time.perf_counter()
fd = os.open(sys.argv[1], os.O_RDONLY)
b = os.pread(fd, 4096, 0)
t1 = time.perf_counter()
print("%.2f %s" % ((t1 - t0) * 1e3, hashlib.sha256(b).hexdigest()))
EOF
)
	[ "${got#* }" = "$(head -c 4096 "$DATA" | sha256sum | cut -d' ' -f1)" ] \
		|| cf_fail "first 4 KiB: wrong data"
	printf '%-34s curl %s ms, cofault open+pread %s ms, mount %s ms\n' \
		"time to first byte (4 KiB)" "$curl_ms" "${got%% *}" "$mount_ms"
	cf_unmount "$MNT"
}

# What one 4 KiB ranged GET costs a client, without FUSE: a bare socket,
# libcurl (the floor of cofault's fetcher), cofault's own client, and
# libcurl after an idle second (bench/reqcost.c).
bench_reqcost() {
	local bin=$top_builddir/bench/reqcost out
	if [ ! -x "$bin" ]; then
		cf_log "no reqcost: build it with 'make bench/reqcost'"
		return 0
	fi
	out=$("$bin" "$NGINX_URL$DATA_NAME" "$NGINX_PORT" "$DATA" 4000 4096) ||
		cf_fail "reqcost failed"
	echo "one 4 KiB ranged GET, no FUSE (bench/reqcost):"
	printf '%s\n' "$out" | sed 's/^/  /'
}

WORKLOADS=
want_workload() {
	[ -z "$WORKLOADS" ] && return 0
	case " $WORKLOADS " in *" $1 "*) return 0 ;; esac
	return 1
}

while getopts s: opt; do
	case $opt in
	s) SIZE_MIB=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE_MIB]" \
		"[curl|nullfs|stream|cold|warm|disk|diskpc|persist|random|mmap|epochs|slowreader|ttfb|reqcost|budget]..." >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
WORKLOADS="$*"

cf_init
prepare_data
cf_nginx_start "$CACHE_DIR"
echo "cofault http-seq: ${SIZE_MIB} MiB file, nginx on 127.0.0.1," \
	"$(nproc) CPUs, $(uname -r)"
echo "$("$COFAULT" --version 2>/dev/null | head -n 1)${MOUNT_OPTS:+, $MOUNT_OPTS}," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$DATA" >/dev/null
bench_curl
if want_workload nullfs; then bench_nullfs; fi
if want_workload stream; then
	bench_stream
	bench_stream --splice
fi
if want_workload cold || want_workload warm; then bench_seq; fi
if want_workload disk || want_workload diskpc; then bench_disk; fi
if want_workload persist; then bench_persist; fi
if want_workload random; then bench_random; fi
if want_workload mmap; then bench_mmap; fi
if want_workload epochs; then bench_epochs; fi
if want_workload slowreader; then bench_slowreader; fi
if want_workload ttfb; then bench_ttfb; fi
if want_workload reqcost; then bench_reqcost; fi
if want_workload budget; then bench_budget; fi
