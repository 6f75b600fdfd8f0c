// SPDX-License-Identifier: GPL-2.0

//! Fence events: host fences become DMA fences.
//!
//! A SUBMIT_3D sent with `VIRTIO_GPU_FLAG_FENCE | VIRTIO_GPU_FLAG_INFO_RING_IDX` carries a
//! fence id on one ring of its context. The VMM answers such a command only once the host
//! retired that fence, and a context's ring retires its fences in id order (QEMU answers
//! every queued command of that context and ring whose id is at most the retired one). So
//! the answer is the fence event:
//!
//! 1. before the command is queued, [`Timeline::emit`] creates the DMA fence for its id and
//!    a [`FenceEvent`] that travels with the command;
//! 2. the virtqueue interrupt hands the answered event to [`FenceEvent::retire`], which
//!    records the retired id (or the command's error) on the ring's [`Timeline`] and queues
//!    the timeline's work on the device's fence workqueue;
//! 3. the work signals, in id order, every fence up to the retired id. Nothing polls.
//!
//! A command that is never answered (it could not be queued, or the device was reset
//! with it in flight) drops its event, which fails its fence with `ECANCELED`. Fences of one
//! timeline signal in id order even then: a failed fence waits for the ones before it.

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use kernel::{
    dma_fence::{
        Fence,
        FenceContext,
        SignalFence, //
    },
    impl_has_work,
    new_spinlock_irq,
    new_work,
    prelude::*,
    str::CString,
    sync::{
        Arc,
        SpinLockIrq, //
    },
    time::{
        Delta,
        Instant,
        Monotonic, //
    },
    workqueue::{
        OwnedQueue,
        Work,
        WorkItem, //
    }, //
};

use crate::context::ResetCheck;

/// Counters of the fence path, shown in debugfs.
#[derive(Default)]
pub(crate) struct FenceStats {
    /// Fences created for queued commands.
    pub(crate) emitted: AtomicU64,
    /// Fences signalled (with success or an error).
    pub(crate) signalled: AtomicU64,
    /// Runs of a timeline's signalling work.
    pub(crate) works: AtomicU64,
}

/// A retired batch that ran at least this long is looked at for a reset before its fence
/// signals. A hang takes the host at least its detection time to find: i915's quickest
/// path to a reset is the preemption timeout, 640 ms by default (heartbeats take seconds).
pub(crate) const RESET_CHECK_AFTER_MS: i64 = 250;

/// A fence not signalled yet.
struct Entry {
    id: u64,
    /// The GEM context of the execbuffer it stands for, whose reset statistics tell whether
    /// the batch hung; `None` for other commands.
    gem_ctx: Option<u32>,
    /// The reset statistics were looked at.
    checked: bool,
    fence: SignalFence,
    /// A fence handed out before the command was queued (an execbuffer that waited for its
    /// dependencies, see [`crate::exec_queue`]), signalled right after `fence`, alike.
    also: Option<SignalFence>,
    /// When it was created (its command queued right after).
    emitted: Instant<Monotonic>,
    /// Set when the host answered the command with an error, or never will answer it.
    error: Option<Error>,
    /// The response slot of an execbuffer sent in the fenced command itself, whose answer
    /// (the host i915's errno) is read, and the slot freed, before the fence signals.
    rsp: Option<u64>,
}

/// What the interrupt and the work share.
struct State {
    /// Unsignalled fences in increasing id order.
    pending: KVec<Entry>,
    /// The highest id the host retired.
    retired: u64,
    /// The highest id emitted.
    last: u64,
    /// Someone is signalling: only one caller signals at a time, so that fences leave
    /// `pending` and signal in the same order. Others only record, and the signaller looks
    /// again before it stops.
    signalling: bool,
    /// Looks at the reset statistics of long batches (execbuffer timelines).
    reset_check: Option<Arc<ResetCheck>>,
    /// The reset check of the first entry is queued or running.
    checking: bool,
}

/// The fences of one ring of one host context.
///
/// # Invariants
///
/// Ids passed to [`Timeline::emit`] increase strictly (`state.last` is the highest);
/// `pending` is sorted by id.
#[pin_data]
pub(crate) struct Timeline {
    fences: FenceContext,
    stats: Arc<FenceStats>,
    #[pin]
    state: SpinLockIrq<State>,
    #[pin]
    work: Work<Timeline>,
    /// Looks at the reset statistics of the first entry (see [`ResetCheck`]).
    #[pin]
    check_work: Work<Timeline, 1>,
}

impl_has_work! {
    impl HasWork<Self> for Timeline { self.work }
    impl HasWork<Self, 1> for Timeline { self.check_work }
}

impl WorkItem<1> for Timeline {
    type Pointer = Arc<Timeline>;

    fn run(this: Arc<Timeline>) {
        this.check_first();
    }
}

impl WorkItem for Timeline {
    type Pointer = Arc<Timeline>;

    fn run(this: Arc<Timeline>) {
        this.stats.works.fetch_add(1, Ordering::Relaxed);
        this.signal_ready();
    }
}

impl Timeline {
    /// A timeline for ring `ring` of host context `ctx` (shown in fence debug output, such
    /// as `/sys/kernel/debug/dma_buf/bufinfo`, as `ctx<C>-ring<R>`).
    pub(crate) fn new(ctx: u32, ring: u8, stats: Arc<FenceStats>) -> Result<Arc<Self>> {
        let name = CString::try_from_fmt(fmt!("ctx{}-ring{}", ctx, ring))?;
        Arc::pin_init(
            try_pin_init!(Self {
                fences: FenceContext::new(c"virtio_intel", &name)?,
                stats,
                state <- new_spinlock_irq!(State {
                    pending: KVec::new(),
                    retired: 0,
                    last: 0,
                    signalling: false,
                    reset_check: None,
                    checking: false,
                }),
                work <- new_work!("virtio_intel::Timeline::work"),
                check_work <- new_work!("virtio_intel::Timeline::check_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Creates the fence of a command about to be queued with fence id `id`, which must be
    /// higher than every id emitted before. Returns the fence for waiters and the event to
    /// queue with the command. Callers serialise their `emit`s (the context's submit lock
    /// does), which is what orders the ids. `also` signals with the fence.
    ///
    /// # Errors
    ///
    /// `EINVAL` when `id` does not increase, `ENOMEM`. On error no fence was created, and
    /// `also` is dropped (which signals it with `ECANCELED`).
    pub(crate) fn emit(
        self: &Arc<Self>,
        id: u64,
        also: Option<SignalFence>,
    ) -> Result<(Fence, FenceEvent)> {
        self.emit_for(id, None, also)
    }

    /// As [`Self::emit`], for an execbuffer of GEM context `gem_ctx`, if any.
    pub(crate) fn emit_for(
        self: &Arc<Self>,
        id: u64,
        gem_ctx: Option<u32>,
        also: Option<SignalFence>,
    ) -> Result<(Fence, FenceEvent)> {
        self.emit_exec(id, gem_ctx, also, None)
    }

    /// As [`Self::emit_for`], for an execbuffer whose ccmd travels in the fenced command,
    /// with its answer in response slot `rsp`: before the fence signals, the timeline's
    /// [`ResetCheck`] reads that answer (a refusal fails the fence with the host's errno)
    /// and frees the slot, also when the command was never answered.
    pub(crate) fn emit_exec(
        self: &Arc<Self>,
        id: u64,
        gem_ctx: Option<u32>,
        also: Option<SignalFence>,
        rsp: Option<u64>,
    ) -> Result<(Fence, FenceEvent)> {
        // Room first, allocated outside the interrupt-safe lock: the push below then cannot
        // fail, so a fence once created is always recorded (dropping it would signal it out
        // of order).
        loop {
            let (len, cap) = {
                let g = self.state.lock();
                if id <= g.last {
                    return Err(EINVAL);
                }
                (g.pending.len(), g.pending.capacity())
            };
            if len < cap {
                break;
            }
            let mut bigger = KVec::with_capacity((cap * 2).max(8), GFP_KERNEL)?;
            let mut g = self.state.lock();
            if g.pending.len() == g.pending.capacity() && g.pending.len() <= bigger.capacity() {
                // Moving the entries does not allocate: `bigger` has room for them all.
                for e in g.pending.drain_all() {
                    let _ = bigger.push_within_capacity(e);
                }
                g.pending = bigger;
            }
        }
        let fence = self.fences.new_fence(id)?;
        let waiter = fence.fence();
        {
            let mut g = self.state.lock();
            // Serialised `emit`s: nobody used the room or the id meanwhile (others only
            // remove entries).
            if g.pending
                .push_within_capacity(Entry {
                    id,
                    gem_ctx,
                    checked: false,
                    fence,
                    also,
                    emitted: Instant::now(),
                    error: None,
                    rsp,
                })
                .is_err()
            {
                return Err(ENOMEM);
            }
            g.last = id;
        }
        self.stats.emitted.fetch_add(1, Ordering::Relaxed);
        Ok((
            waiter,
            FenceEvent {
                timeline: Some(self.clone()),
                id,
            },
        ))
    }

    /// Records that the host is done with fence `id`: retired, or failed with `result` (the
    /// first error recorded stays). Callable from any context.
    pub(crate) fn record(&self, id: u64, result: Result) {
        let mut g = self.state.lock();
        match result {
            Ok(()) => g.retired = g.retired.max(id),
            Err(e) => {
                if let Some(entry) = g.pending.iter_mut().find(|en| en.id == id) {
                    entry.error.get_or_insert(e);
                }
            }
        }
    }

    /// Makes the timeline look at the reset statistics of its long batches with `check`
    /// (see [`ResetCheck`]), or no more with `None` (the context is going).
    pub(crate) fn set_reset_check(&self, check: Option<Arc<ResetCheck>>) {
        let old = core::mem::replace(&mut self.state.lock().reset_check, check);
        // Dropped outside the interrupt-safe lock.
        drop(old);
    }

    /// Whether the timeline has a reset check.
    pub(crate) fn has_reset_check(&self) -> bool {
        self.state.lock().reset_check.is_some()
    }

    /// The reset check of the first entry: records a reset as the entry's error, then lets
    /// the signalling go on.
    fn check_first(self: &Arc<Self>) {
        let (id, gem_ctx, check) = {
            let g = self.state.lock();
            match (g.pending.first(), &g.reset_check) {
                (Some(e), Some(c)) if !e.checked => (e.id, e.gem_ctx, Some(c.clone())),
                (Some(e), _) => (e.id, None, None),
                (None, _) => (0, None, None),
            }
        };
        let reset = match (gem_ctx, check) {
            (Some(ctx), Some(c)) => c.batch_was_reset(ctx),
            _ => false,
        };
        {
            let mut g = self.state.lock();
            if let Some(e) = g.pending.iter_mut().find(|e| e.id == id) {
                e.checked = true;
                if reset {
                    e.error.get_or_insert(EIO);
                }
            }
            g.checking = false;
        }
        self.signal_ready();
    }

    /// Signals, in id order, every fence the host is done with. If another caller is
    /// signalling, leaves it to that one, which looks at the list again before it stops. A
    /// long batch's fence waits for its reset check (see [`ResetCheck`]).
    fn signal_ready(self: &Arc<Self>) {
        {
            let mut g = self.state.lock();
            if g.signalling {
                return;
            }
            g.signalling = true;
        }
        loop {
            let mut check = None;
            let mut answer = None;
            let entry = {
                let mut g = self.state.lock();
                let retired = g.retired;
                let first = g.pending.first().map(|e| {
                    let done = e.id <= retired || e.error.is_some();
                    let long = e.emitted.elapsed().as_millis() >= RESET_CHECK_AFTER_MS;
                    (
                        done,
                        e.error.is_none() && e.gem_ctx.is_some() && !e.checked && long,
                    )
                });
                match first {
                    Some((true, true)) if g.reset_check.is_some() => {
                        if !g.checking {
                            g.checking = true;
                            check = g.reset_check.clone();
                        }
                        g.signalling = false;
                        None
                    }
                    Some((true, _)) => {
                        let e = g.pending.remove(0).ok();
                        if e.as_ref().is_some_and(|e| e.rsp.is_some()) {
                            answer = g.reset_check.clone();
                        }
                        e
                    }
                    _ => {
                        g.signalling = false;
                        None
                    }
                }
            };
            let Some(mut entry) = entry else {
                if let Some(c) = check {
                    // Already queued: that run looks at the same entry.
                    let _ = c.queue().enqueue::<Arc<Timeline>, 1>(self.clone());
                }
                return;
            };
            // An execbuffer sent with its fence: the host's answer, read now that the host
            // is done with it. Without a check (the context is being torn down, and its
            // response area with it) the slot needs no freeing.
            if let (Some(slot), Some(c)) = (entry.rsp, answer) {
                if let Some(e) = c.batch_answer(slot, entry.error.is_none()) {
                    entry.error.get_or_insert(e);
                }
            }
            // Signalled outside the lock (callbacks run from here); still in order, as the
            // only signaller.
            let result = entry.error.map_or(Ok(()), Err);
            entry.fence.signal(result);
            if let Some(also) = entry.also {
                also.signal(result);
            }
            self.stats.signalled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The fence context of this timeline's fences.
    pub(crate) fn fence_context(&self) -> u64 {
        self.fences.id()
    }

    /// The latest fence not signalled yet: once it signals, all of the timeline's have.
    pub(crate) fn last_pending(&self) -> Option<Fence> {
        self.state.lock().pending.last().map(|e| e.fence.fence())
    }

    /// Fails every fence not signalled yet with `ECANCELED`, in order: their commands will
    /// never be answered (the host context is gone). A later answer finds nothing to retire.
    pub(crate) fn cancel(self: &Arc<Self>) {
        {
            let mut g = self.state.lock();
            for e in g.pending.iter_mut() {
                if e.error.is_none() {
                    e.error = Some(ECANCELED);
                }
            }
        }
        self.signal_ready();
    }

    /// The latest fence not signalled yet that was created at least `age` ago.
    pub(crate) fn last_pending_older(&self, age: Delta) -> Option<Fence> {
        self.state
            .lock()
            .pending
            .iter()
            .rev()
            .find(|e| e.emitted.elapsed() >= age)
            .map(|e| e.fence.fence())
    }

    /// Whether a batch of GEM context `gem_ctx` (of any context for `None`) whose fence has
    /// not signalled yet was sent at least `age` ago.
    pub(crate) fn has_pending_older(&self, gem_ctx: Option<u32>, age: Delta) -> bool {
        // One clock read for all (the execbuffer path asks on every submit).
        let now = Instant::<Monotonic>::now();
        self.state
            .lock()
            .pending
            .iter()
            .any(|e| gem_ctx.is_none_or(|c| e.gem_ctx == Some(c)) && now - e.emitted >= age)
    }

    /// The number of fences not signalled yet.
    #[cfg(CONFIG_KUNIT)]
    fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }
}

/// The fence of one queued command, delivered when the host answers it.
///
/// Dropped without being retired (the command was never queued, or the device was reset
/// while it was in flight), it fails its fence with `ECANCELED`. Dropping it may sleep (it
/// signals the fence and runs its callbacks, and returns response slots): never in atomic
/// context.
pub(crate) struct FenceEvent {
    timeline: Option<Arc<Timeline>>,
    id: u64,
}

impl FenceEvent {
    /// The host answered the command: with success (`result` is `Ok`) its fence and every
    /// earlier one of the timeline are retired. Queues the signalling on `queue`. Callable
    /// from the virtqueue interrupt.
    pub(crate) fn retire(mut self, result: Result, queue: &OwnedQueue) {
        if let Some(t) = self.timeline.take() {
            t.record(self.id, result);
            // Already queued: that run will see this id too.
            let _ = queue.enqueue::<Arc<Timeline>, 0>(t);
        }
    }
}

impl Drop for FenceEvent {
    fn drop(&mut self) {
        if let Some(t) = self.timeline.take() {
            t.record(self.id, Err(ECANCELED));
            // Never answered, so nothing else will signal it: do it here (still after every
            // earlier fence of the timeline).
            t.signal_ready();
        }
    }
}

#[kunit_tests(virtio_intel_fence)]
mod tests {
    use super::*;
    use kernel::workqueue::QueueFlags;

    fn queue() -> Result<OwnedQueue> {
        OwnedQueue::new(c"kunit-vi-fence", QueueFlags::UNBOUND, 0)
    }

    #[test]
    fn retire_signals_every_fence_up_to_the_id() -> Result {
        let wq = queue()?;
        let stats = Arc::new(FenceStats::default(), GFP_KERNEL)?;
        let t = Timeline::new(1, 0, stats.clone())?;
        let (f1, e1) = t.emit(1, None)?;
        let (f2, e2) = t.emit(2, None)?;
        let (f3, e3) = t.emit(3, None)?;
        // QEMU answers 1 and 2 when 2 retires; answering 2 first must signal 1 as well.
        e2.retire(Ok(()), &wq);
        wq.flush();
        assert!(f1.is_signaled() && f2.is_signaled() && !f3.is_signaled());
        assert_eq!((f1.error(), f2.error()), (None, None));
        e1.retire(Ok(()), &wq);
        e3.retire(Ok(()), &wq);
        wq.flush();
        assert!(f3.is_signaled());
        assert_eq!(t.pending(), 0);
        assert_eq!(stats.emitted.load(Ordering::Relaxed), 3);
        assert_eq!(stats.signalled.load(Ordering::Relaxed), 3);
        assert!(stats.works.load(Ordering::Relaxed) >= 2);
        Ok(())
    }

    #[test]
    fn errors_signal_in_order() -> Result {
        let wq = queue()?;
        let t = Timeline::new(1, 1, Arc::new(FenceStats::default(), GFP_KERNEL)?)?;
        let (f1, e1) = t.emit(10, None)?;
        let (f2, e2) = t.emit(11, None)?;
        // 11 failed (the host rejected it) while 10 is still running: 11 waits for 10.
        e2.retire(Err(EIO), &wq);
        wq.flush();
        assert!(!f1.is_signaled() && !f2.is_signaled());
        e1.retire(Ok(()), &wq);
        wq.flush();
        assert_eq!((f1.is_signaled(), f1.error()), (true, None));
        assert_eq!((f2.is_signaled(), f2.error()), (true, Some(EIO)));
        Ok(())
    }

    #[test]
    fn many_fences_signal_in_id_order() -> Result {
        use core::sync::atomic::AtomicBool;

        let wq = queue()?;
        let t = Timeline::new(1, 3, Arc::new(FenceStats::default(), GFP_KERNEL)?)?;
        let last = Arc::new(AtomicU64::new(0), GFP_KERNEL)?;
        let in_order = Arc::new(AtomicBool::new(true), GFP_KERNEL)?;
        let mut fences = KVec::new();
        let mut events = KVec::new();
        // More than the first allocation of `pending`, so it grows on the way.
        for id in 1..=20u64 {
            let (f, e) = t.emit(id, None)?;
            let (l, ok) = (last.clone(), in_order.clone());
            // SAFETY: Every fence is signalled before this test returns (the module stays).
            unsafe {
                f.on_signal(move |_| {
                    if l.swap(id, Ordering::Relaxed) != id - 1 {
                        ok.store(false, Ordering::Relaxed);
                    }
                })
            }?;
            fences.push(f, GFP_KERNEL)?;
            events.push(Some(e), GFP_KERNEL)?;
        }
        // Some never answered (failed at once), the host retires the others out of order.
        for id in [15usize, 3, 9] {
            drop(events[id - 1].take());
        }
        for id in [20usize, 7] {
            if let Some(e) = events[id - 1].take() {
                e.retire(Ok(()), &wq);
            }
        }
        wq.flush();
        for e in events.iter_mut().filter_map(Option::take) {
            e.retire(Ok(()), &wq);
        }
        wq.flush();
        assert!(fences.iter().all(|f| f.is_signaled()));
        assert_eq!(last.load(Ordering::Relaxed), 20);
        assert!(in_order.load(Ordering::Relaxed));
        assert_eq!(fences[14].error(), Some(ECANCELED));
        assert_eq!(fences[13].error(), None);
        Ok(())
    }

    #[test]
    fn cancel_fails_pending_fences_and_late_answers_are_harmless() -> Result {
        let wq = queue()?;
        let t = Timeline::new(1, 4, Arc::new(FenceStats::default(), GFP_KERNEL)?)?;
        let (f1, e1) = t.emit(1, None)?;
        let (f2, e2) = t.emit(2, None)?;
        e1.retire(Ok(()), &wq);
        wq.flush();
        t.cancel();
        assert_eq!((f1.error(), f2.error()), (None, Some(ECANCELED)));
        assert_eq!(t.pending(), 0);
        e2.retire(Ok(()), &wq);
        wq.flush();
        assert_eq!(t.pending(), 0);
        Ok(())
    }

    #[test]
    fn unanswered_event_fails_its_fence() -> Result {
        let wq = queue()?;
        let t = Timeline::new(1, 2, Arc::new(FenceStats::default(), GFP_KERNEL)?)?;
        let (f1, e1) = t.emit(1, None)?;
        let (f2, e2) = t.emit(2, None)?;
        drop(e2);
        assert!(!f2.is_signaled());
        drop(e1);
        assert_eq!((f1.error(), f2.error()), (Some(ECANCELED), Some(ECANCELED)));
        // Ids only increase, even after failures.
        assert!(matches!(t.emit(2, None), Err(e) if e == EINVAL));
        let (f3, e3) = t.emit(3, None)?;
        e3.retire(Ok(()), &wq);
        wq.flush();
        assert_eq!((f3.is_signaled(), f3.error()), (true, None));
        Ok(())
    }

    #[test]
    fn also_signals_with_its_ring_fence() -> Result {
        use kernel::dma_fence::FenceContext;
        let wq = queue()?;
        let t = Timeline::new(1, 3, Arc::new(FenceStats::default(), GFP_KERNEL)?)?;
        let user = FenceContext::new(c"kunit", c"queue")?;
        let (a, b) = (user.new_fence(1)?, user.new_fence(2)?);
        let (fa, fb) = (a.fence(), b.fence());
        let (f1, e1) = t.emit(1, Some(a))?;
        let (f2, e2) = t.emit(2, Some(b))?;
        // The first error recorded stays: the host's errno, not the event's ECANCELED.
        t.record(2, Err(ENOSPC));
        drop(e2);
        assert!(!fb.is_signaled());
        e1.retire(Ok(()), &wq);
        wq.flush();
        assert_eq!(
            (f1.error(), fa.is_signaled(), fa.error()),
            (None, true, None)
        );
        assert_eq!((f2.error(), fb.error()), (Some(ENOSPC), Some(ENOSPC)));
        Ok(())
    }
}
