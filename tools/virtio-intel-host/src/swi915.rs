// SPDX-License-Identifier: MIT
//! A software i915: what the host's i915 render-node fd does, on the CPU.
//!
//! The virtio-intel host layer ([`crate::ccmd`]) calls this module the way
//! virglrenderer's i915 backend calls the host kernel's i915 ioctls. It keeps the
//! i915 semantics the guest can observe: GEM objects and handles, GEM contexts with
//! engine maps and parameters, address spaces (VMs) with softpinned and relocated
//! bindings, execbuffer validation, implicit synchronisation between engines, busy
//! state, hangs with context banning and reset statistics, and the i915 error codes
//! (positive errno values here, like the host's `errno`).
//!
//! Each engine of a [`File`] is a worker thread that executes batches in submission
//! order with the software command streamer ([`crate::cs`]); the out-fence of every
//! execbuffer is signalled from that thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cs;
use crate::fence::Fence;
use crate::ids::IdTable;
use crate::mem::SharedMem;
use crate::profile::{
    Engine as EngineDesc, Profile, ENGINE_CLASS_COMPUTE, ENGINE_CLASS_COPY, ENGINE_CLASS_RENDER, ENGINE_CLASS_VIDEO,
    ENGINE_CLASS_VIDEO_ENHANCE, MEMORY_CLASS_DEVICE,
};
use crate::regs::RegFile;
use crate::sync::lock;

/// Positive errno, as the host's `errno` after an ioctl.
pub(crate) type Errno = i32;
/// Result of a software ioctl.
pub(crate) type IoResult<T> = Result<T, Errno>;

const PAGE: u64 = 4096;
/// Largest object this host allocates (one memfd).
const MAX_OBJECT: u64 = 4 << 30;

const ENGINE_CLASS_INVALID: u16 = 0xffff;
const ENGINE_CLASS_INVALID_NONE: u16 = 0xffff;

// execbuffer2 flags
pub(crate) const EXEC_RING_MASK: u64 = 0x3f;
const EXEC_BSD_MASK: u64 = 3 << 13;
pub(crate) const EXEC_HANDLE_LUT: u64 = 1 << 12;
pub(crate) const EXEC_FENCE_IN: u64 = 1 << 16;
pub(crate) const EXEC_FENCE_OUT: u64 = 1 << 17;
pub(crate) const EXEC_BATCH_FIRST: u64 = 1 << 18;
pub(crate) const EXEC_FENCE_ARRAY: u64 = 1 << 19;
pub(crate) const EXEC_FENCE_SUBMIT: u64 = 1 << 20;
pub(crate) const EXEC_USE_EXTENSIONS: u64 = 1 << 21;
const EXEC_UNKNOWN_FLAGS: u64 = !((EXEC_USE_EXTENSIONS << 1) - 1);

// exec object flags
const EXEC_OBJECT_WRITE: u64 = 1 << 2;
const EXEC_OBJECT_SUPPORTS_48B: u64 = 1 << 3;
const EXEC_OBJECT_PINNED: u64 = 1 << 4;
const EXEC_OBJECT_PAD_TO_SIZE: u64 = 1 << 5;
const EXEC_OBJECT_ASYNC: u64 = 1 << 6;
const EXEC_OBJECT_UNKNOWN_FLAGS: u64 = !((1u64 << 8) - 1);

// GEM domains
const GEM_DOMAIN_GPU: u32 = 0x3e;

// context params
pub(crate) const CONTEXT_PARAM_GTT_SIZE: u64 = 3;
pub(crate) const CONTEXT_PARAM_NO_ERROR_CAPTURE: u64 = 4;
pub(crate) const CONTEXT_PARAM_BANNABLE: u64 = 5;
pub(crate) const CONTEXT_PARAM_PRIORITY: u64 = 6;
pub(crate) const CONTEXT_PARAM_SSEU: u64 = 7;
pub(crate) const CONTEXT_PARAM_RECOVERABLE: u64 = 8;
pub(crate) const CONTEXT_PARAM_VM: u64 = 9;
pub(crate) const CONTEXT_PARAM_ENGINES: u64 = 10;
pub(crate) const CONTEXT_PARAM_PERSISTENCE: u64 = 11;
pub(crate) const CONTEXT_PARAM_PROTECTED_CONTENT: u64 = 13;
const CONTEXT_CREATE_FLAGS_USE_EXTENSIONS: u32 = 1;
const CONTEXT_CREATE_FLAGS_SINGLE_TIMELINE: u32 = 2;
const PRIORITY_MAX_USER: i64 = 1023;
const PRIORITY_MIN_USER: i64 = -1023;

const GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS: u32 = 1;

const TILING_NONE: u32 = 0;
const TILING_X: u32 = 1;
const TILING_Y: u32 = 2;

/// The command streamer's engine bit ([`crate::cmd_len`]) of an engine class.
fn engine_kind(class: u16) -> u8 {
    match class {
        ENGINE_CLASS_RENDER => crate::cmd_len::RENDER,
        ENGINE_CLASS_COPY => crate::cmd_len::COPY,
        ENGINE_CLASS_VIDEO => crate::cmd_len::VIDEO,
        ENGINE_CLASS_VIDEO_ENHANCE => crate::cmd_len::VEBOX,
        ENGINE_CLASS_COMPUTE => crate::cmd_len::COMPUTE,
        _ => 0,
    }
}

/// MMIO base of an engine (for its engine-relative registers).
fn mmio_base(class: u16, instance: u16) -> u32 {
    match (class, instance) {
        (ENGINE_CLASS_RENDER, _) => 0x2000,
        (ENGINE_CLASS_COPY, _) => 0x22000,
        (ENGINE_CLASS_VIDEO, i) => 0x1c0000 + 0x10000 * u32::from(i),
        (ENGINE_CLASS_VIDEO_ENHANCE, i) => 0x1c8000 + 0x10000 * u32::from(i),
        (ENGINE_CLASS_COMPUTE, i) => 0x1a000 + 0x2000 * u32::from(i),
        _ => 0,
    }
}

/// The device: its profile and global reset state.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) profile: &'static Profile,
    resets: AtomicU32,
    epoch: Instant,
    hang_timeout: Duration,
    /// Headers the command streamer did not know, over all contexts.
    unknown_cmds: AtomicU64,
    /// Whether the first of them has been logged.
    unknown_logged: AtomicBool,
    /// The distinct unknown headers (dw0 bits 31:16) logged so far, at most
    /// [`UNKNOWN_KINDS_LOGGED`].
    unknown_kinds: std::sync::Mutex<std::collections::BTreeSet<u32>>,
}

/// How many distinct unknown command headers the host log names.
const UNKNOWN_KINDS_LOGGED: usize = 64;

impl Device {
    pub(crate) fn new(profile: &'static Profile, hang_timeout: Duration) -> Device {
        Device {
            profile,
            resets: AtomicU32::new(0),
            epoch: Instant::now(),
            hang_timeout,
            unknown_cmds: AtomicU64::new(0),
            unknown_logged: AtomicBool::new(false),
            unknown_kinds: std::sync::Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Headers the command streamer did not know so far, over all contexts.
    pub(crate) fn unknown_commands(&self) -> u64 {
        self.unknown_cmds.load(Ordering::Relaxed)
    }

    /// Graphics version × 10 (120 for TGL, 125 for 12.55), as the command tables use it.
    pub(crate) fn gen(&self) -> u16 {
        let (major, minor) = self.profile.graphics_ver;
        u16::from(major) * 10 + u16::from(minor) / 10
    }

    /// The CS timestamp: ticks of `cs_timestamp_frequency` since the device started.
    pub(crate) fn timestamp(&self) -> u64 {
        let ns = self.epoch.elapsed().as_nanos();
        (ns * u128::from(self.profile.cs_timestamp_frequency) / 1_000_000_000) as u64
    }

    fn engine(&self, class: u16, instance: u16) -> Option<EngineDesc> {
        self.profile.engines.iter().copied().find(|e| e.class == class && e.instance == instance)
    }
}

/// Fences of the last GPU accesses to an object, with the engine class of each.
#[derive(Debug, Default)]
struct Activity {
    write: Option<(Arc<Fence>, u16)>,
    reads: Vec<(Arc<Fence>, u16)>,
}

#[derive(Debug)]
struct ObjState {
    tiling: u32,
    stride: u32,
    activity: Activity,
}

/// A GEM object: memory plus its i915 state.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) mem: SharedMem,
    /// Size as created (page-aligned).
    pub(crate) size: u64,
    state: Mutex<ObjState>,
}

impl Object {
    fn prune(a: &mut Activity) {
        if a.write.as_ref().is_some_and(|(f, _)| f.is_signalled()) {
            a.write = None;
        }
        a.reads.retain(|(f, _)| !f.is_signalled());
    }

    /// `drm_i915_gem_busy.busy`: bits 16+ = classes reading, low 16 = writer class + 1.
    pub(crate) fn busy(&self) -> u32 {
        let mut s = lock(&self.state);
        Object::prune(&mut s.activity);
        let mut busy = 0u32;
        if let Some((_, c)) = &s.activity.write {
            busy |= u32::from(*c) + 1;
            busy |= 0x10000u32.checked_shl(u32::from(*c)).unwrap_or(0);
        }
        for (_, c) in &s.activity.reads {
            busy |= 0x10000u32.checked_shl(u32::from(*c)).unwrap_or(0);
        }
        busy
    }

    fn pending(&self, include_reads: bool) -> Vec<Arc<Fence>> {
        let mut s = lock(&self.state);
        Object::prune(&mut s.activity);
        let mut v: Vec<Arc<Fence>> = s.activity.write.iter().map(|(f, _)| f.clone()).collect();
        if include_reads {
            v.extend(s.activity.reads.iter().map(|(f, _)| f.clone()));
        }
        v
    }
}

#[derive(Debug, Clone)]
struct Binding {
    end: u64,
    obj: Arc<Object>,
    /// The handle was closed while the object was busy: as i915 keeps a closed vma bound
    /// until its requests retire, the binding stays until the object is idle.
    closed: bool,
}

/// A GPU virtual address space (ppgtt).
#[derive(Debug, Default)]
pub(crate) struct Vm {
    bindings: Mutex<BTreeMap<u64, Binding>>,
}

/// Total size of a full 48-bit ppgtt.
pub(crate) const VM_TOTAL: u64 = 1 << 48;

fn noncanonical(a: u64) -> u64 {
    a & (VM_TOTAL - 1)
}

fn canonical(a: u64) -> u64 {
    ((a << 16) as i64 >> 16) as u64
}

impl Vm {
    fn lookup(&self, va: u64) -> Option<(Arc<Object>, u64)> {
        let va = noncanonical(va);
        let b = lock(&self.bindings);
        let (start, bind) = b.range(..=va).next_back()?;
        if va < bind.end {
            Some((bind.obj.clone(), va - start))
        } else {
            None
        }
    }

    fn address_of(&self, obj: &Arc<Object>) -> Option<u64> {
        lock(&self.bindings).iter().find(|(_, b)| Arc::ptr_eq(&b.obj, obj)).map(|(s, _)| *s)
    }

    /// Unbinds `obj` (its handle was closed): at once when idle, else once its work is done.
    fn unbind_object(&self, obj: &Arc<Object>) {
        let busy = !obj.pending(true).is_empty();
        let mut b = lock(&self.bindings);
        if busy {
            for x in b.values_mut().filter(|x| Arc::ptr_eq(&x.obj, obj)) {
                x.closed = true;
            }
        } else {
            b.retain(|_, x| !Arc::ptr_eq(&x.obj, obj));
        }
    }

    /// Drops the bindings of closed objects that became idle.
    fn reap(b: &mut BTreeMap<u64, Binding>) {
        b.retain(|_, x| !(x.closed && x.obj.pending(true).is_empty()));
    }

    /// Binds `obj` at `start`, evicting other objects in the range unless they are in
    /// `keep` (objects the same execbuffer bound already), which is a conflict.
    fn bind_at(&self, obj: &Arc<Object>, start: u64, keep: &[Arc<Object>]) -> IoResult<()> {
        let end = start.checked_add(obj.size).ok_or(libc::EINVAL)?;
        if end > VM_TOTAL {
            return Err(libc::EINVAL);
        }
        let mut b = lock(&self.bindings);
        Self::reap(&mut b);
        if let Some(cur) = b.get(&start) {
            if Arc::ptr_eq(&cur.obj, obj) {
                return Ok(());
            }
        }
        let overlapping: Vec<u64> =
            b.range(..end).filter(|(s, bind)| bind.end > start && **s < end).map(|(s, _)| *s).collect();
        for s in &overlapping {
            if let Some(o) = b.get(s) {
                if !Arc::ptr_eq(&o.obj, obj) && keep.iter().any(|k| Arc::ptr_eq(k, &o.obj)) {
                    return Err(libc::EINVAL);
                }
            }
        }
        for s in overlapping {
            b.remove(&s);
        }
        b.retain(|_, x| !Arc::ptr_eq(&x.obj, obj));
        b.insert(start, Binding { end, obj: obj.clone(), closed: false });
        Ok(())
    }

    /// Whether `size` bytes at `start` (page and `align` aligned, below `limit`) are unbound.
    fn is_free(&self, start: u64, size: u64, align: u64, limit: u64) -> bool {
        let align = align.max(PAGE);
        let Some(end) = start.checked_add(size) else {
            return false;
        };
        if !start.is_multiple_of(align) || end > limit {
            return false;
        }
        let mut b = lock(&self.bindings);
        Self::reap(&mut b);
        !b.range(..end).any(|(s, bind)| bind.end > start && *s < end)
    }

    /// Finds room for `size` bytes aligned to `align` below `limit`.
    fn find_hole(&self, size: u64, align: u64, limit: u64) -> Option<u64> {
        let align = align.max(PAGE);
        let mut b = lock(&self.bindings);
        Self::reap(&mut b);
        let mut cursor = PAGE * 16;
        for (s, bind) in b.iter() {
            let cand = cursor.checked_add(align - 1)? & !(align - 1);
            if cand.checked_add(size)? <= *s {
                break;
            }
            cursor = cursor.max(bind.end);
        }
        let cand = cursor.checked_add(align - 1)? & !(align - 1);
        (cand.checked_add(size)? <= limit).then_some(cand)
    }
}

impl cs::GpuMemory for Vm {
    fn read_u32(&self, va: u64) -> Result<u32, cs::Fault> {
        let (o, off) = self.lookup(va).ok_or(cs::Fault(va))?;
        o.mem.read_u32(off).map_err(|_| cs::Fault(va))
    }
    fn write_u32(&self, va: u64, v: u32) -> Result<(), cs::Fault> {
        let (o, off) = self.lookup(va).ok_or(cs::Fault(va))?;
        o.mem.write_u32(off, v).map_err(|_| cs::Fault(va))
    }
}

/// Reset state of a GEM context, shared with the engines running its batches.
#[derive(Debug, Default)]
pub(crate) struct CtxState {
    banned: AtomicBool,
    bannable: AtomicBool,
    /// `RECOVERABLE` cleared: the first hang bans the context.
    unrecoverable: AtomicBool,
    /// When the context's last two hangs happened (oldest first).
    hangs: Mutex<[Option<Instant>; 2]>,
    batch_active: AtomicU32,
    batch_pending: AtomicU32,
    /// Headers the command streamer did not know in this context's batches.
    unknown_cmds: AtomicU64,
}

/// i915 bans a context that hangs a third time within this long (`CONTEXT_FAST_HANG_JIFFIES`).
const FAST_HANG: Duration = Duration::from_secs(120);

impl CtxState {
    /// i915's `context_mark_guilty()`: whether this hang bans the context. Unbannable
    /// contexts never are; an unrecoverable one is at once; others on the third hang in
    /// quick succession.
    fn mark_guilty(&self) -> bool {
        if !self.bannable.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        let mut h = lock(&self.hangs);
        let prev = h[0];
        h[0] = h[1];
        h[1] = Some(now);
        self.unrecoverable.load(Ordering::Relaxed) || prev.is_some_and(|t| now.duration_since(t) < FAST_HANG)
    }
}

#[derive(Debug)]
struct GemContext {
    /// Looked up by execbuffer, GETPARAM or reset stats: i915 (up to graphics version 12)
    /// finishes creating a context then, and only an unfinished one takes a VM or an engine
    /// map through SETPARAM.
    used: AtomicBool,
    vm: Arc<Vm>,
    engines: Option<Vec<Option<EngineDesc>>>,
    recoverable: bool,
    priority: i64,
    no_error_capture: bool,
    persistence: bool,
    state: Arc<CtxState>,
}

/// One execbuffer's work for an engine.
struct Job {
    vm: Arc<Vm>,
    ctx: Arc<CtxState>,
    batch_va: u64,
    fence: Arc<Fence>,
    deps: Vec<Arc<Fence>>,
    _keep: Vec<Arc<Object>>,
}

/// An engine: a worker thread executing jobs in order.
struct EngineWorker {
    tx: mpsc::Sender<Job>,
}

impl EngineWorker {
    fn spawn(dev: Arc<Device>, desc: EngineDesc) -> IoResult<EngineWorker> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("swi915-{}:{}", desc.class, desc.instance))
            .spawn(move || engine_main(dev, desc, rx))
            .map_err(|_| libc::EAGAIN)?;
        Ok(EngineWorker { tx })
    }
}

fn engine_main(dev: Arc<Device>, desc: EngineDesc, rx: mpsc::Receiver<Job>) {
    let gen = dev.gen();
    let base = mmio_base(desc.class, desc.instance);
    let mut regs = RegFile::new(gen);
    let ts_dev = dev.clone();
    let ts = move || ts_dev.timestamp();
    while let Ok(job) = rx.recv() {
        for d in &job.deps {
            d.wait();
        }
        if job.ctx.banned.load(Ordering::Acquire) {
            job.ctx.batch_pending.fetch_add(1, Ordering::Relaxed);
            job.fence.signal(-libc::EIO);
            continue;
        }
        let mut eng = cs::Engine {
            mmio_base: base,
            kind: engine_kind(desc.class),
            gen,
            regs: &mut regs,
            timestamp: &ts,
            stats: cs::Stats::default(),
        };
        let deadline = Instant::now() + dev.hang_timeout;
        let outcome = cs::execute(&*job.vm, &mut eng, job.batch_va, deadline);
        let stats = eng.stats;
        let who = format!("engine {}:{}", desc.class, desc.instance);
        account_stats(&dev, &job.ctx, &who, &stats);
        match outcome {
            cs::Outcome::Completed { .. } => job.fence.signal(0),
            bad => {
                crate::log::info(&format!(
                    "{who}: {} in batch 0x{:x}; resetting, context marked guilty",
                    describe(&bad, job.batch_va, gen, engine_kind(desc.class)),
                    job.batch_va
                ));
                dev.resets.fetch_add(1, Ordering::Relaxed);
                job.ctx.batch_active.fetch_add(1, Ordering::Relaxed);
                if job.ctx.mark_guilty() {
                    job.ctx.banned.store(true, Ordering::Release);
                }
                job.fence.signal(-libc::EIO);
            }
        }
    }
}

/// Adds a batch's counters to its context and the device, and logs the device's
/// first unknown command and every batch's first unmodelled command mode.
fn account_stats(dev: &Device, ctx: &CtxState, who: &str, stats: &cs::Stats) {
    if stats.unknown != 0 {
        ctx.unknown_cmds.fetch_add(stats.unknown, Ordering::Relaxed);
        dev.unknown_cmds.fetch_add(stats.unknown, Ordering::Relaxed);
        if let Some((at, dw0)) = stats.first_unknown {
            if !dev.unknown_logged.swap(true, Ordering::Relaxed) {
                crate::log::debug(&format!(
                    "{who}: unknown command 0x{dw0:08x} at 0x{at:x}, skipped by its type's length rule \
                     (first of the device; counted from now on)"
                ));
            }
            // Each new kind of header once (the first unknown of a batch only).
            let new = dev.unknown_kinds.lock().is_ok_and(|mut k| {
                k.len() < UNKNOWN_KINDS_LOGGED && k.insert(dw0 >> 16)
            });
            if new {
                crate::log::debug(&format!("{who}: unknown command header 0x{:04x}xxxx", dw0 >> 16));
            }
        }
    }
    if let Some((at, dw0)) = stats.first_unsupported {
        crate::log::debug(&format!(
            "{who}: {} command mode(s) not modelled, first 0x{dw0:08x} at 0x{at:x}; they did nothing",
            stats.unsupported
        ));
    }
}

/// A hang or fault for the log: what, where (address and offset from the batch
/// start) and which command.
fn describe(o: &cs::Outcome, batch_va: u64, gen: u16, kind: u8) -> String {
    let cmd = |at: u64, dw0: Option<u32>| match dw0 {
        Some(d) => format!(
            "at 0x{at:x} (batch+0x{:x}), {} (dw0 0x{d:08x})",
            at.wrapping_sub(batch_va),
            crate::cmd_len::lookup(d, gen, kind).name()
        ),
        None => format!("at 0x{at:x} (batch+0x{:x}), header unreadable", at.wrapping_sub(batch_va)),
    };
    match *o {
        cs::Outcome::Completed { commands } => format!("completed after {commands} commands"),
        cs::Outcome::Hang { at, dw0 } => format!("GPU hang {}", cmd(at, dw0)),
        cs::Outcome::PageFault { addr, at, dw0 } => format!("GPU page fault on 0x{addr:x} {}", cmd(at, dw0)),
        cs::Outcome::Invalid { at, dw0 } => format!("invalid command {}", cmd(at, Some(dw0))),
    }
}

/// One extension of GEM_CREATE_EXT, decoded by the ccmd layer.
#[derive(Debug, Clone)]
pub(crate) enum CreateExt {
    MemoryRegions { mbz_ok: bool, pad: u32, regions: Vec<(u16, u16)> },
    ProtectedContent { mbz_ok: bool, flags: u32 },
    SetPat { mbz_ok: bool, pat_index: u32 },
}

/// One `I915_CONTEXT_CREATE_EXT_SETPARAM` element, decoded by the ccmd layer.
#[derive(Debug, Clone)]
pub(crate) struct SetParam {
    /// `base.name`, `base.flags` and `base.rsvd` are as i915 requires.
    pub(crate) base_ok: bool,
    pub(crate) ctx_id: u32,
    pub(crate) size: u32,
    pub(crate) param: u64,
    pub(crate) value: u64,
    /// Inline data when `size != 0`.
    pub(crate) data: Vec<u8>,
}

/// Arguments of one execbuffer after the host's res_id translation.
#[derive(Debug)]
pub(crate) struct ExecArgs {
    pub(crate) flags: u64,
    pub(crate) ctx_id: u64,
    pub(crate) batch_start_offset: u32,
    pub(crate) batch_len: u32,
    /// Exec objects with their handles already translated, and their relocations.
    pub(crate) objects: Vec<(crate::proto::ExecObject, Vec<crate::proto::Reloc>)>,
    /// Whether the caller supplied a real in-fence (the host never can, see §5.2).
    pub(crate) have_in_fence: bool,
}

/// An open i915 render-node file: handles, contexts, VMs and engines.
pub(crate) struct File {
    dev: Arc<Device>,
    /// GEM handles: lowest free from 1, as `drm_gem_handle_create_tail`'s
    /// `idr_alloc(.., 1, 0, ..)` (so at most `INT_MAX`).
    objects: IdTable<Arc<Object>>,
    /// GEM contexts: 0 is the default context, user contexts get the lowest free id
    /// from 1 (`xa_alloc(.., xa_limit_32b, ..)` with 0 taken).
    contexts: IdTable<GemContext>,
    /// VMs: lowest free from 1 (`xa_alloc` on an `XA_FLAGS_ALLOC1` xarray).
    vms: IdTable<Arc<Vm>>,
    engines: HashMap<(u16, u16), EngineWorker>,
}

/// The largest GEM handle (`idr_alloc` with `end = 0` stops at `INT_MAX`).
const MAX_HANDLE: u32 = i32::MAX as u32;

impl File {
    pub(crate) fn open(dev: Arc<Device>) -> File {
        let mut f = File {
            dev,
            objects: IdTable::new(1, MAX_HANDLE),
            contexts: IdTable::new(1, u32::MAX),
            vms: IdTable::new(1, u32::MAX),
            engines: HashMap::new(),
        };
        // The default context is created finished.
        let default_ctx = f.new_context(Arc::new(Vm::default()));
        default_ctx.used.store(true, Ordering::Relaxed);
        f.contexts.insert_reserved(0, default_ctx);
        f
    }

    fn new_context(&self, vm: Arc<Vm>) -> GemContext {
        let state = Arc::new(CtxState::default());
        state.bannable.store(true, Ordering::Relaxed);
        GemContext {
            used: AtomicBool::new(false),
            vm,
            engines: None,
            recoverable: true,
            priority: 0,
            no_error_capture: false,
            persistence: true,
            state,
        }
    }

    // ---- GEM objects -------------------------------------------------------------

    fn new_object(&mut self, size: u64) -> IoResult<u32> {
        if size == 0 {
            return Err(libc::EINVAL);
        }
        let size = size.checked_add(PAGE - 1).ok_or(libc::E2BIG)? & !(PAGE - 1);
        if size > MAX_OBJECT || size > self.dev.profile.system_memory {
            return Err(libc::E2BIG);
        }
        let mem = SharedMem::new("swi915-gem", size).map_err(|e| match e {
            crate::mem::MemError::Os(e) => e,
            crate::mem::MemError::OutOfBounds => libc::ENOMEM,
        })?;
        let obj = Object {
            mem,
            size,
            state: Mutex::new(ObjState { tiling: TILING_NONE, stride: 0, activity: Activity::default() }),
        };
        // idr_alloc fails with ENOSPC when the range is full.
        self.objects.insert(Arc::new(obj)).ok_or(libc::ENOSPC)
    }

    /// DRM_IOCTL_I915_GEM_CREATE.
    pub(crate) fn gem_create(&mut self, size: u64) -> IoResult<u32> {
        self.new_object(size)
    }

    /// DRM_IOCTL_I915_GEM_CREATE_EXT.
    pub(crate) fn gem_create_ext(&mut self, size: u64, flags: u32, exts: &[CreateExt]) -> IoResult<u32> {
        if flags & !GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS != 0 {
            return Err(libc::EINVAL);
        }
        let mut placements: Option<Vec<(u16, u16)>> = None;
        for e in exts {
            match e {
                CreateExt::MemoryRegions { mbz_ok, pad, regions } => {
                    if !mbz_ok || *pad != 0 || placements.is_some() {
                        return Err(libc::EINVAL);
                    }
                    if regions.is_empty() || regions.len() > 16 {
                        return Err(libc::EINVAL);
                    }
                    let mut seen = HashSet::new();
                    for r in regions {
                        if !self.dev.profile.has_memory_region(r.0, r.1) || !seen.insert(*r) {
                            return Err(libc::EINVAL);
                        }
                    }
                    placements = Some(regions.clone());
                }
                CreateExt::ProtectedContent { mbz_ok, flags } => {
                    if !mbz_ok || *flags != 0 {
                        return Err(libc::EINVAL);
                    }
                    // No PXP on this device model.
                    return Err(libc::ENODEV);
                }
                CreateExt::SetPat { mbz_ok, pat_index } => {
                    if !mbz_ok {
                        return Err(libc::EINVAL);
                    }
                    if !self.dev.profile.has_set_pat {
                        return Err(libc::ENODEV);
                    }
                    // Xe_LPG has PAT indices 0..=4 (MTL); larger ones are rejected.
                    if *pat_index > 4 {
                        return Err(libc::EINVAL);
                    }
                }
            }
        }
        let lmem = placements.as_ref().is_some_and(|p| p.iter().any(|r| r.0 == MEMORY_CLASS_DEVICE));
        if flags & GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS != 0 && !lmem {
            return Err(libc::EINVAL);
        }
        self.new_object(size)
    }

    /// PRIME import: a new handle in this file for an object of another file.
    pub(crate) fn import(&mut self, obj: Arc<Object>) -> IoResult<u32> {
        if let Some((h, _)) = self.objects.iter().find(|(_, o)| Arc::ptr_eq(o, &obj)) {
            return Ok(h);
        }
        self.objects.insert(obj).ok_or(libc::ENOSPC)
    }

    /// The object behind `handle`.
    pub(crate) fn object(&self, handle: u32) -> Option<Arc<Object>> {
        self.objects.get(handle).cloned()
    }

    /// DRM_IOCTL_GEM_CLOSE: the handle goes; the memory lives on while the GPU or a
    /// mapping still uses it.
    pub(crate) fn gem_close(&mut self, handle: u32) -> IoResult<()> {
        let obj = self.objects.remove(handle).ok_or(libc::EINVAL)?;
        for c in self.contexts.values() {
            c.vm.unbind_object(&obj);
        }
        for v in self.vms.values() {
            v.unbind_object(&obj);
        }
        Ok(())
    }

    /// DRM_IOCTL_I915_GEM_SET_TILING → (tiling_mode, stride, swizzle_mode).
    pub(crate) fn set_tiling(&mut self, handle: u32, mode: u32, stride: u32) -> IoResult<(u32, u32, u32)> {
        let obj = self.object(handle).ok_or(libc::ENOENT)?;
        let ok = match mode {
            TILING_NONE => true,
            TILING_X => stride != 0 && stride.is_multiple_of(512) && stride <= 256 * 1024,
            TILING_Y => stride != 0 && stride.is_multiple_of(128) && stride <= 256 * 1024,
            _ => false,
        };
        if !ok {
            return Err(libc::EINVAL);
        }
        let stride = if mode == TILING_NONE { 0 } else { stride };
        let mut s = lock(&obj.state);
        s.tiling = mode;
        s.stride = stride;
        // Gen12 has no bit-6 swizzling: I915_BIT_6_SWIZZLE_NONE.
        Ok((mode, stride, 0))
    }

    /// DRM_IOCTL_I915_GEM_GET_TILING → (tiling_mode, swizzle_mode, phys_swizzle_mode).
    pub(crate) fn get_tiling(&self, handle: u32) -> IoResult<(u32, u32, u32)> {
        let obj = self.object(handle).ok_or(libc::ENOENT)?;
        let s = lock(&obj.state);
        Ok((s.tiling, 0, 0))
    }

    /// DRM_IOCTL_I915_GEM_SET_DOMAIN: waits for the GPU as i915 does.
    pub(crate) fn set_domain(&self, handle: u32, read: u32, write: u32) -> IoResult<()> {
        if write != 0 && read != write {
            return Err(libc::EINVAL);
        }
        if (read | write) & GEM_DOMAIN_GPU != 0 {
            return Err(libc::EINVAL);
        }
        let obj = self.object(handle).ok_or(libc::ENOENT)?;
        for f in obj.pending(write != 0) {
            if f.wait_timeout(self.dev.hang_timeout * 4).is_none() {
                return Err(libc::ETIME);
            }
        }
        Ok(())
    }

    /// DRM_IOCTL_I915_GEM_BUSY.
    pub(crate) fn busy(&self, handle: u32) -> IoResult<u32> {
        Ok(self.object(handle).ok_or(libc::ENOENT)?.busy())
    }

    /// DRM_IOCTL_I915_GEM_GET_APERTURE → (aper_size, aper_available_size).
    pub(crate) fn get_aperture(&self) -> (u64, u64) {
        (self.dev.profile.aperture_size, self.dev.profile.aperture_size)
    }

    /// DRM_IOCTL_I915_REG_READ (the whitelist of the profile).
    pub(crate) fn reg_read(&self, offset: u64) -> IoResult<u64> {
        let width = self.dev.profile.reg_read_width(offset).ok_or(libc::EINVAL)?;
        let ts = self.dev.timestamp();
        Ok(match width {
            8 => ts,
            _ => ts & 0xffff_ffff,
        })
    }

    /// DRM_IOCTL_I915_GETPARAM.
    pub(crate) fn getparam(&self, param: i32) -> IoResult<i32> {
        self.dev.profile.getparam(param)
    }

    /// One DRM_IOCTL_I915_QUERY item with i915's length protocol, on a zeroed user
    /// buffer of `length` bytes (what the host passes): `Err(errno)` when the whole
    /// ioctl fails, else the value i915 stores into `item.length` and, when data was
    /// copied, the data.
    pub(crate) fn query_item(&self, query_id: u64, flags: u32, length: i32) -> IoResult<(i32, Option<Vec<u8>>)> {
        let user = vec![0u8; usize::try_from(length).unwrap_or(0).min(1 << 20)];
        match self.dev.profile.answer_query_item(query_id, flags, length, &user)? {
            crate::profile::QueryReply::Length(l) => Ok((l, None)),
            crate::profile::QueryReply::Data { length, data } => Ok((length, Some(data))),
        }
    }

    // ---- contexts and VMs --------------------------------------------------------

    /// Looks a context up as i915's `i915_gem_context_lookup()` does, which finishes its
    /// creation.
    fn ctx(&self, id: u64) -> IoResult<&GemContext> {
        let id = u32::try_from(id).map_err(|_| libc::ENOENT)?;
        let c = self.contexts.get(id).ok_or(libc::ENOENT)?;
        c.used.store(true, Ordering::Relaxed);
        Ok(c)
    }

    fn parse_engines(&self, data: &[u8]) -> IoResult<Vec<Option<EngineDesc>>> {
        if data.len() < 8 || !(data.len() - 8).is_multiple_of(4) {
            return Err(libc::EINVAL);
        }
        if crate::proto::rd64(data, 0) != 0 {
            // A pointer into the VMM's memory: meaningless for the guest.
            crate::log::violation("ENGINES parameter with a non-zero extensions pointer");
            return Err(libc::EFAULT);
        }
        let n = (data.len() - 8) / 4;
        if n > 64 {
            return Err(libc::EINVAL);
        }
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let class = crate::proto::rd16(data, 8 + 4 * i);
            let inst = crate::proto::rd16(data, 10 + 4 * i);
            if class == ENGINE_CLASS_INVALID && inst == ENGINE_CLASS_INVALID_NONE {
                v.push(None);
            } else {
                v.push(Some(self.dev.engine(class, inst).ok_or(libc::EINVAL)?));
            }
        }
        Ok(v)
    }

    fn check_priority(size: u32, value: u64) -> IoResult<i64> {
        if size != 0 {
            return Err(libc::EINVAL);
        }
        let p = value as i64;
        if !(PRIORITY_MIN_USER..=PRIORITY_MAX_USER).contains(&p) {
            return Err(libc::EINVAL);
        }
        Ok(p)
    }

    fn apply_param(&self, c: &mut GemContext, p: &SetParam, creating: bool) -> IoResult<()> {
        let size0 = || if p.size != 0 { Err(libc::EINVAL) } else { Ok(()) };
        match p.param {
            CONTEXT_PARAM_NO_ERROR_CAPTURE => {
                size0()?;
                c.no_error_capture = p.value != 0;
            }
            CONTEXT_PARAM_BANNABLE => {
                size0()?;
                // The VMM runs as root here, so un-banning is permitted (CAP_SYS_ADMIN).
                c.state.bannable.store(p.value != 0, Ordering::Relaxed);
            }
            CONTEXT_PARAM_RECOVERABLE => {
                size0()?;
                c.recoverable = p.value != 0;
                c.state.unrecoverable.store(p.value == 0, Ordering::Relaxed);
            }
            CONTEXT_PARAM_PRIORITY => c.priority = File::check_priority(p.size, p.value)?,
            CONTEXT_PARAM_PERSISTENCE => {
                size0()?;
                c.persistence = p.value != 0;
            }
            CONTEXT_PARAM_SSEU => {
                if p.data.len() < 32 {
                    return Err(libc::EINVAL);
                }
                let class = crate::proto::rd16(&p.data, 0);
                let inst = crate::proto::rd16(&p.data, 2);
                if class != ENGINE_CLASS_RENDER || inst != 0 || crate::proto::rd32(&p.data, 4) != 0 {
                    return Err(libc::EINVAL);
                }
            }
            CONTEXT_PARAM_VM if creating || !c.used.load(Ordering::Relaxed) => {
                size0()?;
                let id = u32::try_from(p.value).map_err(|_| libc::ENOENT)?;
                c.vm = self.vms.get(id).cloned().ok_or(libc::ENOENT)?;
            }
            CONTEXT_PARAM_ENGINES if creating || !c.used.load(Ordering::Relaxed) => {
                c.engines = Some(self.parse_engines(&p.data)?)
            }
            CONTEXT_PARAM_PROTECTED_CONTENT => return Err(libc::ENODEV),
            _ => return Err(libc::EINVAL),
        }
        Ok(())
    }

    /// DRM_IOCTL_I915_GEM_CONTEXT_CREATE(_EXT).
    pub(crate) fn context_create(&mut self, flags: u32, params: &[SetParam]) -> IoResult<u32> {
        if flags & !(CONTEXT_CREATE_FLAGS_USE_EXTENSIONS | CONTEXT_CREATE_FLAGS_SINGLE_TIMELINE) != 0 {
            return Err(libc::EINVAL);
        }
        let mut c = self.new_context(Arc::new(Vm::default()));
        if flags & CONTEXT_CREATE_FLAGS_USE_EXTENSIONS != 0 {
            for p in params {
                if !p.base_ok || p.ctx_id != 0 {
                    return Err(libc::EINVAL);
                }
                self.apply_param(&mut c, p, true)?;
            }
        }
        // xa_alloc fails with EBUSY when the range is full.
        self.contexts.insert(c).ok_or(libc::EBUSY)
    }

    /// DRM_IOCTL_I915_GEM_CONTEXT_DESTROY.
    pub(crate) fn context_destroy(&mut self, ctx_id: u32, pad: u32) -> IoResult<()> {
        if pad != 0 {
            return Err(libc::EINVAL);
        }
        if ctx_id == 0 {
            return Err(libc::ENOENT);
        }
        self.contexts.remove(ctx_id).map(|_| ()).ok_or(libc::ENOENT)
    }

    /// DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM → (size, value).
    pub(crate) fn context_getparam(&mut self, ctx_id: u32, size: u32, param: u64) -> IoResult<(u32, u64)> {
        let c = self.ctx(u64::from(ctx_id))?;
        let v = match param {
            CONTEXT_PARAM_GTT_SIZE => VM_TOTAL,
            CONTEXT_PARAM_NO_ERROR_CAPTURE => u64::from(c.no_error_capture),
            CONTEXT_PARAM_BANNABLE => u64::from(c.state.bannable.load(Ordering::Relaxed)),
            CONTEXT_PARAM_RECOVERABLE => u64::from(c.recoverable),
            CONTEXT_PARAM_PRIORITY => c.priority as u64,
            CONTEXT_PARAM_PERSISTENCE => u64::from(c.persistence),
            CONTEXT_PARAM_SSEU => return Err(if size == 0 { libc::EINVAL } else { libc::ENODEV }),
            CONTEXT_PARAM_VM => {
                let vm = c.vm.clone();
                u64::from(self.vms.insert(vm).ok_or(libc::EBUSY)?)
            }
            _ => return Err(libc::EINVAL),
        };
        Ok((0, v))
    }

    /// DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM on an existing context.
    pub(crate) fn context_setparam(&mut self, ctx_id: u32, size: u32, param: u64, value: u64) -> IoResult<()> {
        let id = ctx_id;
        // Taken out (its id stays allocated) so that `apply_param` can look at the VMs.
        let mut c = self.contexts.take(id).ok_or(libc::ENOENT)?;
        let p = SetParam { base_ok: true, ctx_id, size, param, value, data: Vec::new() };
        let r = self.apply_param(&mut c, &p, false);
        self.contexts.restore(id, c);
        r
    }

    /// DRM_IOCTL_I915_GET_RESET_STATS → (reset_count, batch_active, batch_pending).
    pub(crate) fn reset_stats(&self, ctx_id: u32, flags: u32, pad: u32) -> IoResult<(u32, u32, u32)> {
        if flags != 0 || pad != 0 {
            return Err(libc::EINVAL);
        }
        let c = self.ctx(u64::from(ctx_id))?;
        Ok((
            self.dev.resets.load(Ordering::Relaxed),
            c.state.batch_active.load(Ordering::Relaxed),
            c.state.batch_pending.load(Ordering::Relaxed),
        ))
    }

    /// DRM_IOCTL_I915_GEM_VM_CREATE.
    pub(crate) fn vm_create(&mut self, extensions: u64, flags: u32) -> IoResult<u32> {
        if flags != 0 {
            return Err(libc::EINVAL);
        }
        if extensions != 0 {
            crate::log::violation("GEM_VM_CREATE with a non-zero extensions pointer");
            return Err(libc::EINVAL);
        }
        self.vms.insert(Arc::new(Vm::default())).ok_or(libc::EBUSY)
    }

    /// DRM_IOCTL_I915_GEM_VM_DESTROY.
    pub(crate) fn vm_destroy(&mut self, vm_id: u32, flags: u32, extensions: u64) -> IoResult<()> {
        if flags != 0 || extensions != 0 {
            return Err(libc::EINVAL);
        }
        self.vms.remove(vm_id).map(|_| ()).ok_or(libc::ENOENT)
    }

    // ---- execution -----------------------------------------------------------------

    fn engine_for(&self, c: &GemContext, flags: u64) -> IoResult<EngineDesc> {
        let idx = flags & EXEC_RING_MASK;
        if let Some(map) = &c.engines {
            if flags & EXEC_BSD_MASK != 0 {
                return Err(libc::EINVAL);
            }
            return map.get(idx as usize).copied().flatten().ok_or(libc::EINVAL);
        }
        let (class, inst) = match idx {
            0 | 1 => (ENGINE_CLASS_RENDER, 0),
            // i915's `eb_select_legacy_ring()`: with more than one video engine the BSD
            // selector picks one (default, ring 1, ring 2); 3 is invalid.
            2 if self.dev.engine(ENGINE_CLASS_VIDEO, 1).is_some() => match (flags & EXEC_BSD_MASK) >> 13 {
                0 | 1 => (ENGINE_CLASS_VIDEO, 0),
                2 => (ENGINE_CLASS_VIDEO, 1),
                _ => return Err(libc::EINVAL),
            },
            2 => (ENGINE_CLASS_VIDEO, 0),
            3 => (ENGINE_CLASS_COPY, 0),
            4 => (ENGINE_CLASS_VIDEO_ENHANCE, 0),
            _ => return Err(libc::EINVAL),
        };
        if idx != 2 && flags & EXEC_BSD_MASK != 0 {
            return Err(libc::EINVAL);
        }
        self.dev.engine(class, inst).ok_or(libc::EINVAL)
    }

    /// DRM_IOCTL_I915_GEM_EXECBUFFER2_WR with `I915_EXEC_FENCE_OUT`: validates, binds,
    /// relocates, queues the batch on its engine and returns the out-fence.
    pub(crate) fn execbuffer(&mut self, a: &ExecArgs) -> IoResult<Arc<Fence>> {
        if a.objects.is_empty() {
            return Err(libc::EINVAL);
        }
        if a.flags & EXEC_UNKNOWN_FLAGS != 0 {
            return Err(libc::EINVAL);
        }
        if a.flags & (EXEC_FENCE_IN | EXEC_FENCE_SUBMIT) != 0 && !a.have_in_fence {
            // i915 would try to use fd 0 of the VMM as a sync_file.
            return Err(libc::EINVAL);
        }
        if (a.batch_start_offset | a.batch_len) & 7 != 0 {
            return Err(libc::EINVAL);
        }
        let c = self.ctx(a.ctx_id)?;
        if c.state.banned.load(Ordering::Acquire) {
            return Err(libc::EIO);
        }
        let desc = self.engine_for(c, a.flags)?;
        let vm = c.vm.clone();
        let ctx_state = c.state.clone();

        // Look up and validate every object.
        let mut objs: Vec<Arc<Object>> = Vec::with_capacity(a.objects.len());
        for (e, _) in &a.objects {
            if e.flags & EXEC_OBJECT_UNKNOWN_FLAGS != 0 {
                return Err(libc::EINVAL);
            }
            if e.alignment != 0 && !e.alignment.is_power_of_two() {
                return Err(libc::EINVAL);
            }
            if e.flags & EXEC_OBJECT_PINNED != 0 && e.offset != canonical(e.offset & !(PAGE - 1)) {
                return Err(libc::EINVAL);
            }
            if e.flags & EXEC_OBJECT_PAD_TO_SIZE != 0 && e.rsvd1 % PAGE != 0 {
                return Err(libc::EINVAL);
            }
            let o = self.objects.get(e.handle).cloned().ok_or(libc::ENOENT)?;
            if objs.iter().any(|x| Arc::ptr_eq(x, &o)) {
                return Err(libc::EINVAL);
            }
            objs.push(o);
        }
        let batch_idx = if a.flags & EXEC_BATCH_FIRST != 0 { 0 } else { objs.len() - 1 };
        // i915 refuses a self-modifying batch.
        if a.objects[batch_idx].0.flags & EXEC_OBJECT_WRITE != 0 {
            return Err(libc::EINVAL);
        }
        let batch_obj = objs[batch_idx].clone();
        let start = u64::from(a.batch_start_offset);
        let len = if a.batch_len == 0 {
            batch_obj.size.checked_sub(start).ok_or(libc::EINVAL)?
        } else {
            u64::from(a.batch_len)
        };
        if len == 0 || start.checked_add(len).is_none_or(|end| end > batch_obj.size) {
            return Err(libc::EINVAL);
        }

        // Bind: softpinned objects where asked, others where they are or in a hole. As in
        // i915's `eb_reserve()`, an object bound earlier in this execbuffer is a conflict
        // (`EINVAL`); any other binding in the way, even of an object listed later, is
        // evicted (that object then binds at its own place in turn).
        for (i, ((e, _), o)) in a.objects.iter().zip(&objs).enumerate() {
            let placed = &objs[..i];
            let limit = if e.flags & EXEC_OBJECT_SUPPORTS_48B != 0 { VM_TOTAL } else { 1 << 32 };
            if e.flags & EXEC_OBJECT_PINNED != 0 {
                let at = noncanonical(e.offset);
                if at.checked_add(o.size).is_none_or(|end| end > limit) {
                    return Err(libc::EINVAL);
                }
                vm.bind_at(o, at, placed)?;
            } else if vm.address_of(o).is_none_or(|s| s + o.size > limit || (e.alignment > 1 && s % e.alignment != 0)) {
                // As i915's first try in `eb_pin_vma()`: the offset userspace presumes, when
                // that range is free; else a hole.
                let hint = noncanonical(e.offset);
                let at = if e.offset != 0 && vm.is_free(hint, o.size, e.alignment, limit) {
                    hint
                } else {
                    vm.find_hole(o.size, e.alignment, limit).ok_or(libc::ENOSPC)?
                };
                vm.bind_at(o, at, placed)?;
            }
        }

        // Relocations (gen8+: 64-bit values).
        for ((_, relocs), o) in a.objects.iter().zip(&objs) {
            for r in relocs {
                let target = if a.flags & EXEC_HANDLE_LUT != 0 {
                    objs.get(r.target_handle as usize).cloned().ok_or(libc::ENOENT)?
                } else {
                    let t = self.objects.get(r.target_handle).cloned().ok_or(libc::ENOENT)?;
                    if !objs.iter().any(|x| Arc::ptr_eq(x, &t)) {
                        return Err(libc::ENOENT);
                    }
                    t
                };
                if r.write_domain & r.write_domain.wrapping_sub(1) != 0
                    || (r.write_domain | r.read_domains) & !GEM_DOMAIN_GPU != 0
                {
                    return Err(libc::EINVAL);
                }
                if r.offset % 4 != 0 || r.offset.checked_add(8).is_none_or(|e| e > o.size) {
                    return Err(libc::EINVAL);
                }
                let va = vm.address_of(&target).ok_or(libc::EINVAL)?;
                let value = canonical(va.wrapping_add(u64::from(r.delta)));
                o.mem.write_u64(r.offset, value).map_err(|_| libc::EFAULT)?;
            }
        }

        let batch_va = vm.address_of(&batch_obj).ok_or(libc::EINVAL)? + start;
        let fence = Arc::new(Fence::new());
        // Implicit synchronisation: wait for earlier writers (and readers, when
        // writing) unless the object opted out with EXEC_OBJECT_ASYNC.
        let mut deps = Vec::new();
        for ((e, _), o) in a.objects.iter().zip(&objs) {
            let write = e.flags & EXEC_OBJECT_WRITE != 0;
            if e.flags & EXEC_OBJECT_ASYNC == 0 {
                deps.extend(o.pending(write));
            }
            let mut s = lock(&o.state);
            Object::prune(&mut s.activity);
            if write {
                s.activity.write = Some((fence.clone(), desc.class));
                s.activity.reads.clear();
            } else {
                s.activity.reads.push((fence.clone(), desc.class));
            }
        }
        let key = (desc.class, desc.instance);
        if !self.engines.contains_key(&key) {
            let w = EngineWorker::spawn(self.dev.clone(), desc)?;
            self.engines.insert(key, w);
        }
        let job = Job { vm, ctx: ctx_state, batch_va, fence: fence.clone(), deps, _keep: objs };
        match self.engines.get(&key) {
            Some(w) if w.tx.send(job).is_ok() => Ok(fence),
            _ => {
                fence.signal(-libc::EIO);
                Err(libc::EIO)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ExecObject, Reloc};

    fn file() -> File {
        let p = crate::profile::by_name("tgl-gt2").expect("profile");
        File::open(Arc::new(Device::new(p, Duration::from_millis(200))))
    }

    fn exec(f: &mut File, ctx: u64, flags: u64, objs: Vec<(ExecObject, Vec<Reloc>)>) -> IoResult<Arc<Fence>> {
        f.execbuffer(&ExecArgs {
            flags,
            ctx_id: ctx,
            batch_start_offset: 0,
            batch_len: 0,
            objects: objs,
            have_in_fence: false,
        })
    }

    fn pinned(handle: u32, va: u64, write: bool) -> ExecObject {
        ExecObject {
            handle,
            offset: va,
            flags: EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B | if write { EXEC_OBJECT_WRITE } else { 0 },
            ..Default::default()
        }
    }

    const END: u32 = 0x0a << 23;
    const SDI: u32 = 0x20 << 23;

    fn write_batch(f: &File, h: u32, dws: &[u32]) {
        let o = f.object(h).expect("obj");
        for (i, d) in dws.iter().enumerate() {
            o.mem.write_u32(4 * i as u64, *d).expect("w");
        }
    }

    #[test]
    fn softpinned_store_lands_and_fence_signals() {
        let mut f = file();
        let batch = f.gem_create(4096).expect("create");
        let target = f.gem_create(100).expect("create");
        assert_eq!(f.object(target).expect("o").size, 4096);
        write_batch(&f, batch, &[SDI | 2, 0x20_0010, 0x1, 0xfeed, END]);
        let fence = exec(
            &mut f,
            0,
            EXEC_BATCH_FIRST,
            vec![(pinned(batch, 0x10_0000, false), vec![]), (pinned(target, 0x1_0020_0000, true), vec![])],
        )
        .expect("exec");
        assert_eq!(fence.wait(), 0);
        assert_eq!(f.object(target).expect("o").mem.read_u32(0x10).expect("r"), 0xfeed);
        assert_eq!(f.busy(target), Ok(0));
    }

    #[test]
    fn closing_a_busy_object_keeps_it_bound_until_idle() {
        const SEMAPHORE_WAIT_EQ: u32 = (0x1c << 23) | (1 << 15) | (4 << 12) | 2;
        let mut f = file();
        let batch = f.gem_create(4096).expect("create");
        let sem = f.gem_create(4096).expect("create");
        write_batch(&f, batch, &[SEMAPHORE_WAIT_EQ, 1, 0x20_0000, 0, SDI | 2, 0x20_0010, 0, 0x99, END]);
        let sem_obj = f.object(sem).expect("o");
        let fence = exec(
            &mut f,
            0,
            EXEC_BATCH_FIRST,
            vec![(pinned(batch, 0x10_0000, false), vec![]), (pinned(sem, 0x20_0000, true), vec![])],
        )
        .expect("exec");
        // Both handles go while the batch spins; it must still find its pages.
        f.gem_close(batch).expect("close");
        f.gem_close(sem).expect("close");
        sem_obj.mem.write_u32(0, 1).expect("w");
        assert_eq!(fence.wait(), 0);
        assert_eq!(sem_obj.mem.read_u32(0x10).expect("r"), 0x99);
        // Idle now: a new object can take the range.
        let other = f.gem_create(4096).expect("create");
        write_batch(&f, other, &[END]);
        let fence = exec(&mut f, 0, 0, vec![(pinned(other, 0x10_0000, false), vec![])]).expect("exec");
        assert_eq!(fence.wait(), 0);
    }

    #[test]
    fn bsd_selector_with_two_video_engines() {
        let mut f = file();
        let b = f.gem_create(4096).expect("create");
        write_batch(&f, b, &[END]);
        let objs = || vec![(pinned(b, 0x10_0000, false), vec![])];
        for sel in [0u64, 1, 2] {
            assert_eq!(exec(&mut f, 0, 2 | sel << 13, objs()).map(|x| x.wait()), Ok(0), "selector {sel}");
        }
        assert_eq!(exec(&mut f, 0, 2 | 3 << 13, objs()).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 1 | 1 << 13, objs()).err(), Some(libc::EINVAL));
    }

    #[test]
    fn relocations_with_handle_lut() {
        let mut f = file();
        let target = f.gem_create(4096).expect("create");
        let batch = f.gem_create(4096).expect("create");
        write_batch(&f, batch, &[SDI | 2, 0, 0, 0x77, END]);
        let reloc = Reloc { target_handle: 0, delta: 0x40, offset: 4, ..Default::default() };
        let obj = |h| ExecObject { handle: h, flags: EXEC_OBJECT_SUPPORTS_48B, ..Default::default() };
        let fence =
            exec(&mut f, 0, EXEC_HANDLE_LUT, vec![(obj(target), vec![]), (obj(batch), vec![reloc])]).expect("exec");
        assert_eq!(fence.wait(), 0);
        assert_eq!(f.object(target).expect("o").mem.read_u32(0x40).expect("r"), 0x77);
    }

    /// Issue 10 through execbuffer: iris/ANV's GPGPU PIPELINE_SELECT and gen12 aux-table
    /// invalidation wait complete; an unknown command is skipped and counted.
    #[test]
    fn mesa_batches_complete_and_unknown_commands_are_counted() {
        let mut f = file();
        let batch = f.gem_create(4096).expect("create");
        #[rustfmt::skip]
        let dws = [
            0x7a00_0004, 1 << 20, 0, 0, 0, 0, // PIPE_CONTROL, CS stall
            0x6904_1312, // PIPELINE_SELECT (GPGPU)
            (0x22 << 23) | 1, 0x4208, 1, // LRI GFX_CCS_AUX_NV = 1
            0x0e01_c002, 0, 0x4208, 0, // MI_SEMAPHORE_WAIT, register poll, == 0
            0x1f80_0000, 0, // MI opcode 0x3f: no such command
            0, 0, END,
        ];
        write_batch(&f, batch, &dws);
        let ctx = f.context_create(0, &[]).expect("ctx");
        let fence = exec(&mut f, u64::from(ctx), 0, vec![(pinned(batch, 0x10_0000, false), vec![])]).expect("exec");
        assert_eq!(fence.wait(), 0);
        assert_eq!(f.dev.unknown_cmds.load(Ordering::Relaxed), 1);
        assert_eq!(f.ctx(u64::from(ctx)).expect("ctx").state.unknown_cmds.load(Ordering::Relaxed), 1);
        assert_eq!(f.dev.gen(), 120);
    }

    #[test]
    fn hang_bans_the_context_and_counts() {
        let mut f = file();
        let batch = f.gem_create(4096).expect("create");
        write_batch(&f, batch, &[(0x31 << 23) | (1 << 8) | 1, 0x10_0000, 0]);
        // A recoverable context survives two hangs; the third in quick succession bans it.
        let ctx = f.context_create(0, &[]).expect("ctx");
        for _ in 0..3 {
            let fence = exec(&mut f, u64::from(ctx), 0, vec![(pinned(batch, 0x10_0000, false), vec![])]).expect("exec");
            assert_eq!(fence.wait(), -libc::EIO);
        }
        assert_eq!(
            exec(&mut f, u64::from(ctx), 0, vec![(pinned(batch, 0x10_0000, false), vec![])]).err(),
            Some(libc::EIO)
        );
        // An unrecoverable one goes at the first.
        let norecover =
            SetParam { base_ok: true, ctx_id: 0, size: 0, param: CONTEXT_PARAM_RECOVERABLE, value: 0, data: vec![] };
        let ctx = f.context_create(CONTEXT_CREATE_FLAGS_USE_EXTENSIONS, &[norecover]).expect("ctx");
        let fence = exec(&mut f, u64::from(ctx), 0, vec![(pinned(batch, 0x10_0000, false), vec![])]).expect("exec");
        assert_eq!(fence.wait(), -libc::EIO);
        assert_eq!(
            exec(&mut f, u64::from(ctx), 0, vec![(pinned(batch, 0x10_0000, false), vec![])]).err(),
            Some(libc::EIO)
        );
        let (resets, active, _) = f.reset_stats(ctx, 0, 0).expect("stats");
        assert_eq!((resets, active), (4, 1));
        f.context_destroy(ctx, 0).expect("destroy");
        assert_eq!(f.reset_stats(ctx, 0, 0).err(), Some(libc::ENOENT));
    }

    #[test]
    fn execbuffer_validation_errors() {
        let mut f = file();
        let b = f.gem_create(4096).expect("create");
        write_batch(&f, b, &[END]);
        let ok = || vec![(pinned(b, 0x10_0000, false), vec![])];
        assert_eq!(exec(&mut f, 0, 1 << 40, ok()).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 5, ok()).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 9, 0, ok()).err(), Some(libc::ENOENT));
        assert_eq!(exec(&mut f, 0, EXEC_FENCE_IN, ok()).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 0, vec![]).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 0, vec![(pinned(77, 0x10_0000, false), vec![])]).err(), Some(libc::ENOENT));
        assert_eq!(exec(&mut f, 0, 0, vec![(pinned(b, 0x10_0800, false), vec![])]).err(), Some(libc::EINVAL));
        let dup = vec![(pinned(b, 0x10_0000, false), vec![]), (pinned(b, 0x20_0000, false), vec![])];
        assert_eq!(exec(&mut f, 0, 0, dup).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 0, vec![(pinned(b, 0x10_0000, true), vec![])]).err(), Some(libc::EINVAL));
        assert_eq!(exec(&mut f, 0, 0, ok()).map(|x| x.wait()), Ok(0));
    }

    /// IGT's gem_softpin@safe-alignment: two objects trade places in the next execbuffer.
    /// i915 evicts what is in the way unless this execbuffer bound it already.
    #[test]
    fn softpinned_objects_trade_places() {
        let mut f = file();
        let a = f.gem_create(4096).expect("create");
        let b = f.gem_create(4096).expect("create");
        write_batch(&f, b, &[END]);
        write_batch(&f, a, &[END]);
        let at = |h, va| (pinned(h, va, false), vec![]);
        assert_eq!(exec(&mut f, 0, 0, vec![at(a, 0), at(b, 0x1000)]).map(|x| x.wait()), Ok(0));
        assert_eq!(exec(&mut f, 0, 0, vec![at(b, 0), at(a, 0x1000)]).map(|x| x.wait()), Ok(0));
        let c = f.ctx(0).expect("ctx");
        assert_eq!(c.vm.address_of(&f.object(b).expect("o")), Some(0));
        assert_eq!(c.vm.address_of(&f.object(a).expect("o")), Some(0x1000));
        // Two objects of one execbuffer on one range are a conflict.
        assert_eq!(exec(&mut f, 0, 0, vec![at(a, 0x2000), at(b, 0x2000)]).err(), Some(libc::EINVAL));
    }

    #[test]
    fn engine_maps_select_engines() {
        let mut f = file();
        let mut data = vec![0u8; 16];
        data[8..10].copy_from_slice(&ENGINE_CLASS_RENDER.to_le_bytes());
        data[12..14].copy_from_slice(&ENGINE_CLASS_COPY.to_le_bytes());
        let p = SetParam { base_ok: true, ctx_id: 0, size: 8, param: CONTEXT_PARAM_ENGINES, value: 0, data };
        let ctx = f.context_create(CONTEXT_CREATE_FLAGS_USE_EXTENSIONS, &[p]).expect("ctx");
        let b = f.gem_create(4096).expect("create");
        write_batch(&f, b, &[END]);
        let objs = || vec![(pinned(b, 0x10_0000, false), vec![])];
        assert_eq!(exec(&mut f, u64::from(ctx), 1, objs()).map(|x| x.wait()), Ok(0));
        assert_eq!(exec(&mut f, u64::from(ctx), 2, objs()).err(), Some(libc::EINVAL));
        let bad =
            SetParam { base_ok: true, ctx_id: 0, size: 0, param: CONTEXT_PARAM_PRIORITY, value: 5000, data: vec![] };
        assert_eq!(f.context_create(CONTEXT_CREATE_FLAGS_USE_EXTENSIONS, &[bad]).err(), Some(libc::EINVAL));
    }

    #[test]
    fn unpinned_objects_go_where_userspace_presumes() {
        let mut f = file();
        let b = f.gem_create(4096).expect("create");
        write_batch(&f, b, &[END]);
        let hinted = ExecObject { handle: b, offset: 48 << 20, ..Default::default() };
        assert_eq!(exec(&mut f, 0, 0, vec![(hinted, vec![])]).map(|x| x.wait()), Ok(0));
        let c = f.ctx(0).expect("ctx");
        assert_eq!(c.vm.address_of(&f.object(b).expect("o")), Some(48 << 20));
    }

    #[test]
    fn unused_contexts_take_a_vm() {
        let mut f = file();
        let vm = f.vm_create(0, 0).expect("vm");
        let ctx = f.context_create(0, &[]).expect("ctx");
        assert_eq!(f.context_setparam(ctx, 0, CONTEXT_PARAM_VM, u64::MAX), Err(libc::ENOENT));
        assert_eq!(f.context_setparam(ctx, 0, CONTEXT_PARAM_VM, u64::from(vm)), Ok(()));
        assert_eq!(f.context_setparam(0, 0, CONTEXT_PARAM_VM, u64::from(vm)), Err(libc::EINVAL));
        // Once used, it keeps its VM.
        f.context_getparam(ctx, 0, CONTEXT_PARAM_GTT_SIZE).expect("getparam");
        assert_eq!(f.context_setparam(ctx, 0, CONTEXT_PARAM_VM, u64::from(vm)), Err(libc::EINVAL));
    }

    #[test]
    fn vm_ids_and_params() {
        let mut f = file();
        let (_, vm) = f.context_getparam(0, 0, CONTEXT_PARAM_VM).expect("vm");
        assert!(vm >= 1);
        assert_eq!(f.context_getparam(0, 0, CONTEXT_PARAM_GTT_SIZE), Ok((0, VM_TOTAL)));
        let v2 = f.vm_create(0, 0).expect("vm");
        assert_eq!(f.vm_create(0, 1).err(), Some(libc::EINVAL));
        f.vm_destroy(v2, 0, 0).expect("destroy");
        assert_eq!(f.vm_destroy(v2, 0, 0).err(), Some(libc::ENOENT));
        assert_eq!(f.context_setparam(0, 0, CONTEXT_PARAM_VM, vm), Err(libc::EINVAL));
        assert_eq!(f.context_setparam(0, 0, CONTEXT_PARAM_RECOVERABLE, 0), Ok(()));
        assert_eq!(f.context_destroy(0, 0), Err(libc::ENOENT));
    }

    /// Context, VM and GEM handle ids are the lowest free ones, as i915 and the DRM
    /// core hand them out, however many were used before.
    #[test]
    fn ids_are_lowest_free() {
        let mut f = file();
        for _ in 0..10_000 {
            let c = f.context_create(0, &[]).expect("context");
            assert_eq!(c, 1);
            f.context_destroy(c, 0).expect("destroy");
        }
        let (c1, c2, c3) = (f.context_create(0, &[]), f.context_create(0, &[]), f.context_create(0, &[]));
        assert_eq!((c1, c2, c3), (Ok(1), Ok(2), Ok(3)));
        f.context_destroy(2, 0).expect("destroy");
        assert_eq!(f.context_create(0, &[]), Ok(2));
        assert_eq!(f.context_destroy(0, 0), Err(libc::ENOENT), "the default context stays");
        assert!(f.ctx(0).is_ok());

        for _ in 0..10_000 {
            let v = f.vm_create(0, 0).expect("vm");
            assert_eq!(v, 1);
            f.vm_destroy(v, 0, 0).expect("destroy");
        }
        let v1 = f.vm_create(0, 0).expect("vm");
        let (_, v2) = f.context_getparam(1, 0, CONTEXT_PARAM_VM).expect("vm of ctx 1");
        assert_eq!((v1, v2), (1, 2));
        f.vm_destroy(v1, 0, 0).expect("destroy");
        assert_eq!(f.vm_create(0, 0), Ok(1));

        for _ in 0..10_000 {
            let h = f.gem_create(4096).expect("bo");
            assert_eq!(h, 1);
            f.gem_close(h).expect("close");
        }
        let hs: Vec<u32> = (0..4).map(|_| f.gem_create(4096).expect("bo")).collect();
        assert_eq!(hs, [1, 2, 3, 4]);
        f.gem_close(3).expect("close");
        f.gem_close(1).expect("close");
        assert_eq!(f.gem_create(4096), Ok(1));
        assert_eq!(f.gem_create(4096), Ok(3));
        assert_eq!(f.gem_create(4096), Ok(5));
    }

    #[test]
    fn tiling_rules() {
        let mut f = file();
        let h = f.gem_create(8192).expect("create");
        assert_eq!(f.set_tiling(h, TILING_X, 512), Ok((TILING_X, 512, 0)));
        assert_eq!(f.get_tiling(h), Ok((TILING_X, 0, 0)));
        assert_eq!(f.set_tiling(h, TILING_X, 100), Err(libc::EINVAL));
        assert_eq!(f.set_tiling(h, 7, 512), Err(libc::EINVAL));
        assert_eq!(f.set_tiling(99, 0, 0), Err(libc::ENOENT));
        assert_eq!(f.set_domain(h, 1, 1), Ok(()));
        assert_eq!(f.set_domain(h, 2, 0), Err(libc::EINVAL));
    }

    #[test]
    fn implicit_sync_orders_engines() {
        let mut f = file();
        let sem = f.gem_create(4096).expect("create");
        let b1 = f.gem_create(4096).expect("create");
        let b2 = f.gem_create(4096).expect("create");
        // Render batch: wait until sem[0] == 1 (never, until the copy batch writes it,
        // but the copy batch is ordered *after* it by implicit sync: so it hangs).
        write_batch(&f, b1, &[(0x1c << 23) | (1 << 15) | (4 << 12) | 2, 1, 0x30_0000, 0, END]);
        write_batch(&f, b2, &[SDI | 2, 0x30_0000, 0, 1, END]);
        let f1 =
            exec(&mut f, 0, 0, vec![(pinned(sem, 0x30_0000, true), vec![]), (pinned(b1, 0x10_0000, false), vec![])])
                .expect("exec");
        let f2 =
            exec(&mut f, 0, 3, vec![(pinned(sem, 0x30_0000, true), vec![]), (pinned(b2, 0x20_0000, false), vec![])]);
        // Context 0 got banned by the hang, or the copy batch ran after it.
        assert_eq!(f1.wait(), -libc::EIO);
        if let Ok(f2) = f2 {
            f2.wait();
        }
    }
}
