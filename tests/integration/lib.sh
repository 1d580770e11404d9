# shellcheck shell=bash
# Shared helpers for the integration tests; sourced, never run.
#
# Every test gets a private temporary directory ($T), its own servers on
# 127.0.0.1 and its own mounts; a trap undoes all of it even when the test
# fails or is interrupted. Exit 77 (skip) only when a prerequisite is truly
# missing. Environment (set by "make check"): top_srcdir, top_builddir,
# NGINX_BIN.

# The variables set here are for the scripts that source this file.
# shellcheck disable=SC2034

set -eu

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
COFAULT=${COFAULT:-$top_builddir/cofault}
HELPERS=$top_builddir/tests/integration
SLOW_ORIGIN=$top_srcdir/tests/tools/slow_origin.py

T=
CF_MOUNTS=
CF_PIDS=
# Scratch directories outside $T (which may be closed to other users).
CF_DIRS=
CF_NAME=$(basename "$0" .sh)
CF_FAILURE=

# Messages go to stderr so they land in the test's .log next to the output.
cf_log() { printf '%s: %s\n' "$CF_NAME" "$*" >&2; }
# The reason is said again after the logs that cleanup shows, so that a
# tail of the test's log (all that CI prints) holds it.
cf_fail() { CF_FAILURE=$*; cf_log "FAIL: $*"; exit 1; }
cf_skip() { cf_log "SKIP: $*"; exit 77; }

# Run "$@" until it succeeds, at most $1 seconds (tenths of a second apart).
cf_wait_until() {
	local limit=$1 i=0
	shift
	while [ "$i" -lt $((limit * 10)) ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Milliseconds since the epoch, for bounds on how long something took.
cf_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# True if $1 is a mount point, read from the mount table only: stat() on a
# wedged FUSE mount could hang, the table never does. Octal escapes (\040
# for a space) are how the kernel writes such names there.
cf_is_mounted() {
	awk -v m="$1" '{ gsub(/\\040/, " ", $5) }
		$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

cf_not_mounted() { ! cf_is_mounted "$1"; }

# The FUSE connection number of mount point $1 (its device minor), or "".
cf_fuse_conn() {
	awk -v m="$1" '{ gsub(/\\040/, " ", $5) }
		$5 == m { split($3, d, ":"); print d[2]; exit }' \
		/proc/self/mountinfo
}

# PIDs of processes whose command line has the argument $1 exactly: the
# daemon serving a mount point of our own temporary directory, which no
# other process can name.
cf_pids_with_arg() {
	local pids p
	# -z: the arguments in cmdline end with NULs, so -x matches one whole.
	pids=$(grep -lzxF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/cmdline$|\1|p')
	# grep found itself too; it has exited by now.
	for p in $pids; do
		[ -d "/proc/$p" ] && echo "$p"
	done
	return 0
}

cf_require_fuse() {
	[ -c /dev/fuse ] || cf_skip "no /dev/fuse"
	command -v fusermount3 >/dev/null 2>&1 || [ "$(id -u)" = 0 ] ||
		cf_skip "no fusermount3 and not root"
}

cf_require_cofault() {
	[ -x "$COFAULT" ] || cf_fail "$COFAULT not built"
}

cf_require_python() {
	command -v python3 >/dev/null 2>&1 || cf_skip "no python3"
}

# A helper built as one of check_PROGRAMS; "make check" builds them first.
cf_helper() {
	local h=$HELPERS/$1
	[ -x "$h" ] ||
		cf_fail "$h not built (make check, or make ${h#"$top_builddir"/})"
	echo "$h"
}

# Ask the kernel for a free port. Another process may take it before we
# bind it; the server start-up retries for that reason.
cf_free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# True once something accepts TCP connections on 127.0.0.1:$1.
cf_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cf_init() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/cofault-it.XXXXXX")
	trap cf_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cf_require_fuse
	cf_require_cofault
}

# Undo everything: mounts first (aborting the FUSE connection so a wedged
# daemon cannot make unmount hang), then our daemons and servers.
cf_cleanup() {
	local rc=$? m c p daemons=
	trap - EXIT
	set +e
	for m in $CF_MOUNTS; do
		daemons="$daemons $(cf_pids_with_arg "$m")"
	done
	for m in $CF_MOUNTS; do
		cf_is_mounted "$m" || continue
		c=/sys/fs/fuse/connections/$(cf_fuse_conn "$m")/abort
		# Absent unless fusectl is mounted; then lazy unmount alone.
		[ -w "$c" ] && echo 1 >"$c"
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# Our daemons, servers and readers; SIGKILL for any that lingers (a
	# killed daemon's connection is aborted, which frees blocked readers).
	for p in $daemons $CF_PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $daemons $CF_PIDS; do
		cf_wait_until 5 cf_gone "$p" || kill -9 "$p" 2>/dev/null
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$T" ]; then
		cf_dump_logs
		cf_log "FAIL: ${CF_FAILURE:-exit status $rc}"
	fi
	[ -n "$T" ] && rm -rf "$T"
	for c in $CF_DIRS; do
		rm -rf "$c"
	done
	exit "$rc"
}

# Exited: no such process, or a zombie (an init that reaps lazily may
# leave a daemon that has exited unreaped for seconds).
cf_gone() {
	! kill -0 "$1" 2>/dev/null ||
		[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

# Take a process that has ended out of the cleanup list, so that cleanup
# never signals a later process given the same number.
cf_forget_pid() {
	local p keep=
	for p in $CF_PIDS; do
		[ "$p" = "$1" ] || keep="$keep $p"
	done
	CF_PIDS=$keep
}

# On failure, show the daemon's and servers' logs in the test log.
cf_dump_logs() {
	local f
	for f in "$T"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $(basename "$f") (last 40 lines)" >&2
		tail -n 40 "$f" >&2
	done
}

# --- nginx ---------------------------------------------------------------

cf_find_nginx() {
	if [ -n "${NGINX_BIN:-}" ] && [ -x "$NGINX_BIN" ]; then
		echo "$NGINX_BIN"
	elif command -v nginx >/dev/null 2>&1; then
		command -v nginx
	elif [ -x /usr/sbin/nginx ]; then
		echo /usr/sbin/nginx
	fi
}

# cf_nginx_start ROOT [json] [CERT KEY]: serve ROOT with autoindex (HTML,
# or JSON when the second argument is "json"), over HTTPS with the PEM
# certificate and key when given. Sets NGINX_PORT, NGINX_URL (ending in /),
# NGINX_ACCESS_LOG and NGINX_PID. Everything nginx writes stays under $T.
cf_nginx_start() {
	local root=$1 fmt=${2:-html} cert=${3:-} key=${4:-} bin dir _ port
	local scheme=http
	bin=$(cf_find_nginx)
	[ -n "$bin" ] || cf_skip "no nginx"
	dir=$T/nginx.$$.$RANDOM
	mkdir -p "$dir/tmp"
	for _ in 1 2 3 4 5; do
		port=$(cf_free_port)
		cf_nginx_conf "$dir" "$root" "$port" "$fmt" "$cert" "$key" \
			>"$dir/nginx.conf"
		# nginx reads $NGINX as sockets inherited from an old binary.
		env -u NGINX "$bin" -p "$dir" -c "$dir/nginx.conf" \
			-e "$dir/error.log" 2>>"$T/nginx-start.log" &
		NGINX_PID=$!
		CF_PIDS="$CF_PIDS $NGINX_PID"
		if cf_wait_until 10 cf_nginx_up "$NGINX_PID" "$port"; then
			break
		fi
		kill "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
	done
	[ -n "$NGINX_PID" ] ||
		cf_fail "nginx did not start: $(cat "$dir/error.log" 2>/dev/null)"
	kill -0 "$NGINX_PID" || cf_fail "nginx exited"
	NGINX_PORT=$port
	[ -z "$cert" ] || scheme=https
	NGINX_URL=$scheme://127.0.0.1:$port/
	NGINX_ACCESS_LOG=$dir/access.log
	ln -sf "$dir/error.log" "$T/nginx-error.log"
}

cf_nginx_up() { kill -0 "$1" && cf_port_open "$2"; }

cf_nginx_conf() {
	local dir=$1 root=$2 port=$3 fmt=$4 cert=${5:-} key=${6:-} tls=
	# HTTP/2 offered too, as most TLS origins do: a client must still
	# get HTTP/1.1 when it asks for it (cofault's lean path does).
	[ -z "$cert" ] || tls="ssl http2;
		ssl_certificate $cert;
		ssl_certificate_key $key"
	cat <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
	# combined, and the Range asked for at the end of the line
	log_format ranges '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" "\$http_range"';
	access_log $dir/access.log ranges;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	types { }
	default_type application/octet-stream;
	sendfile on;
	keepalive_requests 100000;
	server {
		listen 127.0.0.1:$port ${tls:-};
		root $root;
		location / {
			autoindex on;
			autoindex_format $fmt;
			add_header Accept-Ranges bytes always;
		}
	}
}
EOF
}

# Requests nginx logged whose line matches the extended regexp $1.
cf_nginx_count() {
	grep -cE -- "$1" "$NGINX_ACCESS_LOG" 2>/dev/null || true
}

# --- the slow origin -----------------------------------------------------

# cf_origin_start ROOT [slow_origin options...]: start tests/tools/
# slow_origin.py. Sets ORIGIN_PORT, ORIGIN_URL, ORIGIN_PID, ORIGIN_CTL (the
# control file; see cf_origin_set) and ORIGIN_LOG (one line per request).
# With ORIGIN_PORT already set, listens on that port again (a restart).
cf_origin_start() {
	local root=$1 pf
	shift
	cf_require_python
	ORIGIN_CTL=${ORIGIN_CTL:-$T/origin.ctl}
	ORIGIN_LOG=${ORIGIN_LOG:-$T/origin-requests.log}
	ORIGIN_ROOT=$root
	ORIGIN_ARGS="$*"
	pf=$T/origin.port
	rm -f "$pf"
	python3 "$SLOW_ORIGIN" --root "$root" --port "${ORIGIN_PORT:-0}" \
		--port-file "$pf" --control "$ORIGIN_CTL" --log "$ORIGIN_LOG" \
		"$@" >/dev/null 2>>"$T/origin.log" &
	ORIGIN_PID=$!
	CF_PIDS="$CF_PIDS $ORIGIN_PID"
	cf_wait_until 10 test -s "$pf" || cf_fail "slow origin did not start"
	ORIGIN_PORT=$(cat "$pf")
	ORIGIN_URL=http://127.0.0.1:$ORIGIN_PORT/
	cf_wait_until 10 cf_port_open "$ORIGIN_PORT" ||
		cf_fail "slow origin not answering"
}

# Stop the slow origin: connections to its port are then refused.
cf_origin_stop() {
	kill "$ORIGIN_PID" 2>/dev/null || true
	cf_wait_until 10 cf_gone "$ORIGIN_PID" || kill -9 "$ORIGIN_PID" || true
	wait "$ORIGIN_PID" 2>/dev/null || true
	cf_forget_pid "$ORIGIN_PID"
}

# Start it again on the same port, with the options it had.
cf_origin_restart() {
	# shellcheck disable=SC2086 # the options are words on purpose
	cf_origin_start "$ORIGIN_ROOT" $ORIGIN_ARGS
}

# cf_origin_set KEY=VALUE...: replace the run-time knobs (atomically).
# No argument: back to the command-line settings.
cf_origin_set() {
	if [ $# = 0 ]; then
		rm -f "$ORIGIN_CTL"
		return
	fi
	printf '%s\n' "$@" >"$ORIGIN_CTL.tmp"
	mv -f "$ORIGIN_CTL.tmp" "$ORIGIN_CTL"
}

# --- cofault -------------------------------------------------------------

# Each mount point gets its own chunk cache under $T: a mount starts cold,
# and nothing is written to the system's cache directory. Set CF_CACHE_DIR
# to share one between mounts.
cf_cache_dir() {
	echo "${CF_CACHE_DIR:-$T/cache-$(basename "$1")}"
}

# cf_mount URL MOUNTPOINT [options...]: mount, failing the test if cofault
# fails. The daemon's log goes to $T/cofault-<mountpoint name>.log.
cf_mount() {
	local url=$1 mnt=$2 rc=0
	shift 2
	mkdir -p "$mnt"
	CF_MOUNTS="$CF_MOUNTS $mnt"
	timeout 60 "$COFAULT" mount "$url" "$mnt" \
		--log-file "$T/cofault-$(basename "$mnt").log" \
		--cache-dir "$(cf_cache_dir "$mnt")" "$@" \
		2>"$T/mount-stderr.log" || rc=$?
	if [ "$rc" != 0 ]; then
		cat "$T/mount-stderr.log" >&2
		cf_fail "cofault mount $url $mnt $* exited $rc"
	fi
	cf_is_mounted "$mnt" ||
		cf_fail "cofault mount returned 0, $mnt not mounted"
}

# cf_mount_try URL MOUNTPOINT [options...]: mount without judging; sets
# MOUNT_RC, MOUNT_ERR (stderr) and MOUNT_MS (how long it took).
cf_mount_try() {
	local url=$1 mnt=$2 t0
	shift 2
	CF_MOUNTS="$CF_MOUNTS $mnt"
	t0=$(cf_now_ms)
	MOUNT_RC=0
	timeout 60 "$COFAULT" mount "$url" "$mnt" \
		--cache-dir "$(cf_cache_dir "$mnt")" "$@" \
		>"$T/mount-try.out" 2>"$T/mount-try.err" || MOUNT_RC=$?
	MOUNT_MS=$(($(cf_now_ms) - t0))
	MOUNT_ERR=$(cat "$T/mount-try.out" "$T/mount-try.err")
}

# Unmount with "cofault unmount" and wait (bounded) for the daemon to exit.
cf_unmount() {
	local mnt=$1 pids p
	pids=$(cf_pids_with_arg "$mnt")
	timeout 30 "$COFAULT" unmount "$mnt" ||
		cf_fail "cofault unmount $mnt failed"
	cf_is_mounted "$mnt" && cf_fail "$mnt still mounted after unmount"
	for p in $pids; do
		# The daemon commits its cache index before it exits; under a
		# loaded parallel "make check" with sanitizers that has taken
		# more than 10 s once. A daemon that is really stuck shows
		# where in its threads' stacks.
		cf_wait_until 30 cf_gone "$p" || {
			cf_dump_threads "$p"
			cf_fail "daemon $p still running 30 s after unmount"
		}
	done
}

# Where each thread of process $1 is: state, wait channel and, for root,
# the kernel stack (a stuck exit shows fdatasync, a futex or a poll).
cf_dump_threads() {
	local t
	for t in /proc/"$1"/task/*; do
		[ -d "$t" ] || continue
		cf_log "thread ${t##*/} $(cat "$t/comm" 2>/dev/null):" \
			"$(awk '{print $3}' "$t/stat" 2>/dev/null)" \
			"wchan=$(cat "$t/wchan" 2>/dev/null)"
		sed 's/^/    /' "$t/stack" >&2 2>/dev/null || true
	done
}

# --- checks --------------------------------------------------------------

cf_sha() { sha256sum <"$1" | cut -d' ' -f1; }

# cf_same_file MOUNTED ORIGINAL: the content through the mount is exact.
cf_same_file() {
	local a b
	a=$(timeout 120 sha256sum <"$1" | cut -d' ' -f1) ||
		cf_fail "reading $1 failed"
	b=$(cf_sha "$2")
	[ "$a" = "$b" ] || cf_fail "$1: sha256 $a, want $b"
}

# cf_read FILE OFFSET LENGTH TIMEOUT_S: read with one pread() in a fresh
# process; prints "ok SHA256", "errno NAME" or "short N" and how many
# milliseconds it took ("... ms=N"). Never hangs past TIMEOUT_S (+1).
cf_read() {
	local limit=$(($4 + 1))
	timeout -s KILL "$limit" python3 - "$@" <<'EOF' || echo "killed ms=${limit}000"
import errno, hashlib, os, sys, time
path, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t0 = time.monotonic()
try:
    fd = os.open(path, os.O_RDONLY)
    try:
        buf = b""
        while len(buf) < n:
            b = os.pread(fd, n - len(buf), off + len(buf))
            if not b:
                break
            buf += b
    finally:
        os.close(fd)
    ms = int((time.monotonic() - t0) * 1000)
    if len(buf) < n:
        print("short %d ms=%d" % (len(buf), ms))
    else:
        print("ok %s ms=%d" % (hashlib.sha256(buf).hexdigest(), ms))
except OSError as e:
    ms = int((time.monotonic() - t0) * 1000)
    print("errno %s ms=%d" % (errno.errorcode.get(e.errno, e.errno), ms))
EOF
}

# The same bytes of the original file, as cf_read prints them.
cf_range_sha() {
	python3 - "$@" <<'EOF'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    print(hashlib.sha256(f.read(int(sys.argv[3]))).hexdigest())
EOF
}

# Write $2 bytes of random data to file $1.
cf_random_file() {
	head -c "$2" /dev/urandom >"$1"
}
