// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_MADVISE`, with the semantics of upstream `i915_gem.c`.
//!
//! `madv` other than `I915_MADV_WILLNEED` or `I915_MADV_DONTNEED` is `EINVAL`, then the
//! handle (`ENOENT`). The advice is recorded unless the object was already purged; a
//! `DONTNEED` object that is not in the host-visible window (i915: has no pages) is purged
//! at once, one that is gets purged instead of evicted when the window needs room (i915: by
//! the shrinker). Purging releases the host object: later faults get `SIGBUS`, copies and
//! `SET_DOMAIN` `EFAULT`. `retained` tells whether the contents are still there.

use kernel::{
    dma_resv::Usage,
    drm::{
        self,
        gem::BaseObject, //
    },
    prelude::*,
    uapi,
};

use crate::{
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::{
        Madv,
        Object, //
    },
};

impl File {
    /// `DRM_IOCTL_I915_GEM_MADVISE`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an unknown advice, `ENOENT` for an unknown handle.
    pub(crate) fn gem_madvise(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_madvise,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let advice = match args.madv {
            uapi::I915_MADV_WILLNEED => Madv::WillNeed,
            uapi::I915_MADV_DONTNEED => Madv::DontNeed,
            _ => return Err(EINVAL),
        };
        let obj = Object::lookup_handle(file, args.handle)?;
        let busy = !obj.resv().test_signaled(Usage::Bookkeep);
        args.retained = u32::from(obj.madvise(bound, advice, busy));
        Ok(0)
    }
}
