#!/bin/bash
# The driver tests: build the project kernel (and its debug variant with --debug),
# virtio_intel.ko and the kselftests, boot the kernel under the software host, and run
# - the built-in Rust KUnit suites (at boot) and the driver's KUnit suites (at insmod),
# - the kselftests (tools/testing/selftests/drivers/gpu/virtio_intel),
# - rmmod, and with --debug a kmemleak scan (KASAN/lockdep/kmemleak reports fail the run).
# Prints one "N passed, N failed" line; exits non-zero on any failure.
# usage: tools/kernel/test-driver.sh [--debug]
set -uo pipefail
. "$(dirname "$0")/../vm/lib.sh"
. "$(dirname "$0")/env.sh"

debug=() tag=driver
if [[ ${1:-} == --debug ]]; then debug=(--debug) tag=driver-debug; fi
need_root
# The module build runs rustc and bindgen, like build.sh: put them on PATH.
find_cargo
export PATH=$KTOOLS/bin:$PATH
out=$REPO_ROOT/build/$tag
rm -rf "$out"; mkdir -p "$out/share"

O=$("$KDIR_SCRIPTS/build.sh" "${debug[@]}") || die "kernel build failed"
log "kernel: $O"
build_driver "$O" "$out"
ktree=$(sed -n 's/^KERNELSRC\s*:\?=\s*//p' "$O/Makefile" 2>/dev/null | head -n1)
[[ -n $ktree ]] || ktree=$(readlink -f "$O/source")
gcc -static -O2 -Wall -Werror -I"$O/usr-headers/include" -I"$ktree/tools/testing/selftests" \
    -o "$out/share/virtio_intel_test" \
    "$REPO_ROOT/tools/testing/selftests/drivers/gpu/virtio_intel/virtio_intel_test.c" ||
    die "the kselftest did not build"
# The same tests as a 32-bit process: GETPARAM through the compat ioctl, QUERY unchanged.
# (kselftest_harness.h casts pointers to uintmax_t, which warns on 32-bit.)
gcc -m32 -static -O2 -Wall -Werror -Wno-pointer-to-int-cast -D_FILE_OFFSET_BITS=64 -I"$O/usr-headers/include" -I"$ktree/tools/testing/selftests" \
    -o "$out/share/virtio_intel_test32" \
    "$REPO_ROOT/tools/testing/selftests/drivers/gpu/virtio_intel/virtio_intel_test.c" ||
    die "the 32-bit kselftest did not build"

guest_cmd='set -u
insmod /mnt/host/virtio_intel.ko || { echo "insmod failed"; exit 10; }
dmesg | grep -m1 "virtio_intel virtio.*native context"; ls /dev/dri
/mnt/host/virtio_intel_test; rc=$?
echo "=== 32-bit process"
/mnt/host/virtio_intel_test32 -f node || rc=$?
rmmod virtio_intel || { echo "rmmod failed"; rc=11; }
if [ -w /sys/kernel/debug/kmemleak ]; then
    echo scan > /sys/kernel/debug/kmemleak; sleep 6; echo scan > /sys/kernel/debug/kmemleak
    n=$(grep -c "unreferenced object" /sys/kernel/debug/kmemleak)
    echo "kmemleak: $n unreferenced object(s)"; cat /sys/kernel/debug/kmemleak | head -60
    [ "$n" = 0 ] || rc=12
fi
exit $rc'
rc=0
# The KUnit output at boot is larger than the default log buffer: keep all of it.
VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" --kernel "$O/arch/x86/boot/bzImage" --modprobe "" \
    --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/$tag" --timeout 600 \
    --append log_buf_len=4M \
    --cmd "$guest_cmd" 2>&1 | tee "$out/guest.log" || rc=$?

# short_boot NAME TIMEOUT CMD [--gpu DEVICE] [VAR=VALUE...]: one boot without KUnit, the
# host strict plus the given variables; guest output in build/vm/$tag-NAME, runner log in
# $out/NAME.log. Returns the runner's exit status.
short_boot() {
    local name=$1 timeout=$2 cmd=$3 qargs=()
    shift 3
    if [[ ${1:-} == --gpu ]]; then qargs=(--gpu "$2"); shift 2; fi
    env "$@" VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" -q --kernel "$O/arch/x86/boot/bzImage" \
        --modprobe "" --renderer project --share "$out/share" --logdir "$REPO_ROOT/build/vm/$tag-$name" \
        --append kunit.enable=0 --timeout "$timeout" "${qargs[@]}" --cmd "$cmd" >"$out/$name.log" 2>&1
}
# tap_counts FILE: "PASSED FAILED" of the kselftest lines in FILE (skips count neither).
tap_counts() {
    echo "$(grep -E '^ok [0-9]+ ' "$1" 2>/dev/null | grep -vc '# SKIP')" \
        "$(grep -cE '^not ok [0-9]+ ' "$1" 2>/dev/null)"
}

# Host faults: a rejected ccmd and a dropped response must each fail one call with
# -EIO (no hang), and the file must keep working. One short boot each.
fault_pass=0 fault_fail=0
for fault in reject:VIRTIO_INTEL_HOST_FAIL_CCMD drop:VIRTIO_INTEL_HOST_DROP_RSP; do
    kind=${fault%%:*} var=${fault#*:}
    frc=0
    short_boot "$kind" 120 \
        "insmod /mnt/host/virtio_intel.ko && VIRTIO_INTEL_FAULT=$kind /mnt/host/virtio_intel_test -t host_fault_is_eio" \
        "$var=1" || frc=$?
    if [[ $frc == 0 ]] && grep -q '^ok 1 global.host_fault_is_eio' "$REPO_ROOT/build/vm/$tag-$kind/output.log"; then
        fault_pass=$((fault_pass + 1)); echo "=== $tag: host fault '$kind': ok"
    else
        fault_fail=$((fault_fail + 1)); echo "=== $tag: host fault '$kind': FAILED (rc=$frc)"; cat "$out/$kind.log"
    fi
done

# Host refusals while making or mapping an object: the first ccmd (GEM_CREATE), the first
# GEM blob, the first map of a GEM blob.
for fault in create:VIRTIO_INTEL_HOST_FAIL_CCMD blob:VIRTIO_INTEL_HOST_FAIL_BLOB map:VIRTIO_INTEL_HOST_FAIL_MAP; do
    kind=${fault%%:*} var=${fault#*:} frc=0
    short_boot "gem-$kind" 300 \
        "insmod /mnt/host/virtio_intel.ko && VIRTIO_INTEL_FAULT=$kind /mnt/host/virtio_intel_test -t gem_host_refuses && rmmod virtio_intel" \
        "$var=1" || frc=$?
    if [[ $frc == 0 ]] && grep -qE '^ok 1 global.gem_host_refuses[[:space:]]*$' "$REPO_ROOT/build/vm/$tag-gem-$kind/output.log"; then
        fault_pass=$((fault_pass + 1)); echo "=== $tag: host refuses '$kind': ok"
    else
        fault_fail=$((fault_fail + 1)); echo "=== $tag: host refuses '$kind': FAILED (rc=$frc)"; cat "$out/gem-$kind.log"
    fi
done

# The host refusing an execbuffer the guest validated and sent without waiting: its
# out-fence fails with the host's errno.
frc=0
short_boot exec-refused 120 \
    "insmod /mnt/host/virtio_intel.ko && VIRTIO_INTEL_FAULT=exec /mnt/host/virtio_intel_test -t exec_host_refuses && rmmod virtio_intel" \
    VIRTIO_INTEL_HOST_FAIL_EXEC=1 || frc=$?
if [[ $frc == 0 ]] && grep -qE '^ok 1 global.exec_host_refuses[[:space:]]*$' "$REPO_ROOT/build/vm/$tag-exec-refused/output.log"; then
    fault_pass=$((fault_pass + 1)); echo "=== $tag: host refuses an unwaited execbuffer: ok"
else
    fault_fail=$((fault_fail + 1)); echo "=== $tag: host refuses an unwaited execbuffer: FAILED (rc=$frc)"; cat "$out/exec-refused.log"
fi

# The fence event path: the module with fenced_ccmds=1, where every synchronous ccmd waits
# for a DMA fence signalled from the fence workqueue. The node fixture (which checks the
# fence counters), the interruption tests and unbinding under load, one short boot.
frc=0
short_boot fenced 300 \
    "insmod /mnt/host/virtio_intel.ko fenced_ccmds=1 && /mnt/host/virtio_intel_test -f node -t signal_storm_leaks_nothing -t killed_process_leaks_nothing -t hammer_while_rebinding && rmmod virtio_intel" ||
    frc=$?
fenced_log=$REPO_ROOT/build/vm/$tag-fenced/output.log
read -r fenced_pass fenced_fail < <(tap_counts "$fenced_log")
grep -qE '^ok [0-9]+ node.fenced_ccmds_signal_their_fences' "$fenced_log" 2>/dev/null ||
    { echo "the fence path test did not pass"; fenced_fail=$((fenced_fail + 1)); }
if [[ $frc != 0 ]]; then
    fenced_fail=$((fenced_fail + 1)); echo "=== $tag: fenced ccmds: FAILED (rc=$frc)"; cat "$out/fenced.log"
fi

# Window eviction: a 64 MiB host-visible window and twice as many mapped objects as fit.
wrc=0
short_boot window 600 \
    "insmod /mnt/host/virtio_intel.ko && VIRTIO_INTEL_WINDOW_MB=64 /mnt/host/virtio_intel_test -t gem_window_eviction && rmmod virtio_intel" \
    --gpu virtio-gpu-gl-pci,drm_native_context=on,blob=on,hostmem=64M || wrc=$?
read -r window_pass window_fail < <(tap_counts "$REPO_ROOT/build/vm/$tag-window/output.log")
[[ $window_pass == 1 ]] || { echo "the eviction test did not pass"; window_fail=$((window_fail + 1)); }
if [[ $wrc != 0 ]]; then
    window_fail=$((window_fail + 1)); echo "=== $tag: window eviction: FAILED (rc=$wrc)"; cat "$out/window.log"
fi
# Hot-unplug: the PCI core removes the virtio-pci function under its rescan lock, then a
# rescan adds it back (a 64 MiB host-visible BAR, which fits again), then rmmod.
urc=0
short_boot unplug 300 \
    "insmod /mnt/host/virtio_intel.ko && VIRTIO_INTEL_DESTRUCTIVE=1 /mnt/host/virtio_intel_test -t virtio_pci_remove_and_rescan && rmmod virtio_intel" \
    --gpu virtio-gpu-gl-pci,drm_native_context=on,blob=on,hostmem=64M || urc=$?
read -r unplug_pass unplug_fail < <(tap_counts "$REPO_ROOT/build/vm/$tag-unplug/output.log")
[[ $unplug_pass == 1 ]] || { echo "the hot-unplug test did not pass"; unplug_fail=$((unplug_fail + 1)); }
if [[ $urc != 0 ]]; then
    unplug_fail=$((unplug_fail + 1)); echo "=== $tag: hot-unplug: FAILED (rc=$urc)"; cat "$out/unplug.log"
fi

# Tally: kselftest lines of the guest output, KUnit test lines of the guest kernel log.
dmesg=$REPO_ROOT/build/vm/$tag/ctl/dmesg.txt
outlog=$REPO_ROOT/build/vm/$tag/output.log
read -r ks_pass ks_fail < <(tap_counts "$outlog")
ku_pass=$(grep -E '^ +ok [0-9]+ ' "$dmesg" 2>/dev/null | grep -vc '# SKIP')
ku_fail=$(grep -cE '^ *not ok [0-9]+ ' "$dmesg" 2>/dev/null)
for suite in rust_virtio rust_capability rust_completion_waits rust_dma_fence rust_workqueue_owned \
    virtio_intel_protocol virtio_intel_ccmd virtio_intel_hostmem virtio_intel_getparam virtio_intel_query \
    virtio_intel_file virtio_intel_context virtio_intel_fence virtio_intel_debugfs virtio_intel_gem_create; do
    grep -qE "^ok [0-9]+ $suite\$" "$dmesg" 2>/dev/null || { echo "KUnit suite $suite did not pass"; ku_fail=$((ku_fail + 1)); }
done
[[ $ks_pass -gt 0 ]] || { echo "no kselftest ran"; ks_fail=$((ks_fail + 1)); }
passed=$((ks_pass + ku_pass + fault_pass + fenced_pass + window_pass + unplug_pass))
failed=$((ks_fail + ku_fail + fault_fail + fenced_fail + window_fail + unplug_fail))
if [[ $rc == 0 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "=== $tag: kselftests $ks_pass passed, $ks_fail failed; KUnit $ku_pass passed, $ku_fail failed;" \
    "fenced ccmds $fenced_pass passed, $fenced_fail failed; window $window_pass passed, $window_fail failed; hot-unplug $unplug_pass passed, $unplug_fail failed; runner rc=$rc"
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
