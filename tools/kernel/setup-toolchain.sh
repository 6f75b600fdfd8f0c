#!/bin/bash
# Install (idempotently) what building the project's Rust-enabled guest kernel
# needs: clang/lld/llvm 19 + libclang 19 from bookworm main, the usual kernel
# build tools, bindgen-cli from crates.io (pinned), and rustup's rust-src.
# See tools/kernel/README.md.  Run as root.
set -euo pipefail
# shellcheck source=tools/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
# shellcheck source=tools/kernel/env.sh
. "$(dirname "$0")/env.sh"

need_root

# --- Debian packages (major versions pinned by package name) -----------------
PKGS=("clang-$KLLVM" "lld-$KLLVM" "llvm-$KLLVM" "libclang-$KLLVM-dev"
      flex bison bc libelf-dev libssl-dev cpio kmod rsync dwarves make gcc libc6-dev
      python3 xz-utils gcc-multilib)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" ||
        { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } ||
        die "apt-get install failed for: ${missing[*]}"
fi
for t in clang-$KLLVM ld.lld-$KLLVM llvm-ar-$KLLVM flex bison bc pahole rsync cpio; do
    need_cmd "$t"
done
printf 'int main(void) { return 0; }\n' | gcc -m32 -static -x c - -o /dev/null 2>/dev/null ||
    die "gcc -m32 -static does not work (gcc-multilib): needed for the 32-bit kselftest"
[[ -f $LIBCLANG_PATH/libclang.so ]] || die "libclang not found in $LIBCLANG_PATH (libclang-$KLLVM-dev)"

# --- Rust: rustc/cargo from rustup, rust-src, bindgen-cli ---------------------
find_cargo
command -v rustup >/dev/null 2>&1 || die "rustup not found (expected in ~/.cargo/bin)"
command -v rustc >/dev/null 2>&1 || die "rustc not found"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    log "adding the rust-src component"
    rustup component add rust-src ||
        die "rust-src is missing and 'rustup component add rust-src' failed (the kernel needs it)"
fi
src=$(rustc --print sysroot)/lib/rustlib/src/rust/library/core/src/lib.rs
[[ -f $src ]] || die "rust-src looks broken: no $src"

bindgen=$KTOOLS/bin/bindgen
if [[ -x $bindgen ]] && [[ $("$bindgen" --version 2>/dev/null) == "bindgen $BINDGEN_VERSION" ]]; then
    :
else
    log "cargo install bindgen-cli $BINDGEN_VERSION into $KTOOLS (about a minute)"
    mkdir -p "$KTOOLS"
    cargo install --locked bindgen-cli --version "$BINDGEN_VERSION" --root "$KTOOLS" ||
        die "cargo install bindgen-cli $BINDGEN_VERSION failed"
    [[ $("$bindgen" --version) == "bindgen $BINDGEN_VERSION" ]] ||
        die "$bindgen does not report version $BINDGEN_VERSION"
fi

# --- the kernel's own check ----------------------------------------------------
log "clang: $("clang-$KLLVM" --version | head -n1)"
log "rustc: $(rustc --version); bindgen: $("$bindgen" --version)"
log "toolchain ready (use: LLVM=-$KLLVM, LIBCLANG_PATH=$LIBCLANG_PATH, PATH+=$KTOOLS/bin)"
