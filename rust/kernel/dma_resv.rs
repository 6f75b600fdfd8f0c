// SPDX-License-Identifier: GPL-2.0

//! Reservation objects: the fences of the work that uses a buffer.
//!
//! C header: [`include/linux/dma-resv.h`](srctree/include/linux/dma-resv.h).
//!
//! Every GEM object and DMA buffer embeds a `struct dma_resv`. Drivers add the fence of each
//! job that reads or writes the buffer, with a [`Usage`] saying how the job uses it; anyone
//! (other drivers, userspace through the buffer) can then test or wait for the work of a
//! given kind. Adding a fence needs the object's lock ([`Resv::lock`]); testing, waiting and
//! taking a snapshot of the fences do not.
//!
//! This module borrows reservation objects that live elsewhere (in a GEM object, say); it
//! does not create them.

use crate::{
    bindings,
    dma_fence::Fence,
    prelude::*,
    time::Jiffies,
    types::{
        NotThreadSafe,
        Opaque, //
    },
};
use core::ptr::{
    self,
    NonNull, //
};

/// How a job uses a buffer (`enum dma_resv_usage`). The kinds are ordered: testing or
/// waiting for a kind covers it and every kind before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Usage {
    /// Kernel memory management (moves, clears): everyone waits for it.
    Kernel = bindings::dma_resv_usage_DMA_RESV_USAGE_KERNEL,
    /// An implicitly synchronised write.
    Write = bindings::dma_resv_usage_DMA_RESV_USAGE_WRITE,
    /// An implicitly synchronised read.
    Read = bindings::dma_resv_usage_DMA_RESV_USAGE_READ,
    /// Work that does not take part in implicit synchronisation.
    Bookkeep = bindings::dma_resv_usage_DMA_RESV_USAGE_BOOKKEEP,
}

impl Usage {
    /// What a job that writes (`write`) or reads the buffer must wait for, and what such a job
    /// adds (`dma_resv_usage_rw()`): a write waits for reads and writes, a read only for
    /// writes.
    #[inline]
    pub fn rw(write: bool) -> Self {
        if write {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// A reservation object (`struct dma_resv`), borrowed from the object that embeds it.
///
/// # Invariants
///
/// The wrapped `struct dma_resv` is initialised and lives at least as long as the reference.
#[repr(transparent)]
pub struct Resv(Opaque<bindings::dma_resv>);

// SAFETY: The reservation object's state is protected by its ww mutex and RCU; every
// operation through `&Resv` is thread-safe in C.
unsafe impl Send for Resv {}
// SAFETY: See `Send`.
unsafe impl Sync for Resv {}

impl Resv {
    /// Borrows the reservation object at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to an initialised `struct dma_resv` that stays valid for `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::dma_resv) -> &'a Self {
        // SAFETY: `Resv` is a transparent wrapper of the C struct, which the caller
        // guarantees is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    #[inline]
    fn as_raw(&self) -> *mut bindings::dma_resv {
        self.0.get()
    }

    /// Locks the object (`dma_resv_lock()` without an acquire context), waiting without
    /// interruption.
    ///
    /// Taking more than one reservation lock at a time needs an acquire context, which this
    /// function does not take: callers lock one object at a time.
    pub fn lock(&self) -> ResvGuard<'_> {
        // SAFETY: `as_raw()` is a live reservation object (invariant); without an acquire
        // context the lock cannot fail.
        unsafe { bindings::dma_resv_lock(self.as_raw(), ptr::null_mut()) };
        // INVARIANT: We hold the lock now.
        ResvGuard {
            resv: self,
            _not_send: NotThreadSafe,
        }
    }

    /// As [`Self::lock`], but a signal ends the wait for the lock
    /// (`dma_resv_lock_interruptible()`).
    ///
    /// # Errors
    ///
    /// `EINTR` on a signal.
    pub fn lock_interruptible(&self) -> Result<ResvGuard<'_>> {
        // SAFETY: `as_raw()` is a live reservation object (invariant); without an acquire
        // context the lock can only fail with a signal.
        let r = unsafe { bindings::dma_resv_lock_interruptible(self.as_raw(), ptr::null_mut()) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        // INVARIANT: We hold the lock now.
        Ok(ResvGuard {
            resv: self,
            _not_send: NotThreadSafe,
        })
    }

    /// Whether every fence of kind `usage` (and of the kinds before it) has signalled
    /// (`dma_resv_test_signaled()`).
    pub fn test_signaled(&self, usage: Usage) -> bool {
        // SAFETY: `as_raw()` is a live reservation object; the C function takes the RCU
        // read lock itself.
        unsafe { bindings::dma_resv_test_signaled(self.as_raw(), usage as u32) }
    }

    /// Waits for at most `timeout` jiffies until every fence of kind `usage` (and of the
    /// kinds before it) has signalled (`dma_resv_wait_timeout()`); a signal ends the wait when
    /// `interruptible`. Returns the jiffies left (at least 1).
    ///
    /// # Errors
    ///
    /// `ETIME` when a fence did not signal in time, `ERESTARTSYS` on a signal.
    pub fn wait_timeout(
        &self,
        usage: Usage,
        interruptible: bool,
        timeout: Jiffies,
    ) -> Result<Jiffies> {
        // At most `MAX_SCHEDULE_TIMEOUT` (`LONG_MAX`): wait without a bound.
        let timeout = timeout.min(crate::ffi::c_long::MAX as Jiffies) as crate::ffi::c_ulong;
        // SAFETY: `as_raw()` is a live reservation object; this may sleep, as a wait does.
        let r = unsafe {
            bindings::dma_resv_wait_timeout(self.as_raw(), usage as u32, interruptible, timeout)
        };
        match r {
            0 => Err(ETIME),
            r if r < 0 => Err(Error::from_errno(
                i32::try_from(r).unwrap_or(EINVAL.to_errno()),
            )),
            // `r` is positive.
            left => Ok(left as Jiffies),
        }
    }

    /// A snapshot of the fences of kind `usage` and of the kinds before it
    /// (`dma_resv_get_fences()`), each with its own reference.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn fences(&self, usage: Usage) -> Result<KVec<Fence>> {
        let mut num: u32 = 0;
        let mut array: *mut *mut bindings::dma_fence = ptr::null_mut();
        // SAFETY: `as_raw()` is a live reservation object; `num` and `array` are valid out
        // parameters. The C function takes the RCU read lock itself.
        let r = unsafe {
            bindings::dma_resv_get_fences(self.as_raw(), usage as u32, &mut num, &mut array)
        };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        let mut out = KVec::with_capacity(num as usize, GFP_KERNEL);
        for i in 0..num as usize {
            // SAFETY: On success `array` holds `num` fence pointers, each with a reference
            // that is now ours.
            let raw = unsafe { *array.add(i) };
            let Some(raw) = NonNull::new(raw) else {
                continue;
            };
            // SAFETY: See above: the reference moves into the `Fence`.
            let fence = unsafe { Fence::from_raw(raw) };
            if let Ok(v) = out.as_mut() {
                // Reserved above: this does not allocate.
                let _ = v.push_within_capacity(fence);
            }
            // Without room (the allocation failed) the fence is dropped: the snapshot fails
            // below, after every reference was given back.
        }
        // SAFETY: `array` was allocated by the C function with `kmalloc` (or is NULL).
        unsafe { bindings::kfree(array.cast()) };
        Ok(out?)
    }
}

/// The lock of a [`Resv`], released when dropped. It stays with the task that took it (a
/// ww mutex is unlocked by its owner).
///
/// # Invariants
///
/// The guard holds the lock of `resv`.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct ResvGuard<'a> {
    resv: &'a Resv,
    _not_send: NotThreadSafe,
}

impl ResvGuard<'_> {
    /// Adds `fence` with kind `usage` (`dma_resv_reserve_fences()` then
    /// `dma_resv_add_fence()`). The object takes its own reference. A fence of the same
    /// context already there with a kind no later than `usage` is replaced when `fence` is
    /// the later of the two, as `dma_resv_add_fence()` does.
    ///
    /// # Errors
    ///
    /// `ENOMEM` (the fence was not added).
    pub fn add_fence(&mut self, fence: &Fence, usage: Usage) -> Result {
        // SAFETY: We hold the lock (invariant), as the C function requires.
        let r = unsafe { bindings::dma_resv_reserve_fences(self.resv.as_raw(), 1) };
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        // SAFETY: We hold the lock and reserved a slot; `fence` is a live fence, on which
        // the object takes its own reference.
        unsafe { bindings::dma_resv_add_fence(self.resv.as_raw(), fence.as_ptr(), usage as u32) };
        Ok(())
    }
}

impl Drop for ResvGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: We hold the lock (invariant), which we release.
        unsafe { bindings::dma_resv_unlock(self.resv.as_raw()) };
    }
}

#[kunit_tests(rust_dma_resv)]
mod tests {
    use super::*;
    use crate::dma_fence::FenceContext;

    /// A reservation object of its own, for the tests.
    struct Owned(KBox<Opaque<bindings::dma_resv>>);

    impl Owned {
        fn new() -> Result<Self> {
            let r = KBox::new(Opaque::uninit(), GFP_KERNEL)?;
            // SAFETY: `r` is a valid allocation for a `struct dma_resv`.
            unsafe { bindings::dma_resv_init(r.get()) };
            Ok(Self(r))
        }

        fn resv(&self) -> &Resv {
            // SAFETY: Initialised in `new`, finalised only in `drop`.
            unsafe { Resv::from_raw(self.0.get()) }
        }
    }

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: Initialised in `new`; no one holds its lock any more.
            unsafe { bindings::dma_resv_fini(self.0.get()) };
        }
    }

    #[test]
    fn usages_order_the_fences() -> Result {
        let obj = Owned::new()?;
        let r = obj.resv();
        let ctx = FenceContext::new(c"kunit", c"resv")?;
        let other = FenceContext::new(c"kunit", c"resv2")?;
        assert!(r.test_signaled(Usage::Bookkeep));
        let write = ctx.new_fence(1)?;
        let read = other.new_fence(1)?;
        {
            let mut g = r.lock_interruptible()?;
            g.add_fence(&write.fence(), Usage::Write)?;
            g.add_fence(&read.fence(), Usage::Read)?;
        }
        assert_eq!(r.fences(Usage::Write)?.len(), 1);
        assert_eq!(r.fences(Usage::Read)?.len(), 2);
        assert!(!r.test_signaled(Usage::Write));
        assert_eq!(r.wait_timeout(Usage::Read, true, 0), Err(ETIME));
        write.signal(Ok(()));
        // A reader only waits for writers.
        assert!(r.test_signaled(Usage::Write));
        assert!(!r.test_signaled(Usage::Read));
        read.signal(Err(EIO));
        assert!(r.wait_timeout(Usage::Bookkeep, false, 1)? >= 1);
        assert_eq!(Usage::rw(true), Usage::Read);
        assert_eq!(Usage::rw(false), Usage::Write);
        Ok(())
    }

    #[test]
    fn a_later_fence_of_a_context_replaces_the_earlier() -> Result {
        let obj = Owned::new()?;
        let r = obj.resv();
        let ctx = FenceContext::new(c"kunit", c"resv")?;
        let f1 = ctx.new_fence(1)?;
        let f2 = ctx.new_fence(2)?;
        {
            let mut g = r.lock();
            g.add_fence(&f1.fence(), Usage::Write)?;
            g.add_fence(&f2.fence(), Usage::Write)?;
        }
        let fences = r.fences(Usage::Write)?;
        assert_eq!(fences.len(), 1);
        assert_eq!(fences[0].seqno(), 2);
        f1.signal(Ok(()));
        f2.signal(Ok(()));
        Ok(())
    }
}
