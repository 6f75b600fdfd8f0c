// SPDX-License-Identifier: GPL-2.0

//! The i915 uAPI of an open render node: GETPARAM and QUERY, answered by the host.

use kernel::{
    drm,
    new_mutex,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};

use crate::{
    ccmd::{
        Getparam,
        Queryparam, //
    },
    context::HostContext,
    driver::{
        I915Device,
        VirtioIntelDriver, //
    },
    shared::Shared,
};

/// `sizeof(struct drm_i915_query_item)`.
const QUERY_ITEM_SIZE: usize = 24;
/// Upper bound on `num_items` (i915 has no limit; each item is one host round trip).
const MAX_QUERY_ITEMS: u32 = 64;

/// `struct drm_i915_query_item`, decoded from user memory.
struct QueryItem {
    query_id: u64,
    length: i32,
    flags: u32,
    data_ptr: u64,
}

impl QueryItem {
    fn decode(b: &[u8; QUERY_ITEM_SIZE]) -> Self {
        let u64_at = |o: usize| {
            u64::from_le_bytes([
                b[o],
                b[o + 1],
                b[o + 2],
                b[o + 3],
                b[o + 4],
                b[o + 5],
                b[o + 6],
                b[o + 7],
            ])
        };
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        Self {
            query_id: u64_at(0),
            length: u32_at(8) as i32,
            flags: u32_at(12),
            data_ptr: u64_at(16),
        }
    }
}

/// An open DRM file.
#[pin_data]
pub(crate) struct File {
    shared: Arc<Shared>,
    /// The host context, created on first use.
    #[pin]
    ctx: Mutex<Option<HostContext>>,
}

impl drm::file::DriverFile for File {
    type Driver = VirtioIntelDriver;

    fn open(dev: &drm::Device<VirtioIntelDriver>) -> Result<Pin<KBox<Self>>> {
        let shared: &Arc<Shared> = dev;
        KBox::pin_init(
            try_pin_init!(File { shared: shared.clone(), ctx <- new_mutex!(None) }),
            GFP_KERNEL,
        )
    }
}

impl File {
    /// Runs `f` with this file's host context, creating it on first use.
    fn with_ctx<R>(&self, f: impl FnOnce(&mut HostContext) -> Result<R>) -> Result<R> {
        let mut g = self.ctx.lock();
        if g.is_none() {
            *g = Some(HostContext::new(&self.shared, b"virtio-intel")?);
        }
        match &mut *g {
            Some(c) => f(c),
            None => Err(EIO),
        }
    }

    /// `DRM_IOCTL_I915_GETPARAM`.
    pub(crate) fn getparam(
        _dev: &I915Device<drm::Registered>,
        _reg: &(),
        gp: &mut uapi::drm_i915_getparam,
        file: &drm::File<File>,
    ) -> Result<u32> {
        let this = file.inner();
        let value = this
            .with_ctx(|c| c.call(&Getparam { param: gp.param }))?
            .map_err(|errno| {
                // The host's i915 errno, bounded to a real error code.
                Error::from_errno(-(errno.min(4095) as i32))
            })?;
        let mut w = UserSlice::new(
            UserPtr::from_addr(gp.value as usize),
            core::mem::size_of::<i32>(),
        )
        .writer();
        w.write(&value)?;
        Ok(0)
    }

    /// `DRM_IOCTL_I915_QUERY`: one host round trip per item, with i915's per-item errors.
    pub(crate) fn query(
        _dev: &I915Device<drm::Registered>,
        _reg: &(),
        q: &mut uapi::drm_i915_query,
        file: &drm::File<File>,
    ) -> Result<u32> {
        if q.flags != 0 || q.num_items > MAX_QUERY_ITEMS {
            return Err(EINVAL);
        }
        let this = file.inner();
        for i in 0..q.num_items as usize {
            let addr = (q.items_ptr as usize)
                .checked_add(i * QUERY_ITEM_SIZE)
                .ok_or(EFAULT)?;
            let mut raw = [0u8; QUERY_ITEM_SIZE];
            UserSlice::new(UserPtr::from_addr(addr), QUERY_ITEM_SIZE)
                .reader()
                .read_slice(&mut raw)?;
            let item = QueryItem::decode(&raw);
            let length = this.query_item(&item)?;
            // Write back only `length` (offset 8), as i915 does.
            let at = addr.checked_add(8).ok_or(EFAULT)?;
            UserSlice::new(UserPtr::from_addr(at), 4)
                .writer()
                .write_slice(&length.to_le_bytes())?;
        }
        Ok(0)
    }

    /// One query item: returns the value for `item.length`.
    fn query_item(&self, item: &QueryItem) -> Result<i32> {
        let query_id = u32::try_from(item.query_id).map_err(|_| EINVAL)?;
        if query_id == 0 {
            return Err(EINVAL);
        }
        if item.length < 0 {
            return Ok(EINVAL.to_errno());
        }
        // A buffer larger than the response page can carry is asked for at the page's
        // size: every item this host serves fits, and i915 copies only the item's size.
        let want = item.length as u32;
        let answer = self.with_ctx(|c| {
            let ask = want.min(u32::try_from(c.max_query_len()).unwrap_or(u32::MAX));
            c.call(&Queryparam {
                query_id,
                length: ask,
                flags: item.flags,
            })
        })?;
        let a = match answer {
            Ok(a) => a,
            Err(errno) => return Err(Error::from_errno(-(errno.min(4095) as i32))),
        };
        if a.length > 0 && want > 0 {
            let mut w =
                UserSlice::new(UserPtr::from_addr(item.data_ptr as usize), a.data.len()).writer();
            if w.write_slice(&a.data).is_err() {
                return Ok(EFAULT.to_errno());
            }
        }
        Ok(a.length)
    }
}
