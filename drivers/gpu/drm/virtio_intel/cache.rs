// SPDX-License-Identifier: GPL-2.0

//! Host answers that cannot change while the device is bound.
//!
//! Mesa asks the same GETPARAMs and QUERY items in every process it starts (and several
//! times per process); each answer is a host round trip. What describes the host GPU itself
//! (engines, topology, frequencies, ...) is fixed for the life of the binding, so the first
//! answer the host's i915 gives is kept here and served without a round trip: a value, or
//! the error i915 gives for a feature the platform lacks (`ENODEV`, `EINVAL`). Other errors
//! and transport failures (`EIO`, timeouts, signals) are never cached. Answers that depend
//! on the caller or on time are not kept here (see [`crate::getparam`] and
//! [`crate::query`]).
//!
//! Each slot is a [`SetOnce`]: readers never take a lock.

use kernel::{
    prelude::*,
    sync::SetOnce, //
};

use crate::{
    ccmd::HostResult,
    getparam::MAX_PARAM, //
};

/// The largest `DRM_I915_QUERY_*` id i915 knows (`GUC_SUBMISSION_VERSION`).
pub(crate) const MAX_QUERY: u64 = kernel::uapi::DRM_I915_QUERY_GUC_SUBMISSION_VERSION as u64;

const PARAM_SLOTS: usize = MAX_PARAM as usize + 1;
const QUERY_SLOTS: usize = MAX_QUERY as usize + 1;

/// Whether a host error can be cached: the errors i915 gives for a feature or query the
/// platform lacks, which do not change while the device is bound.
pub(crate) fn is_lasting(e: Error) -> bool {
    e == ENODEV || e == EINVAL
}

/// A query item as the host's i915 answered it with `flags == 0`: the total length (or a
/// negative errno) and the whole item.
pub(crate) struct CachedItem {
    /// `item.length` as the host returned it.
    pub(crate) length: i32,
    /// The item's bytes (`length` of them when `length > 0`).
    pub(crate) data: KVec<u8>,
}

/// Immutable host answers of one bound device.
pub(crate) struct AnswerCache {
    params: [SetOnce<HostResult<i32>>; PARAM_SLOTS],
    queries: [SetOnce<CachedItem>; QUERY_SLOTS],
    /// The size in bytes of a GEM context's address space (`I915_CONTEXT_PARAM_GTT_SIZE`):
    /// every VM of the device has the same.
    gtt_size: SetOnce<u64>,
}

impl AnswerCache {
    /// An empty cache.
    pub(crate) const fn new() -> Self {
        Self {
            params: [const { SetOnce::new() }; PARAM_SLOTS],
            queries: [const { SetOnce::new() }; QUERY_SLOTS],
            gtt_size: SetOnce::new(),
        }
    }

    /// The slot of GETPARAM `param`, if it is in range.
    pub(crate) fn param(&self, param: i32) -> Option<&SetOnce<HostResult<i32>>> {
        self.params.get(usize::try_from(param).ok()?)
    }

    /// The size of the device's GEM address spaces, once known.
    pub(crate) fn gtt_size(&self) -> &SetOnce<u64> {
        &self.gtt_size
    }

    /// The slot of query `id` with `flags == 0`, if it is in range.
    pub(crate) fn query(&self, id: u64) -> Option<&SetOnce<CachedItem>> {
        self.queries.get(usize::try_from(id).ok()?)
    }
}
