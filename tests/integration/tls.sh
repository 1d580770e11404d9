#!/bin/bash
# TLS is verified by default: an HTTPS origin whose certificate nothing
# vouches for (self-signed, made here) is refused at mount with a reason
# that says so, and nothing is mounted; --insecure, asked for explicitly,
# mounts it and the data is exact. An HTTPS origin that redirects to
# plain HTTP is refused too: the clear-text server gets no request.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
command -v openssl >/dev/null 2>&1 || cf_skip "no openssl"
www=$T/www
dir=$T/tls
mkdir -p "$www" "$dir"
cf_random_file "$www/f" $((3 * 1048576 + 17))
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 \
	-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>"$T/openssl.log" ||
	cf_skip "openssl cannot make a certificate: $(cat "$T/openssl.log")"

cf_nginx_start "$www" html "$dir/cert.pem" "$dir/key.pem"
url=$NGINX_URL

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

# --insecure: mounted, data exact. The origin offers HTTP/2 as well; the
# readers' own small reads (random preads here) ask for HTTP/1.1 and get
# it, each in one request: none wasted on a protocol the other side did
# not speak (answered, and logged, with an empty body).
mkdir -p "$T/m2"
cf_mount "$url" "$T/m2" --insecure
python3 - "$T/m2/f" "$www/f" <<'PY' || cf_fail "random preads over TLS: wrong data"
import os, sys
m = os.open(sys.argv[1], os.O_RDONLY)
w = os.open(sys.argv[2], os.O_RDONLY)
for off in (1200000, 40960, 2500000, 3 * 1048576):
    if os.pread(m, 4096, off) != os.pread(w, 4096, off):
        sys.exit(1)
PY
cf_same_file "$T/m2/f" "$www/f"
cf_unmount "$T/m2"
empty=$(awk '$6 == "\"GET" && $10 == 0' "$NGINX_ACCESS_LOG" | wc -l)
[ "$empty" = 0 ] ||
	cf_fail "$empty GETs answered with nothing: $(grep -m3 '" 206 0 ' "$NGINX_ACCESS_LOG")"
grep -q '"GET /f HTTP/1.1" 206 4096 ' "$NGINX_ACCESS_LOG" ||
	cf_fail "no 4 KiB read went over HTTP/1.1: $(tail -3 "$NGINX_ACCESS_LOG")"
cf_log "ok: $(wc -l <"$NGINX_ACCESS_LOG") requests"

# An HTTPS origin redirecting to plain HTTP (a mirror redirector, or an
# attacker's answer): nothing may be fetched in clear text.
cf_nginx_start "$www"
rport=$(cf_free_port)
python3 - "$rport" "$dir/cert.pem" "$dir/key.pem" "$NGINX_URL" \
	>"$T/redirector.log" 2>&1 <<'PY' &
import http.server, ssl, sys
port, cert, key, target = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        self.send_response(302)
        self.send_header("Location", target + self.path.lstrip("/"))
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD = answer
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
CF_PIDS="$CF_PIDS $!"
cf_wait_until 10 cf_port_open "$rport" || cf_fail "the redirector did not start"
mkdir -p "$T/m3"
cf_mount_try "https://127.0.0.1:$rport/f" "$T/m3" --insecure --timeout 5
if [ "$MOUNT_RC" = 0 ]; then
	got=$(head -c 4096 "$T/m3/f" 2>&1 | wc -c)
	cf_unmount "$T/m3"
	[ "$got" = 0 ] || cf_fail "read $got bytes through a redirect to plain HTTP"
fi
clear=$(wc -l <"$NGINX_ACCESS_LOG")
[ "$clear" = 0 ] ||
	cf_fail "$clear requests went to plain HTTP after a redirect: $(head -3 "$NGINX_ACCESS_LOG")"
case $MOUNT_ERR in
*"redirected away from HTTPS"*) ;;
*) cf_fail "the refusal does not say why: $MOUNT_ERR" ;;
esac
cf_log "redirect to plain HTTP: refused: $MOUNT_ERR"
