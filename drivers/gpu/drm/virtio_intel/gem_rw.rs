// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_PREAD` and `DRM_IOCTL_I915_GEM_PWRITE`, with the semantics of
//! upstream `i915_gem.c`, and `DRM_IOCTL_I915_GEM_THROTTLE`.
//!
//! PREAD and PWRITE copy between user memory and an object through a kernel mapping of
//! the object's range of the host-visible window, with the caching the host maps the object
//! with (mapping the object on first use, as a page fault would). In i915's order:
//! `EOPNOTSUPP` on graphics version 12 and later except Tiger Lake (this driver profiles
//! only Tiger Lake so far, so any other host GPU gets it); a size of 0 succeeds at once; an
//! address range that wraps is `EFAULT`; then the handle (`ENOENT`); a range beyond the
//! object is `EINVAL`. A copy that faults on user memory is `EFAULT`. An object the host maps
//! uncached cannot be mapped into the kernel (`ENODEV`).
//!
//! Both wait first, as i915 does, for the batches that use the object (a read for those
//! that write it, a write for all), interruptibly.
//!
//! THROTTLE waits, as in i915, on each of this file's engine timelines, for the latest
//! batch still running that was submitted at least 20 ms ago; a signal ends the wait
//! (`EINTR`). (i915 also fails on a terminally wedged GPU; the host's wedging shows as
//! `EIO` from execbuffer instead.)

use kernel::{
    dma_resv::Usage,
    drm::{
        self,
        gem::BaseObject, //
    },
    page::PAGE_SIZE,
    prelude::*,
    time::{
        Delta,
        Jiffies, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi,
    virtio::shm::ShmMapping,
};

use crate::{
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::Object,
    shared::Shared,
};

/// `GEM_THROTTLE` waits for batches submitted at least this long ago
/// (`DRM_I915_THROTTLE_JIFFIES`).
const THROTTLE_MS: i64 = 20;

/// Bytes copied per step between user memory and the window.
const CHUNK: usize = 16384;

/// Which way a copy goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Object to user memory (PREAD).
    Read,
    /// User memory to object (PWRITE).
    Write,
}

impl File {
    /// `DRM_IOCTL_I915_GEM_PREAD`.
    ///
    /// # Errors
    ///
    /// See the module documentation, and the transport's errors.
    pub(crate) fn gem_pread(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_pread,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let a = (args.handle, args.offset, args.size, args.data_ptr);
        copy(dev, bound, file, a, Dir::Read).map(|()| 0)
    }

    /// `DRM_IOCTL_I915_GEM_PWRITE`.
    ///
    /// # Errors
    ///
    /// See the module documentation, and the transport's errors.
    pub(crate) fn gem_pwrite(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_pwrite,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let a = (args.handle, args.offset, args.size, args.data_ptr);
        copy(dev, bound, file, a, Dir::Write).map(|()| 0)
    }

    /// `DRM_IOCTL_I915_GEM_THROTTLE`: see the module documentation.
    pub(crate) fn gem_throttle(
        _dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        _args: &mut (),
        file: &drm::File<File>,
    ) -> Result<u32> {
        let Some(ctx) = file.inner().host_ctx() else {
            return Ok(0);
        };
        for f in ctx
            .batches_older_than(Delta::from_millis(THROTTLE_MS))?
            .iter()
        {
            f.wait_timeout(true, Jiffies::MAX)?;
        }
        Ok(0)
    }
}

/// Copies `size` bytes between offset `offset` of object `handle` and user address
/// `data_ptr`.
fn copy(
    dev: &I915Device<drm::Registered>,
    bound: &Bound<'_>,
    file: &drm::File<File>,
    (handle, offset, size, data_ptr): (u32, u64, u64, u64),
    dir: Dir,
) -> Result {
    let shared: &Shared = dev;
    shared.identity.tigerlake_only()?;
    if size == 0 {
        return Ok(());
    }
    data_ptr.checked_add(size).ok_or(EFAULT)?;
    let user = usize::try_from(data_ptr).map_err(|_| EFAULT)?;
    let obj = Object::lookup_handle(file, handle)?;
    let end = offset.checked_add(size).ok_or(EINVAL)?;
    if end > obj.size() as u64 {
        return Err(EINVAL);
    }
    // As i915: a read waits for the batches that write the object, a write for all that
    // use it.
    let usage = match dir {
        Dir::Read => Usage::Write,
        Dir::Write => Usage::Read,
    };
    obj.resv().wait_timeout(usage, true, Jiffies::MAX)?;
    let size = usize::try_from(size).map_err(|_| EINVAL)?;
    let mut buf = KVec::with_capacity(CHUNK.min(size), GFP_KERNEL)?;
    buf.resize(CHUNK.min(size), 0, GFP_KERNEL)?;
    let mut done = 0;
    while done < size {
        let n = CHUNK.min(size - done);
        let chunk = &mut buf[..n];
        let at = offset + done as u64;
        let ptr = UserPtr::from_addr(user.wrapping_add(done));
        // User memory is only touched outside the object's state lock: it may be a mapping
        // of this very object.
        if dir == Dir::Write {
            UserSlice::new(ptr, n).reader().read_slice(chunk)?;
        }
        obj.with_window(bound, |base, cache| -> Result {
            // The pages of this chunk, mapped with the host's caching.
            let first = at & !(PAGE_SIZE as u64 - 1);
            let len = usize::try_from(at + n as u64 - first)
                .map_err(|_| EINVAL)?
                .next_multiple_of(PAGE_SIZE);
            let map = ShmMapping::with_cache(bound.hostmem, base + first, len, cache)?;
            let within = (at - first) as usize;
            match dir {
                Dir::Read => map.read(within, chunk),
                Dir::Write => map.write(within, chunk),
            }
        })??;
        if dir == Dir::Read {
            UserSlice::new(ptr, n).writer().write_slice(chunk)?;
        }
        done += n;
    }
    Ok(())
}
