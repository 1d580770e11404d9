#!/bin/bash
# Objects that change on the origin: after the attribute TTL a mount
# serves the new version (the kernel's cached pages of the old one are
# dropped, mmap included), and a reader that keeps the old version open
# gets the old bytes or EIO, never a mix of the two versions.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

cf_init
cf_require_python
MiB=1048576

# replace FILE SOURCE: swap in new content with an mtime (hence ETag)
# that differs from the old one even within the same second.
replace() {
	local tmp=$1.new.$$
	cp "$2" "$tmp"
	touch -d "@$(($(date +%s) + ${3:-10}))" "$tmp"
	mv -f "$tmp" "$1"
}

www=$T/www
mkdir -p "$www" "$T/v"
cf_random_file "$T/v/a" $((4 * MiB))
cf_random_file "$T/v/b" $((4 * MiB))
cf_random_file "$T/v/g1" $((8 * MiB))
cf_random_file "$T/v/g2" $((8 * MiB))
cp "$T/v/a" "$www/f"
cp "$T/v/g1" "$www/g"
cf_nginx_start "$www"
mnt=$T/mnt
cf_mount "$NGINX_URL" "$mnt" --ttl 1 --no-cache --max-memory 16M

# 1. read(): the new version after the TTL, through the page cache.
cf_same_file "$mnt/f" "$T/v/a"
replace "$www/f" "$T/v/b"
sleep 1.5
cf_same_file "$mnt/f" "$T/v/b"

# 2. mmap sees the new version too once the TTL has passed.
replace "$www/f" "$T/v/a" 20
sleep 1.5
stat "$mnt/f" >/dev/null
got=$(python3 -c 'import hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(hashlib.sha256(m[:]).hexdigest())' "$mnt/f")
[ "$got" = "$(cf_sha "$T/v/a")" ] || cf_fail "mmap after change: stale or mixed data"

# 3. A reader holding the old version open: the object is replaced under
# it; the rest of its reads are the old bytes or EIO, never new bytes.
python3 - "$mnt/g" "$www/g" "$T/v/g1" "$T/v/g2" <<'PY' || cf_fail "open reader saw mixed versions"
import errno, os, shutil, sys, time
mnt, origin, old, new = sys.argv[1:5]
old_b = open(old, "rb").read()
new_b = open(new, "rb").read()
fd = os.open(mnt, os.O_RDONLY)
head = os.pread(fd, 65536, 0)
assert head == old_b[:65536], "first read is not the old version"
tmp = origin + ".swap"
shutil.copyfile(new, tmp)
t = time.time() + 30
os.utime(tmp, (t, t))
os.replace(tmp, origin)
off, mixed, eio = 65536, 0, 0
while off < len(old_b):
    try:
        b = os.pread(fd, 1 << 20, off)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        eio += 1
        off += 1 << 20
        continue
    if not b:
        break
    if b != old_b[off:off + len(b)]:
        mixed += 1
    off += len(b)
os.close(fd)
print("old-version reader: %d EIO, %d mixed" % (eio, mixed))
sys.exit(1 if mixed else 0)
PY

# 4. Reopened after the TTL, the file is the new version throughout.
sleep 1.5
cf_same_file "$mnt/g" "$T/v/g2"
grep -q "changed on the origin" "$T/cofault-mnt.log" ||
	cf_fail "the daemon did not log the version change"
cf_unmount "$mnt"
cf_log "ok"
