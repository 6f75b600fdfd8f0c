#!/bin/bash
# Cargo steps of the Makefile, with clear failures when a crate is not there yet.
# usage: cargo.sh host|client|host-test|client-test [CARGO ARGS...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

step=${1:?usage: cargo.sh host|client|host-test|client-test}; shift
case $step in
    host|host-test) crate=$REPO_ROOT/tools/virtio-intel-host ;;
    client|client-test) crate=$REPO_ROOT/tools/virtio-intel-client ;;
    *) die "unknown step $step" ;;
esac
[[ -f $crate/Cargo.toml ]] || die "${crate#$REPO_ROOT/} has no Cargo.toml yet: nothing to build"
find_cargo
cd "$crate"
case $step in
    host)
        cargo build --release "$@"
        # QEMU loads it by its soname through LD_LIBRARY_PATH.
        cp -f target/release/libvirtio_intel_host.so target/release/libvirglrenderer.so.1
        log "built ${crate#$REPO_ROOT/}/target/release/libvirglrenderer.so.1" ;;
    client)
        # Static, so it runs in any guest root without matching libraries.
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --release "$@"
        bin=target/release/virtio-intel-client
        [[ -x $bin ]] || die "cargo did not produce $bin"
        [[ $(readelf -l "$bin") == *INTERP* ]] && die "$bin is not statically linked"
        log "built ${crate#$REPO_ROOT/}/$bin (static)" ;;
    host-test|client-test)
        cargo test "$@" ;;
esac
