//! A vdrm connection over the upstream virtio_gpu uAPI: device probing,
//! CONTEXT_INIT, the shmem blob, seqnos, response slots and synchronous
//! ccmds (one ccmd per ring-0 fenced SUBMIT_3D, errata §A.2/§A.3 rules).

use crate::proto::{
    self, seqno_before, slot_size, CcmdHdr, DecodeError, Execbuffer2Req, Execbuffer2Rsp, Request, Response,
    RSP_SENTINEL, SHMEM_BANNED_CTX_MASK_OFF, SHMEM_RSP_MEM_OFFSET_OFF, SHMEM_SEQNO_OFF,
};
use crate::uapi::*;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Size of the shmem blob (as Mesa): 16 KiB.
pub const SHMEM_SIZE: u64 = 0x4000;
/// NUM_RINGS requested at CONTEXT_INIT (ring 0 = ccmd ring, 1.. = engines).
pub const NUM_RINGS: u64 = 64;
/// Default timeout for a ring-0 fence (the host retires it when it has
/// processed the SUBMIT_3D, so this only fires if the host is stuck).
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub enum Error {
    /// A syscall/ioctl failed.
    Sys {
        what: String,
        err: io::Error,
    },
    /// A fence did not signal in time.
    Timeout {
        what: String,
        after: Duration,
    },
    /// The host did not publish this ccmd's seqno: it was rejected with a
    /// protocol error (no response, rest of the SUBMIT_3D dropped).
    Rejected {
        what: &'static str,
        seqno: u32,
        shmem_seqno: u32,
        sentinel_intact: Option<bool>,
    },
    /// The seqno moved past ours but our slot still holds the sentinel.
    NotExecuted {
        what: &'static str,
        seqno: u32,
        shmem_seqno: u32,
    },
    Decode {
        what: &'static str,
        err: DecodeError,
    },
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { what, err } => write!(f, "{}: {}", what, err),
            Error::Timeout { what, after } => {
                write!(f, "{}: fence not signalled after {:.1} s", what, after.as_secs_f64())
            }
            Error::Rejected { what, seqno, shmem_seqno, sentinel_intact } => write!(
                f,
                "{} ccmd rejected by the host (seqno {} not published, shmem seqno {}{})",
                what,
                seqno,
                shmem_seqno,
                match sentinel_intact {
                    Some(true) => ", response sentinel intact",
                    Some(false) => ", response slot was written",
                    None => "",
                }
            ),
            Error::NotExecuted { what, seqno, shmem_seqno } => write!(
                f,
                "{} ccmd not executed (seqno {}, shmem seqno {}, response sentinel intact)",
                what, seqno, shmem_seqno
            ),
            Error::Decode { what, err } => write!(f, "{}: {}", what, err),
            Error::Invalid(s) => write!(f, "{}", s),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn sys(what: impl Into<String>, err: io::Error) -> Error {
    Error::Sys { what: what.into(), err }
}

// ---------------------------------------------------------------------------
// Response slot allocator
// ---------------------------------------------------------------------------

/// Allocates response slots inside `[start, end)` of the response area
/// (offsets relative to the area). 8-byte aligned, rotating first fit, with
/// tracking of live slots so a slot is never handed out twice.
#[derive(Debug, Clone)]
pub struct SlotAllocator {
    start: u32,
    end: u32,
    cursor: u32,
    live: Vec<(u32, u32)>,
}

impl SlotAllocator {
    pub fn new(start: u32, end: u32) -> Self {
        let start = start.next_multiple_of(proto::RSP_SLOT_ALIGN);
        SlotAllocator { start, end: end.max(start), cursor: start, live: Vec::new() }
    }

    #[cfg(test)]
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    fn overlapping(&self, off: u32, size: u32) -> Option<(u32, u32)> {
        self.live.iter().copied().find(|&(o, s)| off < o + s && o < off + size)
    }

    pub fn alloc(&mut self, size: u32) -> Option<u32> {
        let size = size.max(proto::RSP_SLOT_ALIGN).next_multiple_of(proto::RSP_SLOT_ALIGN);
        if size > self.end - self.start {
            return None;
        }
        let mut cand = self.cursor;
        let mut wrapped = false;
        // Each step either skips past one live slot or wraps once.
        for _ in 0..(2 * self.live.len() + 4) {
            if cand + size > self.end {
                if wrapped {
                    return None;
                }
                wrapped = true;
                cand = self.start;
                continue;
            }
            if wrapped && cand >= self.cursor {
                // Scanned [cursor, end) before wrapping and [start, cursor) now.
                return None;
            }
            match self.overlapping(cand, size) {
                None => {
                    self.live.push((cand, size));
                    self.cursor = cand + size;
                    if self.cursor >= self.end {
                        self.cursor = self.start;
                    }
                    return Some(cand);
                }
                Some((o, s)) => cand = (o + s).next_multiple_of(proto::RSP_SLOT_ALIGN),
            }
        }
        None
    }

    pub fn free(&mut self, off: u32) {
        self.live.retain(|&(o, _)| o != off);
    }
}

// ---------------------------------------------------------------------------
// Device (the render node before CONTEXT_INIT)
// ---------------------------------------------------------------------------

pub struct Device {
    pub path: String,
    fd: OwnedFd,
}

impl Device {
    pub fn open(path: &str) -> Result<Device> {
        let c = CString::new(path).map_err(|_| Error::Invalid(format!("bad device path {:?}", path)))?;
        // SAFETY: plain open(2) of a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(sys(format!("cannot open {}", path), io::Error::last_os_error()));
        }
        // SAFETY: fd was just returned by open and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Device { path: path.to_string(), fd })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// DRM driver name and version (DRM_IOCTL_VERSION).
    pub fn driver(&self) -> Result<(String, i32, i32, i32)> {
        let mut name = [0u8; 64];
        let mut v = DrmVersion { name_len: name.len() as u64, name: name.as_mut_ptr() as u64, ..Default::default() };
        // SAFETY: name buffer outlives the call; date/desc lengths are 0.
        unsafe { ioctl(self.raw(), DRM_IOCTL_VERSION, &mut v) }.map_err(|e| sys("DRM_IOCTL_VERSION", e))?;
        let n = (v.name_len as usize).min(name.len());
        let s = String::from_utf8_lossy(&name[..n]).trim_end_matches('\0').to_string();
        Ok((s, v.version_major, v.version_minor, v.version_patchlevel))
    }

    /// DRM_IOCTL_VIRTGPU_GETPARAM (the kernel writes an int through `value`).
    pub fn getparam(&self, param: u64) -> Result<u64> {
        let mut value: u64 = 0;
        let mut gp = DrmVirtgpuGetparam { param, value: &mut value as *mut u64 as u64 };
        // SAFETY: value outlives the call and is large enough for the int.
        unsafe { ioctl(self.raw(), DRM_IOCTL_VIRTGPU_GETPARAM, &mut gp) }
            .map_err(|e| sys(format!("VIRTGPU_GETPARAM({})", param), e))?;
        Ok(value)
    }

    /// DRM_IOCTL_VIRTGPU_GET_CAPS.
    pub fn get_caps(&self, capset_id: u32, version: u32, size: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; size];
        let mut gc = DrmVirtgpuGetCaps {
            cap_set_id: capset_id,
            cap_set_ver: version,
            addr: buf.as_mut_ptr() as u64,
            size: size as u32,
            pad: 0,
        };
        // SAFETY: buf has `size` bytes and outlives the call.
        unsafe { ioctl(self.raw(), DRM_IOCTL_VIRTGPU_GET_CAPS, &mut gc) }
            .map_err(|e| sys(format!("VIRTGPU_GET_CAPS(capset {}, version {})", capset_id, version), e))?;
        Ok(buf)
    }
}

// ---------------------------------------------------------------------------
// Fence helpers
// ---------------------------------------------------------------------------

/// Wait for a sync_file fd to signal (POLLIN) with a timeout; returns the
/// time waited.
pub fn wait_fence(fd: &OwnedFd, timeout: Duration, what: &str) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(sys(format!("poll on {} fence", what), e));
        }
        if r > 0 {
            if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 && p.revents & libc::POLLIN == 0 {
                return Err(Error::Invalid(format!("{} fence: poll revents {:#x}", what, p.revents)));
            }
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout { what: what.to_string(), after: start.elapsed() });
        }
    }
}

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: ptr/len came from a successful mmap.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

/// An execbuffer that has been submitted and whose out-fence is pending.
pub struct PendingExec {
    pub fence: OwnedFd,
    pub seqno: u32,
    pub ring_idx: u32,
    slot: u32,
}

pub struct Connection {
    // Field order matters for Drop: the mapping goes before the fd.
    shmem: Mapping,
    pub dev: Device,
    pub shmem_handle: u32,
    pub shmem_res_id: u32,
    pub rsp_mem_offset: u32,
    pub initial_seqno: u32,
    area_len: u32,
    next_seqno: u32,
    slots: SlotAllocator,
    scratch_off: u32,
    next_blob_id: u32,
    pub debug_name_sent: bool,
    pub verbose: bool,
    pub sync_timeout: Duration,
}

/// Where no-response ccmds point their `rsp_off` (errata §A.3): an 8-byte
/// slot at the start of the response area whose `len` stays 0.
const SCRATCH_SLOT_SIZE: u32 = 8;

impl Connection {
    /// CONTEXT_INIT (capset 6, NUM_RINGS 64, optional debug name), then
    /// create and map the shmem blob (blob_id 0, HOST3D, MAPPABLE only).
    pub fn init(dev: Device, debug_name: Option<&str>, verbose: bool) -> Result<Connection> {
        let explicit_name = dev.getparam(VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME).unwrap_or(0) == 1;
        let name_c = match debug_name {
            Some(n) if explicit_name => {
                Some(CString::new(n).map_err(|_| Error::Invalid("debug name contains NUL".into()))?)
            }
            _ => None,
        };
        let mut params = vec![
            DrmVirtgpuContextSetParam { param: VIRTGPU_CONTEXT_PARAM_CAPSET_ID, value: VIRTGPU_DRM_CAPSET_DRM as u64 },
            DrmVirtgpuContextSetParam { param: VIRTGPU_CONTEXT_PARAM_NUM_RINGS, value: NUM_RINGS },
        ];
        if let Some(n) = &name_c {
            params
                .push(DrmVirtgpuContextSetParam { param: VIRTGPU_CONTEXT_PARAM_DEBUG_NAME, value: n.as_ptr() as u64 });
        }
        let mut init =
            DrmVirtgpuContextInit { num_params: params.len() as u32, pad: 0, ctx_set_params: params.as_ptr() as u64 };
        // SAFETY: params (and the name string) outlive the call.
        unsafe { ioctl(dev.raw(), DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &mut init) }
            .map_err(|e| sys("VIRTGPU_CONTEXT_INIT(capset 6, 64 rings)", e))?;

        let (handle, res_id) =
            create_blob_raw(&dev, VIRTGPU_BLOB_MEM_HOST3D, VIRTGPU_BLOB_FLAG_USE_MAPPABLE, SHMEM_SIZE, 0, &[])
                .map_err(|e| prefix(e, "shmem blob"))?;
        let ptr = map_raw(&dev, handle, SHMEM_SIZE).map_err(|e| prefix(e, "shmem blob"))?;
        let shmem = Mapping { ptr, len: SHMEM_SIZE as usize };

        let mut c = Connection {
            shmem,
            dev,
            shmem_handle: handle,
            shmem_res_id: res_id,
            rsp_mem_offset: 0,
            initial_seqno: 0,
            area_len: 0,
            next_seqno: 0,
            slots: SlotAllocator::new(0, 0),
            scratch_off: 0,
            next_blob_id: 1,
            debug_name_sent: name_c.is_some(),
            verbose,
            sync_timeout: SYNC_TIMEOUT,
        };
        c.rsp_mem_offset = c.shmem_u32(SHMEM_RSP_MEM_OFFSET_OFF).load(Ordering::Acquire);
        c.initial_seqno = c.shmem_seqno();
        let off = c.rsp_mem_offset;
        if off < 8 || !off.is_multiple_of(4) || off as u64 + 64 > SHMEM_SIZE {
            return Err(Error::Invalid(format!(
                "shmem rsp_mem_offset = {} (expected 16): the host did not set up an i915 shmem",
                off
            )));
        }
        c.area_len = (SHMEM_SIZE - off as u64) as u32;
        c.scratch_off = 0;
        c.write_area_u32(c.scratch_off, 0);
        c.slots = SlotAllocator::new(SCRATCH_SLOT_SIZE, c.area_len);
        // Continue the sequence from whatever the host holds (0 on a fresh shmem).
        c.next_seqno = c.initial_seqno;
        if verbose {
            eprintln!(
                "# context ready: shmem handle {} res_id {} rsp_mem_offset {} seqno {} area {} bytes",
                c.shmem_handle, c.shmem_res_id, c.rsp_mem_offset, c.initial_seqno, c.area_len
            );
        }
        Ok(c)
    }

    pub fn raw_fd(&self) -> RawFd {
        self.dev.raw()
    }

    fn shmem_u32(&self, off: usize) -> &AtomicU32 {
        // SAFETY: off is 4-aligned inside the page-aligned mapping, which
        // lives as long as self; the host writes it concurrently, hence atomic.
        unsafe { &*(self.shmem.ptr.add(off) as *const AtomicU32) }
    }

    /// `shmem.seqno`, read with acquire ordering (the host publishes it with
    /// a full barrier after copying the response).
    pub fn shmem_seqno(&self) -> u32 {
        self.shmem_u32(SHMEM_SEQNO_OFF).load(Ordering::Acquire)
    }

    /// `banned_ctx_mask`, if this host's shmem has it.
    pub fn banned_ctx_mask(&self) -> Option<u64> {
        if !proto::shmem_has_banned_mask(self.rsp_mem_offset) {
            return None;
        }
        // SAFETY: offset 8 is 8-aligned inside the mapping.
        let a = unsafe { &*(self.shmem.ptr.add(SHMEM_BANNED_CTX_MASK_OFF) as *const AtomicU64) };
        Some(a.load(Ordering::Acquire))
    }

    fn area_ptr(&self, off: u32) -> *mut u8 {
        debug_assert!(off < self.area_len);
        // SAFETY: callers keep off inside the response area.
        unsafe { self.shmem.ptr.add(self.rsp_mem_offset as usize + off as usize) }
    }
    fn write_area_u32(&self, off: u32, v: u32) {
        // SAFETY: 4-aligned offset inside the mapped area.
        unsafe { std::ptr::write_volatile(self.area_ptr(off) as *mut u32, v) }
    }
    fn read_area_u32(&self, off: u32) -> u32 {
        // SAFETY: 4-aligned offset inside the mapped area.
        unsafe { std::ptr::read_volatile(self.area_ptr(off) as *const u32) }
    }

    /// Pre-fill a slot: `len` = capacity, zeros, sentinel in `ret`.
    fn prefill(&self, off: u32, cap: u32, ret_off: usize) {
        for i in (4..cap).step_by(4) {
            self.write_area_u32(off + i, 0);
        }
        self.write_area_u32(off + ret_off as u32, RSP_SENTINEL as u32);
        self.write_area_u32(off, cap);
        std::sync::atomic::fence(Ordering::Release);
    }

    pub fn alloc_seqno(&mut self) -> u32 {
        self.next_seqno = self.next_seqno.wrapping_add(1);
        self.next_seqno
    }

    pub fn last_seqno(&self) -> u32 {
        self.next_seqno
    }

    pub fn alloc_blob_id(&mut self) -> u32 {
        let id = self.next_blob_id;
        self.next_blob_id = self.next_blob_id.wrapping_add(1).max(1);
        id
    }

    fn alloc_slot<R: Request>(&mut self, req: &R) -> Result<Option<(u32, u32)>> {
        let cap = slot_size(req);
        if cap == 0 {
            return Ok(None);
        }
        let off = self
            .slots
            .alloc(cap)
            .ok_or_else(|| Error::Invalid(format!("{}: no room for a {}-byte response slot", R::NAME, cap)))?;
        self.prefill(off, cap, R::Response::RET_OFFSET);
        Ok(Some((off, cap)))
    }

    fn dump(&self, what: &str, bytes: &[u8], carrier: &str) {
        if !self.verbose {
            return;
        }
        if let Some(h) = CcmdHdr::read(bytes) {
            eprintln!(
                "# -> {} cmd {} len {} seqno {} rsp_off {} ({})",
                what, h.cmd, h.len, h.seqno, h.rsp_off, carrier
            );
        }
        for (i, chunk) in bytes.chunks(32).enumerate().take(16) {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{:02x}", b)).collect();
            eprintln!("#    {:04x}: {}", i * 32, hex.join(" "));
        }
    }

    /// EXECBUFFER ioctl carrying `cmd` as one SUBMIT_3D.
    pub fn submit(
        &self,
        cmd: &[u8],
        ring: Option<u32>,
        fence_out: bool,
        bo_handles: &[u32],
    ) -> Result<Option<OwnedFd>> {
        let mut eb = DrmVirtgpuExecbuffer {
            size: cmd.len() as u32,
            command: cmd.as_ptr() as u64,
            fence_fd: -1,
            ..Default::default()
        };
        if let Some(r) = ring {
            eb.flags |= VIRTGPU_EXECBUF_RING_IDX;
            eb.ring_idx = r;
        }
        if fence_out {
            eb.flags |= VIRTGPU_EXECBUF_FENCE_FD_OUT;
        }
        if !bo_handles.is_empty() {
            eb.bo_handles = bo_handles.as_ptr() as u64;
            eb.num_bo_handles = bo_handles.len() as u32;
        }
        // SAFETY: cmd and bo_handles outlive the call.
        unsafe { ioctl(self.raw_fd(), DRM_IOCTL_VIRTGPU_EXECBUFFER, &mut eb) }
            .map_err(|e| sys(format!("VIRTGPU_EXECBUFFER (ring {:?})", ring), e))?;
        if !fence_out {
            return Ok(None);
        }
        if eb.fence_fd < 0 {
            return Err(Error::Invalid("VIRTGPU_EXECBUFFER returned no out-fence fd".into()));
        }
        // SAFETY: the kernel installed a new fd for us.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(eb.fence_fd) }))
    }

    /// Check the outcome of a ccmd whose SUBMIT_3D has been processed.
    fn collect<R: Response>(&self, what: &'static str, seqno: u32, slot: Option<(u32, u32)>) -> Result<R> {
        // Acquire: everything the host copied before publishing is visible.
        let cur = self.shmem_seqno();
        let bytes = slot.map(|(off, cap)| {
            let mut b = Vec::with_capacity(cap as usize);
            for i in (0..cap).step_by(4) {
                b.extend_from_slice(&self.read_area_u32(off + i).to_le_bytes());
            }
            b
        });
        if self.verbose {
            let len = bytes.as_deref().and_then(|b| proto::get_u32(b, 0));
            eprintln!("# <- {} seqno {} rsp.len {:?} (shmem seqno {})", what, seqno, len, cur);
        }
        evaluate::<R>(what, cur, seqno, bytes.as_deref())
    }

    /// Synchronous ccmd: one ccmd per ring-0 fenced SUBMIT_3D, wait on the
    /// fence with poll(), then check seqno/sentinel and decode the response.
    /// No-response ccmds use the scratch slot and only check the seqno.
    pub fn sync<R: Request>(&mut self, req: &R) -> Result<R::Response> {
        let slot = self.alloc_slot(req)?;
        let seqno = self.alloc_seqno();
        let rsp_off = slot.map(|s| s.0).unwrap_or(self.scratch_off);
        let bytes = proto::encode(req, seqno, rsp_off);
        self.dump(R::NAME, &bytes, "ring-0 fenced SUBMIT_3D");
        let res = (|| {
            let fence = self.submit(&bytes, Some(0), true, &[])?.ok_or_else(|| Error::Invalid("no fence".into()))?;
            wait_fence(&fence, self.sync_timeout, &format!("{} ring-0", R::NAME))?;
            self.collect::<R::Response>(R::NAME, seqno, slot)
        })();
        match &res {
            // A timed-out slot might still be written later: leak it.
            Err(Error::Timeout { .. }) => {}
            _ => {
                if let Some((off, _)) = slot {
                    self.slots.free(off);
                }
            }
        }
        res
    }

    /// Encode a no-response ccmd for a later carrier (RESOURCE_CREATE_BLOB
    /// `cmd`): it gets a seqno and the scratch `rsp_off`.
    pub fn encode_noresp<R: Request>(&mut self, req: &R) -> Result<(Vec<u8>, u32)> {
        if req.rsp_size() != 0 {
            return Err(Error::Invalid(format!("{} has a response; send it with sync()", R::NAME)));
        }
        let seqno = self.alloc_seqno();
        let bytes = proto::encode(req, seqno, self.scratch_off);
        self.dump(R::NAME, &bytes, "in RESOURCE_CREATE_BLOB");
        Ok((bytes, seqno))
    }

    /// Has the host published `seqno` (or a later one)?
    pub fn seqno_reached(&self, seqno: u32) -> bool {
        proto::seqno_reached(self.shmem_seqno(), seqno)
    }

    /// Submit one EXECBUFFER2 ccmd in its own fenced SUBMIT_3D on ring
    /// `1 + (flags & 0x3f)`, with FENCE_FD_OUT and the BO list.
    pub fn exec_submit(&mut self, req: &Execbuffer2Req, bo_handles: &[u32]) -> Result<PendingExec> {
        let ring = req.ring_idx();
        if ring as u64 >= NUM_RINGS {
            return Err(Error::Invalid(format!("engine index {} needs ring {} >= NUM_RINGS", ring - 1, ring)));
        }
        let slot = self.alloc_slot(req)?.ok_or_else(|| Error::Invalid("execbuffer without slot".into()))?;
        let seqno = self.alloc_seqno();
        let bytes = proto::encode(req, seqno, slot.0);
        self.dump(Execbuffer2Req::NAME, &bytes, &format!("ring-{} fenced SUBMIT_3D", ring));
        match self.submit(&bytes, Some(ring), true, bo_handles) {
            Ok(Some(fence)) => Ok(PendingExec { fence, seqno, ring_idx: ring, slot: slot.0 }),
            Ok(None) => Err(Error::Invalid("no fence".into())),
            Err(e) => {
                self.slots.free(slot.0);
                Err(e)
            }
        }
    }

    /// Wait for an execbuffer's out-fence, then read its response.
    pub fn exec_wait(&mut self, p: PendingExec, timeout: Duration) -> Result<(Execbuffer2Rsp, Duration)> {
        let waited = wait_fence(&p.fence, timeout, &format!("EXECBUFFER2 ring-{}", p.ring_idx))?;
        let cap = slot_size(&Execbuffer2Req {
            flags: 0,
            context_id: 0,
            batch_start_offset: 0,
            batch_len: 0,
            objects: vec![],
            relocs: vec![],
        });
        let r = self.collect::<Execbuffer2Rsp>(Execbuffer2Req::NAME, p.seqno, Some((p.slot, cap)));
        self.slots.free(p.slot);
        Ok((r?, waited))
    }

    /// RESOURCE_CREATE_BLOB in this context.
    pub fn create_blob(&self, blob_mem: u32, flags: u32, size: u64, blob_id: u32, cmd: &[u8]) -> Result<(u32, u32)> {
        create_blob_raw(&self.dev, blob_mem, flags, size, blob_id as u64, cmd)
    }

    /// VIRTGPU_MAP + mmap of a whole blob.
    pub fn map(&self, handle: u32, size: u64) -> Result<*mut u8> {
        map_raw(&self.dev, handle, size)
    }

    pub fn gem_close(&self, handle: u32) -> Result<()> {
        let mut c = DrmGemClose { handle, pad: 0 };
        // SAFETY: plain struct argument.
        unsafe { ioctl(self.raw_fd(), DRM_IOCTL_GEM_CLOSE, &mut c) }
            .map_err(|e| sys(format!("GEM_CLOSE({})", handle), e))
    }

    /// DRM_IOCTL_VIRTGPU_WAIT on a BO (implicit fences in its dma-resv).
    pub fn virtgpu_wait(&self, handle: u32, nowait: bool) -> Result<()> {
        let mut w = DrmVirtgpu3dWait { handle, flags: if nowait { VIRTGPU_WAIT_NOWAIT } else { 0 } };
        // SAFETY: plain struct argument.
        unsafe { ioctl(self.raw_fd(), DRM_IOCTL_VIRTGPU_WAIT, &mut w) }
            .map_err(|e| sys(format!("VIRTGPU_WAIT({})", handle), e))
    }

    /// Orderly teardown: unmap and close the shmem handle, then close the fd.
    pub fn close(mut self) -> Result<()> {
        let m = std::mem::replace(&mut self.shmem, Mapping { ptr: std::ptr::null_mut(), len: 0 });
        drop(m);
        let r = self.gem_close(self.shmem_handle);
        drop(self);
        r
    }
}

/// Decide the outcome of a ccmd from the published seqno and a copy of its
/// response slot (`slot` = the whole slot, `cap` bytes, as read after the
/// acquire load of `shmem.seqno`; `None` for no-response ccmds).
pub fn evaluate<R: Response>(what: &'static str, shmem_seqno: u32, seqno: u32, slot: Option<&[u8]>) -> Result<R> {
    let ret_at = |b: &[u8]| proto::get_i32(b, R::RET_OFFSET);
    if seqno_before(shmem_seqno, seqno) {
        let sentinel_intact =
            slot.map(|b| proto::get_u32(b, 0) == Some(b.len() as u32) && ret_at(b) == Some(RSP_SENTINEL));
        return Err(Error::Rejected { what, seqno, shmem_seqno, sentinel_intact });
    }
    let Some(b) = slot else {
        return R::decode(&[]).map_err(|err| Error::Decode { what, err });
    };
    let len = proto::get_u32(b, 0).unwrap_or(0) as usize;
    if len >= R::RET_OFFSET + 4 && ret_at(b) == Some(RSP_SENTINEL) {
        return Err(Error::NotExecuted { what, seqno, shmem_seqno });
    }
    let n = len.min(b.len());
    R::decode(&b[..n]).map_err(|err| Error::Decode { what, err })
}

fn prefix(e: Error, p: &str) -> Error {
    match e {
        Error::Sys { what, err } => Error::Sys { what: format!("{}: {}", p, what), err },
        other => other,
    }
}

fn create_blob_raw(dev: &Device, blob_mem: u32, flags: u32, size: u64, blob_id: u64, cmd: &[u8]) -> Result<(u32, u32)> {
    let mut b = DrmVirtgpuResourceCreateBlob {
        blob_mem,
        blob_flags: flags,
        size,
        blob_id,
        cmd_size: cmd.len() as u32,
        cmd: if cmd.is_empty() { 0 } else { cmd.as_ptr() as u64 },
        ..Default::default()
    };
    // SAFETY: cmd outlives the call.
    unsafe { ioctl(dev.raw(), DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &mut b) }.map_err(|e| {
        sys(format!("VIRTGPU_RESOURCE_CREATE_BLOB(size {}, blob_id {}, cmd {} bytes)", size, blob_id, cmd.len()), e)
    })?;
    Ok((b.bo_handle, b.res_handle))
}

fn map_raw(dev: &Device, handle: u32, size: u64) -> Result<*mut u8> {
    let mut m = DrmVirtgpuMap { handle, ..Default::default() };
    // SAFETY: plain struct argument.
    unsafe { ioctl(dev.raw(), DRM_IOCTL_VIRTGPU_MAP, &mut m) }
        .map_err(|e| sys(format!("VIRTGPU_MAP({})", handle), e))?;
    // SAFETY: mapping a DRM fake offset of our own fd; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            dev.raw(),
            m.offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(sys(format!("mmap of blob handle {} ({} bytes)", handle, size), io::Error::last_os_error()));
    }
    Ok(p as *mut u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_overlap(a: &SlotAllocator) {
        for (i, &(o1, s1)) in a.live.iter().enumerate() {
            assert_eq!(o1 % 8, 0);
            assert!(o1 >= a.start && o1 + s1 <= a.end);
            for &(o2, s2) in &a.live[i + 1..] {
                assert!(o1 + s1 <= o2 || o2 + s2 <= o1, "overlap {:?} {:?}", (o1, s1), (o2, s2));
            }
        }
    }

    #[test]
    fn slots_are_aligned_and_disjoint() {
        let mut a = SlotAllocator::new(8, 16368);
        let mut offs = vec![];
        for sz in [16u32, 24, 8, 116, 13, 32] {
            let o = a.alloc(sz).unwrap();
            assert!(o >= 8);
            offs.push(o);
        }
        no_overlap(&a);
        assert_eq!(a.live_count(), 6);
        for o in offs {
            a.free(o);
        }
        assert_eq!(a.live_count(), 0);
    }

    #[test]
    fn slots_wrap_and_skip_live() {
        let mut a = SlotAllocator::new(8, 8 + 64);
        let x = a.alloc(32).unwrap();
        let y = a.alloc(32).unwrap();
        assert_eq!((x, y), (8, 40));
        assert!(a.alloc(8).is_none()); // full
        a.free(x);
        let z = a.alloc(16).unwrap(); // wraps to the start
        assert_eq!(z, 8);
        let w = a.alloc(16).unwrap();
        assert_eq!(w, 24);
        assert!(a.alloc(8).is_none());
        no_overlap(&a);
        a.free(y);
        // Cursor at 40: fits there.
        assert_eq!(a.alloc(24).unwrap(), 40);
        no_overlap(&a);
    }

    #[test]
    fn slot_too_big() {
        let mut a = SlotAllocator::new(8, 16368);
        assert!(a.alloc(16368).is_none());
        assert_eq!(a.alloc(16360).unwrap(), 8);
        assert!(a.alloc(8).is_none());
    }

    #[test]
    fn slot_stress() {
        let mut a = SlotAllocator::new(8, 1024);
        let mut live: Vec<u32> = vec![];
        let mut x: u32 = 12345;
        for _ in 0..5000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            if live.len() > 6 || (x >> 16).is_multiple_of(3) {
                if !live.is_empty() {
                    let i = (x as usize >> 8) % live.len();
                    a.free(live.swap_remove(i));
                }
            } else {
                let sz = 8 + (x >> 20) % 200;
                if let Some(o) = a.alloc(sz) {
                    live.push(o);
                }
            }
            no_overlap(&a);
        }
    }

    fn slot(cap: usize, len: u32, ret_off: usize, ret: i32) -> Vec<u8> {
        let mut b = vec![0u8; cap];
        b[0..4].copy_from_slice(&len.to_le_bytes());
        b[ret_off..ret_off + 4].copy_from_slice(&ret.to_le_bytes());
        b
    }

    #[test]
    fn evaluate_success_and_errors() {
        use crate::proto::{GetparamRsp, NoResponse};
        // Executed: host wrote len 16, ret 0, value 0x9a49.
        let mut b = slot(16, 16, 8, 0);
        b[12..16].copy_from_slice(&0x9a49u32.to_le_bytes());
        let r = evaluate::<GetparamRsp>("GETPARAM", 5, 5, Some(&b)).unwrap();
        assert_eq!(r, GetparamRsp { ret: 0, value: 0x9a49 });
        // Executed with an errno.
        let b = slot(16, 16, 8, 22);
        assert_eq!(evaluate::<GetparamRsp>("GETPARAM", 5, 5, Some(&b)).unwrap().ret, 22);
        // Rejected: seqno not published, sentinel intact (pre-filled slot).
        let b = slot(16, 16, 8, RSP_SENTINEL);
        match evaluate::<GetparamRsp>("GETPARAM", 4, 5, Some(&b)) {
            Err(Error::Rejected { sentinel_intact: Some(true), shmem_seqno: 4, seqno: 5, .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Rejected across the u32 wrap.
        match evaluate::<GetparamRsp>("GETPARAM", u32::MAX, 0, Some(&b)) {
            Err(Error::Rejected { .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Seqno moved past ours but our slot was never written.
        match evaluate::<GetparamRsp>("GETPARAM", 9, 5, Some(&b)) {
            Err(Error::NotExecuted { .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Short response from an older host.
        let b = slot(16, 8, 8, RSP_SENTINEL);
        assert!(matches!(evaluate::<GetparamRsp>("GETPARAM", 5, 5, Some(&b)), Err(Error::Decode { .. })));
        // No-response ccmds: only the seqno matters.
        assert!(evaluate::<NoResponse>("SET_MMAP_MODE", 7, 7, None).is_ok());
        assert!(matches!(
            evaluate::<NoResponse>("SET_MMAP_MODE", 6, 7, None),
            Err(Error::Rejected { sentinel_intact: None, .. })
        ));
    }

    #[test]
    fn missing_device_is_an_error() {
        let e = Device::open("/nonexistent/renderD999").err().unwrap();
        assert!(e.to_string().contains("cannot open /nonexistent/renderD999"));
    }
}
