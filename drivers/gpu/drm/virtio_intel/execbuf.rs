// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_EXECBUFFER2` and `DRM_IOCTL_I915_GEM_EXECBUFFER2_WR`.
//!
//! The checks of upstream `i915_gem_execbuffer.c` that come before the GEM context is
//! looked up run here, in i915's order: the buffer count, unknown flags, cliprects, `DR1`
//! and `DR4`, the alignment of the batch start and length, `I915_EXEC_SECURE`, the fence
//! flags. The exec list and each object's relocations are then read (`EFAULT`), handles
//! are looked up (`ENOENT`, and `EFAULT` for a purged object, as i915 fails to get its
//! pages), relocation targets are turned into indices of the exec list, and the host's i915
//! runs the execbuffer on the same objects (named by their res_ids) in the file's host
//! context, with every check that depends on the context, the engines and the objects
//! (`ENOENT` for an unknown context, `EIO` for a banned one, `EINVAL` for an engine the
//! context does not have, a batch outside its object, ...). Its errno comes back as is.
//!
//! Fences are the guest's, parsed in i915's order before the context is looked up: the
//! timeline-fence extension (`I915_EXEC_USE_EXTENSIONS`) or the syncobj array
//! (`I915_EXEC_FENCE_ARRAY`, both in `cliprects_ptr`), then the sync file of
//! `I915_EXEC_FENCE_IN` or `_SUBMIT` (the low half of `rsvd2`), then the fd of
//! `I915_EXEC_FENCE_OUT`. The execbuffer waits, in the guest and without blocking the
//! ioctl ([`crate::exec_queue`]), for its in-fence, the syncobj points it waits for, and the
//! fences on its objects (a write waits for every fence, a read for writes; not for objects
//! flagged `EXEC_OBJECT_ASYNC`), but not for what the host orders itself: earlier batches
//! of the same GEM context and engine, and, on objects, any batch already sent (the host's
//! i915 orders batches on the same objects). A submit fence waits until its batch was sent
//! to the host, which for a foreign fence means until it signalled.
//!
//! The batch's fence (a DMA fence of the context's host ring, see
//! [`crate::context::HostContext::execbuffer`], or of the queue) is added to every object's
//! reservation object: as a write for objects flagged `EXEC_OBJECT_WRITE`, a read for the
//! others. `GEM_BUSY`, `GEM_WAIT`, PRIME importers and implicit synchronisation see it
//! there. The syncobjs to signal get it (as a timeline point for a point other than 0), and
//! the out-fence's sync file is installed with its fd in the high half of `rsvd2` (which
//! only `_WR` copies back).
//!
//! The host does not write back the offsets it gave objects with relocations: they are not
//! written back to the exec list, and userspace relocates again on the next call (softpinned
//! objects, which Mesa uses, have no relocations).

use core::mem::size_of;
use kernel::{
    dma_fence::{
        ChainNode,
        Fence, //
    },
    dma_resv::Usage,
    drm::{
        self,
        gem::BaseObject,
        syncobj::SyncObj, //
    },
    fs::file::FileDescriptorReservation,
    prelude::*,
    sync::aref::ARef,
    sync_file,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};
use zerocopy_derive::Immutable;

use crate::{
    ccmd::{
        ExecPayload,
        GemExecbuffer2, //
    },
    driver::{
        Bound,
        I915Device, //
    },
    exec_queue::Submission,
    file::File,
    gem::Object,
    shared::Shared,
    uext,
};

/// `struct drm_i915_gem_exec_object2`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct ExecObject {
    handle: u32,
    relocation_count: u32,
    relocs_ptr: u64,
    alignment: u64,
    offset: u64,
    flags: u64,
    rsvd1: u64,
    rsvd2: u64,
}

/// `struct drm_i915_gem_relocation_entry`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct Reloc {
    target_handle: u32,
    delta: u32,
    offset: u64,
    presumed_offset: u64,
    read_domains: u32,
    write_domain: u32,
}

kernel::static_assert!(size_of::<ExecObject>() == size_of::<uapi::drm_i915_gem_exec_object2>());
kernel::static_assert!(size_of::<ExecObject>() == 56);
kernel::static_assert!(size_of::<Reloc>() == size_of::<uapi::drm_i915_gem_relocation_entry>());
kernel::static_assert!(size_of::<Reloc>() == 32);

/// `struct drm_i915_gem_exec_fence`: a syncobj to wait for or signal.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct ExecFence {
    handle: u32,
    flags: u32,
}

/// `struct drm_i915_gem_execbuffer_ext_timeline_fences`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct TimelineFences {
    next_extension: u64,
    name: u32,
    flags: u32,
    rsvd: [u32; 4],
    fence_count: u64,
    handles_ptr: u64,
    values_ptr: u64,
}

kernel::static_assert!(size_of::<ExecFence>() == size_of::<uapi::drm_i915_gem_exec_fence>());
kernel::static_assert!(
    size_of::<TimelineFences>() == size_of::<uapi::drm_i915_gem_execbuffer_ext_timeline_fences>()
);
kernel::static_assert!(size_of::<TimelineFences>() == 56);

/// `I915_EXEC_FENCE_WAIT`, `_SIGNAL`, and the rest of the bits (`EINVAL`).
mod fence_flags {
    pub(super) const WAIT: u32 = 1 << 0;
    pub(super) const SIGNAL: u32 = 1 << 1;
    pub(super) const UNKNOWN: u32 = !(WAIT | SIGNAL);
}

/// `DRM_I915_GEM_EXECBUFFER_EXT_TIMELINE_FENCES`.
const EXT_TIMELINE_FENCES: u32 = 0;

/// The end of the user address range (`TASK_SIZE_MAX` with 4-level paging), for the
/// `access_ok()` checks i915 makes on whole fence arrays before reading them.
const USER_END: u64 = 0x7fff_ffff_f000;

/// Most syncobj fences one execbuffer takes: i915's array of them is one allocation, which
/// fails (`ENOMEM`) long before this.
const MAX_SYNCOBJ_FENCES: u64 = 1 << 17;

/// `access_ok()`: `len` bytes at `addr` are in the user address range.
fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= USER_END)
}

/// A syncobj an execbuffer waits for or signals.
struct SyncobjFence {
    obj: ARef<SyncObj>,
    flags: u32,
    /// The timeline point (0 for a binary syncobj).
    point: u64,
    /// The fence to wait for.
    fence: Option<Fence>,
    /// The chain node of the point to signal.
    chain: Option<ChainNode>,
}

/// An execbuffer's fences, parsed before anything else of it is looked up.
struct ExecFences {
    syncobjs: KVec<SyncobjFence>,
    /// The in-fence, and whether it is a submit fence.
    input: Option<(Fence, bool)>,
    /// The fd the out-fence gets.
    out: Option<FileDescriptorReservation>,
}

impl ExecFences {
    /// Parses `args`' fences, as `i915_gem_do_execbuffer()` does, in its order.
    fn parse(args: &uapi::drm_i915_gem_execbuffer2, file: &drm::File<File>) -> Result<Self> {
        let mut this = ExecFences {
            syncobjs: KVec::new(),
            input: None,
            out: None,
        };
        if args.flags & flags::USE_EXTENSIONS != 0 {
            // Both use `cliprects_ptr`.
            if args.flags & flags::FENCE_ARRAY != 0 || args.num_cliprects != 0 {
                return Err(EINVAL);
            }
            uext::walk(args.cliprects_ptr, |name, at| match name {
                EXT_TIMELINE_FENCES => {
                    let ext: TimelineFences = uext::read_user(at, 0)?;
                    this.add_timeline_fences(&ext, file)
                }
                _ => Err(EINVAL),
            })?;
        }
        if args.flags & flags::FENCE_ARRAY != 0 {
            this.add_fence_array(args.cliprects_ptr, args.num_cliprects.into(), file)?;
        }
        let in_fences = flags::FENCE_IN | flags::FENCE_SUBMIT;
        if args.flags & in_fences != 0 {
            if args.flags & in_fences == in_fences {
                return Err(EINVAL);
            }
            let fence = sync_file::fence_of_fd(args.rsvd2 as u32).ok_or(EINVAL)?;
            this.input = Some((fence, args.flags & flags::FENCE_SUBMIT != 0));
        }
        if args.flags & flags::FENCE_OUT != 0 {
            this.out = Some(FileDescriptorReservation::get_unused_fd_flags(
                kernel::bindings::O_CLOEXEC,
            )?);
        }
        Ok(this)
    }

    /// Room for `count` more syncobj fences, after i915's bounds and `access_ok()` checks of
    /// the arrays at `ptrs` (each entry `size` bytes).
    fn reserve(&mut self, count: u64, ptrs: &[(u64, u64)]) -> Result {
        let have = self.syncobjs.len() as u64;
        if count > (u64::MAX / 32).saturating_sub(have) {
            return Err(EINVAL);
        }
        for &(ptr, size) in ptrs {
            if !access_ok(ptr, count * size) {
                return Err(EFAULT);
            }
        }
        if count + have > MAX_SYNCOBJ_FENCES {
            return Err(ENOMEM);
        }
        self.syncobjs
            .reserve(count as usize, GFP_KERNEL | __GFP_NOWARN)?;
        Ok(())
    }

    /// `add_timeline_fence_array()`: the fences of one timeline-fence extension.
    fn add_timeline_fences(&mut self, ext: &TimelineFences, file: &drm::File<File>) -> Result {
        let count = ext.fence_count;
        if count == 0 {
            return Ok(());
        }
        self.reserve(count, &[(ext.handles_ptr, 8), (ext.values_ptr, 8)])?;
        for i in 0..count {
            let f: ExecFence = uext::read_user(ext.handles_ptr, i * 8)?;
            if f.flags & fence_flags::UNKNOWN != 0 {
                return Err(EINVAL);
            }
            let point: u64 = uext::read_user(ext.values_ptr, i * 8)?;
            let obj = SyncObj::lookup(file, f.handle).ok_or(ENOENT)?;
            let signal = f.flags & fence_flags::SIGNAL != 0;
            let mut fence = obj.fence();
            if fence.is_none() && f.flags != 0 && !signal {
                return Err(EINVAL);
            }
            if let Some(chain) = fence.take() {
                match chain.find_seqno(point) {
                    Ok(found) => fence = found,
                    // Signalling a point the timeline does not have yet is fine.
                    Err(_) if signal => fence = Some(chain),
                    Err(e) => return Err(e),
                }
            }
            // A point that signalled and was collected has nothing to wait for.
            if fence.is_none() && !signal {
                continue;
            }
            let chain = if point != 0 && signal {
                // Waiting for and signalling one point would break the timeline.
                if f.flags & fence_flags::WAIT != 0 {
                    return Err(EINVAL);
                }
                Some(ChainNode::new()?)
            } else {
                None
            };
            // Reserved above: this does not allocate.
            self.syncobjs.push(
                SyncobjFence {
                    obj,
                    flags: f.flags,
                    point,
                    fence,
                    chain,
                },
                GFP_NOWAIT,
            )?;
        }
        Ok(())
    }

    /// `add_fence_array()`: the binary syncobjs of `I915_EXEC_FENCE_ARRAY`.
    fn add_fence_array(&mut self, ptr: u64, count: u64, file: &drm::File<File>) -> Result {
        if count == 0 {
            return Ok(());
        }
        self.reserve(count, &[(ptr, 8)])?;
        for i in 0..count {
            let f: ExecFence = uext::read_user(ptr, i * 8)?;
            if f.flags & fence_flags::UNKNOWN != 0 {
                return Err(EINVAL);
            }
            let obj = SyncObj::lookup(file, f.handle).ok_or(ENOENT)?;
            let fence = if f.flags & fence_flags::WAIT != 0 {
                Some(obj.fence().ok_or(EINVAL)?)
            } else {
                None
            };
            // Reserved above: this does not allocate.
            self.syncobjs.push(
                SyncobjFence {
                    obj,
                    flags: f.flags,
                    point: 0,
                    fence,
                    chain: None,
                },
                GFP_NOWAIT,
            )?;
        }
        Ok(())
    }

    /// The unsignalled fences the batch must wait for in the guest: the in-fence and the
    /// syncobjs' (unwrapped), then those on the objects; and the submit fences whose
    /// batches must be sent first. The queue drops those of its own GEM context and
    /// engine.
    ///
    /// An explicit fence of a batch already sent is waited for: the host's i915 does not
    /// order batches of different GEM contexts on one host ring. A fence on an object
    /// needs no wait once its batch was sent, nor does a submit fence.
    fn dependencies(
        &self,
        shared: &Shared,
        list: &[ExecObject],
        objects: &[ARef<Object>],
    ) -> Result<(KVec<Fence>, KVec<Fence>)> {
        let mut deps = KVec::new();
        let mut submits = KVec::new();
        let mut add = |f: &Fence, submit: bool| -> Result {
            f.for_each_unwrapped(|u| {
                if u.is_signaled() || (submit && shared.is_ring_fence_context(u.context())) {
                    return Ok(());
                }
                if submit {
                    submits.push(u.clone(), GFP_KERNEL)?;
                } else {
                    deps.push(u.clone(), GFP_KERNEL)?;
                }
                Ok(())
            })
        };
        if let Some((f, submit)) = &self.input {
            add(f, *submit)?;
        }
        for s in self.syncobjs.iter() {
            if let Some(f) = &s.fence {
                add(f, false)?;
            }
        }
        for (e, obj) in list.iter().zip(objects.iter()) {
            if e.flags & EXEC_OBJECT_ASYNC != 0 {
                continue;
            }
            let usage = Usage::rw(e.flags & EXEC_OBJECT_WRITE != 0);
            let resv = obj.resv();
            // The common case, an idle object, without a snapshot.
            if resv.test_signaled(usage) {
                continue;
            }
            for f in resv.fences(usage)? {
                if !f.is_signaled() && !shared.is_ring_fence_context(f.context()) {
                    deps.push(f, GFP_KERNEL)?;
                }
            }
        }
        Ok((deps, submits))
    }

    /// Whether the syncobjs get the batch's fence.
    fn signals(&self) -> bool {
        self.syncobjs
            .iter()
            .any(|s| s.flags & fence_flags::SIGNAL != 0)
    }

    /// The batch runs with fence `fence`: signals the syncobjs (`signal_fence_array()`).
    fn signal(self, fence: &Fence) -> Option<FileDescriptorReservation> {
        for s in self.syncobjs {
            if s.flags & fence_flags::SIGNAL == 0 {
                continue;
            }
            match s.chain {
                Some(node) => s.obj.add_point(node, fence, s.point),
                None => s.obj.replace_fence(Some(fence)),
            }
        }
        self.out
    }
}

/// `I915_EXEC_*` flags.
mod flags {
    pub(super) const RING_MASK: u64 = 0x3f;
    pub(super) const CONSTANTS_MASK: u64 = 3 << 6;
    pub(super) const GEN7_SOL_RESET: u64 = 1 << 8;
    pub(super) const SECURE: u64 = 1 << 9;
    pub(super) const HANDLE_LUT: u64 = 1 << 12;
    pub(super) const RESOURCE_STREAMER: u64 = 1 << 15;
    pub(super) const FENCE_IN: u64 = 1 << 16;
    pub(super) const FENCE_OUT: u64 = 1 << 17;
    pub(super) const FENCE_ARRAY: u64 = 1 << 19;
    pub(super) const FENCE_SUBMIT: u64 = 1 << 20;
    pub(super) const USE_EXTENSIONS: u64 = 1 << 21;
    pub(super) const IS_PINNED: u64 = 1 << 10;
    pub(super) const NO_RELOC: u64 = 1 << 11;
    pub(super) const BATCH_FIRST: u64 = 1 << 18;
    /// The fence flags and extensions: the guest's to handle, never the host's.
    pub(super) const FENCES: u64 =
        FENCE_IN | FENCE_OUT | FENCE_SUBMIT | FENCE_ARRAY | USE_EXTENSIONS;
    /// Every bit above `USE_EXTENSIONS`, the relative-constants modes and the resource
    /// streamer (`__I915_EXEC_ILLEGAL_FLAGS`).
    pub(super) const ILLEGAL: u64 =
        !((USE_EXTENSIONS << 1) - 1) | CONSTANTS_MASK | RESOURCE_STREAMER;
}

/// `EXEC_OBJECT_NEEDS_FENCE`: ignored from graphics version 4 on.
const EXEC_OBJECT_NEEDS_FENCE: u64 = 1 << 0;
/// `EXEC_OBJECT_WRITE`.
const EXEC_OBJECT_WRITE: u64 = 1 << 2;
/// `EXEC_OBJECT_SUPPORTS_48B_ADDRESS`: without it an object must end below 4 GiB.
const EXEC_OBJECT_SUPPORTS_48B_ADDRESS: u64 = 1 << 3;
/// `EXEC_OBJECT_PINNED`: softpinned at `offset`.
const EXEC_OBJECT_PINNED: u64 = 1 << 4;
/// `EXEC_OBJECT_ASYNC`: no implicit synchronisation on this object.
const EXEC_OBJECT_ASYNC: u64 = 1 << 6;
/// `EXEC_OBJECT_CAPTURE`: in the error state of a hang.
const EXEC_OBJECT_CAPTURE: u64 = 1 << 7;

/// Whether the host's i915 accepts this execbuffer for certain, so that it may be sent
/// without waiting for the host's answer (see [`crate::context::HostContext::execbuffer`]):
/// what `eb_validate_vma()`, `eb_lookup_vmas()` and the binding of softpinned objects
/// check, for the case Mesa sends. Every object softpinned where i915 can bind it (a
/// page-aligned canonical offset on its alignment, inside the `gtt_size`-byte address
/// space, below 4 GiB without `SUPPORTS_48B_ADDRESS`, no two overlapping, which also rules
/// out a handle listed twice), object flags i915 takes on the platform, no relocations,
/// no legacy BSD ring selection, and a batch range inside a batch object it does not
/// write. Anything else is waited for, so that the ioctl returns the host's own error.
/// Allocation failure says no.
fn host_accepts(
    args: &uapi::drm_i915_gem_execbuffer2,
    list: &[ExecObject],
    objects: &[ARef<Object>],
    relocs: usize,
    gtt_size: u64,
) -> bool {
    const OBJECT_FLAGS: u64 = EXEC_OBJECT_NEEDS_FENCE
        | EXEC_OBJECT_WRITE
        | EXEC_OBJECT_SUPPORTS_48B_ADDRESS
        | EXEC_OBJECT_PINNED
        | EXEC_OBJECT_ASYNC
        | EXEC_OBJECT_CAPTURE;
    const CALL_FLAGS: u64 = flags::RING_MASK
        | flags::IS_PINNED
        | flags::NO_RELOC
        | flags::HANDLE_LUT
        | flags::BATCH_FIRST
        | flags::FENCES;
    const PAGE: u64 = 4096;
    if relocs != 0 || args.flags & !CALL_FLAGS != 0 || list.is_empty() {
        return false;
    }
    let mut ranges: KVec<(u64, u64)> = match KVec::with_capacity(list.len(), GFP_KERNEL) {
        Ok(v) => v,
        Err(_) => return false,
    };
    for (e, obj) in list.iter().zip(objects.iter()) {
        let size = obj.size() as u64;
        let align_ok =
            e.alignment == 0 || (e.alignment.is_power_of_two() && e.offset % e.alignment == 0);
        // The canonical form sign-extends bit 47; i915 binds at the address below it.
        let canonical = (((e.offset & !(PAGE - 1)) << 16) as i64 >> 16) as u64;
        let start = e.offset & ((1 << 48) - 1);
        let Some(end) = start.checked_add(size) else {
            return false;
        };
        let low_ok = e.flags & EXEC_OBJECT_SUPPORTS_48B_ADDRESS != 0
            || end.checked_add(PAGE - 1).is_some_and(|x| x >> 32 == 0);
        if e.flags & !OBJECT_FLAGS != 0
            || e.flags & EXEC_OBJECT_PINNED == 0
            || e.offset != canonical
            || !align_ok
            || end > gtt_size
            || !low_ok
            || e.relocation_count != 0
            || ranges.push((start, end), GFP_KERNEL).is_err()
        {
            return false;
        }
    }
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[0].1 > w[1].0) {
        return false;
    }
    let b = if args.flags & flags::BATCH_FIRST != 0 {
        0
    } else {
        list.len() - 1
    };
    let (Some(batch), Some(obj)) = (list.get(b), objects.get(b)) else {
        return false;
    };
    let size = obj.size() as u64;
    let start = u64::from(args.batch_start_offset);
    // A length of 0 is the rest of the object (`range_overflows()` then needs start < size).
    let len = match args.batch_len {
        0 => size.saturating_sub(start),
        l => u64::from(l),
    };
    batch.flags & EXEC_OBJECT_WRITE == 0 && start < size && len <= size - start
}

/// `I915_ENGINE_CLASS_*`, as i915 numbers them.
pub(crate) mod class {
    pub(crate) const RENDER: u16 = 0;
    pub(crate) const COPY: u16 = 1;
    pub(crate) const VIDEO: u16 = 2;
    pub(crate) const VIDEO_ENHANCE: u16 = 3;
    /// Not an engine (`I915_ENGINE_CLASS_INVALID`).
    pub(crate) const INVALID: u16 = 0xffff;
}

/// The engine class of legacy ring selector `ring` (`I915_EXEC_DEFAULT` ... `_VEBOX`), as
/// i915's `user_ring_map` has it.
///
/// # Errors
///
/// `EINVAL` for a selector past `I915_EXEC_VEBOX`.
pub(crate) fn legacy_class(ring: u64) -> Result<u16> {
    match ring {
        0 | 1 => Ok(class::RENDER),
        2 => Ok(class::VIDEO),
        3 => Ok(class::COPY),
        4 => Ok(class::VIDEO_ENHANCE),
        _ => Err(EINVAL),
    }
}

/// `check_buffer_count()` and `i915_gem_check_execbuffer()`, in i915's order.
fn check_args(args: &mut uapi::drm_i915_gem_execbuffer2) -> Result {
    // `check_buffer_count()`: at least one, and the exec list must be addressable.
    let count = args.buffer_count as usize;
    if count < 1 || count > usize::MAX / size_of::<ExecObject>() - 1 {
        return Err(EINVAL);
    }
    if args.flags & flags::ILLEGAL != 0 {
        return Err(EINVAL);
    }
    // Kernel clipping was a DRI1 feature; the field now carries fences or extensions.
    if args.flags & (flags::FENCE_ARRAY | flags::USE_EXTENSIONS) == 0
        && (args.num_cliprects != 0 || args.cliprects_ptr != 0)
    {
        return Err(EINVAL);
    }
    // i915 fixes up what old X drivers sent.
    if args.DR4 == 0xffff_ffff {
        args.DR4 = 0;
    }
    if args.DR1 != 0 || args.DR4 != 0 {
        return Err(EINVAL);
    }
    if (args.batch_start_offset | args.batch_len) & 7 != 0 {
        return Err(EINVAL);
    }
    Ok(())
}

/// The first check of `i915_gem_do_execbuffer()`, after the exec list was read.
fn check_do_args(args: &uapi::drm_i915_gem_execbuffer2) -> Result {
    // Secure batches are gone from graphics version 11 on (Tiger Lake is 12).
    if args.flags & flags::SECURE != 0 {
        return Err(ENODEV);
    }
    Ok(())
}

/// Most bytes of exec objects and relocations one execbuffer may carry: its ccmd is built in
/// one allocation, and a user-sized request must fail cleanly (`ENOMEM`, as i915's
/// allocation would), not reach the page allocator's limit.
const MAX_PAYLOAD: usize = 2 << 20;

/// Reads `count` `T`s from user address `addr`.
fn read_array<T: FromBytes + IntoBytes + Copy>(addr: u64, count: usize) -> Result<KVec<T>> {
    let len = count.checked_mul(size_of::<T>()).ok_or(ENOMEM)?;
    if len > MAX_PAYLOAD {
        return Err(ENOMEM);
    }
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    let mut v = KVec::from_elem(T::new_zeroed(), count, GFP_KERNEL | __GFP_NOWARN)?;
    UserSlice::new(UserPtr::from_addr(addr), len)
        .reader()
        .read_slice(v.as_mut_slice().as_mut_bytes())?;
    Ok(v)
}

impl File {
    /// `DRM_IOCTL_I915_GEM_EXECBUFFER2` and `_WR` (one ioctl number; only `_WR` copies the
    /// struct back, which the DRM core does from the direction bits).
    ///
    /// # Errors
    ///
    /// i915's: `EINVAL` for bad arguments or fences, `ENODEV` for secure batches, `EFAULT`
    /// for unreadable lists or a purged object, `ENOENT` for an unknown handle or syncobj,
    /// `EMFILE` without an fd for the out-fence; then the host i915's errno, `ENOMEM`, and
    /// the transport's errors.
    pub(crate) fn gem_execbuffer2(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_execbuffer2,
        file: &drm::File<File>,
    ) -> Result<u32> {
        check_args(args)?;
        let count = args.buffer_count as usize;
        let mut list: KVec<ExecObject> = read_array(args.buffers_ptr, count)?;
        check_do_args(args)?;
        let fences = ExecFences::parse(args, file)?;

        // The context (`ENOENT`; i915 looks up the low 32 bits of `rsvd1`), then the engine
        // (`EINVAL`), before any object, as `eb_select_context()` and `eb_select_engine()`.
        let this = file.inner();
        let ctx_id = (args.rsvd1 & 0xffff_ffff) as u32;
        let engine = args.flags & flags::RING_MASK;
        let class = this.engine_class(ctx_id, engine)?;

        // The objects, looked up in list order. The references keep them alive until their
        // fences are added.
        let mut objects: KVec<ARef<Object>> = KVec::with_capacity(count, GFP_KERNEL)?;
        for e in list.iter() {
            let obj = Object::lookup_handle(file, e.handle)?;
            objects.push(obj, GFP_KERNEL)?;
        }

        // Relocations, each list read from its object's `relocs_ptr`, their targets named
        // by index (the host only knows res_ids, so it takes `I915_EXEC_HANDLE_LUT` always).
        let total = list
            .iter()
            .try_fold(0usize, |n, e| n.checked_add(e.relocation_count as usize))
            .and_then(|n| n.checked_mul(size_of::<Reloc>()))
            .and_then(|n| n.checked_add(count * size_of::<ExecObject>()))
            .ok_or(ENOMEM)?;
        if total > MAX_PAYLOAD {
            return Err(ENOMEM);
        }
        let lut = args.flags & flags::HANDLE_LUT != 0;
        let mut relocs: KVec<Reloc> = KVec::new();
        for e in list.iter() {
            if e.relocation_count == 0 {
                continue;
            }
            let mut r: KVec<Reloc> = read_array(e.relocs_ptr, e.relocation_count as usize)?;
            if !lut {
                for entry in r.iter_mut() {
                    // An unknown target is `ENOENT` in i915 too.
                    let at = list
                        .iter()
                        .position(|o| o.handle == entry.target_handle)
                        .ok_or(ENOENT)?;
                    entry.target_handle = u32::try_from(at).map_err(|_| EINVAL)?;
                }
            }
            relocs.extend_from_slice(&r, GFP_KERNEL | __GFP_NOWARN)?;
        }
        // A relocation that writes its target makes the batch a writer of that object, as
        // i915 flags it (`EXEC_OBJECT_WRITE`): its fence then goes in as a write. A target
        // outside the list is the host's error to report.
        for r in relocs.iter() {
            if r.write_domain != 0 {
                if let Some(t) = list.get_mut(r.target_handle as usize) {
                    t.flags |= EXEC_OBJECT_WRITE;
                }
            }
        }
        let relocs_count = u32::try_from(relocs.len()).map_err(|_| EINVAL)?;

        // The streamout reset is for graphics version 7 render engines only; i915 finds out
        // once the request exists, after every other check but the host's.
        if args.flags & flags::GEN7_SOL_RESET != 0 {
            return Err(EINVAL);
        }

        for (e, obj) in list.iter_mut().zip(objects.iter()) {
            // i915 cannot get the pages of a purged object; one that is not purged keeps
            // its contents from here on (checked and marked under one lock).
            obj.use_for_batch()?;
            e.handle = obj.res_id();
            if e.relocation_count == 0 {
                e.relocs_ptr = 0;
            }
        }

        let mut payload = ExecPayload::with_capacity(total)?;
        payload.extend(list.as_slice().as_bytes())?;
        payload.extend(relocs.as_slice().as_bytes())?;
        // The host's i915 gets the flags it can honour; the guest keeps the rest.
        let host_flags = (args.flags | flags::HANDLE_LUT) & !flags::FENCES;
        let cmd = GemExecbuffer2 {
            flags: host_flags,
            ctx_id: u64::from(ctx_id),
            buffer_count: args.buffer_count,
            batch_start_offset: args.batch_start_offset,
            batch_len: args.batch_len,
            relocs_count,
            payload,
        };
        this.with_ctx(bound, |ctx| {
            for obj in objects.iter() {
                obj.attach_to(bound, ctx)?;
            }
            Ok(())
        })?;
        let host = this.host_ctx().ok_or(ENODEV)?;
        // A context that hung may be banned by now: its execbuffers wait for the host's word.
        // A legacy selector may name an engine the GPU lacks (i915: `EINVAL`), which the
        // guest cannot see; render and copy engines every part has.
        let engine_known =
            matches!(class, class::RENDER | class::COPY) || this.has_engine_map(ctx_id);
        let unwaited = crate::module_parameters::unwaited_execbuf.value()
            && engine_known
            && host.may_send_unwaited(ctx_id)
            && this
                .gtt_size(bound)
                .is_some_and(|gtt| host_accepts(args, &list, &objects, relocs.len(), gtt));
        // `engine` is at most 63, so the ring is at most 64.
        let ring = 1 + engine as u8;
        let (deps, submits) = fences.dependencies(this.shared(), &list, &objects)?;
        let done = this.exec_queue().submit(
            bound,
            Submission {
                ctx_id,
                ring,
                class,
                cmd,
                _objects: KVec::new(),
                host,
                dev: ARef::from(dev.as_ioctl()),
                unwaited,
            },
            &objects,
            (deps, submits),
            fences.signals(),
            fences.out.is_some(),
        )?;
        let fence = done.batch;

        // The batch runs (or waits for its dependencies): from here on nothing may fail the
        // ioctl. An object whose reservation has no memory for the fence does not show the
        // batch (waits on it return early); the reservations are taken one at a time, so
        // their room cannot be reserved before the batch is sent.
        for (e, obj) in list.iter().zip(objects.iter()) {
            let usage = if e.flags & EXEC_OBJECT_WRITE != 0 {
                Usage::Write
            } else {
                Usage::Read
            };
            obj.set_last_batch(&fence);
            let added = obj.resv().lock().add_fence(&fence, usage);
            if let Err(err) = added {
                pr_debug!(
                    "virtio_intel: batch fence not added to an object: {:?}\n",
                    err
                );
            }
        }
        if let Some(user) = &done.user {
            if let (Some(fd), Some(sf)) = (fences.signal(user), done.file) {
                args.rsvd2 = (args.rsvd2 & 0xffff_ffff) | (u64::from(fd.reserved_fd()) << 32);
                sf.install(fd);
            }
        }
        Ok(0)
    }
}
