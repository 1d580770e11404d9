#!/bin/bash
# `cofault prefetch`: it warms the cache so that reading everything it
# read costs the origin no data request; a link named on the command line
# is followed; its figures add up; a directory it cannot read, or a path
# that does not exist, is an error it names and counts, and the rest is
# still read; its progress comes every 5 s as lines, or as a bar on a
# terminal.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
MiB=1048576

www=$T/www
mkdir -p "$www/d/sub"
cf_random_file "$www/big" $((24 * MiB + 5))
for i in 0 1 2; do
	cf_random_file "$www/d/f$i" $((2 * MiB + i * 4097))
done
cf_random_file "$www/d/sub/g" 12345
cf_nginx_start "$www"
data_gets() { cf_nginx_count '"GET /(big|d/f[0-9]|d/sub/g) '; }

m=$T/m
cf_mount "$NGINX_URL" "$m" --cache-dir "$T/cache"
ln -s "$m/d" "$T/link"
"$COFAULT" prefetch -j 2 "$T/link" "$m/big" >"$T/out" 2>"$T/err" ||
	cf_fail "prefetch exited $?: $(cat "$T/err")"
grep -q '^prefetch: 5 files, 0 errors$' "$T/err" ||
	cf_fail "prefetch summary: $(cat "$T/err")"
total=$((24 * MiB + 5 + 3 * 2 * MiB + 3 * 4097 + 12345))
want=$(awk -v b="$total" 'BEGIN { printf "%.1f MiB", b / 1048576 }')
grep -q "^prefetch: $want of $want, .*ETA 0s$" "$T/err" ||
	cf_fail "prefetch progress does not end at $want: $(cat "$T/err")"
[ ! -s "$T/out" ] || cf_fail "prefetch wrote to stdout: $(cat "$T/out")"

# Everything it read is in the cache: a fresh mount reads it all from
# there.
cf_unmount "$m"
before=$(data_gets)
cf_mount "$NGINX_URL" "$m" --cache-dir "$T/cache"
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
for f in big d/f0 d/f1 d/f2 d/sub/g; do
	cf_same_file "$m/$f" "$www/$f"
done
after=$(data_gets)
[ "$after" = "$before" ] ||
	cf_fail "$((after - before)) origin data requests after prefetch"
cf_unmount "$m"

# Errors: a path that does not exist, or a link to one, is named and
# counted, and the other arguments are still read (into the cache: a new
# mount reads them with no data request); a directory it cannot read is
# named and counted, and the files beside it are still read. As an
# unprivileged user, since root reads every directory.
cf_mount "$NGINX_URL" "$m" --cache-dir "$T/cache2"
ln -s "$T/nothing" "$T/dangling"
rc=0
"$COFAULT" prefetch -q "$T/nothing" "$m/d/f1" "$T/dangling" 2>"$T/err" ||
	rc=$?
[ "$rc" = 1 ] || cf_fail "missing paths: exit $rc: $(cat "$T/err")"
grep -q "nothing: No such file" "$T/err" &&
	grep -q "dangling: No such file" "$T/err" &&
	grep -q '^prefetch: 1 files, 2 errors$' "$T/err" ||
	cf_fail "missing paths: $(cat "$T/err")"
cf_unmount "$m"
before=$(data_gets)
cf_mount "$NGINX_URL" "$m" --cache-dir "$T/cache2"
cf_same_file "$m/d/f1" "$www/d/f1"
after=$(data_gets)
[ "$after" = "$before" ] ||
	cf_fail "the file named after a missing path was not prefetched"
cf_unmount "$m"
if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	# Not under TMPDIR, which may be private to root.
	loc=$(mktemp -d /tmp/cofault-pf.XXXXXX)
	CF_DIRS="$CF_DIRS $loc"
	chmod 755 "$loc"
	mkdir -m 755 "$loc/ok"
	mkdir -m 700 "$loc/locked"
	head -c 100000 /dev/urandom >"$loc/ok/a"
	chmod 644 "$loc/ok/a"
	rc=0
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
		"$COFAULT" prefetch "$loc" 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || cf_fail "unreadable directory: exit $rc: $(cat "$T/err")"
	grep -q "locked: cannot read the directory: Permission denied" \
		"$T/err" && grep -q '^prefetch: 1 files, 1 errors$' "$T/err" ||
		cf_fail "unreadable directory: $(cat "$T/err")"
else
	cf_log "no setpriv or no user nobody: unreadable directory not tried"
fi

# Progress while nothing moves: the origin holds every file GET until the
# stall is lifted, so the prefetch waits at 0 bytes. Without a terminal
# it writes a line at once and then one every 5 s (not one per 200 ms
# poll: a log of a long prefetch stays short); on a terminal it redraws
# one bar in place, ending full.
cf_origin_start "$www"
ms=$T/ms
cf_mount "$ORIGIN_URL" "$ms" --cache-dir "$T/cache-slow"
cf_origin_set stall=1
"$COFAULT" prefetch "$ms/d/f0" 2>"$T/plain" &
pf=$!
CF_PIDS="$CF_PIDS $pf"
sleep 11
lines=$(grep -c '^prefetch: 0\.0 B of 2\.0 MiB, 0\.0 B/s, ETA --$' "$T/plain" ||
	true)
cf_origin_set stall=0
wait "$pf" || cf_fail "stalled prefetch exited $?: $(cat "$T/plain")"
cf_forget_pid "$pf"
[ "$lines" -ge 2 ] && [ "$lines" -le 4 ] ||
	cf_fail "$lines progress lines in 11 s, want 3 (one at once, then every 5 s): $(cat "$T/plain")"
grep -q '^prefetch: 2\.0 MiB of 2\.0 MiB, .*ETA 0s$' "$T/plain" ||
	cf_fail "stalled prefetch: no final line: $(cat "$T/plain")"

cf_origin_set stall=1
script -qefc "\"$COFAULT\" prefetch \"$ms/d/f1\"" "$T/tty" </dev/null \
	>/dev/null &
pf=$!
CF_PIDS="$CF_PIDS $pf"
sleep 2
cf_origin_set stall=0
wait "$pf" || cf_fail "prefetch on a terminal exited $?: $(cat "$T/tty")"
cf_forget_pid "$pf"
bar=$(tr '\r' '\n' <"$T/tty" | grep -c '^\[ *\] 0\.0 B / 2\.0 MiB  0\.0 B/s  ETA --' ||
	true)
[ "$bar" -ge 3 ] || cf_fail "$bar redraws of an empty bar in 2 s: $(cat -v "$T/tty")"
tr '\r' '\n' <"$T/tty" |
	grep -q '^\[#\{30\}\] 2\.0 MiB / 2\.0 MiB  .*ETA 0s' ||
	cf_fail "prefetch on a terminal: no full bar: $(cat -v "$T/tty")"
! grep -q '^prefetch: .* of ' "$T/tty" ||
	cf_fail "prefetch on a terminal wrote plain lines: $(cat -v "$T/tty")"
cf_unmount "$ms"

cf_log "prefetch: 5 files through a link and a path, $want, then 0 origin requests; progress lines every 5 s, a bar on a terminal"
