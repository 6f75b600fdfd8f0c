// SPDX-License-Identifier: GPL-2.0

//! Device state shared by the DRM device and its open files: bookkeeping that may outlive
//! the binding (a process may keep the render node open across an unbind).
//!
//! Nothing here touches the device. What does (the control queue, the host-visible region
//! and its mappings) is [`Bound`](crate::driver::Bound), the DRM registration data, which
//! files reach only through a registration guard: ioctls get it from the DRM core, closing
//! a file enters one. Unbind waits for those guards (each command in one is bounded by the
//! transport's timeout) before the queue is torn down.

use core::sync::atomic::{
    AtomicI64,
    AtomicU32,
    AtomicU64,
    Ordering, //
};
use kernel::{
    id_pool::IdPool,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode, //
    },
    sync::{
        Arc,
        Mutex, //
    },
    task::TaskComm,
    workqueue::{
        OwnedQueue,
        QueueFlags, //
    }, //
};

use crate::{
    cache::AnswerCache,
    driver::Bound,
    exec_queue::ExecQueue,
    fence::FenceStats,
    gem::{
        Evict,
        IoctlDevice,
        MapSlot, //
    },
    hostmem::RangeAllocator,
    protocol::I915Identity, //
};

/// The task a host context was created for, as the driver sees it.
#[derive(Clone, Copy)]
pub(crate) struct Client {
    /// Thread group (process) id in the initial namespace.
    pub(crate) tgid: i32,
    /// Thread id in the initial namespace.
    pub(crate) pid: i32,
    /// Command name.
    pub(crate) comm: TaskComm,
}

impl Client {
    /// The calling task.
    pub(crate) fn current() -> Self {
        let task = kernel::current!();
        Self {
            tgid: task.tgid(),
            pid: task.pid(),
            comm: task.comm(),
        }
    }
}

/// Host objects this device holds for its files, for `debugfs` and leak tests.
///
/// A count goes up when the command creating the object is queued and down when the host
/// acknowledged its release (or the device went away), so after every file is closed all
/// counts read zero unless something leaked.
#[pin_data]
pub(crate) struct Stats {
    /// Host contexts.
    pub(crate) contexts: AtomicI64,
    /// Host blobs.
    pub(crate) blobs: AtomicI64,
    /// GEM objects.
    pub(crate) objects: AtomicI64,
    /// Bytes of the GEM objects.
    pub(crate) object_bytes: AtomicI64,
    /// Objects evicted from the window so far.
    pub(crate) evictions: AtomicI64,
    /// The device's `reset` parameter (debugfs `i915_params/reset`).
    pub(crate) reset: AtomicU32,
    /// Objects whose host object was released after `GEM_MADVISE(DONTNEED)` so far.
    pub(crate) purged: AtomicI64,
    /// Bytes of the host-visible window allocated.
    pub(crate) window_bytes: AtomicI64,
    /// Bytes of the window kept out of use because the host did not confirm their unmap.
    pub(crate) quarantined_bytes: AtomicI64,
    /// Execbuffers sent with their fence, not waited for (see
    /// [`crate::context::HostContext::execbuffer`]).
    pub(crate) exec_unwaited: AtomicI64,
    /// Of those, the ones the host refused all the same.
    pub(crate) exec_refused: AtomicI64,
    /// The fence event path.
    pub(crate) fences: Arc<FenceStats>,
    /// The task each live host context was created for.
    #[pin]
    clients: Mutex<KVec<(u32, Client)>>,
}

impl Stats {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            contexts: AtomicI64::new(0),
            blobs: AtomicI64::new(0),
            objects: AtomicI64::new(0),
            object_bytes: AtomicI64::new(0),
            evictions: AtomicI64::new(0),
            reset: AtomicU32::new(crate::module_parameters::reset.value()),
            purged: AtomicI64::new(0),
            window_bytes: AtomicI64::new(0),
            quarantined_bytes: AtomicI64::new(0),
            exec_unwaited: AtomicI64::new(0),
            exec_refused: AtomicI64::new(0),
            fences: Arc::new(FenceStats::default(), GFP_KERNEL)?,
            clients <- new_mutex!(KVec::new()),
        })
    }

    /// Records the task of host context `ctx`.
    pub(crate) fn add_client(&self, ctx: u32, c: Client) -> Result {
        self.clients.lock().push((ctx, c), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets host context `ctx`.
    pub(crate) fn remove_client(&self, ctx: u32) {
        let mut g = self.clients.lock();
        if let Some(i) = g.iter().position(|(c, _)| *c == ctx) {
            let _ = g.remove(i);
        }
    }

    /// Writes the counters and one line per live host context.
    pub(crate) fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "contexts {}", self.contexts.load(Ordering::Relaxed))?;
        writeln!(f, "blobs {}", self.blobs.load(Ordering::Relaxed))?;
        writeln!(f, "objects {}", self.objects.load(Ordering::Relaxed))?;
        writeln!(f, "evictions {}", self.evictions.load(Ordering::Relaxed))?;
        writeln!(f, "purged {}", self.purged.load(Ordering::Relaxed))?;
        writeln!(
            f,
            "exec_unwaited {}",
            self.exec_unwaited.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "exec_refused {}",
            self.exec_refused.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "window_bytes {}",
            self.window_bytes.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "quarantined_bytes {}",
            self.quarantined_bytes.load(Ordering::Relaxed)
        )?;
        let fs = &self.fences;
        writeln!(
            f,
            "fenced_ccmds {}",
            u8::from(crate::module_parameters::fenced_ccmds.value())
        )?;
        writeln!(f, "reset {}", self.reset.load(Ordering::Relaxed))?;
        writeln!(f, "fences_emitted {}", fs.emitted.load(Ordering::Relaxed))?;
        writeln!(
            f,
            "fences_signalled {}",
            fs.signalled.load(Ordering::Relaxed)
        )?;
        writeln!(f, "fence_works {}", fs.works.load(Ordering::Relaxed))?;
        for (ctx, c) in self.clients.lock().iter() {
            writeln!(
                f,
                "context {} tgid {} pid {} comm {}",
                ctx, c.tgid, c.pid, c.comm
            )?;
        }
        Ok(())
    }
}

/// Which id space.
#[derive(Clone, Copy)]
enum IdKind {
    Ctx,
    Res,
}

/// The virtio context and resource ids of one device.
struct Ids {
    ctx: IdPool,
    res: IdPool,
}

impl Ids {
    fn pool(&mut self, kind: IdKind) -> &mut IdPool {
        match kind {
            IdKind::Ctx => &mut self.ctx,
            IdKind::Res => &mut self.res,
        }
    }
}

/// The size of a host context's response page.
pub(crate) const RESPONSE_PAGE: u64 = 16384;

/// How many times a mapping waits 1 ms for busy objects to become evictable.
const EVICT_WAITS: u32 = 1000;

/// State of one bound device, shared with its DRM files.
#[pin_data]
pub(crate) struct Shared {
    /// The host's i915.
    pub(crate) identity: I915Identity,
    /// Host answers that cannot change while the device is bound.
    pub(crate) cache: AnswerCache,
    /// Live host objects (shared with the device's `debugfs` files).
    pub(crate) stats: Arc<Stats>,
    /// Ranges of the response-page area at the start of the host-visible window (offsets
    /// into the region), kept apart so that mapped objects cannot keep new files from
    /// getting a host context.
    #[pin]
    pages: RangeAllocator,
    /// The size of that area in bytes; objects use the window after it.
    pages_len: u64,
    /// Ranges of the object area (offsets from `pages_len`).
    #[pin]
    window: RangeAllocator,
    /// The object area's size in bytes.
    window_len: u64,
    /// The host's blob size granularity (a power of two, at least the page size).
    pub(crate) blob_alignment: u64,
    /// The GEM objects that hold a window range, mapped longest ago first: the eviction
    /// order.
    #[pin]
    mapped: Mutex<KVec<Arc<MapSlot>>>,
    /// The generation of the next host context (never reused, unlike context ids).
    next_ctx_gen: AtomicU64,
    /// Virtio context and resource ids in use (0 is never used: it means "none").
    #[pin]
    ids: Mutex<Ids>,
    /// This driver's execbuffer fence contexts: `GEM_BUSY` reports the engine classes of
    /// the batches an object is busy with, and an execbuffer needs not wait for the fences
    /// of batches the host already has.
    #[pin]
    fence_classes: Mutex<RBTree<u64, FenceClass>>,
    /// Runs the execbuffers that waited for fences ([`crate::exec_queue`]). Destroying it
    /// (with the device's last reference, after every file closed) drains it.
    pub(crate) exec_wq: OwnedQueue,
    /// The execbuffer queue of each open file, whose waiting execbuffers unbinding cancels.
    #[pin]
    exec_queues: Mutex<KVec<Arc<ExecQueue>>>,
}

/// What [`Shared`] knows of one of this driver's fence contexts (keyed by its id).
struct FenceClass {
    /// The `I915_ENGINE_CLASS_*` of its batches.
    class: u16,
    /// Whether its fences are of batches sent to a host ring ([`FenceKind::Ring`]), or of
    /// execbuffers that may still wait in the guest ([`FenceKind::Queued`]).
    kind: FenceKind,
}

/// The two kinds of this driver's execbuffer fences.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum FenceKind {
    /// A host ring's fence: its batch was sent to the host.
    Ring,
    /// An execbuffer queue's fence: its batch may not have been sent yet.
    Queued,
}

impl Shared {
    /// The state of a device whose host-visible window is `region_len` bytes: a sixteenth of
    /// it (at most 64 MiB: 4,096 host contexts, one per file that used the device; at least
    /// 4) holds response pages, the rest objects.
    ///
    /// # Errors
    ///
    /// `ENODEV` for a window too small for both, `ENOMEM`.
    pub(crate) fn new(
        identity: I915Identity,
        region_len: u64,
        blob_alignment: u64,
    ) -> Result<Arc<Self>> {
        let align = |n: u64| n.div_ceil(blob_alignment) * blob_alignment;
        let pages_len = align((region_len / 16).clamp(4 * RESPONSE_PAGE, 64 << 20));
        if pages_len >= region_len {
            return Err(ENODEV);
        }
        let window_len = region_len - pages_len;
        let stats = Arc::pin_init(Stats::new(), GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                identity,
                cache: AnswerCache::new(),
                stats,
                pages <- RangeAllocator::new(pages_len, blob_alignment),
                pages_len,
                window <- RangeAllocator::new(window_len, blob_alignment),
                window_len,
                blob_alignment,
                mapped <- new_mutex!(KVec::new()),
                next_ctx_gen: AtomicU64::new(1),
                ids <- new_mutex!(Ids {
                    ctx: IdPool::new(),
                    res: IdPool::new(),
                }),
                fence_classes <- new_mutex!(RBTree::new()),
                exec_wq: OwnedQueue::new(c"virtio_intel-exec", QueueFlags::UNBOUND, 0)?,
                exec_queues <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL,
        )
    }

    /// The lowest free id of one kind (never 0), growing its pool when it is full.
    fn alloc_id(&self, kind: IdKind) -> Result<u32> {
        loop {
            let request = {
                let mut g = self.ids.lock();
                let pool = g.pool(kind);
                if let Some(id) = pool.find_unused_id(1) {
                    return u32::try_from(id.acquire()).map_err(|_| ENOSPC);
                }
                pool.grow_request().ok_or(ENOSPC)?
            };
            // Allocate outside the lock, then grow unless another caller already did.
            let resizer = request.realloc(GFP_KERNEL)?;
            self.ids.lock().pool(kind).grow(resizer);
        }
    }

    /// Records that the fences of fence context `fence_ctx` run on engine class `class`.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn add_fence_class(&self, fence_ctx: u64, class: u16, kind: FenceKind) -> Result {
        // Allocated before the lock is taken; fence contexts are never reused.
        let node = RBTreeNode::new(fence_ctx, FenceClass { class, kind }, GFP_KERNEL)?;
        self.fence_classes.lock().insert(node);
        Ok(())
    }

    /// Records the execbuffer queue of a new file.
    pub(crate) fn add_exec_queue(&self, q: Arc<ExecQueue>) -> Result {
        self.exec_queues.lock().push(q, GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets the execbuffer queue of a file being closed.
    pub(crate) fn remove_exec_queue(&self, q: &ExecQueue) {
        self.exec_queues
            .lock()
            .retain(|e| !core::ptr::eq::<ExecQueue>(&**e, q));
    }

    /// The open files' execbuffer queues (references, so that none is used after it is
    /// freed; the list itself stays as it is).
    fn exec_queues(&self) -> KVec<Arc<ExecQueue>> {
        let g = self.exec_queues.lock();
        let mut v = KVec::new();
        for q in g.iter() {
            // Without memory, that queue is skipped (its jobs then wait for their fences or
            // for the file to close).
            let _ = v.push(q.clone(), GFP_KERNEL);
        }
        v
    }

    /// The device is being unbound, before the DRM device is unplugged: execbuffers that
    /// wait for room in a queue give up (`ENODEV`), since unplugging waits for ioctls.
    pub(crate) fn unplugging(&self) {
        for q in self.exec_queues().iter() {
            q.unplugging();
        }
    }

    /// The device was unplugged: fails every execbuffer still waiting for its dependencies
    /// (`ENODEV`); the host will not run them.
    pub(crate) fn cancel_waiting_execbuffers(&self) {
        for q in self.exec_queues().iter() {
            q.cancel_waiting();
        }
    }

    /// Forgets the class of fence context `fence_ctx` (its timeline is gone).
    pub(crate) fn remove_fence_class(&self, fence_ctx: u64) {
        self.fence_classes.lock().remove(&fence_ctx);
    }

    /// The engine class of the fences of fence context `fence_ctx`, if this driver's.
    pub(crate) fn fence_class(&self, fence_ctx: u64) -> Option<u16> {
        self.fence_classes.lock().get(&fence_ctx).map(|c| c.class)
    }

    /// Whether fence context `fence_ctx` is one of this driver's host rings: its batches
    /// were sent to the host, whose i915 orders them before later batches on the same
    /// objects.
    pub(crate) fn is_ring_fence_context(&self, fence_ctx: u64) -> bool {
        self.fence_classes
            .lock()
            .get(&fence_ctx)
            .is_some_and(|c| c.kind == FenceKind::Ring)
    }

    /// A generation for a new host context: unique for the life of the device.
    pub(crate) fn new_ctx_gen(&self) -> u64 {
        self.next_ctx_gen.fetch_add(1, Ordering::Relaxed)
    }

    /// A virtio context id that no live host context uses.
    pub(crate) fn new_ctx_id(&self) -> Result<u32> {
        self.alloc_id(IdKind::Ctx)
    }

    /// A resource id that no live host resource uses.
    pub(crate) fn new_res_id(&self) -> Result<u32> {
        self.alloc_id(IdKind::Res)
    }

    /// Makes a context id reusable: only once the host released the context.
    pub(crate) fn release_ctx_id(&self, id: u32) {
        self.ids.lock().ctx.release_id(id as usize);
    }

    /// Makes a resource id reusable: only once the host released the resource.
    pub(crate) fn release_res_id(&self, id: u32) {
        self.ids.lock().res.release_id(id as usize);
    }

    /// Allocates a response page of `len` bytes in the window's response-page area.
    ///
    /// # Errors
    ///
    /// `ENOSPC` when the area is full (that many host contexts exist), `ENOMEM`.
    pub(crate) fn alloc_page_range(&self, len: u64) -> Result<u64> {
        let (off, len) = self.pages.alloc(len)?;
        self.stats
            .window_bytes
            .fetch_add(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        Ok(off)
    }

    /// Frees a response page's range.
    pub(crate) fn free_page_range(&self, offset: u64) {
        if let Some(len) = self.pages.free(offset) {
            self.stats
                .window_bytes
                .fetch_sub(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }

    /// Allocates `len` bytes of the window's object area; returns the offset in the region.
    fn alloc_hostmem(&self, len: u64) -> Result<u64> {
        let (off, len) = self.window.alloc(len)?;
        self.stats
            .window_bytes
            .fetch_add(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        Ok(self.pages_len + off)
    }

    /// Allocates a window range for `slot`'s object, evicting objects mapped earlier (oldest
    /// first) while the window is full, and puts `slot` at the end of the eviction order.
    ///
    /// Objects whose state is locked (being mapped, copied through or freed) are passed
    /// over; when only such objects are left, it waits for them (1 ms at a time, at most
    /// [`EVICT_WAITS`] times). Every object holding a range is in the list from the moment
    /// it gets the range (the allocation and the push happen under the list's lock) until
    /// after it freed it, evictions included: an empty list means that nothing can be
    /// evicted.
    ///
    /// # Errors
    ///
    /// `ENOSPC` when the object is larger than the window or nothing more can be evicted,
    /// `ENOMEM`.
    pub(crate) fn alloc_window(
        &self,
        slot: &Arc<MapSlot>,
        len: u64,
        dev: &IoctlDevice,
        bound: &Bound<'_>,
    ) -> Result<u64> {
        if len > self.window_len {
            return Err(ENOSPC);
        }
        let (mut waits, mut busy_run) = (0, 0);
        loop {
            let victim = {
                let mut l = self.mapped.lock();
                match self.alloc_hostmem(len) {
                    Ok(offset) => {
                        if let Err(e) = l.push(slot.clone(), GFP_KERNEL) {
                            self.free_hostmem(offset);
                            return Err(e.into());
                        }
                        return Ok(offset);
                    }
                    Err(e) if e == ENOSPC => {}
                    Err(e) => return Err(e),
                }
                if l.is_empty() {
                    return Err(ENOSPC);
                } else if busy_run >= l.len() {
                    busy_run = 0;
                    None
                } else {
                    // The oldest goes to the end: it stays in the list (without allocating)
                    // until it leaves the window.
                    let v = l[0].clone();
                    l.rotate_left(1);
                    Some(v)
                }
            };
            let Some(victim) = victim else {
                // Everything left is busy (being mapped, copied through, freed or evicted):
                // those finish within a host round trip.
                if waits == EVICT_WAITS {
                    return Err(ENOSPC);
                }
                waits += 1;
                kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1));
                continue;
            };
            match victim.try_evict(dev, bound, self) {
                Evict::Busy => busy_run += 1,
                Evict::Gone => {
                    busy_run = 0;
                    self.untrack_mapped(&victim);
                }
            }
        }
    }

    /// Takes `slot` out of the eviction order.
    pub(crate) fn untrack_mapped(&self, slot: &Arc<MapSlot>) {
        let removed = {
            let mut l = self.mapped.lock();
            l.iter()
                .position(|s| Arc::ptr_eq(s, slot))
                .and_then(|i| l.remove(i).ok())
        };
        // Dropped outside the lock.
        drop(removed);
    }

    /// Frees an object's range of the window (`offset` in the region).
    pub(crate) fn free_hostmem(&self, offset: u64) {
        let Some(off) = offset.checked_sub(self.pages_len) else {
            return;
        };
        if let Some(len) = self.window.free(off) {
            self.stats
                .window_bytes
                .fetch_sub(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }
}
