#!/bin/bash
# Fetch Debian's linux-source-7.3 (pinned version and SHA256), unpack it once
# into a pristine tree, and keep a work tree = pristine + the repo's rust/
# overlay + patches/*.patch.  Prints the work tree's path on stdout.
#
# usage: fetch-source.sh [--pristine]     (--pristine: print the pristine tree)
#
# Cache layout ($VI_CACHE = /var/cache/virtio-intel):
#   debs/linux-source-7.3_<ver>_all.deb       the verified .deb
#   linux-7.3.4-<sha12>/                       pristine tree, keyed by the .deb's
#                                              SHA256; created atomically, never edited
#   ktree-7.3.4-<sha12>/                       the work tree.  One per pristine tree, so
#                                              that a build dir stays valid across
#                                              edits of rust/ (incremental builds);
#                                              .virtio-intel-overlay holds the key of
#                                              the rust/ + patches/ content applied
set -euo pipefail
# shellcheck source=tools/vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
# shellcheck source=tools/kernel/env.sh
. "$(dirname "$0")/env.sh"

PKG=linux-source-7.3
VERSION=7.3.4-1~bpo13+1
SUITE=trixie-backports
# Observed 2026-11-24; equal to the SHA256 field of linux-source-7.3 in
# dists/trixie-backports/main/binary-amd64/Packages.xz, whose hash matched the
# InRelease signed by "Debian Archive Automatic Signing Key (13/trixie)".
SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
SIZE=166780612
UPSTREAM=7.3.4

print=work
case ${1:-} in
    --pristine) print=pristine ;;
    '') ;;
    *) die "usage: fetch-source.sh [--pristine]" ;;
esac
need_root
need_cmd dpkg-deb dpkg
need_cmd rsync rsync
need_cmd patch patch
mkdir -p "$VI_CACHE/debs"
# One lock for the kernel trees and builds (build.sh holds it across its run).
if [[ -z ${VI_KERNEL_LOCKED:-} ]]; then
    exec 9>"$VI_CACHE/.kernel.lock"
    flock 9
fi

short=${SHA256:0:12}
deb=$VI_CACHE/debs/${PKG}_${VERSION}_all.deb
pristine=$VI_CACHE/linux-$UPSTREAM-$short
work=$VI_CACHE/ktree-$UPSTREAM-$short

# --- 1. the .deb ---------------------------------------------------------------
verify() { [[ -f $1 ]] && [[ $(sha256sum <"$1" | cut -d' ' -f1) == "$SHA256" ]]; }
download() { # into $1: apt (signed index) first, the pool URL as fallback
    local d=$1 a=$1/apt
    mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $VI_MIRROR $SUITE main" >"$a/sources.list"
    local opts=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=-
                -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache"
                -o APT::Architectures::=amd64 -o Debug::NoLocking=1
                -o APT::Sandbox::User=root -q)
    if apt-get "${opts[@]}" update >&2 &&
       (cd "$d" && apt-get "${opts[@]}" download "$PKG=$VERSION" >&2); then
        mv "$d"/"${PKG}"_*_all.deb "$d/pkg.deb" 2>/dev/null && return 0
    fi
    log "apt-get download failed; trying the pool URL"
    need_cmd curl curl
    curl -fSL --retry 3 -o "$d/pkg.deb" \
        "$VI_MIRROR/pool/main/l/linux/${PKG}_${VERSION//\~/%7E}_all.deb" >&2
}
if ! verify "$deb"; then
    log "downloading $PKG $VERSION ($((SIZE / 1048576)) MiB) from $SUITE"
    tmpd=$(mktemp -d "$VI_CACHE/debs/.dl.XXXXXX")
    trap 'rm -rf "$tmpd"' EXIT
    download "$tmpd" || die "could not download $PKG $VERSION"
    got=$(sha256sum <"$tmpd/pkg.deb" | cut -d' ' -f1)
    [[ $got == "$SHA256" ]] || die "SHA256 mismatch for $PKG $VERSION: got $got, pinned $SHA256"
    mv -f "$tmpd/pkg.deb" "$deb"
    rm -rf "$tmpd"; trap - EXIT
fi

# --- 2. the pristine tree (atomic: unpack elsewhere, rename) -------------------
if [[ ! -f $pristine/Makefile ]]; then
    log "unpacking into $pristine"
    tmpu=$(mktemp -d "$VI_CACHE/.unpack-linux.XXXXXX")
    trap 'rm -rf "$tmpu"' EXIT
    dpkg-deb -x "$deb" "$tmpu/deb"
    tarball=$(ls "$tmpu"/deb/usr/src/linux-source-*.tar.*) || die "no source tarball in $deb"
    tar -C "$tmpu" -xf "$tarball"
    src=$tmpu/${PKG}
    [[ -f $src/Makefile && -d $src/rust/kernel ]] || die "unexpected tarball layout in $tarball"
    v=$(make -s -C "$src" kernelversion)
    [[ $v == "$UPSTREAM" ]] || die "tarball has kernel $v, expected $UPSTREAM"
    rm -rf "$pristine"
    mv "$src" "$pristine"
    rm -rf "$tmpu"; trap - EXIT
fi
if [[ $print == pristine ]]; then echo "$pristine"; exit 0; fi

# --- 3. the work tree: pristine + rust/ overlay + patches ----------------------
# Key of what gets applied: paths and contents of rust/ and patches/, and this script.
overlay_key=$(
    cd "$REPO_ROOT"
    { sha256sum "$0" | cut -d' ' -f1
      for d in rust patches; do if [[ -d $d ]]; then find "$d" -type f -print0; fi; done |
          LC_ALL=C sort -z | xargs -0r sha256sum
    } | sha256sum | cut -c1-16)
stamp=$work/.virtio-intel-overlay
if [[ -f $stamp && $(cat "$stamp") == "$overlay_key" ]]; then
    echo "$work"; exit 0
fi
t=$SECONDS
rm -f "$stamp"    # an interrupted update is redone from scratch next time
mkdir -p "$work"
# Back to pristine.  --checksum and no -t: files whose content differs get
# rewritten with a new mtime (so make rebuilds them), identical files keep
# theirs (so an existing build dir stays incremental).
rsync -rlp --checksum --delete --exclude=/.virtio-intel-overlay "$pristine/" "$work/"
if [[ -d $REPO_ROOT/rust ]] && [[ -n $(ls -A "$REPO_ROOT/rust") ]]; then
    log "overlaying rust/"
    rsync -rlp --checksum "$REPO_ROOT/rust/" "$work/rust/"
fi
shopt -s nullglob
for p in "$REPO_ROOT"/patches/*.patch; do
    log "applying ${p#"$REPO_ROOT"/}"
    patch -d "$work" -p1 --batch --forward --no-backup-if-mismatch -s <"$p" ||
        die "patch ${p#"$REPO_ROOT"/} does not apply to $PKG $VERSION"
done
echo "$overlay_key" >"$stamp"
log "work tree $work updated in $((SECONDS - t)) s (overlay key $overlay_key)"
echo "$work"
