#!/bin/bash
# An S3 bucket mounted for real, against s3rver behind the SigV4-checking
# front: credentials from the environment and from a profile, exact data
# for edge sizes (up to 100 MiB) and awkward keys, a 5,000-key tree that
# lists completely, a wrong secret that fails the mount with a message
# saying so, and an object replaced under an open reader that never
# yields a mix of the two versions.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/s3-lib.sh"

cf_init
s3_require
SIZES="0 1 4095 4096 4097 1048575 1048576 1048577 104857600"
AWKWARD="with space|plus+sign|per%cent|eq=amp&x|caf\
é 日本語|tilde~dot.|q?h#s|semi;colon,comma"

mkdir -p "$T/src"
for s in $SIZES; do
	cf_random_file "$T/src/size-$s" "$s"
	s3_seed data "sizes/size-$s" "$T/src/size-$s"
done
s3_seed_many data "$T/many.expected"
s3_start data
s3_seed_awkward 3000
s3_env_creds
S3_OPTS="--endpoint $S3_ENDPOINT --region $S3_REGION"

# --- environment credentials: data and listings ------------------------------
mnt=$T/mnt-env
# shellcheck disable=SC2086
cf_mount s3://data "$mnt" $S3_OPTS
for s in $SIZES; do
	[ "$(stat -c %s "$mnt/sizes/size-$s")" = "$s" ] || cf_fail "size-$s: wrong size"
	cf_same_file "$mnt/sizes/size-$s" "$T/src/size-$s"
done
i=0
while IFS= read -r n; do
	i=$((i + 1))
	cf_same_file "$mnt/awk/$n" "$T/src/awk-$i"
done <"$T/awkward.names"
t0=$(cf_now_ms)
(cd "$mnt" && timeout 120 find many -type f -printf '%p\t%s\n') |
	LC_ALL=C sort >"$T/many.listed" || cf_fail "find over the mount failed"
cmp -s "$T/many.expected" "$T/many.listed" ||
	cf_fail "5000-key tree differs: $(diff "$T/many.expected" "$T/many.listed" | head)"
cf_log "5000 keys listed through the mount in $(($(cf_now_ms) - t0)) ms"
[ -d "$mnt/marker dir" ] || cf_fail "marker dir missing"
[ -z "$(ls -A "$mnt/marker dir")" ] || cf_fail "marker dir not empty"
[ -d "$mnt/both" ] || cf_fail "'both' is not a directory"
[ -f "$mnt/both/inside" ] || cf_fail "'both/inside' missing"
[ "$(find "$mnt" -mindepth 1 -maxdepth 1 -name both | wc -l)" = 1 ] ||
	cf_fail "'both' listed twice"
cf_unmount "$mnt"

# --- a profile, and a prefix as the root -----------------------------------------
cat >"$T/credentials" <<EOF
[cofault-test]
aws_access_key_id = $S3_KEY
aws_secret_access_key = $S3_SECRET
EOF
mnt=$T/mnt-profile
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_SHARED_CREDENTIALS_FILE=$T/credentials
# shellcheck disable=SC2086
cf_mount s3://data/sizes/ "$mnt" $S3_OPTS --profile cofault-test
cf_same_file "$mnt/size-4097" "$T/src/size-4097"
[ ! -e "$mnt/sizes" ] || cf_fail "the prefix mount shows the bucket root"
cf_unmount "$mnt"
s3_env_creds
cf_log "profile mount: ok"

# --- a wrong secret fails the mount, saying so ------------------------------------
mnt=$T/mnt-wrong
mkdir -p "$mnt"
# shellcheck disable=SC2086
AWS_SECRET_ACCESS_KEY=not-the-secret cf_mount_try s3://data "$mnt" $S3_OPTS
[ "$MOUNT_RC" != 0 ] || cf_fail "mount with a wrong secret succeeded"
cf_not_mounted "$mnt" || cf_fail "wrong-secret mount left a mount"
echo "$MOUNT_ERR" | grep -q "wrong secret access key" ||
	cf_fail "wrong-secret message: $MOUNT_ERR"
if echo "$MOUNT_ERR" | grep -qF -- "$S3_SECRET"; then
	cf_fail "the secret appears in the mount error"
fi
cf_log "wrong secret: $MOUNT_ERR"

# --- replaced under an open reader ----------------------------------------------
cf_random_file "$T/old" $((16 * 1048576))
cf_random_file "$T/new" $((16 * 1048576))
s3_put data swap "$T/old"
mnt=$T/mnt-swap
# shellcheck disable=SC2086
cf_mount s3://data "$mnt" $S3_OPTS --ttl 1 --no-cache
rm -f "$T/swap.half" "$T/swap.go"
timeout 120 python3 - "$mnt/swap" "$T/swap.half" "$T/swap.go" >"$T/swap.result" <<'EOF' &
import errno, hashlib, os, sys, time
path, half, go = sys.argv[1:4]
h = hashlib.sha256()
try:
    with open(path, "rb", buffering=0) as f:
        h.update(f.read(1048576))
        open(half, "w").close()
        for _ in range(600):
            if os.path.exists(go):
                break
            time.sleep(0.1)
        while True:
            b = f.read(1048576)
            if not b:
                break
            h.update(b)
    print("ok", h.hexdigest())
except OSError as e:
    print("errno", errno.errorcode.get(e.errno, e.errno))
EOF
reader=$!
cf_wait_until 60 test -e "$T/swap.half" || cf_fail "reader did not start"
s3_put data swap "$T/new"
touch "$T/swap.go"
wait "$reader" || cf_fail "reader failed: $(cat "$T/swap.result")"
read -r kind val <"$T/swap.result"
case "$kind $val" in
"ok $(cf_sha "$T/old")") cf_log "reader across a replacement: old version, whole" ;;
"ok $(cf_sha "$T/new")") cf_log "reader across a replacement: new version, whole" ;;
errno*) cf_log "reader across a replacement: error $val, no mixed data" ;;
*) cf_fail "reader across a replacement got mixed data ($kind $val)" ;;
esac
sleep 2
cf_same_file "$mnt/swap" "$T/new"
cf_unmount "$mnt"
cf_log "ok"
