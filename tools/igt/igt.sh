#!/bin/bash
# `make igt`: runs IGT, unmodified (Debian's igt-gpu-tools in the sid tree), against
# virtio_intel.ko on the project kernel under the software host, with IGT's own runner.
# Prints a table (test, result, expected, seconds) and fails if any result differs from
# tools/igt/expectations.txt, where every expected non-pass carries its reason.
# usage: tools/igt/igt.sh [--debug]
set -uo pipefail
. "$(dirname "$0")/../vm/lib.sh"
. "$REPO_ROOT/tools/kernel/env.sh"

debug=() tag=igt
if [[ ${1:-} == --debug ]]; then debug=(--debug) tag=igt-debug; fi
need_root
find_cargo
export PATH=$KTOOLS/bin:$PATH
need_cmd python3 python3
here=$REPO_ROOT/tools/igt
out=$REPO_ROOT/build/$tag
rm -rf "$out"; mkdir -p "$out/share"

"$VM_DIR/cargo.sh" host >/dev/null || die "the software host library did not build"
tree=$("$VM_DIR/mk-sid-tree.sh") || die "the sid tree did not build"
bat=$tree/usr/share/igt-gpu-tools/i915.fast-feedback.testlist
[[ -f $bat ]] || die "the sid tree's igt-gpu-tools has no i915 BAT list ($bat)"
[[ -x $tree/usr/bin/igt_runner && -d $tree/usr/libexec/igt-gpu-tools ]] ||
    die "the sid tree has no igt-gpu-tools (igt_runner); rebuild it with tools/vm/mk-sid-tree.sh"
O=$("$KDIR_SCRIPTS/build.sh" "${debug[@]}") || die "kernel build failed"
build_driver "$O" "$out"
# vgem, for the tests that need a foreign dma-buf or fence (igt_cork): loaded after
# virtio_intel, so that the i915 device keeps the first minor.
cp "$O/drivers/gpu/drm/vgem/vgem.ko" "$out/share/" ||
    die "the project kernel has no vgem.ko (CONFIG_DRM_VGEM=m in configs/virtio-intel.config)"
grep -v '^#' "$here/testlist.txt" | grep . >"$out/share/testlist.txt"

guest_cmd='insmod /mnt/host/virtio_intel.ko || exit 10
insmod /mnt/host/vgem.ko || exit 13
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
igt_runner -o --per-test-timeout 120 --test-list /mnt/host/testlist.txt \
    /usr/libexec/igt-gpu-tools /tmp/igt-results >/mnt/host/runner.log 2>&1
echo "igt_runner rc=$?"
cp /tmp/igt-results/results.json /mnt/host/ || exit 11
# vgem_basic@unload unloads vgem (and cannot load it again from the share).
if [ -d /sys/module/vgem ]; then rmmod vgem || exit 12; fi
rmmod virtio_intel || exit 12'
rc=0
VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" --modprobe "" \
    --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/$tag" \
    --append kunit.enable=0 --timeout 900 --cmd "$guest_cmd" >"$out/guest.log" 2>&1 || rc=$?
if [[ ! -f $out/share/results.json ]]; then
    cat "$out/guest.log"; tail -n 40 "$out/share/runner.log" 2>/dev/null
    die "igt_runner left no results.json (logs in build/vm/$tag)"
fi
python3 "$here/report.py" "$out/share/results.json" "$here/testlist.txt" "$here/expectations.txt" \
    "$bat" || rc=1
if [[ $rc != 0 ]]; then cat "$out/guest.log"; fi
exit $rc
