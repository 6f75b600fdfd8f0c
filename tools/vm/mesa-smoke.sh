#!/bin/bash
# Stock Debian Mesa on the driver: boots the project kernel with virtio_intel.ko on the
# software host (strict) and runs the guest's unmodified `vulkaninfo --summary`,
# `eglinfo -B -p surfaceless` (64- and 32-bit) and `vkmark --winsys headless` (its default
# scenes) and the project's own Vulkan and EGL programs (tools/mesa-smoke/vk_smoke.c,
# gl_smoke.c, the latter also as a 32-bit binary), with no Mesa environment variable set;
# then weston (headless backend, GL renderer) with weston-simple-egl and vkcube (Wayland
# WSI) as clients. Checks that ANV ("Intel open-source Mesa
# driver") and iris report the host GPU's device id, that vkmark runs to its score, and
# that the host saw no hang, no page fault and no command its command streamer did not know
# (naming each unknown kind if it did). Prints the tools' device lines, the vkmark
# score and a closing "N passed, N failed"; exits non-zero on any failure.
# usage: tools/vm/mesa-smoke.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"
. "$REPO_ROOT/tools/kernel/env.sh"

need_root
find_cargo
export PATH=$KTOOLS/bin:$PATH
out=$REPO_ROOT/build/mesa
rm -rf "$out"; mkdir -p "$out/share"
"$VM_DIR/cargo.sh" host >/dev/null || die "the software host library did not build"
O=$("$KDIR_SCRIPTS/build.sh") || die "kernel build failed"
build_driver "$O" "$out"
# Our own Vulkan smoke program (dynamically linked against the guest's libvulkan).
gcc -O2 -Wall -Werror -o "$out/share/vk_smoke" "$REPO_ROOT/tools/mesa-smoke/vk_smoke.c" -lvulkan ||
    die "tools/mesa-smoke/vk_smoke.c did not build (libvulkan-dev: make setup)"
# The EGL one loads libEGL at run time: 64- and 32-bit builds need only the EGL headers.
for bits in 64 32; do
    gcc -m$bits -O2 -Wall -Werror -o "$out/share/gl_smoke$bits" "$REPO_ROOT/tools/mesa-smoke/gl_smoke.c" -ldl ||
        die "tools/mesa-smoke/gl_smoke.c did not build for $bits bits (libegl-dev, gcc-multilib: make setup)"
done
devid=${VIRTIO_INTEL_DEVICE_ID:-0x9a49}

# The guest prints each tool's output between markers; the checks run here.
guest_cmd='insmod /mnt/host/virtio_intel.ko || exit 10
echo "=== vulkaninfo"; timeout 400 vulkaninfo --summary 2>&1; echo "=== vulkaninfo rc=$?"
echo "=== eglinfo"; timeout 300 eglinfo -B -p surfaceless 2>&1; echo "=== eglinfo rc=$?"
echo "=== eglinfo32"; timeout 300 /usr/bin/eglinfo.i386-linux-gnu -B -p surfaceless 2>&1; echo "=== eglinfo32 rc=$?"
echo "=== vk_smoke"; timeout 300 /mnt/host/vk_smoke 2>&1; echo "=== vk_smoke rc=$?"
echo "=== gl_smoke64"; timeout 300 /mnt/host/gl_smoke64 2>&1; echo "=== gl_smoke64 rc=$?"
echo "=== gl_smoke32"; timeout 300 /mnt/host/gl_smoke32 2>&1; echo "=== gl_smoke32 rc=$?"
# vkmark as an unprivileged user, as people run it (with the render node open to users, as
# udev makes it): GET_RESET_STATS of a root caller carries the global reset count, which
# only the host knows, so root pays a host round trip per call.
chmod 0666 /dev/dri/renderD128
echo "=== vkmark"; HOME=/tmp timeout 600 setpriv --reuid=65534 --regid=65534 --clear-groups vkmark --winsys headless 2>&1; echo "=== vkmark rc=$?"
echo "=== weston"
export XDG_RUNTIME_DIR=/tmp/xdg; mkdir -p -m 0700 $XDG_RUNTIME_DIR
weston --backend=headless --renderer=gl --socket=wl-vi --idle-time=0 >/tmp/weston.log 2>&1 &
w=$!
i=0; while [ ! -S $XDG_RUNTIME_DIR/wl-vi ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
# --foreground: SIGINT to simple-egl only (timeout also signals its process group
# otherwise, and the handler of simple-egl takes one SIGINT).
WAYLAND_DISPLAY=wl-vi timeout --foreground --preserve-status -s INT 16 stdbuf -oL weston-simple-egl 2>&1
echo "=== simple-egl rc=$?"
WAYLAND_DISPLAY=wl-vi timeout 300 vkcube --wsi wayland --c 30 2>&1; echo "=== vkcube rc=$?"
kill $w; wait $w; echo "=== weston rc=$?"
grep -iE "renderer|error|fail" /tmp/weston.log | head -20
echo "=== weston done"
rmmod virtio_intel'
rc=0
VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" --modprobe "" \
    --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/mesa" --timeout 1800 \
    --append kunit.enable=0 --cmd "$guest_cmd" >"$out/run.log" 2>&1 || rc=$?
o=$REPO_ROOT/build/vm/mesa/output.log
h=$REPO_ROOT/build/vm/mesa/host.log
vk=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== vulkaninfo$/,/^=== vulkaninfo rc=/p')
egl=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== eglinfo$/,/^=== eglinfo rc=/p')
egl32=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== eglinfo32$/,/^=== eglinfo32 rc=/p')
vkm=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== vkmark$/,/^=== vkmark rc=/p')
vks=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== vk_smoke$/,/^=== vk_smoke rc=/p')
wst=$(tr -d '\r' <"$o" 2>/dev/null | sed -n '/^=== weston$/,/^=== weston done/p')

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
grep -E 'OpenGL core profile renderer' <<<"$egl32" | sed 's/^/  32-bit: /'
grep -q '=== eglinfo32 rc=0' <<<"$egl32" &&
    grep -qE 'OpenGL core profile renderer: Mesa Intel\(R\)' <<<"$egl32"
check "32-bit eglinfo reports iris" $?
grep '^vk_smoke:' <<<"$vks" | sed 's/^/  /'
grep -q '=== vk_smoke rc=0' <<<"$vks" && grep -q '^vk_smoke: passed' <<<"$vks"
check "vk_smoke: timestamps, an event, a GPU copy and a timeline semaphore" $?
for bits in 64 32; do
    gls=$(tr -d '\r' <"$o" 2>/dev/null | sed -n "/^=== gl_smoke$bits\$/,/^=== gl_smoke$bits rc=/p")
    grep '^gl_smoke:' <<<"$gls" | sed "s/^/  $bits-bit /"
    grep -q "=== gl_smoke$bits rc=0" <<<"$gls" && grep -q '^gl_smoke: passed' <<<"$gls"
    check "gl_smoke ($bits-bit): iris timestamps, REG_READ, a fence sync and a sync_file" $?
done
grep -E '^\[|Score' <<<"$vkm" | sed 's/^/  vkmark /'
grep -q '=== vkmark rc=0' <<<"$vkm" && grep -qE 'vkmark Score: [0-9]+' <<<"$vkm"
check "vkmark --winsys headless runs its scenes to the score" $?
grep -E 'frames in|GL renderer|=== (simple-egl|vkcube) rc' <<<"$wst" | sed 's/^/  weston: /'
grep -q '=== simple-egl rc=0' <<<"$wst" && grep -qE '^[1-9][0-9]* frames in' <<<"$wst"
check "weston (headless, GL renderer) with weston-simple-egl drawing frames" $?
grep -q '=== vkcube rc=0' <<<"$wst"; check "vkcube on weston (Wayland WSI) runs 30 frames" $?
hangs=$(grep -cE 'GPU hang|GPU page fault' "$h" 2>/dev/null)
unknown=$(grep -oE '[0-9]+ unknown command\(s\) so far' "$h" 2>/dev/null | tail -n1 | cut -d' ' -f1)
echo "  host: ${hangs:-0} hang/fault line(s), ${unknown:-?} unknown command(s)"
grep -oE 'unknown command header 0x[0-9a-f]+' "$h" | sed 's/^.*header /  host: unknown /' | sort -u | tr '\n' ' '
echo
[[ ${hangs:-1} == 0 ]]; check "no host hang or page fault" $?
# Every command Mesa sends is in the host's length table: an unknown one would be skipped by
# its type's length rule only, and its effect (if any) would be missing.
[[ ${unknown:-x} == 0 ]]; check "the host's command streamer knew every command Mesa sent" $?
[[ $rc == 0 ]]; check "runner: no kernel warning, protocol violation or timeout (rc=$rc)" $?
[[ $rc == 0 ]] || tail -n 30 "$out/run.log"
echo "mesa: $passed passed, $failed failed"
[[ $failed == 0 ]]
