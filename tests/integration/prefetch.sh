#!/bin/bash
# `cofault prefetch`: it warms the cache so that reading everything it
# read costs the origin no data request; a link named on the command line
# is followed; its figures add up; a directory it cannot read, or a path
# that does not exist, is an error it names, and the rest is still read.
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

# Errors: a path that does not exist stops it; a directory it cannot read
# is named and counted, and the files beside it are still read. As an
# unprivileged user, since root reads every directory.
"$COFAULT" prefetch -q "$T/nothing" 2>"$T/err" &&
	cf_fail "prefetch of a missing path succeeded"
grep -q "nothing: No such file" "$T/err" || cf_fail "missing: $(cat "$T/err")"
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
cf_log "prefetch: 5 files through a link and a path, $want, then 0 origin requests"
