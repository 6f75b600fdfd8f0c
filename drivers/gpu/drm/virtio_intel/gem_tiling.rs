// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_SET_TILING`, `DRM_IOCTL_I915_GEM_GET_TILING` and
//! `DRM_IOCTL_I915_GEM_GET_APERTURE`, answered by the host's i915.
//!
//! The handle is looked up here (`ENOENT`); the host's i915 then runs the ioctl on its own
//! object, named by the object's res_id (`IOCTL_SIMPLE`), with all of i915's checks (fence
//! registers, tiling modes, strides): its errno comes back as is, and on success the fields
//! it writes back (`stride` and the swizzle modes) are copied out, with the handle the
//! caller gave. The aperture is the host GGTT's: its size, and what of it is not pinned.

use kernel::{
    drm::{
        self,
        gem::BaseObject, //
    },
    prelude::*,
    uapi,
};
use zerocopy_derive::Immutable;

use crate::{
    ccmd::{
        simple,
        IoctlSimple, //
    },
    driver::{
        Bound,
        I915Device, //
    },
    file::{
        host_errno,
        File, //
    },
    gem::Object,
};

/// `struct drm_i915_gem_set_tiling` and `struct drm_i915_gem_get_tiling` (four words, the
/// first the handle).
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct TilingArg([u32; 4]);

/// `struct drm_i915_gem_get_aperture`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct ApertureArg {
    aper_size: u64,
    aper_available_size: u64,
}

kernel::static_assert!(
    core::mem::size_of::<TilingArg>() == core::mem::size_of::<uapi::drm_i915_gem_set_tiling>()
);
kernel::static_assert!(
    core::mem::size_of::<TilingArg>() == core::mem::size_of::<uapi::drm_i915_gem_get_tiling>()
);
kernel::static_assert!(
    core::mem::size_of::<ApertureArg>() == core::mem::size_of::<uapi::drm_i915_gem_get_aperture>()
);

impl File {
    /// Runs tiling ioctl `cmd` on the host for the object of `handle`, with the words after
    /// the handle; returns those words as the host wrote them back.
    fn tiling(
        &self,
        bound: &Bound<'_>,
        file: &drm::File<File>,
        cmd: u32,
        handle: u32,
        words: [u32; 3],
    ) -> Result<[u32; 3]> {
        let obj = Object::lookup_handle(file, handle)?;
        let arg = TilingArg([
            obj.res_id().to_le(),
            words[0].to_le(),
            words[1].to_le(),
            words[2].to_le(),
        ]);
        let out = self.object_ioctl(bound, &obj, cmd, arg)?;
        Ok([
            u32::from_le(out.0[1]),
            u32::from_le(out.0[2]),
            u32::from_le(out.0[3]),
        ])
    }

    /// `DRM_IOCTL_I915_GEM_SET_TILING`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown handle, the host i915's errno, and the transport's errors.
    pub(crate) fn gem_set_tiling(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_set_tiling,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let words = [args.tiling_mode, args.stride, args.swizzle_mode];
        let [tiling_mode, stride, swizzle_mode] =
            file.inner()
                .tiling(bound, file, simple::SET_TILING, args.handle, words)?;
        args.tiling_mode = tiling_mode;
        args.stride = stride;
        args.swizzle_mode = swizzle_mode;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_GET_TILING`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown handle, the host i915's errno, and the transport's errors.
    pub(crate) fn gem_get_tiling(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_get_tiling,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let words = [args.tiling_mode, args.swizzle_mode, args.phys_swizzle_mode];
        let [tiling_mode, swizzle_mode, phys_swizzle_mode] =
            file.inner()
                .tiling(bound, file, simple::GET_TILING, args.handle, words)?;
        args.tiling_mode = tiling_mode;
        args.swizzle_mode = swizzle_mode;
        args.phys_swizzle_mode = phys_swizzle_mode;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_GET_APERTURE`: the host GGTT's size and unpinned part, in bytes.
    ///
    /// # Errors
    ///
    /// The host i915's errno, and the transport's errors.
    pub(crate) fn gem_get_aperture(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_get_aperture,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let arg = ApertureArg {
            aper_size: 0,
            aper_available_size: 0,
        };
        let cmd = simple::GET_APERTURE;
        let out = file
            .inner()
            .with_ctx(bound, |ctx| ctx.call(bound, &IoctlSimple { cmd, arg }))?
            .map_err(host_errno)?;
        args.aper_size = u64::from_le(out.aper_size);
        args.aper_available_size = u64::from_le(out.aper_available_size);
        Ok(0)
    }
}
