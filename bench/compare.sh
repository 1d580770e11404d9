#!/bin/bash
# bench/compare.sh: cofault beside the FUSE file systems a user would pick
# instead, all reading the same nginx origin on loopback in the same run,
# with the two limits (curl from the origin, bench/nullfs for FUSE itself)
# printed above them. Prints one table; see bench/README.md for the method.
#
#   top_builddir=BUILD_DIR bench/compare.sh [-s SIZE_MIB] [-t TOOLS]
#                                            [-d DELAY_MS] [-w WORKLOADS]
#
# TOOLS: any of "cofault rclone httpdirfs httpfs2" (default: those found).
# WORKLOADS: any of "seq random epochs mmap rec64 small ttfb slowseq
# slowrand"
# (default: all). Peers are the Debian packages rclone (mount :http:
# --vfs-cache-mode full), httpdirfs (--cache) and httpfs2 (one file per
# mount, no cache). Every workload verifies the bytes it read, outside the
# timed part. Needs root (dropping the page cache, unmounting peers).
# MOUNT_OPTS (environment) adds options to every cofault mount; LOG_DIR
# (environment), an existing directory, keeps the cofault daemons' logs.
# ROUNDS (environment, default 1) runs every workload that many times,
# the tools in reverse order every other round: each cell is then the
# median of the rounds, and cofault/best the median of the ratios taken
# within each round, so that a minute in which the machine was slow
# weighs on both sides of a ratio (the rounds are logged).

top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir
: "${top_builddir:=$top_srcdir}"
export top_builddir
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/bench/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
CF_NAME=compare

MiB=1048576
SIZE_MIB=1024
DELAY_MS=20
# Under delay the slow peers would take minutes for the whole file; they
# read this much of it (cofault reads all of it, to compare with its own
# undelayed figure).
SLOW_PEER_MIB=256
RANDOM_READS=2000
MMAP_PAGES=2000
# The random reader's epochs cover this much of the file: every 4 KiB
# page of it once per epoch.
EPOCH_MIB=16
CHUNK_BYTES=$MiB # cofault's default chunk size
REC_PROCS=4
REC_READS=250
SMALL_FILES=1000
SLOW_READS=400
SLOW_THREADS=8
MAX_MEMORY=256M
SEQ_REPS=${SEQ_REPS:-3}
ROUNDS=${ROUNDS:-1}
# No peer may hang the run: every timed step is bounded.
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
MOUNT_OPTS=${MOUNT_OPTS:-}
DATA_DIR=${TMPDIR:-/tmp}/cofault-bench
ALL_TOOLS="cofault rclone httpdirfs httpfs2"
ALL_WORKLOADS="seq random epochs mmap rec64 small ttfb slowseq slowrand"

declare -A R # R[tool,workload] = the table cell (this round's)
declare -A RS # RS[tool,workload] = the cell of every round so far
declare -A RATIOS # RATIOS[workload] = cofault/best of every round

# --- the origin's data -----------------------------------------------------

# The big random file (shared with http-seq.sh) and a directory of small
# files, made once: real data, not sparse.
prepare_data() {
	local f i
	bench_big_file "$DATA_DIR" "$SIZE_MIB"
	f=$DATA
	SLOW_PEER_SHA=$(head -c $((SLOW_PEER_MIB * MiB)) "$f" | sha256sum |
		cut -d' ' -f1)
	SMALL=$DATA_DIR/small-${SMALL_FILES}x4k
	if [ ! -f "$SMALL/.done" ]; then
		cf_log "generating $SMALL (once)"
		rm -rf "$SMALL"
		mkdir -p "$SMALL"
		for i in $(seq -w 1 "$SMALL_FILES"); do
			head -c 4096 /dev/urandom >"$SMALL/f$i"
		done
		touch "$SMALL/.done"
	fi
	SMALL_NAME=$(basename "$SMALL")
}

# Cold for the mount, warm for the origin: every figure is of the client,
# nginx always serves from its page cache.
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cat "$DATA" "$SMALL"/f* >/dev/null
}

# --- the reader ------------------------------------------------------------

# One helper for every tool, so its own overhead is the same in each
# column. Each mode prints "FIGURE BAD" where BAD counts wrong blocks,
# checked against the original after the timed part.
write_reader() {
	READER=$T/reader.py
	cat >"$READER" <<'EOF'
import hashlib, mmap, os, random, subprocess, sys, threading, time

def offsets(size, n, unit, seed):
    rng = random.Random(seed)
    return [rng.randrange(size // unit) * unit for _ in range(n)]

def check(orig, offs, got, unit):
    fd = os.open(orig, os.O_RDONLY)
    bad = sum(b != os.pread(fd, unit, o) for o, b in zip(offs, got))
    os.close(fd)
    return bad

def pread(path, orig, n, seed, threads):
    """n random aligned 4 KiB preads from `threads` threads: IOPS."""
    offs = offsets(os.path.getsize(orig), n, 4096, seed)
    got = [None] * n
    fd = os.open(path, os.O_RDONLY)
    def work(k):
        for i in range(k, n, threads):
            got[i] = os.pread(fd, 4096, offs[i])
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.perf_counter() - t0
    print("%.0f %d" % (n / dt, check(orig, offs, got, 4096)))

def epoch(path, orig, mib, seed):
    """Every 4 KiB page of the first mib MiB once, in a seeded random
    order, without readahead: IOPS."""
    pages = list(range(mib * 256))
    random.Random(seed).shuffle(pages)
    offs = [p * 4096 for p in pages]
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    t0 = time.perf_counter()
    got = [os.pread(fd, 4096, o) for o in offs]
    dt = time.perf_counter() - t0
    os.close(fd)
    print("%.0f %d" % (len(offs) / dt, check(orig, offs, got, 4096)))

def mm(path, orig, n, seed):
    """n random page touches through a shared mapping: pages/s."""
    offs = offsets(os.path.getsize(orig), n, 4096, seed)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        t0 = time.perf_counter()
        got = [m[o:o + 4096] for o in offs]
        dt = time.perf_counter() - t0
    print("%.0f %d" % (n / dt, check(orig, offs, got, 4096)))

def rec64(path, orig, n, procs):
    """procs processes, n random 64 KiB records each via mmap: MiB/s."""
    size = os.path.getsize(orig)
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    kids = []
    for k in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            offs = offsets(size, n, 65536, 1000 + k)
            f = open(path, "rb")
            m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            os.read(go_r, 1)
            got = [m[o:o + 65536] for o in offs]
            t1 = time.perf_counter()
            bad = check(orig, offs, got, 65536)
            os.write(res_w, b"%.6f %d\n" % (t1, bad))
            os._exit(0)
        kids.append(pid)
    time.sleep(0.2)  # all mapped and waiting
    t0 = time.perf_counter()
    os.close(go_w)
    ends, bad = [], 0
    for pid in kids:
        os.waitpid(pid, 0)
    os.close(res_w)
    for line in os.fdopen(res_r).read().split("\n"):
        if line:
            t, b = line.split()
            ends.append(float(t))
            bad += int(b)
    dt = max(ends) - t0
    print("%.1f %d" % (procs * n * 65536 / 1048576 / dt, bad))

def small(d, origd):
    """ls -l of a directory, then read every file: seconds for both."""
    t0 = time.perf_counter()
    out = subprocess.run(["ls", "-l", d], capture_output=True, check=True)
    names = sorted(x for x in os.listdir(d) if not x.startswith("."))
    got = []
    for x in names:
        with open(os.path.join(d, x), "rb") as f:
            got.append(f.read())
    dt = time.perf_counter() - t0
    want = sorted(x for x in os.listdir(origd) if not x.startswith("."))
    bad = abs(len(want) - len(names)) + (out.stdout.count(b"\n") < len(want))
    for x, b in zip(names, got):
        with open(os.path.join(origd, x), "rb") as f:
            bad += b != f.read()
    print("%.2f %d" % (dt, bad))

def ttfb(path, orig):
    """open and the first 4 KiB of a file: milliseconds."""
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    b = os.pread(fd, 4096, 0)
    dt = time.perf_counter() - t0
    with open(orig, "rb") as f:
        bad = b != f.read(4096)
    print("%.1f %d" % (dt * 1e3, bad))

a = sys.argv
if a[1] == "pread": pread(a[2], a[3], int(a[4]), int(a[5]), int(a[6]))
elif a[1] == "mmap": mm(a[2], a[3], int(a[4]), int(a[5]))
elif a[1] == "epoch": epoch(a[2], a[3], int(a[4]), int(a[5]))
elif a[1] == "rec64": rec64(a[2], a[3], int(a[4]), int(a[5]))
elif a[1] == "small": small(a[2], a[3])
elif a[1] == "ttfb": ttfb(a[2], a[3])
EOF
}

# read_with WHAT TOOL WORKLOAD ARGS...: run the reader (bounded) and put
# its figure in the table, or why there is none.
read_with() {
	local tool=$1 wl=$2 out
	shift 2
	if ! out=$(timeout "$STEP_TIMEOUT" python3 "$READER" "$@" \
		2>>"$T/reader.log"); then
		R[$tool,$wl]=failed
		cf_log "$tool $wl: reader failed or timed out"
		return 0
	fi
	# shellcheck disable=SC2086 # two numbers
	set -- $out
	if [ "$2" != 0 ]; then
		R[$tool,$wl]="WRONG($2)"
		cf_log "$tool $wl: $2 blocks of WRONG DATA"
	else
		R[$tool,$wl]=$1
	fi
}

# A fresh mount whose first read comes after a dropped page cache.
fresh() {
	mount_tool "$@"
	drop_caches
}

# --- measuring ---------------------------------------------------------------

# What the origin sent, from nginx's access log (combined format: field 9
# is the status, 10 the body bytes): log_mark before a step, then
# origin_since MARK prints "REQUESTS MIB" for the requests logged after.
log_mark() { wc -l <"$NGINX_ACCESS_LOG"; }
origin_since() {
	sleep 0.5 # nginx logs a request when it is done with it
	tail -n +$(($1 + 1)) "$NGINX_ACCESS_LOG" |
		awk '{ n++; b += $10 } END { printf "%d %.0f", n, b / 1048576 }'
}

# origin_cell TOOL ROW MARK: "REQUESTS/MIB" sent since MARK.
origin_cell() {
	local o
	o=$(origin_since "$3")
	R[$1,$2]="${o% *}/${o#* }M"
}

# time_seq FILE [MIB]: read (all, or the first MIB MiB) in 1 MiB blocks,
# bounded; prints MiB/s, or "timeout".
time_seq() {
	local t0 t1 mib=${2:-$SIZE_MIB}
	t0=$(date +%s%N)
	if ! timeout "$STEP_TIMEOUT" dd if="$1" of=/dev/null bs=1M \
		count="$mib" status=none; then
		echo timeout
		return 0
	fi
	t1=$(date +%s%N)
	awk -v b="$((mib * MiB))" -v ns="$((t1 - t0))" \
		'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'
}

# seq_cell TOOL WORKLOAD MIBS FILE SHA [MIB]: the figure, if the bytes
# are right.
seq_cell() {
	local tool=$1 wl=$2 v=$3 f=$4 want=$5 mib=${6:-$SIZE_MIB} got
	if [ "$v" = timeout ]; then
		R[$tool,$wl]=timeout
		return 0
	fi
	got=$(timeout "$STEP_TIMEOUT" head -c $((mib * MiB)) "$f" |
		sha256sum | cut -d' ' -f1)
	if [ "$got" = "$want" ]; then
		R[$tool,$wl]=$v
	else
		R[$tool,$wl]=WRONG
		cf_log "$tool $wl: sha256 $got, want $want"
	fi
}

# warm_once TOOL [ORIGIN_ROW]: a warm read of the sequential pair, on a new
# mount over the cache the cold read filled, page cache dropped; sets WARM_V
# to MiB/s (the bytes checked against the original) or to what went wrong,
# and ORIGIN_ROW, if given, to what the read asked the origin. Keeps the
# cache.
warm_once() {
	local tool=$1 row=${2:-} v mark
	fresh "$tool" "$NGINX_URL" "$CACHE"
	mark=$(log_mark)
	v=$(time_seq "$FILE")
	[ -z "$row" ] || origin_cell "$tool" "$row" "$mark"
	seq_cell "$tool" warm "$v" "$FILE" "$DATA_SHA"
	unmount_tool "$tool" keep
	WARM_V=${R[$tool,warm]}
}

# Cold sequential; then warm: a new mount over the cache the first one
# filled, page cache dropped, so the data can only come from the tool's
# own cache on disk (not from its memory). The warm figure is the mean of
# two such reads. For cofault also cat of its cache files after the same
# drop, the disk's limit, twice between its two warm reads (warm, cat,
# cat, warm): this machine's disk moves by two or more times from one
# minute to the next, and a trend moves both means alike.
bench_seq_once() {
	local tool=$1 v cf w1 w2 c1 c2 s
	fresh "$tool" "$NGINX_URL"
	v=$(time_seq "$FILE")
	# The cold read is the first thing the daemon does.
	[ "$tool" = cofault ] && PEAK_MIB=$(daemon_hwm_mib "$TOOL_PID")
	seq_cell "$tool" cold "$v" "$FILE" "$DATA_SHA"
	unmount_tool "$tool" keep
	# The first read of a gigabyte just written runs at about half the
	# speed of every later one here, whoever reads (the disk behind the
	# machine is still writing it out): a warm read that came first was
	# 442 to 583 MiB/s where the same read after two cats was 1103 to
	# 1339, and a cat that came first was as slow. One untimed read of
	# the tool's cache files takes that, so that the warm reads and the
	# cats between them all find the disk alike.
	drop_caches
	s=$(time_seq_cat_files "$CACHE")
	cf_log "$tool: first read of its cache files after the cold read:" \
		"$s MiB/s (untimed for the table)"
	warm_once "$tool" warmorigin
	w1=$WARM_V
	if [ "$tool" = cofault ]; then
		cf=$(find "$CACHE" -path '*/data/*' -type f -size +1M)
		drop_caches
		# shellcheck disable=SC2086 # the cache's files
		c1=$(time_seq_cat $cf)
		drop_caches
		# shellcheck disable=SC2086 # the cache's files
		c2=$(time_seq_cat $cf)
		CAT_MIBS=$(median "$c1" "$c2") # of two: their mean
		# One sparse file per object, the object's bytes at their own
		# offsets: it hashes like the original when complete.
		# shellcheck disable=SC2086 # the cache's files
		[ "$(cat $cf | sha256sum | cut -d' ' -f1)" = "$DATA_SHA" ] ||
			CAT_MIBS=WRONG
	fi
	warm_once "$tool"
	w2=$WARM_V
	R[$tool,warm]=$(median "$w1" "$w2")
	cf_log "$tool warm MiB/s: $w1 $w2${c1:+; cat between: $c1 $c2}"
	[ "$tool" = cofault ] &&
		WARM_CAT=$(ratio "${R[$tool,warm]}" "$CAT_MIBS")
	rm -rf "$CACHE"
}

# Sequential figures move most with the machine's load: the median of
# SEQ_REPS runs, each on fresh mounts and caches (all samples are logged).
# shellcheck disable=SC2086 # lists of samples, split on purpose
bench_seq() {
	local tool=$1 _ cold='' warm='' cat='' peak='' wc=''
	for _ in $(seq "$SEQ_REPS"); do
		bench_seq_once "$tool"
		cold="$cold ${R[$tool,cold]}"
		warm="$warm ${R[$tool,warm]}"
		[ "$tool" = cofault ] || continue
		cat="$cat $CAT_MIBS"
		peak="$peak $PEAK_MIB"
		wc="$wc $WARM_CAT"
	done
	cf_log "$tool cold MiB/s:$cold; warm:$warm"
	R[$tool,cold]=$(median $cold)
	R[$tool,warm]=$(median $warm)
	if [ "$tool" = cofault ]; then
		cf_log "cat of the cache MiB/s:$cat; warm / cat:$wc;" \
			"peak RSS MiB:$peak"
		CAT_MIBS=$(median $cat)
		WARM_CAT=$(median $wc)
		# The worst of the peaks: a bound is about the worst case.
		PEAK_MIB=$(printf '%s\n' $peak | sort -n | tail -n 1)
	fi
}

# ratio A B: A / B to two places, or "-" unless both are above 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b
		else print "-" }'
}

# time_seq_cat_files DIR: time_seq_cat of every file under DIR, in MiB/s
# of the data file's size, whatever the files hold.
time_seq_cat_files() {
	local files
	mapfile -t files < <(find "$1" -type f)
	[ "${#files[@]}" -gt 0 ] || {
		echo -
		return 0
	}
	time_seq_cat "${files[@]}"
}

time_seq_cat() {
	local t0 t1
	t0=$(date +%s%N)
	timeout "$STEP_TIMEOUT" cat "$@" >/dev/null
	t1=$(date +%s%N)
	awk -v b="$DATA_BYTES" -v ns="$((t1 - t0))" \
		'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'
}

bench_random() {
	local tool=$1 mark
	fresh "$tool" "$NGINX_URL"
	mark=$(log_mark)
	read_with "$tool" rcold pread "$FILE" "$DATA" "$RANDOM_READS" 42 1
	origin_cell "$tool" rorigin "$mark"
	drop_caches
	read_with "$tool" rwarm pread "$FILE" "$DATA" "$RANDOM_READS" 42 1
	unmount_tool "$tool"
}

# A random reader's two epochs: every page of the first EPOCH_MIB once,
# in random order, on a fresh mount and cache; then again on a new mount
# over the same cache, page cache dropped, so what the tool kept on disk
# is all that can help. With what each epoch cost the origin.
bench_epochs() {
	local tool=$1 mark _
	fresh "$tool" "$NGINX_URL"
	mark=$(log_mark)
	read_with "$tool" epoch1 epoch "$FILE" "$DATA" "$EPOCH_MIB" 1
	origin_cell "$tool" e1origin "$mark"
	if [ "$tool" = cofault ]; then
		# Chunks filled during the pass are written in the background
		# (at most a few seconds); what the next epoch finds on disk is
		# the point, so let them land.
		for _ in $(seq 100); do
			[ "$("$COFAULT" cache stats --cache-dir "$CACHE" |
				awk '$1 == "chunks" { print $2 }')" -ge 				$((EPOCH_MIB * MiB / CHUNK_BYTES)) ] && break
			sleep 0.1
		done
	fi
	unmount_tool "$tool" keep
	fresh "$tool" "$NGINX_URL" "$CACHE"
	mark=$(log_mark)
	read_with "$tool" epoch2 epoch "$FILE" "$DATA" "$EPOCH_MIB" 2
	origin_cell "$tool" e2origin "$mark"
	unmount_tool "$tool"
}

bench_mmap() {
	local tool=$1
	fresh "$tool" "$NGINX_URL"
	read_with "$tool" mmap mmap "$FILE" "$DATA" "$MMAP_PAGES" 7
	unmount_tool "$tool"
}

bench_rec64() {
	local tool=$1
	fresh "$tool" "$NGINX_URL"
	read_with "$tool" rec64 rec64 "$FILE" "$DATA" "$REC_READS" "$REC_PROCS"
	unmount_tool "$tool"
}

bench_small() {
	local tool=$1
	if [ "$tool" = httpfs2 ]; then
		R[$tool,small]=n/a # one file per mount
		return 0
	fi
	fresh "$tool" "$NGINX_URL"
	read_with "$tool" small small "$MNT/$SMALL_NAME" "$SMALL"
	unmount_tool "$tool"
}

# One sample is one request: the median of three fresh mounts.
bench_ttfb() {
	local tool=$1 _ all=
	for _ in 1 2 3; do
		fresh "$tool" "$NGINX_URL"
		read_with "$tool" ttfb ttfb "$FILE" "$DATA"
		unmount_tool "$tool"
		all="$all ${R[$tool,ttfb]}"
		numeric "${R[$tool,ttfb]}" || return 0
	done
	# shellcheck disable=SC2086 # three numbers
	R[$tool,ttfb]=$(printf '%s\n' $all | sort -n | sed -n 2p)
	cf_log "$tool ttfb ms:$all"
}

bench_slowseq() {
	local tool=$1 v mib=$SLOW_PEER_MIB want=$SLOW_PEER_SHA
	if [ "$tool" = cofault ]; then
		mib=$SIZE_MIB
		want=$DATA_SHA
	fi
	fresh "$tool" "$PROXY_URL"
	v=$(time_seq "$FILE" "$mib")
	seq_cell "$tool" slowseq "$v" "$FILE" "$want" "$mib"
	unmount_tool "$tool"
}

bench_slowrand() {
	local tool=$1
	fresh "$tool" "$PROXY_URL"
	read_with "$tool" slowrand pread "$FILE" "$DATA" "$SLOW_READS" 9 \
		"$SLOW_THREADS"
	unmount_tool "$tool"
}

# --- the limits ------------------------------------------------------------

bench_curl() {
	local best=0 _ out sp
	for _ in 1 2 3; do
		out=$(curl -s -o /dev/null -w '%{http_code} %{speed_download}' \
			"$NGINX_URL$DATA_NAME")
		[ "${out%% *}" = 200 ] || cf_fail "curl: HTTP ${out%% *}"
		sp=$(awk -v s="${out#* }" 'BEGIN { printf "%.0f", s / 1048576 }')
		best=$(awk -v a="$best" -v b="$sp" 'BEGIN { print (b > a ? b : a) }')
	done
	[ "$(curl -s "$NGINX_URL$DATA_NAME" | sha256sum | cut -d' ' -f1)" = \
		"$DATA_SHA" ] || cf_fail "curl: wrong data"
	CURL_MIBS=$best
	# The proxy's own ceiling: one request is delayed once, then streams.
	out=$(curl -s -o /dev/null -w '%{http_code} %{speed_download}' \
		"$PROXY_URL$DATA_NAME")
	[ "${out%% *}" = 200 ] || cf_fail "curl via proxy: HTTP ${out%% *}"
	PROXY_MIBS=$(awk -v s="${out#* }" 'BEGIN { printf "%.0f", s / 1048576 }')
}

bench_nullfs() {
	local nf mnt want
	NULLFS_MIBS='-'
	FED_MIBS='-'
	SPLICED_MIBS='-'
	bench_nullfs_mount || return 0
	nf=$NULLFS_BIN
	mnt=$NULLFS_MNT
	drop_caches
	NULLFS_MIBS=$(time_seq "$mnt/data")
	want=$("$nf" --size="$DATA_BYTES" --dump | sha256sum | cut -d' ' -f1)
	[ "$(sha256sum <"$mnt/data" | cut -d' ' -f1)" = "$want" ] ||
		cf_fail "nullfs: wrong data"
	bench_nullfs_unmount
	# A FUSE server fed by the origin, keeping and checking nothing: the
	# ceiling for a cold sequential read (bench/stream.c).
	drop_caches
	bench_stream_read || return 0
	FED_MIBS=$STREAM_MIBS
	drop_caches
	bench_stream_read --splice
	SPLICED_MIBS=$STREAM_MIBS
}

# The delaying proxy in front of nginx.
start_proxy() {
	local pf=$T/proxy.port
	python3 "$top_srcdir/bench/delay-proxy.py" \
		--upstream "127.0.0.1:$NGINX_PORT" --delay-ms "$DELAY_MS" \
		--port-file "$pf" >/dev/null 2>"$T/proxy.log" &
	CF_PIDS="$CF_PIDS $!"
	cf_wait_until 10 test -s "$pf" || cf_fail "delay proxy did not start"
	PROXY_URL=http://127.0.0.1:$(cat "$pf")/
}

# --- the table -------------------------------------------------------------

# Which way is better for each row: "hi" (throughput) or "lo" (time).
sense() {
	case $1 in small | ttfb) echo lo ;; *origin) echo none ;; *) echo hi ;; esac
}

# vs_best WORKLOAD: how many times better cofault is than the best peer
# (above 1: cofault ahead), or "-".
vs_best() {
	local wl=$1 t v best='' c
	c=${R[cofault,$wl]:-}
	if ! numeric "$c" || [ "$(sense "$wl")" = none ]; then
		echo '-'
		return
	fi
	for t in $TOOLS; do
		[ "$t" = cofault ] && continue
		v=${R[$t,$wl]:-}
		numeric "$v" || continue
		if [ -z "$best" ]; then
			best=$v
		elif [ "$(sense "$wl")" = hi ]; then
			best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
		else
			best=$(awk -v a="$best" -v b="$v" 'BEGIN { print (b < a ? b : a) }')
		fi
	done
	[ -n "$best" ] || { echo '-'; return; }
	if [ "$(sense "$wl")" = hi ]; then
		awk -v c="$c" -v b="$best" 'BEGIN { printf "%.2fx", c / b }'
	else
		awk -v c="$c" -v b="$best" 'BEGIN { printf "%.2fx", b / c }'
	fi
}

# Every row of the table, in order.
ROWS="cold warm warmorigin rcold rorigin rwarm epoch1 e1origin epoch2
e2origin mmap rec64 small ttfb slowseq slowrand"

# end_round: keep this round's cells and ratios. Curl, the cache's cat
# and peak memory are kept per round as well.
end_round() {
	local wl t v
	for wl in $ROWS; do
		for t in $TOOLS; do
			v=${R[$t,$wl]:-}
			[ -n "$v" ] && RS[$t,$wl]="${RS[$t,$wl]:-} $v"
		done
		v=$(vs_best "$wl")
		[ "$v" = - ] || RATIOS[$wl]="${RATIOS[$wl]:-} ${v%x}"
	done
	CURLS="$CURLS $CURL_MIBS"
	CATS="$CATS $CAT_MIBS"
	WCS="$WCS $WARM_CAT"
	PEAKS="$PEAKS $PEAK_MIB"
}

# end_rounds: the table's cells from all rounds (a number row is the
# median; a request count is the last round's), each round logged.
# shellcheck disable=SC2086 # lists of samples, split on purpose
end_rounds() {
	local wl t last
	for wl in $ROWS; do
		for t in $TOOLS; do
			[ -n "${RS[$t,$wl]:-}" ] || continue
			[ "$ROUNDS" -gt 1 ] &&
				cf_log "rounds: $t $wl:${RS[$t,$wl]}"
			last=${RS[$t,$wl]##* }
			if [ "$(sense "$wl")" = none ]; then
				R[$t,$wl]=$last
			else
				R[$t,$wl]=$(median ${RS[$t,$wl]})
			fi
		done
		[ "$ROUNDS" -gt 1 ] && [ -n "${RATIOS[$wl]:-}" ] &&
			cf_log "rounds: cofault/best $wl:${RATIOS[$wl]}"
	done
	CURL_MIBS=$(median $CURLS)
	CAT_MIBS=$(median $CATS)
	[ "$ROUNDS" -gt 1 ] && cf_log "rounds: cofault warm / cat:$WCS"
	WARM_CAT=$(median $WCS)
	PEAK_MIB=$(printf '%s\n' $PEAKS | sort -n | tail -n 1)
}

# The last column: with rounds, the median of the ratios within rounds.
# shellcheck disable=SC2086 # a list of samples, split on purpose
ratio_col() {
	if [ "$ROUNDS" -gt 1 ]; then
		if [ -n "${RATIOS[$1]:-}" ]; then
			echo "$(median ${RATIOS[$1]})x"
		else
			echo -
		fi
	else
		vs_best "$1"
	fi
}

# Sequential cells carry their ratio to curl.
cell() {
	local v=${R[$1,$2]:--}
	case $2 in cold | warm)
		numeric "$v" && v="$v ($(awk -v a="$v" -v b="$CURL_MIBS" \
			'BEGIN { printf "%.2f", a / b }'))" ;;
	esac
	echo "$v"
}

print_table() {
	local wl label t
	printf '\n%-36s' ''
	for t in $TOOLS; do printf ' %14s' "$t"; done
	printf ' %12s\n' 'cofault/best'
	for wl in $ROWS; do
		case $wl in
		warmorigin) label="  origin requests/MiB in warm read" ;;
		rorigin) label="  origin requests/MiB in cold random" ;;
		cold) label="cold sequential, MiB/s (x curl)" ;;
		warm) label="warm seq, own cache, MiB/s (x curl)" ;;
		rcold) label="random 4K pread cold, IOPS" ;;
		rwarm) label="random 4K pread warm, IOPS" ;;
		epoch1) label="random epoch 1 (${EPOCH_MIB} MiB), IOPS" ;;
		e1origin) label="  origin requests/MiB in epoch 1" ;;
		epoch2) label="epoch 2, remounted, IOPS" ;;
		e2origin) label="  origin requests/MiB in epoch 2" ;;
		mmap) label="mmap random pages cold, pages/s" ;;
		rec64) label="${REC_PROCS} procs mmap 64K records, MiB/s" ;;
		small) label="${SMALL_FILES}x4K: ls -l + read all, s" ;;
		ttfb) label="time to first 4K (median of 3), ms" ;;
		slowseq) label="+${DELAY_MS}ms: cold sequential, MiB/s" ;;
		slowrand) label="+${DELAY_MS}ms: ${SLOW_THREADS} threads 4K pread, IOPS" ;;
		esac
		printf '%-36s' "$label"
		for t in $TOOLS; do printf ' %14s' "$(cell "$t" "$wl")"; done
		printf ' %12s\n' "$(ratio_col "$wl")"
	done
}

# --- main ------------------------------------------------------------------

TOOLS=
WORKLOADS=$ALL_WORKLOADS
while getopts s:t:d:w: opt; do
	case $opt in
	s) SIZE_MIB=$OPTARG ;;
	t) TOOLS=$OPTARG ;;
	d) DELAY_MS=$OPTARG ;;
	w) WORKLOADS=$OPTARG ;;
	*) echo "usage: $0 [-s SIZE_MIB] [-t TOOLS] [-d DELAY_MS]" \
		"[-w WORKLOADS]" >&2
	   exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "$0: run as root" >&2; exit 2; }
if [ -z "$TOOLS" ]; then
	for t in $ALL_TOOLS; do
		if [ "$t" = cofault ] || command -v "$t" >/dev/null; then
			TOOLS="$TOOLS $t"
		fi
	done
fi
[ "$SLOW_PEER_MIB" -le "$SIZE_MIB" ] || SLOW_PEER_MIB=$SIZE_MIB
[ -z "${LOG_DIR:-}" ] || mkdir -p "$LOG_DIR"

cf_init
prepare_data
write_reader
cf_nginx_start "$DATA_DIR"
start_proxy
echo "cofault compare: ${SIZE_MIB} MiB file and ${SMALL_FILES} x 4 KiB" \
	"files, nginx on 127.0.0.1, $(nproc) CPUs, $(uname -r), $(date -u '+%F %H:%M UTC')"
echo "$("$COFAULT" --version 2>/dev/null | head -n 1)" \
	"--max-memory $MAX_MEMORY${MOUNT_OPTS:+ $MOUNT_OPTS};" \
	"$(rclone version 2>/dev/null | head -n 1);" \
	"httpdirfs $(httpdirfs -V 2>&1 | grep -io 'version [0-9.]*' | head -n 1 | cut -d' ' -f2);" \
	"httpfs2 $(httpfs2 2>&1 | sed -n 's/.*Version: \([0-9.]*\).*/\1/p')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_nullfs
CURLS=''
CATS=''
WCS=''
PEAKS=''
ORDER=$TOOLS
for round in $(seq "$ROUNDS"); do
	bench_curl
	PEAK_MIB='-'
	CAT_MIBS='-'
	WARM_CAT='-'
	R=()
	for wl in $WORKLOADS; do
		for t in $ORDER; do
			cf_log "round $round: $wl: $t"
			CUR_WL=$wl
			"bench_$wl" "$t"
		done
	done
	end_round
	# The other way round next time: no tool always goes first.
	# shellcheck disable=SC2086 # the tools, split on purpose
	ORDER=$(printf '%s\n' $ORDER | tac | tr '\n' ' ')
done
end_rounds
ROUNDS_NOTE=
[ "$ROUNDS" -gt 1 ] && ROUNDS_NOTE=", median of $ROUNDS rounds"
echo "limits: curl -o /dev/null ${CURL_MIBS} MiB/s (best of 3$ROUNDS_NOTE);" \
	"nullfs (FUSE ceiling) ${NULLFS_MIBS} MiB/s" \
	"($(awk -v a="$NULLFS_MIBS" -v b="$CURL_MIBS" 'BEGIN { if (a + 0 > 0) printf "%.2f", a / b; else print "-" }') x curl);" \
	"curl through the delay proxy ${PROXY_MIBS} MiB/s;" \
	"nullfs --stream (origin-fed FUSE, nothing kept) ${FED_MIBS} MiB/s," \
	"with --splice ${SPLICED_MIBS} MiB/s"

print_table
echo
echo "cat of cofault's cache files, page cache dropped: ${CAT_MIBS} MiB/s;" \
	"cofault warm / that: $WARM_CAT (the median of the ratios within each" \
	"warm, cat, cat, warm)"
echo "cofault peak RSS (VmHWM) over the cold sequential read: ${PEAK_MIB} MiB" \
	"with --max-memory $MAX_MEMORY"
echo "cofault under +${DELAY_MS} ms / undelayed cold:" \
	"$(ratio "${R[cofault,slowseq]:-0}" "${R[cofault,cold]:-0}");" \
	"peers read the first ${SLOW_PEER_MIB} MiB under delay"
echo "cofault, ${SLOW_THREADS} threads under +${DELAY_MS} ms: $(awk \
	-v a="${R[cofault,slowrand]:-0}" -v d="$DELAY_MS" \
	'BEGIN { printf "%.1f", a * d / 1000 }') requests in flight on average" \
	"(IOPS x delay: 1 = one request at a time; cache hits can lift it)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q " $T/" /proc/mounts; then
	cf_log "mounts left behind (cleanup will lazy-unmount them)"
fi
