# Shared settings of the tools/kernel scripts.  Source it after tools/vm/lib.sh.
# shellcheck shell=bash disable=SC2034

KDIR_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# LLVM major for C (clang/lld/llvm from bookworm main) and for bindgen's libclang.
KLLVM=19
export LIBCLANG_PATH=/usr/lib/llvm-$KLLVM/lib
BINDGEN_VERSION=0.73.2
# bindgen and other tools built for the kernel build.
KTOOLS=$VI_CACHE/tools
