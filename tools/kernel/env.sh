# Shared settings of the tools/kernel scripts.  Source it after tools/vm/lib.sh.
# shellcheck shell=bash disable=SC2034

KDIR_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# LLVM major for C (clang/lld/llvm from bookworm main) and for bindgen's libclang.
KLLVM=19
export LIBCLANG_PATH=/usr/lib/llvm-$KLLVM/lib
BINDGEN_VERSION=0.73.2
# bindgen and other tools built for the kernel build.
KTOOLS=$VI_CACHE/tools

# build_driver O OUT: builds virtio_intel.ko against the kernel build dir O, with its objects
# in OUT/module (MO=; the source tree stays clean) and the log in OUT/module.log, copies it
# to OUT/share/, and installs O's uAPI headers into O/usr-headers for userspace tests. It
# holds the kernel build lock, so no other build changes O under it.
build_driver() {
    local o=$1 out=$2
    mkdir -p "$out/module" "$out/share"
    (
        flock 9
        make -s -C "$o" M="$REPO_ROOT/drivers/gpu/drm/virtio_intel" MO="$out/module" LLVM=-$KLLVM \
            modules >"$out/module.log" 2>&1 || { cat "$out/module.log"; exit 1; }
        cp "$out/module/virtio_intel.ko" "$out/share/" || exit 1
        make -s -C "$o" LLVM=-$KLLVM headers_install INSTALL_HDR_PATH="$o/usr-headers" >/dev/null 2>&1 || exit 2
    ) 9>"$VI_CACHE/.kernel.lock"
    case $? in
        0) ;;
        2) die "headers_install failed" ;;
        *) die "virtio_intel.ko did not build" ;;
    esac
}
