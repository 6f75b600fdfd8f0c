// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_BUSY` and `DRM_IOCTL_I915_GEM_WAIT`, with the semantics of upstream
//! `i915_gem_busy.c` and `i915_gem_wait.c`, on the fences of the object's reservation
//! object (the batches of [`crate::execbuf`]).
//!
//! `busy`: for each unsignalled fence of this driver's batches, the engine class's bit in
//! the upper half (`0x10000 << class`); for a batch that writes the object, also `class + 1`
//! in the lower half. Fences of other drivers are not reported, as i915 reports only its
//! own.
//!
//! `timeout_ns`: negative waits without a bound, 0 only tests. A positive timeout is
//! written back, less the time waited (0 at the least); `ETIME` when the object stayed
//! busy, `EAGAIN` instead when the rest of the timeout is finer than a jiffy can express.

use kernel::{
    dma_resv::Usage,
    drm::{
        self,
        gem::BaseObject, //
    },
    prelude::*,
    time::{
        Instant,
        Monotonic, //
    },
    uapi,
};

use crate::{
    driver::{
        Bound,
        I915Device, //
    },
    execbuf::class,
    file::File,
    gem::Object,
};

/// `__busy_read_flag()`.
fn read_flag(class: u16) -> u32 {
    if class == class::INVALID {
        0xffff_0000
    } else {
        0x1_0000u32.checked_shl(u32::from(class)).unwrap_or(0)
    }
}

/// `__busy_write_id()`.
fn write_id(class: u16) -> u32 {
    if class == class::INVALID {
        0xffff_ffff
    } else {
        (u32::from(class) + 1) | read_flag(class)
    }
}

/// Jiffies for `ns` nanoseconds, rounded down (`nsecs_to_jiffies()`).
fn ns_to_jiffies(ns: u64) -> u64 {
    // SAFETY: A pure conversion, callable from any context.
    let j = unsafe { kernel::bindings::nsecs_to_jiffies(ns) };
    j as u64
}

impl File {
    /// `DRM_IOCTL_I915_GEM_BUSY`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown handle, `ENOMEM`.
    pub(crate) fn gem_busy(
        _dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_busy,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let obj = Object::lookup_handle(file, args.handle)?;
        let this = file.inner();
        let shared = this.shared();
        let resv = obj.resv();
        let writers = resv.fences(Usage::Write)?;
        let all = resv.fences(Usage::Read)?;
        let mut busy = 0;
        for f in all.iter() {
            if f.is_signaled() {
                continue;
            }
            let Some(class) = shared.fence_class(f.context()) else {
                continue;
            };
            let writes = writers.iter().any(|w| w.as_ptr() == f.as_ptr());
            busy |= if writes {
                write_id(class)
            } else {
                read_flag(class)
            };
        }
        args.busy = busy;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_WAIT`: waits for every batch that reads or writes the object.
    ///
    /// # Errors
    ///
    /// `EINVAL` for non-zero flags, `ENOENT` for an unknown handle, `ETIME` or `EAGAIN` on
    /// time-out, `ERESTARTSYS` on a signal.
    pub(crate) fn gem_wait(
        _dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_wait,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags != 0 {
            return Err(EINVAL);
        }
        let obj = Object::lookup_handle(file, args.bo_handle)?;
        let start = Instant::<Monotonic>::now();
        let timeout = match u64::try_from(args.timeout_ns) {
            // No bound (`MAX_SCHEDULE_TIMEOUT`).
            Err(_) => kernel::time::Jiffies::MAX,
            Ok(0) => 0,
            // `nsecs_to_jiffies_timeout()`: one more, so the wait is at least that long.
            Ok(ns) => (ns_to_jiffies(ns) + 1) as kernel::time::Jiffies,
        };
        let mut r = obj
            .resv()
            .wait_timeout(Usage::Read, true, timeout)
            .map(|_| ());
        if args.timeout_ns > 0 {
            let waited = start.elapsed().as_nanos();
            args.timeout_ns = args.timeout_ns.saturating_sub(waited).max(0);
            if r == Err(ETIME) {
                if ns_to_jiffies(args.timeout_ns as u64) == 0 {
                    args.timeout_ns = 0;
                }
                if args.timeout_ns != 0 {
                    r = Err(EAGAIN);
                }
            }
        }
        r.map(|()| 0)
    }
}
