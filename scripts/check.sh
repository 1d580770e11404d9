#!/usr/bin/env bash
# Build cofault with warnings as errors and ASan/UBSan in ./build-check and
# run the whole test suite (unit, integration against real servers on
# 127.0.0.1, and the kernel module under QEMU when kernels are installed).
# Extra arguments go to make, e.g. scripts/check.sh TESTS=tests/unit/test-data
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build-check"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || ../configure --enable-werror --enable-sanitizers
make -j"$(nproc)"
# The S3 tests run s3rver (npm); install it into the build tree once.
if command -v npm >/dev/null 2>&1 &&
	[ ! -x tests/node/node_modules/.bin/s3rver ]; then
	npm install --silent --no-audit --no-fund \
		--prefix "$build/tests/node" s3rver@3 ||
		echo "check.sh: s3rver could not be installed; S3 tests will skip" >&2
fi
status=0
make -j2 check "$@" || status=$?
if [ "$status" -ne 0 ]; then
	# Show why: the logs of the failed tests.
	for log in $(grep -l -E '^:test-result: (FAIL|ERROR)' \
		$(find . -name '*.trs') 2>/dev/null | sed 's/\.trs$/.log/'); do
		echo "==== $log"
		tail -n 60 "$log"
	done
fi
exit "$status"
