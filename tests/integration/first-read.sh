#!/bin/bash
# The first read from a new mount costs what later ones do: a reader's
# plain ranged GETs run on connections of their own, which the root
# listing's is not, so the daemon opens one for them once the mount is up.
# The first read then adds no connection to the origin, and the origin
# sees nothing but the listing and that read's request.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
www=$T/www
mkdir -p "$www"
cf_random_file "$www/f" $((1024 * 1024))
cf_nginx_start "$www"
m=$T/m

# conns PID: PID's established TCP connections to nginx, as
# "LOCALPORT ..." sorted (from its socket fds and the kernel's table).
conns() {
	python3 - "$1" "$NGINX_PORT" <<'EOF'
import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
inodes = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if link.startswith("socket:["):
        inodes.add(link[8:-1])
ports = []
with open("/proc/%s/net/tcp" % pid) as f:
    next(f)
    for line in f:
        x = line.split()
        local, remote, state, inode = x[1], x[2], x[3], x[9]
        if state == "01" and int(remote.split(":")[1], 16) == port \
                and inode in inodes:
            ports.append(int(local.split(":")[1], 16))
print(" ".join(str(p) for p in sorted(ports)))
EOF
}
nconns() { conns "$pid" | wc -w; }
two_conns() { [ "$(nconns)" = 2 ]; }

cf_mount "$NGINX_URL" "$m" --no-cache
pid=$(cf_pids_with_arg "$m")
[ "$(echo "$pid" | wc -w)" = 1 ] || cf_fail "daemons for $m: '$pid'"
# The listing's connection, and the one opened for readers.
cf_wait_until 10 two_conns ||
	cf_fail "the daemon has $(nconns) connections to the origin after the mount, want 2"
before=$(conns "$pid")
head -c 4096 "$m/f" >"$T/got"
cmp -s "$T/got" <(head -c 4096 "$www/f") || cf_fail "first read: wrong bytes"
after=$(conns "$pid")
[ "$after" = "$before" ] ||
	cf_fail "first read: connections to the origin went from ($before) to ($after)"
[ "$(cf_nginx_count '"GET /f ')" = 1 ] ||
	cf_fail "first read: $(cf_nginx_count '"GET /f ') requests for /f, want 1"
[ "$(wc -l <"$NGINX_ACCESS_LOG")" = 2 ] ||
	cf_fail "the origin saw $(wc -l <"$NGINX_ACCESS_LOG") requests, want 2 (the listing and the read)"
cf_unmount "$m"
cf_log "first read: on the connection opened at mount ($before), 2 requests in all"
