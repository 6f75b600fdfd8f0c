#!/bin/bash
# Build (or reuse) the guest initramfs: busybox-static, tools/vm/guest-init.sh
# as /init, and the kernel modules needed to reach the 9p root, with their
# dependencies resolved through modules.dep (modules built into the kernel,
# per modules.builtin, are skipped).  Modules are stored uncompressed so that
# busybox insmod can load them.
#
# usage: mk-initramfs.sh MODROOT KVER      (modules in MODROOT/lib/modules/KVER)
#        mk-initramfs.sh - -               (no modules: the kernel has them built in)
# Prints the path of the cached initramfs ($VI_CACHE/initramfs-<key>.cpio.gz).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# What the init needs before the root is mounted.
WANTED=(virtio_pci 9pnet_virtio 9p overlay)

[[ $# == 2 ]] || die "usage: mk-initramfs.sh MODROOT KVER"
if [[ $1 == - ]]; then
    moddir=$(mktemp -d) # empty modules.dep/builtin
    trap 'rm -rf "$moddir"' EXIT
    touch "$moddir/modules.dep" "$moddir/modules.builtin"
else
    moddir=$1/lib/modules/$2
fi
[[ -f $moddir/modules.dep ]] || die "no modules.dep in $moddir"
need_cmd busybox busybox-static
need_cmd cpio cpio
busybox=$(command -v busybox)
# A dynamic busybox would need a libc in the initramfs.
[[ $(readelf -l "$busybox") == *INTERP* ]] && die "$busybox is not static; install busybox-static"

key=$(content_key "$0" "$VM_DIR/guest-init.sh" "$busybox" "$moddir/modules.dep" \
    "$moddir/modules.builtin")
out=$VI_CACHE/initramfs-$key.cpio.gz
# mtime = last use; images unused for a week are pruned below.
if [[ -f $out ]]; then touch "$out"; echo "$out"; exit 0; fi

# name -> relative path, and path -> its dependencies.  Module names treat
# '-' and '_' alike.
declare -A path_of deps_of
while IFS= read -r line; do
    p=${line%%:*}
    n=${p##*/}; n=${n%%.ko*}; n=${n//-/_}
    path_of[$n]=$p
    deps_of[$p]=${line#*:}
done <"$moddir/modules.dep"

order=()
declare -A seen
add_path() { # depth-first: dependencies before the module
    local p=$1 d
    [[ -n ${seen[$p]:-} ]] && return
    seen[$p]=1
    for d in ${deps_of[$p]}; do add_path "$d"; done
    order+=("$p")
}
for m in "${WANTED[@]}"; do
    if [[ -n ${path_of[$m]:-} ]]; then
        add_path "${path_of[$m]}"
    elif grep -qE "/${m//_/[-_]}\.ko$" "$moddir/modules.builtin"; then
        :   # built in
    else
        log "warning: module $m is neither in modules.dep nor built in"
    fi
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"; [[ $1 != - ]] || rm -rf "$moddir"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,lib/modules}
cp "$busybox" "$stage/bin/busybox"
for a in $("$busybox" --list); do
    [[ $a == busybox ]] || ln -sf busybox "$stage/bin/$a"
done
install -m 0755 "$VM_DIR/guest-init.sh" "$stage/init"
# The kernel opens /dev/console for init before anything is mounted.
mknod -m 0600 "$stage/dev/console" c 5 1
: >"$stage/modules.list"
for p in "${order[@]}"; do
    f=${p##*/} src=$moddir/$p
    case $f in
        *.ko.xz)  xz -dc "$src" >"$stage/lib/modules/${f%.xz}" ;;
        *.ko.zst) zstd -qdc "$src" >"$stage/lib/modules/${f%.zst}" ;;
        *.ko.gz)  gzip -dc "$src" >"$stage/lib/modules/${f%.gz}" ;;
        *.ko)     cp "$src" "$stage/lib/modules/$f" ;;
        *) die "unexpected module file $p" ;;
    esac
    echo "${f%.ko*}.ko" >>"$stage/modules.list"
done
log "initramfs modules: $(tr '\n' ' ' <"$stage/modules.list")"

tmp=$(mktemp "$VI_CACHE/.initramfs.XXXXXX")
(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | gzip -9n >"$tmp"
mv -f "$tmp" "$out"
find "$VI_CACHE" -maxdepth 1 -name 'initramfs-*.cpio.gz' -mtime +7 -delete
echo "$out"
