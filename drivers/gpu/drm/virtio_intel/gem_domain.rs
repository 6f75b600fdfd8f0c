// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_SET_DOMAIN` and `DRM_IOCTL_I915_GEM_SW_FINISH`, with the semantics of
//! upstream `i915_gem_domain.c` for an integrated platform.
//!
//! SET_DOMAIN, in i915's order: a GPU domain in either mask is `EINVAL`; a write domain
//! with a read mask other than exactly that domain is `EINVAL`; no read domain succeeds at
//! once; then the handle (`ENOENT`). It waits, interruptibly, for the object's fences as
//! i915 does (a read domain for writers, a write domain for all): those include batches
//! still waiting in the guest for their dependencies, which the host does not know of yet.
//! The host's i915 then moves its object to the domain (waiting for the GPU, flushing or
//! invalidating CPU caches as i915 does): the call goes to the host as `IOCTL_SIMPLE` with
//! the object's `res_id`, and the host's errno comes back.
//!
//! SW_FINISH looks the handle up (`ENOENT`) and succeeds: i915 only flushes objects that
//! are scanned out, and this driver has no display.
//!
//! Both are answered for a Tiger Lake host only (`EOPNOTSUPP` elsewhere: this driver does not
//! profile other platforms yet, where i915's answers differ: `ENODEV` on discrete parts,
//! `EOPNOTSUPP` from graphics IP 12.70, `CACHED` by snooping on some parts without an LLC).
//! GET_CACHING reports the caching the host's i915 gave the object: LLC-cached
//! (`I915_CACHING_CACHED`) on a host GPU with an LLC, as i915 makes system-memory objects
//! there, uncached otherwise. SET_CACHING checks as i915 does (an unknown level is `EINVAL`,
//! `CACHED` without an LLC `ENODEV`, then the handle), and accepts the level the object
//! has; the protocol cannot change a host object's caching, so any other level is
//! `EOPNOTSUPP`.

use kernel::{
    dma_resv::Usage,
    drm::{
        self,
        gem::BaseObject, //
    },
    prelude::*,
    uapi,
};

use zerocopy_derive::Immutable;

use crate::{
    ccmd::simple,
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::Object,
    shared::Shared,
};

/// `struct drm_i915_gem_set_domain` as the host gets it: the object named by its res_id.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct SetDomainArg {
    handle: u32,
    read_domains: u32,
    write_domain: u32,
}

/// `I915_GEM_GPU_DOMAINS`: the domains only the GPU uses.
const GPU_DOMAINS: u32 = uapi::I915_GEM_DOMAIN_RENDER
    | uapi::I915_GEM_DOMAIN_SAMPLER
    | uapi::I915_GEM_DOMAIN_COMMAND
    | uapi::I915_GEM_DOMAIN_INSTRUCTION
    | uapi::I915_GEM_DOMAIN_VERTEX;

impl File {
    /// The `I915_CACHING_*` level of the host's objects.
    fn host_caching(&self, bound: &Bound<'_>) -> Result<u32> {
        let llc = self.param_value(bound, uapi::I915_PARAM_HAS_LLC as i32)?;
        Ok(if llc != 0 {
            uapi::I915_CACHING_CACHED
        } else {
            uapi::I915_CACHING_NONE
        })
    }

    /// `DRM_IOCTL_I915_GEM_GET_CACHING`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown handle, and the transport's errors.
    pub(crate) fn gem_get_caching(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_caching,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let shared: &Shared = dev;
        shared.identity.tigerlake_only()?;
        Object::lookup_handle(file, args.handle)?;
        args.caching = file.inner().host_caching(bound)?;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_SET_CACHING`.
    ///
    /// # Errors
    ///
    /// See the module documentation, and the transport's errors.
    pub(crate) fn gem_set_caching(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_caching,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let shared: &Shared = dev;
        shared.identity.tigerlake_only()?;
        let this = file.inner();
        let has = |param: u32| this.param_value(bound, param as i32).map(|v| v != 0);
        let level = match args.caching {
            uapi::I915_CACHING_NONE => uapi::I915_CACHING_NONE,
            uapi::I915_CACHING_CACHED => {
                if !has(uapi::I915_PARAM_HAS_LLC)? {
                    return Err(ENODEV);
                }
                uapi::I915_CACHING_CACHED
            }
            // Write-through where the GPU has it; uncached otherwise.
            uapi::I915_CACHING_DISPLAY => {
                if has(uapi::I915_PARAM_HAS_WT)? {
                    uapi::I915_CACHING_DISPLAY
                } else {
                    uapi::I915_CACHING_NONE
                }
            }
            _ => return Err(EINVAL),
        };
        Object::lookup_handle(file, args.handle)?;
        if level != this.host_caching(bound)? {
            return Err(EOPNOTSUPP);
        }
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_SET_DOMAIN`.
    ///
    /// # Errors
    ///
    /// See the module documentation; the host's errno, and the transport's errors.
    pub(crate) fn gem_set_domain(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_set_domain,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let (read, write) = (args.read_domains, args.write_domain);
        if (read | write) & GPU_DOMAINS != 0 {
            return Err(EINVAL);
        }
        if write != 0 && read != write {
            return Err(EINVAL);
        }
        if read == 0 {
            return Ok(0);
        }
        let obj = Object::lookup_handle(file, args.handle)?;
        obj.resv()
            .wait_timeout(Usage::rw(write != 0), true, kernel::time::Jiffies::MAX)?;
        // i915 cannot get the pages of a purged object.
        if obj.is_purged() {
            return Err(EFAULT);
        }
        let arg = SetDomainArg {
            handle: obj.res_id().to_le(),
            read_domains: read.to_le(),
            write_domain: write.to_le(),
        };
        file.inner()
            .object_ioctl(bound, &obj, simple::SET_DOMAIN, arg)?;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_SW_FINISH`.
    ///
    /// # Errors
    ///
    /// `ENOENT` for an unknown handle.
    pub(crate) fn gem_sw_finish(
        _dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_sw_finish,
        file: &drm::File<File>,
    ) -> Result<u32> {
        Object::lookup_handle(file, args.handle)?;
        Ok(0)
    }
}
