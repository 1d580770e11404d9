#!/bin/bash
# bench/read-cost.sh: what one cold random 4 KiB read costs each process
# on its way, for cofault and httpfs2 reading the same nginx origin on
# loopback. Per round and tool: a fresh mount, the page cache dropped
# (the origin's file read back into it), then READS random preads of
# 4 KiB by one reader. Prints per read: the wall time, the CPU time of the
# daemon (all its threads), of nginx and of the reader (run time from
# /proc/PID/task/*/schedstat), their sum, and the daemon's and nginx's
# context switches (voluntary and not). The tools alternate which goes
# first each round. A diagnostic of where the time goes, not a figure
# for the README table (compare.sh makes those).
#
#   top_builddir=BUILD_DIR bench/read-cost.sh [-s SIZE_MIB]
#
# ROUNDS (environment, default 4) and READS (default 2000); MOUNT_OPTS and
# LOG_DIR as for compare.sh. Needs root (dropping the page cache) and
# httpfs2.

top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
export top_srcdir
: "${top_builddir:=$top_srcdir}"
export top_builddir
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/bench/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh
CF_NAME=read-cost

SIZE_MIB=1024
ROUNDS=${ROUNDS:-4}
READS=${READS:-2000}
MAX_MEMORY=256M
MOUNT_OPTS=${MOUNT_OPTS:-}
CUR_WL=read-cost
while getopts s: opt; do
	case $opt in
	s) SIZE_MIB=$OPTARG ;;
	*) cf_fail "usage: $0 [-s SIZE_MIB]" ;;
	esac
done
[ "$(id -u)" = 0 ] || cf_skip "needs root to drop the page cache"
command -v httpfs2 >/dev/null || cf_skip "no httpfs2"
cf_require_cofault
cf_require_python

cf_init
bench_big_file "${TMPDIR:-/tmp}/cofault-bench" "$SIZE_MIB"
cf_nginx_start "$(dirname "$DATA")"

# Run time in microseconds of every thread of PID so far.
run_us() {
	cat "/proc/$1/task/"*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%d", s / 1000 }'
}

# Context switches of every thread of PID so far, both kinds.
switches() {
	cat "/proc/$1/task/"*/status 2>/dev/null |
		awk '/^(nonvoluntary|voluntary)_ctxt_switches:/ { s += $2 }
		END { print s + 0 }'
}

# The reader: prints its wall time and its own run time, both in
# microseconds, and how many blocks came back wrong.
READER=$T/reader.py
cat >"$READER" <<'EOF'
import os, random, sys, time
path, data, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd = os.open(path, os.O_RDONLY)
size = os.fstat(fd).st_size
rng = random.Random(seed)
offs = [rng.randrange(size // 4096) * 4096 for _ in range(n)]
def run_us():
    s = 0
    for t in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/schedstat" % t) as f:
            s += int(f.read().split()[0])
    return s // 1000
got = []
r0, t0 = run_us(), time.perf_counter()
for o in offs:
    got.append(os.pread(fd, 4096, o))
t1, r1 = time.perf_counter(), run_us()
ref = os.open(data, os.O_RDONLY)
bad = sum(1 for o, b in zip(offs, got) if b != os.pread(ref, 4096, o))
print(int((t1 - t0) * 1e6), r1 - r0, bad)
EOF

# one TOOL ROUND: mount, read, unmount; prints the row.
one() {
	local tool=$1 round=$2 pid d0 d1 n0 n1 s0 s1 g0 g1 out
	mount_tool "$tool" "$NGINX_URL"
	pid=$TOOL_PID
	sync
	echo 3 >/proc/sys/vm/drop_caches
	cat "$DATA" >/dev/null
	d0=$(run_us "$pid") n0=$(run_us "$NGINX_PID")
	s0=$(switches "$pid") g0=$(switches "$NGINX_PID")
	out=$(timeout 300 python3 "$READER" "$FILE" "$DATA" \
		"$READS" "$round") || cf_fail "$tool: the reader failed"
	d1=$(run_us "$pid") n1=$(run_us "$NGINX_PID")
	s1=$(switches "$pid") g1=$(switches "$NGINX_PID")
	# shellcheck disable=SC2086 # three numbers
	set -- $out
	[ "$3" = 0 ] || cf_fail "$tool: $3 blocks of WRONG DATA"
	awk -v t="$tool" -v r="$round" -v n="$READS" -v w="$1" -v rd="$2" \
		-v d=$((d1 - d0)) -v g=$((n1 - n0)) -v sd=$((s1 - s0)) \
		-v sg=$((g1 - g0)) 'BEGIN {
		printf "%5d  %-8s %8.0f %7.1f %7.1f %7.1f %7.1f %7.1f %6.2f %6.2f\n",
			r, t, n / (w / 1e6), w / n, d / n, g / n, rd / n,
			(d + g + rd) / n, sd / n, sg / n }'
	unmount_tool "$tool"
}

echo "cold random 4 KiB preads, $READS a round, ${SIZE_MIB} MiB file;" \
	"per read: us of wall time and of CPU, switches"
printf '%5s  %-8s %8s %7s %7s %7s %7s %7s %6s %6s\n' round tool IOPS \
	wall daemon nginx reader sum sw-dmn sw-ngx
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then
		one cofault "$round"
		one httpfs2 "$round"
	else
		one httpfs2 "$round"
		one cofault "$round"
	fi
done
