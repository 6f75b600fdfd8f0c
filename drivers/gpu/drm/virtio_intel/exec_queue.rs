// SPDX-License-Identifier: GPL-2.0

//! Execbuffers that wait for fences before they go to the host.
//!
//! An execbuffer's dependencies (its in-fence, the syncobjs it waits for, and the fences of
//! other work on its objects that the host does not order by itself) are resolved in the
//! guest without blocking the ioctl. One with none unsignalled, and with no earlier
//! execbuffer of its GEM context and engine still waiting, is sent at once, as before. The
//! others wait in the file's [`ExecQueue`]: a callback on each dependency counts it down, the
//! last one queues the queue's work on the device's exec workqueue, and the work sends, in
//! submission order per GEM context and engine, every execbuffer whose dependencies are
//! done. This is a small queue of our own rather than the DRM GPU scheduler: the host does
//! the scheduling, so all the guest needs is "wait for these fences, then send, in order",
//! and the execbuffer's validation and errors stay in the ioctl.
//!
//! A waiting execbuffer's fence (the one userspace and the objects' reservations get) is a
//! fence of the queue, one fence context per GEM context and engine, signalled with the
//! host ring's fence once the batch is sent (see [`crate::fence::Timeline::emit`]). A
//! dependency that signals with an error skips the batch, whose fence then signals with
//! that error, as i915 skips a request whose fence it awaited failed; `EAGAIN` and
//! `ETIMEDOUT` are not fatal there and are not here. A file being closed cancels what still
//! waits (`ECANCELED`), and unbinding the device what waits in any file (`ENODEV`).
//!
//! At most [`MAX_WAITING`] execbuffers of a file wait at once; the next one blocks,
//! interruptibly, until one is sent, as i915 blocks when a context's ring is full.

use core::sync::atomic::{
    AtomicI32,
    AtomicUsize,
    Ordering, //
};
use kernel::{
    dma_fence::{
        CallbackHandle,
        Fence,
        FenceContext,
        SignalFence, //
    },
    impl_has_work, new_condvar, new_mutex, new_work,
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        Mutex, //
    },
    sync_file::SyncFile,
    workqueue::{
        Work,
        WorkItem, //
    },
};

use crate::{
    ccmd::GemExecbuffer2,
    context::HostContext,
    driver::Bound,
    gem::{
        IoctlDevice,
        Object, //
    },
    shared::{
        FenceKind,
        Shared, //
    },
};

/// What [`ExecQueue::submit`] gives back.
pub(crate) struct Submitted {
    /// The batch's fence, for the objects' reservations.
    pub(crate) batch: Fence,
    /// A fence of the queue for userspace, if asked for.
    pub(crate) user: Option<Fence>,
    /// The out-fence's sync file, if asked for.
    pub(crate) file: Option<SyncFile>,
}

/// Most execbuffers of one file that wait for dependencies at once.
pub(crate) const MAX_WAITING: usize = 1024;

/// An execbuffer, validated and ready for the host.
pub(crate) struct Submission {
    /// The GEM context.
    pub(crate) ctx_id: u32,
    /// The host ring (`1 +` the engine index).
    pub(crate) ring: u8,
    /// The engine's `I915_ENGINE_CLASS_*`.
    pub(crate) class: u16,
    /// The ccmd.
    pub(crate) cmd: GemExecbuffer2,
    /// The objects, kept alive while the batch waits to be sent (never read; filled by
    /// [`ExecQueue::submit`] when it waits).
    pub(crate) _objects: KVec<ARef<Object>>,
    /// The file's host context.
    pub(crate) host: Arc<HostContext>,
    /// The device, to reach it from the work.
    pub(crate) dev: ARef<IoctlDevice>,
    /// The guest checked what the host's i915 would refuse: the ccmd goes with its fence,
    /// unwaited (see [`HostContext::execbuffer`]).
    pub(crate) unwaited: bool,
}

/// The dependencies of one waiting execbuffer still unsignalled, counted down by their
/// callbacks.
struct Deps {
    /// Unsignalled dependencies, plus one while the ioctl is still adding callbacks.
    pending: AtomicUsize,
    /// The first fatal error a dependency signalled with (a negative errno), or 0.
    error: AtomicI32,
    queue: Arc<ExecQueue>,
}

impl Deps {
    /// A dependency signalled with error `e`: kept if it is the first fatal one (`EAGAIN`
    /// and `ETIMEDOUT` are not, as in i915).
    fn record(&self, e: Error) {
        if e != EAGAIN && e != ETIMEDOUT {
            let _ =
                self.error
                    .compare_exchange(0, e.to_errno(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// A dependency is done with `result` (from a fence callback, in atomic context), or
    /// the ioctl is done adding callbacks.
    fn done(&self, result: Result) {
        if let Err(e) = result {
            self.record(e);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.kick();
        }
    }
}

/// An execbuffer waiting for its dependencies.
struct Job {
    /// Dropped first (once the job runs or is cancelled): unregisters what has not run.
    callbacks: KVec<CallbackHandle>,
    /// Fences of earlier jobs of this queue that must be sent first (submit fences).
    after: KVec<Fence>,
    sub: Submission,
    /// Its fence, which userspace and the objects already have.
    fence: SignalFence,
    deps: Arc<Deps>,
}

impl Job {
    fn key(&self) -> (u32, u8) {
        (self.sub.ctx_id, self.sub.ring)
    }

    fn ready(&self) -> bool {
        self.deps.pending.load(Ordering::Acquire) == 0
    }

    /// Fails the job with `error`: its callbacks are unregistered (waiting for one that
    /// runs), then its fence signals, after those of the batches before it on its host
    /// ring. The caller holds the queue's `sending` lock, so no earlier job of its key is
    /// being sent meanwhile.
    fn cancel(self, error: Error) {
        let Job {
            callbacks,
            sub,
            fence,
            ..
        } = self;
        drop(callbacks);
        sub.host.fail_in_order(sub.ring, sub.class, fence, error);
    }

    /// Sends the batch, or fails its fence.
    fn run(self) {
        let Job {
            callbacks,
            after: _,
            sub,
            fence,
            deps,
        } = self;
        // Every dependency signalled: this waits for a callback still finishing.
        drop(callbacks);
        let error = deps.error.load(Ordering::Acquire);
        if error != 0 {
            sub.host
                .fail_in_order(sub.ring, sub.class, fence, Error::from_errno(error));
            return;
        }
        let Some(guard) = sub.dev.registration_guard() else {
            sub.host.fail_in_order(sub.ring, sub.class, fence, ENODEV);
            return;
        };
        guard.registration_data_with(|bound| {
            // On error the fence signals with it.
            if let Err(e) = sub.host.execbuffer(
                &sub.dev,
                bound,
                sub.cmd,
                sub.ring,
                sub.class,
                Some(fence),
                // Decided again: what held at the ioctl may not any more.
                sub.unwaited && sub.host.may_send_unwaited(sub.ctx_id),
            ) {
                pr_debug!(
                    "virtio_intel: ctx {}: queued execbuffer failed: {:?}\n",
                    sub.ctx_id,
                    e
                );
            }
        });
    }
}

/// The fence context of the waiting execbuffers of one GEM context and engine.
struct QueueTimeline {
    ctx_id: u32,
    ring: u8,
    fences: FenceContext,
    last: u64,
}

/// What the queue's lock guards.
struct State {
    /// Waiting execbuffers, in submission order.
    jobs: KVec<Job>,
    timelines: KVec<QueueTimeline>,
    /// The file is closed: nothing is queued or sent any more.
    closed: bool,
    /// The device is being unbound: nothing waits for room any more.
    unplugged: bool,
}

impl State {
    fn has_key(&self, key: (u32, u8)) -> bool {
        self.jobs.iter().any(|j| j.key() == key)
    }

    /// Whether the job whose fence is `fence` still waits here.
    fn waiting(&self, fence: &Fence) -> bool {
        self.jobs
            .iter()
            .any(|j| j.fence.fence().as_ptr() == fence.as_ptr())
    }

    /// Whether `fence` is one of this queue's fences.
    fn owns(&self, fence: &Fence) -> bool {
        self.timelines
            .iter()
            .any(|t| t.fences.id() == fence.context())
    }

    /// Whether `fence` is one of this queue's fences of GEM context and engine `key`: its
    /// batch was sent before, or will be, in order.
    fn owns_key(&self, fence: &Fence, key: (u32, u8)) -> bool {
        self.timelines
            .iter()
            .any(|t| (t.ctx_id, t.ring) == key && t.fences.id() == fence.context())
    }

    /// Takes the first job that is ready, has no earlier job of its key before it, and none
    /// of whose submit fences still waits.
    fn take_ready(&mut self) -> Option<Job> {
        let at = (0..self.jobs.len()).find(|&i| {
            let j = &self.jobs[i];
            j.ready()
                && !self.jobs[..i].iter().any(|e| e.key() == j.key())
                && !j.after.iter().any(|f| self.waiting(f))
        })?;
        self.jobs.remove(at).ok()
    }
}

/// The execbuffers of one file that wait for dependencies.
#[pin_data]
pub(crate) struct ExecQueue {
    shared: Arc<Shared>,
    #[pin]
    state: Mutex<State>,
    /// Signalled when a job leaves the queue.
    #[pin]
    room: CondVar,
    /// Held while an execbuffer is sent (by the ioctl or the work): per GEM context and
    /// engine, batches reach the host in submission order.
    #[pin]
    sending: Mutex<()>,
    #[pin]
    work: Work<ExecQueue>,
}

impl_has_work! {
    impl HasWork<Self> for ExecQueue { self.work }
}

impl WorkItem for ExecQueue {
    type Pointer = Arc<ExecQueue>;

    fn run(this: Arc<ExecQueue>) {
        let _sending = this.sending.lock();
        loop {
            let job = {
                let mut st = this.state.lock();
                if st.closed {
                    return;
                }
                st.take_ready()
            };
            let Some(job) = job else {
                return;
            };
            this.room.notify_all();
            job.run();
        }
    }
}

impl ExecQueue {
    /// An empty queue for a file of the device `shared` describes, which knows of it until
    /// [`Self::close`].
    pub(crate) fn new(shared: Arc<Shared>) -> Result<Arc<Self>> {
        let registry = shared.clone();
        let q = Arc::pin_init(
            try_pin_init!(Self {
                shared,
                state <- new_mutex!(State {
                    jobs: KVec::new(),
                    timelines: KVec::new(),
                    closed: false,
                    unplugged: false,
                }),
                room <- new_condvar!(),
                sending <- new_mutex!(()),
                work <- new_work!("virtio_intel::ExecQueue::work"),
            }),
            GFP_KERNEL,
        )?;
        registry.add_exec_queue(q.clone())?;
        Ok(q)
    }

    /// Queues the work that sends ready jobs (callable from any context).
    fn kick(self: &Arc<Self>) {
        // Already queued: that run will see this job too.
        let _ = self.shared.exec_wq.enqueue(self.clone());
    }

    /// Sends `sub` once `deps` (unsignalled fences) have signalled, and the batches of
    /// `submits` (submit fences) were sent; a job that waits keeps references to `objects`
    /// (the execbuffer's) until then. Returns its batch's fence, for the objects: the
    /// host ring's when it was sent at once through `bound` (with the host's errors), the
    /// queue's when it waits here. With `user`, also returns a fence of this queue's for
    /// userspace (the sync file of `I915_EXEC_FENCE_OUT`, syncobjs), which signals with the
    /// batch, and with `out` its sync file, both made before anything is sent.
    ///
    /// The queue's fences of the same GEM context and engine need no wait (their batches
    /// go first, in order, and the host's i915 runs one context's batches in order). A
    /// submit fence of this queue needs its job sent; one of another queue (another
    /// file's) or of another driver needs to signal, as i915 waits for foreign submit
    /// fences.
    ///
    /// # Errors
    ///
    /// `ERESTARTSYS` when interrupted while [`MAX_WAITING`] execbuffers wait, `ENOMEM`,
    /// `ENODEV` after close, and [`HostContext::execbuffer`]'s errors.
    pub(crate) fn submit(
        self: &Arc<Self>,
        bound: &Bound<'_>,
        mut sub: Submission,
        objects: &[ARef<Object>],
        (mut deps, submits): (KVec<Fence>, KVec<Fence>),
        user: bool,
        out: bool,
    ) -> Result<Submitted> {
        let sending = self.sending.lock();
        let key = (sub.ctx_id, sub.ring);
        let mut st = self.state.lock();
        if st.closed {
            return Err(ENODEV);
        }
        deps.retain(|f| !st.owns_key(f, key));
        let mut after = KVec::new();
        for f in submits {
            if st.owns(&f) {
                if st.waiting(&f) {
                    after.push(f, GFP_KERNEL)?;
                }
            } else {
                deps.push(f, GFP_KERNEL)?;
            }
        }
        if deps.is_empty() && after.is_empty() && !st.has_key(key) {
            // The user's fence is one of the queue's, signalled with the ring's: it and its
            // sync file exist before the batch is sent, so nothing fails once it is.
            let (also, user, file) = if user || out {
                let f = self.new_fence(&mut st, key, sub.class)?;
                let user = f.fence();
                let file = if out {
                    Some(SyncFile::new(&user)?)
                } else {
                    None
                };
                (Some(f), Some(user), file)
            } else {
                (None, None, None)
            };
            drop(st);
            let batch = sub.host.execbuffer(
                &sub.dev,
                bound,
                sub.cmd,
                sub.ring,
                sub.class,
                also,
                sub.unwaited,
            )?;
            return Ok(Submitted { batch, user, file });
        }
        drop(sending);
        while st.jobs.len() >= MAX_WAITING {
            if st.closed || st.unplugged {
                return Err(ENODEV);
            }
            if self.room.wait_interruptible(&mut st) {
                return Err(ERESTARTSYS);
            }
        }
        st.jobs.reserve(1, GFP_KERNEL)?;
        sub._objects = KVec::with_capacity(objects.len(), GFP_KERNEL)?;
        for obj in objects {
            sub._objects.push(obj.clone(), GFP_KERNEL)?;
        }
        let fence = self.new_fence(&mut st, key, sub.class)?;
        let batch = fence.fence();
        let file = if out {
            Some(SyncFile::new(&batch)?)
        } else {
            None
        };
        let deps_state = Arc::new(
            Deps {
                pending: AtomicUsize::new(1),
                error: AtomicI32::new(0),
                queue: self.clone(),
            },
            GFP_KERNEL,
        )?;
        let mut callbacks = KVec::with_capacity(deps.len(), GFP_KERNEL)?;
        for dep in deps.iter() {
            deps_state.pending.fetch_add(1, Ordering::AcqRel);
            let d = deps_state.clone();
            // SAFETY: The handle is kept in the job, which is dropped (unregistering the
            // callback) when it runs or when the file is closed, before the module can go.
            match unsafe { dep.add_callback(move |r| d.done(r)) } {
                Ok(h) => callbacks.push(h, GFP_KERNEL)?,
                Err(e) => {
                    deps_state.pending.fetch_sub(1, Ordering::AcqRel);
                    if e != ENOENT {
                        return Err(e);
                    }
                    // Signalled meanwhile.
                    if let Some(err) = dep.error() {
                        deps_state.record(err);
                    }
                }
            }
        }
        // Reserved above: this does not allocate.
        st.jobs.push(
            Job {
                callbacks,
                after,
                sub,
                fence,
                deps: deps_state.clone(),
            },
            GFP_NOWAIT,
        )?;
        drop(st);
        // The ioctl's own count: the last dependency may have signalled already.
        deps_state.done(Ok(()));
        Ok(Submitted {
            user: Some(batch.clone()),
            batch,
            file,
        })
    }

    /// A new fence for a waiting execbuffer of GEM context and engine `key`.
    fn new_fence(&self, st: &mut State, key: (u32, u8), class: u16) -> Result<SignalFence> {
        let i = match st.timelines.iter().position(|t| (t.ctx_id, t.ring) == key) {
            Some(i) => i,
            None => {
                st.timelines.reserve(1, GFP_KERNEL)?;
                let name = CString::try_from_fmt(fmt!("queue-ctx{}-ring{}", key.0, key.1))?;
                let fences = FenceContext::new(c"virtio_intel", &name)?;
                self.shared
                    .add_fence_class(fences.id(), class, FenceKind::Queued)?;
                st.timelines.push(
                    QueueTimeline {
                        ctx_id: key.0,
                        ring: key.1,
                        fences,
                        last: 0,
                    },
                    GFP_NOWAIT,
                )?;
                st.timelines.len() - 1
            }
        };
        let t = &mut st.timelines[i];
        let f = t.fences.new_fence(t.last + 1)?;
        t.last += 1;
        Ok(f)
    }

    /// Fails, with `error` and in submission order, every job still waiting, or those of
    /// GEM context `ctx_id` only.
    fn cancel_jobs(&self, ctx_id: Option<u32>, error: Error) {
        // No job is being sent meanwhile: failures signal after the batches sent before.
        let _sending = self.sending.lock();
        let mut jobs = KVec::new();
        {
            let mut st = self.state.lock();
            let mut i = 0;
            while i < st.jobs.len() {
                if ctx_id.is_none_or(|c| st.jobs[i].sub.ctx_id == c) {
                    if let Ok(j) = st.jobs.remove(i) {
                        // Without memory for the list, the job is dropped here: its fence
                        // then fails with `ECANCELED`, out of order.
                        let _ = jobs.push(j, GFP_KERNEL);
                    }
                } else {
                    i += 1;
                }
            }
        }
        self.room.notify_all();
        for job in jobs {
            job.cancel(error);
        }
    }

    /// The device is going: wakes an execbuffer waiting for room (it fails with `ENODEV`)
    /// so that unplugging, which waits for ioctls, does not wait for it.
    pub(crate) fn unplugging(&self) {
        self.state.lock().unplugged = true;
        self.room.notify_all();
    }

    /// The device was unplugged: fails every waiting job (`ENODEV`).
    pub(crate) fn cancel_waiting(&self) {
        self.cancel_jobs(None, ENODEV);
    }

    /// GEM context `ctx_id` is being destroyed: fails its waiting jobs (`ECANCELED`), which
    /// could not run once the host reuses its id.
    pub(crate) fn cancel_context(&self, ctx_id: u32) {
        self.cancel_jobs(Some(ctx_id), ECANCELED);
    }

    /// The file is closed: cancels what waits (`ECANCELED`), and waits for a batch being
    /// sent and for the work. Nothing is queued or sent afterwards.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.cancel_jobs(None, ECANCELED);
        self.shared.exec_wq.flush();
        let timelines = core::mem::take(&mut self.state.lock().timelines);
        for t in timelines.iter() {
            self.shared.remove_fence_class(t.fences.id());
        }
        self.shared.remove_exec_queue(self);
    }
}
