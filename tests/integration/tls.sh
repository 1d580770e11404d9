#!/bin/bash
# TLS is verified by default: an HTTPS origin whose certificate nothing
# vouches for (self-signed, made here) is refused at mount with a reason
# that says so, and nothing is mounted; --insecure, asked for explicitly,
# mounts it and the data is exact.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
command -v openssl >/dev/null 2>&1 || cf_skip "no openssl"
bin=$(cf_find_nginx)
[ -n "$bin" ] || cf_skip "no nginx"

www=$T/www
dir=$T/nginx-tls
mkdir -p "$www" "$dir/tmp"
cf_random_file "$www/f" $((3 * 1048576 + 17))
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$T/openssl.log" ||
	cf_skip "openssl cannot make a certificate: $(cat "$T/openssl.log")"

port=$(cf_free_port)
cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 64; }
http {
	access_log $dir/access.log;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $dir/cert.pem;
		ssl_certificate_key $dir/key.pem;
		root $www;
		autoindex on;
	}
}
CONF
env -u NGINX "$bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
	2>>"$T/nginx-start.log" &
CF_PIDS="$CF_PIDS $!"
cf_wait_until 10 cf_port_open "$port" || cf_fail "nginx (TLS) did not start"
url=https://127.0.0.1:$port/

# Default: verified, refused, nothing mounted.
mkdir -p "$T/m1"
cf_mount_try "$url" "$T/m1" --timeout 5
[ "$MOUNT_RC" != 0 ] || cf_fail "a self-signed origin was mounted without --insecure"
cf_not_mounted "$T/m1" || cf_fail "refused, yet $T/m1 is mounted"
case $MOUNT_ERR in
*"$url"*"certificate not trusted"*) ;;
*) cf_fail "refusal does not name the URL and the certificate: $MOUNT_ERR" ;;
esac
cf_log "default: refused in $MOUNT_MS ms: $MOUNT_ERR"

# --insecure: mounted, data exact.
mkdir -p "$T/m2"
cf_mount "$url" "$T/m2" --insecure
cf_same_file "$T/m2/f" "$www/f"
cf_unmount "$T/m2"
cf_log "ok"
