// SPDX-License-Identifier: GPL-2.0

//! The host context of one DRM file: its virtio context, its response page and the
//! synchronous ccmd path.
//!
//! Many ccmds can be in flight per context: Mesa shares one file between all its threads.
//! Each gets its own response slot, allocated in the response area of the shared page
//! (errata #2-#3), and a seqno and fence id taken under the context's submit lock, so that
//! their order is the order of the commands on the queue. A ccmd is sent as an unfenced
//! SUBMIT_3D: the host runs ccmds synchronously while it processes that command and the
//! VMM answers it right after, so the answer means "done" (with `fenced_ccmds=1`, a
//! SUBMIT_3D fenced on ring 0 of the context, as Mesa sends them; the fence retires as
//! soon as the host has processed it, and the caller waits for its DMA fence, signalled by
//! the fence event path of [`crate::fence`]). Measured under TCG, the fenced round trip
//! takes about twice as long (the answer, then the fence work, then the waiter). The host
//! processes a context's ccmds in order and
//! publishes each one's seqno; a ccmd it rejected publishes none and leaves its slot's
//! sentinel, so the call fails with `EIO` instead of waiting forever.
//!
//! A caller that gives up (signal, timeout) after its ccmd was queued leaves the slot to
//! the host: it is reused only once the host answered that command or published a later
//! seqno.

use core::sync::atomic::{
    AtomicBool,
    AtomicU32,
    AtomicU64,
    Ordering, //
};
use kernel::{
    dma_fence::{
        Fence,
        SignalFence, //
    },
    new_condvar,
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex, //
    },
    time::{
        msecs_to_jiffies,
        Jiffies, //
    },
    virtio::shm::ShmMapping,
    xarray::{
        AllocKind,
        XArray, //
    }, //
};

use crate::{
    ccmd::{
        self,
        Ccmd,
        GemExecbuffer2,
        IoctlSimple,
        RET_SENTINEL,
        RSP_MEM_OFFSET,
        SHMEM_RSP_MEM_OFFSET,
        SHMEM_SEQNO, //
    },
    driver::Bound,
    fence::{
        FenceEvent,
        Timeline, //
    },
    gem::IoctlDevice,
    gem_context::ResetStats,
    hostmem::RangeAllocator,
    protocol::{
        CtxCreate,
        CtxDestroy,
        ResourceCmd,
        ResourceCreateBlob,
        ResourceMapBlob,
        Submit3d,
        BLOB_FLAG_USE_MAPPABLE,
        CAPSET_DRM,
        MAP_CACHE_CACHED, //
    },
    shared::{
        Client,
        FenceKind,
        Shared, //
    },
    transport::{
        Abandoned,
        ControlQueue,
        Pending,
        Wait,
        COMMAND_TIMEOUT_MS, //
    },
};

/// Size of the response page.
const SHMEM_SIZE: usize = crate::shared::RESPONSE_PAGE as usize;
/// Size of the response area, after the `struct i915_shmem` header: the slots of
/// synchronous ccmds, then the [`ExecSlots`] of unwaited execbuffers.
const RSP_AREA_LEN: usize = SHMEM_SIZE - RSP_MEM_OFFSET as usize;
/// Size of the part of the response area for synchronous ccmds.
const AREA_LEN: usize = RSP_AREA_LEN - EXEC_POOL_LEN;
/// Alignment of response slots (the host's responses hold 64-bit fields).
const SLOT_ALIGN: u64 = 8;
/// The slot of a ccmd the host does not answer: room for the pre-filled response header.
const SCRATCH_SLOT: usize = 16;
/// How long closing a file waits for its batches before the host context goes.
const BATCH_DRAIN_MS: u32 = 10_000;
/// How long an accepted batch's fenced submit waits for room on the control queue.
const FENCE_ROOM_MS: u32 = 60_000;
/// Most execbuffers in flight unwaited at once per host context: each holds one of the
/// [`ExecSlots`] until its fence signals; the next waits for the host's answer.
const MAX_UNWAITED: usize = 128;
/// The response slot of an unwaited execbuffer.
const EXEC_SLOT: usize = 16;
/// Size of the [`ExecSlots`] pool, at the end of the response area.
const EXEC_POOL_LEN: usize = MAX_UNWAITED * EXEC_SLOT;
const _: () = {
    assert!(MAX_UNWAITED % 64 == 0);
    assert!(EXEC_POOL_LEN <= RSP_AREA_LEN / 4);
    assert!(AREA_LEN % SLOT_ALIGN as usize == 0 && EXEC_SLOT % SLOT_ALIGN as usize == 0);
    // The pre-filled head (`prefill_slot()`) and the answer fit in a slot.
    assert!(size_of::<crate::ccmd::GemExecbuffer2Rsp>() <= EXEC_SLOT && 12 <= EXEC_SLOT);
};
/// How often a caller waiting for a response slot looks at abandoned ones again.
const ORPHAN_RECHECK_MS: u32 = 5;

/// The kernel mappings of the host contexts' response pages, by virtio context id. They
/// live in the registration data ([`Bound`]), so they go with the binding.
pub(crate) struct ResponsePages<'bound> {
    map: Pin<KBox<XArray<KBox<Arc<ShmMapping<'bound>>>>>>,
}

impl<'bound> ResponsePages<'bound> {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            map: KBox::pin_init(XArray::new(AllocKind::Alloc), GFP_KERNEL)?,
        })
    }

    fn insert(&self, ctx: u32, page: ShmMapping<'bound>) -> Result {
        let page = KBox::new(Arc::new(page, GFP_KERNEL)?, GFP_KERNEL)?;
        let old = self
            .map
            .lock()
            .store(ctx as usize, page, GFP_KERNEL)
            .map_err(|e| e.error)?;
        // Context ids are unique among live contexts: there was nothing.
        drop(old);
        Ok(())
    }

    fn get(&self, ctx: u32) -> Option<Arc<ShmMapping<'bound>>> {
        self.map.lock().get(ctx as usize).map(|p| (*p).clone())
    }

    fn remove(&self, ctx: u32) {
        let page = self.map.lock().remove(ctx as usize);
        // Unmapped here, outside the array's spinlock.
        drop(page);
    }
}

/// A host context, from the moment its creation is queued.
///
/// The flags say which host objects may exist, and [`HostContext::teardown`] releases
/// exactly those, so a value left half-built by an error or a signal in
/// [`HostContext::new`] cleans up too. The response page is mapped in [`Bound::pages`]
/// under `ctx_id`.
///
/// # Invariants
///
/// - `CTX_CREATE` for `ctx_id` was queued;
/// - `blob_created`: `RESOURCE_CREATE_BLOB` for `shmem_res` was queued;
/// - `mapped`: `RESOURCE_MAP_BLOB` for it was queued at `shmem_off`, a window range this
///   context holds (`shmem_off != u64::MAX` whenever the range is allocated);
/// - once `torn_down`, the ids and the range are no longer this context's.
pub(crate) struct HostContext {
    shared: Arc<Shared>,
    ctx_id: u32,
    shmem_res: u32,
    shmem_off: u64,
    blob_created: bool,
    mapped: bool,
    torn_down: AtomicBool,
    /// The next GEM `blob_id`.
    next_blob: AtomicU32,
    /// See [`HostContext::gen`].
    gen: u64,
    calls: Pin<KBox<Calls>>,
    /// The fences of ring 0, which fenced ccmds use (only with `fenced_ccmds=1`).
    ring0: Option<Arc<Timeline>>,
}

/// Order of the ccmds of one context on the queue.
struct Submit {
    /// Seqno of the last ccmd queued.
    seqno: u32,
    /// Fence id of the last ccmd queued (per context and ring, as the host retires them).
    fence: u64,
}

/// A response slot whose answer the host may still write: freed once `done` or once the
/// host published `seqno` or a later one.
struct Orphan {
    seqno: u32,
    offset: u64,
    /// Tells when the device answered; `None` when only a published seqno frees the slot.
    done: Option<Abandoned>,
}

/// The slots the host may still write, and the order in which callers get new slots.
///
/// Callers take tickets and are served in ticket order, so a large request waiting for room
/// is not starved by small ones arriving after it.
struct SlotQueue {
    orphans: KVec<Orphan>,
    /// The next ticket to hand out.
    next: u64,
    /// The ticket that may allocate now.
    serving: u64,
    /// Tickets whose callers gave up before their turn (skipped when it comes).
    cancelled: KVec<u64>,
}

impl SlotQueue {
    /// Lets the next caller in line allocate.
    fn advance(&mut self) {
        self.serving += 1;
        while let Some(i) = self.cancelled.iter().position(|&t| t == self.serving) {
            let _ = self.cancelled.remove(i);
            self.serving += 1;
        }
    }
}

/// Frees the slots of abandoned ccmds the host is done with.
fn reclaim(area: &RangeAllocator, orphans: &mut KVec<Orphan>, published: u32) {
    let mut i = 0;
    while i < orphans.len() {
        let o = &orphans[i];
        let answered = o.done.as_ref().is_some_and(|d| d.is_done());
        if answered || seqno_reached(published, o.seqno) {
            let off = o.offset;
            let _ = orphans.remove(i);
            let _ = area.free(off);
        } else {
            i += 1;
        }
    }
}

/// The response slots of unwaited execbuffers: [`MAX_UNWAITED`] slots of [`EXEC_SLOT`]
/// bytes at offset [`AREA_LEN`] of the response area, taken and returned with one atomic
/// operation each (no allocation and no lock on the submit path).
///
/// # Invariants
///
/// Bit `i` of `used` is set while slot `i` has an owner: from [`ExecSlots::take`] until
/// its owner passes its offset to [`ExecSlots::put`].
struct ExecSlots {
    used: [AtomicU64; MAX_UNWAITED / 64],
}

impl ExecSlots {
    const fn new() -> Self {
        Self {
            used: [const { AtomicU64::new(0) }; MAX_UNWAITED / 64],
        }
    }

    /// A free slot's offset in the response area, now the caller's; `None` when all are
    /// taken.
    fn take(&self) -> Option<u64> {
        for (w, word) in self.used.iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            while cur != u64::MAX {
                let bit = (!cur).trailing_zeros();
                // Acquire: what the slot's previous owner did (reading its answer) happens
                // before the new owner pre-fills it.
                match word.compare_exchange_weak(
                    cur,
                    cur | (1 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some((AREA_LEN + (w * 64 + bit as usize) * EXEC_SLOT) as u64),
                    Err(now) => cur = now,
                }
            }
        }
        None
    }

    /// Whether `area_off` is the offset of one of these slots.
    fn index(area_off: u64) -> Option<usize> {
        let rel = usize::try_from(area_off).ok()?.checked_sub(AREA_LEN)?;
        (rel % EXEC_SLOT == 0 && rel / EXEC_SLOT < MAX_UNWAITED).then_some(rel / EXEC_SLOT)
    }

    /// Returns the slot at `area_off` (from [`Self::take`]; the caller owns it).
    fn put(&self, area_off: u64) {
        let bit = Self::index(area_off).and_then(|i| Some((self.used.get(i / 64)?, i % 64)));
        let Some((word, bit)) = bit else {
            kernel::pr_warn_once!("virtio_intel: not an execbuffer slot: {}\n", area_off);
            return;
        };
        let was = word.fetch_and(!(1u64 << bit), Ordering::Release);
        if was & (1u64 << bit) == 0 {
            // A second return: the slot may have a new owner already, and the host may
            // write it for that one.
            kernel::pr_warn_once!(
                "virtio_intel: execbuffer slot {} returned twice\n",
                area_off
            );
        }
    }
}

/// Pre-fills the head of the response slot at `rsp_off` for a ccmd of type `C` whose
/// answer takes `size` bytes: its capacity, and a `ret` the host never writes, which stays
/// if the host does not answer.
fn prefill_slot<C: Ccmd>(shm: &ShmMapping<'_>, rsp_off: u32, size: usize) -> Result {
    build_assert!(C::RET_AT <= 8);
    let mut head = [0u8; 12];
    head[0..4].copy_from_slice(&(size as u32).to_le_bytes());
    head[C::RET_AT..C::RET_AT + 4].copy_from_slice(&RET_SENTINEL.to_le_bytes());
    shm.write(RSP_MEM_OFFSET as usize + rsp_off as usize, &head)
}

/// Whether `published` is `seqno` or later (seqnos wrap).
fn seqno_reached(published: u32, seqno: u32) -> bool {
    published.wrapping_sub(seqno) as i32 >= 0
}

/// The state concurrent ccmds share.
#[pin_data]
struct Calls {
    #[pin]
    submit: Mutex<Submit>,
    /// Response slots of synchronous ccmds: ranges of the first [`AREA_LEN`] bytes of the
    /// response area (offsets from [`RSP_MEM_OFFSET`]); the rest is the [`ExecSlots`].
    #[pin]
    area: RangeAllocator,
    /// Slots whose answer the host may still write, and the callers' order. Its lock also
    /// orders freeing a slot against a caller that found the area full and is about to wait.
    #[pin]
    slots: Mutex<SlotQueue>,
    /// Signalled when a slot is freed.
    #[pin]
    freed: CondVar,
    /// The execbuffer rings' fence ids. Held from an execbuffer's ccmd to its fenced submit:
    /// the host fences a ring's latest execbuffer, so nothing may come between the two.
    #[pin]
    exec: Mutex<ExecRings>,
    /// The execbuffer timelines (held only briefly: `GEM_THROTTLE` and teardown look at
    /// them while an execbuffer waits for the host).
    #[pin]
    timelines: Mutex<KVec<RingTimeline>>,
    /// Per GEM context, the guilty-batch count (`batch_active`) of the host's reset
    /// statistics when it was last looked at (see [`ResetCheck`]).
    #[pin]
    resets_seen: Mutex<KVec<(u32, u32)>>,
    /// Set, before `resets_seen` records a reset count above 0 (under its lock), so that
    /// whoever sees such an entry sees this too: while it is clear no lookup is needed.
    reset_seen_any: AtomicBool,
    /// Per GEM context, the last reset statistics the host gave (`batch_active`,
    /// `batch_pending`), from `GET_RESET_STATS` or a [`ResetCheck`] (see
    /// [`HostContext::known_reset_stats`]).
    #[pin]
    stats_known: Mutex<KVec<(u32, u32, u32)>>,
    /// An entry of `stats_known` could not be recorded: it is no longer complete.
    stats_lost: AtomicBool,
    /// Response slots of unwaited execbuffers.
    exec_slots: ExecSlots,
}

/// Looks at whether a long batch hung, before its fence signals: virtio-gpu fences carry no
/// status, so the host's i915 resetting a hung batch retires its fence like any other. For
/// a batch that ran at least [`crate::fence::RESET_CHECK_AFTER_MS`], the timeline's work
/// asks the host for its GEM context's reset statistics (`GET_RESET_STATS`); if the count
/// of guilty batches grew since the last look, the batch's fence fails with `EIO`, as i915
/// fails a request it reset, and the device sends the `ERROR=1` uevent of a hang. The count
/// is per context, so a hang is put on the first long batch of that context that retires
/// after it. Held by the context's execbuffer timelines until it is torn down; it also
/// reads the answers of the execbuffers sent unwaited ([`ResetCheck::batch_answer`]).
pub(crate) struct ResetCheck {
    host: Arc<HostContext>,
    dev: ARef<IoctlDevice>,
}

impl ResetCheck {
    /// The queue the checks run on.
    pub(crate) fn queue(&self) -> &kernel::workqueue::OwnedQueue {
        &self.host.shared.exec_wq
    }

    /// Whether a batch of GEM context `gem_ctx` was reset since the last look. `false` when
    /// the device or the host cannot tell.
    pub(crate) fn batch_was_reset(&self, gem_ctx: u32) -> bool {
        let Some(guard) = self.dev.registration_guard() else {
            return false;
        };
        let reset = guard.registration_data_with(|bound| {
            let arg = ResetStats::query(gem_ctx);
            let stats = match self.host.call(
                bound,
                &IoctlSimple {
                    cmd: ccmd::simple::GET_RESET_STATS,
                    arg,
                },
            ) {
                Ok(Ok(s)) => s,
                _ => {
                    // Not looked at: what the guest knows of the statistics is incomplete.
                    self.host.calls.stats_lost.store(true, Ordering::Relaxed);
                    return false;
                }
            };
            let active = u32::from_le(stats.batch_active);
            if active > 0 {
                self.host
                    .calls
                    .reset_seen_any
                    .store(true, Ordering::Release);
            }
            self.host
                .note_reset_stats(gem_ctx, active, u32::from_le(stats.batch_pending));
            let mut seen = self.host.calls.resets_seen.lock();
            match seen.iter_mut().find(|(c, _)| *c == gem_ctx) {
                Some((_, n)) => {
                    let grew = active > *n;
                    *n = active;
                    grew
                }
                None => {
                    // First look: the context started with none.
                    if seen.push((gem_ctx, active), GFP_KERNEL).is_err() {
                        self.host.calls.stats_lost.store(true, Ordering::Relaxed);
                    }
                    active > 0
                }
            }
        });
        if reset {
            // The hang, then its recovery (the host's i915 already reset the engine), on the
            // primary node as i915 sends them (`intel_gt_reset_global()`): IGT's hang
            // detector fails a test on `ERROR=1`. Best effort: an event that cannot be sent
            // leaves the fence's error as the report.
            for env in [c"ERROR=1", c"ERROR=0"] {
                if let Err(e) = guard.uevent_change(&[env]) {
                    pr_debug!("virtio_intel: hang uevent not sent: {:?}\n", e);
                }
            }
        }
        reset
    }

    /// The host's answer to an execbuffer sent with its fence (see
    /// [`HostContext::execbuffer`]), in response slot `slot`, read if `read`; then frees the
    /// slot. The host is done with the slot: it ran the ccmd before it retired the fence,
    /// and a command never queued was never seen. `None` for an accepted batch (or when the
    /// device is gone, and its response area with it), else the host i915's errno, `EIO`
    /// for a ccmd the host did not run.
    pub(crate) fn batch_answer(&self, slot: u64, read: bool) -> Option<Error> {
        let answer = if read {
            self.dev.registration_guard().and_then(|guard| {
                guard.registration_data_with(|bound| {
                    let shm = bound.pages.get(self.host.ctx_id)?;
                    let at = (RSP_MEM_OFFSET as usize)
                        .checked_add(usize::try_from(slot).ok()?)?
                        .checked_add(GemExecbuffer2::RET_AT)?;
                    shm.read_u32(at).ok()
                })
            })
        } else {
            None
        };
        self.host.release_unwaited_slot(slot);
        let e = match u32::from_le(answer?) {
            0 => return None,
            RET_SENTINEL => EIO,
            errno => crate::file::host_errno(errno),
        };
        self.host
            .shared
            .stats
            .exec_refused
            .fetch_add(1, Ordering::Relaxed);
        kernel::pr_warn_once!(
            "virtio_intel: ctx {}: the host refused an execbuffer the guest had validated ({:?}); earlier fences of its ring may have signalled early\n",
            self.host.ctx_id,
            e
        );
        Some(e)
    }
}

/// Highest host ring (`1 +` the highest engine index).
pub(crate) const MAX_RING: u8 = 64;

/// The fences of execbuffers on host ring `ring` to engines of class `class`.
struct RingTimeline {
    /// The host ring (`1 +` the engine index).
    ring: u8,
    /// The `I915_ENGINE_CLASS_*` of the engines.
    class: u16,
    timeline: Arc<Timeline>,
}

/// The execbuffer side of a context.
struct ExecRings {
    /// The last fence id used on each host ring (by ring index; ring 0 is the ccmds').
    fence: [u64; MAX_RING as usize + 1],
}

impl HostContext {
    /// Creates a host context named `name` for the calling task.
    ///
    /// Every host object is recorded in `Self` before its command is queued, so an error or
    /// a signal at any step leaves a value whose [`Self::teardown`] releases whatever the
    /// host may have created; it runs here on error.
    ///
    /// # Errors
    ///
    /// `ENOSPC` when the host-visible window is full, `EIO` when the host refuses or answers
    /// nonsense, or the transport's errors (`ERESTARTSYS`, `ETIMEDOUT`).
    pub(crate) fn new(
        shared: &Arc<Shared>,
        bound: &Bound<'_>,
        name: &[u8],
        client: Client,
    ) -> Result<Self> {
        let ctx_id = shared.new_ctx_id()?;
        let shmem_res = match shared.new_res_id() {
            Ok(r) => r,
            Err(e) => {
                shared.release_ctx_id(ctx_id);
                return Err(e);
            }
        };
        let calls = KBox::pin_init(
            try_pin_init!(Calls {
                submit <- new_mutex!(Submit { seqno: 0, fence: 0 }),
                area <- RangeAllocator::new(AREA_LEN as u64, SLOT_ALIGN),
                slots <- new_mutex!(SlotQueue {
                    orphans: KVec::new(),
                    next: 0,
                    serving: 0,
                    cancelled: KVec::new(),
                }),
                freed <- new_condvar!(),
                exec <- new_mutex!(ExecRings {
                    fence: [0; MAX_RING as usize + 1],
                }),
                timelines <- new_mutex!(KVec::new()),
                resets_seen <- new_mutex!(KVec::new()),
                stats_known <- new_mutex!(KVec::new()),
                reset_seen_any: AtomicBool::new(false),
                stats_lost: AtomicBool::new(false),
                exec_slots: ExecSlots::new(),
            }),
            GFP_KERNEL,
        )
        .and_then(|calls| {
            let ring0 = if crate::module_parameters::fenced_ccmds.value() {
                Some(Timeline::new(ctx_id, 0, shared.stats.fences.clone())?)
            } else {
                None
            };
            Ok((calls, ring0))
        })
        .and_then(|c| shared.stats.add_client(ctx_id, client).map(|()| c));
        let (calls, ring0) = match calls {
            Ok(c) => c,
            Err(e) => {
                // Nothing was queued: both ids are free again.
                shared.release_res_id(shmem_res);
                shared.release_ctx_id(ctx_id);
                return Err(e);
            }
        };
        // From here on `teardown` (which forgets the client and the ids) undoes what was done.
        let mut this = Self {
            shared: shared.clone(),
            ctx_id,
            shmem_res,
            shmem_off: u64::MAX,
            blob_created: false,
            mapped: false,
            torn_down: AtomicBool::new(false),
            next_blob: AtomicU32::new(1),
            gen: shared.new_ctx_gen(),
            calls,
            ring0,
        };
        shared.stats.contexts.fetch_add(1, Ordering::Relaxed);
        match this.create(bound, name) {
            Ok(()) => Ok(this),
            Err(e) => {
                this.teardown(Some(bound));
                Err(e)
            }
        }
    }

    /// The host objects of [`Self::new`], each recorded before its command is queued.
    fn create(&mut self, bound: &Bound<'_>, name: &[u8]) -> Result {
        let (q, ctx_id, shmem_res) = (&bound.queue, self.ctx_id, self.shmem_res);
        let shared = self.shared.clone();
        q.call(&CtxCreate::new(ctx_id, CAPSET_DRM, name))?;
        self.blob_created = true;
        shared.stats.blobs.fetch_add(1, Ordering::Relaxed);
        q.call(&ResourceCreateBlob::host3d(
            ctx_id,
            shmem_res,
            BLOB_FLAG_USE_MAPPABLE,
            0,
            SHMEM_SIZE as u64,
        ))?;
        let off = shared.alloc_page_range(SHMEM_SIZE as u64)?;
        self.shmem_off = off;
        self.mapped = true;
        let map = q.call(&ResourceMapBlob::new(ctx_id, shmem_res, off))?;
        if map.cache() != MAP_CACHE_CACHED {
            // The response page is read through a write-back mapping.
            kernel::pr_warn_once!(
                "virtio_intel: host maps the response page with cache mode {}\n",
                map.cache()
            );
            return Err(EIO);
        }
        let shm = ShmMapping::new(bound.hostmem, off, SHMEM_SIZE)?;
        let rsp_off = shm.read_u32(SHMEM_RSP_MEM_OFFSET)?;
        if rsp_off != RSP_MEM_OFFSET {
            kernel::pr_warn_once!(
                "virtio_intel: host response area at {} (expected {}): unsupported protocol \
                 revision\n",
                rsp_off,
                RSP_MEM_OFFSET
            );
            return Err(EIO);
        }
        self.calls.submit.lock().seqno = shm.load_acquire_u32(SHMEM_SEQNO)?;
        bound.pages.insert(ctx_id, shm)
    }

    /// The virtio context id.
    pub(crate) fn id(&self) -> u32 {
        self.ctx_id
    }

    /// A `blob_id` for the next GEM object of this context: never 0, and not reused before
    /// 2^32 - 1 more objects (the host keeps a pending object under its id until
    /// `RESOURCE_CREATE_BLOB` takes it).
    pub(crate) fn new_blob_id(&self) -> u32 {
        loop {
            let id = self.next_blob.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    /// Whether an execbuffer of GEM context `gem_ctx` that the guest checked may go
    /// unwaited (see [`Self::execbuffer`]). The host refuses such an execbuffer only for
    /// what the guest cannot see, mostly a ban after a hang or a wedged GPU, which follow a
    /// reset. So no batch of the context may ever have been reset, and no batch of this
    /// file may have been in flight as long as a hang takes to be reset: then the host
    /// cannot have banned anything of it yet. At most [`MAX_UNWAITED`] go at once (see
    /// [`Self::execbuffer`]).
    pub(crate) fn may_send_unwaited(&self, gem_ctx: u32) -> bool {
        let age = kernel::time::Delta::from_millis(crate::fence::RESET_CHECK_AFTER_MS);
        !self.was_reset(gem_ctx)
            && !self
                .calls
                .timelines
                .lock()
                .iter()
                .any(|t| t.timeline.has_pending_older(None, age))
    }

    /// Whether a batch of GEM context `gem_ctx` was seen reset (see [`ResetCheck`]).
    pub(crate) fn was_reset(&self, gem_ctx: u32) -> bool {
        self.calls.reset_seen_any.load(Ordering::Acquire)
            && self
                .calls
                .resets_seen
                .lock()
                .iter()
                .any(|&(c, n)| c == gem_ctx && n > 0)
    }

    /// The context's generation: unique for the life of the device, unlike its id.
    pub(crate) fn gen(&self) -> u64 {
        self.gen
    }

    /// Largest payload a QUERY item can return through the response page (what the
    /// synchronous part of the area holds after the answer's header): about 14 KiB, far
    /// more than i915's items on the parts the driver serves.
    pub(crate) fn max_query_len(&self) -> usize {
        AREA_LEN - ccmd::QUERYPARAM_RSP_HEAD
    }

    /// Runs execbuffer `c` on the host, on host ring `ring` (`1 +` the engine index), an
    /// engine of class `class`, and returns the fence of its batch. `also` (the fence of an
    /// execbuffer that waited for its dependencies) signals with it; if the batch does not
    /// run, with the error returned.
    ///
    /// A fence on a ring whose last execbuffer failed would retire at once, and with it
    /// every earlier fence of the ring still running. So, unless `unwaited`, the ccmd goes
    /// first, unfenced, and its answer is waited for (without interruption: the batch must
    /// not run twice); only an execbuffer the host accepted is followed by a fenced
    /// SUBMIT_3D on the ring, which the host retires when that batch completed: two commands
    /// and a round trip. With `unwaited` (the caller checked everything the host's i915
    /// checks, see [`crate::execbuf`]), the ccmd travels in the fenced SUBMIT_3D itself and
    /// nothing is waited for, as Mesa's userspace driver submits; the host's answer, in a
    /// response slot held until the fence retires, is read before the fence signals, and a
    /// refusal all the same fails the fence with the host's errno. The rings' lock is held
    /// from the ccmd to the fence, so no other execbuffer of this context comes between them.
    ///
    /// # Errors
    ///
    /// The host i915's errno, `EINVAL` for a ring above [`MAX_RING`], `ENOMEM`, and the
    /// transport's errors: `ERESTARTSYS` only while nothing was queued.
    #[expect(clippy::too_many_arguments)]
    pub(crate) fn execbuffer(
        self: &Arc<Self>,
        dev: &IoctlDevice,
        bound: &Bound<'_>,
        c: GemExecbuffer2,
        ring: u8,
        class: u16,
        also: Option<SignalFence>,
        unwaited: bool,
    ) -> Result<Fence> {
        if ring == 0 || ring > MAX_RING {
            if let Some(also) = also {
                also.signal(Err(EINVAL));
            }
            return Err(EINVAL);
        }
        let mut ex = self.calls.exec.lock();
        let timeline = match self.exec_timeline(ring, class) {
            Ok(t) => t,
            Err(e) => {
                if let Some(also) = also {
                    also.signal(Err(e));
                }
                return Err(e);
            }
        };
        let id = ex.fence[ring as usize] + 1;
        // The fence exists before the batch does, so that nothing can fail once it runs. It
        // is handed out only if the batch runs; a fence id the host never sees is harmless
        // (it retires ids with `<=`).
        if !timeline.has_reset_check() {
            // Without memory for it, hangs go unreported (a later execbuffer tries again).
            if let Ok(check) = Arc::new(
                ResetCheck {
                    host: self.clone(),
                    dev: ARef::from(dev),
                },
                GFP_KERNEL,
            ) {
                timeline.set_reset_check(Some(check));
            }
        }
        let gem_ctx = u32::try_from(c.ctx_id).ok();
        // The answer of an unwaited execbuffer is read by the timeline's check.
        // Without a free slot at once, it is waited for instead.
        if unwaited && timeline.has_reset_check() {
            if let Some(slot) = self.take_unwaited_slot(bound, &c) {
                return self.execbuffer_unwaited(ex, &timeline, bound, c, (id, ring, slot), also);
            }
        }
        let (fence, event) = timeline.emit_for(id, gem_ctx, also)?;
        ex.fence[ring as usize] = id;
        let mut event = Some(event);
        if let Err(e) = self
            .call_once(bound, &c)
            .and_then(|r| r.map_err(crate::file::host_errno))
        {
            drop(ex);
            // The fence (and `also`) fail with the host's error.
            timeline.record(id, Err(e));
            drop(event);
            return Err(e);
        }
        // Each batch in flight holds a queue slot with its fence: room may take as long as a
        // batch does.
        let mut left = msecs_to_jiffies(FENCE_ROOM_MS);
        let sent = bound.queue.post(
            &Submit3d::fenced(self.ctx_id, 0, id, ring),
            KVec::new(),
            &mut event,
            Wait::Uninterruptible,
            &mut left,
        );
        drop(ex);
        // Not queued: the event fails the fence (ECANCELED), outside the lock.
        drop(event);
        match sent {
            Ok(()) => Ok(fence),
            Err(e) => {
                // The batch runs, but its completion cannot be known: say so rather than
                // report a fence that signals early.
                kernel::pr_warn_once!(
                    "virtio_intel: ctx {}: fence of ring {} not queued ({:?})\n",
                    self.ctx_id,
                    ring,
                    e
                );
                Err(EIO)
            }
        }
    }

    /// A response slot of the [`ExecSlots`] for unwaited execbuffer `c`, its head written,
    /// if one is free now (never waits).
    fn take_unwaited_slot(&self, bound: &Bound<'_>, c: &GemExecbuffer2) -> Option<u32> {
        let shm = bound.pages.get(self.ctx_id)?;
        let size = c.response_size();
        if size > EXEC_SLOT {
            return None;
        }
        let area_off = self.calls.exec_slots.take()?;
        // The pool is inside the response area, whose offsets are below `SHMEM_SIZE`.
        let rsp_off = u32::try_from(area_off).ok();
        match rsp_off.map(|o| prefill_slot::<GemExecbuffer2>(&shm, o, size)) {
            Some(Ok(())) => rsp_off,
            _ => {
                self.calls.exec_slots.put(area_off);
                None
            }
        }
    }

    /// Frees the slot of an unwaited execbuffer.
    fn release_unwaited_slot(&self, area_off: u64) {
        self.calls.exec_slots.put(area_off);
    }

    /// The unwaited path of [`Self::execbuffer`]: `c` in a SUBMIT_3D fenced with `id` on
    /// `ring`, its answer in response slot `rsp_off` (from [`Self::take_unwaited_slot`]),
    /// which the timeline frees; `ex` (the rings' lock) is held.
    fn execbuffer_unwaited(
        &self,
        mut ex: kernel::sync::MutexGuard<'_, ExecRings>,
        timeline: &Arc<Timeline>,
        bound: &Bound<'_>,
        c: GemExecbuffer2,
        (id, ring, rsp_off): (u64, u8, u32),
        also: Option<SignalFence>,
    ) -> Result<Fence> {
        let area_off = u64::from(rsp_off);
        let gem_ctx = u32::try_from(c.ctx_id).ok();
        // From here the timeline owns the slot: it frees it when the fence signals, also if
        // the command is never queued (the event is then dropped).
        let (fence, event) = match timeline.emit_exec(id, gem_ctx, also, Some(area_off)) {
            Ok(fe) => fe,
            Err(e) => {
                self.release_unwaited_slot(area_off);
                return Err(e);
            }
        };
        ex.fence[ring as usize] = id;
        let mut event = Some(event);
        // Each batch in flight holds a queue slot until it completes.
        let mut left = msecs_to_jiffies(FENCE_ROOM_MS);
        let sent = {
            let mut s = self.calls.submit.lock();
            let seqno = s.seqno.wrapping_add(1);
            c.into_wire(seqno, rsp_off).and_then(|bytes| {
                let len = u32::try_from(bytes.len()).map_err(|_| EINVAL)?;
                let submit = Submit3d::fenced(self.ctx_id, len, id, ring);
                // Nothing is queued until this succeeds: a signal may stop the wait for room.
                bound
                    .queue
                    .post(&submit, bytes, &mut event, Wait::Interruptible, &mut left)?;
                s.seqno = seqno;
                self.shared
                    .stats
                    .exec_unwaited
                    .fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
        };
        drop(ex);
        // Not queued: the event fails the fence (ECANCELED) and frees the slot, outside the
        // locks.
        drop(event);
        sent.map(|()| fence)
    }

    /// Fails `fence`, of a batch for host ring `ring` (engine class `class`) that will never
    /// be sent, with `error`, in order: after every batch fence of the ring emitted before,
    /// as one more entry of the ring's timeline that the host never sees. A fence context
    /// must signal in order, and `fence`'s context has batches sent earlier on this ring.
    /// Without memory for the entry it signals at once.
    pub(crate) fn fail_in_order(&self, ring: u8, class: u16, fence: SignalFence, error: Error) {
        if ring == 0 || ring > MAX_RING {
            fence.signal(Err(error));
            return;
        }
        let mut ex = self.calls.exec.lock();
        let timeline = match self.exec_timeline(ring, class) {
            Ok(t) => t,
            Err(_) => {
                fence.signal(Err(error));
                return;
            }
        };
        let id = ex.fence[ring as usize] + 1;
        // On error `emit` drops `fence`, which signals it (`ECANCELED`).
        if let Ok((_, event)) = timeline.emit(id, Some(fence)) {
            ex.fence[ring as usize] = id;
            drop(ex);
            timeline.record(id, Err(error));
            // Never sent: the event signals the entry once those before it did.
            drop(event);
        }
    }

    /// The timeline of ring `ring` for engine class `class`, created on first use.
    fn exec_timeline(&self, ring: u8, class: u16) -> Result<Arc<Timeline>> {
        let mut timelines = self.calls.timelines.lock();
        if let Some(t) = timelines
            .iter()
            .find(|t| t.ring == ring && t.class == class)
        {
            return Ok(t.timeline.clone());
        }
        timelines.reserve(1, GFP_KERNEL)?;
        let timeline = Timeline::new(self.ctx_id, ring, self.shared.stats.fences.clone())?;
        self.shared
            .add_fence_class(timeline.fence_context(), class, FenceKind::Ring)?;
        // Reserved above: this does not allocate.
        timelines.push(
            RingTimeline {
                ring,
                class,
                timeline: timeline.clone(),
            },
            GFP_NOWAIT,
        )?;
        Ok(timeline)
    }

    /// Forgets what the reset statistics of GEM context `gem_ctx` said (its id is new).
    pub(crate) fn forget_resets(&self, gem_ctx: u32) {
        self.calls.resets_seen.lock().retain(|(c, _)| *c != gem_ctx);
        self.calls.stats_known.lock().retain(|e| e.0 != gem_ctx);
    }

    /// Records the reset statistics the host gave for GEM context `gem_ctx`.
    pub(crate) fn note_reset_stats(&self, gem_ctx: u32, active: u32, pending: u32) {
        let mut g = self.calls.stats_known.lock();
        // The counts only grow: an older answer recorded late changes nothing.
        if let Some(e) = g.iter_mut().find(|e| e.0 == gem_ctx) {
            (e.1, e.2) = (e.1.max(active), e.2.max(pending));
        } else if g.push((gem_ctx, active, pending), GFP_KERNEL).is_err() {
            self.calls.stats_lost.store(true, Ordering::Relaxed);
        }
    }

    /// The reset statistics of GEM context `gem_ctx` (`batch_active`, `batch_pending`)
    /// when the guest knows them without asking the host, else `None`.
    ///
    /// They count batches of the context that a reset found running, and a reset comes
    /// only after a hang has gone on for the host's hang detection time (at least
    /// [`crate::fence::RESET_CHECK_AFTER_MS`] is assumed). A batch that ran that long has
    /// its fence held back until a [`ResetCheck`] asked the host, which records the
    /// statistics here. So while no batch of the context has been in flight that long,
    /// every timeline has its check, no check failed, and no batch was ever reset (the
    /// host may ban the context, and a ban is worth a question), the last statistics
    /// recorded, or zeros for a context never asked about, are what the host would
    /// answer. The one thing missed: a full GPU reset for another client's hang that
    /// finds a batch of this context in its first moments (i915 counts it as pending; the
    /// batch is replayed and completes).
    pub(crate) fn known_reset_stats(&self, gem_ctx: u32) -> Option<(u32, u32)> {
        if self.calls.stats_lost.load(Ordering::Relaxed) || self.was_reset(gem_ctx) {
            return None;
        }
        let age = kernel::time::Delta::from_millis(crate::fence::RESET_CHECK_AFTER_MS);
        if self.calls.timelines.lock().iter().any(|t| {
            !t.timeline.has_reset_check() || t.timeline.has_pending_older(Some(gem_ctx), age)
        }) {
            return None;
        }
        Some(
            self.calls
                .stats_known
                .lock()
                .iter()
                .find(|e| e.0 == gem_ctx)
                .map_or((0, 0), |e| (e.1, e.2)),
        )
    }

    /// For each timeline of this context's execbuffers, the latest batch fence not signalled
    /// yet that is at least `age` old (`GEM_THROTTLE` waits for them).
    pub(crate) fn batches_older_than(&self, age: kernel::time::Delta) -> Result<KVec<Fence>> {
        let timelines = self.calls.timelines.lock();
        let mut v = KVec::new();
        for t in timelines.iter() {
            if let Some(f) = t.timeline.last_pending_older(age) {
                v.push(f, GFP_KERNEL)?;
            }
        }
        Ok(v)
    }

    /// Waits (without interruption, for at most `ms` milliseconds in all) for the batches of
    /// this context's execbuffers: the host drops the fences of a destroyed context
    /// unreported. Returns whether all completed.
    fn wait_batches(&self, ms: u32) -> bool {
        let fences: KVec<Fence> = {
            let timelines = self.calls.timelines.lock();
            let mut v = KVec::new();
            for t in timelines.iter() {
                if let Some(f) = t.timeline.last_pending() {
                    if v.push(f, GFP_KERNEL).is_err() {
                        break;
                    }
                }
            }
            v
        };
        let mut left = msecs_to_jiffies(ms);
        for f in fences.iter() {
            match f.wait_timeout(false, left.max(1)) {
                Ok(l) => left = l,
                Err(_) => return false,
            }
        }
        true
    }

    /// As [`Self::call`], but once the ccmd is queued its answer is waited for without
    /// interruption (bounded): for ccmds that create or destroy host objects, which a
    /// restarted ioctl must not repeat.
    pub(crate) fn call_once<C: Ccmd>(&self, bound: &Bound<'_>, c: &C) -> Result<C::Response> {
        self.call_how(bound, c, Wait::Uninterruptible)
    }

    /// Sends `c` and returns the host's decoded answer. Callable from many threads at once.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the response cannot fit, `EIO` when the host rejected the ccmd or its
    /// answer fails validation, `ETIMEDOUT` when no slot or answer came in time,
    /// `ERESTARTSYS` on a signal.
    ///
    /// A ccmd without a response succeeded if the host published its seqno. Another
    /// caller's later ccmd on the same context can publish a later seqno first and hide a
    /// rejection; such ccmds are confirmed by their effect as well (a `GEM_CREATE` by the
    /// `RESOURCE_CREATE_BLOB` that takes its object).
    pub(crate) fn call<C: Ccmd>(&self, bound: &Bound<'_>, c: &C) -> Result<C::Response> {
        self.call_how(bound, c, Wait::Interruptible)
    }

    /// As [`Self::call`], waiting as `how` says once the ccmd is queued (a ccmd that must
    /// not run twice is waited for without interruption, so that the ioctl is not restarted
    /// after the host ran it).
    fn call_how<C: Ccmd>(&self, bound: &Bound<'_>, c: &C, how: Wait) -> Result<C::Response> {
        let shm = bound.pages.get(self.ctx_id).ok_or(EIO)?;
        // A ccmd without a response gets a scratch slot of capacity 0: the host may copy a
        // stale response of an earlier failed ccmd to whatever offset a later one names
        // (virglrenderer keeps it after the failure); it then copies nothing and writes a length of 0 there, which
        // must not be in another caller's slot.
        let size = c.response_size();
        if size > AREA_LEN {
            return Err(EINVAL);
        }
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        let area_off = self.take_slot(&shm, size.max(SCRATCH_SLOT), &mut left)?;
        let r = self.call_in_slot(bound.queue, &shm, c, (area_off, size), (&mut left, how));
        match r {
            Ok(r) => {
                self.free_slot(area_off);
                c.decode(&r)
            }
            Err(Abandon::NotQueued(e)) => {
                self.free_slot(area_off);
                Err(e)
            }
            Err(Abandon::Queued(e, seqno, done)) => {
                self.orphan(area_off, seqno, done);
                Err(e)
            }
        }
    }

    /// Queues `c`, a ccmd without a response, and runs `then` once it is queued (for a
    /// command that must follow it on the queue; the host runs the queue in order), without
    /// waiting for the host: for a ccmd whose outcome the
    /// caller learns from a command `then` queues after it (a `GEM_CREATE` from the
    /// `RESOURCE_CREATE_BLOB` that takes its object). Its scratch slot stays reserved until
    /// the host is done with it.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a ccmd with a response; as [`Self::call`] until the ccmd is queued
    /// (`then` then does not run).
    pub(crate) fn post_then<C: Ccmd>(
        &self,
        bound: &Bound<'_>,
        c: &C,
        then: &mut dyn FnMut(),
    ) -> Result {
        if c.response_size() != 0 {
            return Err(EINVAL);
        }
        let shm = bound.pages.get(self.ctx_id).ok_or(EIO)?;
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        let area_off = self.take_slot(&shm, SCRATCH_SLOT, &mut left)?;
        let queued = u32::try_from(area_off)
            .map_err(|_| EINVAL)
            .and_then(|rsp_off| {
                prefill_slot::<C>(&shm, rsp_off, 0)?;
                // An event whose command was not queued is dropped (failing its fence)
                // only after the submit lock is released.
                let mut event = None;
                let queued = self.enqueue(bound.queue, c, rsp_off, &mut left, &mut event);
                drop(event);
                queued
            });
        match queued {
            Ok((pending, seqno, _fence)) => {
                then();
                self.orphan(area_off, seqno, Some(pending.abandoned()));
                Ok(())
            }
            Err(e) => {
                self.free_slot(area_off);
                Err(e)
            }
        }
    }

    /// Keeps the slot at `area_off` of a queued ccmd (`seqno`) until the host is done with
    /// it: until it answered (`done`) or published that seqno or a later one.
    fn orphan(&self, area_off: u64, seqno: u32, done: Option<Abandoned>) {
        let mut g = self.calls.slots.lock();
        let orphan = Orphan {
            seqno,
            offset: area_off,
            done,
        };
        if g.orphans.push(orphan, GFP_KERNEL).is_err() {
            // Without memory to remember it, never reuse it.
            pr_debug!("virtio_intel: ctx {}: response slot leaked\n", self.ctx_id);
        }
    }

    /// Allocates a response slot of `size` bytes; waits (bounded by `left`) while the area
    /// is full.
    fn take_slot(&self, shm: &ShmMapping<'_>, size: usize, left: &mut Jiffies) -> Result<u64> {
        let mut g = self.calls.slots.lock();
        // Room for every caller in line to record a give-up, so leaving it cannot fail.
        let in_line = usize::try_from(g.next - g.serving).map_err(|_| ENOMEM)?;
        g.cancelled.reserve(in_line + 1, GFP_KERNEL)?;
        let me = g.next;
        g.next += 1;
        loop {
            if g.serving == me {
                let published = shm.load_acquire_u32(SHMEM_SEQNO)?;
                reclaim(&self.calls.area, &mut g.orphans, published);
                match self.calls.area.alloc(size as u64) {
                    Err(e) if e == ENOSPC => {}
                    r => {
                        g.advance();
                        self.calls.freed.notify_all();
                        return r.map(|(off, _)| off);
                    }
                }
            }
            // Orphans are freed by looking at the host's progress: look again at least
            // every few milliseconds while waiting for a caller to free its slot.
            let slice = (*left).min(msecs_to_jiffies(ORPHAN_RECHECK_MS)).max(1);
            let err = match self.calls.freed.wait_interruptible_timeout(&mut g, slice) {
                CondVarTimeoutResult::Signal { .. } => Some(ERESTARTSYS),
                CondVarTimeoutResult::Timeout => {
                    *left = left.saturating_sub(slice);
                    None
                }
                CondVarTimeoutResult::Woken { jiffies } => {
                    *left = left.saturating_sub(slice.saturating_sub(jiffies));
                    None
                }
            };
            let err = err.or((*left == 0).then_some(ETIMEDOUT));
            if let Some(e) = err {
                if g.serving == me {
                    g.advance();
                } else {
                    // Reserved above: this does not allocate.
                    let _ = g.cancelled.push(me, GFP_NOWAIT);
                }
                self.calls.freed.notify_all();
                return Err(e);
            }
        }
    }

    fn free_slot(&self, area_off: u64) {
        let _g = self.calls.slots.lock();
        let _ = self.calls.area.free(area_off);
        self.calls.freed.notify_all();
    }

    /// Queues `c` (its answer going to `rsp_off`) with the next seqno and, when ccmds are
    /// fenced, the next fence id, under the submit lock, which fixes their order on the
    /// queue. Returns the pending answer, the seqno and the fence; `event` is left set if
    /// the fenced command was not queued.
    fn enqueue<C: Ccmd>(
        &self,
        q: &ControlQueue<'_>,
        c: &C,
        rsp_off: u32,
        left: &mut Jiffies,
        event: &mut Option<FenceEvent>,
    ) -> Result<(Pending<Submit3d>, u32, Option<Fence>)> {
        let mut s = self.calls.submit.lock();
        let seqno = s.seqno.wrapping_add(1);
        let bytes = ccmd::encode(c, seqno, rsp_off)?;
        let len = u32::try_from(bytes.len()).map_err(|_| EINVAL)?;
        let (submit, fence) = if let Some(ring0) = &self.ring0 {
            let id = s.fence + 1;
            let (fence, ev) = ring0.emit(id, None)?;
            *event = Some(ev);
            // Used even if the command is not queued: the timeline saw it, and the host
            // retires ids with `<=`, so a gap is harmless.
            s.fence = id;
            (Submit3d::fenced(self.ctx_id, len, id, 0), Some(fence))
        } else {
            (Submit3d::unfenced(self.ctx_id, len), None)
        };
        let pending = q.send(&submit, bytes, event, Wait::Interruptible, left)?;
        s.seqno = seqno;
        Ok((pending, seqno, fence))
    }

    /// Queues `c` (its answer going to `rsp_off`) with the next seqno, and waits for it.
    /// The outer error means nothing was queued; the inner one carries the seqno of a
    /// queued ccmd whose wait failed, and the handle that tells when the device answered.
    fn queue_and_wait<C: Ccmd>(
        &self,
        q: &ControlQueue<'_>,
        c: &C,
        rsp_off: u32,
        left: &mut Jiffies,
        how: Wait,
    ) -> Result<core::result::Result<u32, FailedWait>> {
        // An event whose command was not queued is dropped (failing its fence) only after
        // the submit lock is released.
        let mut event = None;
        let queued = self.enqueue(q, c, rsp_off, left, &mut event);
        drop(event);
        let (pending, seqno, fence) = queued?;
        let done = pending.abandoned();
        // A fenced ccmd is done when its fence signals (from the fence workqueue);
        // the answer is there by then.
        let pending = match fence {
            Some(f) => match f.wait_timeout(how == Wait::Interruptible, pending.left().max(1)) {
                Ok(left) => pending.with_left(left),
                Err(e) => return Ok(Err((e, seqno, done))),
            },
            None => pending,
        };
        Ok(pending
            .wait(how)
            .map(|_| seqno)
            .map_err(|e| (e, seqno, done)))
    }

    /// Queues `c` with its answer in the slot at `area_off` (of `size` bytes) of the response
    /// area and waits (for what is `left` of the bound, as `how` says); returns
    /// the slot's bytes.
    fn call_in_slot<C: Ccmd>(
        &self,
        q: &ControlQueue<'_>,
        shm: &ShmMapping<'_>,
        c: &C,
        (area_off, size): (u64, usize),
        (left, how): (&mut Jiffies, Wait),
    ) -> core::result::Result<KVec<u8>, Abandon> {
        // The ccmd names its slot relative to the response area; the page holds it after
        // the `struct i915_shmem` header.
        let rsp_off = u32::try_from(area_off).map_err(|_| Abandon::NotQueued(EINVAL))?;
        let slot = RSP_MEM_OFFSET as usize + rsp_off as usize;
        prefill_slot::<C>(shm, rsp_off, size).map_err(Abandon::NotQueued)?;

        let seqno = self
            .queue_and_wait(q, c, rsp_off, left, how)
            .map_err(Abandon::NotQueued)?
            .map_err(|(e, seqno, done)| Abandon::Queued(e, seqno, Some(done)))?;

        let published = shm
            .load_acquire_u32(SHMEM_SEQNO)
            .map_err(Abandon::NotQueued)?;
        if !seqno_reached(published, seqno) {
            pr_debug!(
                "virtio_intel: ctx {}: ccmd seqno {} not published (host has {})\n",
                self.ctx_id,
                seqno,
                published
            );
            // A host that answers before it processed the ccmd could still write the slot:
            // keep it until that seqno (or a later one) is published.
            return Err(Abandon::Queued(EIO, seqno, None));
        }
        let written = shm.read_u32(slot).map_err(Abandon::NotQueued)? as usize;
        if written > size {
            return Err(Abandon::NotQueued(EIO));
        }
        let mut rsp = KVec::new();
        rsp.resize(written, 0, GFP_KERNEL)
            .map_err(|_| Abandon::NotQueued(ENOMEM))?;
        shm.read(slot, &mut rsp).map_err(Abandon::NotQueued)?;
        Ok(rsp)
    }
}

/// A queued ccmd whose wait failed: the error, its seqno, and the handle that tells when
/// the device answered.
type FailedWait = (Error, u32, Abandoned);

/// Why a ccmd failed, and whether the host may still write its slot.
enum Abandon {
    /// The host is done with the slot, or never got the ccmd.
    NotQueued(Error),
    /// The ccmd was queued and the host may still write its slot: until it answered (when
    /// known) or published that seqno or a later one.
    Queued(Error, u32, Option<Abandoned>),
}

/// Whether a teardown command's outcome means the host no longer holds the object: it
/// answered (success, or an error for an object it never created), or the device is gone.
/// A timeout or a failure to queue leaves that unknown.
pub(crate) fn settled(r: &Result) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => *e == EIO || *e == ENODEV,
    }
}

impl HostContext {
    /// Releases the host objects of this context, once. With `bound`, through the device;
    /// with `None` the device is gone (unbinding resets it, so the host dropped everything
    /// it held for this context) and only the bookkeeping is undone.
    ///
    /// Each step is tried even if an earlier one failed, so nothing the host still holds is
    /// forgotten. The waits are bounded but not interruptible: a process being killed still
    /// closes its files.
    pub(crate) fn teardown(&self, bound: Option<&Bound<'_>>) {
        if self.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let (ctx, res) = (self.ctx_id, self.shmem_res);
        let stats = &self.shared.stats;
        // Unmap our view first; then destroy the context and release the blob, which
        // outlives the context on the host.
        if let Some(b) = bound {
            // The batches first: the answers of unwaited ones are read from the page.
            if !self.wait_batches(BATCH_DRAIN_MS) {
                kernel::pr_warn_once!(
                    "virtio_intel: host context {}: destroyed with batches still running\n",
                    ctx
                );
            }
            b.pages.remove(ctx);
        }
        // The host reports no fence of a destroyed context: those still pending fail now
        // (a late answer finds nothing to retire), so no waiter is left hanging.
        for t in self.calls.timelines.lock().iter() {
            // Breaks the reference cycle through the check.
            t.timeline.set_reset_check(None);
            t.timeline.cancel();
            self.shared.remove_fence_class(t.timeline.fence_context());
        }
        let teardown = |cmd: &dyn Fn(&ControlQueue<'_>) -> Result| match bound {
            Some(b) => {
                let r = cmd(b.queue);
                if let Err(e) = r {
                    pr_debug!("virtio_intel: tearing down host context {}: {:?}\n", ctx, e);
                }
                settled(&r)
            }
            None => true,
        };
        // An id is reused only once the host released what it named; otherwise it stays
        // taken, like a quarantined window range.
        if teardown(&|q| q.call_uninterruptible(&CtxDestroy::new(ctx)).map(|_| ())) {
            stats.contexts.fetch_sub(1, Ordering::Relaxed);
            self.shared.release_ctx_id(ctx);
        }
        let unmapped = !self.mapped
            || teardown(&|q| {
                q.call_uninterruptible(&ResourceCmd::unmap_blob(ctx, res))
                    .map(|_| ())
            });
        if !self.blob_created {
            self.shared.release_res_id(res);
        } else if teardown(&|q| q.call_uninterruptible(&ResourceCmd::unref(res)).map(|_| ())) {
            stats.blobs.fetch_sub(1, Ordering::Relaxed);
            self.shared.release_res_id(res);
        }
        // The window range is free once the host unmapped it (or the device is gone).
        // Otherwise it stays allocated: handing it out again would alias a range the host
        // may still map.
        if self.shmem_off != u64::MAX {
            if unmapped {
                self.shared.free_page_range(self.shmem_off);
            } else {
                stats
                    .quarantined_bytes
                    .fetch_add(SHMEM_SIZE as i64, Ordering::Relaxed);
                kernel::pr_warn_once!(
                    "virtio_intel: host context {}: response page not unmapped, window range \
                     {:#x} quarantined\n",
                    ctx,
                    self.shmem_off
                );
            }
        }
        stats.remove_client(ctx);
        // A reset check that was running holds this context: let it finish here, so that it
        // never drops the last reference to the device state from the queue it runs on.
        self.shared.exec_wq.flush();
    }
}

impl Drop for HostContext {
    fn drop(&mut self) {
        // Files tear their context down when closed, and `new` on error: this is a bug
        // guard. The host may still hold the objects, so their ids and window range stay
        // taken; the counters keep showing them.
        if !*self.torn_down.get_mut() {
            kernel::pr_warn_once!(
                "virtio_intel: host context {} dropped without teardown\n",
                self.ctx_id
            );
            self.shared.stats.remove_client(self.ctx_id);
        }
    }
}

#[kunit_tests(virtio_intel_context)]
mod tests {
    use super::*;

    #[test]
    fn seqnos_wrap() {
        assert!(seqno_reached(5, 5));
        assert!(seqno_reached(6, 5));
        assert!(!seqno_reached(4, 5));
        assert!(seqno_reached(1, u32::MAX));
        assert!(!seqno_reached(u32::MAX, 1));
    }

    #[test]
    fn exec_slots_cover_the_end_of_the_response_area() {
        let slots = ExecSlots::new();
        let mut taken = [0u64; MAX_UNWAITED];
        for t in taken.iter_mut() {
            *t = slots.take().unwrap_or(u64::MAX);
        }
        assert_eq!(taken[0], AREA_LEN as u64);
        assert_eq!(taken[MAX_UNWAITED - 1], (RSP_AREA_LEN - EXEC_SLOT) as u64);
        assert!(taken.windows(2).all(|w| w[1] == w[0] + EXEC_SLOT as u64));
        assert_eq!(slots.take(), None);
        // Offsets that are not a slot's start are ignored.
        for off in [0, AREA_LEN as u64 + 1, RSP_AREA_LEN as u64, u64::MAX] {
            slots.put(off);
            assert_eq!(slots.take(), None);
        }
        slots.put(taken[70]);
        assert_eq!(slots.take(), Some(taken[70]));
    }

    #[test]
    fn response_area_holds_concurrent_slots() -> Result {
        let a = KBox::pin_init(RangeAllocator::new(AREA_LEN as u64, SLOT_ALIGN), GFP_KERNEL)?;
        // Sixteen GETPARAM answers side by side, then one maximal QUERY only once all are
        // gone.
        let mut offs = KVec::new();
        for _ in 0..16 {
            offs.push(a.alloc(16)?.0, GFP_KERNEL)?;
        }
        assert_eq!(a.alloc(AREA_LEN as u64), Err(ENOSPC));
        for o in offs.iter() {
            assert_eq!(a.free(*o), Some(16));
        }
        assert_eq!(a.alloc(AREA_LEN as u64)?, (0, AREA_LEN as u64));
        Ok(())
    }
}
