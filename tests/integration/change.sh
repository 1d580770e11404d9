#!/bin/bash
# Objects that change on the origin: after the attribute TTL a mount
# serves the new version (the kernel's cached pages of the old one are
# dropped, mmap included), and a reader that keeps the old version open
# gets the old bytes or EIO, never a mix of the two versions; and its
# reads never put old bytes before a handle opened on the new version.
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
cp "$T/v/g1" "$www/h"
cp "$T/v/g1" "$www/u"
# Half a minute past a minute, so the listing's minute is not the mtime.
touch -d "@$(( $(date +%s) / 60 * 60 - 30))" "$www/u"
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

# 5. A handle open on the old version while another opens the new one:
# the old handle's reads must not put old bytes back into the page cache
# the new one reads through (they fail instead). With a disk cache, which
# keeps the old version's chunks at hand.
mnt2=$T/mnt2
cf_mount "$NGINX_URL" "$mnt2" --ttl 1
python3 - "$mnt2/h" "$www/h" "$T/v/g1" "$T/v/g2" <<'PY' || cf_fail "a new open read old bytes"
import os, shutil, sys, time
mnt, origin, old, new = sys.argv[1:5]
old_b = open(old, "rb").read()
new_b = open(new, "rb").read()
fd1 = os.open(mnt, os.O_RDONLY)
assert os.pread(fd1, len(old_b), 0) == old_b, "first read is not the old version"
tmp = origin + ".swap"
shutil.copyfile(new, tmp)
t = time.time() + 30
os.utime(tmp, (t, t))
os.replace(tmp, origin)
time.sleep(1.5)
os.stat(mnt)
fd2 = os.open(mnt, os.O_RDONLY)
try:
    os.pread(fd1, 4 << 20, 0)
except OSError:
    pass
got = os.pread(fd2, len(new_b), 0)
os.close(fd1)
os.close(fd2)
bad = [i for i in range(0, len(new_b), 1 << 20)
       if got[i:i + (1 << 20)] != new_b[i:i + (1 << 20)]]
print("new handle: MiB not of the new version: %s" % bad)
sys.exit(1 if bad or len(got) != len(new_b) else 0)
PY

# 6. Not a change: a HEAD refines what a listing said of an unchanged
# file (its mtime to the minute). The first open costs no HEAD; the
# second, while the first handle holds the object, asks for the version.
# Both handles must read the file whole: a refinement taken for a new
# version would fail the first handle's reads.
python3 - "$mnt2/u" "$T/v/g1" <<'PY' || cf_fail "a refined listing failed an open handle"
import os, sys
mnt, want = sys.argv[1:3]
want_b = open(want, "rb").read()
fd1 = os.open(mnt, os.O_RDONLY)
fd2 = os.open(mnt, os.O_RDONLY)
for fd in (fd1, fd2):
    got = os.pread(fd, len(want_b), 0)
    assert got == want_b, "handle %d read other bytes" % fd
    os.close(fd)
PY
grep -q "/u changed on the origin" "$T/cofault-mnt2.log" &&
	cf_fail "an unchanged file was logged as changed"
cf_unmount "$mnt2"
cf_unmount "$mnt"
cf_log "ok"
