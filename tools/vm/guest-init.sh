#!/bin/busybox sh
# shellcheck shell=dash
# /init of the guest initramfs (busybox).  It stays PID 1 for the whole run:
#   1. loads the modules the initramfs carries (virtio-pci, 9p, overlay),
#   2. mounts the sid tree (9p tag "viroot", read-only) under a tmpfs overlay
#      at /newroot, plus the run's control share ("victl", read-write) and,
#      if present, the test share ("vishare") and a modules share ("vimods"),
#   3. modprobes the requested drivers (virtio_gpu by default) in the tree,
#   4. runs /run/virtio-intel/cmd.sh chrooted in /newroot under a timeout,
#      copying its output to ttyS0 (console) and ttyS1 (output only),
#   5. prints "VIRTIO-INTEL-GUEST-EXIT rc=N" and reboots (QEMU runs with
#      -no-reboot, so that ends QEMU).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "virtio-intel-init: $*" >/dev/console; }
finish() { # finish RC: marker, flush, power off
    echo "VIRTIO-INTEL-GUEST-EXIT rc=$1" >/dev/console
    echo "VIRTIO-INTEL-GUEST-EXIT rc=$1" >/dev/ttyS1 2>/dev/null
    sync
    reboot -f
    sleep 5
    poweroff -f
}
fail() { say "ERROR: $*"; finish 125; }

for m in $(cat /modules.list); do
    insmod "/lib/modules/$m" 2>/dev/null || say "insmod $m failed (built in?)"
done

# Which 9p tags exist?  (Present only when the runner exported them.)
tags=$(cat /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null | tr '\0' ' ')
has_tag() { case " $tags " in *" $1 "*) return 0 ;; esac; return 1; }
has_tag viroot || fail "no 9p share 'viroot' (tags: $tags)"

mkdir -p /lower /rw /newroot
# cache=loose: the root is read-only and does not change during a run.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose viroot /lower ||
    fail "cannot mount the 9p root"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
if ! mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot; then
    # Fallback: the read-only tree with tmpfs where programs write.
    say "overlayfs failed; using the read-only 9p root with tmpfs /var"
    mount --bind /lower /newroot
    mount -t tmpfs tmpfs /newroot/var
fi
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o ptmxmode=0666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=1777 tmp $R/tmp
mount -t tmpfs -o mode=0755 run $R/run
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
mkdir -p $R/run/virtio-intel
has_tag victl || fail "no 9p share 'victl'"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 victl $R/run/virtio-intel ||
    fail "cannot mount the control share"
if has_tag vishare; then
    mkdir -p $R/mnt/host
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vishare $R/mnt/host ||
        fail "cannot mount the test share"
fi
if has_tag vimods; then
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 vimods $R/lib/modules ||
        fail "cannot mount the modules share"
fi

C=$R/run/virtio-intel
[ -f $C/config ] || fail "no $C/config"
. $C/config # VI_TIMEOUT, VI_MODPROBE
for m in $VI_MODPROBE; do
    chroot $R modprobe "$m" || say "modprobe $m failed"
done

say "running the command (timeout ${VI_TIMEOUT}s)"
# The command runs in its own session/process group so that the timeout, and
# the clean-up afterwards, kill everything it started: a left-over child would
# keep the output pipe open and hang the run.
run_cmd() {
    setsid chroot $R /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root TERM=dumb XDG_RUNTIME_DIR=/tmp \
        /bin/sh /run/virtio-intel/cmd.sh </dev/null &
    pid=$!
    (sleep "$VI_TIMEOUT"; kill -9 -$pid) >/dev/null 2>&1 &
    wdog=$!
    wait $pid
    echo $? >/rc
    kill $wdog 2>/dev/null
    kill -9 -$pid 2>/dev/null
}
# Output goes to the console and, separately, to ttyS1; the exit status
# travels through a file because of the pipe.
rm -f /rc
run_cmd 2>&1 | tee /dev/ttyS1 >/dev/console
rc=$(cat /rc 2>/dev/null || echo 126)
[ "$rc" = 137 ] && say "command killed after ${VI_TIMEOUT}s (timeout)"
dmesg >$C/dmesg.txt 2>/dev/null
finish "$rc"
