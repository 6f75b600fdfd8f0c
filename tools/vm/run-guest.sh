#!/bin/bash
# Boot a guest on QEMU 11.1 (inside the sid tree, under Xvfb) with a
# virtio-gpu-gl device in DRM native-context mode, run one command in it, and
# judge the run.  See tools/vm/README.md.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() {
    cat <<'USAGE'
usage: tools/vm/run-guest.sh [options] [--cmd "COMMAND"]
  --cmd CMD            shell command run in the guest (default: a virtio-gpu probe report)
  --kernel K           debian (default: the sid tree's kernel) or a path to a bzImage
  --modules DIR        with --kernel PATH: INSTALL_MOD_PATH of that kernel (DIR/lib/modules/<kver>)
  --modprobe "M..."    modules to modprobe in the guest (default: virtio_gpu; "" for none)
  --renderer R         project (default: tools/virtio-intel-host/target/release/libvirglrenderer.so.1),
                       stock (the tree's Debian virglrenderer) or a path to a libvirglrenderer.so.1
  --share DIR          host directory mounted read-write at /mnt/host in the guest
  --timeout S          guest command timeout in seconds (default 300); QEMU is killed
                       after S + --boot-timeout seconds
  --boot-timeout S     allowance for booting and shutting down (default 300)
  --smp N, --mem M     guest CPUs (default 2) and memory (default 2G)
  --accel tcg|kvm      default tcg; kvm falls back to tcg (with a message) where it cannot work
  --no-strict          do not set VIRTIO_INTEL_HOST_STRICT=1
  --append ARGS        extra guest kernel command-line arguments
  --display D          QEMU -display value (default gtk,gl=on, on Xvfb; see README)
  --gpu DEVICE         override the GPU device (default virtio-gpu-gl-pci,drm_native_context=on,blob=on,hostmem=4G)
  --logdir DIR         where to keep the logs (default build/vm/run-<time>-<pid>)
  -q, --quiet          print only the summary on success
Environment: every VIRTIO_INTEL_HOST_* variable is passed to QEMU (fault injection).
Exit status: 0 only if the guest command returned 0 and no check failed.
USAGE
}

cmd='uname -r; grep -H . /sys/kernel/debug/dri/*/virtio-gpu-features 2>/dev/null; dmesg | grep -iE "virtio|drm"; ls -l /dev/dri'
kernel=debian modules='' modprobe=virtio_gpu modprobe_set=0 renderer=project share=''
timeout=300 boot_timeout=300 smp=2 mem=2G accel=tcg strict=1 append='' logdir='' quiet=0
gpu=virtio-gpu-gl-pci,drm_native_context=on,blob=on,hostmem=4G display=gtk,gl=on
while [[ $# -gt 0 ]]; do
    case $1 in
        --cmd) cmd=$2; shift 2 ;;
        --kernel) kernel=$2; shift 2 ;;
        --modules) modules=$2; shift 2 ;;
        --modprobe) modprobe=$2; modprobe_set=1; shift 2 ;;
        --renderer) renderer=$2; shift 2 ;;
        --share) share=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --boot-timeout) boot_timeout=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --accel) accel=$2; shift 2 ;;
        --no-strict) strict=0; shift ;;
        --append) append=$2; shift 2 ;;
        --gpu) gpu=$2; shift 2 ;;
        --display) display=$2; shift 2 ;;
        --logdir) logdir=$2; shift 2 ;;
        -q|--quiet) quiet=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
need_root
[[ $timeout =~ ^[0-9]+$ && $boot_timeout =~ ^[0-9]+$ ]] || die "--timeout/--boot-timeout take seconds"
t0=$SECONDS

# --- inputs: tree, kernel, initramfs, renderer --------------------------------
tree=$("$VM_DIR/mk-sid-tree.sh")
if [[ $kernel == debian ]]; then
    [[ -z $modules ]] || die "--modules is only for --kernel PATH"
    kver=$(sed -n 's/^kernel=//p' "$tree/.virtio-intel-tree")
    kernel_file=$tree/boot/vmlinuz-$kver
    modroot=$tree
else
    kernel_file=$(realpath -e "$kernel") || die "no kernel image at $kernel"
    ((modprobe_set)) || modprobe=
    if [[ -n $modules ]]; then
        modroot=$(realpath -e "$modules") || die "no modules dir $modules"
        kvers=$(ls "$modroot/lib/modules" 2>/dev/null) || die "$modules has no lib/modules/<kver>"
        [[ $(wc -w <<<"$kvers") == 1 ]] || die "$modules/lib/modules must hold exactly one kernel: $kvers"
        kver=$kvers
    else
        modroot=- kver=-   # everything the init needs must be built in
    fi
fi
initramfs=$("$VM_DIR/mk-initramfs.sh" "$modroot" "$kver")

case $renderer in
    project)
        lib=$REPO_ROOT/tools/virtio-intel-host/target/release/libvirglrenderer.so.1
        [[ -f $lib ]] || die "$lib not found: build it with 'make host' (or use --renderer stock)" ;;
    stock) lib=$(realpath -e "$tree/usr/lib/x86_64-linux-gnu/libvirglrenderer.so.1") ;;
    *) lib=$(realpath -e "$renderer") || die "no renderer library at $renderer" ;;
esac

if [[ $accel == kvm ]]; then
    # /dev/kvm on the project's machines is kvm-pvm, which cannot run a stock
    # guest kernel (tools/kernel/README.md).
    if [[ ! -w /dev/kvm ]]; then
        log "NOTE: --accel kvm requested but /dev/kvm is not usable; falling back to TCG"; accel=tcg
    elif [[ -d /sys/module/kvm_pvm ]]; then
        log "NOTE: --accel kvm requested but this host's KVM is kvm-pvm (cannot run a stock guest); falling back to TCG"
        accel=tcg
    fi
fi
[[ $accel == tcg || $accel == kvm ]] || die "--accel must be tcg or kvm"

# --- the run directory (logs, control share, renderer) -----------------------
if [[ -z $logdir ]]; then logdir=$REPO_ROOT/build/vm/run-$(date +%Y%m%d-%H%M%S)-$$; fi
mkdir -p "$logdir"
logdir=$(realpath "$logdir")
rm -rf "${logdir:?}"/{ctl,lib,boot} "$logdir"/*.log
mkdir -p "$logdir"/{ctl,lib,boot}
cp "$lib" "$logdir/lib/libvirglrenderer.so.1"
cp "$kernel_file" "$logdir/boot/kernel"
cp "$initramfs" "$logdir/boot/initramfs"
printf '%s\n' "$cmd" >"$logdir/ctl/cmd.sh"
printf 'VI_TIMEOUT=%q\nVI_MODPROBE=%q\n' "$timeout" "$modprobe" >"$logdir/ctl/config"
: >"$logdir/host.log"

R=/run/vi   # where things appear inside the chroot
binds=(--bind "$tree:$R/root:ro" --bind "$logdir:$R/run")
virtfs=(-virtfs "local,path=$R/root,mount_tag=viroot,security_model=none,readonly=on,multidevs=remap"
        -virtfs "local,path=$R/run/ctl,mount_tag=victl,security_model=none")
if [[ -n $share ]]; then
    share=$(realpath -e "$share") || die "no share dir $share"
    binds+=(--bind "$share:$R/share")
    virtfs+=(-virtfs "local,path=$R/share,mount_tag=vishare,security_model=none,multidevs=remap")
fi
if [[ $modroot != - && $kernel != debian ]]; then
    binds+=(--bind "$modroot/lib/modules:$R/modules:ro")
    virtfs+=(-virtfs "local,path=$R/modules,mount_tag=vimods,security_model=none,readonly=on")
fi
# A real virglrenderer needs the host GPU's render node in the chroot.
[[ $renderer != project && $renderer != stock ]] && compgen -G '/dev/dri/renderD*' >/dev/null && binds+=(--dri)
if [[ $accel == kvm ]]; then binds+=(--kvm); cpu=(-accel kvm -cpu host); else cpu=(-accel tcg -cpu max); fi

# no5lvl: 4-level paging. With LA57 (TCG's -cpu max has it), 7.3's identify_cpu() clears the
# boot CPU's feature words with interrupts on, so an interrupt in that window sees
# pgtable_l5_enabled() false, and KASAN takes every direct-map address for a wild access
# (seen once in CI: "wild-memory-access in do_raw_spin_lock" from handle_edge_irq).
kcmdline="console=ttyS0 loglevel=5 panic=-1 rdinit=/init drm_kms_helper.fbdev_emulation=0 no5lvl $append"
qemu=(qemu-system-x86_64 -nodefaults -no-user-config "${cpu[@]}" -smp "$smp" -m "$mem"
      -kernel "$R/run/boot/kernel" -initrd "$R/run/boot/initramfs" -append "$kcmdline"
      -serial "file:$R/run/console.log" -serial "file:$R/run/output.log"
      -monitor none -no-reboot
      -display "$display"
      -device "$gpu"
      "${virtfs[@]}")

# Environment of QEMU: software EGL on Xvfb, our renderer first in the
# library path, the host library's knobs.
qenv=("LD_LIBRARY_PATH=$R/run/lib" "VIRTIO_INTEL_HOST_LOG=$R/run/host.log"
      GDK_BACKEND=x11 LIBGL_ALWAYS_SOFTWARE=1 NO_AT_BRIDGE=1 XDG_RUNTIME_DIR=/tmp/xdg)
((strict)) && qenv+=(VIRTIO_INTEL_HOST_STRICT=1)
while IFS='=' read -r k _; do
    [[ $k == VIRTIO_INTEL_HOST_* && $k != VIRTIO_INTEL_HOST_LOG ]] && qenv+=("$k=${!k}")
done < <(env)

# The script that runs inside the chroot: Xvfb, then QEMU under a timeout.
cat >"$logdir/inner.sh" <<INNER
#!/bin/bash
set -u
mkdir -m 0700 -p /tmp/xdg
# -displayfd picks a free display number (abstract X sockets are not
# private to this mount namespace).
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>/tmp/xdisplay >$R/run/xvfb.log 2>&1 &
xpid=\$!
for i in \$(seq 100); do [[ -s /tmp/xdisplay ]] && break; sleep 0.1; done
[[ -s /tmp/xdisplay ]] || { echo "Xvfb did not start (see xvfb.log)" >&2; kill \$xpid; exit 90; }
date +%s.%N >$R/run/qemu.start
rc=0
env -i PATH=\$PATH HOME=/root DISPLAY=:\$(cat /tmp/xdisplay) $(printf '%q ' "${qenv[@]}") \\
    timeout -k 10 $((timeout + boot_timeout)) $(printf '%q ' "${qemu[@]}") >$R/run/qemu.log 2>&1 || rc=\$?
date +%s.%N >$R/run/qemu.end
kill \$xpid 2>/dev/null; wait \$xpid 2>/dev/null
exit \$rc
INNER

[[ $quiet == 1 ]] || log "booting ($accel, $smp CPUs, $mem, renderer: $renderer, logs: $logdir)"
qrc=0
"$VM_DIR/in-tree.sh" "${binds[@]}" "$tree" -- /bin/bash "$R/run/inner.sh" || qrc=$?

# --- judge the run ------------------------------------------------------------
failures=()
fail() { failures+=("$*"); }
strip() { tr -d '\r' <"$1" 2>/dev/null || true; }
console=$(strip "$logdir/console.log")
case $qrc in
    0) ;;
    90) fail "Xvfb did not start (xvfb.log)" ;;
    124|137) fail "timeout: QEMU killed after $((timeout + boot_timeout)) s" ;;
    *) if ((qrc > 128)); then fail "QEMU crashed (signal $((qrc - 128)), see qemu.log)"
       else fail "QEMU exited with status $qrc (see qemu.log)"; fi ;;
esac
marker=$(grep -oE 'VIRTIO-INTEL-GUEST-EXIT rc=[0-9]+' <<<"$console" | tail -n1 || true)
if [[ -z $marker ]]; then
    fail "no VIRTIO-INTEL-GUEST-EXIT marker in console.log"
    grc=
else
    grc=${marker##*=}
    [[ $grc == 0 ]] || fail "guest command exited with rc=$grc$([[ $grc == 137 ]] && echo ' (killed: timeout?)')"
fi
# Kernel problems: only kernel log lines (timestamped), so that a test
# program printing "WARNING:" does not count.
bad='Kernel panic|Oops|BUG:|WARNING:|KASAN|UBSAN|possible circular locking|kmemleak: [0-9]+ new suspected|general protection fault|Call Trace'
kbad=$( { grep -E '^\[ *[0-9]+\.[0-9]+\]' <<<"$console"; strip "$logdir/ctl/dmesg.txt"; } |
        grep -E "$bad" | sort -u | head -n 20 || true)
if [[ -n $kbad ]]; then
    # The whole first report (its call trace names the culprit), not only the matching lines.
    first=$(grep -nE "$bad" <<<"$console" | head -n1 | cut -d: -f1)
    report=
    [[ -z $first ]] || report=$'\n'"----- console.log from line $first -----"$'\n'$(sed -n "${first},$((first + 80))p" <<<"$console")
    fail "guest kernel reported problems:"$'\n'"$kbad$report"
fi
violations=$(grep -E '^(VIOLATION|BUG)' "$logdir/host.log" | head -n 20 || true)
[[ -z $violations ]] || fail "host library reported protocol violations:"$'\n'"$violations"
if [[ $renderer == project ]]; then
    head -n1 "$logdir/host.log" | grep 'virtio-intel-host' | grep -q 'loaded' ||
        fail "host.log lacks the 'virtio-intel-host ... loaded' line: the project library was not used"
fi

# --- summary ------------------------------------------------------------------
boot_s=$(cat "$logdir/qemu.start" "$logdir/qemu.end" 2>/dev/null |
         awk 'NR==1 {a=$1} NR==2 {printf "%.1f", $1-a}')
if [[ $quiet == 0 || ${#failures[@]} -gt 0 ]]; then
    echo "----- guest command output (output.log) -----"
    strip "$logdir/output.log" | grep -v '^VIRTIO-INTEL-GUEST-EXIT' || true
    echo "----- QEMU messages (qemu.log) -----"
    strip "$logdir/qemu.log" | head -n 20
fi
echo "----- run summary -----"
echo "kernel $kver, renderer $renderer ($lib), accel $accel"
echo "QEMU wall time ${boot_s} s (boot + command + power-off); total $((SECONDS - t0)) s"
echo "logs: $logdir/{console,output,host,qemu,xvfb}.log, ctl/dmesg.txt"
if [[ ${#failures[@]} -gt 0 ]]; then
    printf 'FAIL: %s\n' "${failures[@]}"
    exit 1
fi
echo "PASS: guest command rc=0"
