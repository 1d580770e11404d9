#!/usr/bin/env bash
# The shim's choice of files, on FUSE mounts named like cofault's and
# otherwise (preload-fusefs, a small passthrough filesystem): only
# fuse.cofault mounts are selected by default, COFAULT_PRELOAD_ANY_FUSE
# widens that, COFAULT_PRELOAD_MOUNT narrows it; without the module every
# selected mapping falls back to plain mmap with identical data and errno.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/preload-lib.sh"
pl_init
cf_require_fuse
CHECK=$(cf_helper preload-check)
FUSEFS=$(cf_helper preload-fusefs)

# pl_fusefs_mount SRC MNT SUBTYPE: mount, and have cf_cleanup undo it.
pl_fusefs_mount() {
	mkdir -p "$2"
	CF_MOUNTS="$CF_MOUNTS $2"
	"$FUSEFS" "$1" "$2" -f -s -o "ro,subtype=$3,fsname=$3" \
		2>>"$T/fusefs-$3.log" &
	CF_PIDS="$CF_PIDS $!"
	cf_wait_until 10 cf_is_mounted "$2" || cf_fail "preload-fusefs $3 did not mount"
}

mkdir "$T/src"
cf_random_file "$T/src/data" $((2 * 1024 * 1024 + 4097))
pl_fusefs_mount "$T/src" "$T/cf" cofault
pl_fusefs_mount "$T/src" "$T/other" other

want=$("$CHECK" read "$T/src/data")
if pl_have_device; then
	selected='via /dev/cofault \(selected\)'
else
	selected='plain mmap \(selected, /dev/cofault failed: ENOENT\)'
fi

# verdict NAME REGEX [VAR=VALUE...] -- FILE: the data is right and the
# shim's debug line says REGEX.
verdict() {
	local name=$1 re=$2 got
	shift 2
	got=$(pl_run env COFAULT_PRELOAD_DEBUG=1 "$@" "$CHECK" read "$FILE" \
		2>"$T/debug") || cf_fail "$name: preload-check read failed"
	pl_expect_same "$name: data" "$got" "$want"
	pl_expect_grep "$name: verdict" "$re" "$T/debug"
}

FILE=$T/cf/data verdict "cofault mount" "$selected"
FILE=$T/other/data verdict "other FUSE mount" 'plain mmap \(FUSE, not a cofault mount\)'
FILE=$T/other/data verdict "other FUSE, ANY_FUSE" "$selected" COFAULT_PRELOAD_ANY_FUSE=1
FILE=$T/cf/data verdict "cofault, MOUNT=it" "$selected" COFAULT_PRELOAD_MOUNT="$T/cf"
FILE=$T/cf/data verdict "cofault, MOUNT=other" 'plain mmap \(outside COFAULT_PRELOAD_MOUNT\)' COFAULT_PRELOAD_MOUNT="$T/other"
FILE=$T/src/data verdict "local file" 'plain mmap \(not FUSE\)' COFAULT_PRELOAD_ANY_FUSE=1

# Through "cofault run" (--mount resolved to an absolute path).
if [ -x "$COFAULT" ]; then
	got=$(cd "$T" && "$COFAULT" run --debug --mount cf -- "$CHECK" read "$T/cf/data" 2>"$T/debug")
	pl_expect_same "cofault run --mount: data" "$got" "$want"
	pl_expect_grep "cofault run --mount: verdict" "$selected" "$T/debug"
fi

# errno, threads and fork on a selected file.
pl_run "$CHECK" errno "$T/cf/data" >/dev/null || cf_fail "errno on the cofault mount"
pl_run "$CHECK" threads "$T/cf/data" 8 >/dev/null || cf_fail "threads on the cofault mount"
pl_run "$CHECK" fork "$T/cf/data" 4 >/dev/null || cf_fail "fork on the cofault mount"

# libcofault maps any FUSE file through the device when it can.
"$CHECK" lib "$T/other/data" >"$T/lib.out" || cf_fail "preload-check lib"
if pl_have_device; then
	pl_expect_grep "library on FUSE" '^how=device probe=0$' "$T/lib.out"
else
	pl_expect_grep "library on FUSE" '^how=mmap probe=ENOENT$' "$T/lib.out"
fi

"$CHECK" mremap "$T/other/data" >"$T/mremap.out" || cf_fail "mremap"
pl_expect_grep "library, mremap" '^ok mremap how=(mmap|device)$' "$T/mremap.out"
"$CHECK" closefds "$T/other/data" >"$T/closefds.out" || cf_fail "closefds"
pl_expect_grep "library, device fd closed" '^ok closefds' "$T/closefds.out"

# The numpy loader example, workers forked from a preloaded parent.
PY=$(pl_find_numpy)
if [ -n "$PY" ]; then
	LOADER=$top_srcdir/doc/examples/loader.py
	"$PY" "$LOADER" make "$T/src/train.npy" --records 1000 --record-size 5000 \
		>/dev/null
	a=$("$PY" "$LOADER" read "$T/src/train.npy" --workers 3 2>/dev/null)
	b=$(pl_run "$PY" "$LOADER" read "$T/cf/train.npy" --workers 3 2>/dev/null)
	pl_expect_same "loader on the cofault mount" "$a" "$b"
	b=$(pl_run "$PY" "$LOADER" read "$T/cf/train.npy" --workers 3 --reopen 2>/dev/null)
	pl_expect_same "loader on the cofault mount, reopening" "$a" "$b"
else
	cf_log "no python3 with numpy: numpy checks left out"
fi
cf_log "ok"
