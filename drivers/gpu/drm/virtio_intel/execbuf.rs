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
//! The batch's fence (a DMA fence of the context's host ring, see
//! [`crate::context::HostContext::execbuffer`]) is added to every object's reservation
//! object: as a write for objects flagged `EXEC_OBJECT_WRITE`, a read for the others.
//! `GEM_BUSY`, `GEM_WAIT`, PRIME importers and implicit synchronisation see it there.
//! Dependencies between batches need no wait in the guest: every fence an object of this
//! driver can carry is of a batch that runs on the host's i915, which orders batches on the
//! same objects itself.
//!
//! Not done (the parameters say so, and the flags are `EINVAL`): in- and out-fences
//! (`I915_EXEC_FENCE_IN`, `_OUT`, `_SUBMIT`, `_ARRAY`, the timeline-fence extension).
//! The host does not write back the offsets it gave objects with relocations: they are not
//! written back to the exec list, and userspace relocates again on the next call (softpinned
//! objects, which Mesa uses, have no relocations).

use core::mem::size_of;
use kernel::{
    drm::{
        self,
        gem::BaseObject, //
    },
    prelude::*,
    sync::aref::ARef,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
};
use zerocopy_derive::Immutable;

use crate::{
    ccmd::GemExecbuffer2,
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::Object,
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
    /// The fence flags and extensions: the guest's to handle, never the host's (not
    /// implemented yet).
    pub(super) const FENCES: u64 =
        FENCE_IN | FENCE_OUT | FENCE_SUBMIT | FENCE_ARRAY | USE_EXTENSIONS;
    /// Every bit above `USE_EXTENSIONS`, the relative-constants modes and the resource
    /// streamer (`__I915_EXEC_ILLEGAL_FLAGS`).
    pub(super) const ILLEGAL: u64 =
        !((USE_EXTENSIONS << 1) - 1) | CONSTANTS_MASK | RESOURCE_STREAMER;
}

/// `EXEC_OBJECT_WRITE`.
const EXEC_OBJECT_WRITE: u64 = 1 << 2;

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

/// The first checks of `i915_gem_do_execbuffer()`, after the exec list was read.
fn check_do_args(args: &uapi::drm_i915_gem_execbuffer2) -> Result {
    // Secure batches are gone from graphics version 11 on (Tiger Lake is 12).
    if args.flags & flags::SECURE != 0 {
        return Err(ENODEV);
    }
    // Fences are not implemented yet (`I915_PARAM_HAS_EXEC_FENCE*` say 0).
    if args.flags & flags::FENCES != 0 {
        return Err(EINVAL);
    }
    // Without fences, `rsvd2` carries nothing: i915 before fences refused it dirty.
    if args.rsvd2 != 0 {
        return Err(EINVAL);
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
    /// i915's: `EINVAL` for bad arguments, `ENODEV` for secure batches, `EFAULT` for
    /// unreadable lists or a purged object, `ENOENT` for an unknown handle; then the host
    /// i915's errno, `ENOMEM`, and the transport's errors.
    pub(crate) fn gem_execbuffer2(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_execbuffer2,
        file: &drm::File<File>,
    ) -> Result<u32> {
        check_args(args)?;
        let count = args.buffer_count as usize;
        let mut list: KVec<ExecObject> = read_array(args.buffers_ptr, count)?;
        check_do_args(args)?;

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

        let mut payload = KVec::with_capacity(total, GFP_KERNEL | __GFP_NOWARN)?;
        payload.extend_from_slice(list.as_slice().as_bytes(), GFP_KERNEL)?;
        payload.extend_from_slice(relocs.as_slice().as_bytes(), GFP_KERNEL)?;
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
        let fence = this.with_ctx(bound, |ctx| {
            for obj in objects.iter() {
                obj.attach_to(bound, ctx)?;
            }
            // `engine` is at most 63, so the ring is at most 64.
            ctx.execbuffer(bound, &cmd, 1 + engine as u8, class)
        })?;

        // The batch runs: from here on nothing may fail the ioctl. An object whose
        // reservation has no memory for the fence does not show the batch (waits on it
        // return early); the reservations are taken one at a time, so their room cannot be
        // reserved before the batch is sent.
        for (e, obj) in list.iter().zip(objects.iter()) {
            let usage = if e.flags & EXEC_OBJECT_WRITE != 0 {
                kernel::dma_resv::Usage::Write
            } else {
                kernel::dma_resv::Usage::Read
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
        Ok(0)
    }
}
