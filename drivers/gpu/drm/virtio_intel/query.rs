// SPDX-License-Identifier: GPL-2.0

//! `DRM_IOCTL_I915_QUERY`, with the semantics of upstream `i915_query.c`.
//!
//! The ioctl walks `num_items` items of `struct drm_i915_query_item` (24 bytes each) with
//! no upper bound. An item whose `query_id` is 0 fails the whole ioctl with `-EINVAL`, as
//! does a failed read of an item (`-EFAULT`) or of a failed write of its `length`; every
//! other problem is a per-item error, a negative errno in `length`, and processing
//! continues. `length` is written back only when it changed.
//!
//! Per query, as i915:
//! - `TOPOLOGY_INFO` (1), `ENGINE_INFO` (2), `MEMORY_REGIONS` (4): `flags` must be 0.
//!   With `length == 0` the total size is returned; a shorter buffer is `-EINVAL`; the
//!   header in the user's buffer is read (`-EFAULT`) and its must-be-zero fields checked
//!   (`num_engines`/`rsvd` for engines, `num_regions`/`rsvd` for memory regions).
//! - `PERF_CONFIG` (3): this driver has no perf support, so the three defined `flags`
//!   give `-ENODEV` and any other `-EINVAL`, as i915 without perf.
//! - `HWCONFIG_BLOB` (5), `GEOMETRY_SUBSLICES` (6), `GUC_SUBMISSION_VERSION` (7): the
//!   host's i915 decides (`-ENODEV` where the platform lacks them), with the same length
//!   and header rules.
//! - Any other id, including ids above 2^32: `-EINVAL`.
//!
//! The host's answers are immutable for the device's life and come from
//! [`crate::cache`] after the first call, except `GEOMETRY_SUBSLICES` (keyed by an engine)
//! and memory regions for callers with `CAP_PERFMON`, who see the host's live unallocated
//! sizes. Other callers see the probed sizes there, as i915 shows non-perfmon callers.

use core::{
    mem::{
        offset_of,
        size_of, //
    },
    ops::Deref, //
};
use kernel::{
    capability,
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
    cache::{
        is_lasting,
        CachedItem, //
    },
    ccmd::Queryparam,
    driver::{
        Bound,
        I915Device, //
    },
    file::File,
    uext, //
};

/// `struct drm_i915_query_item`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct QueryItem {
    query_id: u64,
    length: i32,
    flags: u32,
    data_ptr: u64,
}

/// The head of `struct drm_i915_query_engine_info` and of
/// `struct drm_i915_query_memory_regions`: a count the caller must zero, then reserved words.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct CountedHeader {
    count: u32,
    rsvd: [u32; 3],
}

/// `struct drm_i915_memory_region_info`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct MemoryRegionInfo {
    class: u16,
    instance: u16,
    rsvd0: u32,
    probed_size: u64,
    unallocated_size: u64,
    probed_cpu_visible_size: u64,
    unallocated_cpu_visible_size: u64,
    rsvd1: [u64; 6],
}

kernel::static_assert!(size_of::<QueryItem>() == size_of::<uapi::drm_i915_query_item>());
kernel::static_assert!(offset_of!(QueryItem, length) == 8);
kernel::static_assert!(size_of::<CountedHeader>() == size_of::<uapi::drm_i915_query_engine_info>());
kernel::static_assert!(
    size_of::<CountedHeader>() == size_of::<uapi::drm_i915_query_memory_regions>()
);
kernel::static_assert!(
    size_of::<MemoryRegionInfo>() == size_of::<uapi::drm_i915_memory_region_info>()
);
kernel::static_assert!(size_of::<uapi::drm_i915_query_topology_info>() == 16);
kernel::static_assert!(size_of::<uapi::drm_i915_query_guc_submission_version>() == 16);

const TOPOLOGY_INFO: u64 = uapi::DRM_I915_QUERY_TOPOLOGY_INFO as u64;
const ENGINE_INFO: u64 = uapi::DRM_I915_QUERY_ENGINE_INFO as u64;
const PERF_CONFIG: u64 = uapi::DRM_I915_QUERY_PERF_CONFIG as u64;
const MEMORY_REGIONS: u64 = uapi::DRM_I915_QUERY_MEMORY_REGIONS as u64;
const HWCONFIG_BLOB: u64 = uapi::DRM_I915_QUERY_HWCONFIG_BLOB as u64;
const GEOMETRY_SUBSLICES: u64 = uapi::DRM_I915_QUERY_GEOMETRY_SUBSLICES as u64;
const GUC_SUBMISSION_VERSION: u64 = uapi::DRM_I915_QUERY_GUC_SUBMISSION_VERSION as u64;

/// A whole query item: from the cache, or fetched for this call only.
enum Item<'a> {
    Cached(&'a CachedItem),
    Fresh(CachedItem),
}

impl Deref for Item<'_> {
    type Target = CachedItem;

    fn deref(&self) -> &CachedItem {
        match self {
            Item::Cached(c) => c,
            Item::Fresh(c) => c,
        }
    }
}

impl File {
    /// `DRM_IOCTL_I915_QUERY`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for non-zero `flags` or an item with `query_id` 0, `EFAULT` when an item
    /// cannot be read or its `length` written, and the transport's errors (`EIO`,
    /// `ETIMEDOUT`, `ERESTARTSYS`, `ENODEV` after unbind). Everything else is reported per
    /// item.
    pub(crate) fn query(
        _dev: &I915Device<drm::Registered>,
        bound: &Bound<'_>,
        q: &mut uapi::drm_i915_query,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if q.flags != 0 {
            return Err(EINVAL);
        }
        let this = file.inner();
        let item_size = size_of::<QueryItem>() as u64;
        let mut at = q.items_ptr;
        let mut wrote = false;
        for _ in 0..q.num_items {
            let item: QueryItem = uext::read_user(at, 0)?;
            if item.query_id == 0 {
                return Err(EINVAL);
            }
            let length = match this.query_item(bound, &item) {
                Ok(l) => l,
                // A restarted call would see the lengths already written back and read size
                // probes as data requests: once something was written, a signal is EINTR.
                Err(e) if wrote && e == ERESTARTSYS => return Err(EINTR),
                Err(e) => return Err(e),
            };
            // Only write the length back when it changed, as i915 does.
            if length != item.length {
                let len_at = at
                    .checked_add(offset_of!(QueryItem, length) as u64)
                    .ok_or(EFAULT)?;
                UserSlice::new(UserPtr::from_addr(len_at as usize), size_of::<i32>())
                    .writer()
                    .write(&length)?;
                wrote = true;
            }
            at = at.checked_add(item_size).ok_or(EFAULT)?;
        }
        Ok(0)
    }

    /// The `(memory_class, memory_instance)` of each region `QUERY_MEMORY_REGIONS` lists, in
    /// its order: the placements `GEM_CREATE_EXT` accepts.
    ///
    /// # Errors
    ///
    /// `EIO` for a host answer that does not parse, and the transport's errors.
    pub(crate) fn memory_regions(&self, bound: &Bound<'_>) -> Result<KVec<(u16, u16)>> {
        let item = self.cached_item(bound, MEMORY_REGIONS)?;
        if item.length < 0 {
            return Err(EIO);
        }
        let (head, mut rest) = CountedHeader::read_from_prefix(&item.data).map_err(|_| EIO)?;
        let mut out = KVec::new();
        for _ in 0..head.count {
            let (r, tail) = MemoryRegionInfo::read_from_prefix(rest).map_err(|_| EIO)?;
            out.push((r.class, r.instance), GFP_KERNEL)?;
            rest = tail;
        }
        Ok(out)
    }

    /// Answers one item: the new `length` (a size or a negative errno). Errors are only
    /// those of the transport.
    fn query_item(&self, bound: &Bound<'_>, item: &QueryItem) -> Result<i32> {
        let flags_must_be_zero =
            matches!(item.query_id, TOPOLOGY_INFO | ENGINE_INFO | MEMORY_REGIONS);
        if flags_must_be_zero && item.flags != 0 {
            return Ok(EINVAL.to_errno());
        }
        let whole = match item.query_id {
            PERF_CONFIG => {
                return Ok(match item.flags {
                    uapi::DRM_I915_QUERY_PERF_CONFIG_LIST
                    | uapi::DRM_I915_QUERY_PERF_CONFIG_DATA_FOR_UUID
                    | uapi::DRM_I915_QUERY_PERF_CONFIG_DATA_FOR_ID => ENODEV,
                    _ => EINVAL,
                }
                .to_errno())
            }
            TOPOLOGY_INFO
            | ENGINE_INFO
            | MEMORY_REGIONS
            | HWCONFIG_BLOB
            | GUC_SUBMISSION_VERSION => self.cached_item(bound, item.query_id)?,
            GEOMETRY_SUBSLICES => Item::Fresh(self.fetch_item(bound, item.query_id, item.flags)?),
            _ => return Ok(EINVAL.to_errno()),
        };
        let total = whole.length;
        if total <= 0 || item.length == 0 {
            return Ok(total);
        }
        // i915 compares the signed `length` with an unsigned size.
        if (item.length as u32) < (total as u32) {
            return Ok(EINVAL.to_errno());
        }
        // The header in the caller's buffer is read (as i915's `copy_query_item()`), and its
        // must-be-zero words checked where i915 checks them.
        let must_be_zero = matches!(
            item.query_id,
            ENGINE_INFO | MEMORY_REGIONS | GUC_SUBMISSION_VERSION
        );
        if item.query_id != HWCONFIG_BLOB {
            match uext::read_user::<CountedHeader>(item.data_ptr, 0) {
                Err(e) => return Ok(e.to_errno()),
                Ok(h) if must_be_zero && (h.count != 0 || h.rsvd != [0; 3]) => {
                    return Ok(EINVAL.to_errno())
                }
                Ok(_) => {}
            }
        }
        let live;
        let data: &[u8] = if item.query_id != MEMORY_REGIONS {
            &whole.data
        } else if capability::perfmon_capable() {
            // Callers with CAP_PERFMON see the host's live unallocated sizes.
            live = self.fetch_item(bound, MEMORY_REGIONS, 0)?;
            if live.length != total {
                return Err(EIO);
            }
            &live.data
        } else {
            live = CachedItem {
                length: total,
                data: probed_as_unallocated(&whole.data)?,
            };
            &live.data
        };
        let mut w = UserSlice::new(UserPtr::from_addr(item.data_ptr as usize), data.len()).writer();
        if let Err(e) = w.write_slice(data) {
            return Ok(e.to_errno());
        }
        // i915 reports success of the GuC version query as 0, not as its size.
        Ok(if item.query_id == GUC_SUBMISSION_VERSION {
            0
        } else {
            total
        })
    }

    /// The cached answer of query `id` (flags 0), asking the host the first time. Only
    /// answers that cannot change are kept: sizes with their data, and the errors i915
    /// gives for a platform that lacks the query.
    fn cached_item(&self, bound: &Bound<'_>, id: u64) -> Result<Item<'_>> {
        let slot = self.shared().cache.query(id).ok_or(EINVAL)?;
        if let Some(c) = slot.as_ref() {
            return Ok(Item::Cached(c));
        }
        let fresh = self.fetch_item(bound, id, 0)?;
        // A negative length is a host errno already bounded by `host_item_length`.
        let cacheable = fresh.length >= 0 || is_lasting(Error::from_errno(fresh.length));
        if !cacheable {
            return Ok(Item::Fresh(fresh));
        }
        // A racing caller may be filling the slot with the same answer: keep a copy to
        // serve if its value is not visible yet.
        let mut data = KVec::with_capacity(fresh.data.len(), GFP_KERNEL)?;
        data.extend_from_slice(&fresh.data, GFP_KERNEL)?;
        let copy = CachedItem {
            length: fresh.length,
            data,
        };
        let _ = slot.populate(fresh);
        Ok(slot.as_ref().map_or(Item::Fresh(copy), Item::Cached))
    }

    /// Asks the host for the whole of query `id`: its size, then its bytes.
    fn fetch_item(&self, bound: &Bound<'_>, id: u64, flags: u32) -> Result<CachedItem> {
        let query_id = u32::try_from(id).map_err(|_| EINVAL)?;
        let ask = |length: u32| {
            self.with_ctx(bound, |c| {
                if length as usize > c.max_query_len() {
                    kernel::pr_warn_once!(
                        "virtio_intel: query {} needs {} bytes, more than one response holds\n",
                        query_id,
                        length
                    );
                    return Err(EIO);
                }
                c.call(
                    bound,
                    &Queryparam {
                        query_id,
                        length,
                        flags,
                    },
                )
            })
        };
        let size = match ask(0)? {
            Ok(a) => host_item_length(a.length)?,
            Err(errno) => return Ok(host_item_error(errno)),
        };
        if size <= 0 {
            return Ok(CachedItem {
                length: size,
                data: KVec::new(),
            });
        }
        match ask(size as u32)? {
            // The host must give as many bytes as it announced. i915 answers a successful
            // GuC version query with 0 instead of its size.
            Ok(a)
                if (a.length == size || (id == GUC_SUBMISSION_VERSION && a.length == 0))
                    && a.data.len() == size as usize =>
            {
                Ok(CachedItem {
                    length: size,
                    data: a.data,
                })
            }
            Ok(a) if a.length < 0 => Ok(CachedItem {
                length: host_item_length(a.length)?,
                data: KVec::new(),
            }),
            Ok(_) => Err(EIO),
            Err(errno) => Ok(host_item_error(errno)),
        }
    }
}

/// An item length from the host: a size, or a negative errno that userspace can be given.
fn host_item_length(length: i32) -> Result<i32> {
    if length >= 0 {
        return Ok(length);
    }
    match length.checked_neg().and_then(|e| u32::try_from(e).ok()) {
        Some(e) => Ok(crate::file::host_errno(e).to_errno()),
        None => Err(EIO),
    }
}

/// An item whose host ioctl failed as a whole: reported as that errno, per item.
fn host_item_error(errno: u32) -> CachedItem {
    CachedItem {
        length: crate::file::host_errno(errno).to_errno(),
        data: KVec::new(),
    }
}

/// The memory-regions answer as i915 gives it to callers without `CAP_PERFMON`: the
/// unallocated sizes are the probed sizes.
fn probed_as_unallocated(data: &[u8]) -> Result<KVec<u8>> {
    let mut out = KVec::with_capacity(data.len(), GFP_KERNEL)?;
    out.extend_from_slice(data, GFP_KERNEL)?;
    let regions = out.get_mut(size_of::<CountedHeader>()..).ok_or(EIO)?;
    for chunk in regions.chunks_exact_mut(size_of::<MemoryRegionInfo>()) {
        let mut r = MemoryRegionInfo::read_from_bytes(chunk).map_err(|_| EIO)?;
        r.unallocated_size = r.probed_size;
        r.unallocated_cpu_visible_size = r.probed_cpu_visible_size;
        chunk.copy_from_slice(r.as_bytes());
    }
    Ok(out)
}

#[kunit_tests(virtio_intel_query)]
mod tests {
    use super::*;

    #[test]
    fn non_perfmon_callers_see_probed_sizes() -> Result {
        let mut buf = KVec::new();
        buf.extend_from_slice(&[0u8; 16], GFP_KERNEL)?;
        let r = MemoryRegionInfo {
            class: 0,
            instance: 0,
            rsvd0: 0,
            probed_size: 8 << 30,
            unallocated_size: 3 << 30,
            probed_cpu_visible_size: 8 << 30,
            unallocated_cpu_visible_size: 1 << 30,
            rsvd1: [0; 6],
        };
        buf.extend_from_slice(r.as_bytes(), GFP_KERNEL)?;
        let out = probed_as_unallocated(&buf)?;
        let got = MemoryRegionInfo::read_from_bytes(&out[16..]).map_err(|_| EIO)?;
        assert_eq!(got.unallocated_size, 8 << 30);
        assert_eq!(got.unallocated_cpu_visible_size, 8 << 30);
        assert_eq!(&out[..16], &buf[..16]);
        Ok(())
    }
}
