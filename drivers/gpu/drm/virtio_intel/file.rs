// SPDX-License-Identifier: GPL-2.0

//! An open DRM file: its host context, created on first use. The ioctls live in one
//! module per family ([`crate::getparam`], [`crate::query`]).

use kernel::{
    drm,
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        UniqueArc, //
    }, //
};

use crate::{
    ccmd::IoctlSimple,
    context::HostContext,
    driver::{
        Bound,
        I915Device,
        VirtioIntelDriver, //
    },
    exec_queue::ExecQueue,
    gem::Object,
    gem_context::GemCtx,
    shared::{
        Client,
        Shared, //
    },
};

/// An open DRM file.
#[pin_data]
pub(crate) struct File {
    shared: Arc<Shared>,
    /// The host context, created on first use; calls run on it concurrently.
    #[pin]
    ctx: Mutex<Option<Arc<HostContext>>>,
    /// What the guest knows of the file's GEM contexts (the host has them).
    #[pin]
    gem_ctxs: Mutex<KVec<GemCtx>>,
    /// The execbuffers that wait for fences.
    exec: Arc<ExecQueue>,
}

impl drm::file::DriverFile for File {
    type Driver = VirtioIntelDriver;

    fn open(dev: &drm::Device<VirtioIntelDriver>) -> Result<Pin<KBox<Self>>> {
        let shared: &Arc<Shared> = dev;
        KBox::pin_init(
            try_pin_init!(File {
                shared: shared.clone(),
                ctx <- new_mutex!(None),
                gem_ctxs <- new_mutex!(KVec::new()),
                exec: ExecQueue::new(shared.clone())?,
            }),
            GFP_KERNEL,
        )
    }

    /// Releases the file's host context: through the device while it is bound; after
    /// unbind the device was reset, and the host objects went with it.
    fn close(this: Pin<KBox<Self>>, dev: &I915Device<drm::Ioctl>) {
        // What still waits for fences is cancelled before the host context goes.
        this.exec.close();
        let Some(ctx) = this.ctx.lock().take() else {
            return;
        };
        match dev.registration_guard() {
            Some(guard) => guard.registration_data_with(|bound| {
                // The file's objects were freed before this (the DRM core closes handles
                // first); their host objects are released on the device's workqueue, with
                // this context's id: let that happen before the id can be reused.
                bound.queue.flush_deferred();
                ctx.teardown(Some(bound))
            }),
            None => ctx.teardown(None),
        }
    }
}

impl File {
    /// What the guest knows of the file's GEM contexts.
    pub(crate) fn gem_ctxs(&self) -> &Mutex<KVec<GemCtx>> {
        &self.gem_ctxs
    }

    /// The execbuffers of this file that wait for fences.
    pub(crate) fn exec_queue(&self) -> &Arc<ExecQueue> {
        &self.exec
    }

    /// The file's host context, if it has one yet.
    pub(crate) fn host_ctx(&self) -> Option<Arc<HostContext>> {
        self.ctx.lock().clone()
    }

    /// The device state this file was opened on.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Runs `f` with this file's host context, creating it on first use through `bound`.
    ///
    /// The lock is never held across a host round trip: the context is created outside it
    /// (interruptibly), and a caller that loses the race to install one tears its own down
    /// and uses the winner's.
    pub(crate) fn with_ctx<R>(
        &self,
        bound: &Bound<'_>,
        f: impl FnOnce(&HostContext) -> Result<R>,
    ) -> Result<R> {
        let existing = self.ctx.lock().clone();
        let ctx = match existing {
            Some(c) => c,
            None => {
                // Named after the process, as Mesa names its contexts. The memory comes first:
                // a context, once created, must not be dropped without teardown.
                let client = Client::current();
                let slot = UniqueArc::new_uninit(GFP_KERNEL)?;
                let mine: Arc<HostContext> = slot
                    .write(HostContext::new(
                        &self.shared,
                        bound,
                        client.comm.as_bytes(),
                        client,
                    )?)
                    .into();
                let winner = {
                    let mut g = self.ctx.lock();
                    match &*g {
                        Some(c) => Some(c.clone()),
                        None => {
                            *g = Some(mine.clone());
                            None
                        }
                    }
                };
                match winner {
                    Some(c) => {
                        mine.teardown(Some(bound));
                        c
                    }
                    None => mine,
                }
            }
        };
        f(&ctx)
    }

    /// Runs i915 ioctl `cmd` on the host (`IOCTL_SIMPLE`) with `arg`, which names `obj` by
    /// its res_id: the object is first imported into this file's context. Returns `arg` as
    /// the host's i915 wrote it back.
    ///
    /// # Errors
    ///
    /// The host i915's errno, and the transport's errors.
    pub(crate) fn object_ioctl<T>(
        &self,
        bound: &Bound<'_>,
        obj: &Object,
        cmd: u32,
        arg: T,
    ) -> Result<T>
    where
        T: FromBytes + IntoBytes + zerocopy::Immutable + Copy,
    {
        self.with_ctx(bound, |ctx| {
            obj.attach_to(bound, ctx)?;
            ctx.call(bound, &IoctlSimple { cmd, arg })
        })?
        .map_err(host_errno)
    }
}

/// The largest errno userspace may see (`EHWPOISON`); above it are kernel-internal codes
/// such as `ERESTARTSYS`, which must never reach a caller.
const MAX_UAPI_ERRNO: u32 = 133;

/// The error of a host ioctl that failed with positive `errno`. The host is not trusted to
/// send a real one: anything outside the uAPI errno range is `EIO`.
pub(crate) fn host_errno(errno: u32) -> Error {
    match i32::try_from(errno) {
        Ok(e) if (1..=MAX_UAPI_ERRNO as i32).contains(&e) => Error::from_errno(-e),
        _ => EIO,
    }
}

#[kunit_tests(virtio_intel_file)]
mod tests {
    use super::*;

    #[test]
    fn host_errnos_are_bounded() {
        assert_eq!(host_errno(22), EINVAL);
        assert_eq!(host_errno(19), ENODEV);
        assert_eq!(host_errno(0), EIO);
        assert_eq!(host_errno(512), EIO); // ERESTARTSYS
        assert_eq!(host_errno(4095), EIO);
        assert_eq!(host_errno(u32::MAX), EIO);
    }
}
