// SPDX-License-Identifier: GPL-2.0

//! DRM sync objects: containers of a fence, or of a timeline of fences, that userspace names
//! by a handle of its DRM file.
//!
//! C header: [`include/drm/drm_syncobj.h`](srctree/include/drm/drm_syncobj.h).
//!
//! The DRM core implements the sync object ioctls for drivers with
//! `DRIVER_SYNCOBJ`/`DRIVER_SYNCOBJ_TIMELINE`; a driver looks handles up to wait for a sync
//! object's fence before a job and to put the job's fence in it after.

use crate::{
    bindings,
    dma_fence::{
        ChainNode,
        Fence, //
    },
    drm::{
        self,
        file::DriverFile, //
    },
    error::to_result,
    prelude::*,
    sync::aref::{
        ARef,
        AlwaysRefCounted, //
    },
    types::Opaque,
};
use core::ptr::{
    self,
    NonNull, //
};

/// A sync object (`struct drm_syncobj`).
///
/// Its lock is not interrupt-safe: do not change its fence, or drop what may be its last
/// reference, from a fence callback or an interrupt.
///
/// # Invariants
///
/// The object is a live, reference-counted `struct drm_syncobj`.
#[repr(transparent)]
pub struct SyncObj(Opaque<bindings::drm_syncobj>);

// SAFETY: The fence pointer is protected by the object's lock and RCU, the rest is
// reference counted.
unsafe impl Send for SyncObj {}
// SAFETY: See `Send`: every operation through `&SyncObj` is thread-safe in C.
unsafe impl Sync for SyncObj {}

// SAFETY: `drm_syncobj_get`/`drm_syncobj_put` manage the object's reference count.
unsafe impl AlwaysRefCounted for SyncObj {
    fn inc_ref(&self) {
        // SAFETY: The object is live (invariant).
        unsafe { bindings::drm_syncobj_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up a reference it holds.
        unsafe { bindings::drm_syncobj_put(obj.cast().as_ptr()) };
    }
}

impl SyncObj {
    fn as_raw(&self) -> *mut bindings::drm_syncobj {
        self.0.get()
    }

    /// Takes over a reference to the sync object at `ptr`, if any.
    ///
    /// # Safety
    ///
    /// `ptr` is NULL or a sync object on which the caller holds a reference, which it gives
    /// to the returned value.
    unsafe fn from_raw(ptr: *mut bindings::drm_syncobj) -> Option<ARef<Self>> {
        // SAFETY: By the safety requirement; `SyncObj` is a transparent wrapper.
        NonNull::new(ptr).map(|p| unsafe { ARef::from_raw(p.cast()) })
    }

    /// Creates a sync object that no file names (`drm_syncobj_create()`), empty or holding an
    /// already signalled fence.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new(signaled: bool) -> Result<ARef<Self>> {
        let flags = if signaled {
            bindings::DRM_SYNCOBJ_CREATE_SIGNALED
        } else {
            0
        };
        let mut p = ptr::null_mut();
        // SAFETY: `p` is a valid out pointer; no fence is passed.
        to_result(unsafe { bindings::drm_syncobj_create(&mut p, flags, ptr::null_mut()) })?;
        // SAFETY: On success `p` carries the new object's reference.
        unsafe { Self::from_raw(p) }.ok_or(ENOMEM)
    }

    /// The sync object named `handle` in `file` (`drm_syncobj_find()`), if there is one.
    pub fn lookup<T: DriverFile>(file: &drm::File<T>, handle: u32) -> Option<ARef<Self>> {
        // SAFETY: `file` is an open DRM file; the call returns a new reference or NULL.
        unsafe { Self::from_raw(bindings::drm_syncobj_find(file.as_raw(), handle)) }
    }

    /// The fence the object holds now (`drm_syncobj_fence_get()`): for a timeline, the chain
    /// of its points.
    pub fn fence(&self) -> Option<Fence> {
        // SAFETY: The object is live; the call returns a new reference or NULL.
        let f = unsafe { bindings::drm_syncobj_fence_get(self.as_raw()) };
        // SAFETY: A non-NULL result carries a reference for the caller.
        NonNull::new(f).map(|f| unsafe { Fence::from_raw(f) })
    }

    /// Replaces the object's fence with `fence`, or empties it (`drm_syncobj_replace_fence()`).
    pub fn replace_fence(&self, fence: Option<&Fence>) {
        let f = fence.map_or(ptr::null_mut(), |f| f.as_ptr());
        // SAFETY: The object is live; the call takes its own reference to a non-NULL fence.
        unsafe { bindings::drm_syncobj_replace_fence(self.as_raw(), f) };
    }

    /// Adds `fence` as timeline point `point`, in `node` (`drm_syncobj_add_point()`). A point
    /// not above the last one still signals in order, as the C function documents.
    pub fn add_point(&self, node: ChainNode, fence: &Fence, point: u64) {
        // SAFETY: The object is live; the call takes over `node` and its own reference to
        // `fence`.
        unsafe {
            bindings::drm_syncobj_add_point(self.as_raw(), node.into_raw(), fence.as_ptr(), point)
        };
    }
}

#[kunit_tests(rust_drm_syncobj)]
mod tests {
    use super::*;
    use crate::dma_fence::FenceContext;

    #[test]
    fn binary_syncobj_holds_the_last_fence() -> Result {
        let s = SyncObj::new(false)?;
        assert!(s.fence().is_none());
        let ctx = FenceContext::new(c"kunit", c"syncobj")?;
        let a = ctx.new_fence(1)?;
        s.replace_fence(Some(&a.fence()));
        assert_eq!(s.fence().map(|f| f.seqno()), Some(1));
        s.replace_fence(None);
        assert!(s.fence().is_none());
        let done = SyncObj::new(true)?;
        assert!(done.fence().is_some_and(|f| f.is_signaled()));
        a.signal(Ok(()));
        Ok(())
    }

    #[test]
    fn timeline_points_unwrap_and_resolve() -> Result {
        let s = SyncObj::new(false)?;
        let ctx = FenceContext::new(c"kunit", c"timeline")?;
        let (one, two) = (ctx.new_fence(1)?, ctx.new_fence(2)?);
        s.add_point(ChainNode::new()?, &one.fence(), 1);
        s.add_point(ChainNode::new()?, &two.fence(), 5);
        let chain = s.fence().ok_or(EINVAL)?;
        assert_eq!(chain.seqno(), 5);
        // Points 2 to 5 are the second link, point 1 the first; 6 is not there yet.
        assert_eq!(chain.find_seqno(3)?.map(|f| f.seqno()), Some(5));
        assert_eq!(chain.find_seqno(1)?.map(|f| f.seqno()), Some(1));
        assert_eq!(chain.find_seqno(6).err(), Some(EINVAL));
        // A plain fence is not a chain.
        assert_eq!(one.fence().find_seqno(1).err(), Some(EINVAL));
        let mut seen = KVec::new();
        chain.for_each_unwrapped(|f| seen.push(f.seqno(), GFP_KERNEL).map_err(Into::into))?;
        assert_eq!(seen.as_slice(), &[2, 1]);
        // Stopping early gives the error back (and keeps no reference).
        assert_eq!(chain.for_each_unwrapped(|_| Err(EAGAIN)), Err(EAGAIN));
        one.signal(Ok(()));
        two.signal(Ok(()));
        Ok(())
    }
}
