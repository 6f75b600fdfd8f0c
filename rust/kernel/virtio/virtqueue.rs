// SPDX-License-Identifier: GPL-2.0

//! Virtqueues.
//!
//! C header: [`include/linux/virtio.h`](srctree/include/linux/virtio.h).
//!
//! A driver owns its virtqueues through [`Virtqueues`], created in probe and living no
//! longer than the binding (`'bound`): keep them in the driver's device data or in data
//! reached through a registration guard, so nothing can queue on a device that is gone.
//! Each buffer the
//! driver hands to the device is a [`Request`] in a [`KBox`]: the box owns the memory the
//! device reads and writes, the queue owns the box while the device uses it, and the
//! driver's [`Handler`] gets it back when the device is done with it. Requests that are
//! still queued when the virtqueues are torn down are detached and dropped, so nothing
//! leaks and no memory is freed while the device may still access it.

use crate::{
    bindings, device,
    error::to_result,
    new_spinlock_irq,
    prelude::*,
    sync::{
        aref::ARef,
        SpinLockIrq, //
    },
};
use core::{
    marker::PhantomData,
    ptr, //
};

use super::Device;

/// The memory of one request, as the device sees it.
pub struct Buffers<'a> {
    /// Regions the device reads, in order (empty slices are skipped).
    pub readable: [&'a [u8]; 2],
    /// The region the device writes (may be empty).
    pub writable: &'a mut [u8],
}

/// A buffer the driver hands to the device.
///
/// # Safety
///
/// The slices returned by [`Request::buffers`] must be in memory the DMA API can map
/// (for example heap memory owned by `self` through [`KBox`] or [`KVec`]; not the stack and
/// not vmalloc memory), and must keep their addresses while the request is queued. Memory
/// owned by `self` satisfies the latter, because a queued request is neither moved nor
/// accessed.
pub unsafe trait Request: Send + 'static {
    /// The request's memory.
    fn buffers(&mut self) -> Buffers<'_>;
}

/// Receives the requests the device has finished.
pub trait Handler: Send + Sync + 'static {
    /// The type of the requests on these virtqueues.
    type Request: Request;

    /// The device is done with `req` on virtqueue `index` and wrote `written` bytes.
    ///
    /// Called from the virtqueue interrupt (atomic context): it must not sleep. It may
    /// submit new requests.
    fn complete(&self, index: u32, req: KBox<Self::Request>, written: u32);
}

/// The virtqueues of a device while a driver is bound to it (`'bound`).
///
/// There is one set per binding, created in probe. It cannot outlive the binding, so no
/// request can be queued on a device after its driver was unbound.
///
/// # Invariants
///
/// `vqs` are the virtqueues the transport created for `vdev` with callbacks that find
/// `self` through `vdev->priv`; they stay valid until `self` is dropped. Every token queued
/// on them is a `KBox<H::Request>` turned into a raw pointer. `vdev` is bound for `'bound`.
#[pin_data(PinnedDrop)]
pub struct Virtqueues<'bound, H: Handler> {
    vdev: ARef<Device>,
    vqs: KVec<usize>,
    #[pin]
    lock: SpinLockIrq<()>,
    handler: H,
    _bound: PhantomData<&'bound ()>,
}

// SAFETY: The raw virtqueue pointers are used under `lock` for everything the virtio core
// serialises (adding, getting and detaching buffers, the first half of a kick, callback
// control); outside it only for what it documents as needing no serialisation
// (`virtqueue_notify`) and for reading the immutable `index`. `H` is `Send + Sync`.
unsafe impl<H: Handler> Send for Virtqueues<'_, H> {}
// SAFETY: See `Send`.
unsafe impl<H: Handler> Sync for Virtqueues<'_, H> {}

const VIRTIO_CONFIG_S_DRIVER_OK: u8 = 4;

impl<'bound, H: Handler> Virtqueues<'bound, H> {
    /// Finds the device's virtqueues, one per name, with `handler` receiving finished
    /// requests. Called in probe; the result lives at most as long as the binding.
    ///
    /// # Errors
    ///
    /// `EBUSY` if the device already has virtqueues from this API, whatever the transport's
    /// `find_vqs` returns (for example `ENOENT` when the device has fewer queues), or
    /// `ENOMEM`.
    pub fn new(
        dev: &'bound Device<device::Core<'_>>,
        names: &[&'static CStr],
        handler: H,
    ) -> Result<Pin<KBox<Self>>> {
        let n = u32::try_from(names.len()).map_err(|_| EINVAL)?;
        // One set of virtqueues per binding: a second would take over `priv` (and the first
        // set's callbacks) while the first is still alive.
        // SAFETY: `dev.as_raw()` is valid while the device is being probed.
        if !unsafe { (*dev.as_raw()).priv_ }.is_null() {
            return Err(EBUSY);
        }
        let mut infos = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for name in names {
            infos.push(
                bindings::virtqueue_info {
                    name: name.as_char_ptr(),
                    callback: Some(Self::callback),
                    ctx: false,
                },
                GFP_KERNEL,
            )?;
        }
        let mut raw: KVec<*mut bindings::virtqueue> = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        for _ in 0..names.len() {
            raw.push(ptr::null_mut(), GFP_KERNEL)?;
        }
        let mut vqs: KVec<usize> = KVec::with_capacity(names.len(), GFP_KERNEL)?;
        // SAFETY: `raw` and `infos` have `n` entries; the device is valid and being probed.
        to_result(unsafe {
            bindings::virtio_find_vqs(dev.as_raw(), n, raw.as_mut_ptr(), infos.as_mut_ptr())
        })?;
        for p in raw.iter() {
            // The capacity was reserved above, so this does not allocate and cannot fail.
            let _ = vqs.push(*p as usize, GFP_KERNEL);
        }
        let vdev: &Device = dev;
        let this = KBox::pin_init(
            try_pin_init!(Self {
                vdev: vdev.into(),
                vqs,
                lock <- new_spinlock_irq!(()),
                handler,
                _bound: PhantomData,
            }),
            GFP_KERNEL,
        );
        let this = match this {
            Ok(t) => t,
            Err(e) => {
                // SAFETY: As above: no buffers were queued yet.
                unsafe { bindings::virtio_del_vqs(dev.as_raw()) };
                return Err(e);
            }
        };
        // No buffer is queued yet, so no callback can run before `priv` is set.
        // SAFETY: `dev.as_raw()` is valid; `priv` is reserved for the driver, and `this` stays
        // alive (and `priv` set) until the virtqueues are deleted in `drop`.
        unsafe { (*dev.as_raw()).priv_ = ptr::from_ref::<Self>(&*this).cast_mut().cast() };
        Ok(this)
    }

    /// The driver's handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Queues `req` on virtqueue `index` and notifies the device.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a bad index or oversized buffers, `ENOSPC` when the ring is full, or
    /// another error of `virtqueue_add_sgs`; the request is handed back with the error.
    pub fn submit(
        &self,
        index: usize,
        mut req: KBox<H::Request>,
    ) -> Result<(), (Error, KBox<H::Request>)> {
        let Some(&vq) = self.vqs.get(index) else {
            return Err((EINVAL, req));
        };
        let vq = vq as *mut bindings::virtqueue;
        // SAFETY: `scatterlist` is a plain C struct; all-zero is a valid initial state that
        // `sg_init_one` overwrites.
        let mut sgs: [bindings::scatterlist; 3] = unsafe { core::mem::zeroed() };
        let mut list: [*mut bindings::scatterlist; 3] = [ptr::null_mut(); 3];
        let (mut nout, mut nin) = (0u32, 0u32);
        {
            let b = req.buffers();
            let mut k = 0usize;
            for r in b.readable.iter().filter(|r| !r.is_empty()) {
                let Ok(len) = u32::try_from(r.len()) else {
                    return Err((EINVAL, req));
                };
                // SAFETY: `sgs[k]` is valid; `r` is DMA-able memory of `len` bytes (the safety
                // requirement of `Request`).
                unsafe { bindings::sg_init_one(&mut sgs[k], r.as_ptr().cast(), len) };
                k += 1;
                nout += 1;
            }
            if !b.writable.is_empty() {
                let Ok(len) = u32::try_from(b.writable.len()) else {
                    return Err((EINVAL, req));
                };
                // SAFETY: As above, for the writable region.
                unsafe { bindings::sg_init_one(&mut sgs[k], b.writable.as_mut_ptr().cast(), len) };
                nin = 1;
            }
        }
        for (l, sg) in list.iter_mut().zip(sgs.iter_mut()) {
            *l = sg;
        }
        let token = KBox::into_raw(req);
        let guard = self.lock.lock();
        // SAFETY: `vq` is one of our live virtqueues (invariant), used under `lock`; `list`
        // holds `nout + nin` initialised entries pointing into the request, which the queue
        // now owns through `token`.
        let ret = unsafe {
            bindings::virtqueue_add_sgs(
                vq,
                list.as_mut_ptr(),
                nout,
                nin,
                token.cast(),
                GFP_ATOMIC.as_raw(),
            )
        };
        // SAFETY: As above. Only the first half of the kick needs the lock.
        let notify = ret == 0 && unsafe { bindings::virtqueue_kick_prepare(vq) };
        drop(guard);
        if ret != 0 {
            // SAFETY: The add failed, so the queue did not take `token`; it came from
            // `KBox::into_raw` above.
            return Err((Error::from_errno(ret), unsafe { KBox::from_raw(token) }));
        }
        if notify {
            // SAFETY: `vq` is live (invariant). The notification needs no serialisation
            // against other users of the queue, so it goes outside the lock: a device may
            // take long to return from it, and others may queue meanwhile.
            unsafe { bindings::virtqueue_notify(vq) };
        }
        Ok(())
    }

    /// Stops completion callbacks of virtqueue `index` (a hint: one may still arrive).
    pub fn disable_callbacks(&self, index: usize) {
        if let Some(&vq) = self.vqs.get(index) {
            let _g = self.lock.lock();
            // SAFETY: One of our live virtqueues, used under `lock`.
            unsafe { bindings::virtqueue_disable_cb(vq as *mut bindings::virtqueue) };
        }
    }

    /// Re-enables completion callbacks of virtqueue `index`. Returns `false` when requests
    /// finished meanwhile, which the caller must then collect itself (by letting the
    /// handler run; see [`Self::poll`]).
    pub fn enable_callbacks(&self, index: usize) -> bool {
        let Some(&vq) = self.vqs.get(index) else {
            return true;
        };
        let _g = self.lock.lock();
        // SAFETY: One of our live virtqueues, used under `lock`.
        unsafe { bindings::virtqueue_enable_cb(vq as *mut bindings::virtqueue) }
    }

    /// Hands every finished request of virtqueue `index` to the handler, as the callback
    /// does (for use while callbacks are disabled).
    pub fn poll(&self, index: usize) {
        if let Some(&vq) = self.vqs.get(index) {
            let vq = vq as *mut bindings::virtqueue;
            // SAFETY: One of our live virtqueues.
            let i = unsafe { (*vq).index };
            while let Some((req, len)) = self.get_buf(vq) {
                self.handler.complete(i, req, len);
            }
        }
    }

    /// Number of free descriptors of virtqueue `index`.
    pub fn num_free(&self, index: usize) -> u32 {
        match self.vqs.get(index) {
            Some(&vq) => {
                let _g = self.lock.lock();
                // SAFETY: One of our live virtqueues; `num_free` is maintained by the ring
                // under our lock.
                unsafe { (*(vq as *mut bindings::virtqueue)).num_free }
            }
            None => 0,
        }
    }

    /// Takes one finished request off virtqueue `vq`.
    fn get_buf(&self, vq: *mut bindings::virtqueue) -> Option<(KBox<H::Request>, u32)> {
        let mut len = 0u32;
        let guard = self.lock.lock();
        // SAFETY: `vq` is one of our live virtqueues, used under `lock`.
        let p = unsafe { bindings::virtqueue_get_buf(vq, &mut len) };
        drop(guard);
        if p.is_null() {
            return None;
        }
        // SAFETY: Every token on our queues is a `KBox<H::Request>` (invariant), and the device
        // has given this one back.
        Some((unsafe { KBox::from_raw(p.cast::<H::Request>()) }, len))
    }

    extern "C" fn callback(vq: *mut bindings::virtqueue) {
        // SAFETY: The transport calls this with one of the virtqueues created in `new`.
        let (vdev, index) = unsafe { ((*vq).vdev, (*vq).index) };
        // SAFETY: `vdev` is valid while its virtqueues exist.
        let this = unsafe { (*vdev).priv_ }.cast::<Self>().cast_const();
        if this.is_null() {
            return;
        }
        // SAFETY: `priv` points to the live `Virtqueues` that owns `vq`: it is set in `new`
        // and cleared in `drop` only after the virtqueues were deleted.
        let this = unsafe { &*this };
        while let Some((req, len)) = this.get_buf(vq) {
            this.handler.complete(index, req, len);
        }
    }
}

#[pinned_drop]
impl<H: Handler> PinnedDrop for Virtqueues<'_, H> {
    fn drop(self: Pin<&mut Self>) {
        let vdev = self.vdev.as_raw();
        // A device that is still live must stop using our buffers before they are freed.
        // (At unbind the driver data, and with it this, goes before the adapter resets it.)
        // SAFETY: `vdev` is valid: we hold a reference.
        if unsafe { bindings::virtio_get_status(vdev) } & VIRTIO_CONFIG_S_DRIVER_OK != 0 {
            // SAFETY: As above; resetting also waits for running callbacks.
            unsafe { bindings::virtio_reset_device(vdev) };
        }
        for &vq in self.vqs.iter() {
            loop {
                // SAFETY: The device is reset, so it no longer owns any buffer of `vq`.
                let p = unsafe {
                    bindings::virtqueue_detach_unused_buf(vq as *mut bindings::virtqueue)
                };
                if p.is_null() {
                    break;
                }
                // SAFETY: Every token is a `KBox<H::Request>` (invariant).
                drop(unsafe { KBox::from_raw(p.cast::<H::Request>()) });
            }
        }
        // SAFETY: The virtqueues are idle and empty; no callback runs after they are deleted.
        unsafe { bindings::virtio_del_vqs(vdev) };
        // SAFETY: `vdev` is valid; nothing uses `priv` any more.
        unsafe { (*vdev).priv_ = ptr::null_mut() };
    }
}
