// SPDX-License-Identifier: GPL-2.0

//! The host context of one DRM file: its virtio context, its response page and the
//! synchronous ccmd path.
//!
//! Only one ccmd is in flight per context (callers hold the file's context lock), so one
//! response slot at the start of the response area is enough. A ccmd is sent as a SUBMIT_3D
//! fenced on ring 0; QEMU answers that command when the host has processed it, so the answer
//! means "done". A ccmd the host rejected publishes no seqno: the context sees that and
//! fails the call with `EIO` instead of waiting forever.

use kernel::{
    prelude::*,
    sync::Arc,
    virtio::shm::ShmMapping, //
};

use crate::{
    ccmd::{
        self,
        Ccmd,
        RET_SENTINEL,
        RSP_MEM_OFFSET,
        SHMEM_RSP_MEM_OFFSET,
        SHMEM_SEQNO, //
    },
    protocol::{
        CtxCreate,
        CtxDestroy,
        ResourceCmd,
        ResourceCreateBlob,
        ResourceMapBlob,
        Submit3d,
        BLOB_FLAG_USE_MAPPABLE,
        CAPSET_DRM,
        MAP_CACHE_CACHED, //
    },
    shared::Shared,
};

/// Size of the response page.
const SHMEM_SIZE: usize = 16384;

/// A live host context.
///
/// # Invariants
///
/// `ctx_id` names a context created on the host; `shm` maps the response blob `shmem_res`,
/// which is mapped at `shmem_off` of the host-visible window.
pub(crate) struct HostContext {
    shared: Arc<Shared>,
    ctx_id: u32,
    shmem_res: u32,
    shmem_off: u64,
    blob_created: bool,
    mapped: bool,
    shm: Option<ShmMapping>,
    seqno: u32,
}

impl HostContext {
    /// Creates a host context for a file named `name`.
    ///
    /// # Errors
    ///
    /// `ENODEV` after unbind, `ENOSPC` when the host-visible window is full, `EIO` when the
    /// host refuses or answers nonsense, or the transport's errors.
    pub(crate) fn new(shared: &Arc<Shared>, name: &[u8]) -> Result<Self> {
        let ctx_id = shared.new_ctx_id();
        let shmem_res = shared.new_res_id();
        shared.with_queue(|q| q.call(&CtxCreate::new(ctx_id, CAPSET_DRM, name)))?;
        // From here on `Drop` undoes what was done.
        let mut this = Self {
            shared: shared.clone(),
            ctx_id,
            shmem_res,
            shmem_off: u64::MAX,
            blob_created: false,
            mapped: false,
            shm: None,
            seqno: 0,
        };
        shared.with_queue(|q| {
            q.call(&ResourceCreateBlob::host3d(
                ctx_id,
                shmem_res,
                BLOB_FLAG_USE_MAPPABLE,
                0,
                SHMEM_SIZE as u64,
            ))
        })?;
        this.blob_created = true;
        let off = shared.alloc_hostmem(SHMEM_SIZE as u64)?;
        this.shmem_off = off;
        let map = shared.with_queue(|q| q.call(&ResourceMapBlob::new(ctx_id, shmem_res, off)))?;
        this.mapped = true;
        if map.cache() != MAP_CACHE_CACHED {
            // The response page is read through a write-back mapping.
            pr_warn!(
                "virtio_intel: host maps the response page with cache mode {}\n",
                map.cache()
            );
            return Err(EIO);
        }
        let shm = ShmMapping::new(&shared.hostmem, off, SHMEM_SIZE)?;
        let rsp_off = shm.read_u32(SHMEM_RSP_MEM_OFFSET)?;
        if rsp_off != RSP_MEM_OFFSET {
            pr_warn!("virtio_intel: host response area at {} (expected {}): unsupported protocol revision\n", rsp_off, RSP_MEM_OFFSET);
            this.shm = Some(shm);
            return Err(EIO);
        }
        this.seqno = shm.read_u32(SHMEM_SEQNO)?;
        this.shm = Some(shm);
        Ok(this)
    }

    /// Bytes available for one response.
    fn area_len(&self) -> usize {
        SHMEM_SIZE - RSP_MEM_OFFSET as usize
    }

    /// Largest payload a QUERY item can return through the response page.
    pub(crate) fn max_query_len(&self) -> usize {
        self.area_len() - 16
    }

    /// Sends `c` and returns the host's decoded answer.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the response cannot fit, `EIO` when the host rejected the ccmd or its
    /// answer fails validation, or the transport's errors (`ETIMEDOUT`, `ERESTARTSYS`,
    /// `ENODEV` after unbind).
    pub(crate) fn call<C: Ccmd>(&mut self, c: &C) -> Result<C::Response> {
        let shm = self.shm.as_ref().ok_or(EIO)?;
        let size = c.response_size();
        if size > self.area_len() {
            return Err(EINVAL);
        }
        let slot = RSP_MEM_OFFSET as usize;
        // Pre-fill the slot: its capacity and a `ret` the host never writes.
        let mut fill = KVec::new();
        fill.resize(size.max(12), 0, GFP_KERNEL)?;
        fill[0..4].copy_from_slice(&(size as u32).to_le_bytes());
        fill[8..12].copy_from_slice(&RET_SENTINEL.to_le_bytes());
        shm.write(slot, &fill[..size.max(12)])?;

        let seqno = self.seqno.wrapping_add(1);
        let bytes = ccmd::encode(c, seqno, 0)?;
        let len = u32::try_from(bytes.len()).map_err(|_| EINVAL)?;
        let fence = self.shared.new_fence_id();
        self.seqno = seqno;
        self.shared.with_queue(|q| {
            q.call_with_data(&Submit3d::fenced(self.ctx_id, len, fence, 0), &bytes)
        })?;

        let published = shm.load_acquire_u32(SHMEM_SEQNO)?;
        if published != seqno {
            pr_debug!(
                "virtio_intel: ctx {}: ccmd seqno {} not published (host has {})\n",
                self.ctx_id,
                seqno,
                published
            );
            return Err(EIO);
        }
        let written = shm.read_u32(slot)? as usize;
        if written > size {
            return Err(EIO);
        }
        let mut rsp = KVec::new();
        rsp.resize(written, 0, GFP_KERNEL)?;
        shm.read(slot, &mut rsp)?;
        c.decode(&rsp)
    }
}

impl Drop for HostContext {
    fn drop(&mut self) {
        // Unmap our view first; then destroy the context and release the blob, which
        // outlives the context on the host. Each step is tried even if an earlier one
        // failed, so nothing the host still holds is forgotten.
        self.shm = None;
        let (ctx, res) = (self.ctx_id, self.shmem_res);
        let (blob, mapped) = (self.blob_created, self.mapped);
        let r = self.shared.with_queue(|q| {
            let destroy = q.call(&CtxDestroy::new(ctx)).map(|_| ());
            let unmap = if mapped {
                q.call(&ResourceCmd::unmap_blob(ctx, res)).map(|_| ())
            } else {
                Ok(())
            };
            let unref = if blob {
                q.call(&ResourceCmd::unref(res)).map(|_| ())
            } else {
                Ok(())
            };
            destroy.and(unmap).and(unref)
        });
        if let Err(e) = r {
            pr_debug!("virtio_intel: tearing down host context {}: {:?}\n", ctx, e);
        }
        // The window range is free once the host unmapped it (or the device is gone).
        if self.shmem_off != u64::MAX {
            self.shared.free_hostmem(self.shmem_off);
        }
    }
}
