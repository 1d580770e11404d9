#!/bin/bash
# An origin that fails mid-flight gives EIO within the bounded time, never
# wrong data, and reads recover once it is back: refused connections, a
# stalled server, error statuses, the origin lost during a long read or
# under a page fault (SIGBUS), a server ignoring Range, a truncated body,
# a lying Content-Length, a wrong Content-Range, no HEAD. The mount is
# read-only.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

MiB=1048576
TIMEOUT_S=3
# EIO must come within --timeout plus this much (ms) for slack.
SLACK_MS=3000

# The daemon answers a chunk that just failed with the same error for
# 1 s (so the kernel's page-by-page retry of a failed readahead or fault
# does not wait out the timeout a second time); "back" reads come after
# that.
HOLDDOWN_S=1.1

# Back to normal, once the hold-down has passed.
origin_ok() {
	cf_origin_set
	sleep "$HOLDDOWN_S"
}

# expect_eio WHAT FILE OFFSET LENGTH: one pread fails with EIO in time.
expect_eio() {
	expect_errno EIO "$@"
}

# expect_errno ERRNO WHAT FILE OFFSET LENGTH: the same with another errno.
expect_errno() {
	local want=$1 what=$2 got ms
	shift 2
	got=$(cf_read "$1" "$2" "$3" 30)
	ms=${got##*ms=}
	cf_log "$what: $got"
	case $got in
	"errno $want "*) ;;
	"ok $(cf_range_sha "$ROOT/${1##*/}" "$2" "$3") "*)
		cf_fail "$what: read succeeded, want $want" ;;
	ok*) cf_fail "$what: WRONG DATA returned" ;;
	*) cf_fail "$what: want $want, got: $got" ;;
	esac
	[ "$ms" -le $((TIMEOUT_S * 1000 + SLACK_MS)) ] ||
		cf_fail "$what: $want after $ms ms; --timeout $TIMEOUT_S" \
			"allows $((TIMEOUT_S * 1000)) ms (+$SLACK_MS ms slack)"
}

# expect_data WHAT FILE OFFSET LENGTH: one pread returns the right bytes.
expect_data() {
	local what=$1 got want
	got=$(cf_read "$2" "$3" "$4" 30)
	want=$(cf_range_sha "$ROOT/${2##*/}" "$3" "$4")
	case $got in
	"ok $want "*) ;;
	ok*) cf_fail "$what: WRONG DATA returned" ;;
	*) cf_fail "$what: want data, got: $got" ;;
	esac
}

check_down_and_back() {
	expect_data "before" "$MNT/warm" 0 65536
	cf_origin_stop
	expect_eio "origin refusing" "$MNT/a" $((5 * MiB)) 65536
	cf_origin_restart
	sleep 0.5
	sleep "$HOLDDOWN_S"
	expect_data "origin back" "$MNT/a" $((5 * MiB)) 65536

	cf_origin_set stall=1
	expect_eio "origin stalled" "$MNT/b" $((3 * MiB)) 65536
	origin_ok
	expect_data "stall lifted" "$MNT/b" $((3 * MiB)) 65536

	cf_origin_set down=1
	expect_eio "origin dropping connections" "$MNT/c" $((2 * MiB)) 4096
	origin_ok
	expect_data "origin answering again" "$MNT/c" $((2 * MiB)) 4096
	cf_log "down, stall, recovery: ok"
}

# Error statuses on data requests: EIO within the bound, then recovery.
check_status() {
	local st want
	for st in 503 500 403; do
		want=EIO
		# Access refused is worth telling apart, and EACCES does.
		[ "$st" != 403 ] || want=EACCES
		cf_origin_set "status=$st"
		expect_errno "$want" "HTTP $st" "$MNT/st$st" $((1 * MiB)) 4096
		origin_ok
		expect_data "HTTP $st over" "$MNT/st$st" $((1 * MiB)) 4096
	done
	cf_log "error statuses: ok"
}

# The origin goes away while a long sequential read is under way: the
# reader gets EIO within the bound (no hang), and what it got before is
# right; once the origin is back, the whole file reads right.
check_mid_read() {
	local pid rc=0 t0 ms got
	cf_origin_set delay_ms=150 delay_data_only=1
	dd if="$MNT/mid" of="$T/mid.out" bs=64k 2>"$T/mid.err" &
	pid=$!
	CF_PIDS="$CF_PIDS $pid"
	cf_wait_until 10 test -s "$T/mid.out" || cf_fail "mid-read: no progress"
	cf_origin_stop
	t0=$(cf_now_ms)
	cf_wait_until $((TIMEOUT_S + SLACK_MS / 1000 + 5)) cf_gone "$pid" ||
		cf_fail "mid-read: reader still blocked after the origin went away"
	ms=$(($(cf_now_ms) - t0))
	wait "$pid" || rc=$?
	got=$(stat -c %s "$T/mid.out")
	cf_log "mid-read: dd exit $rc after $ms ms, $got bytes:" \
		"$(tail -n 1 "$T/mid.err")"
	[ "$rc" != 0 ] || cf_fail "mid-read: the read did not fail"
	grep -q "Input/output error" "$T/mid.err" ||
		cf_fail "mid-read: want EIO: $(cat "$T/mid.err")"
	[ "$ms" -le $((TIMEOUT_S * 1000 + SLACK_MS)) ] ||
		cf_fail "mid-read: EIO after $ms ms"
	cmp -n "$got" "$T/mid.out" "$ROOT/mid" ||
		cf_fail "mid-read: WRONG DATA before the failure"
	cf_origin_restart
	origin_ok
	cf_same_file "$MNT/mid" "$ROOT/mid"
	cf_log "origin lost mid-read: ok"
}

# A page fault on a mapping whose bytes the origin cannot deliver ends in
# SIGBUS within the bound: never a hang, never zeros.
check_mmap_sigbus() {
	local rc=0 t0 ms pid
	# Open and map while the origin works (opening may ask it), then
	# fault on an unfetched page once it fails.
	timeout -s KILL 60 python3 - "$MNT/mm" $((4 * MiB)) "$T/mm" <<'PY' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
open(sys.argv[3] + ".ready", "w").close()
for _ in range(300):
    if os.path.exists(sys.argv[3] + ".go"):
        break
    time.sleep(0.1)
print("fault returned byte %d" % m[int(sys.argv[2])])
PY
	pid=$!
	CF_PIDS="$CF_PIDS $pid"
	cf_wait_until 20 test -e "$T/mm.ready" || cf_fail "mmap: not mapped"
	cf_origin_set down=1
	t0=$(cf_now_ms)
	: >"$T/mm.go"
	wait "$pid" || rc=$?
	ms=$(($(cf_now_ms) - t0))
	cf_forget_pid "$pid"
	origin_ok
	cf_log "mmap with the origin failing: exit $rc after $ms ms"
	[ "$rc" = $((128 + 7)) ] || cf_fail "mmap fault: want SIGBUS (exit 135)"
	[ "$ms" -le $((TIMEOUT_S * 1000 + SLACK_MS)) ] ||
		cf_fail "mmap fault: SIGBUS after $ms ms"
	"$(cf_helper cmp-mmap)" "$MNT/mm" "$ROOT/mm" ||
		cf_fail "mmap after the origin came back"
}

# check_misbehaviour KNOB FILE: with KNOB on, a read in the middle of FILE
# fails with EIO; with it off, the same read returns the right bytes (so
# nothing wrong was cached on the way).
check_misbehaviour() {
	local knob=$1 f=$2
	cf_origin_set "$knob=1"
	expect_eio "$knob" "$MNT/$f" $((4 * MiB)) 65536
	origin_ok
	expect_data "$knob off again" "$MNT/$f" $((4 * MiB)) 65536
	[ -s "$LOG" ] || cf_fail "$knob: the daemon logged nothing"
}

# A fresh mount of an origin claiming every file is 4 KiB longer than it
# is (listing, HEAD, Content-Length): the bytes past the real end never
# arrive, and the read of them must fail rather than return zeros.
check_lie_length() {
	local size mnt=$T/mnt-lie
	cf_origin_set lie_length=1
	cf_mount "$ORIGIN_URL" "$mnt" --timeout "$TIMEOUT_S"
	size=$(stat -c %s "$mnt/lie")
	cf_log "lie: st_size $size (real $((8 * MiB)))"
	expect_data "lie_length head" "$mnt/lie" 0 65536
	expect_eio "lie_length tail" "$mnt/lie" $((size - 8192)) 8192
	origin_ok
	cf_unmount "$mnt"
}

# Origins that will not say a file's length on HEAD: a URL signed for GET
# (403 to HEAD), a server without HEAD (405, 501), and a HEAD without
# Content-Length over an empty file (the one-byte GET then gets 416
# "bytes */0"). A single-file mount of each shows the right size and the
# right bytes.
check_no_head() {
	local st mnt=$T/mnt-nohead n=0
	for st in 403 405 501; do
		n=$((n + 1))
		cf_origin_set "head_status=$st"
		cf_mount "${ORIGIN_URL}a?sig=x" "$mnt$n" --timeout "$TIMEOUT_S"
		[ "$(stat -c %s "$mnt$n/a")" = $((8 * MiB)) ] ||
			cf_fail "HEAD answered $st: size $(stat -c %s "$mnt$n/a" 2>&1)"
		cf_same_file "$mnt$n/a" "$ROOT/a"
		cf_unmount "$mnt$n"
	done
	cf_origin_set head_no_length=1
	cf_mount "${ORIGIN_URL}empty" "$mnt-empty" --timeout "$TIMEOUT_S"
	[ "$(stat -c %s "$mnt-empty/empty" 2>&1)" = 0 ] ||
		cf_fail "empty file, no length on HEAD: $(stat -c %s "$mnt-empty/empty" 2>&1)"
	[ "$(wc -c <"$mnt-empty/empty")" = 0 ] || cf_fail "empty file read bytes"
	cf_unmount "$mnt-empty"
	cf_origin_set
	cf_log "no HEAD (403, 405, 501) and an empty file without a length: sizes and bytes right"
}

# A directory moved on the origin (a 301 from its old path to its new one)
# whose listing writes absolute links ("/new/f"): they are read against the
# page's own URL, the one the redirect led to, not the one asked for.
check_moved() {
	local mnt=$T/mnt-moved
	mkdir -p "$ROOT/new/sub"
	cf_random_file "$ROOT/new/f" $((3 * MiB / 2))
	cf_random_file "$ROOT/new/sub/g" 5000
	cf_origin_set "moved=/old/>/new/" absolute_hrefs=1
	cf_mount "${ORIGIN_URL}old/" "$mnt" --timeout "$TIMEOUT_S"
	[ "$(ls "$mnt" | tr '\n' ' ')" = "f sub " ] ||
		cf_fail "moved directory: listed '$(ls "$mnt" | tr '\n' ' ')', want 'f sub'"
	cf_same_file "$mnt/f" "$ROOT/new/f"
	cf_same_file "$mnt/sub/g" "$ROOT/new/sub/g"
	cf_unmount "$mnt"
	cf_origin_set
	rm -r "$ROOT/new"
	cf_log "moved directory with absolute links: listed and read through the redirect"
}

check_read_only() {
	local out
	out=$(python3 - "$MNT" <<'PY'
import errno, os, sys
m = sys.argv[1]
ops = {
    "create": lambda: os.open(m + "/new", os.O_WRONLY | os.O_CREAT, 0o644),
    "write": lambda: os.open(m + "/a", os.O_WRONLY),
    "truncate": lambda: os.truncate(m + "/a", 0),
    "mkdir": lambda: os.mkdir(m + "/newdir"),
    "unlink": lambda: os.unlink(m + "/a"),
    "rename": lambda: os.rename(m + "/a", m + "/a2"),
    "chmod": lambda: os.chmod(m + "/a", 0o600),
    "symlink": lambda: os.symlink("a", m + "/ln"),
}
bad = 0
for name, op in ops.items():
    try:
        op()
        print("%s: succeeded" % name)
        bad = 1
    except OSError as e:
        if e.errno != errno.EROFS:
            print("%s: %s, want EROFS" % (name, errno.errorcode[e.errno]))
            bad = 1
sys.exit(bad)
PY
) || cf_fail "read-only: $out"
	cf_log "read-only: every write gets EROFS"
}

cf_init
cf_require_python
ROOT=$T/root
MNT=$T/mnt
LOG=$T/cofault-mnt.log
mkdir -p "$ROOT"
for f in warm a b c ignore short wrong lie st503 st500 st403 mm; do
	cf_random_file "$ROOT/$f" $((8 * MiB))
done
cf_random_file "$ROOT/mid" $((64 * MiB))
: >"$ROOT/empty"
cf_origin_start "$ROOT"
check_no_head
check_moved
cf_mount "$ORIGIN_URL" "$MNT" --timeout "$TIMEOUT_S"
check_read_only
check_down_and_back
check_status
check_mid_read
check_mmap_sigbus
check_misbehaviour ignore_range ignore
check_misbehaviour short_body short
check_misbehaviour wrong_range wrong
check_lie_length
grep -qiE 'range|206' "$LOG" ||
	cf_fail "no logged reason mentioning the range problem"
cf_unmount "$MNT"

# An object of 2^32 chunks or more (its chunks' numbers would not fit the
# daemon's keys) cannot be opened: EFBIG, as the manual says, not EIO.
truncate -s $(((1 << 32) * 4096 - 4096)) "$ROOT/huge" ||
	cf_fail "no sparse file of 16 TiB here"
cf_mount "$ORIGIN_URL" "$MNT" --chunk-size 4K --timeout "$TIMEOUT_S"
expect_errno EFBIG "a file of 2^32 chunks of 4 KiB" "$MNT/huge" 0 4096
cf_unmount "$MNT"
