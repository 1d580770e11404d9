# Guest-side checks of libcofault, the LD_PRELOAD shim and "cofault run"
# with the module loaded; sourced by tests/kmod/guest.sh, never run.
#
# Hook (two lines in guest.sh): source this file in the main part once
# "$S/origin" exists (it adds its own files there, before any daemon lists
# the directory), and call "preload_checks DAEMON" from run_daemon while
# DAEMON is mounted at $MNT, before check_kill. Uses guest.sh's report,
# log, stat_of, field, lt, set_delay_* and $S, $MNT, $MiB, $LATE_LIMIT_MS.
# Reports P1..P6 lines:
#   P1-preload-c       a C program's mmap() through the shim: data right,
#                      the module's fault counter moved
#   P2-preload-lib     cofault_mmap2() says "device", cofault_probe() 0, and
#                      still "device" after the program closed the library's
#                      device fd and reused its number
#   P3-preload-fork    mapping, threads and 4 forked children via the shim;
#                      threads mapping at once; errno as the kernel's
#   P4-preload-numpy   the numpy memmap loader example via "cofault run"
#   P5-preload-signal  SIGALRM + siglongjmp bound on a stalled page: within
#                      $LATE_LIMIT_MS through the shim and the library, and
#                      (the contrast, on delayfs) late through plain mmap
#   P6-preload-mremap  a device mapping grown by mremap() reads right and
#                      its new pages fault through the module

PL_CHECK=$COFAULT_BUILDDIR/tests/integration/preload-check
PL_TIMEOUT=$COFAULT_BUILDDIR/doc/examples/mmap-timeout
PL_LOADER=$COFAULT_SRCDIR/doc/examples/loader.py
COFAULT_PRELOAD_LIB=$COFAULT_BUILDDIR/src/fault/.libs/libcofault-preload.so
export COFAULT_PRELOAD_LIB

# A python3 with numpy, or "".
pl_python() {
	local py
	for py in $(type -ap python3 python3.13 python3.12 python3.11 2>/dev/null); do
		if "$py" -c 'import numpy' >/dev/null 2>&1; then
			echo "$py"
			return 0
		fi
	done
	echo ""
}
PL_PY=$(pl_python)

# multiprocessing's locks are POSIX semaphores, which live in /dev/shm; the
# guest's /dev is a bare devtmpfs.
if ! mountpoint -q /dev/shm 2>/dev/null; then
	mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 shm /dev/shm
fi

# Files no other check reads, so their pages are not cached when the
# preloaded programs first touch them (cached pages are mapped by
# fault-around without reaching the module's fault handler).
head -c $((8 * MiB + 1234)) /dev/urandom >"$S/origin/pl-data"
# P5's stalled pages; the daemon caches what it fetched, so a file of its own.
head -c $((24 * MiB)) /dev/urandom >"$S/origin/pl-slow"
if [ -n "$PL_PY" ]; then
	"$PL_PY" "$PL_LOADER" make "$S/origin/pl-train.npy" --records 2048 \
		--record-size 4096 >/dev/null
fi

# P6's file, mapped one page at first and grown with mremap().
head -c $((4 * MiB + 99)) /dev/urandom >"$S/origin/pl-remap"

# The shim takes only fuse.cofault mounts unless told otherwise; delayfs
# mounts as fuse.delayfs.
pl_run_opts() {
	[ "$1" = cofault ] || echo --any-fuse
}

# P5's two bounded reads of a stalled page, through the shim ("cofault
# run" options $1) at $2 MiB and through the library at $3 MiB: their
# probe lines in $sh and $lib.
p5_prompt() {
	# shellcheck disable=SC2086
	sh=$(timeout 60 "$COFAULT_BIN" run $1 --debug -- "$PL_TIMEOUT" \
		-m mmap -t 200 "$MNT/pl-slow" $(($2 * MiB)) 2>"$S/pl-debug")
	lib=$(timeout 60 "$PL_TIMEOUT" -m cofault -t 200 "$MNT/pl-slow" \
		$(($3 * MiB)))
}

# Whether both of p5_prompt's reads timed out through the device within
# $LATE_LIMIT_MS of their 200 ms bound.
p5_is_prompt() {
	[ "$(field "$sh" result)" = timeout ] &&
		grep -q 'via /dev/cofault' "$S/pl-debug" &&
		lt "$(field "$sh" late_ms)" "$LATE_LIMIT_MS" &&
		[ "$(field "$lib" how)" = device ] &&
		[ "$(field "$lib" result)" = timeout ] &&
		lt "$(field "$lib" late_ms)" "$LATE_LIMIT_MS"
}

preload_checks() { # $1 = daemon
	local d=$1 opts f0 f1 i0 i1 want got out sh lib pl
	opts=$(pl_run_opts "$d")
	if [ ! -x "$PL_CHECK" ] || [ ! -x "$PL_TIMEOUT" ] ||
		[ ! -r "$COFAULT_PRELOAD_LIB" ]; then
		report "$d" P0-preload FAIL "preload-check, mmap-timeout or the shim not built"
		return
	fi

	# P1: a C program's plain mmap(), through "cofault run".
	f0=$(stat_of faults)
	want=$("$PL_CHECK" read "$S/origin/pl-data")
	# shellcheck disable=SC2086 # $opts is zero or one word
	got=$(timeout 120 "$COFAULT_BIN" run $opts --debug -- \
		"$PL_CHECK" read "$MNT/pl-data" 2>"$S/pl-debug")
	f1=$(stat_of faults)
	if [ -n "$want" ] && [ "$got" = "$want" ] &&
		grep -q 'via /dev/cofault' "$S/pl-debug" &&
		[ $((f1 - f0)) -gt 0 ]; then
		report "$d" P1-preload-c PASS "$got; module faults +$((f1 - f0))"
	else
		report "$d" P1-preload-c FAIL "got '$got' want '$want'; faults +$((f1 - f0)); $(tr '\n' ';' <"$S/pl-debug")"
	fi

	# P2: the library on the same file.
	out=$({ timeout 60 "$PL_CHECK" lib "$MNT/pl-data" &&
		timeout 60 "$PL_CHECK" closefds "$MNT/pl-data"; } 2>&1 |
		tr '\n' ' ')
	case $out in
	*"how=device probe=0 device=0 ok closefds how=device device_fd_replaced=1"*)
		report "$d" P2-preload-lib PASS "$out" ;;
	*) report "$d" P2-preload-lib FAIL "$out" ;;
	esac

	# P3: fork, threads and errno through the shim.
	# shellcheck disable=SC2086
	if out=$(timeout 120 "$COFAULT_BIN" run $opts -- \
		"$PL_CHECK" fork "$MNT/pl-data" 4 2>&1 &&
		timeout 120 "$COFAULT_BIN" run $opts -- \
			"$PL_CHECK" threads "$MNT/pl-data" 4 2>&1 &&
		timeout 60 "$COFAULT_BIN" run $opts -- \
			"$PL_CHECK" errno "$MNT/pl-data" 2>&1); then
		out=$(echo "$out" | tr '\n' ' ')
		report "$d" P3-preload-fork PASS "$out"
	else
		report "$d" P3-preload-fork FAIL "$(echo "$out" | tr '\n' ';')"
	fi

	# P4: numpy memmap data loader, 4 forked workers.
	if [ -z "$PL_PY" ]; then
		report "$d" P4-preload-numpy INFO "skipped: no python3 with numpy"
	else
		want=$("$PL_PY" "$PL_LOADER" read "$S/origin/pl-train.npy" \
			--workers 4 2>/dev/null)
		f0=$(stat_of faults)
		# shellcheck disable=SC2086
		got=$(timeout 300 "$COFAULT_BIN" run $opts -- "$PL_PY" \
			"$PL_LOADER" read "$MNT/pl-train.npy" --workers 4 \
			2>"$S/pl-loader.err")
		f1=$(stat_of faults)
		if [ -n "$want" ] && [ "$got" = "$want" ] &&
			[ $((f1 - f0)) -gt 0 ]; then
			report "$d" P4-preload-numpy PASS "$got; module faults +$((f1 - f0)); $(tr '\n' ' ' <"$S/pl-loader.err")"
		else
			report "$d" P4-preload-numpy FAIL "got '$got' want '$want'; faults +$((f1 - f0)); $(tail -n 5 "$S/pl-loader.err" | tr '\n' ';')"
		fi
	fi

	# P5: a 200 ms timeout on pages the origin delays by 3 s, at least 4
	# MiB apart so no readahead of one run serves the next. The
	# plain-mmap figure is the contrast: late by the whole delay on
	# delayfs (a FUSE daemon like most, whose reads a signal cannot cut
	# short), which proves the stall was real; the cofault daemon's own
	# synchronous reads answer FUSE_INTERRUPT, so there plain mmap is
	# prompt too and only reported.
	if type drop_caches >/dev/null 2>&1; then
		drop_caches
	fi
	"set_delay_$d" 3000
	i0=$(stat_of interrupted)
	p5_prompt "$opts" 2 10
	if ! p5_is_prompt; then
		# Late by less than the stall can be the host: TCG on a busy
		# machine once ran the shim's handler 276 ms late, where it is
		# 3 to 11 ms late otherwise. A fault that waits for the origin
		# is late by the whole 3 s every time: once more, at pages of
		# their own.
		log "P5 $d late once (shim: $sh | library: $lib); again"
		p5_prompt "$opts" 6 14
	fi
	pl=$(timeout 60 "$PL_TIMEOUT" -m mmap -t 200 "$MNT/pl-slow" $((18 * MiB)))
	i1=$(stat_of interrupted)
	"set_delay_$d" 0
	if p5_is_prompt &&
		{ [ "$d" != delayfs ] ||
			! lt "$(field "$pl" late_ms)" "$LATE_LIMIT_MS"; }; then
		report "$d" P5-preload-signal PASS "shim: $sh | library: $lib | plain mmap: $pl | interrupted +$((i1 - i0))"
	else
		report "$d" P5-preload-signal FAIL "shim: $sh | library: $lib | plain mmap: $pl | interrupted +$((i1 - i0)); $(tr '\n' ';' <"$S/pl-debug")"
	fi

	# P6: mremap keeps the module's vm_ops: faults past the original
	# page still go through it.
	f0=$(stat_of faults)
	out=$(timeout 120 "$PL_CHECK" mremap "$MNT/pl-remap" 2>&1)
	f1=$(stat_of faults)
	if [ "$out" = "ok mremap how=device" ] && [ $((f1 - f0)) -gt 1 ]; then
		report "$d" P6-preload-mremap PASS "$out; module faults +$((f1 - f0))"
	else
		report "$d" P6-preload-mremap FAIL "$(echo "$out" | tr '\n' ';'); module faults +$((f1 - f0))"
	fi
}
