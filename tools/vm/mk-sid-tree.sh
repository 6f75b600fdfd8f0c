#!/bin/bash
# Build (or reuse) the Debian sid tree that serves both as the chroot QEMU runs
# in and as the guest's root filesystem (exported read-only over virtio-9p).
#
# The tree is cached as $VI_CACHE/sid-<key>, where <key> hashes this script
# (which holds the package lists and the recipe).  It is built in a temporary
# directory and renamed into place only when complete, so an interrupted build
# is never reused.  Downloaded .debs are kept in $VI_CACHE/debs.
#
# usage: mk-sid-tree.sh        builds if needed; prints the tree's path on stdout
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# QEMU side: QEMU 11.1 with its GL display module, GTK UI (display) on Xvfb with
# Mesa's software EGL/GL, and the stock virglrenderer (replaced at run time).
HOST_PKGS=(qemu-system-x86 qemu-system-modules-opengl qemu-system-gui xvfb
           libegl-mesa0 libgl1-mesa-dri libvirglrenderer1)
# Guest side: Debian's kernel (upstream C virtio_gpu as a module), Mesa, tools.
# sid's linux-image-amd64 is still 7.2 (experimental has 7.3~rc7); trixie-backports
# has 7.3.4-1~bpo13+1, the very version the project's own kernel is built from,
# so the kernel comes from there (KERNEL_SUITE); everything else from sid.
KERNEL_SUITE=trixie-backports
GUEST_PKGS=(linux-image-amd64/$KERNEL_SUITE mesa-vulkan-drivers libgl1-mesa-dri mesa-utils
            vulkan-tools kmod procps pciutils strace vkmark weston
            mesa-utils-bin:i386 libegl-mesa0:i386 libgl1-mesa-dri:i386 mesa-vulkan-drivers:i386)
# (The :i386 packages are the 32-bit Mesa that Steam and Wine games use, with a 32-bit
# eglinfo, /usr/bin/eglinfo.i386-linux-gnu.)
# Wanted, but the rig works without them: a warning names any that sid lacks.
OPTIONAL_PKGS=(igt-gpu-tools-tests)

QEMU_MIN_VERSION=1:11.1.3+ds-1
KERNEL_MIN_VERSION=7.3

need_root
key=$(content_key "$0")
tree=$VI_CACHE/sid-$key
if [[ -f $tree/.virtio-intel-tree ]]; then
    echo "$tree"
    exit 0
fi

need_cmd debootstrap debootstrap
need_cmd unshare util-linux
mkdir -p "$VI_CACHE/debs/partial"
# One build at a time; a second caller waits and then reuses the result.
exec 9>"$VI_CACHE/.sid.lock"
flock 9
if [[ -f $tree/.virtio-intel-tree ]]; then echo "$tree"; exit 0; fi
# Leftovers of killed builds (the lock proves nobody is using them).
rm -rf --one-file-system "$VI_CACHE"/.building-sid-*
tmp=$(mktemp -d "$VI_CACHE/.building-sid-$key.XXXXXX")
chmod 0755 "$tmp"
# On any failure, throw the half-built tree away.  in-tree.sh runs in its own
# mount namespace, so no mount can be left behind inside $tmp.
trap 'rc=$?; if [[ $rc != 0 ]]; then log "build failed; removing $tmp"; rm -rf --one-file-system "$tmp"; fi' EXIT

start=$SECONDS
log "debootstrap sid (minbase) into $tmp from $VI_MIRROR"
debootstrap --variant=minbase --cache-dir="$VI_CACHE/debs" sid "$tmp" "$VI_MIRROR" \
    >"$tmp.debootstrap.log" 2>&1 || {
        tail -n 30 "$tmp.debootstrap.log" >&2
        die "debootstrap failed (full log: $tmp.debootstrap.log)"
    }
rm -f "$tmp.debootstrap.log"

# apt: sid's Release may carry a Valid-Until in the past (mirror snapshots,
# clocks); no recommends; no services started in the chroot.
# (Only the kernel comes from $KERNEL_SUITE: its i386 index is not needed.)
printf 'deb %s sid main\ndeb [arch=amd64] %s %s main\n' "$VI_MIRROR" "$VI_MIRROR" "$KERNEL_SUITE" \
    >"$tmp/etc/apt/sources.list"
cat >"$tmp/etc/apt/apt.conf.d/90virtio-intel" <<'CONF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Use-Pty "false";
CONF
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod +x "$tmp/usr/sbin/policy-rc.d"
echo virtio-intel >"$tmp/etc/hostname"

# Everything below runs inside the tree.  The guest boots our own initramfs,
# so Debian's initramfs generation (slow, unused) is diverted to /bin/true.
cat >"$tmp/root/install.sh" <<'INSTALL'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
ln -sf /bin/true /usr/sbin/update-initramfs
dpkg --add-architecture i386
apt-get -q update
missing=()
for p in $OPTIONAL; do
    if apt-cache show "$p" >/dev/null 2>&1; then REQUIRED="$REQUIRED $p"; else missing+=("$p"); fi
done
for p in "${missing[@]}"; do echo "WARNING: package $p is not available in sid; continuing without it" >&2; done
apt-get -q -y install $REQUIRED
INSTALL
log "installing packages in the tree"
"$VM_DIR/in-tree.sh" --bind "$VI_CACHE/debs:/var/cache/apt/archives" "$tmp" -- \
    env REQUIRED="${HOST_PKGS[*]} ${GUEST_PKGS[*]}" OPTIONAL="${OPTIONAL_PKGS[*]}" \
    bash /root/install.sh >"$tmp.install.log" 2>&1 || {
        tail -n 30 "$tmp.install.log" >&2
        die "package installation failed (full log: $tmp.install.log)"
    }
grep '^WARNING' "$tmp.install.log" >&2 || true
rm -f "$tmp.install.log" "$tmp/root/install.sh"

# Version checks: the rig depends on QEMU's drm_native_context and kernel 7.3+.
qemu_ver=$(chroot "$tmp" dpkg-query -W -f '${Version}' qemu-system-x86)
dpkg --compare-versions "$qemu_ver" ge "$QEMU_MIN_VERSION" ||
    die "sid has qemu-system-x86 $qemu_ver; need >= $QEMU_MIN_VERSION (drm_native_context)"
kvers=$(cd "$tmp/lib/modules" && ls)
[[ $(wc -w <<<"$kvers") == 1 ]] || die "expected one kernel in the tree, found: $kvers"
dpkg --compare-versions "${kvers%%-*}" ge "$KERNEL_MIN_VERSION" ||
    die "sid's linux-image-amd64 is $kvers; need >= $KERNEL_MIN_VERSION"
[[ -f $tmp/boot/vmlinuz-$kvers ]] || die "no /boot/vmlinuz-$kvers in the tree"
chmod a+r "$tmp/boot/vmlinuz-$kvers"

{
    echo "key=$key"
    echo "built=$(date -u +%FT%TZ)"
    echo "build_seconds=$((SECONDS - start))"
    echo "qemu=$qemu_ver"
    echo "kernel=$kvers"
    echo "mesa=$(chroot "$tmp" dpkg-query -W -f '${Version}' libgl1-mesa-dri:amd64)"
    echo "virglrenderer=$(chroot "$tmp" dpkg-query -W -f '${Version}' libvirglrenderer1)"
    echo "igt=$(chroot "$tmp" dpkg-query -W -f '${Version}' igt-gpu-tools-tests 2>/dev/null || echo missing)"
} >"$tmp/.virtio-intel-tree"

# Atomic publish; if a concurrent build won the race, keep theirs.
if ! mv -T "$tmp" "$tree" 2>/dev/null; then
    rm -rf --one-file-system "$tmp"
fi
trap - EXIT
# Trees of other versions of this script are stale: reclaim the space.
for old in "$VI_CACHE"/sid-*; do
    [[ $old == "$tree" || ! -d $old ]] && continue
    log "removing stale tree $old"
    rm -rf --one-file-system "$old"
done
log "sid tree ready in $((SECONDS - start)) s: $tree"
sed 's/^/    /' "$tree/.virtio-intel-tree" >&2
echo "$tree"
