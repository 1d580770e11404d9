# Helpers for the preload-*.sh tests; sourced after lib.sh, never run.

# The shim as built (libtool puts the real file under .libs/); "cofault run"
# reads the same variable instead of the installed path.
COFAULT_PRELOAD_LIB=${COFAULT_PRELOAD_LIB:-$top_builddir/src/fault/.libs/libcofault-preload.so}
export COFAULT_PRELOAD_LIB
# Nothing from the caller's environment may steer the shim in these tests.
unset COFAULT_PRELOAD_ANY_FUSE COFAULT_PRELOAD_MOUNT COFAULT_PRELOAD_DEBUG

# In sanitizer builds our own helpers are ASan programs, and ASan aborts a
# program whose first loaded library is not its runtime, which a preloaded
# one always is. The shim itself is built without sanitizers and needs
# nothing from ASan, so only that start-up check is turned off.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
export ASAN_OPTIONS

# A private directory and the usual cleanup, for tests that need no
# cofault daemon (cf_init insists on one).
pl_init() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/cofault-it.XXXXXX")
	trap cf_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ -r "$COFAULT_PRELOAD_LIB" ] ||
		cf_fail "$COFAULT_PRELOAD_LIB not built"
}

# Run "$@" with the shim preloaded (in front of any LD_PRELOAD).
pl_run() {
	LD_PRELOAD=$COFAULT_PRELOAD_LIB${LD_PRELOAD:+:$LD_PRELOAD} "$@"
}

# A python3 that has numpy, or "" (the first python3 on PATH may be a
# version manager's without it).
pl_find_numpy() {
	local py
	for py in $(type -ap python3 python3.13 python3.12 python3.11 python3.10 2>/dev/null); do
		if "$py" -c 'import numpy' >/dev/null 2>&1; then
			echo "$py"
			return 0
		fi
	done
	echo ""
}

# Does /dev/cofault work here? The host tests expect it not to, and the
# guests (tests/kmod/) the opposite; checks that depend on it ask this.
pl_have_device() {
	[ -c /dev/cofault ]
}

# pl_expect_same WHAT A B: fail unless the two outputs are identical.
pl_expect_same() {
	[ "$2" = "$3" ] || cf_fail "$1: '$2' != '$3'"
}

# pl_expect_grep WHAT REGEX FILE
pl_expect_grep() {
	grep -qE -- "$2" "$3" || {
		cat "$3" >&2
		cf_fail "$1: no line matching '$2'"
	}
}
