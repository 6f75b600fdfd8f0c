// SPDX-License-Identifier: GPL-2.0

//! GEM objects backed by host blobs.
//!
//! A GEM object is a host i915 object of its creator's host context, exported as a virtio
//! blob resource (`res_id`, global in the VM). It has no guest pages: userspace maps it
//! through the host-visible window. The object takes a window range at its first page fault
//! (`RESOURCE_MAP_BLOB`; the host answers with the caching to map it with). A mapping holds
//! a reference to the object, so it outlives `GEM_CLOSE` and the file.
//!
//! The window is a managed resource. When it is full, the object mapped longest ago whose
//! state is not busy is evicted: its user page table entries are zapped, the host unmaps it
//! (`RESOURCE_UNMAP_BLOB`) and its range is freed; its next fault maps it again, maybe
//! elsewhere. Page table entries are only inserted, and only zapped, under the object's
//! state lock, so no entry ever points at a range the object no longer holds.
//!
//! `GEM_CREATE` does not wait for the host: as i915 allocates an object's pages only when
//! it is first used, the host's answer to its creation is looked at by the first command
//! about the object (a map, an import into another context, a batch, a host ioctl on it),
//! which fails with `EIO` if the host refused to make it (a fault then gets `SIGBUS`). A
//! first fault queues its map before it looks, so creating and mapping an object costs one
//! round trip, as the seed design's create-and-map does.
//!
//! Every host object is recorded in [`HostState`] when the command creating it is
//! queued, and freeing the object releases exactly what was recorded: `RESOURCE_UNMAP_BLOB`
//! then `RESOURCE_UNREF` while the device is bound (uninterruptible, bounded), nothing once
//! it is gone (unbind resets the device and the host forgets everything). A window range or
//! resource id whose release the host did not confirm stays taken, so it is never handed
//! out while the host may still use it.

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use kernel::{
    dma_fence::Fence,
    drm,
    mm::virt::{
        PfnCache,
        VmFault,
        VmFaultResult, //
    },
    new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    time::msecs_to_jiffies,
};

use crate::{
    context::{
        settled,
        HostContext, //
    },
    driver::{
        Bound,
        VirtioIntelDriver, //
    },
    protocol::{
        ResourceCmd,
        ResourceCreateBlob,
        ResourceMapBlob,
        BLOB_FLAG_USE_MAPPABLE,
        BLOB_FLAG_USE_SHAREABLE,
        MAP_CACHE_CACHED,
        MAP_CACHE_NONE,
        MAP_CACHE_UNCACHED,
        MAP_CACHE_WC, //
    },
    shared::Shared,
    transport::{
        Pending,
        Wait,
        COMMAND_TIMEOUT_MS, //
    },
};

/// The GEM object type of the driver.
pub(crate) type Object = drm::gem::Object<Bo>;

/// The DRM device as a GEM object keeps it: registered once, maybe unbound since.
pub(crate) type IoctlDevice = drm::Device<VirtioIntelDriver, drm::Ioctl>;

/// What a new object is made of: its device and its host state.
pub(crate) struct BoArgs {
    /// The device, to reach the host when the object is mapped or freed.
    pub(crate) dev: ARef<IoctlDevice>,
    /// The object's host resource and window state.
    pub(crate) slot: Arc<MapSlot>,
}

/// Where an object is in the host-visible window.
#[derive(Clone, Copy)]
struct Window {
    /// Offset in the region.
    offset: u64,
    /// The caching the host maps it with; `None` when the host's answer to `MAP_BLOB` (or
    /// to the `UNMAP_BLOB` of an eviction) is not known, so the range may or may not be
    /// mapped: the object cannot be mapped again, and its range is quarantined when it is
    /// freed unless the host then confirms the unmap.
    cache: Option<PfnCache>,
}

/// The host objects of one GEM object.
///
/// # Invariants
///
/// - `blob`: `RESOURCE_CREATE_BLOB` for the slot's `res_id` was queued;
/// - `window`: `RESOURCE_MAP_BLOB` was queued for that range, which the object holds in the
///   device's window allocator; user page table entries point into it only while it is
///   set, and only at pages of the object.
struct HostState {
    blob: bool,
    /// The host's answer to `RESOURCE_CREATE_BLOB`, once it was queued.
    creation: Creation,
    /// Generations of the other host contexts the resource is attached to.
    attached: KVec<u64>,
    /// The `I915_MADV_*` advice, or purged.
    madv: Madv,
    /// The `I915_MMAP_OFFSET_*` mode sent with `GEM_SET_MMAP_MODE`, once.
    mode: Option<u32>,
    window: Option<Window>,
    /// i915 would hold pages for the object: a CPU fault mapped it, or a batch used it
    /// (copies through a kernel mapping do not count: i915 writes shmem objects without
    /// getting their pages). Cleared by an eviction, as i915's shrinker drops pages.
    pages: bool,
    /// The fence of the last batch that used the object: while it is pending, an eviction
    /// keeps a `DONTNEED` object's contents (i915's shrinker skips active objects).
    last_batch: Option<Fence>,
}

/// The host's answer to an object's `RESOURCE_CREATE_BLOB`, which also tells whether the
/// `GEM_CREATE` queued before it made the object (the host refuses a blob it has no object
/// for).
enum Creation {
    /// Queued; the answer was not looked at yet.
    Pending(Pending<ResourceCreateBlob>),
    /// The host made the object, or nothing was queued (there is nothing to wait for).
    Made,
    /// The host refused: the object has no host object, and every use fails with `EIO`.
    Refused,
}

impl HostState {
    /// Waits (as `how` says) for the host's answer to the object's creation, the first
    /// time.
    ///
    /// # Errors
    ///
    /// `EIO` when the host refused to make the object (now or earlier), `ETIMEDOUT` or
    /// `ERESTARTSYS` from a wait that can be tried again.
    fn settle(&mut self, how: Wait) -> Result {
        let r = match &mut self.creation {
            Creation::Made => return Ok(()),
            Creation::Refused => return Err(EIO),
            Creation::Pending(p) => p.wait_again(how).map(|_| ()),
        };
        match r {
            Ok(()) => self.creation = Creation::Made,
            Err(e) if e == EIO => self.creation = Creation::Refused,
            Err(_) => {}
        }
        r
    }
}

/// What userspace said of an object's contents (`GEM_MADVISE`), and whether they are gone.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Madv {
    /// `I915_MADV_WILLNEED` (the default).
    WillNeed,
    /// `I915_MADV_DONTNEED`: the host object may be released instead of evicted.
    DontNeed,
    /// Released: the object has no contents any more (faults get `SIGBUS`, copies `EFAULT`).
    Purged,
}

/// What an eviction attempt did.
pub(crate) enum Evict {
    /// The object's range was freed, or it holds none (any more), or its unmap was not
    /// confirmed and the range stays quarantined: it leaves the eviction order.
    Gone,
    /// Its state is locked (being mapped, copied through or freed): try again later.
    Busy,
}

/// The host side of one GEM object, shared with the device's eviction list.
///
/// # Invariants
///
/// `res_id` is reserved in the device's [`Shared`] for this object until the object is
/// dropped.
#[pin_data]
pub(crate) struct MapSlot {
    ctx_id: u32,
    /// The generation of the creating context (see [`HostContext::gen`]).
    owner_gen: u64,
    res_id: u32,
    size: u64,
    /// The object's fake mmap offset, `u64::MAX` until it has one.
    fake_offset: AtomicU64,
    #[pin]
    state: Mutex<HostState>,
}

impl MapSlot {
    /// The host state of an object of `size` bytes created by host context `owner` as
    /// resource `res_id`.
    pub(crate) fn new(owner: &HostContext, res_id: u32, size: u64) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(MapSlot {
                ctx_id: owner.id(),
                owner_gen: owner.gen(),
                res_id,
                size,
                fake_offset: AtomicU64::new(u64::MAX),
                state <- new_mutex!(HostState {
                    blob: false,
                    creation: Creation::Made,
                    attached: KVec::new(),
                    madv: Madv::WillNeed,
                    mode: None,
                    window: None,
                    pages: false,
                    last_batch: None,
                }),
            }),
            GFP_KERNEL,
        )
    }

    /// Runs `f` with the window range and caching of the object, mapping it first if it is
    /// not mapped (evicting other objects when the window is full). `f` runs under the state
    /// lock: no eviction can take the range meanwhile, so it may map pages of it to userspace
    /// or copy through it, but it must not touch user memory (a fault there could need this
    /// lock).
    ///
    /// # Errors
    ///
    /// `ENOSPC` when the window is full of objects that cannot be evicted or the object is
    /// larger than the window; `EIO` when the host refuses the map, answers with an unknown
    /// caching, or never answered an earlier map or unmap of the object; the transport's
    /// errors.
    fn with_window<R>(
        self: &Arc<Self>,
        dev: &IoctlDevice,
        bound: &Bound<'_>,
        shared: &Shared,
        fault: bool,
        f: impl FnOnce(u64, PfnCache) -> R,
    ) -> Result<R> {
        let mut st = self.state.lock();
        if st.madv == Madv::Purged {
            return Err(EFAULT);
        }
        if st.window.is_none() {
            self.map(&mut st, dev, bound, shared)?;
        }
        let w = st.window.ok_or(EIO)?;
        let r = f(w.offset, w.cache.ok_or(EIO)?);
        st.pages |= fault;
        Ok(r)
    }

    /// [`Object::attach_to`] with the state locked; first waits (interruptibly) for the
    /// host's answer to the object's creation.
    fn attach_locked(&self, st: &mut HostState, bound: &Bound<'_>, ctx: &HostContext) -> Result {
        st.settle(Wait::Interruptible)?;
        if ctx.gen() == self.owner_gen || st.attached.contains(&ctx.gen()) {
            return Ok(());
        }
        st.attached.reserve(1, GFP_KERNEL)?;
        bound
            .queue
            .call(&ResourceCmd::ctx_attach(ctx.id(), self.res_id))?;
        // Reserved above: this does not allocate.
        st.attached.push(ctx.gen(), GFP_NOWAIT)?;
        Ok(())
    }

    /// Records the fence of the last batch that used the object.
    fn set_last_batch(&self, fence: &Fence) {
        self.state.lock().last_batch = Some(fence.clone());
    }

    /// Records that a batch uses the object (i915 holds its pages from then on).
    ///
    /// # Errors
    ///
    /// `EFAULT` for a purged object (i915 cannot get its pages).
    fn use_for_batch(&self) -> Result {
        let mut st = self.state.lock();
        st.settle(Wait::Interruptible)?;
        if st.madv == Madv::Purged {
            return Err(EFAULT);
        }
        st.pages = true;
        Ok(())
    }

    /// Takes a window range and has the host map the object there.
    fn map(
        self: &Arc<Self>,
        st: &mut HostState,
        dev: &IoctlDevice,
        bound: &Bound<'_>,
        shared: &Shared,
    ) -> Result {
        // The host made nothing to map.
        if matches!(st.creation, Creation::Refused) {
            return Err(EIO);
        }
        // In the eviction order from the allocation on, so that others wait for the map to
        // finish instead of finding the window full of nothing they could evict.
        let offset = shared
            .alloc_window(self, self.size, dev, bound)
            .inspect_err(|e| {
                if *e == ENOSPC {
                    // Userspace asked for it: information, not a warning.
                    kernel::pr_info_once!(
                        "virtio_intel: an object of {} bytes does not fit the host-visible \
                         window\n",
                        self.size
                    );
                }
            })?;
        st.window = Some(Window {
            offset,
            cache: None,
        });
        // Uninterruptible (bounded): a map queued but not answered could never be retried,
        // as the host refuses to map a mapped resource again.
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        let map = ResourceMapBlob::new(self.ctx_id, self.res_id, offset);
        let pending = match bound.queue.send(
            &map,
            KVec::new(),
            &mut None,
            Wait::Uninterruptible,
            &mut left,
        ) {
            Ok(p) => p,
            Err(e) => {
                // Not queued: nothing is mapped there.
                st.window = None;
                shared.free_hostmem(offset);
                shared.untrack_mapped(self);
                return Err(e);
            }
        };
        // The creation's answer comes before the map's (the host runs the queue in order):
        // looked at while the map is on its way, a first fault costs one round trip. A
        // refused creation fails the map as well.
        let _ = st.settle(Wait::Uninterruptible);
        match pending.wait(Wait::Uninterruptible) {
            Ok(info) => {
                let cache = cache_of(info.cache()).ok_or(EIO)?;
                st.window = Some(Window {
                    offset,
                    cache: Some(cache),
                });
                Ok(())
            }
            Err(e) if e == EIO => {
                // The host answered with an error: nothing is mapped there.
                st.window = None;
                shared.free_hostmem(offset);
                shared.untrack_mapped(self);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Evicts the object from the window, if its state is not locked by someone else:
    /// zaps its user mappings, has the host unmap it and frees its range.
    pub(crate) fn try_evict(&self, dev: &IoctlDevice, bound: &Bound<'_>, shared: &Shared) -> Evict {
        let Some(mut st) = self.state.try_lock() else {
            return Evict::Busy;
        };
        let Some(w) = st.window else {
            return Evict::Gone;
        };
        if w.cache.is_none() {
            return Evict::Gone;
        }
        let active = st.last_batch.as_ref().is_some_and(|f| !f.is_signaled());
        if st.madv == Madv::DontNeed && !active {
            // Userspace does not need the contents: release the host object, as i915's
            // shrinker purges such objects first (idle ones only).
            self.purge(&mut st, dev, bound, shared);
            return Evict::Gone;
        }
        let fake = self.fake_offset.load(Ordering::Acquire);
        if fake != u64::MAX {
            dev.unmap_user_range(fake, self.size);
        }
        let r = bound
            .queue
            .call_uninterruptible(&ResourceCmd::unmap_blob(self.ctx_id, self.res_id))
            .map(|_| ());
        if settled(&r) {
            st.window = None;
            st.pages = false;
            shared.free_hostmem(w.offset);
            shared.stats.evictions.fetch_add(1, Ordering::Relaxed);
        } else {
            // The host may still map the range: keep it, and the object unmappable.
            st.window = Some(Window {
                offset: w.offset,
                cache: None,
            });
        }
        Evict::Gone
    }

    /// Sets the object's advice (`GEM_MADVISE`); a `DONTNEED` object that i915 would hold no
    /// pages for (never faulted in or used by a batch since its last eviction) is purged at
    /// once, as i915 truncates one without pages. Returns whether the contents are still
    /// there (`retained`).
    pub(crate) fn madvise(
        &self,
        advice: Madv,
        busy: bool,
        dev: &IoctlDevice,
        bound: &Bound<'_>,
        shared: &Shared,
    ) -> bool {
        let mut st = self.state.lock();
        if st.madv != Madv::Purged {
            st.madv = advice;
        }
        // A batch still using it holds its pages too (i915: an active vma).
        if st.madv == Madv::DontNeed && !st.pages && !busy {
            self.purge(&mut st, dev, bound, shared);
        }
        st.madv != Madv::Purged
    }

    /// Whether the object's contents were released (`GEM_MADVISE`).
    pub(crate) fn is_purged(&self) -> bool {
        self.state.lock().madv == Madv::Purged
    }

    /// Releases the host object behind a `DONTNEED` object: zaps its mappings, unmaps it,
    /// unreferences the blob. What the host does not confirm stays recorded, for the release
    /// at free time.
    fn purge(&self, st: &mut HostState, dev: &IoctlDevice, bound: &Bound<'_>, shared: &Shared) {
        st.madv = Madv::Purged;
        let fake = self.fake_offset.load(Ordering::Acquire);
        if fake != u64::MAX {
            dev.unmap_user_range(fake, self.size);
        }
        let send = |cmd: &ResourceCmd| settled(&bound.queue.call_uninterruptible(cmd).map(|_| ()));
        if let Some(w) = st.window {
            if w.cache.is_some() && send(&ResourceCmd::unmap_blob(self.ctx_id, self.res_id)) {
                st.window = None;
                shared.free_hostmem(w.offset);
            }
        }
        if st.blob && st.window.is_none() && send(&ResourceCmd::unref(self.res_id)) {
            st.blob = false;
            shared.stats.blobs.fetch_sub(1, Ordering::Relaxed);
        }
        shared.stats.purged.fetch_add(1, Ordering::Relaxed);
    }

    /// Releases the host objects of the slot, through `bound` if the device is bound. The
    /// unmap and the unref are queued together and answered in order: one round trip.
    fn release(&self, bound: Option<&Bound<'_>>, shared: &Shared) {
        let mut st = self.state.lock();
        let stats = &shared.stats;
        let (ctx, res) = (self.ctx_id, self.res_id);
        let window = st.window.take();
        let (unmapped, unrefd) = match bound {
            None => (true, true),
            Some(b) => {
                let q = &b.queue;
                let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
                let mut queue = |cmd: &ResourceCmd| {
                    q.send(
                        cmd,
                        KVec::new(),
                        &mut None,
                        Wait::Uninterruptible,
                        &mut left,
                    )
                };
                let unmap = window.map(|_| queue(&ResourceCmd::unmap_blob(ctx, res)));
                let unref = st.blob.then(|| queue(&ResourceCmd::unref(res)));
                let outcome = |p: Option<Result<Pending<ResourceCmd>>>| {
                    let r = p.map_or(Ok(()), |p| {
                        p.and_then(|p| p.wait(Wait::Uninterruptible)).map(|_| ())
                    });
                    if let Err(e) = r {
                        pr_debug!("virtio_intel: releasing blob {}: {:?}\n", res, e);
                    }
                    settled(&r)
                };
                (outcome(unmap), outcome(unref))
            }
        };
        if let Some(w) = window {
            if unmapped {
                shared.free_hostmem(w.offset);
            } else {
                stats.quarantined_bytes.fetch_add(
                    i64::try_from(self.size).unwrap_or(i64::MAX),
                    Ordering::Relaxed,
                );
                kernel::pr_warn_once!(
                    "virtio_intel: blob {}: unmap not confirmed, window range {:#x} quarantined\n",
                    res,
                    w.offset
                );
            }
        }
        if !st.blob {
            shared.release_res_id(res);
        } else if unrefd {
            stats.blobs.fetch_sub(1, Ordering::Relaxed);
            shared.release_res_id(res);
        }
    }
}

/// Driver data of a GEM object.
#[pin_data(PinnedDrop)]
pub(crate) struct Bo {
    dev: ARef<IoctlDevice>,
    shared: Arc<Shared>,
    slot: Arc<MapSlot>,
}

#[vtable]
impl drm::gem::DriverObject for Bo {
    type Driver = VirtioIntelDriver;
    type Args = BoArgs;

    fn new(
        dev: &drm::Device<VirtioIntelDriver>,
        _size: usize,
        args: BoArgs,
    ) -> impl PinInit<Self, Error> {
        let shared: &Arc<Shared> = dev;
        try_pin_init!(Bo {
            dev: args.dev,
            shared: shared.clone(),
            slot: args.slot,
        })
    }

    fn fault(obj: &Object, fault: &VmFault, page: usize) -> VmFaultResult {
        let Some(guard) = obj.dev.registration_guard() else {
            return VmFaultResult::SIGBUS;
        };
        guard.registration_data_with(|bound| {
            let r = obj
                .slot
                .with_window(&obj.dev, bound, &obj.shared, true, |offset, cache| {
                    let pfn = (page as u64)
                        .checked_mul(PAGE_SIZE as u64)
                        .and_then(|at| offset.checked_add(at))
                        .and_then(|at| bound.hostmem.pfn(at));
                    let Some(pfn) = pfn else {
                        return VmFaultResult::SIGBUS;
                    };
                    // SAFETY: `pfn` is a page of the host-visible region, device memory this
                    // binding reserved, inside the object's window range (`page` is below the
                    // object's size). The state lock is held: the range stays the object's until
                    // an eviction, which zaps the object's mappings under the same lock, or until
                    // the object is freed, which needs every mapping gone. Unbind zaps every
                    // mapping of the device (the DRM registration does, after unplugging it)
                    // before the region's reservation is released.
                    unsafe { fault.insert_pfn(pfn, cache) }
                });
            match r {
                Ok(v) => v,
                // Retried once the signal is handled.
                Err(e) if e == ERESTARTSYS || e == EINTR => VmFaultResult::NOPAGE,
                Err(e) if e == ENOMEM => VmFaultResult::OOM,
                Err(_) => VmFaultResult::SIGBUS,
            }
        })
    }
}

/// The page caching for a host `VIRTIO_GPU_MAP_CACHE_*` value.
fn cache_of(map_info: u32) -> Option<PfnCache> {
    match map_info {
        MAP_CACHE_NONE | MAP_CACHE_CACHED => Some(PfnCache::WriteBack),
        MAP_CACHE_UNCACHED => Some(PfnCache::Uncached),
        MAP_CACHE_WC => Some(PfnCache::WriteCombine),
        _ => None,
    }
}

impl Bo {
    /// The blob resource id.
    pub(crate) fn res_id(&self) -> u32 {
        self.slot.res_id
    }

    /// Makes the object usable in ccmds of host context `ctx`: the host imports it into a
    /// context other than its creator's (`CTX_ATTACH_RESOURCE`) the first time. The host
    /// forgets the import when the resource is unreferenced, with the object.
    ///
    /// # Errors
    ///
    /// `ENOMEM`, and the transport's errors.
    pub(crate) fn attach_to(&self, bound: &Bound<'_>, ctx: &HostContext) -> Result {
        self.slot
            .attach_locked(&mut self.slot.state.lock(), bound, ctx)
    }

    /// Records the object's fake mmap offset (for zapping its mappings on eviction).
    pub(crate) fn set_fake_offset(&self, offset: u64) {
        self.slot.fake_offset.store(offset, Ordering::Release);
    }

    /// Queues the export of the host object pending under `blob_id` as this object's blob
    /// resource, without waiting for the host: the first command about the object looks at
    /// the answer (the host refuses when it has no such pending object, because the
    /// `GEM_CREATE` failed, or on a size mismatch).
    ///
    /// # Errors
    ///
    /// The transport's errors; nothing was queued then.
    pub(crate) fn create_blob(&self, bound: &Bound<'_>, blob_id: u32) -> Result {
        let s = &self.slot;
        let mut st = s.state.lock();
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        let pending = bound.queue.send(
            &ResourceCreateBlob::host3d(
                s.ctx_id,
                s.res_id,
                BLOB_FLAG_USE_MAPPABLE | BLOB_FLAG_USE_SHAREABLE,
                u64::from(blob_id),
                s.size,
            ),
            KVec::new(),
            &mut None,
            Wait::Interruptible,
            &mut left,
        )?;
        st.blob = true;
        st.creation = Creation::Pending(pending);
        self.shared.stats.blobs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Runs `send` (which sends `GEM_SET_MMAP_MODE` for `mode`) unless a mode was already
    /// requested or the object was mapped: the host takes one mode per object, before its
    /// first map. `send` gets [`Self::attach_to`] for the object's state, which stays locked
    /// meanwhile.
    /// `is_default` says `mode` is what the host uses anyway: nothing is sent for it, and a
    /// later mode may still be.
    pub(crate) fn request_mode(
        &self,
        bound: &Bound<'_>,
        mode: u32,
        is_default: bool,
        send: impl FnOnce(&mut dyn FnMut(&HostContext) -> Result) -> Result,
    ) -> Result {
        let slot = &self.slot;
        let mut st = slot.state.lock();
        // A purged object has no host resource any more; its faults get SIGBUS.
        if is_default || st.mode.is_some() || st.window.is_some() || st.madv == Madv::Purged {
            return Ok(());
        }
        send(&mut |ctx| slot.attach_locked(&mut st, bound, ctx))?;
        st.mode = Some(mode);
        Ok(())
    }

    /// Sets the object's advice; see [`MapSlot::madvise`]. `busy`: a batch still uses it.
    pub(crate) fn madvise(&self, bound: &Bound<'_>, advice: Madv, busy: bool) -> bool {
        self.slot
            .madvise(advice, busy, &self.dev, bound, &self.shared)
    }

    /// Whether the object's contents were released.
    pub(crate) fn is_purged(&self) -> bool {
        self.slot.is_purged()
    }

    /// Runs `f` with the object's window range and caching; see [`MapSlot::with_window`].
    pub(crate) fn with_window<R>(
        &self,
        bound: &Bound<'_>,
        f: impl FnOnce(u64, PfnCache) -> R,
    ) -> Result<R> {
        self.slot
            .with_window(&self.dev, bound, &self.shared, false, f)
    }

    /// Records that a batch uses the object (see [`MapSlot::madvise`]).
    ///
    /// # Errors
    ///
    /// `EFAULT` for a purged object.
    pub(crate) fn use_for_batch(&self) -> Result {
        self.slot.use_for_batch()
    }

    /// Records the fence of the last batch that used the object (see
    /// [`MapSlot::try_evict`]).
    pub(crate) fn set_last_batch(&self, fence: &Fence) {
        self.slot.set_last_batch(fence)
    }
}

/// Releases `slot`'s host objects through the device if it is still bound; then takes the
/// slot out of the eviction order. It stays there while it is released, so that a mapping
/// that needs the window waits for the range (the state is locked meanwhile) instead of
/// finding nothing to evict.
fn release_slot(dev: &IoctlDevice, slot: &Arc<MapSlot>, shared: &Shared) {
    match dev.registration_guard() {
        Some(guard) => guard.registration_data_with(|bound| slot.release(Some(bound), shared)),
        None => slot.release(None, shared),
    }
    shared.untrack_mapped(slot);
}

#[pinned_drop]
impl PinnedDrop for Bo {
    fn drop(self: Pin<&mut Self>) {
        // The fake offset goes with the object (another may get it) and no mapping is left:
        // an eviction of the slot before its release must not zap that range.
        self.slot.fake_offset.store(u64::MAX, Ordering::Release);
        // The host objects are released on the device's workqueue, as i915 frees objects
        // from a worker: the last `GEM_CLOSE` or `munmap` does not wait for the host. Without
        // memory for that, or once the device is gone, right here.
        let deferred = self.dev.registration_guard().is_some_and(|guard| {
            guard.registration_data_with(|bound| {
                let (dev, slot, shared) =
                    (self.dev.clone(), self.slot.clone(), self.shared.clone());
                bound
                    .queue
                    .defer(move || release_slot(&dev, &slot, &shared))
                    .is_ok()
            })
        });
        if !deferred {
            release_slot(&self.dev, &self.slot, &self.shared);
        }
        let stats = &self.shared.stats;
        stats.objects.fetch_sub(1, Ordering::Relaxed);
        stats
            .object_bytes
            .fetch_sub(self.slot.size as i64, Ordering::Relaxed);
    }
}
