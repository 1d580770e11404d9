# Helpers for the S3 integration tests; sourced after lib.sh, never run.
#
# s3rver (from npm, installed under $top_builddir/tests/node) keeps the
# objects; s3-front.py sits before it on 127.0.0.1 and checks every SigV4
# signature, answers If-Match and makes replacements atomic. Buckets are
# seeded straight into s3rver's directory (fast for thousands of keys) or
# uploaded with curl --aws-sigv4 through the front.

S3RVER=${S3RVER:-$top_builddir/tests/node/node_modules/.bin/s3rver}
S3_FRONT=$top_srcdir/tests/integration/s3-front.py
S3_KEY=AKIDCOFAULTTEST
S3_SECRET=cofault/test+secret=key
S3_REGION=us-east-1

# What every S3 test needs besides lib.sh's; call after T is set.
s3_require() {
	cf_require_python
	command -v node >/dev/null 2>&1 || cf_skip "no node"
	command -v curl >/dev/null 2>&1 || cf_skip "no curl"
	[ -x "$S3RVER" ] || cf_skip "s3rver not installed: npm install --prefix '$top_builddir/tests/node' s3rver@3"
	S3_DATA=$T/s3data
	mkdir -p "$S3_DATA"
}

# Like cf_init, without requiring FUSE: the store-level tests need none.
s3_init() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/cofault-s3.XXXXXX")
	trap cf_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
	s3_require
}

# s3_seed_many BUCKET EXPECTED: 5,000 keys under many/, 2,500 in one
# directory (three listing pages: continuation tokens) and 2,500 in
# 10 x 5 directories of 50; "many/PATH<TAB>SIZE" lines, sorted, go to
# the file EXPECTED.
s3_seed_many() {
	python3 - "$S3_DATA/$1/many" "$2" <<'EOF'
import os, sys
root, out = sys.argv[1], sys.argv[2]
lines = []
def put(rel, n):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + "._S3rver_object", "wb") as f:
        f.write(b"x" * (n % 97))
    lines.append("many/%s\t%d" % (rel, n % 97))
for n in range(2500):
    put("flat/f%05d" % n, n)
for a in range(10):
    for b in range(5):
        for c in range(50):
            n = 2500 + a * 250 + b * 50 + c
            put("d%02d/e%02d/k%04d" % (a, b, n), n)
with open(out, "w") as f:
    f.write("\n".join(sorted(lines, key=lambda l: l.encode())) + "\n")
EOF
}

# s3_seed BUCKET KEY FILE: place an object in s3rver's store directly
# (s3rver must not be running yet, or must not have listed the key).
s3_seed() {
	local dir base
	dir=$S3_DATA/$1/$(dirname "$2")
	base=$(basename "$2")
	mkdir -p "$dir"
	cp "$3" "$dir/$base._S3rver_object"
}

# s3_start [BUCKET...]: start s3rver with these buckets, then the front.
# Sets S3_PORT (the front's) and S3_ENDPOINT. Extra front options in
# S3_FRONT_OPTS.
s3_start() {
	local b log=$T/s3rver.log pf=$T/front.port upstream
	for b in "$@"; do
		mkdir -p "$S3_DATA/$b"
	done
	# s3rver's continuation tokens use DES, which OpenSSL 3 keeps in its
	# legacy provider; older node has neither the provider nor the flag.
	local nodeopts=
	if node --openssl-legacy-provider -e 0 >/dev/null 2>&1; then
		nodeopts=--openssl-legacy-provider
	fi
	NODE_OPTIONS=$nodeopts "$S3RVER" -d "$S3_DATA" \
		-a 127.0.0.1 -p 0 -s >"$log" 2>&1 &
	S3RVER_PID=$!
	CF_PIDS="$CF_PIDS $S3RVER_PID"
	cf_wait_until 20 grep -q 'listening on' "$log" ||
		cf_fail "s3rver did not start: $(cat "$log")"
	upstream=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
	[ -n "$upstream" ] || cf_fail "no s3rver port in: $(cat "$log")"
	# shellcheck disable=SC2086 # options are words on purpose
	python3 "$S3_FRONT" --upstream "$upstream" --portfile "$pf" \
		--key "$S3_KEY" --secret "$S3_SECRET" --region "$S3_REGION" \
		${S3_FRONT_OPTS:-} 2>"$T/front.log" &
	S3_FRONT_PID=$!
	CF_PIDS="$CF_PIDS $S3_FRONT_PID"
	cf_wait_until 10 test -s "$pf" || cf_fail "s3-front did not start"
	S3_PORT=$(cat "$pf")
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	cf_wait_until 10 cf_port_open "$S3_PORT" || cf_fail "s3-front not answering"
}

# Encode a key as S3 wants it in a path (everything but unreserved and /).
s3_urlkey() {
	python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1], safe="/~"))' "$1"
}

# s3_put BUCKET KEY FILE: upload through the front, signed by curl.
s3_put() {
	local url
	url=$S3_ENDPOINT/$1/$(s3_urlkey "$2")
	# --data-binary, not -T: -T appends the file name to a URL ending in /.
	curl -sS -f --aws-sigv4 "aws:amz:$S3_REGION:s3" \
		--user "$S3_KEY:$S3_SECRET" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		-X PUT --data-binary "@$3" -o /dev/null "$url" ||
		cf_fail "upload of '$2' to bucket $1 failed"
}

# Credentials for the store, in the environment.
s3_env_creds() {
	export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
	unset AWS_SESSION_TOKEN AWS_PROFILE
	# Never reach for a real metadata service from a test.
	export AWS_EC2_METADATA_DISABLED=true
	export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
	export AWS_CONFIG_FILE=$T/no-config
}

# s3_seed_awkward BASE: upload the $AWKWARD keys under awk/ in bucket
# "data" (sources $T/src/awk-N of BASE+N bytes), a "marker dir/" object,
# and "both", a key that is also a prefix.
s3_seed_awkward() {
	local base=$1 i=0 n
	echo "$AWKWARD" | tr '|' '\n' >"$T/awkward.names"
	while IFS= read -r n; do
		i=$((i + 1))
		cf_random_file "$T/src/awk-$i" $((base + i))
		s3_put data "awk/$n" "$T/src/awk-$i"
	done <"$T/awkward.names"
	: >"$T/empty"
	s3_put data "marker dir/" "$T/empty"
	s3_put data "both" "$T/src/size-1"
	s3_put data "both/inside" "$T/src/size-1"
}
