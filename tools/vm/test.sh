#!/bin/bash
# `make test`: host-library unit tests, client unit tests, then the client in
# a guest on the project's host library (strict mode).  Every step adds to one
# tally; the last line printed is "N passed, N failed".
# Prerequisites (setup, sid tree) are made by the Makefile.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

passed=0 failed=0
out=$REPO_ROOT/build/test
mkdir -p "$out"

# tally_cargo LOG: add up cargo's "test result: ... N passed; M failed" lines.
tally_cargo() {
    local p f
    read -r p f < <(grep -E '^test result:' "$1" |
        sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' |
        awk '{p+=$1; f+=$2} END {print p+0, f+0}')
    passed=$((passed + p)) failed=$((failed + f))
    echo "$p passed, $f failed"
}

# cargo_step NAME: run a cargo.sh step; a failure without test results (build
# error, missing crate) counts as one failed test.
cargo_step() {
    local name=$1 log=$out/$1.log rc=0
    echo "=== $name"
    "$VM_DIR/cargo.sh" "$name" 2>&1 | tee "$log" || rc=$?
    if [[ $name == *-test ]] && grep -qE '^test result:' "$log"; then
        echo -n "=== $name: "; tally_cargo "$log"
        if [[ $rc != 0 ]] && ! grep -qE '^test result: FAILED' "$log"; then
            failed=$((failed + 1)); echo "=== $name: cargo failed (rc=$rc) outside the tests"
        fi
    elif [[ $rc != 0 ]]; then
        failed=$((failed + 1)); echo "=== $name: FAILED (rc=$rc), see $log"
    fi
    return $rc
}

cargo_step host-test
cargo_step client-test
built=1
cargo_step host || built=0
cargo_step client || built=0

echo "=== guest: virtio-intel-client on the project's host library (strict)"
if ((built)); then
    # Only the client binary is shared into the guest (at /mnt/host).
    share=$out/share
    rm -rf "$share"; mkdir -p "$share"
    cp "$REPO_ROOT/tools/virtio-intel-client/target/release/virtio-intel-client" "$share/"
    rc=0
    VIRTIO_INTEL_HOST_STRICT=1 "$VM_DIR/run-guest.sh" --renderer project --share "$share" \
        --logdir "$REPO_ROOT/build/vm/test-client" --timeout "${GUEST_TIMEOUT:-600}" \
        --cmd "/mnt/host/virtio-intel-client ${CLIENT_ARGS:-}" 2>&1 | tee "$out/guest.log" || rc=$?
    # The client prints its own "N passed, N failed"; the runner's checks
    # (kernel warnings, protocol violations, exit marker) count as one more test.
    line=$(tr -d '\r' <"$REPO_ROOT/build/vm/test-client/output.log" 2>/dev/null |
           grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n1)
    if [[ -n $line ]]; then
        read -r p _ f _ <<<"${line//,/}"
        passed=$((passed + p)) failed=$((failed + f))
    fi
    if [[ $rc == 0 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    echo "=== guest: runner rc=$rc${line:+, client: $line}"
else
    failed=$((failed + 1))
    echo "=== guest: skipped, the host library or the client did not build"
fi

# The kernel driver on the project kernel: KUnit, kselftests, unbind/rmmod; then the
# same on the debug kernel (KASAN, lockdep, kmemleak).
for variant in "" --debug; do
    name=driver${variant:+-debug}
    echo "=== $name: project kernel + virtio_intel.ko"
    rc=0
    "$REPO_ROOT/tools/kernel/test-driver.sh" $variant 2>&1 | tee "$out/$name.log" || rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/$name.log" | tail -n1)
    if [[ -n $line ]]; then
        read -r p _ f _ <<<"${line//,/}"
        passed=$((passed + p)) failed=$((failed + f))
    elif [[ $rc != 0 ]]; then
        failed=$((failed + 1)); echo "=== $name: FAILED before any test ran (rc=$rc)"
    fi
done

# Stock Debian Mesa (vulkaninfo, eglinfo) on the driver: ANV and iris find the Intel GPU.
echo "=== mesa: unmodified Mesa on virtio_intel.ko (tools/vm/mesa-smoke.sh)"
rc=0
"$VM_DIR/mesa-smoke.sh" 2>&1 | tee "$out/mesa.log" || rc=$?
line=$(grep -E '^mesa: [0-9]+ passed, [0-9]+ failed$' "$out/mesa.log" | tail -n1)
if [[ -n $line ]]; then
    read -r _ p _ f _ <<<"${line//,/}"
    passed=$((passed + p)) failed=$((failed + f))
else
    failed=$((failed + 1)); echo "=== mesa: FAILED before any check (rc=$rc)"
fi

# IGT, unmodified, on the project kernel: its passes count; results that differ from
# tools/igt/expectations.txt fail (expected failures, each with its reason, count neither).
echo "=== igt: IGT against virtio_intel.ko (tools/igt)"
rc=0
"$REPO_ROOT/tools/igt/igt.sh" 2>&1 | tee "$out/igt.log" || rc=$?
line=$(grep -E '^igt: [0-9]+ of [0-9]+ passed; [0-9]+ as expected, [0-9]+ not$' "$out/igt.log" | tail -n1)
if [[ -n $line ]]; then
    read -r _ p _ _ _ _ _ _ b _ <<<"${line//[;,]/}"
    passed=$((passed + p)) failed=$((failed + b))
    [[ $rc == 0 || $b != 0 ]] || { failed=$((failed + 1)); echo "=== igt: the run failed (rc=$rc)"; }
else
    failed=$((failed + 1)); echo "=== igt: FAILED before any result (rc=$rc)"
fi

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
