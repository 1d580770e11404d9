#!/usr/bin/env bash
# Set up cofault on a fresh Debian 12 machine: install the packages it
# builds and tests with, then build it in ./build.
#   scripts/setup.sh              packages + build
#   scripts/setup.sh --deps-only  packages only (what CI uses)
#   scripts/setup.sh --no-kernels skip the QEMU kernels (kernel-module tests)
#   scripts/setup.sh --bench      also the peers bench/compare.sh measures
set -euo pipefail

deps_only=no
kernels=yes
bench=no
for arg in "$@"; do
	case "$arg" in
	--deps-only) deps_only=yes ;;
	--no-kernels) kernels=no ;;
	--bench) bench=yes ;;
	-h|--help) sed -n '2,7p' "$0"; exit 0 ;;
	*) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
	esac
done

top=$(cd "$(dirname "$0")/.." && pwd)
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo

packages=(
	# build
	build-essential autoconf automake libtool pkg-config autoconf-archive
	libfuse3-dev fuse3 libcurl4-openssl-dev libsqlite3-dev libxml2-dev
	libjson-c-dev
	# tests
	libcmocka-dev nginx curl ca-certificates python3 python3-numpy strace
	clang libclang-rt-14-dev
)
kernel_packages=(
	qemu-system-x86 busybox-static kmod cpio
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
)
[ "$kernels" = yes ] && packages+=("${kernel_packages[@]}")
# What a user would mount instead, for bench/compare.sh.
[ "$bench" = yes ] && packages+=(rclone httpdirfs httpfs2)

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends "${packages[@]}"
# nginx is only a test origin: never leave the system service running.
$sudo systemctl disable --now nginx >/dev/null 2>&1 || true
# Node.js and npm run the S3-compatible test server (s3rver).
command -v npm >/dev/null 2>&1 ||
	$sudo apt-get install -y --no-install-recommends nodejs npm

[ "$deps_only" = yes ] && exit 0

cd "$top"
autoreconf -fi
mkdir -p build
cd build
../configure
make -j"$(nproc)"
echo
echo "built: $top/build/cofault"
echo "try it: scripts/demo.sh"
