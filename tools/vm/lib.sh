# Shared helpers for the tools/vm scripts.  Source it; do not execute it.
# shellcheck shell=bash disable=SC2034

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$VM_DIR/../.." && pwd)
# Everything that is expensive to build (sid tree, initramfs, .deb files) lives here.
VI_CACHE=${VIRTIO_INTEL_CACHE:-/var/cache/virtio-intel}
VI_MIRROR=${VIRTIO_INTEL_MIRROR:-http://deb.debian.org/debian}

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${0##*/}" "$*" >&2; exit 1; }

need_root() {
    [[ $(id -u) == 0 ]] || die "must run as root (debootstrap, chroot and mount need it)"
}

# need_cmd CMD [PACKAGE]: fail early and say which package provides a missing tool.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 ||
        die "'$1' not found; run tools/vm/setup-host.sh (or apt-get install ${2:-$1})"
}

# Make cargo findable: CI shells often lack ~/.cargo/bin in PATH.
find_cargo() {
    local d
    for d in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        [[ -x $d/cargo ]] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
    done
    export PATH
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found (install Rust with rustup; expected ~/.cargo/bin/cargo)"
}

# Cache keys: sha256 over the contents (not the names) of the given files,
# first 16 hex digits.
content_key() {
    local f
    for f in "$@"; do sha256sum <"$f"; done | sha256sum | cut -c1-16
}
