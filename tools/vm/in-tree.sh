#!/bin/bash
# Run a command chrooted into a tree (the sid tree) with a private, minimal
# environment:
#   - its own mount namespace, so nothing mounted here is visible on the host
#     and everything disappears when the command ends (the trap also unmounts);
#   - its own /dev: a tmpfs with a handful of mknod'ed nodes, devpts, /dev/shm
#     (the host's /dev is never bind-mounted);
#   - fresh /proc, /sys, /tmp and /run for the duration of the run only.
#
# usage: in-tree.sh [--bind SRC:DST[:ro]]... [--kvm] [--dri] TREE -- CMD [ARG]...
#   --kvm, --dri: also create /dev/kvm, /dev/dri/renderD* (same numbers as the host's)
#   DST is an absolute path inside the tree; under /run or /tmp (tmpfs for the
#   run) it is created, elsewhere it must already exist.
# The command runs with PATH reset to the tree's and HOME=/root; the rest of
# the environment is passed through (callers use `env -i` to trim it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root

# Re-exec in a new mount namespace with private propagation.
if [[ -z ${VI_IN_TREE_NS:-} ]]; then
    need_cmd unshare util-linux
    VI_IN_TREE_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
unset VI_IN_TREE_NS

binds=() kvm=0 dri=0 tree=
while [[ $# -gt 0 ]]; do
    case $1 in
        --bind) binds+=("$2"); shift 2 ;;
        --kvm) kvm=1; shift ;;
        --dri) dri=1; shift ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) tree=$1; shift ;;
    esac
done
[[ -n $tree && -d $tree/usr ]] || die "usage: in-tree.sh [--bind S:D[:ro]]... TREE -- CMD..."
[[ $# -gt 0 ]] || die "no command given"
tree=$(cd "$tree" && pwd)

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -l "${mounted[i]}" 2>/dev/null || true
    done
}
trap cleanup EXIT
mnt() { # mnt TARGET MOUNT-ARGS...
    local t=$1; shift
    mount "$@" "$t"
    mounted+=("$t")
}

# /dev: tmpfs + the nodes programs expect.  Major/minor numbers are fixed
# by the kernel's devices.txt.
d=$tree/dev
mnt "$d" -t tmpfs -o mode=0755,nosuid,size=64k vi-dev
while read -r name maj min; do
    mknod -m 0666 "$d/$name" c "$maj" "$min"
done <<'NODES'
null 1 3
zero 1 5
full 1 7
random 1 8
urandom 1 9
tty 5 0
NODES
((kvm)) && mknod -m 0660 "$d/kvm" c 10 232
if ((dri)); then
    mkdir "$d/dri"
    for n in /dev/dri/renderD*; do
        [[ -c $n ]] && mknod -m 0666 "$d/dri/${n##*/}" c $((0x$(stat -c %t "$n"))) $((0x$(stat -c %T "$n")))
    done
fi
ln -s /proc/self/fd "$d/fd"
ln -s /proc/self/fd/0 "$d/stdin"
ln -s /proc/self/fd/1 "$d/stdout"
ln -s /proc/self/fd/2 "$d/stderr"
mkdir "$d/pts" "$d/shm"
mnt "$d/pts" -t devpts -o newinstance,ptmxmode=0666,mode=0620 vi-devpts
ln -s pts/ptmx "$d/ptmx"
mnt "$d/shm" -t tmpfs -o mode=1777,nosuid,nodev vi-shm

mnt "$tree/proc" -t proc -o nosuid,nodev,noexec vi-proc
mnt "$tree/sys" -t sysfs -o ro,nosuid,nodev,noexec vi-sys
mnt "$tree/tmp" -t tmpfs -o mode=1777,nosuid,nodev vi-tmp
mnt "$tree/run" -t tmpfs -o mode=0755,nosuid,nodev vi-run

for b in "${binds[@]}"; do
    IFS=: read -r src dst opt <<<"$b"
    [[ -e $src ]] || die "bind source $src does not exist"
    [[ $dst == /* ]] || die "bind target $dst must be absolute"
    if [[ -d $src ]]; then mkdir -p "$tree$dst"; else mkdir -p "$(dirname "$tree$dst")"; touch "$tree$dst"; fi
    mnt "$tree$dst" --bind "$src"
    [[ ${opt:-} == ro ]] && mount -o remount,bind,ro "$tree$dst"
done

rc=0
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    chroot "$tree" "$@" || rc=$?
exit $rc
