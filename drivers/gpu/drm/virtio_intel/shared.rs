// SPDX-License-Identifier: GPL-2.0

//! Device state shared by the DRM device and its open files.
//!
//! Files outlive the binding of the virtio device (a process may keep the render node open
//! across an unbind), so they reach the control queue through [`Shared::with_queue`], which
//! fails with `ENODEV` once [`Shared::revoke`] ran at unbind. `revoke` waits for commands in
//! flight (each is bounded by the transport's timeout) before the queue is torn down.

use core::sync::atomic::{
    AtomicU32,
    AtomicU64,
    Ordering, //
};
use kernel::{
    new_condvar,
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        CondVar,
        Mutex, //
    },
    virtio::ShmRegion, //
};

use crate::{
    hostmem::RangeAllocator,
    protocol::I915Identity,
    transport::ControlQueue, //
};

struct Gate {
    queue: Option<Arc<ControlQueue>>,
    users: u32,
}

/// State of one bound device, shared with its DRM files.
#[pin_data]
pub(crate) struct Shared {
    /// The host's i915.
    pub(crate) identity: I915Identity,
    /// The host-visible window.
    pub(crate) hostmem: ShmRegion,
    #[pin]
    gate: Mutex<Gate>,
    #[pin]
    idle: CondVar,
    #[pin]
    alloc: Mutex<RangeAllocator>,
    next_ctx: AtomicU32,
    next_res: AtomicU32,
    next_fence: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        identity: I915Identity,
        hostmem: ShmRegion,
        blob_alignment: u64,
        queue: ControlQueue,
    ) -> Result<Arc<Self>> {
        let queue = Arc::new(queue, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                identity,
                hostmem,
                gate <- new_mutex!(Gate { queue: Some(queue), users: 0 }),
                idle <- new_condvar!(),
                alloc <- new_mutex!(RangeAllocator::new(hostmem.len, blob_alignment)),
                next_ctx: AtomicU32::new(1),
                next_res: AtomicU32::new(1),
                next_fence: AtomicU64::new(1),
            }),
            GFP_KERNEL,
        )
    }

    /// Runs `f` with the control queue, or fails with `ENODEV` after unbind.
    pub(crate) fn with_queue<R>(&self, f: impl FnOnce(&ControlQueue) -> Result<R>) -> Result<R> {
        let q = {
            let mut g = self.gate.lock();
            let q = g.queue.clone().ok_or(ENODEV)?;
            g.users += 1;
            q
        };
        let r = f(&q);
        drop(q);
        let mut g = self.gate.lock();
        g.users -= 1;
        if g.users == 0 {
            self.idle.notify_all();
        }
        r
    }

    /// Takes the queue away from every user and waits until none is using it.
    pub(crate) fn revoke(&self) -> Option<Arc<ControlQueue>> {
        let mut g = self.gate.lock();
        let q = g.queue.take();
        while g.users > 0 {
            self.idle.wait(&mut g);
        }
        q
    }

    /// A fresh virtio context id.
    pub(crate) fn new_ctx_id(&self) -> u32 {
        self.next_ctx.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh resource id.
    pub(crate) fn new_res_id(&self) -> u32 {
        self.next_res.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh fence id (monotonic over the device, as the host requires per ring).
    pub(crate) fn new_fence_id(&self) -> u64 {
        self.next_fence.fetch_add(1, Ordering::Relaxed)
    }

    /// Allocates `len` bytes of the host-visible window.
    pub(crate) fn alloc_hostmem(&self, len: u64) -> Result<u64> {
        self.alloc.lock().alloc(len)
    }

    /// Frees a range of the host-visible window.
    pub(crate) fn free_hostmem(&self, offset: u64) {
        self.alloc.lock().free(offset)
    }
}
