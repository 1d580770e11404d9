# Shared by the benchmark scripts; sourced after tests/integration/lib.sh.

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
