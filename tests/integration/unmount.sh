#!/bin/bash
# The mount goes away cleanly by "cofault unmount", by SIGTERM to the
# daemon (also while a read waits on a stalled origin), by SIGTERM to a
# foreground (-f) instance, and by an unmount or a connection abort while
# a request waits on a stalled origin; unmounting something not mounted is
# an error; an idle mount does not wake.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

# The daemon serving $1; fails the test unless there is exactly one.
daemon_pid() {
	local pids
	pids=$(cf_pids_with_arg "$1")
	[ -n "$pids" ] || cf_fail "no daemon process found for $1"
	[ "$(echo "$pids" | wc -l)" = 1 ] ||
		cf_fail "several daemons for $1: $pids"
	echo "$pids"
}

# wait_gone PID MOUNTPOINT WHAT: both the process and the mount go away.
wait_gone() {
	cf_wait_until 10 cf_gone "$1" || cf_fail "$3: daemon $1 still running"
	cf_wait_until 10 cf_not_mounted "$2" ||
		cf_fail "$3: $2 still mounted"
}

check_unmount_command() {
	local m=$T/m1 pid
	cf_mount "$NGINX_URL" "$m"
	cf_same_file "$m/f" "$ROOT/f"
	pid=$(daemon_pid "$m")
	timeout 30 "$COFAULT" unmount "$m" || cf_fail "cofault unmount failed"
	wait_gone "$pid" "$m" "cofault unmount"
	cf_log "cofault unmount: ok"
}

check_sigterm() {
	local m=$T/m2 pid
	cf_mount "$NGINX_URL" "$m"
	cf_same_file "$m/f" "$ROOT/f"
	pid=$(daemon_pid "$m")
	kill -TERM "$pid"
	wait_gone "$pid" "$m" "SIGTERM"
	cf_log "SIGTERM to the daemon: ok"
}

check_foreground() {
	local m=$T/m3 pid rc=0
	mkdir -p "$m"
	CF_MOUNTS="$CF_MOUNTS $m"
	"$COFAULT" mount -f "$NGINX_URL" "$m" \
		--cache-dir "$(cf_cache_dir "$m")" >"$T/fg.log" 2>&1 &
	pid=$!
	CF_PIDS="$CF_PIDS $pid"
	cf_wait_until 10 cf_is_mounted "$m" || cf_fail "-f: not mounted"
	cf_same_file "$m/f" "$ROOT/f"
	kill -TERM "$pid"
	wait_gone "$pid" "$m" "SIGTERM to -f"
	wait "$pid" || rc=$?
	cf_forget_pid "$pid"
	[ "$rc" = 0 ] || cf_fail "-f: exit status $rc after SIGTERM, want 0"
	cf_log "foreground mount and SIGTERM: ok"
}

# SIGTERM after the mount and before the kernel's INIT is read (or
# Ctrl-C, which a background job here ignores): the daemon still goes,
# the mount with it. strace holds the mount(2) call's return for a moment
# to open that window every time.
check_signal_before_init() {
	local m=$T/m7 spid pid
	if ! command -v strace >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
		cf_log "no strace, or not root: a signal before INIT not tried"
		return 0
	fi
	mkdir -p "$m"
	CF_MOUNTS="$CF_MOUNTS $m"
	strace -f -o /dev/null -e trace=mount \
		-e inject=mount:delay_exit=1500000 \
		"$COFAULT" mount -f "$NGINX_URL" "$m" \
		--cache-dir "$(cf_cache_dir "$m")" >"$T/early.log" 2>&1 &
	spid=$!
	CF_PIDS="$CF_PIDS $spid"
	cf_wait_until 10 cf_is_mounted "$m" || cf_fail "early: not mounted"
	pid=$(pgrep -P "$spid" | head -n 1)
	[ -n "$pid" ] || cf_fail "early: no daemon under strace"
	kill -TERM "$pid"
	wait_gone "$pid" "$m" "SIGTERM before INIT"
	cf_wait_until 10 cf_gone "$spid" || cf_fail "early: strace lives"
	wait "$spid" 2>/dev/null || true
	cf_forget_pid "$spid"
	cf_log "SIGTERM before INIT was answered: ok"
}

# SIGTERM while a read waits on a stalled origin: the daemon still goes,
# the mount with it, and the reader gets an error instead of hanging.
check_sigterm_busy() {
	local m=$T/m4 pid rpid rc=0
	cf_origin_start "$ROOT"
	cf_mount "$ORIGIN_URL" "$m"
	pid=$(daemon_pid "$m")
	cf_origin_set stall=1
	dd if="$m/f" of=/dev/null bs=64k 2>"$T/busy.err" &
	rpid=$!
	CF_PIDS="$CF_PIDS $rpid"
	# Let the read reach the daemon and block there.
	cf_wait_until 10 grep -q "GET /f" "$ORIGIN_LOG" ||
		cf_fail "busy: the read never reached the origin"
	kill -TERM "$pid"
	wait_gone "$pid" "$m" "SIGTERM with a blocked read"
	cf_wait_until 10 cf_gone "$rpid" || cf_fail "busy: reader still blocked"
	wait "$rpid" || rc=$?
	[ "$rc" != 0 ] || cf_fail "busy: the blocked read succeeded"
	cf_log "SIGTERM with a read in flight: ok ($(tail -n 1 "$T/busy.err"))"
	cf_origin_set
}

# stalled_read MOUNTPOINT WHAT: mount the slow origin (a 60 s timeout) and
# start a read that waits on it, stalled; sets pid (the daemon) and rpid
# (the reader).
stalled_read() {
	[ -n "${ORIGIN_PID:-}" ] || cf_origin_start "$ROOT"
	cf_mount "$ORIGIN_URL" "$1" --timeout 60
	pid=$(daemon_pid "$1")
	cf_origin_set stall=1
	: >"$ORIGIN_LOG"
	dd if="$1/f" of=/dev/null bs=64k 2>/dev/null &
	rpid=$!
	CF_PIDS="$CF_PIDS $rpid"
	cf_wait_until 10 grep -q "GET /f" "$ORIGIN_LOG" ||
		cf_fail "$2: the read never reached the origin"
}

# An unmount while a request waits on a stalled origin (its reader was
# killed, so nothing holds the mount busy): the daemon goes at once, not
# after the origin timeout. The watch learns of it from the mount table.
check_unmount_busy() {
	local m=$T/m5 pid rpid
	stalled_read "$m" "unmount busy"
	kill -KILL "$rpid"
	cf_wait_until 10 cf_gone "$rpid" || cf_fail "unmount busy: reader lives"
	wait "$rpid" 2>/dev/null || true
	cf_forget_pid "$rpid"
	cf_wait_until 10 fusermount3 -u "$m" ||
		cf_fail "unmount busy: fusermount3 -u kept failing"
	wait_gone "$pid" "$m" "unmount with a request in flight"
	cf_log "unmount with a request waiting on the origin: ok"
	cf_origin_set
}

# The connection aborted through fusectl (what an administrator does to a
# wedged mount) while a request waits on a stalled origin: the daemon goes
# at once, not when the origin times out. As libfuse does, it leaves the
# dead mount point for the administrator, and "cofault unmount" removes
# it. fusectl is mounted for the test when it is not.
check_abort_busy() {
	local m=$T/m7 pid rpid conn t0 ms ctl=/sys/fs/fuse/connections
	if ! mountpoint -q "$ctl"; then
		if ! mount -t fusectl fusectl "$ctl" 2>/dev/null; then
			cf_log "abort with a request in flight: skipped" \
				"(no fusectl)"
			return 0
		fi
		FUSECTL_MOUNTED=1
	fi
	stalled_read "$m" "abort busy"
	conn=$(cf_fuse_conn "$m")
	t0=$(cf_now_ms)
	echo 1 >"$ctl/$conn/abort"
	cf_wait_until 10 cf_gone "$rpid" || cf_fail "abort busy: reader blocked"
	wait "$rpid" 2>/dev/null || true
	cf_forget_pid "$rpid"
	cf_wait_until 10 cf_gone "$pid" ||
		cf_fail "abort busy: daemon $pid still running"
	ms=$(($(cf_now_ms) - t0))
	timeout 30 "$COFAULT" unmount "$m" ||
		cf_fail "abort busy: cofault unmount of the dead mount failed"
	cf_not_mounted "$m" || cf_fail "abort busy: $m still mounted"
	cf_log "abort with a request waiting on the origin: ok ($ms ms)"
	cf_origin_set
	[ -z "${FUSECTL_MOUNTED:-}" ] || umount "$ctl" || true
}

# An idle mount does not wake: no thread polls for the session's end, the
# transfer loop sleeps until asked, and the cache's background passes
# slow down while nothing uses it. Counted by the context switches of the
# daemon's threads over 4 s, from 2 s after the last read (the polling
# design woke about 45 times in such a window).
check_idle() {
	local m=$T/m6 pid n
	cf_mount "$NGINX_URL" "$m"
	cf_same_file "$m/f" "$ROOT/f"
	pid=$(daemon_pid "$m")
	sleep 2
	n=$(switches "$pid")
	sleep 4
	n=$(($(switches "$pid") - n))
	[ "$n" -le 3 ] || cf_fail "idle mount: $n context switches in 4 s"
	cf_log "idle mount: $n context switches in 4 s"
	timeout 30 "$COFAULT" unmount "$m" || cf_fail "idle: unmount failed"
	wait_gone "$pid" "$m" "unmount after idling"
}

# Context switches of every thread of process $1 so far.
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s }'
}

check_not_mounted() {
	local rc=0 out
	mkdir -p "$T/plain"
	out=$(timeout 30 "$COFAULT" unmount "$T/plain" 2>&1) || rc=$?
	[ "$rc" != 0 ] || cf_fail "unmount of a plain directory succeeded"
	printf '%s\n' "$out" | grep -qF "$T/plain" ||
		cf_fail "unmount error does not name the directory: $out"
	cf_log "unmount of a non-mount: exit $rc: $out"
}

cf_init
ROOT=$T/root
mkdir -p "$ROOT"
cf_random_file "$ROOT/f" 300000
cf_nginx_start "$ROOT"
check_unmount_command
check_sigterm
check_foreground
check_signal_before_init
check_not_mounted
check_idle
check_sigterm_busy
check_unmount_busy
check_abort_busy
