// SPDX-License-Identifier: GPL-2.0

//! The host context of one DRM file: its virtio context, its response page and the
//! synchronous ccmd path.
//!
//! Only one ccmd is in flight per context (callers hold the file's context lock), so one
//! response slot at the start of the response area is enough. A ccmd is sent as a SUBMIT_3D
//! fenced on ring 0; QEMU answers that command when the host has processed it, so the answer
//! means "done". A ccmd the host rejected publishes no seqno: the context sees that and
//! fails the call with `EIO` instead of waiting forever.

use core::sync::atomic::Ordering;
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
    shared::{
        Client,
        Shared, //
    },
    transport::Wait,
};

/// Size of the response page.
const SHMEM_SIZE: usize = 16384;

/// A host context, from the moment its creation is queued.
///
/// The flags say which host objects may exist, and `Drop` releases exactly those, so a
/// value left half-built by an error or a signal in [`HostContext::new`] cleans up too.
///
/// # Invariants
///
/// - `CTX_CREATE` for `ctx_id` was queued;
/// - `blob_created`: `RESOURCE_CREATE_BLOB` for `shmem_res` was queued;
/// - `mapped`: `RESOURCE_MAP_BLOB` for it was queued at `shmem_off`, a window range this
///   context holds (`shmem_off != u64::MAX` whenever the range is allocated);
/// - `shm`, when set, maps that range, behind which the host mapped the response blob.
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
    /// Creates a host context named `name` for the calling task.
    ///
    /// Every host object is recorded in `Self` before its command is queued, so an error or
    /// a signal at any step leaves a value whose `Drop` releases whatever the host may have
    /// created.
    ///
    /// # Errors
    ///
    /// `ENODEV` after unbind, `ENOSPC` when the host-visible window is full, `EIO` when the
    /// host refuses or answers nonsense, or the transport's errors (`ERESTARTSYS`,
    /// `ETIMEDOUT`).
    pub(crate) fn new(shared: &Arc<Shared>, name: &[u8], client: Client) -> Result<Self> {
        let ctx_id = shared.new_ctx_id();
        let shmem_res = shared.new_res_id();
        shared.stats.add_client(ctx_id, client)?;
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
        shared.stats.contexts.fetch_add(1, Ordering::Relaxed);
        shared.with_queue(|q| q.call(&CtxCreate::new(ctx_id, CAPSET_DRM, name)))?;
        this.blob_created = true;
        shared.stats.blobs.fetch_add(1, Ordering::Relaxed);
        shared.with_queue(|q| {
            q.call(&ResourceCreateBlob::host3d(
                ctx_id,
                shmem_res,
                BLOB_FLAG_USE_MAPPABLE,
                0,
                SHMEM_SIZE as u64,
            ))
        })?;
        let off = shared.alloc_hostmem(SHMEM_SIZE as u64)?;
        this.shmem_off = off;
        this.mapped = true;
        let map = shared.with_queue(|q| q.call(&ResourceMapBlob::new(ctx_id, shmem_res, off)))?;
        if map.cache() != MAP_CACHE_CACHED {
            // The response page is read through a write-back mapping.
            kernel::pr_warn_once!(
                "virtio_intel: host maps the response page with cache mode {}\n",
                map.cache()
            );
            return Err(EIO);
        }
        let shm = ShmMapping::new(&shared.hostmem, off, SHMEM_SIZE)?;
        let rsp_off = shm.read_u32(SHMEM_RSP_MEM_OFFSET)?;
        if rsp_off != RSP_MEM_OFFSET {
            kernel::pr_warn_once!(
                "virtio_intel: host response area at {} (expected {}): unsupported protocol \
                 revision\n",
                rsp_off,
                RSP_MEM_OFFSET
            );
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
        // Pre-fill the head of the slot: its capacity and a `ret` the host never writes.
        let mut head = [0u8; 12];
        head[0..4].copy_from_slice(&(size as u32).to_le_bytes());
        head[8..12].copy_from_slice(&RET_SENTINEL.to_le_bytes());
        shm.write(slot, &head)?;

        let seqno = self.seqno.wrapping_add(1);
        let bytes = ccmd::encode(c, seqno, 0)?;
        let len = u32::try_from(bytes.len()).map_err(|_| EINVAL)?;
        let fence = self.shared.new_fence_id();
        self.seqno = seqno;
        self.shared.with_queue(|q| {
            q.call_with_data(
                &Submit3d::fenced(self.ctx_id, len, fence, 0),
                &bytes,
                Wait::Interruptible,
            )
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

/// Whether a teardown command's outcome means the host no longer holds the object: it
/// answered (success, or an error for an object it never created), or the device is gone.
/// A timeout or a failure to queue leaves that unknown.
fn settled(r: &Result) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => *e == EIO || *e == ENODEV,
    }
}

impl Drop for HostContext {
    fn drop(&mut self) {
        // Unmap our view first; then destroy the context and release the blob, which
        // outlives the context on the host. Each step is tried even if an earlier one
        // failed, so nothing the host still holds is forgotten. The waits are bounded but
        // not interruptible: a process being killed still closes its files.
        self.shm = None;
        let (ctx, res) = (self.ctx_id, self.shmem_res);
        let stats = &self.shared.stats;
        let teardown = |cmd: &dyn Fn(&crate::transport::ControlQueue) -> Result| {
            let r = self.shared.with_queue(|q| cmd(q));
            if let Err(e) = r {
                pr_debug!("virtio_intel: tearing down host context {}: {:?}\n", ctx, e);
            }
            settled(&r)
        };
        if teardown(&|q| q.call_uninterruptible(&CtxDestroy::new(ctx)).map(|_| ())) {
            stats.contexts.fetch_sub(1, Ordering::Relaxed);
        }
        let unmapped = !self.mapped
            || teardown(&|q| {
                q.call_uninterruptible(&ResourceCmd::unmap_blob(ctx, res))
                    .map(|_| ())
            });
        if self.blob_created
            && teardown(&|q| q.call_uninterruptible(&ResourceCmd::unref(res)).map(|_| ()))
        {
            stats.blobs.fetch_sub(1, Ordering::Relaxed);
        }
        // The window range is free once the host unmapped it (or the device is gone).
        // Otherwise it stays allocated: handing it out again would alias a range the host
        // may still map.
        if self.shmem_off != u64::MAX {
            if unmapped {
                self.shared.free_hostmem(self.shmem_off);
            } else {
                stats
                    .quarantined_bytes
                    .fetch_add(SHMEM_SIZE as i64, Ordering::Relaxed);
                kernel::pr_warn_once!(
                    "virtio_intel: host context {}: response page not unmapped, window range \
                     {:#x} quarantined\n",
                    ctx,
                    self.shmem_off
                );
            }
        }
        stats.remove_client(ctx);
    }
}
