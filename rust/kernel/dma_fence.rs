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

    /// Runs `f` once the fence signals, with its error (`dma_fence_add_callback()`), unless
    /// the returned handle is dropped first.
    ///
    /// `f` runs as for [`Fence::on_signal`]. Dropping the handle unregisters the callback,
    /// waiting for it if it is running; the handle must not be dropped from the callback.
    ///
    /// # Safety
    ///
    /// As for [`Fence::on_signal`]: the code of `F` must still be loaded when the fence
    /// signals, which a module ensures by dropping the handle before it can be unloaded.
    ///
    /// # Errors
    ///
    /// `ENOENT` if the fence has already signalled (`f` is then dropped unrun), `ENOMEM`.
    pub unsafe fn add_callback<F: FnOnce(Result) + Send + 'static>(
        &self,
        f: F,
    ) -> Result<CallbackHandle> {
        let cb = KBox::into_raw(KBox::new(
            Callback {
                cb: Opaque::uninit(),
                f: Some(f),
            },
            GFP_KERNEL,
        )?);
        // SAFETY: `cb` stays allocated until the handle frees it, after unregistering.
        let raw = unsafe { Opaque::cast_into(ptr::addr_of!((*cb).cb)) };
        // SAFETY: `as_raw()` is a live fence; `raw` is valid and not registered anywhere.
        let r = unsafe {
            bindings::dma_fence_add_callback(self.as_raw(), raw, Some(run_owned_callback::<F>))
        };
        if r != 0 {
            // SAFETY: The callback was not added, so `cb` is still ours.
            drop(unsafe { KBox::from_raw(cb) });
            return Err(Error::from_errno(r));
        }
        // INVARIANT: `raw` is the `cb` of a leaked `Callback<F>` registered on this fence.
        Ok(CallbackHandle {
            fence: self.clone(),
            // SAFETY: `raw` points into a live allocation.
            cb: unsafe { NonNull::new_unchecked(raw) },
            free: free_callback::<F>,
        })
    }

    /// The fence of timeline point `point`, if this fence is a chain of timeline points
    /// (`dma_fence_chain_find_seqno()`): the first link at or after `point`, or `None` when
    /// the point has signalled and was collected. Point 0 is the fence itself, chain or
    /// not.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a point other than 0 if the fence is not a chain, or if `point` is past
    /// its last point.
    pub fn find_seqno(&self, point: u64) -> Result<Option<Fence>> {
        let mut raw = self.clone().into_raw();
        // SAFETY: `raw` carries a reference, which the call consumes, putting a reference to
        // the found fence (or NULL) in its place; on error it leaves `raw` as it was.
        let r = unsafe { bindings::dma_fence_chain_find_seqno(&mut raw, point) };
        // SAFETY: `raw` is NULL or carries the reference the call left.
        let found = NonNull::new(raw).map(|p| unsafe { Fence::from_raw(p) });
        if r != 0 {
            return Err(Error::from_errno(r));
        }
        Ok(found)
    }

    /// Calls `f` with each fence that this fence is made of (`dma_fence_unwrap_for_each()`):
    /// the fences of each link of a chain, the fences of an array (also in a link), or the
    /// fence itself.
    ///
    /// # Errors
    ///
    /// The first error `f` returns, which ends the walk.
    pub fn for_each_unwrapped(&self, mut f: impl FnMut(&Fence) -> Result) -> Result {
        let mut cursor = bindings::dma_fence_unwrap {
            chain: ptr::null_mut(),
            array: ptr::null_mut(),
            index: 0,
        };
        // SAFETY: `as_raw()` is a live fence, kept alive by `self` while the cursor walks it.
        let mut cur = unsafe { bindings::dma_fence_unwrap_first(self.as_raw(), &mut cursor) };
        let mut result = Ok(());
        while let Some(p) = NonNull::new(cur) {
            // SAFETY: The walk returns fences the containers hold references to; this takes
            // one of our own for `f`.
            unsafe { bindings::dma_fence_get(p.as_ptr()) };
            // SAFETY: We hold the reference just taken.
            let fence = unsafe { Fence::from_raw(p) };
            result = f(&fence);
            if result.is_err() {
                break;
            }
            // SAFETY: `cursor` is the walk's state, on a container `self` keeps alive.
            cur = unsafe { bindings::dma_fence_unwrap_next(&mut cursor) };
        }
        // A walk that ran to its end dropped its reference to the current link; one that
        // stopped early still holds it.
        if !cursor.chain.is_null() {
            // SAFETY: The cursor holds this reference.
            unsafe { bindings::dma_fence_put(cursor.chain) };
        }
        result
    }

    /// Gives up this value's reference, as a raw pointer for C code that takes it over.
    #[must_use]
    pub fn into_raw(self) -> *mut bindings::dma_fence {
        let this = core::mem::ManuallyDrop::new(self);
        this.ptr.as_ptr()
    }
}

/// A callback registered with [`Fence::on_signal`] or [`Fence::add_callback`].
#[repr(C)]
struct Callback<F> {
    cb: Opaque<bindings::dma_fence_cb>,
    f: Option<F>,
}

/// A callback registered with [`Fence::add_callback`]; dropping the handle unregisters it.
///
/// Once [`Drop`] returned, the callback has either run to completion or will never run, and
/// its closure (with whatever it captured) is gone. The handle must not be dropped from the
/// callback itself, which runs with the fence's lock held.
///
/// # Invariants
///
/// `cb` is the `cb` member of a `Callback<F>` allocated by [`Fence::add_callback`] that was
/// registered on `fence`; the fence core uses it only until the callback ran, and never
/// frees it; `free` is `free_callback::<F>`.
pub struct CallbackHandle {
    fence: Fence,
    cb: NonNull<bindings::dma_fence_cb>,
    free: unsafe fn(NonNull<bindings::dma_fence_cb>),
}

// SAFETY: The handle only unregisters the callback (under the fence's lock) and then frees
// it, with its closure, which is `Send`; the fence reference may move between threads.
unsafe impl Send for CallbackHandle {}
// SAFETY: Through `&CallbackHandle` only the fence can be reached, which is `Sync`.
unsafe impl Sync for CallbackHandle {}

impl CallbackHandle {
    /// The fence the callback waits for.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }
}

impl Drop for CallbackHandle {
    fn drop(&mut self) {
        // SAFETY: `cb` was registered on `fence` (invariant). `dma_fence_remove_callback`
        // takes the fence's lock, under which callbacks run: when it returns, the callback
        // was removed, or it ran to completion and the core no longer looks at `cb`.
        unsafe { bindings::dma_fence_remove_callback(self.fence.as_raw(), self.cb.as_ptr()) };
        // SAFETY: Nothing else uses `cb` any more (see above); `free` matches its type.
        unsafe { (self.free)(self.cb) };
    }
}

/// Frees a `Callback<F>` of a [`CallbackHandle`], with its closure if that never ran.
///
/// # Safety
///
/// `cb` must be the `cb` member of a `Callback<F>` leaked by [`Fence::add_callback`] that
/// nothing uses any more.
unsafe fn free_callback<F>(cb: NonNull<bindings::dma_fence_cb>) {
    // SAFETY: By the safety requirement, `cb` is in a leaked `KBox<Callback<F>>`.
    drop(unsafe {
        KBox::from_raw(
            crate::container_of!(Opaque::cast_from(cb.as_ptr()), Callback<F>, cb).cast_mut(),
        )
    });
}

/// The `dma_fence_func_t` of a [`CallbackHandle`]'s callback: runs the closure, leaves the
/// memory to the handle.
///
/// # Safety
///
/// `cb` must be the `cb` member of a `Callback<F>` registered by [`Fence::add_callback`], and
/// `fence` the signalled fence it was registered on.
unsafe extern "C" fn run_owned_callback<F: FnOnce(Result) + Send + 'static>(
    fence: *mut bindings::dma_fence,
    cb: *mut bindings::dma_fence_cb,
) {
    // SAFETY: `cb` is the `cb` member of a `Callback<F>` (safety requirement).
    let this = unsafe { crate::container_of!(Opaque::cast_from(cb), Callback<F>, cb) }.cast_mut();
    // SAFETY: The handle keeps the callback allocated and does not touch `f` while the
    // callback is registered; the core runs it once, under the fence's lock.
    let f = unsafe { (*this).f.take() };
    if let Some(f) = f {
        // SAFETY: As in `run_callback`.
        f(unsafe { signalled_result(fence) });
    }
}

/// The result a signalled `fence` carries.
///
/// # Safety
///
/// `fence` must be a live, signalled fence.
unsafe fn signalled_result(fence: *mut bindings::dma_fence) -> Result {
    // SAFETY: By the safety requirement; the error is final once signalled.
    let e = unsafe { (*fence).error };
    if e < 0 {
        Err(Error::from_errno(e))
    } else {
        Ok(())
    }
}

/// A chain node (`struct dma_fence_chain`) allocated ahead, so that adding a timeline point
/// cannot fail (`dma_fence_chain_alloc()`). Dropped unused, it is freed.
///
/// # Invariants
///
/// `ptr` is an allocated, uninitialised chain node owned by this value.
pub struct ChainNode {
    ptr: NonNull<bindings::dma_fence_chain>,
}

// SAFETY: The node is plain memory until it is used.
unsafe impl Send for ChainNode {}
// SAFETY: No method takes `&self`.
unsafe impl Sync for ChainNode {}

impl ChainNode {
    /// Allocates a chain node.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        // SAFETY: Allocates memory, or returns NULL.
        let ptr = unsafe { bindings::dma_fence_chain_alloc() };
        // INVARIANT: A fresh, unused node.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// Gives the node to C code that initialises it (`dma_fence_chain_init()`), which owns
    /// it from then on.
    #[must_use]
    pub fn into_raw(self) -> *mut bindings::dma_fence_chain {
        let this = core::mem::ManuallyDrop::new(self);
        this.ptr.as_ptr()
    }
}

impl Drop for ChainNode {
    fn drop(&mut self) {
        // SAFETY: The node was never initialised or published (invariant).
        unsafe { bindings::dma_fence_chain_free(self.ptr.as_ptr()) };
    }
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
    if let Some(f) = this.f.take() {
        // SAFETY: The fence is live while its callbacks run, and signalled.
        f(unsafe { signalled_result(fence) });
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

    #[test]
    fn dropped_callback_handles_never_run() -> Result {
        use core::sync::atomic::{AtomicU32, Ordering};
        let ctx = FenceContext::new(c"kunit", c"callbacks")?;
        let sf = ctx.new_fence(1)?;
        let runs = Arc::new(AtomicU32::new(0), GFP_KERNEL)?;
        let (r1, r2) = (runs.clone(), runs.clone());
        // SAFETY: This test is built into the kernel.
        let kept = unsafe {
            sf.fence().add_callback(move |_| {
                r1.fetch_add(1, Ordering::Relaxed);
            })
        }?;
        // SAFETY: As above.
        let dropped = unsafe {
            sf.fence().add_callback(move |_| {
                r2.fetch_add(10, Ordering::Relaxed);
            })
        }?;
        drop(dropped);
        sf.signal(Ok(()));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        drop(kept);
        Ok(())
    }
}
