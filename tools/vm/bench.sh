#!/bin/bash
# Benchmark (not a test): the latency of one synchronous i915 GETPARAM round trip through
#  - virtio_intel.ko (the in-kernel translation), and
#  - the seed design: userspace ccmds over virtio_gpu's uAPI (virtio-intel-client),
# both on the project kernel (virtio_gpu is a module of it), switching drivers between
# two boots, in this same invocation on the same host library. Prints the medians, the
# 90th percentiles and the ratio. Under TCG the absolute numbers are emulation-bound; the
# ratio is what to compare between commits.
# usage: tools/vm/bench.sh [count]   (default 2000)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$REPO_ROOT/tools/kernel/env.sh"
need_root
find_cargo
export PATH=$KTOOLS/bin:$PATH
n=${1:-2000}
[[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || die "count must be a positive number"
out=$REPO_ROOT/build/bench
rm -rf "$out"; mkdir -p "$out/share"

"$VM_DIR/cargo.sh" host >/dev/null
"$VM_DIR/cargo.sh" client >/dev/null
O=$("$REPO_ROOT/tools/kernel/build.sh")
build_driver "$O" "$out"
# The kernel's own modules (virtio_gpu and what it needs), for modprobe in the guest.
"$REPO_ROOT/tools/kernel/build.sh" -- INSTALL_MOD_PATH="$out/mods" modules_install >/dev/null ||
    die "modules_install failed"
ls "$out"/mods/lib/modules/*/kernel/drivers/gpu/drm/virtio/virtio-gpu.ko >/dev/null 2>&1 ||
    die "the project kernel has no virtio-gpu.ko (CONFIG_DRM_VIRTIO_GPU=m in configs/virtio-intel.config)"
cp "$REPO_ROOT/tools/virtio-intel-client/target/release/virtio-intel-client" "$out/share/"
gcc -static -O2 -Wall -Werror -I"$O/usr-headers/include" -o "$out/share/getparam_bench" \
    "$REPO_ROOT/tools/bench/getparam_bench.c"

"$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" --modules "$out/mods" --modprobe virtio_gpu \
    --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/bench-vdrm" --append kunit.enable=0 \
    --cmd "/mnt/host/virtio-intel-client --bench $n" >/dev/null
"$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" --modprobe "" --renderer project \
    --share "$out/share" --logdir "$REPO_ROOT/build/vm/bench-kernel" --append kunit.enable=0 \
    --cmd "insmod /mnt/host/virtio_intel.ko && /mnt/host/getparam_bench $n && rmmod virtio_intel &&
           insmod /mnt/host/virtio_intel.ko fenced_ccmds=1 && echo '=== fenced_ccmds=1' &&
           /mnt/host/getparam_bench $n" >/dev/null

vdrm=$(grep -h '^bench getparam-vdrm' "$REPO_ROOT/build/vm/bench-vdrm/output.log" | tr -d '\r')
klog=$REPO_ROOT/build/vm/bench-kernel/output.log
# The unfenced (default) run, then the fenced one.
line() { sed '/^=== fenced_ccmds=1/,$d' "$klog" | grep -h "^bench $1:" | tr -d '\r'; }
unc=$(line getparam-uncached) cac=$(line getparam-cached) ver=$(line getparam-version)
fen=$(sed -n '/^=== fenced_ccmds=1/,$p' "$klog" | grep -h '^bench getparam-uncached:' | tr -d '\r')
[[ -n $vdrm && -n $unc && -n $cac && -n $ver && -n $fen ]] ||
    die "a benchmark printed nothing (logs in build/vm/bench-*)"
med() { awk '{print $4}' <<<"$1"; }
echo "GETPARAM round trip to the host (medians):"
echo "  seed design (userspace vdrm over virtio_gpu):    ${vdrm#bench getparam-vdrm: }"
echo "  virtio_intel.ko, HAS_GPU_RESET (uncached):       ${unc#bench getparam-uncached: }"
awk -v a="$(med "$vdrm")" -v b="$(med "$unc")" 'BEGIN { printf "  ratio virtio_intel / seed design: %.2f\n", b / a }'
echo "Synchronous ccmd, unfenced SUBMIT_3D (default) vs fenced on ring 0 (fenced_ccmds=1,"
echo "waiting for the DMA fence the fence workqueue signals):"
echo "  fenced:                                          ${fen#bench getparam-uncached: }"
awk -v u="$(med "$unc")" -v f="$(med "$fen")" 'BEGIN { printf "  ratio fenced / unfenced: %.2f\n", f / u }'
echo "Answers served by the driver:"
echo "  GETPARAM EU_TOTAL (cached):                      ${cac#bench getparam-cached: }"
echo "  DRM_IOCTL_VERSION (no-op):                       ${ver#bench getparam-version: }"
awk -v u="$(med "$unc")" -v c="$(med "$cac")" -v v="$(med "$ver")" 'BEGIN {
    printf "  uncached / cached: %.1fx; cached / no-op: %.2fx\n", u / c, c / v }'
echo "Throughput, threads sharing one fd:"
sed '/^=== fenced_ccmds=1/,$d' "$klog" | grep -h '^bench throughput-' | tr -d '\r' | sed 's/^bench /  /'
