#!/usr/bin/env bash
# The shim over a real cofault mount (nginx origin): the daemon's mounts are
# recognised as cofault ones, and programs run under "cofault run" read
# exactly the origin's bytes; without the module through plain mmap.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/preload-lib.sh"
cf_init
[ -r "$COFAULT_PRELOAD_LIB" ] || cf_fail "$COFAULT_PRELOAD_LIB not built"
CHECK=$(cf_helper preload-check)

mkdir -p "$T/origin/sub"
cf_random_file "$T/origin/data" $((5 * 1024 * 1024 + 777))
cf_random_file "$T/origin/sub/small" 10000
PY=$(pl_find_numpy)
LOADER=$top_srcdir/doc/examples/loader.py
if [ -n "$PY" ]; then
	"$PY" "$LOADER" make "$T/origin/train.npy" --records 800 \
		--record-size 6000 >/dev/null
fi
cf_nginx_start "$T/origin"
cf_mount "$NGINX_URL" "$T/mnt"

if pl_have_device; then
	selected='via /dev/cofault \(selected\)'
else
	selected='plain mmap \(selected, /dev/cofault failed: ENOENT\)'
fi

# The mount is a fuse.cofault one, which is what the shim looks for.
awk -v m="$T/mnt" '$5 == m { for (i = 7; $i != "-"; i++); print $(i + 1) }' \
	/proc/self/mountinfo >"$T/fstype"
pl_expect_grep "mount type" '^fuse\.cofault$' "$T/fstype"

for f in data sub/small; do
	want=$("$CHECK" read "$T/origin/$f")
	got=$("$COFAULT" run --debug -- "$CHECK" read "$T/mnt/$f" 2>"$T/debug") ||
		cf_fail "$f: preload-check read failed"
	pl_expect_same "$f through cofault run" "$got" "$want"
	pl_expect_grep "$f: verdict" "$selected" "$T/debug"
done
got=$("$COFAULT" run --debug --mount "$T/mnt" -- "$CHECK" read "$T/mnt/data" 2>"$T/debug")
pl_expect_same "--mount" "$got" "$("$CHECK" read "$T/origin/data")"
pl_expect_grep "--mount: verdict" "$selected" "$T/debug"

"$COFAULT" run -- "$CHECK" errno "$T/mnt/data" >/dev/null || cf_fail "errno"
"$COFAULT" run -- "$CHECK" fork "$T/mnt/data" 4 >/dev/null || cf_fail "fork"
"$COFAULT" run -- "$CHECK" threads "$T/mnt/sub/small" 6 >/dev/null || cf_fail "threads"

"$CHECK" lib "$T/mnt/data" >"$T/lib.out" || cf_fail "preload-check lib"
if pl_have_device; then
	pl_expect_grep "library" '^how=device probe=0$' "$T/lib.out"
else
	pl_expect_grep "library" '^how=mmap probe=ENOENT$' "$T/lib.out"
fi

if [ -n "$PY" ]; then
	a=$("$PY" "$LOADER" read "$T/origin/train.npy" --workers 4 2>/dev/null)
	b=$("$COFAULT" run -- "$PY" "$LOADER" read "$T/mnt/train.npy" --workers 4 2>/dev/null)
	pl_expect_same "loader through cofault run" "$a" "$b"
else
	cf_log "no python3 with numpy: loader check left out"
fi
cf_log "ok"
