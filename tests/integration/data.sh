#!/bin/bash
# Data through an nginx-backed mount is exact: edge sizes around pages and
# 1 MiB, a 100 MiB file, awkward names, nested directories, mmap, and
# concurrent readers of one file and of many.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

# Sizes either side of a page and of 1 MiB, where off-by-one errors live.
SIZES="0 1 4095 4096 4097 1048575 1048576 1048577 104857600"
# nginx's HTML listing cuts shown names at 50 characters ("..>"), so the
# long one checks that names come from the links, not the text.
LONG=$(printf 'long-name-%.0s' 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18)
TAB=$(printf '\t')
NAMES="with space|per%cent|hash#tag|quest?ion|plus+sign|amp&semi;|caf\
é ünï 日本語|trailing.|-leading-dash|a<b>c|q\"uote|it's|tab${TAB}in|$LONG"

make_tree() {
	local root=$1 s n i
	mkdir -p "$root"
	for s in $SIZES; do
		cf_random_file "$root/size-$s" "$s"
	done
	echo "$NAMES" | tr '|' '\n' | while IFS= read -r n; do
		cf_random_file "$root/$n" 5000
	done
	mkdir -p "$root/dir a/dir b/deep" "$root/d1/d2/d3/d4" \
		"$root/empty dir" "$root/üñí dir"
	cf_random_file "$root/dir a/top" 10
	cf_random_file "$root/dir a/dir b/mid file" 70000
	cf_random_file "$root/dir a/dir b/deep/bottom%20file" 4097
	cf_random_file "$root/d1/d2/d3/d4/leaf" 123
	cf_random_file "$root/üñí dir/x?y#z" 1
	# Only the concurrency checks read these, so they start uncached.
	mkdir -p "$root/conc"
	cf_random_file "$root/conc/one" $((32 * 1024 * 1024))
	for i in 0 1 2 3 4 5 6 7; do
		cf_random_file "$root/conc/f$i" $((3 * 1024 * 1024 + i * 4097))
	done
}

# Relative path, type and (for files) size of everything under $1, sorted.
tree_listing() {
	(cd "$1" && timeout 60 find . -mindepth 1 \
		\( -type f -printf '%p f %s\n' \) -o \
		\( -type d -printf '%p d\n' \) |
		LC_ALL=C sort)
}

check_sizes() {
	local s
	for s in $SIZES; do
		[ "$(stat -c %s "$MNT/size-$s")" = "$s" ] ||
			cf_fail "size-$s: st_size $(stat -c %s "$MNT/size-$s")"
		cf_same_file "$MNT/size-$s" "$ROOT/size-$s"
	done
	cf_log "edge sizes and 100 MiB: sha256 matches"
}

check_names() {
	local n
	tree_listing "$ROOT" >"$T/want.lst"
	tree_listing "$MNT" >"$T/got.lst" || cf_fail "listing the mount failed"
	diff -u "$T/want.lst" "$T/got.lst" >&2 ||
		cf_fail "recursive listing differs"
	while IFS= read -r n; do
		cf_same_file "$MNT/$n" "$ROOT/$n"
	done <<EOT
$(echo "$NAMES" | tr '|' '\n')
dir a/dir b/mid file
dir a/dir b/deep/bottom%20file
d1/d2/d3/d4/leaf
üñí dir/x?y#z
EOT
	[ -z "$(ls -A "$MNT/empty dir")" ] || cf_fail "empty dir is not empty"
	cf_log "names and nested directories match" \
		"($(wc -l <"$T/want.lst") entries)"
}

# Reads that reach or pass the end of a file are short, not errors, and
# never invent bytes.
check_eof() {
	local f=size-1048577 got want
	got=$(cf_read "$MNT/$f" $((1048577 - 100)) 4096 30)
	case $got in
	"short 100 "*) ;;
	*) cf_fail "read across EOF: $got, want 100 bytes" ;;
	esac
	got=$(cf_read "$MNT/$f" 1048577 4096 30)
	case $got in
	"short 0 "*) ;;
	*) cf_fail "read at EOF: $got, want 0 bytes" ;;
	esac
	got=$(cf_read "$MNT/$f" $((50 * 1048576)) 4096 30)
	case $got in
	"short 0 "*) ;;
	*) cf_fail "read past EOF: $got, want 0 bytes" ;;
	esac
	got=$(cf_read "$MNT/size-0" 0 4096 30)
	case $got in
	"short 0 "*) ;;
	*) cf_fail "read of an empty file: $got" ;;
	esac
	got=$(cf_read "$MNT/size-4097" 4095 2 30)
	want=$(cf_range_sha "$ROOT/size-4097" 4095 2)
	case $got in
	"ok $want "*) ;;
	*) cf_fail "read across a page boundary: $got" ;;
	esac
	cf_log "reads at and past EOF: ok"
}

check_mmap() {
	local f mm
	mm=$(cf_helper cmp-mmap)
	for f in size-1 size-4097 size-1048577 size-104857600; do
		"$mm" "$MNT/$f" "$ROOT/$f" || cf_fail "mmap of $f differs"
	done
	cf_log "mmap contents match"
}

check_concurrent() {
	local th args i
	th=$(cf_helper cmp-threads)
	timeout 120 "$th" -t 8 -n 64 "$MNT/conc/one" "$ROOT/conc/one" >&2 ||
		cf_fail "8 readers of one file"
	args=
	for i in 0 1 2 3 4 5 6 7; do
		args="$args $MNT/conc/f$i $ROOT/conc/f$i"
	done
	# shellcheck disable=SC2086 # no spaces in these paths
	timeout 120 "$th" -t 8 -n 64 $args >&2 || cf_fail "8 readers of 8 files"
	cf_log "concurrent readers verified"
}

cf_init
cf_require_python
ROOT=$T/root
MNT=$T/mnt
make_tree "$ROOT"
cf_nginx_start "$ROOT"
cf_mount "$NGINX_URL" "$MNT"
check_concurrent
check_sizes
check_names
check_eof
check_mmap
cf_unmount "$MNT"

# A user's own -o max_read: libfuse drops the session at init unless the
# file system asks the kernel for the same size as the mount option.
cf_mount "$NGINX_URL" "$MNT" -o max_read=131072
cf_same_file "$MNT/size-104857600" "$ROOT/size-104857600"
cf_unmount "$MNT"
cf_log "-o max_read=131072: mounted, data verified"
