# Shared by the benchmark scripts; sourced after tests/integration/lib.sh.

# daemon_hwm_mib PID: the process's peak memory in MiB (VmHWM, its
# high-water mark since it started), or "?".
daemon_hwm_mib() {
	awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" \
		2>/dev/null || echo '?'
}

# bench_big_file DIR SIZE_MIB: the random data file of that size, made
# once and kept in DIR (real data, not sparse, so nothing on the way can
# shortcut zeros). Sets DATA, DATA_SHA, DATA_NAME and DATA_BYTES.
bench_big_file() {
	local dir=$1 mib=$2 f
	f=$dir/data-${mib}M
	mkdir -p "$dir"
	if [ ! -f "$f.sha256" ] ||
		[ "$(stat -c %s "$f" 2>/dev/null)" != $((mib * 1048576)) ]; then
		cf_log "generating $f (once)"
		head -c $((mib * 1048576)) /dev/urandom >"$f.tmp"
		mv "$f.tmp" "$f"
		cf_sha "$f" >"$f.sha256"
	fi
	DATA=$f
	DATA_SHA=$(cat "$f.sha256")
	DATA_NAME=$(basename "$f")
	DATA_BYTES=$((mib * 1048576))
}

# bench_nullfs_mount: mount bench/nullfs serving DATA_BYTES on $T/nullfs.
# Sets NULLFS_BIN, NULLFS_MNT and NULLFS_PID; returns 1 (with a message) when nullfs
# is not built.
bench_nullfs_mount() {
	NULLFS_BIN=$top_builddir/bench/nullfs
	NULLFS_MNT=$T/nullfs
	if [ ! -x "$NULLFS_BIN" ]; then
		cf_log "no nullfs: build it with 'make bench/nullfs'"
		return 1
	fi
	mkdir -p "$NULLFS_MNT"
	CF_MOUNTS="$CF_MOUNTS $NULLFS_MNT"
	"$NULLFS_BIN" --size="$DATA_BYTES" "$NULLFS_MNT" -f 2>"$T/nullfs.log" &
	NULLFS_PID=$!
	CF_PIDS="$CF_PIDS $NULLFS_PID"
	cf_wait_until 10 cf_is_mounted "$NULLFS_MNT" ||
		cf_fail "nullfs did not mount"
}

# numeric VALUE: whether it is a plain number (not "failed", "WRONG(n)").
numeric() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

# median VALUE...: the middle one; anything not a number (a failure) wins,
# so a wrong or failed run is never hidden by the others.
median() {
	local v
	for v in "$@"; do
		numeric "$v" || { echo "$v"; return 0; }
	done
	# Of an even count, the mean of the middle two, in the values' own
	# precision.
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
		END {
			if (NR % 2) { print v[(NR + 1) / 2]; exit }
			a = v[NR / 2]; b = v[NR / 2 + 1]
			d = index(a, ".") ? length(a) - index(a, ".") : 0
			printf "%.*f\n", d, (a + b) / 2
		}'
}
