#!/bin/bash
# The kernel-module checks, run as root inside the QEMU guest (chrooted into
# the host's read-only root; scratch space on a tmpfs under /run). Prints one
#   COFAULT-CHECK <kernel> <daemon> <n>-<name> PASS|FAIL|INFO <details>
# line per check; tests/kmod/qemu.sh turns them into the test result.
# Environment (from guest-init.sh): KVER COFAULT_SRCDIR COFAULT_BUILDDIR
# COFAULT_KO COFAULT_BIN.
set -u

S=/run/cofault-test
export TMPDIR=$S/tmp HOME=$S
# With --enable-sanitizers the test programs are ASan builds. Here they
# must see SIGBUS themselves (the daemon-death check expects to die of
# it, ASan would catch it and exit 1), and run behind the preloaded shim,
# which is built without sanitizers.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_sigbus=0:verify_asan_link_order=0
export ASAN_OPTIONS
CFTEST=$COFAULT_BUILDDIR/tests/kmod/cftest
DELAYFS=$COFAULT_BUILDDIR/tests/kmod/delayfs
ORIGIN=$COFAULT_SRCDIR/tests/tools/slow_origin.py
SYS=/sys/class/misc/cofault/stats
PARAM=/sys/module/cofault/parameters
MAX_RETRIES=3
# A signal that waited for the stalled fault arrives the whole stall (3 s)
# late; one handled promptly, 1 to 4 ms late in a quiet run. Under TCG in
# a loaded "make -j2 check" the shim's handler once ran 64 ms late, so the
# bound allows 250 ms, still a twelfth of the stall it detects.
LATE_LIMIT_MS=${COFAULT_LATE_LIMIT_MS:-250}
# A fault that kept the mmap lock would stall the other thread for the
# whole stalled fault (3 s); under TCG, with the host busy with other tests
# (make -j2 check), a guest thread alone was once descheduled for 177 ms.
LOCK_LIMIT_MS=${COFAULT_LOCK_LIMIT_MS:-250}
KILL_LIMIT_MS=${COFAULT_KILL_LIMIT_MS:-2000}
MiB=$((1 << 20))

mkdir -p "$S/origin" "$S/tmp" "$S/dmnt" "$S/cmnt" "$S/cache"

report() { echo "COFAULT-CHECK $KVER $1 $2 $3 ${4:-}"; }
log() { echo "COFAULT-LOG $*"; }
# Microseconds, without forking (a fork costs 100+ ms under TCG).
now_us() { NOW=${EPOCHREALTIME/./}; }
stat_of() { cat "$SYS/$1"; }
# "key=value ..." line $1: the value of key $2.
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# Did the probe line $1 really wait for the (3 s) origin?
waited() { ! lt "$(field "$1" touch_ms)" 1500; }

wait_mounted() {
	for _ in $(seq 300); do
		mountpoint -q "$1" && [ -e "$1/f4096" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- the daemons ----------------------------------------------------------
# Each backend provides start_X, set_delay_X (ms | stall), and sets DPID
# (the process to kill for the daemon-death check) and MNT.

start_delayfs() {
	MNT=$S/dmnt
	rm -f "$S/delayfs.ctl"
	"$DELAYFS" "$S/origin" "$S/delayfs.ctl" "$MNT" -f -o ro \
		>"$S/delayfs.log" 2>&1 &
	DPID=$!
	wait_mounted "$MNT"
}
set_delay_delayfs() {
	echo "$1" >"$S/delayfs.ctl.new" && mv "$S/delayfs.ctl.new" "$S/delayfs.ctl"
}

start_cofault() {
	MNT=$S/cmnt
	if [ -z "${OPID:-}" ] || ! kill -0 "$OPID" 2>/dev/null; then
		rm -f "$S/port" "$S/origin.ctl"
		python3 "$ORIGIN" --root "$S/origin" --port 0 \
			--port-file "$S/port" --control "$S/origin.ctl" \
			--delay-data-only >"$S/origin.log" 2>&1 &
		OPID=$!
		for _ in $(seq 200); do
			[ -s "$S/port" ] && break
			sleep 0.1
		done
	fi
	[ -s "$S/port" ] || return 1
	# Small chunks: the guest runs under TCG and the origin is python.
	"$COFAULT_BIN" mount -f "http://127.0.0.1:$(cat "$S/port")/" "$MNT" \
		--cache-dir "$S/cache" --chunk-size 256K --timeout 20 \
		>"$S/cofault.log" 2>&1 &
	DPID=$!
	wait_mounted "$MNT"
}
set_delay_cofault() {
	case $1 in
	stall) echo "stall=1" ;;
	*) printf 'stall=0\ndelay_ms=%s\n' "$1" ;;
	esac >"$S/origin.ctl.new" && mv "$S/origin.ctl.new" "$S/origin.ctl"
}

stop_daemon() {
	kill "$DPID" 2>/dev/null
	umount -l "$MNT" 2>/dev/null
	wait "$DPID" 2>/dev/null
}

# --- the checks -------------------------------------------------------------

check_data() { # $1 = daemon
	local bad= n out l0
	for n in 0 1 4095 4096 4097 $((MiB - 1)) $MiB $((MiB + 1)); do
		want=$(sha256sum <"$S/origin/f$n" | cut -d' ' -f1)
		got=$(timeout 120 "$CFTEST" cat cofault "$MNT/f$n" | sha256sum | cut -d' ' -f1)
		[ "$want" = "$got" ] || bad="$bad f$n"
	done
	[ -z "$bad" ] && report "$1" 1-data-sizes PASS "8 sizes match sha256" ||
		report "$1" 1-data-sizes FAIL "mismatch:$bad"
	out=$(timeout 300 "$CFTEST" threads cofault "$MNT/big" 8 32)
	[ "$(field "$out" ok)" = 1 ] && report "$1" 1-data-threads PASS "$out" ||
		report "$1" 1-data-threads FAIL "$out"
	# Kernel-mode faults and GUP without ALLOW_RETRY, on unfetched pages.
	drop_caches
	"set_delay_$1" 200
	l0=$(stat_of lock_held)
	out=$(timeout 120 "$CFTEST" kernel cofault "$MNT/slow" $((60 * MiB)))
	"set_delay_$1" 0
	[ "$(field "$out" ok)" = 1 ] &&
		report "$1" 1-data-kernel PASS "$out; lock-held waits +$(($(stat_of lock_held) - l0))" ||
		report "$1" 1-data-kernel FAIL "$out"
	out=$(timeout 120 "$CFTEST" private cofault "$MNT/big")
	[ "$(field "$out" ok)" = 1 ] && report "$1" 1-data-private PASS "$out" ||
		report "$1" 1-data-private FAIL "$out"
}

# Page cache a mapping faults in is charged to the faulting task's memory
# cgroup, through the device as plainly (the worker would charge the root).
check_memcg() {
	local cg=/sys/fs/cgroup want got m file cofault plain sum
	want=$(sha256sum <"$S/origin/slow" | cut -d' ' -f1)
	if ! mountpoint -q "$cg" && ! mount -t cgroup2 none "$cg"; then
		report delayfs 1-memcg FAIL "cannot mount cgroup2"
		return
	fi
	echo +memory >"$cg/cgroup.subtree_control"
	for m in cofault plain; do
		mkdir -p "$cg/cft-$m"
		drop_caches
		got=$( (echo "$BASHPID" >"$cg/cft-$m/cgroup.procs" &&
			exec "$CFTEST" cat "$m" "$MNT/slow") |
			sha256sum | cut -d' ' -f1)
		file=$(awk '$1 == "file" { print int($2 / 1048576) }' \
			"$cg/cft-$m/memory.stat")
		[ "$got" = "$want" ] || file="$file (wrong bytes)"
		eval "$m=\$file"
	done
	drop_caches
	rmdir "$cg/cft-cofault" "$cg/cft-plain" 2>/dev/null
	sum="file MiB charged to the reader's cgroup for a 64 MiB file: cofault $cofault, plain $plain"
	if [ "$cofault" -ge 48 ] 2>/dev/null; then
		report delayfs 1-memcg PASS "$sum"
	else
		report delayfs 1-memcg FAIL "$sum"
	fi
}

# The timing checks need pages that are not cached yet: readahead (the
# worker's and the plain path's) may have pulled in far more than was touched.
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

check_signal() { # $1 = daemon
	local co pl
	drop_caches
	"set_delay_$1" 3000
	co=$(timeout 60 "$CFTEST" sigalrm cofault "$MNT/slow" $((4 * MiB)))
	pl=$(timeout 60 "$CFTEST" sigalrm plain "$MNT/slow" $((12 * MiB)))
	"set_delay_$1" 0
	if ! waited "$co" || ! waited "$pl"; then
		report "$1" 2-signal FAIL "a page was cached, nothing measured: cofault: $co | plain: $pl"
	elif [ "$(field "$co" ok)" = 1 ] && [ "$(field "$co" handler)" = 1 ] &&
		lt "$(field "$co" late_ms)" "$LATE_LIMIT_MS"; then
		report "$1" 2-signal PASS "cofault: $co | plain: $pl"
	else
		report "$1" 2-signal FAIL "cofault: $co | plain: $pl"
	fi
}

check_lock() {
	local co pl
	drop_caches
	"set_delay_$1" 3000
	co=$(timeout 60 "$CFTEST" lock cofault "$MNT/slow" $((20 * MiB)))
	pl=$(timeout 60 "$CFTEST" lock plain "$MNT/slow" $((28 * MiB)))
	"set_delay_$1" 0
	if ! waited "$co" || ! waited "$pl"; then
		report "$1" 3-lock FAIL "a page was cached, nothing measured: cofault: $co | plain: $pl"
	elif [ "$(field "$co" ok)" = 1 ] && lt "$(field "$co" max_ms)" "$LOCK_LIMIT_MS"; then
		report "$1" 3-lock PASS "cofault: $co | plain: $pl"
	else
		report "$1" 3-lock FAIL "cofault: $co | plain: $pl"
	fi
}

# Wait up to $2 seconds for child $1 to end; its exit status in ST, or
# "running" if it has not ended.
wait_bounded() {
	local _
	ST=running
	for _ in $(seq $(($2 * 10))); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			ST=$?
			return
		fi
		sleep 0.1
	done
}

# Wait up to $3 seconds (60 if not given) for the line $2 in file $1.
wait_line() {
	local _
	for _ in $(seq $((${3:-60} * 10))); do
		grep -qx "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Start "cftest touch" at offset $1 in the background (pid in TPID) and
# wait until it is in the fault: it says "touching" just before the
# access, and a second later its fault waits on the stalled origin. A
# fixed sleep was not enough: an ASan build starting under TCG on a busy
# host was once still opening the file when the daemon was killed.
start_touch() {
	: >"$S/touch.err"
	"$CFTEST" touch cofault "$MNT/slow" "$1" >/dev/null 2>"$S/touch.err" &
	TPID=$!
	wait_line "$S/touch.err" touching 30
	sleep 1
	# Still in the fault (the origin stalls): anything else is a failure
	# to report, not a check passed by a process that was never there.
	kill -0 "$TPID" 2>/dev/null
}
# cftest's own words, for a failure's report.
touch_err() { grep -v touching "$S/touch.err" | tr '\n' ' '; }

# 8: a second delayfs whose reads all stall takes a fault on each of 300
# windows of a file. At most max_mount_fetches of them may hold one of the
# module's workers; the others must be plain faults (the plain counter).
# Meanwhile a fault on the first mount, which answers at once, must be
# served: when the stalled mount could take every worker (256), it
# waited for that daemon.
check_flood() {
	local m2=$S/dmnt2 ctl2=$S/delayfs2.ctl cap dpid2 fpid tpid p0 p1 \
		t0 t1 out flooded done
	cap=$(cat "$PARAM/max_mount_fetches")
	echo stall >"$ctl2"
	mkdir -p "$m2"
	"$DELAYFS" "$S/origin" "$ctl2" "$m2" -f -o ro >"$S/delayfs2.log" 2>&1 &
	dpid2=$!
	if ! wait_mounted "$m2"; then
		report delayfs 8-flood FAIL "second mount failed: $(tail -n 3 "$S/delayfs2.log" | tr '\n' ' ')"
		kill "$dpid2" 2>/dev/null
		return
	fi
	drop_caches
	p0=$(stat_of plain)
	"$CFTEST" flood cofault "$m2/big" 300 >/dev/null 2>"$S/flood.err" &
	fpid=$!
	wait_line "$S/flood.err" flooding && flooded=1 || flooded=0
	sleep 2 # every thread in its fault
	now_us
	t0=$NOW
	"$CFTEST" touch cofault "$MNT/slow" $((40 * MiB)) >"$S/flood.touch" 2>&1 &
	tpid=$!
	wait_bounded "$tpid" 10
	now_us
	t1=$(((NOW - t0) / 1000))
	echo 0 >"$ctl2.new" && mv "$ctl2.new" "$ctl2"
	[ "$ST" = running ] && wait_bounded "$tpid" 60
	wait_line "$S/flood.err" done && done=1 || done=0
	p1=$(stat_of plain)
	kill -9 "$fpid" "$tpid" 2>/dev/null
	wait "$fpid" 2>/dev/null
	kill "$dpid2"
	umount -l "$m2" 2>/dev/null
	wait "$dpid2" 2>/dev/null
	out="cap $cap; other mount's touch ${t1} ms ($(tr '\n' ' ' <"$S/flood.touch")status $ST); plain faults +$((p1 - p0)) of 300; threads started $flooded, all served after the stall $done"
	if [ "$flooded" = 1 ] && [ "$done" = 1 ] && [ "$t1" -lt 8000 ] &&
		[ "$ST" = 0 ] && [ $((p1 - p0)) -ge $((300 - cap)) ]; then
		report delayfs 8-flood PASS "$out"
	else
		report delayfs 8-flood FAIL "$out"
	fi
}

# 9: two processes fault on one page while the daemon holds the read; then
# the daemon fails reads through the first one's handle only, as it would
# a handle it has retired. The first gets SIGBUS; the second, which joined
# that fetch through its own open file, must read the page through it.
check_foreign() {
	local p1 p2 st1 pl0 pl1 out
	drop_caches
	set_delay_delayfs stall
	pl0=$(stat_of plain)
	if ! start_touch $((48 * MiB)); then
		wait "$TPID"
		report delayfs 9-foreign FAIL "first cftest gone, status $?: $(touch_err)"
		set_delay_delayfs 0
		return
	fi
	p1=$TPID
	"$CFTEST" touch cofault "$MNT/slow" $((48 * MiB)) >"$S/touch2.out" \
		2>"$S/touch2.err" &
	p2=$!
	wait_line "$S/touch2.err" touching
	sleep 1 # in its fault
	set_delay_delayfs "eio-pid $p1"
	wait_bounded "$p1" 60
	st1=$ST
	wait_bounded "$p2" 60
	set_delay_delayfs 0
	[ "$st1" = running ] && kill -9 "$p1"
	[ "$ST" = running ] && kill -9 "$p2"
	pl1=$(stat_of plain)
	out="first: status $st1; second: status $ST, $(cat "$S/touch2.out" "$S/touch2.err" | grep -v touching | tr '\n' ' ')plain faults +$((pl1 - pl0))"
	# 135 = 128 + SIGBUS
	if [ "$st1" = 135 ] && [ "$ST" = 0 ] &&
		[ "$(field "$(cat "$S/touch2.out")" ok)" = 1 ] &&
		[ $((pl1 - pl0)) -ge 1 ]; then
		report delayfs 9-foreign PASS "$out"
	else
		report delayfs 9-foreign FAIL "$out"
	fi
}

# Leaves the daemon dead and unmounted; the caller restarts it.
check_kill() {
	local pid t0 t1 st sb0
	drop_caches
	"set_delay_$1" stall
	if ! start_touch $((44 * MiB)); then
		wait "$TPID"
		report "$1" 4-kill FAIL "cftest gone before the kill, status $?: $(touch_err)"
		report "$1" 4-daemon-death FAIL "not run"
		"set_delay_$1" 0
		stop_daemon
		return
	fi
	pid=$TPID
	now_us
	t0=$NOW
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	now_us
	t1=$(((NOW - t0) / 1000))
	if [ "$t1" -lt "$KILL_LIMIT_MS" ]; then
		report "$1" 4-kill PASS "SIGKILL to reaped: $t1 ms"
	else
		report "$1" 4-kill FAIL "SIGKILL to reaped: $t1 ms"
	fi

	sb0=$(stat_of sigbus)
	start_touch $((52 * MiB)) || log "$1 daemon-death: cftest gone before the kill"
	pid=$TPID
	now_us
	t0=$NOW
	kill -9 "$DPID"
	wait_bounded "$pid" 30
	st=${ST/running/timeout}
	now_us
	t1=$(((NOW - t0) / 1000))
	[ "$st" = timeout ] && kill -9 "$pid"
	"set_delay_$1" 0
	umount -l "$MNT" 2>/dev/null
	wait "$DPID" 2>/dev/null
	# 135 = 128 + SIGBUS
	if [ "$st" = 135 ]; then
		report "$1" 4-daemon-death PASS "SIGBUS $t1 ms after the daemon was killed (sigbus counter +$(($(stat_of sigbus) - sb0)))"
	else
		report "$1" 4-daemon-death FAIL "status $st after $t1 ms: $(touch_err)"
	fi
}

check_retries() {
	local r0 l0 r1 l1 out
	drop_caches
	"set_delay_$1" 100
	echo $MAX_RETRIES >"$PARAM/max_retries"
	echo 1 >"$PARAM/evict_before_retry"
	r0=$(stat_of retries)
	l0=$(stat_of lock_held)
	out=$(timeout 120 "$CFTEST" touch cofault "$MNT/slow" $((36 * MiB)))
	r1=$(stat_of retries)
	l1=$(stat_of lock_held)
	echo 0 >"$PARAM/evict_before_retry"
	"set_delay_$1" 0
	if [ "$(field "$out" ok)" = 1 ] && [ $((r1 - r0)) -eq $MAX_RETRIES ] &&
		[ $((l1 - l0)) -eq 1 ]; then
		report "$1" 5-retries PASS "retries +$((r1 - r0)) = max_retries, lock-held waits +$((l1 - l0)); $out"
	else
		report "$1" 5-retries FAIL "retries +$((r1 - r0)) (want $MAX_RETRIES), lock-held +$((l1 - l0)) (want 1); $out"
	fi
}

run_daemon() { # $1 = daemon name
	if ! "start_$1"; then
		report "$1" 0-mount FAIL "could not mount (see its log below)"
		tail -n 20 "$S/$1.log" | sed 's/^/COFAULT-LOG /'
		stop_daemon
		return
	fi
	check_data "$1"
	check_signal "$1"
	check_lock "$1"
	check_retries "$1"
	if type preload_checks >/dev/null 2>&1; then
		preload_checks "$1"
	fi
	check_kill "$1"
}

# --- main -------------------------------------------------------------------

ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
modprobe fuse 2>/dev/null
dmesg -c >/dev/null 2>&1 # the log checked at the end starts here
if ! insmod "$COFAULT_KO" max_retries=$MAX_RETRIES; then
	report - 0-load FAIL "insmod $COFAULT_KO failed"
	exit 1
fi
for n in 0 1 4095 4096 4097 $((MiB - 1)) $MiB $((MiB + 1)); do
	head -c "$n" /dev/urandom >"$S/origin/f$n"
done
# big: the 8-thread check; slow: the timing checks, each at its own offset,
# in a file nothing else reads (the daemon caches what it fetched).
"$CFTEST" gen "$S/origin/big" $((256 * MiB)) || report - 0-gen FAIL "no space"
"$CFTEST" gen "$S/origin/slow" $((64 * MiB)) || report - 0-gen FAIL "no space"
# Optional checks of the user-space side, sourced if present.
if [ -f "$COFAULT_SRCDIR/tests/kmod/preload-guest.sh" ]; then
	. "$COFAULT_SRCDIR/tests/kmod/preload-guest.sh"
fi
echo "not fuse" >"$S/plainfile"
log "kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"

daemons=delayfs
if [ -x "$COFAULT_BIN" ] && [ -f "$ORIGIN" ]; then
	daemons="$daemons cofault"
else
	report cofault 0-mount INFO "skipped: no daemon at $COFAULT_BIN"
fi

# ABI validation once, on the deterministic daemon.
start_delayfs
out=$("$CFTEST" abi "$S/dmnt/f4096" "$S/dmnt" "$S/plainfile" 2>&1)
echo "$out" | grep -q 'ok=1' && report delayfs 1-abi PASS "errno checks" ||
	report delayfs 1-abi FAIL "$(echo "$out" | tr '\n' ';')"
# PROT_EXEC through the device is refused at mmap on every mount (its
# security checks saw the device's anonymous file); mprotect follows the
# FUSE mount's noexec.
ex=$("$CFTEST" exec "$S/dmnt/f4096" 0 2>&1)
if mount -o remount,bind,noexec "$S/dmnt"; then
	nx=$("$CFTEST" exec "$S/dmnt/f4096" 1 2>&1)
	mount -o remount,bind,exec "$S/dmnt"
else
	nx="remount noexec failed"
fi
if echo "$ex" | grep -q 'ok=1' && echo "$nx" | grep -q 'ok=1'; then
	report delayfs 1-noexec PASS "$ex | $nx"
else
	report delayfs 1-noexec FAIL "$(echo "$ex | $nx" | tr '\n' ';')"
fi
check_memcg
check_flood
check_foreign
stop_daemon

for d in $daemons; do
	run_daemon "$d"
	stop_daemon
	# A fresh page cache for the next daemon: same offsets again.
	echo 3 >/proc/sys/vm/drop_caches
done

if [ -x "$COFAULT_BIN" ]; then
	out=$("$COFAULT_BIN" kmod status 2>&1)
	st=$?
	report - 0-kmod-status INFO "exit $st: $(echo "$out" | tr -s ' \n' ' ')"
fi

# 6: module references.
start_delayfs
"$CFTEST" hold cofault "$S/dmnt/f4096" >"$S/hold.out" 2>&1 &
hpid=$!
for _ in $(seq 100); do
	grep -q mapped "$S/hold.out" && break
	sleep 0.1
done
msg=$(rmmod cofault 2>&1)
st=$?
kill -9 $hpid
wait $hpid 2>/dev/null
msg2=$(rmmod cofault 2>&1)
st2=$?
unrec0=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
loops=0
for i in $(seq 20); do
	insmod "$COFAULT_KO" && rmmod cofault && loops=$((loops + 1))
done
unrec1=$(awk '/^SUnreclaim:/ {print $2}' /proc/meminfo)
if [ $st -ne 0 ] && echo "$msg" | grep -q "in use" && [ $st2 -eq 0 ] &&
	[ $loops -eq 20 ] && ! grep -q '^cofault ' /proc/modules; then
	report - 6-rmmod PASS "busy with a mapping ('$msg'), unloads after munmap, 20/20 load+unload (SUnreclaim $((unrec1 - unrec0)) kB)"
else
	report - 6-rmmod FAIL "rmmod with mapping: $st '$msg'; after: $st2 '$msg2'; loops $loops/20"
fi
stop_daemon

# 7: the kernel log of the whole run.
bad=$(dmesg | grep -E 'WARNING|BUG|scheduling while atomic|lockup|blocked for more than|Oops|Call Trace' | head -n 5)
if [ -z "$bad" ]; then
	report - 7-dmesg PASS "no WARNING/BUG/atomic-sleep/lockup/hung-task lines"
else
	report - 7-dmesg FAIL "$(echo "$bad" | tr '\n' ';')"
	dmesg | tail -n 60 | sed 's/^/COFAULT-LOG /'
fi
exit 0
