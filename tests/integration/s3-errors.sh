#!/bin/bash
# Bad input to the S3 origin gives one clear message and never a crash or
# a hang: wrong secret, unknown key id, unknown bucket, expired or invalid
# token, no credentials, an endpoint that is not S3, malformed XML, a
# listing that never ends, SlowDown (retried), keys that are no file names,
# an object HEAD without a length, an ETag too long to keep.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/s3-lib.sh"

s3_init
PROBE=$(cf_helper s3-probe)
S3_FRONT_OPTS="--expired-token OLDTOKEN"
cf_random_file "$T/obj" 100
s3_seed data obj "$T/obj"
s3_start data
s3_env_creds

# expect_fail PATTERN ARGS...: the probe fails within 30 s and its message
# matches PATTERN (grep -E), never showing the secret.
expect_fail() {
	local pat=$1 t0 ms rc=0
	shift
	t0=$(cf_now_ms)
	timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" --timeout 5000 "$@" \
		>"$T/out" 2>"$T/err" || rc=$?
	ms=$(($(cf_now_ms) - t0))
	[ "$rc" != 0 ] || cf_fail "'$*' succeeded"
	if [ "$rc" = 124 ] || [ "$rc" -ge 128 ]; then
		cf_fail "'$*' hung or crashed (exit $rc)"
	fi
	grep -qE -- "$pat" "$T/err" || cf_fail "'$*': message lacks /$pat/: $(cat "$T/err")"
	if grep -qF -- "$S3_SECRET" "$T/err" "$T/out"; then
		cf_fail "'$*' printed the secret key"
	fi
	[ "$ms" -lt 30000 ] || cf_fail "'$*' took $ms ms"
	cf_log "'$*': $(tail -n 1 "$T/err")"
}

AWS_SECRET_ACCESS_KEY=not-the-secret expect_fail 'wrong secret access key.*SignatureDoesNotMatch' s3://data ls ""
AWS_ACCESS_KEY_ID=AKIDUNKNOWN expect_fail 'unknown access key id.*InvalidAccessKeyId' s3://data ls ""
expect_fail 'bucket does not exist.*NoSuchBucket' s3://no-such-bucket ls ""
AWS_SESSION_TOKEN=OLDTOKEN expect_fail 'session token has expired.*ExpiredToken' s3://data ls ""
expect_fail 'did not answer like S3.*not well-formed|not a ListBucketResult' s3://not-s3 ls ""
expect_fail 'did not answer like S3.*not well-formed' s3://truncated ls ""
expect_fail 'repeated a continuation token' s3://token-loop ls ""
expect_fail 'access denied|AccessDenied' --no-sign-request s3://data ls ""
expect_fail 'not a valid bucket name' 's3://a' ls ""
expect_fail 'empty segment|not a valid file name' 's3://data/x//y' ls ""
expect_fail 'region.*(use --region|expecting)' --region eu-west-1 s3://data ls ""
(
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	expect_fail 'no AWS credentials found' s3://data ls ""
	AWS_ACCESS_KEY_ID=AKIDONLY expect_fail 'AWS_SECRET_ACCESS_KEY is set|AWS_ACCESS_KEY_ID is set but' s3://data ls ""
	expect_fail "profile 'nosuch' not found" --profile nosuch s3://data ls ""
)
# Nothing listens there: a bounded wait and a message that says so.
port=$(cf_free_port)
timeout 60 "$PROBE" --endpoint "http://127.0.0.1:$port" --timeout 3000 \
	s3://data ls "" >/dev/null 2>"$T/err" && cf_fail "dead endpoint succeeded"
grep -qiE 'refused|connect' "$T/err" || cf_fail "dead endpoint: $(cat "$T/err")"

# SlowDown twice, then an answer: retried with backoff, not an error.
timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" s3://slow-down ls "" >"$T/out" 2>"$T/err" ||
	cf_fail "SlowDown was not retried: $(cat "$T/err")"
grep -q '^f survived ' "$T/out" || cf_fail "slow-down listing: $(cat "$T/out")"

# A HEAD without a length is an error, not an empty file.
expect_fail 'reports no length' s3://no-length stat obj
# An ETag too long to keep whole is used as none: the object reads.
timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" s3://long-etag cat obj \
	>"$T/out" 2>"$T/err" || cf_fail "long ETag: $(cat "$T/err")"
[ "$(cat "$T/out")" = abcd ] || cf_fail "long ETag read: $(cat "$T/out")"

# Keys that cannot be file names are skipped with a warning; the others
# stay, and nothing escapes the mount root.
timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" s3://odd-names ls "" >"$T/out" 2>"$T/err" ||
	cf_fail "odd-names listing failed: $(cat "$T/err")"
[ "$(cut -d' ' -f1-2 "$T/out" | LC_ALL=C sort | tr '\n' '|')" = "d ok-dir|f ok-file|" ] ||
	cf_fail "odd-names listed: $(cat "$T/out")"
grep -q "not a valid file name" "$T/err" || cf_fail "no warning for odd names: $(cat "$T/err")"

# Credentials from instance metadata (IMDSv2), whose first session token
# the endpoint calls expired: the origin fetches new ones once and goes on.
python3 "$top_srcdir/tests/integration/s3-imds.py" --portfile "$T/imds.port" \
	--key "$S3_KEY" --secret "$S3_SECRET" --tokens OLDTOKEN,FRESHTOKEN \
	2>"$T/imds.log" &
CF_PIDS="$CF_PIDS $!"
cf_wait_until 10 test -s "$T/imds.port" || cf_fail "fake IMDS did not start"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_EC2_METADATA_DISABLED \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$(cat "$T/imds.port")" \
	timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" s3://data stat obj \
	>"$T/out" 2>"$T/err" || cf_fail "IMDS credentials: $(cat "$T/err")"
grep -q '^file 100 ' "$T/out" || cf_fail "IMDS stat: $(cat "$T/out")"
grep -q 'refreshing credentials' "$T/err" || cf_fail "no refresh after ExpiredToken: $(cat "$T/err")"

# A valid session token is signed and accepted.
AWS_SESSION_TOKEN=GOODTOKEN timeout 60 "$PROBE" --endpoint "$S3_ENDPOINT" \
	s3://data stat obj | grep -q '^file 100 ' || cf_fail "session token request failed"
cf_log "ok"
