#!/bin/sh
# Run the S3 listing fuzzer for a short fixed time, seeded with the test
# pages; a crash, leak or timeout fails the test. S3_FUZZ_SECONDS
# overrides the duration.
fuzzer="${top_builddir:-.}/tests/fuzz/fuzz-s3-list"
seeds="${top_srcdir:-.}/tests/data/s3"
[ -x "$fuzzer" ] || { echo "fuzz-s3-list not built (no clang?)"; exit 77; }
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" && cp "$seeds"/* "$work/corpus"/ || exit 1
"$fuzzer" -max_total_time="${S3_FUZZ_SECONDS:-20}" -timeout=10 \
	-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	-artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
status=$?
tail -n 25 "$work/log"
for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
	[ -f "$f" ] || continue
	echo "failing input $f:"
	od -c "$f" | head -n 20
	status=1
done
exit $status
