// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_GEM_CREATE` and `DRM_IOCTL_I915_GEM_CREATE_EXT`, with the semantics of
//! upstream `i915_gem_create.c` for an integrated platform (system memory only).
//!
//! The size is rounded up to the host's blob granularity (at least a page): 0 after
//! rounding is `EINVAL`, more than `INT_MAX` pages `E2BIG`. The rounded size is written
//! back with the handle. `GEM_CREATE_EXT` takes the flag `NEEDS_CPU_ACCESS` and the
//! extensions `MEMORY_REGIONS` (placements checked against `QUERY_MEMORY_REGIONS`: none, too
//! many, a pad, an unknown or a repeated region, or a second list are `EINVAL`),
//! `PROTECTED_CONTENT` (`ENODEV`: no PXP) and `SET_PAT` (`ENODEV`: this driver does not pass
//! PAT indices). `NEEDS_CPU_ACCESS` needs two placements, one of them system memory.
//!
//! `GEM_USERPTR` is checked as i915 checks it (flags, size, alignment, then the address
//! range) and then refused with `ENODEV`, as i915 refuses it without MMU notifiers: the
//! host's GPU cannot use guest memory (the protocol imports only dma-buf resources).
//!
//! The object is built in this order, each step undone by dropping it: resource id, GEM
//! object, `GEM_CREATE(_EXT)` under a fresh `blob_id` of the file's host context,
//! `RESOURCE_CREATE_BLOB` (mappable, shareable), and the handle last, so userspace never sees
//! a handle of a half-made object. The two host commands are queued together and not
//! waited for: as i915 gets an object's pages only at its first use, the host's answer is
//! looked at by the first command about the object, which fails with `EIO` if the host
//! refused (see [`crate::gem`]).

use core::{
    mem::size_of,
    sync::atomic::Ordering, //
};
use kernel::{
    drm::{
        self,
        gem::BaseObject, //
    },
    page::{
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::aref::ARef,
    uapi,
};
use zerocopy_derive::{
    Immutable,
    KnownLayout, //
};

use crate::{
    ccmd::{
        GemCreate,
        GemCreateExt, //
    },
    context::HostContext,
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    gem::{
        BoArgs,
        MapSlot,
        Object, //
    },
    uext,
};

/// `I915_GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS`.
const NEEDS_CPU_ACCESS: u32 = uapi::I915_GEM_CREATE_EXT_FLAG_NEEDS_CPU_ACCESS;
/// `I915_MEMORY_CLASS_SYSTEM`.
const CLASS_SYSTEM: u16 = uapi::drm_i915_gem_memory_class_I915_MEMORY_CLASS_SYSTEM as u16;
/// Most placements i915 takes (`INTEL_REGION_UNKNOWN`: its region table's size).
const MAX_PLACEMENTS: u32 = 7;

/// The size of an object asked for with `size` bytes, for blobs of `align` (a power of
/// two, at least a page).
///
/// # Errors
///
/// `EINVAL` when it rounds to 0, `E2BIG` beyond `INT_MAX` pages or the address space.
pub(crate) fn object_size(size: u64, align: u64) -> Result<u64> {
    let rounded = size.checked_add(align - 1).map_or(0, |s| s & !(align - 1));
    if rounded == 0 {
        return Err(EINVAL);
    }
    if rounded >> PAGE_SHIFT > i32::MAX as u64 || usize::try_from(rounded).is_err() {
        return Err(E2BIG);
    }
    Ok(rounded)
}

/// `struct drm_i915_gem_create_ext_memory_regions`.
#[repr(C)]
#[derive(Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct MemoryRegionsExt {
    next_extension: u64,
    name: u32,
    flags: u32,
    rsvd: [u32; 4],
    pad: u32,
    num_regions: u32,
    regions: u64,
}

/// `struct drm_i915_gem_memory_class_instance`.
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
struct ClassInstance {
    memory_class: u16,
    memory_instance: u16,
}

/// `struct drm_i915_gem_create_ext_protected_content` (with its tail padding).
#[repr(C)]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
struct ProtectedContentExt {
    base: [u64; 4],
    flags: u32,
    pad: u32,
}

kernel::static_assert!(
    size_of::<MemoryRegionsExt>() == size_of::<uapi::drm_i915_gem_create_ext_memory_regions>()
);
kernel::static_assert!(
    size_of::<ClassInstance>() == size_of::<uapi::drm_i915_gem_memory_class_instance>()
);
kernel::static_assert!(
    size_of::<ProtectedContentExt>()
        == size_of::<uapi::drm_i915_gem_create_ext_protected_content>()
);

/// What `GEM_CREATE_EXT`'s extensions asked for.
#[derive(Default)]
struct CreateExt {
    /// `MEMORY_REGIONS`: the placements, in order.
    placements: Option<KVec<(u16, u16)>>,
}

/// `I915_USERPTR_READ_ONLY | I915_USERPTR_PROBE | I915_USERPTR_UNSYNCHRONIZED`.
const USERPTR_FLAGS: u32 =
    uapi::I915_USERPTR_READ_ONLY | uapi::I915_USERPTR_PROBE | uapi::I915_USERPTR_UNSYNCHRONIZED;

impl File {
    /// `DRM_IOCTL_I915_GEM_USERPTR`: refused after i915's argument checks.
    ///
    /// # Errors
    ///
    /// `EINVAL` for unknown flags, a size of 0 or an unaligned address or size, `E2BIG`
    /// beyond `INT_MAX` pages, `EFAULT` for a range that wraps, then `ENODEV`.
    pub(crate) fn gem_userptr(
        _dev: &I915Device<drm::Registered>,
        _bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_userptr,
        _file: &drm::File<File>,
    ) -> Result<u32> {
        if args.flags & !USERPTR_FLAGS != 0 {
            return Err(EINVAL);
        }
        if args.user_size >> PAGE_SHIFT > i32::MAX as u64 {
            return Err(E2BIG);
        }
        if args.user_size == 0 || (args.user_ptr | args.user_size) & (PAGE_SIZE as u64 - 1) != 0 {
            return Err(EINVAL);
        }
        args.user_ptr.checked_add(args.user_size).ok_or(EFAULT)?;
        Err(ENODEV)
    }

    /// `DRM_IOCTL_I915_GEM_CREATE`: an object of at least `size` bytes in system memory.
    ///
    /// # Errors
    ///
    /// See the module documentation; `ENOSPC` when resource ids run out, and the transport's
    /// errors while queueing.
    pub(crate) fn gem_create(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_create,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let this = file.inner();
        let size = object_size(args.size, this.shared().blob_alignment)?;
        let handle = this.create_object(dev, bound, file, size, |ctx, blob_id, then| {
            ctx.post_then(bound, &GemCreate { size, blob_id }, then)
        })?;
        args.size = size;
        args.handle = handle;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_GEM_CREATE_EXT`.
    ///
    /// # Errors
    ///
    /// As [`File::gem_create`], and those of the flags and extensions (module
    /// documentation), `EFAULT` for an extension that cannot be read.
    pub(crate) fn gem_create_ext(
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        args: &mut uapi::drm_i915_gem_create_ext,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let this = file.inner();
        if args.flags & !NEEDS_CPU_ACCESS != 0 {
            return Err(EINVAL);
        }
        let mut ext = CreateExt::default();
        uext::walk(args.extensions, |name, at| match name {
            uapi::I915_GEM_CREATE_EXT_MEMORY_REGIONS => this.set_placements(bound, at, &mut ext),
            uapi::I915_GEM_CREATE_EXT_PROTECTED_CONTENT => {
                let p: ProtectedContentExt = uext::read_user(at, 0)?;
                if p.flags != 0 {
                    return Err(EINVAL);
                }
                // No PXP session can be set up through this driver.
                Err(ENODEV)
            }
            // i915 takes it from graphics IP 12.70 on; this driver passes no PAT index to
            // the host on any platform.
            uapi::I915_GEM_CREATE_EXT_SET_PAT => Err(ENODEV),
            _ => Err(EINVAL),
        })?;
        let placements = ext.placements.as_deref().unwrap_or(&[(CLASS_SYSTEM, 0)]);
        if args.flags & NEEDS_CPU_ACCESS != 0
            && (placements.len() == 1 || !placements.iter().any(|p| p.0 == CLASS_SYSTEM))
        {
            return Err(EINVAL);
        }
        let size = object_size(args.size, this.shared().blob_alignment)?;
        let flags = args.flags;
        let handle = this.create_object(dev, bound, file, size, |ctx, blob_id, then| match &ext
            .placements
        {
            None if flags == 0 => ctx.post_then(bound, &GemCreate { size, blob_id }, then),
            _ => ctx.post_then(
                bound,
                &GemCreateExt {
                    size,
                    blob_id,
                    flags,
                    ext: serialize_placements(ext.placements.as_deref())?,
                },
                then,
            ),
        })?;
        args.size = size;
        args.handle = handle;
        Ok(0)
    }

    /// The `MEMORY_REGIONS` extension at user address `at` (`set_placements`).
    fn set_placements(&self, bound: &Bound<'_>, at: u64, ext: &mut CreateExt) -> Result {
        let r: MemoryRegionsExt = uext::read_user(at, 0)?;
        if r.pad != 0 || r.num_regions == 0 || r.num_regions > MAX_PLACEMENTS {
            return Err(EINVAL);
        }
        let known = self.memory_regions(bound)?;
        let mut placements = KVec::with_capacity(r.num_regions as usize, GFP_KERNEL)?;
        let item = size_of::<ClassInstance>() as u64;
        for i in 0..u64::from(r.num_regions) {
            let p: ClassInstance = uext::read_user(r.regions, i * item)?;
            let region = (p.memory_class, p.memory_instance);
            if !known.contains(&region) || placements.contains(&region) {
                return Err(EINVAL);
            }
            placements.push(region, GFP_KERNEL)?;
        }
        if ext.placements.is_some() {
            return Err(EINVAL);
        }
        ext.placements = Some(placements);
        Ok(())
    }

    /// Creates an object of `size` bytes (page- and blob-aligned) whose host object `send`
    /// creates under the `blob_id` it is given (calling its last argument, which queues the
    /// `RESOURCE_CREATE_BLOB`, once the ccmd is queued), and returns its handle in `file`.
    fn create_object(
        &self,
        dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        file: &drm::File<File>,
        size: u64,
        send: impl FnOnce(&HostContext, u32, &mut dyn FnMut()) -> Result,
    ) -> Result<u32> {
        let shared = self.shared();
        self.with_ctx(bound, |ctx| {
            let res_id = shared.new_res_id()?;
            let slot = match MapSlot::new(ctx, res_id, size) {
                Ok(s) => s,
                Err(e) => {
                    shared.release_res_id(res_id);
                    return Err(e);
                }
            };
            let args = BoArgs {
                dev: ARef::from(dev.as_ioctl()),
                slot,
            };
            // `object_size` checked that the size fits.
            let obj = match Object::new_private(dev, size as usize, args) {
                Ok(o) => o,
                Err(e) => {
                    shared.release_res_id(res_id);
                    return Err(e);
                }
            };
            shared.stats.objects.fetch_add(1, Ordering::Relaxed);
            shared
                .stats
                .object_bytes
                .fetch_add(size as i64, Ordering::Relaxed);
            // From here on, dropping `obj` releases the id and what the host made.
            let blob_id = ctx.new_blob_id();
            // The blob follows the ccmd on the queue, and neither is waited for: the host runs
            // them in order, and refuses the blob if the ccmd failed.
            let mut blob = Err(EIO);
            send(ctx, blob_id, &mut || blob = obj.create_blob(bound, blob_id))?;
            blob?;
            // The fake offset exists before anyone can map the object (through the handle or
            // a dma-buf), so that evictions always know which mappings to zap.
            obj.set_fake_offset(obj.create_mmap_offset()?);
            obj.create_handle(file)
        })
    }
}

/// The `GEM_CREATE_EXT` payload for `placements`: one `MEMORY_REGIONS` extension followed by
/// its regions, pointers zeroed (the host points them at its copy).
fn serialize_placements(placements: Option<&[(u16, u16)]>) -> Result<KVec<u8>> {
    let mut out = KVec::new();
    let Some(p) = placements else {
        return Ok(out);
    };
    let head = MemoryRegionsExt {
        name: uapi::I915_GEM_CREATE_EXT_MEMORY_REGIONS.to_le(),
        num_regions: u32::try_from(p.len()).map_err(|_| EINVAL)?.to_le(),
        ..Default::default()
    };
    out.extend_from_slice(head.as_bytes(), GFP_KERNEL)?;
    for &(memory_class, memory_instance) in p {
        let r = ClassInstance {
            memory_class: memory_class.to_le(),
            memory_instance: memory_instance.to_le(),
        };
        out.extend_from_slice(r.as_bytes(), GFP_KERNEL)?;
    }
    Ok(out)
}

#[kunit_tests(virtio_intel_gem_create)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_like_i915() {
        assert_eq!(object_size(1, 4096), Ok(4096));
        assert_eq!(object_size(4096, 4096), Ok(4096));
        assert_eq!(object_size(4097, 0x10000), Ok(0x10000));
        assert_eq!(object_size(0, 4096), Err(EINVAL));
        assert_eq!(object_size(u64::MAX, 4096), Err(EINVAL));
        assert_eq!(object_size(u64::MAX - 8192, 4096), Err(E2BIG));
        assert_eq!(
            object_size((i32::MAX as u64) << PAGE_SHIFT, 4096),
            Ok((i32::MAX as u64) << 12)
        );
        assert_eq!(
            object_size(((i32::MAX as u64) << PAGE_SHIFT) + 1, 4096),
            Err(E2BIG)
        );
    }

    #[test]
    fn placements_serialise_as_the_host_reads_them() -> Result {
        let b = serialize_placements(Some(&[(0, 0), (1, 0)]))?;
        assert_eq!(b.len(), 48 + 8);
        assert_eq!(u32::from_le_bytes([b[8], b[9], b[10], b[11]]), 0);
        assert_eq!(u32::from_le_bytes([b[36], b[37], b[38], b[39]]), 2);
        assert_eq!(&b[48..], &[0, 0, 0, 0, 1, 0, 0, 0]);
        assert!(serialize_placements(None)?.is_empty());
        Ok(())
    }
}
