#!/usr/bin/env bash
# Preloading the shim into programs that never touch a cofault mount
# changes nothing: same output, same errno, safe with threads and fork;
# libcofault falls back to plain mmap and says so; "cofault run" builds
# the environment it documents.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/preload-lib.sh"
pl_init
CHECK=$(cf_helper preload-check)

cf_random_file "$T/data" $((3 * 1024 * 1024 + 123))

# Our own mapping program, with and without the shim.
a=$("$CHECK" read "$T/data")
b=$(pl_run "$CHECK" read "$T/data")
pl_expect_same "mapped data" "$a" "$b"
pl_run env COFAULT_PRELOAD_DEBUG=1 "$CHECK" read "$T/data" \
	>/dev/null 2>"$T/debug"
pl_expect_grep "shim verdict" 'mmap fd [0-9]+ off 0 len 3145851: plain mmap \(not FUSE\)' "$T/debug"
pl_run "$CHECK" errno "$T/data" >/dev/null || cf_fail "errno through the shim"
pl_run "$CHECK" threads "$T/data" 8 >/dev/null || cf_fail "threads"
pl_run "$CHECK" fork "$T/data" 4 >/dev/null || cf_fail "fork"

# libcofault on a local file: the plain path, and why.
"$CHECK" lib "$T/data" >"$T/lib.out" || cf_fail "preload-check lib"
pl_expect_grep "library path" '^how=mmap probe=EXDEV$' "$T/lib.out"
if ! pl_have_device; then
	pl_expect_grep "device probe" '^device=ENOENT$' "$T/lib.out"
fi

# Ordinary programs.
seq 1 200000 | sort -R >"$T/lines"
a=$(sort -n "$T/lines" | sha256sum)
b=$(pl_run sort -n "$T/lines" | sha256sum)
pl_expect_same "sort" "$a" "$b"
a=$(tar -C "$T" -cf - data lines | sha256sum)
b=$(pl_run tar -C "$T" -cf - data lines | sha256sum)
pl_expect_same "tar" "$a" "$b"

# numpy: a memmap and the multi-process loader example.
PY=$(pl_find_numpy)
if [ -n "$PY" ]; then
	LOADER=$top_srcdir/doc/examples/loader.py
	"$PY" "$LOADER" make "$T/train.npy" --records 1500 --record-size 3000 \
		>/dev/null
	memmap='import hashlib, sys, numpy as np
m = np.load(sys.argv[1], mmap_mode="r")
print(m.shape, hashlib.sha256(np.ascontiguousarray(m[::7]).tobytes()).hexdigest())'
	a=$("$PY" -c "$memmap" "$T/train.npy")
	b=$(pl_run "$PY" -c "$memmap" "$T/train.npy")
	pl_expect_same "numpy memmap" "$a" "$b"
	a=$("$PY" "$LOADER" read "$T/train.npy" --workers 3 2>/dev/null)
	b=$(pl_run "$PY" "$LOADER" read "$T/train.npy" --workers 3 2>/dev/null)
	pl_expect_same "loader" "$a" "$b"
	b=$(pl_run "$PY" "$LOADER" read "$T/train.npy" --workers 2 --reopen 2>/dev/null)
	pl_expect_same "loader, workers reopening" "$a" "$b"
else
	cf_log "no python3 with numpy: numpy checks left out"
fi

# cofault run: the environment it hands over, and its exit statuses.
cf_require_cofault
# shellcheck disable=SC2016 # the child shell expands it
got=$("$COFAULT" run -- sh -c 'printf %s "$LD_PRELOAD"')
pl_expect_same "LD_PRELOAD" "$got" "$COFAULT_PRELOAD_LIB"
# shellcheck disable=SC2016
got=$(LD_PRELOAD="$T/other.so" "$COFAULT" run -- sh -c 'printf %s "$LD_PRELOAD"' 2>/dev/null)
pl_expect_same "LD_PRELOAD kept" "$got" "$COFAULT_PRELOAD_LIB:$T/other.so"
"$COFAULT" run --any-fuse --debug --mount "$T/." -- env >"$T/env" 2>"$T/run.err"
pl_expect_grep "--any-fuse" '^COFAULT_PRELOAD_ANY_FUSE=1$' "$T/env"
pl_expect_grep "--debug" '^COFAULT_PRELOAD_DEBUG=1$' "$T/env"
pl_expect_grep "--mount" "^COFAULT_PRELOAD_MOUNT=$T\$" "$T/env"
pl_expect_grep "--mount warning" 'is not a FUSE mount' "$T/run.err"
a=$("$CHECK" read "$T/data")
b=$("$COFAULT" run -- "$CHECK" read "$T/data")
pl_expect_same "cofault run" "$a" "$b"
rc=0
"$COFAULT" run -- "$T/no-such-program" 2>/dev/null || rc=$?
pl_expect_same "exit status, command not found" "$rc" 127
rc=0
"$COFAULT" run 2>/dev/null || rc=$?
pl_expect_same "exit status, no command" "$rc" 2
rc=0
COFAULT_PRELOAD_LIB=$T/missing.so "$COFAULT" run -- true 2>/dev/null || rc=$?
pl_expect_same "exit status, shim missing" "$rc" 125
cf_log "ok"
