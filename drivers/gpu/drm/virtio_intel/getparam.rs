// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GETPARAM`, with the semantics of upstream `i915_getparam.c`.
//!
//! Every parameter falls in one class ([`Param::classify`]):
//!
//! - unknown to i915: `-EINVAL` before the user's pointer is touched;
//! - the old UMS/DRI parameters: `-ENODEV`;
//! - the PCI identity (`CHIPSET_ID`, `REVISION`): from the DRM capset, no host round trip;
//! - parameters that describe the kernel's own uAPI (GEM, execbuffer flags and fences,
//!   mmap versions, scheduler, perf, PXP, ...): answered by this driver from what it
//!   implements *now*, never from the host kernel, whose uAPI the guest does not see;
//! - hardware facts (engines, topology totals, frequencies, caches, ...): forwarded to the
//!   host's i915 once and cached for the life of the binding;
//! - state that can change (`HAS_GPU_RESET`, `HUC_STATUS`): forwarded on every call.
//!
//! Exactly one `int` is written to `value`, after the answer is known.

use core::mem::size_of;
use kernel::{
    drm,
    prelude::*,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};
use zerocopy_derive::{
    Immutable,
    KnownLayout, //
};

use crate::{
    cache::is_lasting,
    ccmd::{
        Getparam,
        HostResult, //
    },
    driver::{
        Bound,
        I915Device, //
    },
    file::{
        host_errno,
        File, //
    },
};

/// How this driver answers one `I915_PARAM_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    /// Not an i915 parameter: `-EINVAL`.
    Unknown,
    /// An old UMS/DRI parameter: `-ENODEV`.
    Ums,
    /// `I915_PARAM_CHIPSET_ID`: the PCI device id of the capset.
    ChipsetId,
    /// `I915_PARAM_REVISION`: the PCI revision of the capset.
    Revision,
    /// Answered by this driver: the value, or an error.
    Local(Result<i32>),
    /// Asked of the host; `cache` when the answer cannot change while the device is bound.
    Host {
        /// Whether the answer may be cached.
        cache: bool,
    },
}

/// Largest parameter number i915 knows (`I915_PARAM_HAS_CONTEXT_FREQ_HINT`).
pub(crate) const MAX_PARAM: u32 = uapi::I915_PARAM_HAS_CONTEXT_FREQ_HINT;

impl Param {
    /// Classifies `param` as this driver answers it.
    pub(crate) fn classify(param: i32) -> Self {
        let Ok(p) = u32::try_from(param) else {
            return Self::Unknown;
        };
        const NO: Param = Param::Local(Ok(0));
        const HOST: Param = Param::Host { cache: true };
        match p {
            uapi::I915_PARAM_IRQ_ACTIVE
            | uapi::I915_PARAM_ALLOW_BATCHBUFFER
            | uapi::I915_PARAM_LAST_DISPATCH
            | uapi::I915_PARAM_HAS_EXEC_CONSTANTS => Self::Ums,
            uapi::I915_PARAM_CHIPSET_ID => Self::ChipsetId,
            uapi::I915_PARAM_REVISION => Self::Revision,

            // The kernel's own uAPI, as far as this driver implements it. GEM objects and
            // `GEM_MMAP_OFFSET` (mmap version 4: every mode through the fake offset, partial
            // and offset mappings) exist.
            uapi::I915_PARAM_HAS_GEM => Self::Local(Ok(1)),
            uapi::I915_PARAM_MMAP_GTT_VERSION => Self::Local(Ok(4)),
            // The legacy `GEM_MMAP` with its `I915_MMAP_WC` flag.
            uapi::I915_PARAM_MMAP_VERSION => Self::Local(Ok(1)),
            // Execbuffer (`crate::execbuf`): softpin, no-reloc, handle LUT, batch first,
            // pinned batches, async objects and SOL reset are flags the host's i915 honours;
            // `GEM_WAIT` takes a timeout. The rest are i915's "always true" answers for
            // behaviour every i915 has.
            uapi::I915_PARAM_HAS_EXECBUF2
            | uapi::I915_PARAM_HAS_RELAXED_FENCING
            | uapi::I915_PARAM_HAS_COHERENT_RINGS
            | uapi::I915_PARAM_HAS_RELAXED_DELTA
            | uapi::I915_PARAM_HAS_GEN7_SOL_RESET
            | uapi::I915_PARAM_HAS_WAIT_TIMEOUT
            | uapi::I915_PARAM_HAS_PINNED_BATCHES
            | uapi::I915_PARAM_HAS_EXEC_NO_RELOC
            | uapi::I915_PARAM_HAS_EXEC_HANDLE_LUT
            | uapi::I915_PARAM_HAS_EXEC_SOFTPIN
            | uapi::I915_PARAM_HAS_EXEC_ASYNC
            | uapi::I915_PARAM_HAS_EXEC_BATCH_FIRST => Self::Local(Ok(1)),
            // `EXEC_OBJECT_CAPTURE` is accepted and goes to the host's i915 with the object,
            // which puts the object in its own error state when a batch hangs (i915 without
            // `CONFIG_DRM_I915_CAPTURE_ERROR` accepts it too, and still answers 1).
            uapi::I915_PARAM_HAS_EXEC_CAPTURE => Self::Local(Ok(1)),
            // Execbuffer fences (`crate::execbuf`, `crate::exec_queue`): sync-file in-, submit-
            // and out-fences, syncobj arrays and the timeline-fence extension.
            uapi::I915_PARAM_HAS_EXEC_FENCE
            | uapi::I915_PARAM_HAS_EXEC_FENCE_ARRAY
            | uapi::I915_PARAM_HAS_EXEC_SUBMIT_FENCE
            | uapi::I915_PARAM_HAS_EXEC_TIMELINE_FENCES => Self::Local(Ok(1)),
            // Not yet: no display (overlay, page flips), no scheduler, no perf, no PXP, no
            // userptr. Each answer changes when the feature lands.
            uapi::I915_PARAM_HAS_PAGEFLIPPING
            | uapi::I915_PARAM_HAS_PRIME_VMAP_FLUSH
            | uapi::I915_PARAM_HAS_COHERENT_PHYS_GTT
            | uapi::I915_PARAM_HAS_USERPTR_PROBE
            | uapi::I915_PARAM_MMAP_GTT_COHERENT
            | uapi::I915_PARAM_HAS_OVERLAY
            | uapi::I915_PARAM_HAS_SECURE_BATCHES
            | uapi::I915_PARAM_HAS_SCHEDULER
            | uapi::I915_PARAM_HAS_SEMAPHORES
            | uapi::I915_PARAM_PERF_REVISION
            | uapi::I915_PARAM_HAS_RESOURCE_STREAMER => NO,
            // i915 without PXP: `intel_pxp_get_readiness_status()` is -ENODEV.
            uapi::I915_PARAM_PXP_STATUS => Self::Local(Err(ENODEV)),
            // i915 without GuC submission writes -EINVAL as the value and succeeds: no
            // context accepts the low-latency hint here.
            uapi::I915_PARAM_HAS_CONTEXT_FREQ_HINT => Self::Local(Ok(EINVAL.to_errno())),

            // Hardware facts of the host GPU.
            uapi::I915_PARAM_NUM_FENCES_AVAIL
            | uapi::I915_PARAM_HAS_BSD
            | uapi::I915_PARAM_HAS_BLT
            | uapi::I915_PARAM_HAS_VEBOX
            | uapi::I915_PARAM_HAS_BSD2
            | uapi::I915_PARAM_HAS_LLC
            | uapi::I915_PARAM_HAS_WT
            | uapi::I915_PARAM_HAS_ALIASING_PPGTT
            | uapi::I915_PARAM_CMD_PARSER_VERSION
            | uapi::I915_PARAM_SUBSLICE_TOTAL
            | uapi::I915_PARAM_EU_TOTAL
            | uapi::I915_PARAM_HAS_POOLED_EU
            | uapi::I915_PARAM_MIN_EU_IN_POOL
            | uapi::I915_PARAM_HAS_CONTEXT_ISOLATION
            | uapi::I915_PARAM_SLICE_MASK
            | uapi::I915_PARAM_SUBSLICE_MASK
            | uapi::I915_PARAM_CS_TIMESTAMP_FREQUENCY
            | uapi::I915_PARAM_OA_TIMESTAMP_FREQUENCY => HOST,
            // State of the host: hang detection can be switched off, the HuC loads late.
            uapi::I915_PARAM_HAS_GPU_RESET | uapi::I915_PARAM_HUC_STATUS => {
                Self::Host { cache: false }
            }
            _ => Self::Unknown,
        }
    }
}

/// `struct drm_i915_getparam` of a 32-bit process: the pointer is 4 bytes
/// (`struct drm_i915_getparam32` of `i915_ioc32.c`).
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Getparam32 {
    param: i32,
    value: u32,
}

/// `struct drm_i915_getparam` of a 64-bit kernel.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Getparam64 {
    param: i32,
    pad: u32,
    value: u64,
}

kernel::static_assert!(size_of::<Getparam32>() == 8);
kernel::static_assert!(size_of::<Getparam64>() == size_of::<uapi::drm_i915_getparam>());
kernel::static_assert!(
    core::mem::offset_of!(Getparam64, value)
        == core::mem::offset_of!(uapi::drm_i915_getparam, value)
);

/// `DRM_IOCTL_I915_GETPARAM` from a 32-bit process: widens the `value` pointer as
/// `compat_ptr()` does, then the native handler runs.
pub(crate) fn getparam_compat(compat: &[u8], native: &mut [u8]) -> Result {
    let g = Getparam32::read_from_bytes(compat).map_err(|_| EINVAL)?;
    let wide = Getparam64 {
        param: g.param,
        pad: 0,
        value: u64::from(g.value),
    };
    native
        .get_mut(..size_of::<Getparam64>())
        .ok_or(EINVAL)?
        .copy_from_slice(wide.as_bytes());
    Ok(())
}

/// The i915 ioctls whose struct differs for 32-bit processes (`i915_ioc32.c`).
pub(crate) const COMPAT_IOCTLS: &[drm::ioctl::CompatIoctl] = &[drm::ioctl::CompatIoctl {
    cmd: drm::ioctl::IOWR::<Getparam32>(uapi::DRM_COMMAND_BASE + uapi::DRM_I915_GETPARAM),
    translate: getparam_compat,
    write_back: None,
}];

impl File {
    /// `DRM_IOCTL_I915_GETPARAM`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an unknown parameter, `ENODEV` for the UMS ones and where i915 says so,
    /// the host i915's errno for a forwarded parameter, `EFAULT` when `value` cannot be
    /// written, and the transport's errors (`EIO`, `ETIMEDOUT`, `ERESTARTSYS`, `ENODEV`
    /// after unbind).
    pub(crate) fn getparam(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        gp: &mut uapi::drm_i915_getparam,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let value = file.inner().param_value(bound, gp.param)?;
        let mut w = UserSlice::new(
            UserPtr::from_addr(gp.value as usize),
            core::mem::size_of::<i32>(),
        )
        .writer();
        w.write(&value)?;
        Ok(0)
    }

    /// The value of `param` for this caller.
    pub(crate) fn param_value(&self, bound: &Bound<'_>, param: i32) -> Result<i32> {
        let shared = self.shared();
        match Param::classify(param) {
            Param::Unknown => Err(EINVAL),
            Param::Ums => Err(ENODEV),
            Param::ChipsetId => Ok(i32::from(shared.identity.device_id)),
            Param::Revision => Ok(i32::from(shared.identity.revision)),
            Param::Local(r) => r,
            Param::Host { cache } => {
                let slot = shared.cache.param(param);
                let answer: HostResult<i32> = match slot.and_then(|s| s.copy()) {
                    Some(a) if cache => a,
                    _ => {
                        let a = self.with_ctx(bound, |c| c.call(bound, &Getparam { param }))?;
                        // Values and the errors of a missing feature cannot change; other
                        // errors (memory, a busy host) may pass.
                        let lasting = a.is_ok() || a.is_err_and(|e| is_lasting(host_errno(e)));
                        if let (true, true, Some(s)) = (cache, lasting, slot) {
                            // A racing caller may have filled it: both asked the same host.
                            let _ = s.populate(a);
                        }
                        a
                    }
                };
                answer.map_err(host_errno)
            }
        }
    }
}

#[kunit_tests(virtio_intel_getparam)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_i915() {
        assert_eq!(Param::classify(0), Param::Unknown);
        assert_eq!(Param::classify(-1), Param::Unknown);
        assert_eq!(Param::classify(MAX_PARAM as i32 + 1), Param::Unknown);
        assert_eq!(Param::classify(1), Param::Ums);
        assert_eq!(Param::classify(14), Param::Ums);
        assert_eq!(Param::classify(4), Param::ChipsetId);
        assert_eq!(Param::classify(32), Param::Revision);
        // Feature bits of the kernel's uAPI say what this driver does, not the host.
        assert_eq!(Param::classify(44), Param::Local(Ok(1)));
        assert_eq!(Param::classify(40), Param::Local(Ok(4)));
        assert_eq!(Param::classify(5), Param::Local(Ok(1)));
        assert_eq!(Param::classify(58), Param::Local(Err(ENODEV)));
        assert_eq!(Param::classify(59), Param::Local(Ok(-22)));
        assert_eq!(Param::classify(51), Param::Host { cache: true });
        assert_eq!(Param::classify(35), Param::Host { cache: false });
    }

    #[test]
    fn compat_widens_the_pointer() -> Result {
        let mut compat = [0u8; 8];
        compat[..4].copy_from_slice(&4i32.to_le_bytes());
        compat[4..].copy_from_slice(&0xffff_f000u32.to_le_bytes());
        let mut native = [0xffu8; 16];
        getparam_compat(&compat, &mut native)?;
        assert_eq!(&native[..4], &4i32.to_le_bytes());
        assert_eq!(&native[4..8], &[0u8; 4]);
        assert_eq!(&native[8..], &0xffff_f000u64.to_le_bytes());
        assert!(getparam_compat(&compat[..4], &mut native).is_err());
        assert!(getparam_compat(&compat, &mut native[..8]).is_err());
        Ok(())
    }

    #[test]
    fn every_i915_param_has_a_class() {
        for p in 1..=MAX_PARAM as i32 {
            assert_ne!(Param::classify(p), Param::Unknown, "param {}", p);
        }
    }
}
