// SPDX-License-Identifier: MIT
//! The i915 native context: what virglrenderer's `drm_context` + i915 backend do with
//! a `SUBMIT_3D` ccmd stream, on top of the software i915.
//!
//! The dispatcher follows the real host algorithm (errata appendix A) including its
//! failure behaviour: a rejected ccmd produces no response, does not publish its seqno
//! and drops the rest of the submit; a response reserved by a ccmd that then fails is
//! left pending and written at the next response-less ccmd's slot. Every rule the guest
//! breaks is reported through [`crate::log::violation`] (strict mode fails the run).

use std::collections::HashMap;
use std::sync::Arc;

use crate::fence::Fence;
use crate::mem::SharedMem;
use crate::proto::*;
use crate::swi915::{self, CreateExt, ExecArgs, File, SetParam};

/// `VIRGL_RENDERER_MAP_CACHE_*`.
pub(crate) const MAP_CACHE_CACHED: u32 = 1;
pub(crate) const MAP_CACHE_UNCACHED: u32 = 2;
pub(crate) const MAP_CACHE_WC: u32 = 3;

/// An object created by GEM_CREATE(_EXT) that waits for its RESOURCE_CREATE_BLOB.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) handle: u32,
    pub(crate) size: u64,
    pub(crate) map_info: u32,
    pub(crate) configured: bool,
}

/// An object of this context known by its virtio resource id.
#[derive(Debug, Clone)]
pub(crate) struct CtxObject {
    pub(crate) handle: u32,
    pub(crate) configured: bool,
}

/// What the context needs to know about virtio resources (owned by the renderer).
pub(crate) trait ResourceView {
    /// Whether a resource with this id exists.
    fn exists(&self, res_id: u32) -> bool;
    /// Whether the resource is mapped through `resource_map` (not `map_fixed`).
    fn mapped(&self, res_id: u32) -> bool;
    /// Sets the map_info the next MAP_BLOB reports.
    fn set_map_info(&mut self, res_id: u32, map_info: u32);
}

/// Per-ring fence timeline (ring 1..=64 ↔ engine index ring − 1).
#[derive(Default)]
pub(crate) struct Timeline {
    /// Out-fence of the last successful execbuffer since the last fence was created.
    pub(crate) last_fence: Option<Arc<Fence>>,
    /// Highest fence id created on this ring.
    pub(crate) last_fence_id: Option<u64>,
    /// Fences handed to the ring's sync thread and not yet reported.
    pub(crate) outstanding: Vec<Arc<Fence>>,
}

/// One i915 native context (virtio context with capset 6).
pub(crate) struct NativeCtx {
    pub(crate) id: u32,
    pub(crate) file: File,
    pub(crate) shmem: Option<(u32, Arc<SharedMem>)>,
    pub(crate) pending: HashMap<u32, Pending>,
    /// blob_ids of GEM_CREATE(_EXT) ccmds refused by fault injection: the guest's
    /// RESOURCE_CREATE_BLOB that follows such a ccmd (as Linux sends it, without waiting)
    /// fails without being a protocol violation.
    pub(crate) refused_blobs: Vec<u32>,
    pub(crate) objects: HashMap<u32, CtxObject>,
    pub(crate) timelines: HashMap<u32, Timeline>,
    current_rsp: Option<Vec<u8>>,
    last_seqno: Option<u32>,
}

/// Shmem response area = blob + 16.
fn area_base() -> u64 {
    u64::from(SHMEM_HDR_SIZE)
}

/// Process-wide ccmd counter for fault injection.
static CCMD_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static RSP_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Well-formed `GEM_EXECBUFFER2`s so far (for `VIRTIO_INTEL_HOST_FAIL_EXEC`).
static EXEC_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

type CcmdResult = Result<(), i32>;

/// Decodes a request from its private copy (whose header names the same ccmd).
fn decode<R: Request>(b: &[u8]) -> R {
    debug_assert_eq!(rd32(b, 0), R::ID as u32);
    R::decode(b)
}

impl NativeCtx {
    pub(crate) fn new(id: u32, dev: Arc<swi915::Device>) -> NativeCtx {
        NativeCtx {
            id,
            file: File::open(dev),
            shmem: None,
            pending: HashMap::new(),
            refused_blobs: Vec::new(),
            objects: HashMap::new(),
            timelines: HashMap::new(),
            current_rsp: None,
            last_seqno: None,
        }
    }

    fn area_len(&self) -> u64 {
        self.shmem.as_ref().map(|(_, m)| m.len().saturating_sub(area_base())).unwrap_or(0)
    }

    /// The host's `drm_context_rsp()`: reserves a zeroed response of `size` bytes.
    fn reserve(&mut self, hdr: &CcmdHdr, size: usize) -> CcmdResult {
        let a = self.area_len();
        let off = u64::from(hdr.rsp_off);
        if self.shmem.is_none() || off > a || size as u64 > a - off {
            crate::log::violation(&format!(
                "ccmd {} seqno {}: response of {size} bytes at rsp_off {off} does not fit the {a}-byte response area",
                hdr.cmd, hdr.seqno
            ));
            return Err(-libc::ENOMEM);
        }
        let mut v = vec![0u8; size];
        wr32(&mut v, 0, size as u32);
        self.current_rsp = Some(v);
        Ok(())
    }

    fn fill<R: Response>(&mut self, r: &R) {
        let bytes = r.encode();
        if let Some(cur) = self.current_rsp.as_mut() {
            let n = bytes.len().min(cur.len());
            cur[..n].copy_from_slice(&bytes[..n]);
            let len = cur.len() as u32;
            wr32(cur, 0, len);
        }
    }

    fn shmem_banned_update(&self, ctx: u64, set: bool) {
        if ctx >= 64 {
            return;
        }
        if let Some((_, m)) = &self.shmem {
            let cur = m.read_u64(SHMEM_BANNED_MASK).unwrap_or(0);
            let bit = 1u64 << ctx;
            let _ = m.write_u64(SHMEM_BANNED_MASK, if set { cur | bit } else { cur & !bit });
        }
    }

    /// Processes one SUBMIT_3D buffer. Returns 0 or a negative errno (QEMU ignores it).
    pub(crate) fn submit(&mut self, buf: &[u8], res: &mut dyn ResourceView) -> i32 {
        if let Some((_, m)) = &self.shmem {
            // The header is host-owned; a guest that rewrites rsp_mem_offset makes the
            // real host munmap the wrong length on destroy (protocol §10-B).
            if m.read_u32(SHMEM_RSP_MEM_OFFSET).ok() != Some(SHMEM_HDR_SIZE) {
                crate::log::violation(&format!("ctx {}: the guest overwrote shmem.rsp_mem_offset", self.id));
                let _ = m.write_u32(SHMEM_RSP_MEM_OFFSET, SHMEM_HDR_SIZE);
            }
        }
        let mut off = 0usize;
        while buf.len() - off >= CCMD_HDR_SIZE {
            let rest = &buf[off..];
            let hdr = CcmdHdr::decode(rest);
            if hdr.len as usize > rest.len()
                || hdr.len < 16
                || !hdr.len.is_multiple_of(4)
                || !hdr.rsp_off.is_multiple_of(4)
            {
                crate::log::violation(&format!(
                    "ctx {}: bad ccmd framing (cmd {} len {} rsp_off {} with {} bytes left); rest of the submit dropped",
                    self.id, hdr.cmd, hdr.len, hdr.rsp_off, rest.len()
                ));
                return -libc::EINVAL;
            }
            let Some(id) = CcmdId::from_u32(hdr.cmd) else {
                crate::log::violation(&format!(
                    "ctx {}: unknown ccmd {}; rest of the submit dropped",
                    self.id, hdr.cmd
                ));
                return -libc::EINVAL;
            };
            let len = hdr.len as usize;
            let mut copy = vec![0u8; id.nominal_size().max(len)];
            copy[..len].copy_from_slice(&rest[..len]);
            let n = CCMD_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if crate::config::get().fail_ccmd == Some(n) {
                crate::log::info(&format!("fault injection: ccmd #{n} ({id:?}, seqno {}) rejected", hdr.seqno));
                if matches!(id, CcmdId::GemCreate | CcmdId::GemCreateExt) && copy.len() >= 28 {
                    self.refused_blobs.push(u32::from_le_bytes([copy[24], copy[25], copy[26], copy[27]]));
                }
                return -libc::EIO;
            }
            let had_stale = self.current_rsp.is_some();
            if let Err(e) = self.dispatch(id, &hdr, &copy, res) {
                crate::log::violation(&format!(
                    "ctx {}: ccmd {id:?} seqno {} rejected (protocol error {e}); rest of the submit dropped",
                    self.id, hdr.seqno
                ));
                return e;
            }
            self.publish(id, &hdr, had_stale);
            off += len;
        }
        if off != buf.len() {
            crate::log::violation(&format!("ctx {}: {} trailing bytes after the last ccmd", self.id, buf.len() - off));
            return -libc::EINVAL;
        }
        0
    }

    /// Copies the pending response (if any) to the ccmd's slot and publishes its seqno.
    fn publish(&mut self, id: CcmdId, hdr: &CcmdHdr, had_stale: bool) {
        let Some((_, shmem)) = self.shmem.clone() else {
            return;
        };
        let produces = matches!(
            id,
            CcmdId::IoctlSimple
                | CcmdId::Getparam
                | CcmdId::Queryparam
                | CcmdId::GemContextCreate
                | CcmdId::GemExecbuffer2
                | CcmdId::GemBusy
        );
        let slot = area_base() + u64::from(hdr.rsp_off);
        if !produces {
            match shmem.read_u32(slot) {
                Ok(0) => {}
                _ => crate::log::violation(&format!(
                    "ctx {}: ccmd {id:?} seqno {} has no response but rsp_off {} is not a zero-length scratch slot",
                    self.id, hdr.seqno, hdr.rsp_off
                )),
            }
        }
        if let Some(rsp) = self.current_rsp.take() {
            if !produces && had_stale {
                crate::log::violation(&format!(
                    "ctx {}: a response left by an earlier rejected ccmd lands in the slot of {id:?} seqno {}",
                    self.id, hdr.seqno
                ));
            }
            let r = RSP_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if crate::config::get().drop_rsp == Some(r) {
                crate::log::info(&format!("fault injection: response #{r} (seqno {}) dropped", hdr.seqno));
            } else if slot + 4 > shmem.len() {
                crate::log::violation(&format!("ctx {}: response slot {} out of the shmem", self.id, hdr.rsp_off));
            } else {
                let cap = shmem.read_u32(slot).unwrap_or(0) as usize;
                let n = cap.min(rsp.len());
                let room = (shmem.len() - slot) as usize;
                let n = n.min(room);
                let _ = shmem.write(slot, &rsp[..n]);
                let _ = shmem.write_u32(slot, n as u32);
            }
        }
        if let Some(last) = self.last_seqno {
            if (hdr.seqno.wrapping_sub(last) as i32) < 0 {
                crate::log::violation(&format!(
                    "ctx {}: ccmd {id:?} seqno {} is lower than the previous {last}: shmem.seqno moves backwards",
                    self.id, hdr.seqno
                ));
            }
        }
        self.last_seqno = Some(hdr.seqno);
        let _ = shmem.store_release_u32(SHMEM_SEQNO, hdr.seqno);
    }

    fn dispatch(&mut self, id: CcmdId, hdr: &CcmdHdr, b: &[u8], res: &mut dyn ResourceView) -> CcmdResult {
        match id {
            CcmdId::IoctlSimple => self.ioctl_simple(hdr, decode::<IoctlSimpleReq>(b)),
            CcmdId::Getparam => self.getparam(hdr, decode::<GetparamReq>(b)),
            CcmdId::Queryparam => self.queryparam(hdr, decode::<QueryparamReq>(b)),
            CcmdId::GemCreate => self.gem_create(decode::<GemCreateReq>(b)),
            CcmdId::GemCreateExt => self.gem_create_ext(hdr, decode::<GemCreateExtReq>(b)),
            CcmdId::GemContextCreate => self.context_create(hdr, decode::<GemContextCreateReq>(b)),
            CcmdId::GemExecbuffer2 => self.execbuffer(hdr, decode::<ExecbufReq>(b)),
            CcmdId::GemSetMmapMode => self.set_mmap_mode(decode::<SetMmapModeReq>(b), res),
            CcmdId::GemBusy => self.busy(hdr, decode::<GemBusyReq>(b)),
        }
    }

    // ---- ccmd 1 ----------------------------------------------------------------------

    fn ioctl_simple(&mut self, hdr: &CcmdHdr, r: IoctlSimpleReq) -> CcmdResult {
        let size = ioc_size(r.cmd);
        if hdr.len as usize != 24 + size {
            crate::log::violation(&format!("IOCTL_SIMPLE {:#x}: len {} is not 24 + {size}", r.cmd, hdr.len));
            return Err(-libc::EINVAL);
        }
        if size > 128 {
            return Err(-libc::EINVAL);
        }
        let out = ioc_out(r.cmd);
        self.reserve(hdr, 8 + if out { size } else { 0 })?;
        let mut p = r.payload;
        p.resize(size, 0);
        let allowed = [
            IOCTL_REG_READ,
            IOCTL_GET_APERTURE,
            IOCTL_SET_TILING,
            IOCTL_GET_TILING,
            IOCTL_SET_DOMAIN,
            IOCTL_GET_RESET_STATS,
            IOCTL_CONTEXT_CREATE,
            IOCTL_CONTEXT_DESTROY,
            IOCTL_CONTEXT_GETPARAM,
            IOCTL_CONTEXT_SETPARAM,
            IOCTL_VM_CREATE,
            IOCTL_VM_DESTROY,
        ];
        if !allowed.contains(&r.cmd) {
            crate::log::violation(&format!("IOCTL_SIMPLE: ioctl {:#x} is not on the host's allow-list", r.cmd));
            return Err(-libc::EINVAL);
        }
        let mut ret = 0i32;
        // Handle-carrying ioctls: the first u32 is a res_id of this context.
        if matches!(r.cmd, IOCTL_SET_TILING | IOCTL_GET_TILING | IOCTL_SET_DOMAIN) {
            match self.objects.get(&rd32(&p, 0)) {
                Some(o) => wr32(&mut p, 0, o.handle),
                None => {
                    self.fill(&IoctlSimpleRsp { ret: libc::EINVAL, payload: if out { p } else { Vec::new() } });
                    return Ok(());
                }
            }
        }
        if r.cmd == IOCTL_CONTEXT_DESTROY {
            self.shmem_banned_update(u64::from(rd32(&p, 0)), false);
        }
        if matches!(r.cmd, IOCTL_CONTEXT_GETPARAM | IOCTL_CONTEXT_SETPARAM) {
            let param = rd64(&p, 8);
            if ![
                swi915::CONTEXT_PARAM_GTT_SIZE,
                swi915::CONTEXT_PARAM_PRIORITY,
                swi915::CONTEXT_PARAM_RECOVERABLE,
                swi915::CONTEXT_PARAM_VM,
            ]
            .contains(&param)
            {
                crate::log::violation(&format!("IOCTL_SIMPLE: context param {param} is not allowed by the host"));
                return Err(libc::EINVAL);
            }
            if param == swi915::CONTEXT_PARAM_PRIORITY && rd64(&p, 16) > 0 {
                self.fill(&IoctlSimpleRsp { ret: libc::EPERM, payload: if out { p } else { Vec::new() } });
                return Ok(());
            }
        }
        let f = &mut self.file;
        let result: Result<(), i32> = match r.cmd {
            IOCTL_REG_READ => f.reg_read(rd64(&p, 0)).map(|v| wr64(&mut p, 8, v)),
            IOCTL_GET_APERTURE => {
                let (a, b) = f.get_aperture();
                wr64(&mut p, 0, a);
                wr64(&mut p, 8, b);
                Ok(())
            }
            IOCTL_SET_TILING => f.set_tiling(rd32(&p, 0), rd32(&p, 4), rd32(&p, 8)).map(|(m, s, sw)| {
                wr32(&mut p, 4, m);
                wr32(&mut p, 8, s);
                wr32(&mut p, 12, sw);
            }),
            IOCTL_GET_TILING => f.get_tiling(rd32(&p, 0)).map(|(m, sw, psw)| {
                wr32(&mut p, 4, m);
                wr32(&mut p, 8, sw);
                wr32(&mut p, 12, psw);
            }),
            IOCTL_SET_DOMAIN => f.set_domain(rd32(&p, 0), rd32(&p, 4), rd32(&p, 8)),
            IOCTL_GET_RESET_STATS => f.reset_stats(rd32(&p, 0), rd32(&p, 4), rd32(&p, 20)).map(|(rc, a, pe)| {
                wr32(&mut p, 8, rc);
                wr32(&mut p, 12, a);
                wr32(&mut p, 16, pe);
            }),
            IOCTL_CONTEXT_CREATE => {
                if rd32(&p, 4) != 0 {
                    Err(libc::EINVAL)
                } else {
                    f.context_create(0, &[]).map(|id| wr32(&mut p, 0, id))
                }
            }
            IOCTL_CONTEXT_DESTROY => f.context_destroy(rd32(&p, 0), rd32(&p, 4)),
            IOCTL_CONTEXT_GETPARAM => f.context_getparam(rd32(&p, 0), rd32(&p, 4), rd64(&p, 8)).map(|(s, v)| {
                wr32(&mut p, 4, s);
                wr64(&mut p, 16, v);
            }),
            IOCTL_CONTEXT_SETPARAM => f.context_setparam(rd32(&p, 0), rd32(&p, 4), rd64(&p, 8), rd64(&p, 16)),
            IOCTL_VM_CREATE => f.vm_create(rd64(&p, 0), rd32(&p, 8)).map(|id| wr32(&mut p, 12, id)),
            IOCTL_VM_DESTROY => f.vm_destroy(rd32(&p, 12), rd32(&p, 8), rd64(&p, 0)),
            _ => Err(libc::ENOTTY),
        };
        if let Err(e) = result {
            ret = e;
        }
        self.fill(&IoctlSimpleRsp { ret, payload: if out { p } else { Vec::new() } });
        Ok(())
    }

    // ---- ccmd 2 / 3 --------------------------------------------------------------------

    fn getparam(&mut self, hdr: &CcmdHdr, r: GetparamReq) -> CcmdResult {
        self.reserve(hdr, 16)?;
        const MMAP_GTT_VERSION: u32 = 40;
        let (ret, mut value) = match self.file.getparam(r.param as i32) {
            Ok(v) => (0, v),
            Err(e) => (e, -1),
        };
        if ret == 0 && r.param == MMAP_GTT_VERSION && value >= 5 {
            value = 4;
        }
        self.fill(&GetparamRsp { ret, value });
        Ok(())
    }

    fn queryparam(&mut self, hdr: &CcmdHdr, r: QueryparamReq) -> CcmdResult {
        let reserved = r.length as usize;
        self.reserve(hdr, 16usize.saturating_add(reserved))?;
        let length = i32::try_from(r.length).unwrap_or(i32::MAX);
        let rsp = match self.file.query_item(u64::from(r.query_id), r.flags, length) {
            Ok((len, data)) => QueryparamRsp { ret: 0, length: len, payload: data.unwrap_or_default(), reserved },
            Err(e) => QueryparamRsp { ret: e, length, payload: Vec::new(), reserved },
        };
        self.fill(&rsp);
        Ok(())
    }

    // ---- ccmd 4 / 5 --------------------------------------------------------------------

    fn check_blob_id(&self, blob_id: u32) -> CcmdResult {
        if blob_id == 0 || self.pending.contains_key(&blob_id) {
            crate::log::violation(&format!("GEM_CREATE: blob_id {blob_id} is zero or still pending"));
            return Err(-libc::EINVAL);
        }
        Ok(())
    }

    fn gem_create(&mut self, r: GemCreateReq) -> CcmdResult {
        self.check_blob_id(r.blob_id)?;
        let handle = self.file.gem_create(r.size).map_err(|e| {
            crate::log::violation(&format!("GEM_CREATE of {} bytes failed in i915 ({e})", r.size));
            -e
        })?;
        self.pending.insert(r.blob_id, Pending { handle, size: r.size, map_info: MAP_CACHE_CACHED, configured: false });
        Ok(())
    }

    fn gem_create_ext(&mut self, hdr: &CcmdHdr, r: GemCreateExtReq) -> CcmdResult {
        if hdr.len as usize != 40usize.saturating_add(r.ext_size as usize) {
            crate::log::violation(&format!("GEM_CREATE_EXT: len {} is not 40 + ext_size {}", hdr.len, r.ext_size));
            return Err(-libc::EINVAL);
        }
        self.check_blob_id(r.blob_id)?;
        let p = &r.payload[..(r.ext_size as usize).min(r.payload.len())];
        let mut exts = Vec::new();
        let mut off = 0usize;
        let mut pat: Option<u32> = None;
        let mut lmem = false;
        while off < p.len() {
            let rest = &p[off..];
            if rest.len() < USER_EXT_SIZE {
                crate::log::violation("GEM_CREATE_EXT: truncated extension");
                return Err(-libc::EINVAL);
            }
            let base = UserExt::decode(rest);
            let mbz_ok = base.flags == 0 && !base.rsvd_nonzero;
            let used = match base.name {
                GEM_CREATE_EXT_MEMORY_REGIONS => {
                    let n = rd32(rest, 36) as usize;
                    let used = MEMORY_REGIONS_EXT_SIZE.saturating_add(n.saturating_mul(4));
                    if rest.len() < used {
                        crate::log::violation("GEM_CREATE_EXT: memory region list overruns ext_size");
                        return Err(-libc::EINVAL);
                    }
                    let regions: Vec<(u16, u16)> =
                        (0..n).map(|i| (rd16(rest, 48 + 4 * i), rd16(rest, 50 + 4 * i))).collect();
                    lmem |= regions.iter().any(|r| r.0 == crate::profile::MEMORY_CLASS_DEVICE);
                    exts.push(CreateExt::MemoryRegions { mbz_ok, pad: rd32(rest, 32), regions });
                    used
                }
                GEM_CREATE_EXT_PROTECTED_CONTENT => {
                    exts.push(CreateExt::ProtectedContent { mbz_ok, flags: rd32(rest, 32) });
                    PROTECTED_EXT_SIZE
                }
                GEM_CREATE_EXT_SET_PAT => {
                    pat = Some(rd32(rest, 32));
                    exts.push(CreateExt::SetPat { mbz_ok, pat_index: rd32(rest, 32) });
                    SET_PAT_EXT_SIZE
                }
                other => {
                    crate::log::violation(&format!("GEM_CREATE_EXT: extension {other} is not supported by the host"));
                    return Err(-libc::EINVAL);
                }
            };
            if used > rest.len() {
                crate::log::violation("GEM_CREATE_EXT: extension overruns ext_size");
                return Err(-libc::EINVAL);
            }
            off += used;
        }
        let handle = self.file.gem_create_ext(r.size, r.gem_flags, &exts).map_err(|e| {
            crate::log::violation(&format!("GEM_CREATE_EXT failed in i915 ({e}): a protocol error on this host"));
            -e
        })?;
        let (map_info, configured) = match pat {
            Some(1) => (MAP_CACHE_WC, true),
            Some(_) => (MAP_CACHE_CACHED, true),
            None if lmem => (MAP_CACHE_WC, true),
            None => (MAP_CACHE_CACHED, false),
        };
        self.pending.insert(r.blob_id, Pending { handle, size: r.size, map_info, configured });
        Ok(())
    }

    // ---- ccmd 6 ------------------------------------------------------------------------

    fn context_create(&mut self, hdr: &CcmdHdr, r: GemContextCreateReq) -> CcmdResult {
        if hdr.len as usize != 24usize.saturating_add(r.params_size as usize) {
            crate::log::violation(&format!("GEM_CONTEXT_CREATE: len {} is not 24 + {}", hdr.len, r.params_size));
            return Err(-libc::EINVAL);
        }
        self.reserve(hdr, 16)?;
        let p = &r.payload[..(r.params_size as usize).min(r.payload.len())];
        let mut params = Vec::new();
        let mut off = 0usize;
        let allowed = [4u64, 5, 6, 7, 8, 9, 10, 11, 13];
        while off < p.len() {
            let rest = &p[off..];
            if rest.len() < SETPARAM_EXT_SIZE {
                crate::log::violation("GEM_CONTEXT_CREATE: truncated setparam element");
                return Err(-libc::EINVAL);
            }
            let base = UserExt::decode(rest);
            let size = rd32(rest, 36);
            let param = rd64(rest, 40);
            let value = rd64(rest, 48);
            if !allowed.contains(&param) {
                crate::log::violation(&format!("GEM_CONTEXT_CREATE: context param {param} is not allowed by the host"));
                return Err(-libc::EINVAL);
            }
            if param == swi915::CONTEXT_PARAM_PRIORITY && value > 0 {
                self.fill(&ContextCreateRsp { ret: libc::EPERM, ctx_id: 0 });
                return Ok(());
            }
            if !size.is_multiple_of(4) || size > 128 || rest.len() < SETPARAM_EXT_SIZE + size as usize {
                crate::log::violation(&format!("GEM_CONTEXT_CREATE: bad inline size {size} for param {param}"));
                return Err(-libc::EINVAL);
            }
            let data = rest[SETPARAM_EXT_SIZE..SETPARAM_EXT_SIZE + size as usize].to_vec();
            params.push(SetParam {
                base_ok: base.name == 0 && base.flags == 0 && !base.rsvd_nonzero,
                ctx_id: rd32(rest, 32),
                size,
                param,
                value,
                data,
            });
            off += SETPARAM_EXT_SIZE + size as usize;
        }
        const USE_EXTENSIONS: u32 = 1;
        if r.flags & USE_EXTENSIONS != 0 && r.params_size == 0 {
            crate::log::violation("GEM_CONTEXT_CREATE with USE_EXTENSIONS and no params: i915 would parse host heap");
            self.fill(&ContextCreateRsp { ret: libc::EFAULT, ctx_id: 0 });
            return Ok(());
        }
        let rsp = match self.file.context_create(r.flags, &params) {
            Ok(id) => ContextCreateRsp { ret: 0, ctx_id: id },
            Err(e) => ContextCreateRsp { ret: e, ctx_id: 0 },
        };
        self.fill(&rsp);
        Ok(())
    }

    // ---- ccmd 7 ------------------------------------------------------------------------

    fn execbuffer(&mut self, hdr: &CcmdHdr, r: ExecbufReq) -> CcmdResult {
        let want = (r.buffer_count as u64)
            .checked_mul(EXEC_OBJECT_SIZE as u64)
            .and_then(|a| (r.relocs_count as u64).checked_mul(RELOC_SIZE as u64).map(|b| (a, b)))
            .and_then(|(a, b)| a.checked_add(b))
            .and_then(|x| x.checked_add(48));
        if want != Some(u64::from(hdr.len)) {
            crate::log::violation(&format!(
                "GEM_EXECBUFFER2: len {} does not match {} objects and {} relocs",
                hdr.len, r.buffer_count, r.relocs_count
            ));
            return Err(-libc::EINVAL);
        }
        self.reserve(hdr, 8)?;
        let guest_only = swi915::EXEC_FENCE_IN
            | swi915::EXEC_FENCE_SUBMIT
            | swi915::EXEC_FENCE_ARRAY
            | swi915::EXEC_USE_EXTENSIONS
            | swi915::EXEC_FENCE_OUT;
        if r.flags & guest_only != 0 {
            crate::log::violation(&format!(
                "GEM_EXECBUFFER2 flags {:#x} carry fence/extension bits the host cannot honour",
                r.flags
            ));
        }
        let ring = 1 + (r.flags & swi915::EXEC_RING_MASK) as u32;
        self.timelines.entry(ring).or_default();
        let mut objects = Vec::with_capacity(r.buffer_count as usize);
        let mut reloc_base = r.buffer_count as usize * EXEC_OBJECT_SIZE;
        let mut relocs_used: u64 = 0;
        for i in 0..r.buffer_count as usize {
            let mut e = ExecObject::decode(&r.payload[i * EXEC_OBJECT_SIZE..]);
            let Some(o) = self.objects.get(&e.handle) else {
                self.fill(&ExecbufRsp { ret: libc::EINVAL });
                return Ok(());
            };
            e.handle = o.handle;
            let mut relocs = Vec::new();
            if e.relocation_count != 0 {
                relocs_used += u64::from(e.relocation_count);
                if relocs_used > u64::from(r.relocs_count) {
                    self.fill(&ExecbufRsp { ret: libc::EINVAL });
                    return Ok(());
                }
                if r.flags & swi915::EXEC_HANDLE_LUT == 0 {
                    crate::log::violation("GEM_EXECBUFFER2 with relocations but without I915_EXEC_HANDLE_LUT");
                }
                for _ in 0..e.relocation_count {
                    relocs.push(Reloc::decode(&r.payload[reloc_base..]));
                    reloc_base += RELOC_SIZE;
                }
            } else if e.relocs_ptr != 0 {
                crate::log::violation("GEM_EXECBUFFER2 exec object with relocs_ptr but no relocations");
            }
            objects.push((e, relocs));
        }
        let args = ExecArgs {
            flags: r.flags | swi915::EXEC_FENCE_OUT,
            ctx_id: r.context_id,
            batch_start_offset: r.batch_start_offset,
            batch_len: r.batch_len,
            objects,
            have_in_fence: false,
        };
        let k = EXEC_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if crate::config::get().fail_exec == Some(k) {
            crate::log::info(&format!("fault injection: execbuffer #{k} refused (ENOSPC)"));
            self.fill(&ExecbufRsp { ret: libc::ENOSPC });
            return Ok(());
        }
        let ret = match self.file.execbuffer(&args) {
            Ok(fence) => {
                if let Some(t) = self.timelines.get_mut(&ring) {
                    t.last_fence = Some(fence);
                }
                0
            }
            Err(e) => {
                if e == libc::EIO {
                    self.shmem_banned_update(r.context_id, true);
                }
                e
            }
        };
        self.fill(&ExecbufRsp { ret });
        Ok(())
    }

    // ---- ccmd 8 / 9 --------------------------------------------------------------------

    fn set_mmap_mode(&mut self, r: SetMmapModeReq, res: &mut dyn ResourceView) -> CcmdResult {
        let Some(obj) = self.objects.get(&r.res_id).cloned() else {
            return Ok(());
        };
        if !res.exists(r.res_id) {
            return Err(-libc::EINVAL);
        }
        if !obj.configured && res.mapped(r.res_id) {
            if let Some(o) = self.objects.get_mut(&r.res_id) {
                o.configured = true;
            }
            return Ok(());
        }
        let mode = match r.flags {
            0 | 1 | 4 => MAP_CACHE_WC,
            2 => MAP_CACHE_CACHED,
            3 => MAP_CACHE_UNCACHED,
            _ => {
                crate::log::violation(&format!("GEM_SET_MMAP_MODE: invalid flags {}", r.flags));
                return Err(-libc::EINVAL);
            }
        };
        if obj.configured {
            return Ok(());
        }
        if let Some(o) = self.objects.get_mut(&r.res_id) {
            o.configured = true;
        }
        res.set_map_info(r.res_id, mode);
        Ok(())
    }

    fn busy(&mut self, hdr: &CcmdHdr, r: GemBusyReq) -> CcmdResult {
        self.reserve(hdr, 16)?;
        let rsp = match self.objects.get(&r.res_id) {
            None => GemBusyRsp { ret: libc::EINVAL, busy: 0 },
            Some(o) => match self.file.busy(o.handle) {
                Ok(b) => GemBusyRsp { ret: 0, busy: b },
                Err(e) => GemBusyRsp { ret: e, busy: 0 },
            },
        };
        self.fill(&rsp);
        Ok(())
    }
}
