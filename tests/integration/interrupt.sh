#!/bin/bash
# A read() waiting on a slow origin ends with EINTR promptly when a signal
# arrives (FUSE_INTERRUPT honoured), never returns wrong data, and a
# program that retries after each EINTR still gets its data while a
# periodic signal keeps interrupting it. The origin delays every file GET
# by 3 s.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

MiB=1048576
# Handler latency bound (ms): the signal must not wait for the origin.
MAX_LATENCY_MS=${MAX_LATENCY_MS:-20}

# Options that make reads interruptible, if the daemon has one for it
# (otherwise it is the default).
interrupt_opts() {
	if "$COFAULT" mount --help 2>&1 | grep -q -- '--interruptible'; then
		echo --interruptible
	fi
}

check_eintr() {
	local ir out rc=0
	ir=$(cf_helper intr-read)
	out=$(timeout 30 "$ir" -a 200 -m "$MAX_LATENCY_MS" -o $((4 * MiB)) \
		-l 4096 "$MNT/big") || rc=$?
	cf_log "no SA_RESTART: $out"
	[ "$rc" = 0 ] || cf_fail "interrupted read: want EINTR within" \
		"${MAX_LATENCY_MS} ms of the timer"
}

check_restart() {
	local ir out rc=0
	ir=$(cf_helper intr-read)
	out=$(timeout 30 "$ir" -r -a 200 -o $((12 * MiB)) -l 65536 \
		"$MNT/big" "$ROOT/big") || rc=$?
	cf_log "SA_RESTART: $out"
	case $rc in
	0) ;;
	# FUSE cannot restart: the kernel passes the daemon's -EINTR reply
	# to read() as it is, and no reply value asks for a restart. So an
	# interruptible mount gives EINTR even under SA_RESTART; noted, not
	# failed, since no daemon can do otherwise.
	3) cf_log "NOTE: EINTR despite SA_RESTART (FUSE cannot restart)" ;;
	*) cf_fail "SA_RESTART: read did not return the right data" ;;
	esac
}

# A signal every 50 ms (a profiler's timer) with a 3 s origin: a program
# retrying after EINTR must still get its data, so an interruption must
# not throw away the fetch it interrupted.
check_periodic() {
	local ir out rc=0
	ir=$(cf_helper intr-read)
	out=$(timeout 40 "$ir" -p 50 -a 50 -t 15000 -o $((8 * MiB)) -l 65536 \
		"$MNT/big" "$ROOT/big") || rc=$?
	cf_log "periodic signal: $out"
	[ "$rc" = 0 ] || cf_fail "reads retried after EINTR never completed"
}

cf_init
ROOT=$T/root
MNT=$T/mnt
mkdir -p "$ROOT"
cf_random_file "$ROOT/big" $((16 * MiB))
cf_origin_start "$ROOT" --delay-ms 3000 --delay-data-only
# shellcheck disable=SC2046 # zero or one word
cf_mount "$ORIGIN_URL" "$MNT" $(interrupt_opts)
check_eintr
check_restart
check_periodic
# The interrupted range must still read correctly afterwards.
got=$(cf_read "$MNT/big" $((4 * MiB)) 4096 20)
want=$(cf_range_sha "$ROOT/big" $((4 * MiB)) 4096)
case $got in
"ok $want "*) ;;
*) cf_fail "re-read after interrupt: $got" ;;
esac
cf_unmount "$MNT"
