// SPDX-License-Identifier: GPL-2.0

//! Device state shared by the DRM device and its open files.
//!
//! Files outlive the binding of the virtio device (a process may keep the render node open
//! across an unbind), so they reach the control queue through [`Shared::with_queue`], which
//! fails with `ENODEV` once [`Shared::revoke`] ran at unbind. `revoke` waits for commands in
//! flight (each is bounded by the transport's timeout) before the queue is torn down.

use core::sync::atomic::{
    AtomicI64,
    AtomicU32,
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
    task::TaskComm,
    virtio::ShmRegion, //
};

use crate::{
    cache::AnswerCache,
    hostmem::RangeAllocator,
    protocol::I915Identity,
    transport::ControlQueue, //
};

/// The task a host context was created for, as the driver sees it.
#[derive(Clone, Copy)]
pub(crate) struct Client {
    /// Thread group (process) id in the initial namespace.
    pub(crate) tgid: i32,
    /// Thread id in the initial namespace.
    pub(crate) pid: i32,
    /// Command name.
    pub(crate) comm: TaskComm,
}

impl Client {
    /// The calling task.
    pub(crate) fn current() -> Self {
        let task = kernel::current!();
        Self {
            tgid: task.tgid(),
            pid: task.pid(),
            comm: task.comm(),
        }
    }
}

/// Host objects this device holds for its files, for `debugfs` and leak tests.
///
/// A count goes up when the command creating the object is queued and down when the host
/// acknowledged its release (or the device went away), so after every file is closed all
/// counts read zero unless something leaked.
#[pin_data]
pub(crate) struct Stats {
    /// Host contexts.
    pub(crate) contexts: AtomicI64,
    /// Host blobs.
    pub(crate) blobs: AtomicI64,
    /// Bytes of the host-visible window allocated.
    pub(crate) window_bytes: AtomicI64,
    /// Bytes of the window kept out of use because the host did not confirm their unmap.
    pub(crate) quarantined_bytes: AtomicI64,
    /// The task each live host context was created for.
    #[pin]
    clients: Mutex<KVec<(u32, Client)>>,
}

impl Stats {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            contexts: AtomicI64::new(0),
            blobs: AtomicI64::new(0),
            window_bytes: AtomicI64::new(0),
            quarantined_bytes: AtomicI64::new(0),
            clients <- new_mutex!(KVec::new()),
        })
    }

    /// Records the task of host context `ctx`.
    pub(crate) fn add_client(&self, ctx: u32, c: Client) -> Result {
        self.clients.lock().push((ctx, c), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets host context `ctx`.
    pub(crate) fn remove_client(&self, ctx: u32) {
        let mut g = self.clients.lock();
        if let Some(i) = g.iter().position(|(c, _)| *c == ctx) {
            let _ = g.remove(i);
        }
    }

    /// Writes the counters and one line per live host context.
    pub(crate) fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "contexts {}", self.contexts.load(Ordering::Relaxed))?;
        writeln!(f, "blobs {}", self.blobs.load(Ordering::Relaxed))?;
        writeln!(
            f,
            "window_bytes {}",
            self.window_bytes.load(Ordering::Relaxed)
        )?;
        writeln!(
            f,
            "quarantined_bytes {}",
            self.quarantined_bytes.load(Ordering::Relaxed)
        )?;
        for (ctx, c) in self.clients.lock().iter() {
            writeln!(
                f,
                "context {} tgid {} pid {} comm {}",
                ctx, c.tgid, c.pid, c.comm
            )?;
        }
        Ok(())
    }
}

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
    /// Host answers that cannot change while the device is bound.
    pub(crate) cache: AnswerCache,
    /// Live host objects (shared with the device's `debugfs` files).
    pub(crate) stats: Arc<Stats>,
    #[pin]
    gate: Mutex<Gate>,
    #[pin]
    idle: CondVar,
    #[pin]
    window: RangeAllocator,
    next_ctx: AtomicU32,
    next_res: AtomicU32,
}

impl Shared {
    pub(crate) fn new(
        identity: I915Identity,
        hostmem: ShmRegion,
        blob_alignment: u64,
        queue: ControlQueue,
    ) -> Result<Arc<Self>> {
        let queue = Arc::new(queue, GFP_KERNEL)?;
        let stats = Arc::pin_init(Stats::new(), GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                identity,
                hostmem,
                cache: AnswerCache::new(),
                stats,
                gate <- new_mutex!(Gate { queue: Some(queue), users: 0 }),
                idle <- new_condvar!(),
                window <- RangeAllocator::new(hostmem.len(), blob_alignment),
                next_ctx: AtomicU32::new(1),
                next_res: AtomicU32::new(1),
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

    /// Allocates `len` bytes of the host-visible window.
    pub(crate) fn alloc_hostmem(&self, len: u64) -> Result<u64> {
        let (off, len) = self.window.alloc(len)?;
        self.stats
            .window_bytes
            .fetch_add(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        Ok(off)
    }

    /// Frees a range of the host-visible window.
    pub(crate) fn free_hostmem(&self, offset: u64) {
        if let Some(len) = self.window.free(offset) {
            self.stats
                .window_bytes
                .fetch_sub(i64::try_from(len).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }
}
