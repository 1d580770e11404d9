#!/usr/bin/env bash
# Start a local origin with sample data and mount it with cofault.
#   scripts/demo.sh        nginx on 127.0.0.1:${COFAULT_DEMO_PORT:-8080} serving
#                          demo/www, mounted on demo/mnt
#   scripts/demo.sh stop   unmount and stop the origin
# Everything lives under ./demo; nothing else on the machine is touched.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/demo"
port=${COFAULT_DEMO_PORT:-8080}
cofault="$top/build/cofault"
nginx=$(command -v nginx || echo /usr/sbin/nginx)

stop() {
	if grep -q " $demo/mnt " /proc/mounts 2>/dev/null; then
		"$cofault" unmount "$demo/mnt" || fusermount3 -u "$demo/mnt" || true
	fi
	if [ -f "$demo/nginx.pid" ]; then
		kill "$(cat "$demo/nginx.pid")" 2>/dev/null || true
		rm -f "$demo/nginx.pid"
	fi
}

if [ "${1:-}" = stop ]; then
	stop
	echo "demo stopped"
	exit 0
fi

[ -x "$cofault" ] || { echo "demo.sh: run scripts/setup.sh first" >&2; exit 1; }
[ -x "$nginx" ] || { echo "demo.sh: nginx is not installed (scripts/setup.sh)" >&2; exit 1; }
stop

mkdir -p "$demo/www/images" "$demo/www/text" "$demo/mnt" "$demo/tmp"
if [ ! -f "$demo/www/weights.bin" ]; then
	echo "making sample data in $demo/www ..."
	head -c $((64 << 20)) /dev/urandom >"$demo/www/weights.bin"
	for i in $(seq 1 20); do
		head -c $((RANDOM * 8)) /dev/urandom >"$demo/www/images/img-$i.raw"
	done
	echo "Hello from the origin." >"$demo/www/text/hello.txt"
	echo "Names may have spaces." >"$demo/www/text/with spaces & symbols.txt"
	# Debian's python3-numpy belongs to the system interpreter.
	py=python3
	[ -x /usr/bin/python3 ] && py=/usr/bin/python3
	if "$py" -c 'import numpy' 2>/dev/null; then
		"$py" -c 'import numpy as np, sys
np.save(sys.argv[1], np.arange(1 << 20, dtype=np.float32).reshape(-1, 256))' \
			"$demo/www/records.npy"
	fi
fi

cat >"$demo/nginx.conf" <<CONF
worker_processes 1;
pid $demo/nginx.pid;
error_log $demo/tmp/error.log;
events { worker_connections 256; }
http {
	access_log $demo/tmp/access.log;
	client_body_temp_path $demo/tmp/body;
	proxy_temp_path $demo/tmp/proxy;
	fastcgi_temp_path $demo/tmp/fastcgi;
	uwsgi_temp_path $demo/tmp/uwsgi;
	scgi_temp_path $demo/tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		root $demo/www;
		autoindex on;
		autoindex_exact_size on;
	}
}
CONF
"$nginx" -c "$demo/nginx.conf"
for _ in $(seq 1 50); do
	curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
	sleep 0.1
done

"$cofault" mount "http://127.0.0.1:$port/" "$demo/mnt" \
	--cache-dir "$demo/cache" --log-file "$demo/tmp/cofault.log"

cat <<MSG

cofault is serving http://127.0.0.1:$port/ on $demo/mnt

  ls -lR $demo/mnt
  sha256sum $demo/mnt/weights.bin $demo/www/weights.bin
  cofault cache stats --cache-dir $demo/cache    (from $top/build)

Stop it with: scripts/demo.sh stop
MSG
