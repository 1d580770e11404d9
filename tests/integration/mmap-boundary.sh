#!/bin/bash
# An mmap fault next to a chunk boundary: the kernel's read-around window
# (128 KiB) covers pages of two chunks, and the daemon asks the origin for
# them with one ranged GET, as a client without chunks would, then keeps
# each side in its own chunk. The bytes are those of the file, the origin
# sees one request of the window's size, and touching pages of either
# side afterwards costs none.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
www=$T/www
mkdir -p "$www"
cf_random_file "$www/f" $((4 * 1024 * 1024))
cf_nginx_start "$www"
m=$T/m
log=$T/cofault-$(basename "$m").log

# touch OFFSET...: fault in the page at each offset through a read-only
# mapping, and compare each such page with the file's bytes.
touch_pages() {
	python3 - "$m/f" "$www/f" "$@" <<'PY' || cf_fail "mmap: wrong bytes"
import mmap, sys
path, orig, offs = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
with open(path, "rb") as f, open(orig, "rb") as g:
    mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    for o in offs:
        g.seek(o)
        if mm[o:o + 4096] != g.read(4096):
            sys.exit(1)
PY
}

MiB=$((1024 * 1024))
# --readahead 128K is the default; named so that an unprivileged run
# (the kernel's own default is the same) reads the same window.
cf_mount "$NGINX_URL" "$m" --no-cache --readahead 128K
before=$(cf_nginx_count '"GET /f ')
touch_pages $((2 * MiB - 4096))
gets=$(($(cf_nginx_count '"GET /f ') - before))
[ "$gets" = 1 ] ||
	cf_fail "one fault across a chunk boundary: $gets requests, want 1"
bytes=$(grep '"GET /f ' "$NGINX_ACCESS_LOG" | tail -n 1 | awk '{print $10}')
[ "$bytes" = 131072 ] ||
	cf_fail "the fault's request sent $bytes bytes, want 131072 (the read-around)"
# The pages on both sides of the boundary came with it.
touch_pages $((2 * MiB - 4096)) $((2 * MiB))
gets=$(($(cf_nginx_count '"GET /f ') - before))
[ "$gets" = 1 ] || cf_fail "pages already fetched cost $((gets - 1)) requests"
cf_unmount "$m"
grep -q "1 across two chunks" "$log" ||
	cf_fail "unmount log: $(grep 'origin reads' "$log")"
cf_log "a fault across a chunk boundary: one request of 128 KiB, right bytes"
