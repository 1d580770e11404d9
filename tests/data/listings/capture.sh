#!/bin/sh
# Regenerates the captured index pages in this directory from real servers
# (nginx autoindex, Apache mod_autoindex, Python http.server) run on
# 127.0.0.1 over a tree of awkwardly named files. Not run by "make check":
# the pages are kept so the parser tests do not depend on installed servers.
# edge-links.html, bad-names.json, malformed.json, not-listing.json and
# truncated.html (nginx.html cut inside an href) are made by hand.
# Usage: capture.sh [output-dir]   (default: the directory of this script)
set -eu

out=$(cd "${1:-$(dirname "$0")}" && pwd)
PATH=$PATH:/usr/sbin:/sbin
NGINX=${NGINX:-$(command -v nginx || :)}
APACHE=${APACHE:-$(command -v apache2 || command -v httpd || :)}
PYTHON=${PYTHON:-python3}
# nginx prints UTC anyway; Apache prints local time.
export TZ=UTC

tmp=$(mktemp -d)
# Servers started as root serve as an unprivileged user: let it in.
chmod 755 "$tmp"
pids=
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || :
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || :
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The served tree. Fixed sizes and mtimes keep the pages reproducible.
www=$tmp/www
mkdir -p "$www/dir" "$www/empty"
mk() { # name size
	truncate -s "$2" "$www/$1"
	touch -d '2026-11-21 21:10:00 UTC' "$www/$1"
}
mk plain.txt 12345
mk 'with space.txt' 1
mk '100%.txt' 100
mk 'hash#tag.txt' 0
mk 'question?.txt' 7
mk 'plus+sign.txt' 2048
mk 'café.txt' 3000
mk '日本語.txt' 1536
mk 'amp&lt<gt>.txt' 5
mk .hidden 42
mk 'colon:name.txt' 11
mk 'quote".txt' 13
mk big.bin 1572864
mk "$(printf 'long-name-%0100d.txt' 0)" 9
mk dir/inner.txt 1
touch -d '2026-11-20 08:05:00 UTC' "$www/dir"
touch -d '2026-11-19 12:00:00 UTC' "$www/empty"
touch -d '2026-11-21 21:10:00 UTC' "$www"

port() { # a free loopback port
	"$PYTHON" -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fetch() { # url file
	for _ in $(seq 50); do
		if curl -sf -g -o "$2" "$1"; then
			return 0
		fi
		sleep 0.1
	done
	echo "capture.sh: cannot fetch $1" >&2
	return 1
}

# nginx: HTML exact, HTML rounded, JSON.
np=$(port)
mkdir -p "$tmp/nginx/logs"
cat >"$tmp/nginx/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/cb;
	proxy_temp_path $tmp/nginx/px;
	fastcgi_temp_path $tmp/nginx/fc;
	uwsgi_temp_path $tmp/nginx/uw;
	scgi_temp_path $tmp/nginx/sc;
	server {
		listen 127.0.0.1:$np;
		root $www;
		location /exact/ { alias $www/; autoindex on; }
		location /rounded/ { alias $www/; autoindex on;
			autoindex_exact_size off; }
		location /json/ { alias $www/; autoindex on;
			autoindex_format json; }
	}
}
CONF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" &
pids="$pids $!"
fetch "http://127.0.0.1:$np/exact/" "$out/nginx.html"
fetch "http://127.0.0.1:$np/rounded/" "$out/nginx-rounded.html"
fetch "http://127.0.0.1:$np/json/" "$out/nginx.json"
fetch "http://127.0.0.1:$np/exact/empty/" "$out/nginx-empty.html"
fetch "http://127.0.0.1:$np/json/empty/" "$out/nginx-empty.json"

# Apache: FancyIndexing as <pre>, as a table, with icon links; plain list.
if [ -n "$APACHE" ] && [ -x "$APACHE" ]; then
	ap=$(port)
	# Debian's layout; elsewhere set APACHE_MODULES.
	mods=$(dirname "$(dirname "$APACHE")")/lib/apache2/modules
	mods=${APACHE_MODULES:-$mods}
	mkdir -p "$tmp/apache"
	cat >"$tmp/apache/httpd.conf" <<CONF
ServerRoot $tmp/apache
ServerName 127.0.0.1
Listen 127.0.0.1:$ap
PidFile $tmp/apache/httpd.pid
ErrorLog $tmp/apache/error.log
TypesConfig /dev/null
User #65534
Group #65534
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
LoadModule dir_module $mods/mod_dir.so
LoadModule alias_module $mods/mod_alias.so
LoadModule autoindex_module $mods/mod_autoindex.so
DocumentRoot $www
Alias /fancy $www
Alias /table $www
Alias /plain $www
Alias /icons $www
<Directory $www>
	Options +Indexes
	Require all granted
</Directory>
<Location /fancy>
	IndexOptions FancyIndexing
</Location>
<Location /table>
	IndexOptions FancyIndexing HTMLTable
</Location>
<Location /icons>
	IndexOptions FancyIndexing IconsAreLinks
	DefaultIcon /icon/file.gif
	AddIcon /icon/dir.gif ^^DIRECTORY^^
</Location>
<Location /plain>
	IndexOptions -FancyIndexing
</Location>
CONF
	"$APACHE" -f "$tmp/apache/httpd.conf" -DFOREGROUND &
	pids="$pids $!"
	fetch "http://127.0.0.1:$ap/fancy/" "$out/apache-fancy.html"
	fetch "http://127.0.0.1:$ap/table/" "$out/apache-table.html"
	fetch "http://127.0.0.1:$ap/plain/" "$out/apache-plain.html"
	fetch "http://127.0.0.1:$ap/icons/" "$out/apache-icons.html"
	fetch "http://127.0.0.1:$ap/fancy/empty/" "$out/apache-empty.html"
else
	echo "capture.sh: no Apache, skipping its pages" >&2
fi

# Python http.server.
pp=$(port)
"$PYTHON" -m http.server --bind 127.0.0.1 --directory "$www" "$pp" \
	>/dev/null 2>&1 &
pids="$pids $!"
fetch "http://127.0.0.1:$pp/" "$out/python.html"
fetch "http://127.0.0.1:$pp/empty/" "$out/python-empty.html"
