#!/bin/busybox sh
# /init of the test initramfs: load the 9p stack, mount the host's root
# read-only, give it writable /dev, /proc, /sys and /run, and run the checks
# in a chroot there. Always powers off, so QEMU exits.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
. /env
for m in /lib/mods/*.ko; do
	insmod "$m" || echo "COFAULT-LOG insmod $m failed"
done
if mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose \
	hostroot /host; then
	mount -t proc proc /host/proc
	mount -t sysfs sys /host/sys
	mount -t devtmpfs dev /host/dev
	mkdir -p /host/dev/shm /host/dev/pts
	mount -t tmpfs shm /host/dev/shm
	mount -t devpts devpts /host/dev/pts
	mount -t tmpfs -o size=512m run /host/run
	export KVER COFAULT_SRCDIR COFAULT_BUILDDIR COFAULT_KO COFAULT_BIN
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	# A private copy: bash reads a script as it runs, and the source
	# tree may be edited meanwhile.
	cp "/host$COFAULT_SRCDIR/tests/kmod/guest.sh" /host/run/cofault-guest.sh
	chroot /host /bin/bash /run/cofault-guest.sh
	echo "COFAULT-LOG guest.sh exit $?"
else
	echo "COFAULT-CHECK $KVER - 0-boot FAIL cannot mount the host root"
fi
echo "COFAULT-DONE $KVER"
sync
poweroff -f
