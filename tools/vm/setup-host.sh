#!/bin/bash
# Install what the test rig needs on the outer (Debian 12 bookworm) machine.
# Idempotent: does nothing (no apt-get update) when everything is present.
# QEMU, Mesa, the guest kernel etc. are NOT installed here: they live in the
# sid tree (mk-sid-tree.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# package:command-it-provides
PKGS=(
    debootstrap:debootstrap       # builds the sid tree
    busybox-static:busybox        # the guest initramfs' userland
    cpio:cpio                     # packs the initramfs
    gzip:gzip
    xz-utils:xz                   # Debian's kernel modules are .ko.xz
    zstd:zstd                     # ... or .ko.zst
    util-linux:unshare            # private mount namespace for the chroot
    coreutils:timeout
    debian-archive-keyring:       # verifies sid's Release file
    ca-certificates:
    make:make
    gcc:cc                        # cargo needs a linker
    binutils:readelf              # checks that binaries are static
    libc6-dev:                    # static client build (crt-static)
    libvulkan-dev:                # the Vulkan smoke program (tools/mesa-smoke)
    libegl-dev:                   # the EGL smoke program's headers (tools/mesa-smoke)
    gcc-multilib:                 # ... and its 32-bit build
)

[[ -r /etc/debian_version ]] || die "this script expects a Debian machine"
case $(cat /etc/debian_version) in
    12.*|bookworm*) ;;
    *) log "warning: tested on Debian 12 (bookworm), this is $(cat /etc/debian_version)" ;;
esac

missing=()
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*} cmd=${entry#*:}
    if [[ -n $cmd ]]; then
        command -v "$cmd" >/dev/null 2>&1 && continue
    else
        dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && continue
    fi
    missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    need_root
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update || die "apt-get update failed (are Debian's mirrors reachable?)"
    apt-get -q -y install --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed"
fi

# Cargo is installed with rustup, not apt; say so clearly if it is absent.
find_cargo
log "host ready ($(cargo --version))"
