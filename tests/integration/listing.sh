#!/bin/bash
# Each listing format mounts and shows the same tree (2000 entries in one
# directory among it): nginx autoindex in HTML and in JSON, python's
# http.server; a URL naming one file mounts a directory holding just it.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

make_tree() {
	local root=$1
	mkdir -p "$root/sub dir/inner"
	cf_random_file "$root/a.bin" 70000
	cf_random_file "$root/b & c.txt" 3
	cf_random_file "$root/sub dir/x" 4097
	cf_random_file "$root/sub dir/inner/y z" 1048577
	: >"$root/empty"
	# A listing far bigger than any one read buffer of the parser.
	mkdir -p "$root/many"
	(cd "$root/many" && seq -f 'file-%05g.dat' 1 2000 | xargs touch)
	echo tail >"$root/many/file-02000.dat"
}

# Relative path, type and (for files) size of everything under $1, sorted.
tree_listing() {
	(cd "$1" && timeout 60 find . -mindepth 1 \
		\( -type f -printf '%p f %s\n' \) -o \
		\( -type d -printf '%p d\n' \) |
		LC_ALL=C sort)
}

# check_mount NAME URL [FILE...]: mount URL, compare the tree and the
# contents of the FILEs (default: all), unmount.
check_mount() {
	local name=$1 url=$2 mnt=$T/mnt-$1 f
	shift 2
	[ $# -gt 0 ] ||
		set -- a.bin "b & c.txt" "sub dir/x" "sub dir/inner/y z" empty
	cf_mount "$url" "$mnt"
	tree_listing "$mnt" >"$T/got-$name.lst" ||
		cf_fail "$name: listing failed"
	diff -u "$T/want.lst" "$T/got-$name.lst" >&2 ||
		cf_fail "$name: tree differs"
	for f in "$@" many/file-02000.dat; do
		cf_same_file "$mnt/$f" "$ROOT/$f"
	done
	cf_unmount "$mnt"
	cf_log "$name listing: ok"
}

check_single_file() {
	local mnt=$T/mnt-single got
	cf_mount "${NGINX_URL}sub%20dir/inner/y%20z" "$mnt"
	got=$(ls -A "$mnt")
	[ "$got" = "y z" ] || cf_fail "single-file mount shows '$got'"
	cf_same_file "$mnt/y z" "$ROOT/sub dir/inner/y z"
	cf_unmount "$mnt"
	cf_log "single-file URL: ok"
}

# python3 -m http.server has yet another HTML listing.
start_pyserver() {
	local port
	port=$(cf_free_port)
	(cd "$ROOT" && exec python3 -m http.server --bind 127.0.0.1 "$port" \
		>"$T/pyserver.log" 2>&1) &
	CF_PIDS="$CF_PIDS $!"
	cf_wait_until 10 cf_port_open "$port" ||
		cf_fail "http.server did not start"
	PY_URL=http://127.0.0.1:$port/
}

cf_init
ROOT=$T/root
make_tree "$ROOT"
tree_listing "$ROOT" >"$T/want.lst"

cf_nginx_start "$ROOT"
check_mount html "$NGINX_URL"
check_single_file

cf_nginx_start "$ROOT" json
check_mount json "$NGINX_URL"

if command -v python3 >/dev/null 2>&1; then
	start_pyserver
	# http.server ignores Range, which cofault refuses (EIO) for files
	# bigger than what one request fetches: only files of at most
	# 256 KiB here, which are always fetched whole.
	check_mount pyserver "$PY_URL" a.bin "b & c.txt" "sub dir/x" empty
fi
