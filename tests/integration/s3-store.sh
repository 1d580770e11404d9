#!/bin/bash
# The S3 origin on its own (no FUSE), against s3rver behind a front that
# checks SigV4: exact data for edge sizes and awkward keys, a 5,000-key
# tree listed completely, implicit and marker directories, "directory
# wins", credentials from the environment and from a profile, a prefix
# as the root, and a reader that never mixes two versions of an object.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/s3-lib.sh"

s3_init
PROBE=$(cf_helper s3-probe)
SIZES="0 1 4095 4096 4097 1048575 1048576 1048577 104857600"
AWKWARD="with space|plus+sign|per%cent|eq=amp&x|caf\
é 日本語|tilde~dot.|q?h#s|semi;colon,comma|star*bang!|quote'paren()"

probe() {
	timeout 120 "$PROBE" --endpoint "$S3_ENDPOINT" --region "$S3_REGION" "$@"
}

# --- seed -----------------------------------------------------------------
mkdir -p "$T/src"
for s in $SIZES; do
	cf_random_file "$T/src/size-$s" "$s"
	s3_seed data "sizes/size-$s" "$T/src/size-$s"
done
s3_seed_many data "$T/many.expected"
s3_start data

# Through the signed front: keys with bytes that must be encoded.
s3_seed_awkward 1000

s3_env_creds

# --- sizes and data ---------------------------------------------------------
probe s3://data find sizes >"$T/sizes.out" 2>"$T/probe.log" ||
	cf_fail "find sizes: $(cat "$T/probe.log")"
for s in $SIZES; do
	grep -qxF "sizes/size-$s	$s" "$T/sizes.out" ||
		cf_fail "size-$s missing or wrong size in: $(cat "$T/sizes.out")"
	got=$(probe s3://data cat "sizes/size-$s" 2>>"$T/probe.log" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$(cf_sha "$T/src/size-$s")" ] || cf_fail "size-$s: data differs"
done
# Odd chunk sizes: reads that straddle every boundary.
got=$(probe --chunk 4097 s3://data cat "sizes/size-1048577" | sha256sum | cut -d' ' -f1)
[ "$got" = "$(cf_sha "$T/src/size-1048577")" ] || cf_fail "size-1048577 in 4097-byte reads differs"

i=0
while IFS= read -r n; do
	i=$((i + 1))
	got=$(probe s3://data cat "awk/$n" 2>>"$T/probe.log" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$(cf_sha "$T/src/awk-$i")" ] || cf_fail "key 'awk/$n': data differs"
	probe s3://data stat "awk/$n" | grep -q "^file $((1000 + i)) " ||
		cf_fail "stat 'awk/$n' wrong"
done <"$T/awkward.names"
probe s3://data ls awk | sed -n 's/^f \(.*\) [0-9]* [0-9]* ".*"$/\1/p' |
	LC_ALL=C sort >"$T/awk.listed"
LC_ALL=C sort "$T/awkward.names" | cmp -s - "$T/awk.listed" ||
	cf_fail "awkward keys listed as: $(cat "$T/awk.listed")"

# --- 5,000 keys -----------------------------------------------------------
t0=$(cf_now_ms)
probe s3://data find many | LC_ALL=C sort >"$T/many.listed"
cmp -s "$T/many.expected" "$T/many.listed" ||
	cf_fail "5000-key listing differs: $(diff "$T/many.expected" "$T/many.listed" | head)"
cf_log "listed 5000 keys in $(($(cf_now_ms) - t0)) ms"

# --- directories --------------------------------------------------------------
probe s3://data ls "" >"$T/root.ls"
grep -qx "d marker dir 0 0 " "$T/root.ls" || cf_fail "marker dir not listed: $(cat "$T/root.ls")"
grep -qx "d both 0 0 " "$T/root.ls" || cf_fail "'both' is not a directory: $(cat "$T/root.ls")"
[ "$(grep -c ' both ' "$T/root.ls")" = 1 ] || cf_fail "'both' listed twice"
probe s3://data ls "marker dir" >"$T/marker.ls" || cf_fail "ls marker dir failed"
[ ! -s "$T/marker.ls" ] || cf_fail "marker dir not empty: $(cat "$T/marker.ls")"
probe s3://data stat "marker dir" | grep -q '^dir ' || cf_fail "stat marker dir"
probe s3://data stat "many/d03" | grep -q '^dir ' || cf_fail "stat implicit dir"
if probe s3://data stat "nosuch" 2>"$T/err"; then
	cf_fail "stat of a missing key succeeded"
fi
grep -q "No such file" "$T/err" || cf_fail "missing key: $(cat "$T/err")"

# --- a prefix as the root ---------------------------------------------------
probe s3://data/many/d01/ ls "" | grep -q "^d e04 " || cf_fail "prefix root listing"
probe s3://data/many/d01 ls e04 | grep -q "^f k2950 " || cf_fail "prefix sub listing"

# --- credentials from a profile file ----------------------------------------
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
cat >"$T/credentials" <<EOF
# written by the test
[default]
aws_access_key_id = wrong
aws_secret_access_key = wrong
[cofault-test]
aws_access_key_id = $S3_KEY
aws_secret_access_key = $S3_SECRET
EOF
cat >"$T/config" <<EOF
[profile cofault-test]
region = $S3_REGION
EOF
export AWS_SHARED_CREDENTIALS_FILE=$T/credentials AWS_CONFIG_FILE=$T/config
timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" --profile cofault-test \
	s3://data stat sizes/size-4096 | grep -q '^file 4096 ' ||
	cf_fail "--profile credentials did not work"
AWS_PROFILE=cofault-test timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" \
	s3://data stat sizes/size-4096 | grep -q '^file 4096 ' ||
	cf_fail "AWS_PROFILE credentials did not work"
# The endpoint can come from the profile too.
echo "endpoint_url = $S3_ENDPOINT" >>"$T/config"
timeout 60 "$PROBE" --profile cofault-test s3://data stat sizes/size-1 |
	grep -q '^file 1 ' || cf_fail "endpoint_url from the profile not used"
s3_env_creds

# --- replaced while being read ------------------------------------------------
cf_random_file "$T/old" $((4 * 1048576))
cf_random_file "$T/new" $((4 * 1048576))
s3_put data swap "$T/old"
mkfifo "$T/go"
probe --chunk 1048576 --pause-after 2 s3://data cat swap <"$T/go" \
	>"$T/swap.out" 2>"$T/swap.err" &
reader=$!
exec 7>"$T/go"
cf_wait_until 30 grep -q paused "$T/swap.err" || cf_fail "reader did not pause"
s3_put data swap "$T/new"
echo go >&7
exec 7>&-
rc=0
wait "$reader" || rc=$?
[ "$rc" != 0 ] || cf_fail "reading across a replacement succeeded (mixed data)"
grep -q "Stale" "$T/swap.err" || cf_fail "replacement not reported as stale: $(cat "$T/swap.err")"
head -c "$(stat -c %s "$T/swap.out")" "$T/old" | cmp -s - "$T/swap.out" ||
	cf_fail "bytes read before the replacement are not the old object's"
got=$(probe s3://data cat swap | sha256sum | cut -d' ' -f1)
[ "$got" = "$(cf_sha "$T/new")" ] || cf_fail "new version not read whole"

# Nothing secret in anything the probe printed.
if grep -rqF -- "$S3_SECRET" "$T"/*.log "$T"/*.err "$T"/*.out 2>/dev/null; then
	cf_fail "the secret key appears in output"
fi
cf_log "ok"
