#!/bin/bash
# Build the project's guest kernel: tinyconfig + configs/virtio-intel.config
# [+ configs/debug.config], LLVM=-19, out of tree.  Prints the build dir
# (O=) on stdout; the kernel is <O>/arch/x86/boot/bzImage.
#
# usage: build.sh [--debug] [-- MAKE-ARGS...]   (MAKE-ARGS default: all)
#
# Build dir: $VI_CACHE/kbuild-<source tree key>-<fragments key>[-debug].  The
# source tree key names the pristine source (fetch-source.sh); the work tree
# with the rust/ overlay stays at one path, so edits under rust/ rebuild
# incrementally in the same build dir.  Build dirs unused for 14 days are pruned.
set -euo pipefail
# shellcheck source=tools/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
# shellcheck source=tools/kernel/env.sh
. "$(dirname "$0")/env.sh"

debug=0 margs=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --debug) debug=1; shift ;;
        --) shift; margs=("$@"); break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown argument: $1 (usage: build.sh [--debug] [-- MAKE-ARGS...])" ;;
    esac
done
((${#margs[@]})) || margs=(all)
need_root

# --- toolchain -----------------------------------------------------------------
find_cargo
export PATH=$KTOOLS/bin:$PATH
hint="run 'make toolchain' (tools/kernel/setup-toolchain.sh)"
for t in clang-$KLLVM ld.lld-$KLLVM llvm-ar-$KLLVM flex bison bc rustc bindgen; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found; $hint"
done
[[ $(bindgen --version) == "bindgen $BINDGEN_VERSION" ]] || die "bindgen is not $BINDGEN_VERSION; $hint"
[[ -d $(rustc --print sysroot)/lib/rustlib/src/rust/library ]] || die "rust-src missing; $hint"
L=LLVM=-$KLLVM

exec 9>"$VI_CACHE/.kernel.lock"
flock -n 9 || { log "waiting for another kernel build/fetch to finish"; flock 9; }
export VI_KERNEL_LOCKED=1

# --- source ----------------------------------------------------------------------
src=$("$KDIR_SCRIPTS/fetch-source.sh")
tree_key=${src##*/ktree-}

frags=("$REPO_ROOT/configs/virtio-intel.config")
((debug)) && frags+=("$REPO_ROOT/configs/debug.config")
for f in "${frags[@]}"; do [[ -f $f ]] || die "missing config fragment $f"; done
O=$VI_CACHE/kbuild-$tree_key-$(content_key "${frags[@]}")
((debug)) && O+=-debug
mkdir -p "$O"
touch "$O/.virtio-intel-used"
for d in "$VI_CACHE"/kbuild-*/; do
    d=${d%/}
    [[ $d == "$O" ]] && continue
    [[ -n $(find "$d/.virtio-intel-used" -mtime -14 2>/dev/null) ]] || { log "pruning $d"; rm -rf "$d"; }
done
kmake() { nice -n 5 make -C "$src" O="$O" "$L" "$@"; }

# --- config: once per build dir (the dir is keyed by the fragments) ------------
if [[ ! -f $O/.virtio-intel-config || ! -f $O/.config ]]; then
    t=$SECONDS
    log "configuring $O"
    rm -f "$O/.virtio-intel-config"
    kmake -s tinyconfig >&2
    "$src/scripts/kconfig/merge_config.sh" -m -O "$O" "$O/.config" "${frags[@]}" >"$O/merge_config.log" 2>&1 ||
        { cat "$O/merge_config.log" >&2; die "merge_config.sh failed"; }
    kmake -s olddefconfig >&2
    log "config done in $((SECONDS - t)) s"
fi

# Every `=y` (and `=m`) line of the fragments must be in the final .config,
# and every `# ... is not set` must be off.
missing=()
while IFS= read -r line; do
    case $line in
        CONFIG_*=y) grep -qxF "$line" "$O/.config" || missing+=("$line") ;;
        CONFIG_*=m) grep -qxE "${line%=m}=[my]" "$O/.config" || missing+=("$line") ;;
        '# CONFIG_'*' is not set')
            sym=${line#\# }; sym=${sym%% *}
            grep -qE "^$sym=" "$O/.config" && missing+=("$line") ;;
    esac
done < <(cat "${frags[@]}")
if ((${#missing[@]})); then
    for m in "${missing[@]}"; do
        sym=${m#\# }; sym=${sym%%[= ]*}
        log "not in the final .config: $m (final: $(grep -E "^(# )?${sym}[= ]" "$O/.config" || echo absent))"
    done
    if [[ " ${missing[*]} " == *" CONFIG_RUST=y "* ]]; then
        log "CONFIG_RUST did not land; the kernel's own check says:"
        kmake rustavailable >&2 || true
    fi
    die "${#missing[@]} fragment line(s) did not land in $O/.config (unmet dependencies?)"
fi
touch "$O/.virtio-intel-config"

# A release string per build dir, so that a module built against another tree (the
# debug variant, another source or fragment set) is refused by insmod as a version
# mismatch instead of loading with a different struct layout.
lv=-vi-$(printf '%s' "${O##*/}" | sha256sum | cut -c1-12)
if ! grep -qxF "CONFIG_LOCALVERSION=\"$lv\"" "$O/.config"; then
    "$src/scripts/config" --file "$O/.config" --set-str LOCALVERSION "$lv" --disable LOCALVERSION_AUTO
    kmake -s olddefconfig >&2
fi

# --- build -------------------------------------------------------------------------
t=$SECONDS
log "make ${margs[*]} ($L, O=$O)"
kmake -j"$(nproc)" "${margs[@]}" >&2 || die "kernel build failed"
log "built in $((SECONDS - t)) s: $O/arch/x86/boot/bzImage ($(make -s -C "$src" O="$O" "$L" kernelrelease 2>/dev/null))"
echo "$O"
