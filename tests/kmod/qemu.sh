#!/bin/sh
# Boot every installed kernel that has headers under QEMU (TCG), load
# cofault.ko there and run tests/kmod/guest.sh against a FUSE mount inside
# the guest. The guest prints one "COFAULT-CHECK ..." line per check; this
# script collects them into the test result: 0 all passed, 1 a check failed
# or a guest did not finish, 77 when QEMU, busybox or a kernel is missing.
#
# Environment: top_srcdir, top_builddir (set by make check);
# COFAULT_KVERS (space-separated kernel versions, default: all installed);
# COFAULT_GUEST_TIMEOUT (seconds per guest, default 1800: a bound for hangs;
# a run takes 3-5 minutes on an idle 2-core machine);
# COFAULT_BIN (the daemon, default $top_builddir/cofault).
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
timeout_s=${COFAULT_GUEST_TIMEOUT:-1800}

skip() { echo "SKIP: $*"; exit 77; }

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || skip "busybox not installed"
# Must be static: it runs in the initramfs with no libraries.
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' ||
	[ -x /bin/busybox ] || skip "no static busybox"
command -v modinfo >/dev/null || skip "modinfo (kmod) not installed"
[ -x "$top_builddir/tests/kmod/cftest" ] || skip "tests/kmod/cftest not built"
[ -x "$top_builddir/tests/kmod/delayfs" ] || skip "tests/kmod/delayfs not built"

kvers=${COFAULT_KVERS:-}
if [ -z "$kvers" ]; then
	for k in /boot/vmlinuz-*; do
		[ -e "$k" ] || continue
		v=${k#/boot/vmlinuz-}
		# Debian's images are often readable by root only.
		[ -r "$k" ] && [ -d "/lib/modules/$v/build" ] && kvers="$kvers $v"
	done
fi
[ -n "$kvers" ] || skip "no kernel with both a readable /boot/vmlinuz-* and headers"
# The guest reads everything through a read-only share of /, so the build
# directory must be there too (it is, unless it is on a private mount).

work=$(mktemp -d "${TMPDIR:-/tmp}/cofault-kmod.XXXXXX")
qpid=
cleanup() {
	if [ -n "$qpid" ]; then
		kill "$qpid" 2>/dev/null
		sleep 1
		kill -9 "$qpid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# $1 = kernel version, rest = module names: the .ko files they need, each
# after its dependencies, builtin ones left out.
kmod_order() {
	kv=$1
	shift
	seen=
	order=
	for m in "$@"; do
		kmod_visit "$m"
	done
	echo "$order"
}
kmod_visit() {
	case " $seen " in *" $1 "*) return 0 ;; esac
	seen="$seen $1"
	# No locals in sh: recursion clobbers variables, so look the file
	# name up again after visiting the dependencies.
	for d in $(modinfo -k "$kv" -F depends "$1" | tr ',' ' '); do
		kmod_visit "$d"
	done
	f=$(modinfo -k "$kv" -F filename "$1" 2>/dev/null | head -n1)
	case "$f" in "" | "(builtin)") return 0 ;; esac
	order="$order $f"
}

# $1 = kernel version: build the initramfs, print its path.
make_initrd() {
	kv=$1
	root=$work/root-$kv
	mkdir -p "$root/bin" "$root/lib/mods" "$root/proc" "$root/sys" \
		"$root/dev" "$root/host"
	cp "$busybox" "$root/bin/busybox"
	i=10
	for f in $(kmod_order "$kv" virtio_pci 9pnet_virtio 9p); do
		n=$(basename "$f")
		n=${n%%.ko*}
		case "$f" in
		*.xz) xz -dc "$f" ;;
		*.zst) zstd -qdc "$f" ;;
		*.gz) gzip -dc "$f" ;;
		*) cat "$f" ;;
		esac >"$root/lib/mods/$i-$n.ko"
		i=$((i + 1))
	done
	cat >"$root/env" <<EOF
KVER='$kv'
COFAULT_SRCDIR='$top_srcdir'
COFAULT_BUILDDIR='$top_builddir'
COFAULT_KO='$top_builddir/kmod/build-$kv/cofault.ko'
COFAULT_BIN='${COFAULT_BIN:-$top_builddir/cofault}'
EOF
	cp "$top_srcdir/tests/kmod/guest-init.sh" "$root/init"
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) \
		>"$work/initrd-$kv.gz"
	echo "$work/initrd-$kv.gz"
}

status=0
for kv in $kvers; do
	echo "== kernel $kv"
	if ! make -s -C "$top_srcdir/kmod" KDIR="/lib/modules/$kv/build" \
		BUILD="$top_builddir/kmod/build-$kv" >"$work/kbuild.log" 2>&1; then
		cat "$work/kbuild.log"
		echo "FAIL: $kv: module does not build"
		status=1
		continue
	fi
	initrd=$(make_initrd "$kv")
	log=$work/console-$kv.log
	# A second boot only when the kernel died before the guest script
	# said a word: under a loaded TCG host, 6.12 once oopsed in its own
	# boot-time code patching (int3 in sched_clock_cpu), before any of
	# ours ran. That is no result about the module.
	for boot in 1 2; do
		timeout -k 10 "$timeout_s" qemu-system-x86_64 -accel tcg \
			-smp 2 -m 1G -nodefaults -no-reboot -display none \
			-monitor none -serial "file:$log" \
			-kernel "/boot/vmlinuz-$kv" -initrd "$initrd" \
			-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" \
			-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
			</dev/null &
		qpid=$!
		wait "$qpid"
		qstatus=$?
		qpid=
		if [ "$boot" -eq 2 ] || [ "$qstatus" -eq 124 ] ||
			grep -aq '^COFAULT-LOG' "$log"; then
			break
		fi
		cp "$log" "$top_builddir/tests/kmod/console-$kv-boot1.log" \
			2>/dev/null
		echo "NOTE: $kv: the kernel died before the guest script" \
			"started (console: $top_builddir/tests/kmod/console-$kv-boot1.log);" \
			"booting it again"
	done
	# Keep the whole console for a failed run.
	keep="$top_builddir/tests/kmod/console-$kv.log"
	cp "$log" "$keep" 2>/dev/null
	grep -a '^COFAULT-' "$log" | tr -d '\r'
	if [ "$qstatus" -eq 124 ]; then
		echo "FAIL: $kv: guest timed out after ${timeout_s}s (console: $keep)"
		status=1
	elif ! grep -aq '^COFAULT-DONE' "$log"; then
		echo "FAIL: $kv: guest did not finish (console: $keep)"
		status=1
	elif grep -aq '^COFAULT-CHECK .* FAIL' "$log"; then
		echo "FAIL: $kv: some checks failed (console: $keep)"
		status=1
	elif missing=$(for n in 1 2 3 4 5 6 7 8 9; do
		grep -aq "^COFAULT-CHECK [^ ]* [^ ]* $n-[a-z-]* PASS" "$log" ||
			printf ' %s' "$n"
	done) && [ -n "$missing" ]; then
		echo "FAIL: $kv: checks did not report:$missing (console: $keep)"
		status=1
	else
		echo "PASS: $kv"
	fi
done
exit $status
