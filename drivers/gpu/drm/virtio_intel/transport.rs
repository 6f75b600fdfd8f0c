// SPDX-License-Identifier: GPL-2.0

//! The control virtqueue: commands to the host and their responses.
//!
//! A command travels as a [`CtrlRequest`] that owns its bytes. Synchronous commands carry a
//! [`Waiter`]; the virtqueue interrupt moves the response into it and wakes the caller,
//! who waits with a bound and can be interrupted. A caller that gave up leaves the waiter
//! to be freed with the response: no memory the device writes is ever freed early.

use core::{
    marker::PhantomData,
    sync::atomic::{
        AtomicBool,
        AtomicU64,
        Ordering, //
    }, //
};
use kernel::{
    new_condvar,
    new_spinlock_irq,
    prelude::*,
    sync::{
        Arc,
        Completion,
        CondVar,
        CondVarTimeoutResult,
        SpinLockIrq, //
    },
    time::{
        msecs_to_jiffies,
        Jiffies, //
    },
    virtio::{
        self,
        virtqueue::{
            Buffers,
            Handler,
            Request,
            Virtqueues, //
        },
    },
    workqueue::{
        OwnedQueue,
        QueueFlags, //
    }, //
};

use crate::{
    fence::FenceEvent,
    protocol::{
        Command,
        CtrlHdr,
        RESP_ERR_UNSPEC, //
    },
};

/// Index of the control queue; 1 is the cursor queue, unused here.
const CONTROL_QUEUE: usize = 0;

/// How long a synchronous command may take before the caller gives up.
pub(crate) const COMMAND_TIMEOUT_MS: u32 = 5000;

/// How a caller waits for the host's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A signal ends the wait (`ERESTARTSYS`): ioctls.
    Interruptible,
    /// Only the bound ends the wait: teardown, which must not give up because the process
    /// that closes the file is being killed.
    Uninterruptible,
}

/// Where the response of a synchronous command is delivered.
#[pin_data]
pub(crate) struct Waiter {
    #[pin]
    done: SpinLockIrq<Option<Answer>>,
    /// Set once the device returned the request, even after `done` was taken.
    answered: AtomicBool,
    #[pin]
    completion: Completion,
}

impl Waiter {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                done <- new_spinlock_irq!(None),
                answered: AtomicBool::new(false),
                completion <- Completion::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Waits for the response.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT` after `timeout` jiffies, `ERESTARTSYS` on a signal (only with
    /// [`Wait::Interruptible`]).
    fn wait(&self, how: Wait, timeout: Jiffies) -> Result<Answer> {
        let timeout = timeout.max(1);
        match how {
            Wait::Interruptible => self
                .completion
                .wait_for_completion_interruptible_timeout(timeout)?,
            Wait::Uninterruptible => self.completion.wait_for_completion_timeout(timeout)?,
        };
        self.done.lock().take().ok_or(EIO)
    }
}

/// The largest control command (`CTX_CREATE`, with its debug name).
const MAX_COMMAND: usize = 96;

/// The largest control response (`RESP_OK_CAPSET` of the DRM capset).
const MAX_RESPONSE: usize = 72;

/// A response as the device wrote it: the bytes of the command's response type (what the
/// device did not write reads as zero).
struct Answer {
    bytes: [u8; MAX_RESPONSE],
    len: usize,
}

impl Answer {
    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// One control command in flight: its bytes, its response buffer and its waiter.
pub(crate) struct CtrlRequest {
    /// The command and its response, in place: the request lives in a `KBox`, so neither
    /// needs an allocation of its own.
    cmd: [u8; MAX_COMMAND],
    cmd_len: usize,
    data: KVec<u8>,
    resp: Answer,
    /// Who waits for the answer; `None` when only the fence `event` is wanted.
    waiter: Option<Arc<Waiter>>,
    /// The fence a fenced command retires when answered.
    event: Option<FenceEvent>,
    /// The response type that means success (`Command::OK`).
    ok: u32,
}

// SAFETY: `cmd` and `resp` are inside the request, which is queued as a `KBox`
// (kmalloc'd); `data` is a kmalloc'd buffer the request owns. All are DMA-able and do not
// move while the request is queued.
unsafe impl Request for CtrlRequest {
    fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            readable: [&self.cmd[..self.cmd_len], &self.data],
            writable: &mut self.resp.bytes[..self.resp.len],
        }
    }
}

/// Tells senders that the device returned buffers, so a full queue may have room again.
#[pin_data]
pub(crate) struct Space {
    /// How many requests the device has returned.
    #[pin]
    returned: SpinLockIrq<u64>,
    /// Requests queued and not yet returned by the device (counted up before a request is
    /// queued, so it never reads low).
    in_flight: AtomicU64,
    #[pin]
    cv: CondVar,
}

impl Space {
    /// Waits until the device returned a request after `seen` was read, for the time left
    /// in `left` (updated).
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT` when `left` runs out, `ERESTARTSYS` on a signal ([`Wait::Interruptible`]).
    fn wait_after(&self, seen: u64, how: Wait, left: &mut Jiffies) -> Result {
        let mut g = self.returned.lock();
        while *g == seen {
            let r = match how {
                Wait::Interruptible => self.cv.wait_interruptible_timeout(&mut g, *left),
                Wait::Uninterruptible => self.cv.wait_timeout(&mut g, *left),
            };
            match r {
                CondVarTimeoutResult::Timeout => return Err(ETIMEDOUT),
                CondVarTimeoutResult::Signal { .. } => return Err(ERESTARTSYS),
                CondVarTimeoutResult::Woken { jiffies } => *left = jiffies,
            }
        }
        Ok(())
    }
}

/// Delivers finished control requests.
pub(crate) struct CtrlHandler {
    space: Arc<Space>,
    /// Signals the fences of answered fenced commands. Dropped with the virtqueues, after
    /// their callbacks stopped, which waits for its work: no fence work of this module runs
    /// once the device is unbound.
    fences: OwnedQueue,
    /// Runs work deferred by the driver ([`ControlQueue::defer`]): freeing GEM objects' host
    /// objects. Drained when dropped, like `fences`.
    deferred: OwnedQueue,
}

impl Handler for CtrlHandler {
    type Request = CtrlRequest;

    fn complete(&self, _index: u32, mut req: KBox<CtrlRequest>, _written: u32) {
        // QEMU answers a fenced command with its success type once its fence retired, or at
        // once with an error when the command failed (no fence then).
        let ok =
            CtrlHdr::read_from_prefix(req.resp.bytes()).is_ok_and(|(h, _)| h.type_() == req.ok);
        // The answer first: a caller woken by the fence then finds it. (What the device did
        // not write of the response reads as zero: the buffer starts zeroed.)
        if let Some(w) = req.waiter.take() {
            *w.done.lock() = Some(Answer {
                bytes: req.resp.bytes,
                len: req.resp.len,
            });
            w.answered.store(true, Ordering::Release);
            w.completion.complete_all();
        }
        if let Some(ev) = req.event.take() {
            ev.retire(if ok { Ok(()) } else { Err(EIO) }, &self.fences);
        }
        {
            let mut g = self.space.returned.lock();
            *g += 1;
            self.space.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        self.space.cv.notify_all();
    }
}

/// The control queue of one device while the driver is bound to it (`'bound`): it lives in
/// the DRM registration data, so files reach it only through a registration guard (and the
/// device's debugfs files, which the registration removes before the data goes).
pub(crate) struct ControlQueue<'bound> {
    vqs: Pin<KBox<Virtqueues<'bound, CtrlHandler>>>,
    space: Arc<Space>,
}

impl<'bound> ControlQueue<'bound> {
    /// Sets up the control and cursor queues of `dev`.
    pub(crate) fn new(dev: &'bound virtio::Device<kernel::device::Core<'_>>) -> Result<Self> {
        let space = Arc::pin_init(
            pin_init!(Space {
                returned <- new_spinlock_irq!(0),
                in_flight: AtomicU64::new(0),
                cv <- new_condvar!(),
            }),
            GFP_KERNEL,
        )?;
        let fences = OwnedQueue::new(
            c"virtio_intel-fence",
            QueueFlags::PERCPU | QueueFlags::HIGHPRI | QueueFlags::MEM_RECLAIM,
            0,
        )?;
        let deferred = OwnedQueue::new(c"virtio_intel-free", QueueFlags::UNBOUND, 0)?;
        let vqs = Virtqueues::new(
            dev,
            &[c"control", c"cursor"],
            CtrlHandler {
                space: space.clone(),
                fences,
                deferred,
            },
        )?;
        Ok(Self { vqs, space })
    }

    /// Runs `f` later on the device's own workqueue, which is drained when the device is
    /// unbound (after the DRM device was unplugged).
    ///
    /// # Errors
    ///
    /// `ENOMEM`: `f` was dropped without running.
    pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) -> Result {
        self.vqs
            .handler()
            .deferred
            .try_spawn(GFP_KERNEL, f)
            .map_err(|_| ENOMEM)
    }

    /// Waits until the work deferred so far has run.
    pub(crate) fn flush_deferred(&self) {
        self.vqs.handler().deferred.flush();
    }

    /// How many commands the device has answered since probe: the host round trips.
    pub(crate) fn answered(&self) -> u64 {
        *self.space.returned.lock()
    }

    /// Sends `cmd` and waits for its response.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT`/`ERESTARTSYS` from the wait (for room in a full queue, then for the
    /// answer; one bound covers both), `EIO` when the host answered with an error or with a
    /// short or unexpected response.
    pub(crate) fn call<C: Command>(&self, cmd: &C) -> Result<C::Response> {
        self.call_with_data(cmd, KVec::new(), Wait::Interruptible)
    }

    /// Like [`Self::call`], waiting without interruption (bounded): for teardown.
    pub(crate) fn call_uninterruptible<C: Command>(&self, cmd: &C) -> Result<C::Response> {
        self.call_with_data(cmd, KVec::new(), Wait::Uninterruptible)
    }

    /// Like [`Self::call`], with `data` sent after the command (the SUBMIT_3D payload).
    pub(crate) fn call_with_data<C: Command>(
        &self,
        cmd: &C,
        data: KVec<u8>,
        how: Wait,
    ) -> Result<C::Response> {
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        self.send(cmd, data, &mut None, how, &mut left)?.wait(how)
    }

    /// Waits (interruptibly, for at most [`COMMAND_TIMEOUT_MS`]) until no command is in
    /// flight on the device, then until the fence work the answers queued has run: the
    /// device is idle, as i915 means it (other callers' commands count too).
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT`, `ERESTARTSYS`.
    pub(crate) fn wait_idle(&self) -> Result {
        let mut left = msecs_to_jiffies(COMMAND_TIMEOUT_MS);
        // The count drops under the `returned` lock before the notification, so checking it
        // under that lock cannot miss the last answer.
        let mut g = self.space.returned.lock();
        while self.space.in_flight.load(Ordering::Acquire) != 0 {
            match self.space.cv.wait_interruptible_timeout(&mut g, left) {
                CondVarTimeoutResult::Timeout => return Err(ETIMEDOUT),
                CondVarTimeoutResult::Signal { .. } => return Err(ERESTARTSYS),
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
            }
        }
        drop(g);
        self.vqs.handler().fences.flush();
        Ok(())
    }

    /// Queues `cmd` followed by `data` (moved into the request, not copied); the answer is
    /// collected with [`Pending::wait`].
    /// A fenced command carries the `event` of its fence, retired when the host answers:
    /// `send` takes it once the command is queued and leaves it to the caller otherwise
    /// (whose dropping it then fails the fence, outside the caller's locks).
    ///
    /// The caller decides the order of commands on the queue: two `send`s from one thread
    /// reach the device in that order. A full queue waits for room for at most `left`
    /// jiffies (updated).
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT`/`ERESTARTSYS` while waiting for room, `ENOMEM`, or the virtqueue's errors.
    pub(crate) fn send<C: Command>(
        &self,
        cmd: &C,
        data: KVec<u8>,
        event: &mut Option<FenceEvent>,
        how: Wait,
        left: &mut Jiffies,
    ) -> Result<Pending<C>> {
        let waiter = Waiter::new()?;
        self.queue(cmd, data, event, Some(waiter.clone()), how, left)?;
        Ok(Pending {
            waiter,
            left: *left,
            _cmd: PhantomData,
        })
    }

    /// As [`Self::send`] for a fenced command whose answer nobody reads: its fence `event`
    /// tells when the host is done with it (and whether it failed).
    ///
    /// # Errors
    ///
    /// As [`Self::send`].
    pub(crate) fn post<C: Command>(
        &self,
        cmd: &C,
        data: KVec<u8>,
        event: &mut Option<FenceEvent>,
        how: Wait,
        left: &mut Jiffies,
    ) -> Result {
        self.queue(cmd, data, event, None, how, left)
    }

    fn queue<C: Command>(
        &self,
        cmd: &C,
        data: KVec<u8>,
        event: &mut Option<FenceEvent>,
        waiter: Option<Arc<Waiter>>,
        how: Wait,
        left: &mut Jiffies,
    ) -> Result {
        const { assert!(core::mem::size_of::<C>() <= MAX_COMMAND) };
        const { assert!(core::mem::size_of::<C::Response>() <= MAX_RESPONSE) };
        let mut bytes = [0u8; MAX_COMMAND];
        let cmd_len = core::mem::size_of::<C>();
        bytes[..cmd_len].copy_from_slice(cmd.as_bytes());
        let mut req = KBox::new(
            CtrlRequest {
                cmd: bytes,
                cmd_len,
                data,
                resp: Answer {
                    bytes: [0; MAX_RESPONSE],
                    len: core::mem::size_of::<C::Response>(),
                },
                waiter,
                event: None,
                ok: C::OK,
            },
            GFP_KERNEL,
        )?;
        req.event = event.take();
        // A full queue waits (bounded) for the device to return a request.
        loop {
            let seen = *self.space.returned.lock();
            self.space.in_flight.fetch_add(1, Ordering::AcqRel);
            match self.vqs.submit(CONTROL_QUEUE, req) {
                Ok(()) => return Ok(()),
                Err((e, mut back)) => {
                    self.space.in_flight.fetch_sub(1, Ordering::AcqRel);
                    let waited = if e == ENOSPC {
                        self.space.wait_after(seen, how, left)
                    } else {
                        Err(e)
                    };
                    if let Err(e) = waited {
                        // Not queued: the event goes back to the caller.
                        *event = back.event.take();
                        return Err(e);
                    }
                    req = back;
                }
            }
        }
    }
}

/// A queued command whose answer has not been collected. Dropping it abandons the answer;
/// the request's memory stays with the queue until the device returns it.
pub(crate) struct Pending<C: Command> {
    waiter: Arc<Waiter>,
    left: Jiffies,
    _cmd: PhantomData<C>,
}

/// The answer of an abandoned command: tells whether the device has returned it.
pub(crate) struct Abandoned(Arc<Waiter>);

impl Abandoned {
    /// Whether the device answered (so the host is done with the command).
    pub(crate) fn is_done(&self) -> bool {
        self.0.answered.load(Ordering::Acquire)
    }
}

impl<C: Command> Pending<C> {
    /// A handle that outlives this `Pending` and tells when the device answered.
    pub(crate) fn abandoned(&self) -> Abandoned {
        Abandoned(self.waiter.clone())
    }

    /// The time left of the command's bound.
    pub(crate) fn left(&self) -> Jiffies {
        self.left
    }

    /// The same command with `left` jiffies left of its bound (after another wait).
    pub(crate) fn with_left(self, left: Jiffies) -> Self {
        Self { left, ..self }
    }

    /// Waits for the answer, for what is left of the command's bound.
    ///
    /// # Errors
    ///
    /// `ETIMEDOUT`/`ERESTARTSYS` from the wait, `EIO` when the host answered with an error
    /// or with a short or unexpected response.
    pub(crate) fn wait(mut self, how: Wait) -> Result<C::Response> {
        self.wait_again(how)
    }

    /// As [`Self::wait`], keeping the command: after `ETIMEDOUT` or `ERESTARTSYS` it can be
    /// waited for again. Once it returned anything else, the answer is gone and a later
    /// wait returns `EIO`.
    ///
    /// # Errors
    ///
    /// As [`Self::wait`].
    pub(crate) fn wait_again(&mut self, how: Wait) -> Result<C::Response> {
        let answer = self.waiter.wait(how, self.left)?;
        let resp = answer.bytes();
        let (hdr, _) = CtrlHdr::read_from_prefix(resp).map_err(|_| EIO)?;
        if hdr.type_() != C::OK {
            if hdr.type_() >= RESP_ERR_UNSPEC {
                pr_debug!("virtio_intel: host error response {:#x}\n", hdr.type_());
            }
            return Err(EIO);
        }
        // The host may answer with a shorter struct; what it did not write reads as zero.
        C::Response::read_from_bytes(resp).map_err(|_| EIO)
    }
}
