#!/bin/bash
# Mount-time errors are clear and leave nothing behind: origin down, name
# that does not resolve, missing URL path, URLs with credentials (never
# shown, a password with an unencoded '/' included), bad mount points, a second mount on the same point, unknown
# options; and --help/--version work.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

# expect_mount_fail WHAT URL MOUNTPOINT MAX_MS NEEDLE [options...]: the
# mount fails (not 0, not 2 for a usage error) within MAX_MS, says NEEDLE
# on one line, and leaves no mount and no daemon behind.
expect_mount_fail() {
	local what=$1 url=$2 mnt=$3 max=$4 needle=$5 lines
	shift 5
	cf_mount_try "$url" "$mnt" "$@"
	cf_log "$what: exit $MOUNT_RC after $MOUNT_MS ms: $MOUNT_ERR"
	[ "$MOUNT_RC" != 0 ] || cf_fail "$what: mount succeeded"
	[ "$MOUNT_RC" != 124 ] || cf_fail "$what: mount hung"
	[ "$MOUNT_MS" -le "$max" ] ||
		cf_fail "$what: took $MOUNT_MS ms (> $max)"
	printf '%s\n' "$MOUNT_ERR" | grep -qF -- "$needle" ||
		cf_fail "$what: message does not name '$needle'"
	lines=$(printf '%s\n' "$MOUNT_ERR" | grep -c .)
	[ "$lines" = 1 ] ||
		cf_fail "$what: want a one-line message, got $lines lines"
	if [ -d "$mnt" ] && cf_is_mounted "$mnt"; then
		cf_fail "$what: $mnt left mounted"
	fi
	[ -z "$(cf_pids_with_arg "$mnt")" ] ||
		cf_fail "$what: daemon left running"
}

check_usage() {
	local rc=0 out
	out=$("$COFAULT" mount --no-such-option "$NGINX_URL" "$T/m-usage" \
		2>&1) || rc=$?
	[ "$rc" = 2 ] || cf_fail "unknown option: exit $rc, want 2"
	printf '%s\n' "$out" | grep -qi usage ||
		cf_fail "unknown option: no usage text"
	rc=0
	out=$("$COFAULT" --no-such-option 2>&1) || rc=$?
	[ "$rc" = 2 ] || cf_fail "unknown top-level option: exit $rc, want 2"
	rc=0
	out=$("$COFAULT" frobnicate 2>&1) || rc=$?
	[ "$rc" = 2 ] || cf_fail "unknown command: exit $rc, want 2"
	rc=0
	out=$("$COFAULT" mount 2>&1) || rc=$?
	[ "$rc" = 2 ] || cf_fail "mount without arguments: exit $rc, want 2"
	rc=0
	out=$("$COFAULT" mount --fill-requests 65536 "$NGINX_URL" \
		"$T/m-usage" 2>&1) || rc=$?
	[ "$rc" = 2 ] || cf_fail "--fill-requests 65536: exit $rc, want 2"
	printf '%s\n' "$out" | grep -q -- "--fill-requests takes 0 to 65535" ||
		cf_fail "--fill-requests 65536: $out"
	"$COFAULT" --help >"$T/help.out" 2>&1 || cf_fail "--help failed"
	grep -qi usage "$T/help.out" || cf_fail "--help shows no usage"
	"$COFAULT" mount --help >"$T/help.out" 2>&1 ||
		cf_fail "mount --help failed"
	grep -q -- --timeout "$T/help.out" ||
		cf_fail "mount --help lacks --timeout"
	"$COFAULT" --version >"$T/version.out" 2>&1 ||
		cf_fail "--version failed"
	grep -q '[0-9]\.[0-9]' "$T/version.out" ||
		cf_fail "--version shows no version"
	cf_log "usage, --help, --version: ok"
}

check_origin_errors() {
	local port
	# Nothing listens there: the connection is refused at once.
	port=$(cf_free_port)
	mkdir -p "$T/m-down"
	expect_mount_fail "origin down" "http://127.0.0.1:$port/" "$T/m-down" \
		10000 "127.0.0.1:$port" --timeout 3
	mkdir -p "$T/m-dns"
	expect_mount_fail "unresolvable name" "http://cofault-test.invalid/" \
		"$T/m-dns" 10000 "cofault-test.invalid" --timeout 3
	mkdir -p "$T/m-404"
	expect_mount_fail "missing path" "${NGINX_URL}no/such/dir/" "$T/m-404" \
		10000 "${NGINX_URL}no/such/dir/" --timeout 3
	# A directory's URL without its '/' (nginx answers 301 to it) names
	# no file to mount alone.
	mkdir -p "$T/m-dir"
	expect_mount_fail "directory without '/'" "${NGINX_URL}sub" "$T/m-dir" \
		10000 "trailing '/'" --timeout 3
	mkdir -p "$T/m-scheme"
	expect_mount_fail "bad URL" "gopher://127.0.0.1:$port/" "$T/m-scheme" \
		5000 "gopher://127.0.0.1:$port/"
	# Credentials in a URL never reach the message.
	mkdir -p "$T/m-cred"
	expect_mount_fail "URL with credentials" \
		"http://user:SeCrEt123@127.0.0.1:$port/?sig=SiG456" \
		"$T/m-cred" 10000 "cannot mount http://127.0.0.1:$port/:" \
		--timeout 3
	AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s expect_mount_fail \
		"S3 endpoint with credentials" s3://bucket/ "$T/m-cred" 5000 \
		"endpoint 'http://127.0.0.1:$port/' is not" \
		--endpoint "http://AKIAX:SeCrEt789@127.0.0.1:$port/"
	# A '/' in a password, not %-encoded, ends the authority early: the
	# URL is refused, and no part of the password is shown.
	expect_mount_fail "URL with a '/' in its password" \
		"http://user:SeCrEt/321@127.0.0.1:$port/" "$T/m-cred" 5000 \
		"cannot mount http://127.0.0.1:$port/: not a valid URL"
	AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s expect_mount_fail \
		"S3 endpoint with a '/' in its password" s3://bucket/ \
		"$T/m-cred" 5000 \
		"endpoint 'http://127.0.0.1:$port/' is not a valid" \
		--endpoint "http://AKIAX:SeCrEt/789@127.0.0.1:$port/"
	! grep -rqE "SeCrEt|SiG456" "$T"/*.log ||
		cf_fail "credentials from a URL reached a message or log"
}

check_mountpoint_errors() {
	local m=$T/m-ok
	expect_mount_fail "missing mount point" "$NGINX_URL" "$T/no-such-dir" \
		5000 "$T/no-such-dir"
	: >"$T/a-file"
	expect_mount_fail "mount point is a file" "$NGINX_URL" "$T/a-file" \
		5000 "$T/a-file"
	cf_mount "$NGINX_URL" "$m"
	cf_mount_try "$NGINX_URL" "$m"
	cf_log "already mounted: exit $MOUNT_RC: $MOUNT_ERR"
	[ "$MOUNT_RC" != 0 ] || cf_fail "second mount on $m succeeded"
	printf '%s\n' "$MOUNT_ERR" | grep -qF -- "$m" ||
		cf_fail "already mounted: message does not name $m"
	[ "$(awk -v m="$m" '$5 == m' /proc/self/mountinfo | wc -l)" = 1 ] ||
		cf_fail "$m mounted more than once"
	cf_same_file "$m/f" "$ROOT/f"
	cf_unmount "$m"
	cf_log "mount point errors: ok"
}

cf_init
ROOT=$T/root
mkdir -p "$ROOT"
cf_random_file "$ROOT/f" 1000
mkdir -p "$ROOT/sub"
cf_random_file "$ROOT/sub/g" 1000
cf_nginx_start "$ROOT"
check_usage
check_origin_errors
check_mountpoint_errors
