// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_MMAP_OFFSET` (and `GEM_MMAP_GTT`, the same ioctl number with a
//! shorter struct), with the semantics of upstream `i915_gem_mman.c` for an integrated
//! platform.
//!
//! In i915's order: any extension is refused (`EFAULT` if unreadable, else `EINVAL`); the
//! mode: `GTT` (the aperture), `WB`, and `WC`/`UC` only with PAT (`ENODEV` without), `FIXED`
//! passes this check, anything else is `EINVAL`; then the handle (`ENOENT`); then `FIXED`,
//! which only discrete parts take, is `ENODEV`. `pad` and `offset` are ignored, as i915
//! must.
//!
//! `DRM_IOCTL_I915_GEM_MMAP` (the legacy CPU mmap), in i915's order: `EOPNOTSUPP` on graphics
//! versions after 12.0 (this driver profiles only Tiger Lake, 12.0, so any other host GPU
//! gets it); flags other than
//! `I915_MMAP_WC` are `EINVAL`, `WC` without PAT `ENODEV`, then the handle (`ENOENT`), then a
//! range beyond the object `EINVAL`; the object is then mapped into the caller as an `mmap()`
//! of the file at the object's fake offset plus `offset` would (an unaligned `offset` is
//! `EINVAL`, as `vm_mmap()` makes it in i915).
//!
//! Unlike i915, all modes of an object share one fake offset: the host maps each blob with
//! one caching, which its first mode other than `WB` (the host's default) picks
//! (`GEM_SET_MMAP_MODE`, sent before the object is first mapped); the fault handler maps
//! pages with the caching the host reports.

use kernel::{
    drm::{
        self,
        gem::BaseObject, //
    },
    mm::virt::PfnCache,
    prelude::*,
    uapi,
};

use crate::{
    ccmd::GemSetMmapMode,
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::Object,
    shared::Shared,
    uext,
};

impl File {
    /// `DRM_IOCTL_I915_GEM_MMAP`: maps the object into the caller; writes the address to
    /// `addr_ptr`.
    ///
    /// # Errors
    ///
    /// See the module documentation, and those of `mmap()`.
    pub(crate) fn gem_mmap(
        dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_mmap,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let shared: &Shared = dev;
        shared.identity.tigerlake_only()?;
        if args.flags & !u64::from(uapi::I915_MMAP_WC) != 0 {
            return Err(EINVAL);
        }
        if args.flags != 0 && !PfnCache::WriteCombine.is_supported() {
            return Err(ENODEV);
        }
        let obj = Object::lookup_handle(file, args.handle)?;
        let end = args.offset.checked_add(args.size).ok_or(EINVAL)?;
        if end > obj.size() as u64 {
            return Err(EINVAL);
        }
        let len = usize::try_from(args.size).map_err(|_| EINVAL)?;
        let fake = obj.create_mmap_offset()?;
        let at = fake.checked_add(args.offset).ok_or(EINVAL)?;
        args.addr_ptr = file.mmap_into_current(len, at)? as u64;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_MMAP_OFFSET`: the fake offset to `mmap` the object at.
    ///
    /// # Errors
    ///
    /// See the module documentation; `EIO` when the host refuses the mode, and the
    /// transport's errors.
    pub(crate) fn gem_mmap_offset(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_mmap_offset,
        file: &drm::File<File>,
    ) -> Result<u32> {
        uext::walk(args.extensions, |_, _| Err(EINVAL))?;
        let mode = args.flags;
        let needs_pat = match u32::try_from(mode) {
            Ok(uapi::I915_MMAP_OFFSET_GTT | uapi::I915_MMAP_OFFSET_WB) => false,
            Ok(uapi::I915_MMAP_OFFSET_WC | uapi::I915_MMAP_OFFSET_UC) => true,
            Ok(uapi::I915_MMAP_OFFSET_FIXED) => false,
            _ => return Err(EINVAL),
        };
        if needs_pat && !PfnCache::WriteCombine.is_supported() {
            return Err(ENODEV);
        }
        let obj = Object::lookup_handle(file, args.handle)?;
        if mode == u64::from(uapi::I915_MMAP_OFFSET_FIXED) {
            return Err(ENODEV);
        }
        let this = file.inner();
        // `mode` is one of the five above.
        let flags = mode as u32;
        // Write-back is what the host maps an object with unless told otherwise: only other
        // modes are sent.
        obj.request_mode(bound, flags, flags == uapi::I915_MMAP_OFFSET_WB, |attach| {
            this.with_ctx(bound, |ctx| {
                attach(ctx)?;
                ctx.call(
                    bound,
                    &GemSetMmapMode {
                        res_id: obj.res_id(),
                        flags,
                    },
                )
            })
        })?;
        args.offset = obj.create_mmap_offset()?;
        Ok(0)
    }
}
