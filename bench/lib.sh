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

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU seconds per GiB moved, from ticks used for BYTES. On a shared,
# loaded machine this is steadier than throughput.
cpu_per_gib() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v b="$2" \
		'BEGIN { printf "%.2f", t / hz / (b / 1073741824) }'
}

# bench_nullfs_mount [OPTION...]: mount bench/nullfs on $T/nullfs, serving
# DATA_BYTES from memory, or what the options say (--stream=URL).
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
	[ $# -gt 0 ] || set -- --size="$DATA_BYTES"
	"$NULLFS_BIN" "$@" "$NULLFS_MNT" -f 2>>"$T/nullfs.log" &
	NULLFS_PID=$!
	CF_PIDS="$CF_PIDS $NULLFS_PID"
	cf_wait_until 10 cf_is_mounted "$NULLFS_MNT" ||
		cf_fail "nullfs did not mount"
}

# bench_nullfs_unmount: undo bench_nullfs_mount.
bench_nullfs_unmount() {
	fusermount3 -u "$NULLFS_MNT" 2>/dev/null || umount "$NULLFS_MNT"
	cf_wait_until 10 cf_gone "$NULLFS_PID" || kill "$NULLFS_PID"
	wait "$NULLFS_PID" 2>/dev/null || true
	cf_forget_pid "$NULLFS_PID"
}

# bench_stream_read [--splice]: a cold read of DATA through nullfs
# --stream (the ceiling for a FUSE server fed by this origin, one GET,
# nothing kept or checked), timed; then a second mount's bytes are
# verified. Sets STREAM_MIBS and STREAM_CPU (the server's CPU seconds a
# GiB); returns 1 when nullfs is not built. Runs in the caller's shell,
# so that a failure ends the run and its traps unmount.
bench_stream_read() {
	local t0 t1 ticks
	bench_nullfs_mount --stream="$NGINX_URL$DATA_NAME" "$@" || return 1
	ticks=$(cpu_ticks "$NULLFS_PID")
	t0=$(date +%s%N)
	timeout 600 dd if="$NULLFS_MNT/data" of=/dev/null bs=1M status=none ||
		cf_fail "nullfs --stream $*: the read failed"
	t1=$(date +%s%N)
	ticks=$(($(cpu_ticks "$NULLFS_PID") - ticks))
	bench_nullfs_unmount
	bench_nullfs_mount --stream="$NGINX_URL$DATA_NAME" "$@"
	[ "$(timeout 600 sha256sum <"$NULLFS_MNT/data" | cut -d' ' -f1)" = \
		"$DATA_SHA" ] || cf_fail "nullfs --stream $*: wrong data"
	bench_nullfs_unmount
	STREAM_MIBS=$(awk -v b="$DATA_BYTES" -v ns="$((t1 - t0))" \
		'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }')
	STREAM_CPU=$(cpu_per_gib "$ticks" "$DATA_BYTES")
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

# --- mounting each tool ----------------------------------------------------
# For compare.sh and read-cost.sh. They read DATA_NAME (bench_big_file),
# MAX_MEMORY and MOUNT_OPTS (cofault's options), LOG_DIR and CUR_WL
# (where and under what name to keep cofault's log, if LOG_DIR is set),
# and rclone reads $T/rclone.conf.

# mount_tool TOOL URL [CACHE]: a fresh mount, with a fresh cache unless
# given one. Sets MNT, CACHE, FILE (the big file in the mount) and
# TOOL_PID.
mount_tool() {
	local tool=$1 url=$2 log
	MNT=$T/mnt-$tool.$RANDOM
	CACHE=${3:-$T/cache-$(basename "$MNT")}
	log=$T/$(basename "$MNT").log
	mkdir -p "$MNT" "$CACHE"
	FILE=$MNT/$DATA_NAME
	CF_MOUNTS="$CF_MOUNTS $MNT"
	case $tool in
	cofault)
		# shellcheck disable=SC2086 # options, split on purpose
		CF_CACHE_DIR=$CACHE cf_mount "$url" "$MNT" \
			--max-memory "$MAX_MEMORY" $MOUNT_OPTS
		TOOL_PID=$(cf_pids_with_arg "$MNT" | head -n 1)
		return 0 ;;
	rclone)
		rclone mount :http: "$MNT" --http-url "$url" --read-only \
			--vfs-cache-mode full --cache-dir "$CACHE" \
			--config "$T/rclone.conf" >"$log" 2>&1 & ;;
	httpdirfs)
		httpdirfs -f --cache --cache-location "$CACHE" "$url" "$MNT" \
			>"$log" 2>&1 & ;;
	httpfs2)
		# One file per mount: the URL is the file's.
		httpfs2 -f -c "$log.console" "$url$DATA_NAME" "$MNT" \
			>"$log" 2>&1 & ;;
	esac
	TOOL_PID=$!
	CF_PIDS="$CF_PIDS $TOOL_PID"
	cf_wait_until 30 cf_is_mounted "$MNT" ||
		cf_fail "$tool did not mount: $(tail -n 5 "$log")"
	# Mounted is not yet serving for some: wait for the file to show.
	cf_wait_until 30 timeout 10 test -e "$FILE" ||
		cf_fail "$tool: $FILE not there: $(tail -n 5 "$log")"
}

# unmount_tool TOOL [keep]: unmount, and remove the cache unless "keep".
unmount_tool() {
	local tool=$1
	if [ "$tool" = cofault ]; then
		cf_unmount "$MNT"
		# The daemon logs its data-path counters at unmount.
		[ -z "${LOG_DIR:-}" ] || cp "$T/cofault-$(basename "$MNT").log" \
			"$LOG_DIR/cofault-$CUR_WL-$(basename "$MNT").log" || true
	else
		timeout 30 umount "$MNT" || timeout 30 umount -l "$MNT" ||
			cf_fail "$tool: cannot unmount $MNT"
		cf_wait_until 15 cf_gone "$TOOL_PID" || kill -9 "$TOOL_PID" ||
			true
		wait "$TOOL_PID" 2>/dev/null || true
		cf_forget_pid "$TOOL_PID"
	fi
	[ "${2:-}" = keep ] || rm -rf "$CACHE"
}
