#!/bin/bash
# TLS is verified by default: an HTTPS origin whose certificate nothing
# vouches for (self-signed, made here) is refused at mount with a reason
# that says so, and nothing is mounted; --insecure, asked for explicitly,
# mounts it and the data is exact.
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

# --insecure: mounted, data exact.
mkdir -p "$T/m2"
cf_mount "$url" "$T/m2" --insecure
cf_same_file "$T/m2/f" "$www/f"
cf_unmount "$T/m2"
cf_log "ok"
