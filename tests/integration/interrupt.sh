#!/bin/bash
# A read() waiting on a slow origin ends with EINTR promptly when a signal
# arrives (FUSE_INTERRUPT honoured), and with SA_RESTART it still returns
# the right data. The origin delays every file GET by 3 s.
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
	[ "$rc" = 0 ] || cf_fail "interrupted read: want EINTR within ${MAX_LATENCY_MS} ms after the timer"
}

check_restart() {
	local ir out rc=0
	ir=$(cf_helper intr-read)
	out=$(timeout 30 "$ir" -r -a 200 -o $((12 * MiB)) -l 65536 \
		"$MNT/big" "$ROOT/big") || rc=$?
	cf_log "SA_RESTART: $out"
	case $rc in
	0) ;;
	3) cf_fail "SA_RESTART: read failed with EINTR instead of completing" ;;
	*) cf_fail "SA_RESTART: read did not return the right data" ;;
	esac
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
# The interrupted range must still read correctly afterwards.
got=$(cf_read "$MNT/big" $((4 * MiB)) 4096 20)
want=$(cf_range_sha "$ROOT/big" $((4 * MiB)) 4096)
case $got in
"ok $want "*) ;;
*) cf_fail "re-read after interrupt: $got" ;;
esac
cf_unmount "$MNT"
