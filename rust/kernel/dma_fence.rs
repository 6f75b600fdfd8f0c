// SPDX-License-Identifier: GPL-2.0

//! DMA fences: completion signals that drivers, other devices and userspace wait on.
//!
//! C header: [`include/linux/dma-fence.h`](srctree/include/linux/dma-fence.h).
//!
//! A driver allocates a [`FenceContext`] per timeline (a hardware ring, say) and creates a
//! [`SignalFence`] for each job it queues on it, with increasing sequence numbers. Others
//! hold [`Fence`] references, which they can test, wait on, or attach callbacks to. The
//! driver signals the fence when the job completed, with an error if it failed; a
//! `SignalFence` dropped unsignalled signals `ECANCELED`, so no waiter is left hanging.
//!
//! The fence operations and the timeline names live in this crate (built into the kernel),
//! and a fence's memory is freed after an RCU grace period, so a fence may outlive the
//! module that created it, as the DMA fence rules require. Callbacks added with
//! [`Fence::on_signal`] are module code, hence that function's safety requirement.

use crate::{
    bindings,
    prelude::*,
    str::CString,
    sync::Arc,
    time::Jiffies,
    types::Opaque, //
};
use core::{
    mem::offset_of,
    ptr::{
        self,
        NonNull, //
    },
};

/// The names reported for the fences of one timeline.
struct Names {
    driver: CString,
    timeline: CString,
}

/// A timeline of fences: a fence context (`dma_fence_context_alloc()`).
///
/// Fences of one context must signal in the order of their sequence numbers.
pub struct FenceContext {
    id: u64,
    names: Arc<Names>,
}

impl FenceContext {
    /// Allocates a fence context whose fences report `driver` and `timeline` as their
    /// names (for debugging output such as `/sys/kernel/debug/dma_buf/bufinfo`).
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new(driver: &CStr, timeline: &CStr) -> Result<Self> {
        let names = Arc::new(
            Names {
                driver: CString::try_from(driver)?,
                timeline: CString::try_from(timeline)?,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `dma_fence_context_alloc` only advances a global atomic counter.
        let id = unsafe { bindings::dma_fence_context_alloc(1) };
        Ok(Self { id, names })
    }

    /// The context's id (`dma_fence.context`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Creates an unsignalled fence with sequence number `seqno` on this timeline.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new_fence(&self, seqno: u64) -> Result<SignalFence> {
        let obj = KBox::new(
            FenceObject {
                base: Opaque::uninit(),
                names: self.names.clone(),
            },
            GFP_KERNEL,
        )?;
        let obj = KBox::into_raw(obj);
        // SAFETY: `obj` is a valid, exclusively owned allocation; its `base` is a
        // `struct dma_fence` that `dma_fence_init64` initialises (64-bit seqno comparisons; a
        // NULL lock selects the fence's inline lock). `OPS` is a static table.
        unsafe {
            bindings::dma_fence_init64(
                Opaque::cast_into(ptr::addr_of!((*obj).base)),
                &OPS,
                ptr::null_mut(),
                self.id,
                seqno,
            )
        };
        // INVARIANT: The fence was just initialised and its one reference is ours.
        Ok(SignalFence {
            fence: Fence {
                // SAFETY: `obj` is not null, and `base` is at its start.
                ptr: unsafe {
                    NonNull::new_unchecked(Opaque::cast_into(ptr::addr_of!((*obj).base)))
                },
            },
        })
    }
}

/// The memory behind the fences this module creates.
///
/// # Invariants
///
/// `base` is an initialised `struct dma_fence` whose ops are [`OPS`]; the object is freed only
/// by [`release`], one RCU grace period after the last reference is gone.
#[repr(C)]
struct FenceObject {
    base: Opaque<bindings::dma_fence>,
    names: Arc<Names>,
}

/// The object around `fence`.
///
/// # Safety
///
/// `fence` must be the `base` of a live [`FenceObject`] (its ops are [`OPS`]).
unsafe fn object_of(fence: *mut bindings::dma_fence) -> *mut FenceObject {
    // SAFETY: By the function's safety requirement, `fence` is the `base` field of a
    // `FenceObject`.
    unsafe { crate::container_of!(Opaque::cast_from(fence), FenceObject, base) }.cast_mut()
}

/// `dma_fence_ops.get_driver_name`.
///
/// # Safety
///
/// `fence` must be a fence with [`OPS`], kept alive by the caller.
unsafe extern "C" fn get_driver_name(fence: *mut bindings::dma_fence) -> *const crate::ffi::c_char {
    // SAFETY: The DMA fence core calls this only for fences with `OPS`, all `FenceObject`s,
    // while it holds a reference or is in an RCU read-side section that keeps the object.
    let names: &Names = unsafe { &(*object_of(fence)).names };
    names.driver.as_char_ptr()
}

/// `dma_fence_ops.get_timeline_name`.
///
/// # Safety
///
/// As [`get_driver_name`].
unsafe extern "C" fn get_timeline_name(
    fence: *mut bindings::dma_fence,
) -> *const crate::ffi::c_char {
    // SAFETY: As in `get_driver_name`.
    let names: &Names = unsafe { &(*object_of(fence)).names };
    names.timeline.as_char_ptr()
}

/// Frees a released fence after an RCU grace period.
///
/// # Safety
///
/// `head` must be the `rcu` member of a fence with [`OPS`] that [`release`] passed to
/// `call_rcu`.
unsafe extern "C" fn free_rcu(head: *mut bindings::callback_head) {
    // SAFETY: `head` is the `rcu` member of the `struct dma_fence` at the start of a
    // `FenceObject` that `release` handed to `call_rcu`.
    let fence = unsafe { crate::container_of!(head, bindings::dma_fence, __bindgen_anon_2.rcu) };
    // SAFETY: The last reference is gone and a grace period passed, so nothing can reach
    // the object any more; it came from `KBox::into_raw` in `FenceContext::new_fence`.
    drop(unsafe { KBox::from_raw(object_of(fence)) });
}

/// `dma_fence_ops.release`: the last reference is gone.
///
/// # Safety
///
/// `fence` must be a fence with [`OPS`] whose reference count dropped to zero.
unsafe extern "C" fn release(fence: *mut bindings::dma_fence) {
    // SAFETY: The last reference to `fence` is gone. RCU readers (for example of its names)
    // may still look at it; `rcu` shares its memory with the callback list, which nobody
    // uses once the fence is released.
    unsafe {
        bindings::call_rcu(
            ptr::addr_of_mut!((*fence).__bindgen_anon_2.rcu),
            Some(free_rcu),
        )
    };
}

/// The operations of every fence this module creates.
static OPS: bindings::dma_fence_ops = bindings::dma_fence_ops {
    get_driver_name: Some(get_driver_name),
    get_timeline_name: Some(get_timeline_name),
    enable_signaling: None,
    signaled: None,
    wait: None,
    release: Some(release),
    set_deadline: None,
};

/// A counted reference to a DMA fence (`dma_fence_get()`/`dma_fence_put()`).
///
/// # Invariants
///
/// `ptr` points to an initialised `struct dma_fence` on which this value holds one
/// reference.
pub struct Fence {
    ptr: NonNull<bindings::dma_fence>,
}

// SAFETY: A fence reference may be used and dropped on any thread; the fence's state is
// protected by its lock and atomic reference count.
unsafe impl Send for Fence {}
// SAFETY: See `Send`: every operation through `&Fence` is thread-safe in C.
unsafe impl Sync for Fence {}

impl Clone for Fence {
    fn clone(&self) -> Self {
        // SAFETY: `ptr` is a live fence (invariant); the new reference is the clone's.
        unsafe { bindings::dma_fence_get(self.ptr.as_ptr()) };
        Self { ptr: self.ptr }
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        // SAFETY: This value holds one reference (invariant), which it gives up.
        unsafe { bindings::dma_fence_put(self.ptr.as_ptr()) };
    }
}

impl Fence {
    fn as_raw(&self) -> *mut bindings::dma_fence {
        self.ptr.as_ptr()
    }

    /// Takes over a reference to the fence at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to an initialised `struct dma_fence` on which the caller holds a
    /// reference, which it gives to the returned value.
    pub unsafe fn from_raw(ptr: NonNull<bindings::dma_fence>) -> Self {
        // INVARIANT: The caller gives us its reference.
        Self { ptr }
    }

    /// The raw fence pointer, for C functions that take a fence (valid while `self` lives).
    pub fn as_ptr(&self) -> *mut bindings::dma_fence {
        self.as_raw()
    }

    /// The fence context (timeline) id.
    pub fn context(&self) -> u64 {
        // SAFETY: `context` is set at init and never changes.
        unsafe { (*self.as_raw()).context }
    }

    /// The sequence number on its timeline.
    pub fn seqno(&self) -> u64 {
        // SAFETY: `seqno` is set at init and never changes.
        unsafe { (*self.as_raw()).seqno }
    }

    /// Whether the fence has signalled (`dma_fence_is_signaled()`).
    pub fn is_signaled(&self) -> bool {
        // SAFETY: `as_raw()` is a live fence (invariant).
        unsafe { bindings::dma_fence_is_signaled(self.as_raw()) }
    }

    /// The error the fence signalled with: `None` while unsignalled or on success.
    pub fn error(&self) -> Option<Error> {
        if !self.is_signaled() {
            return None;
        }
        // SAFETY: `as_raw()` is a live fence; `error` no longer changes once signalled.
        let e = unsafe { bindings::dma_fence_get_status(self.as_raw()) };
        (e < 0).then(|| Error::from_errno(e))
    }

    /// Waits for the fence for at most `timeout` jiffies (`dma_fence_wait_timeout()`);
    /// a signal ends the wait when `interruptible`. Returns the jiffies left.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT` when the fence did not signal in time, `ERESTARTSYS` on a signal.
    pub fn wait_timeout(&self, interruptible: bool, timeout: Jiffies) -> Result<Jiffies> {
        let timeout = crate::ffi::c_long::try_from(timeout).unwrap_or(crate::ffi::c_long::MAX);
        // SAFETY: `as_raw()` is a live fence (invariant); this may sleep, as callers of a
        // wait expect.
        let r = unsafe { bindings::dma_fence_wait_timeout(self.as_raw(), interruptible, timeout) };
        match r {
            0 => Err(ETIMEDOUT),
            r if r < 0 => Err(Error::from_errno(
                i32::try_from(r).unwrap_or(EINVAL.to_errno()),
            )),
            // `r` is positive.
            left => Ok(left as Jiffies),
        }
    }

    /// Runs `f` once the fence signals, with its error (`dma_fence_add_callback()`).
    ///
    /// `f` runs in the context that signals, possibly in an interrupt and with the fence's
    /// lock held: it must not sleep or touch this fence. A registered callback cannot be
    /// cancelled.
    ///
    /// # Safety
    ///
    /// The code of `F` (and of this function's instance for `F`) must still be loaded when the
    /// fence signals: either it is built into the kernel, or the calling module makes sure
    /// the fence has signalled before it can be unloaded.
    ///
    /// # Errors
    ///
    /// `ENOENT` if the fence has already signalled (`f` is then dropped unrun), `ENOMEM`.
    pub unsafe fn on_signal<F: FnOnce(Result) + Send + 'static>(&self, f: F) -> Result {
        let cb = KBox::new(
            Callback {
                cb: Opaque::uninit(),
                f: Some(f),
            },
            GFP_KERNEL,
        )?;
        let cb = KBox::into_raw(cb);
        // SAFETY: `as_raw()` is a live fence; `cb` is a valid allocation that the fence core
        // owns until it calls `run_callback` (which frees it), or that we take back below.
        let r = unsafe {
            bindings::dma_fence_add_callback(
                self.as_raw(),
                Opaque::cast_into(ptr::addr_of!((*cb).cb)),
                Some(run_callback::<F>),
            )
        };
        if r != 0 {
            // SAFETY: The callback was not added, so `cb` is still ours.
            drop(unsafe { KBox::from_raw(cb) });
            return Err(Error::from_errno(r));
        }
        Ok(())
    }
}

/// A callback registered with [`Fence::on_signal`].
#[repr(C)]
struct Callback<F> {
    cb: Opaque<bindings::dma_fence_cb>,
    f: Option<F>,
}

/// The `dma_fence_func_t` of a [`Callback<F>`].
///
/// # Safety
///
/// `cb` must be the `cb` member of a `Callback<F>` registered by [`Fence::on_signal`], and
/// `fence` the signalled fence it was registered on.
unsafe extern "C" fn run_callback<F: FnOnce(Result) + Send + 'static>(
    fence: *mut bindings::dma_fence,
    cb: *mut bindings::dma_fence_cb,
) {
    // SAFETY: `cb` is the `cb` member of a `Callback<F>` leaked by `Fence::on_signal`, which
    // the fence core hands back exactly once, when the fence signals.
    let mut this = unsafe {
        KBox::from_raw(crate::container_of!(Opaque::cast_from(cb), Callback<F>, cb).cast_mut())
    };
    // SAFETY: The fence is live while its callbacks run; it is signalled, so its error is
    // final.
    let e = unsafe { (*fence).error };
    let result = if e < 0 {
        Err(Error::from_errno(e))
    } else {
        Ok(())
    };
    if let Some(f) = this.f.take() {
        f(result);
    }
}

/// The signalling side of a fence, held by whoever completes the work it stands for.
///
/// Dropping it unsignalled signals the fence with `ECANCELED`.
pub struct SignalFence {
    fence: Fence,
}

impl SignalFence {
    /// A reference for waiters.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The sequence number on its timeline.
    pub fn seqno(&self) -> u64 {
        self.fence.seqno()
    }

    /// Signals the fence: with `Ok` when the work completed, or with its error.
    pub fn signal(self, result: Result) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this.fence` is moved out exactly once; `this` is never dropped.
        let fence = unsafe { ptr::read(&this.fence) };
        signal(&fence, result);
    }
}

fn signal(fence: &Fence, result: Result) {
    if let Err(e) = result {
        // SAFETY: The fence is live and not signalled yet (only its `SignalFence` signals it).
        unsafe { bindings::dma_fence_set_error(fence.as_raw(), e.to_errno()) };
    }
    // SAFETY: The fence is live (invariant of `Fence`).
    unsafe { bindings::dma_fence_signal(fence.as_raw()) };
}

impl Drop for SignalFence {
    fn drop(&mut self) {
        signal(&self.fence, Err(ECANCELED));
    }
}

// `FenceObject` is `repr(C)` with the fence first, so a pointer to either is a pointer to the
// object, as `free_rcu` and `object_of` assume through `container_of!`.
crate::static_assert!(offset_of!(FenceObject, base) == 0);

#[kunit_tests(rust_dma_fence)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicI32, Ordering};

    #[test]
    fn signal_wakes_waiters_and_callbacks() -> Result {
        let ctx = FenceContext::new(c"kunit", c"ring0")?;
        let other = FenceContext::new(c"kunit", c"ring1")?;
        assert_ne!(ctx.id(), other.id());
        let sf = ctx.new_fence(7)?;
        let f = sf.fence();
        assert_eq!((f.context(), f.seqno()), (ctx.id(), 7));
        assert!(!f.is_signaled());
        assert_eq!(f.wait_timeout(false, 1), Err(ETIMEDOUT));
        let seen = Arc::new(AtomicI32::new(1), GFP_KERNEL)?;
        let s = seen.clone();
        // SAFETY: This test is built into the kernel.
        unsafe {
            f.on_signal(move |r| {
                s.store(r.err().map_or(0, |e| e.to_errno()), Ordering::Relaxed);
            })
        }?;
        sf.signal(Err(EIO));
        assert!(f.is_signaled());
        assert_eq!(f.error(), Some(EIO));
        assert_eq!(seen.load(Ordering::Relaxed), EIO.to_errno());
        assert!(f.wait_timeout(true, 1)? >= 1);
        // Too late for a callback.
        // SAFETY: This test is built into the kernel.
        assert_eq!(unsafe { f.on_signal(|_| {}) }, Err(ENOENT));
        Ok(())
    }

    #[test]
    fn dropped_signal_fence_cancels() -> Result {
        let ctx = FenceContext::new(c"kunit", c"ring0")?;
        let sf = ctx.new_fence(1)?;
        let f = sf.fence();
        drop(sf);
        assert!(f.is_signaled());
        assert_eq!(f.error(), Some(ECANCELED));
        let ok = ctx.new_fence(2)?;
        let g = ok.fence();
        ok.signal(Ok(()));
        assert_eq!((g.is_signaled(), g.error()), (true, None));
        Ok(())
    }
}
