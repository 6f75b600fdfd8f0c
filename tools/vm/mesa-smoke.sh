#!/bin/bash
# Stock Debian Mesa on the driver: boots the project kernel with virtio_intel.ko on the
# software host (strict) and runs the guest's unmodified `vulkaninfo --summary` and
# `eglinfo -B -p surfaceless`, with no Mesa environment variable set. Checks that ANV
# ("Intel open-source Mesa driver") and iris report the host GPU's device id, and that the
# host saw no hang and no page fault. Prints the tools' device lines and a closing
# "N passed, N failed"; exits non-zero on any failure.
# usage: tools/vm/mesa-smoke.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$REPO_ROOT/tools/kernel/env.sh"

need_root
find_cargo
export PATH=$KTOOLS/bin:$PATH
out=$REPO_ROOT/build/mesa
rm -rf "$out"; mkdir -p "$out/share"
O=$("$KDIR_SCRIPTS/build.sh") || die "kernel build failed"
build_driver "$O" "$out"
devid=${VIRTIO_INTEL_DEVICE_ID:-0x9a49}

# The guest prints each tool's output between markers; the checks run here.
guest_cmd='insmod /mnt/host/virtio_intel.ko || exit 10
echo "=== vulkaninfo"; timeout 400 vulkaninfo --summary 2>&1; echo "=== vulkaninfo rc=$?"
echo "=== eglinfo"; timeout 300 eglinfo -B -p surfaceless 2>&1; echo "=== eglinfo rc=$?"
rmmod virtio_intel'
rc=0
VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" --modprobe "" \
    --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/mesa" --timeout 900 \
    --append kunit.enable=0 --cmd "$guest_cmd" >"$out/run.log" 2>&1 || rc=$?
o=$REPO_ROOT/build/vm/mesa/output.log
h=$REPO_ROOT/build/vm/mesa/host.log
vk=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== vulkaninfo$/,/^=== vulkaninfo rc=/p')
egl=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== eglinfo$/,/^=== eglinfo rc=/p')

passed=0 failed=0
check() { # check NAME CONDITION-STATUS
    if [[ $2 == 0 ]]; then passed=$((passed + 1)); echo "ok: $1"
    else failed=$((failed + 1)); echo "FAILED: $1"; fi
}
# The ANV device block: vendor, device id and driver name of one GPU entry.
anv=$(awk '/^GPU[0-9]+:/{b=""} {b=b"\n"$0} /driverName *= Intel open-source Mesa driver/{print b}' <<<"$vk")
grep -E 'GPU[0-9]+:|deviceName|deviceID|vendorID|driverName|driverInfo' <<<"$anv" | sed 's/^/  /'
grep -iE 'renderer|version string' <<<"$egl" | sed 's/^/  /'
grep -q '=== vulkaninfo rc=0' <<<"$vk"; check "vulkaninfo --summary exits 0" $?
grep -qE "deviceID *= *$devid\$" <<<"$anv" && grep -qE 'vendorID *= *0x8086$' <<<"$anv"
check "vulkaninfo lists ANV on 8086:${devid#0x}" $?
grep -q '=== eglinfo rc=0' <<<"$egl"; check "eglinfo exits 0" $?
grep -qE 'OpenGL core profile renderer: Mesa Intel\(R\)' <<<"$egl"; check "eglinfo reports iris" $?
hangs=$(grep -cE 'GPU hang|GPU page fault' "$h" 2>/dev/null)
unknown=$(grep -c 'unknown command' "$h" 2>/dev/null)
echo "  host: ${hangs:-0} hang/fault line(s), first unknown commands logged: ${unknown:-0}"
[[ ${hangs:-1} == 0 ]]; check "no host hang or page fault" $?
[[ $rc == 0 ]]; check "runner: no kernel warning, protocol violation or timeout (rc=$rc)" $?
[[ $rc == 0 ]] || tail -n 30 "$out/run.log"
echo "mesa: $passed passed, $failed failed"
[[ $failed == 0 ]]
