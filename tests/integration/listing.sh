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

# A listing that shows no dates (http.server's) is no news about a file
# a HEAD has dated: a file kept open across a re-listing (--ttl 1) still
# reads on, with the right bytes.
check_undated_relisting() {
	local mnt=$T/mnt-undated f=a.bin
	cf_mount "$PY_URL" "$mnt" --ttl 1
	exec 3<"$mnt/$f"
	dd bs=1000 count=1 status=none <&3 >"$T/undated.out" ||
		cf_fail "undated: first read failed"
	sleep 2
	ls "$mnt" >/dev/null || cf_fail "undated: ls after the TTL failed"
	# What the kernel kept goes: the rest must come through the daemon.
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	cat <&3 >>"$T/undated.out" ||
		cf_fail "undated: reading on after a re-listing failed"
	exec 3<&-
	cmp "$T/undated.out" "$ROOT/$f" >&2 ||
		cf_fail "undated: reading on after a re-listing gave wrong bytes"
	cf_unmount "$mnt"
	cf_log "undated listing, re-listed while open: ok"
}

# ls after the TTL shows what the origin lists now: a name added and a
# name removed at the origin (the kernel keeps a directory's listing
# between opens only while it is still the daemon's).
check_relisting() {
	local mnt=$T/mnt-relist got
	mkdir -p "$ROOT/changing"
	: >"$ROOT/changing/old"
	cf_mount "$NGINX_URL" "$mnt" --ttl 1
	got=$(ls "$mnt/changing")
	[ "$got" = old ] || cf_fail "relisting: first ls shows '$got'"
	: >"$ROOT/changing/new"
	sleep 2
	got=$(ls "$mnt/changing" | tr '\n' ' ')
	[ "$got" = "new old " ] ||
		cf_fail "relisting: after an addition ls shows '$got'"
	rm "$ROOT/changing/old"
	sleep 2
	got=$(ls "$mnt/changing" | tr '\n' ' ')
	[ "$got" = "new " ] ||
		cf_fail "relisting: after a removal ls shows '$got'"
	# Unchanged since: the same answer again.
	got=$(ls "$mnt/changing" | tr '\n' ' ')
	[ "$got" = "new " ] || cf_fail "relisting: ls again shows '$got'"
	cf_unmount "$mnt"
	rm -r "$ROOT/changing"
	cf_log "re-listing after the TTL: ok"
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
check_relisting

cf_nginx_start "$ROOT" json
check_mount json "$NGINX_URL"

if command -v python3 >/dev/null 2>&1; then
	start_pyserver
	# http.server ignores Range, which cofault refuses (EIO) for files
	# bigger than what one request fetches: only files of at most
	# 256 KiB here, which are always fetched whole.
	check_mount pyserver "$PY_URL" a.bin "b & c.txt" "sub dir/x" empty
	check_undated_relisting
fi
