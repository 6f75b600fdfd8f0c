//! virtio-intel ccmd wire format (current `i915_proto.h` layout, protocol §2–§3
//! with the errata): request/response structs with explicit byte offsets, the
//! [`Request`] trait tying each request to its response, encoding into a ccmd
//! byte stream, and the `i915_shmem` header.
//!
//! Everything is little-endian. Requests are encoded field by field at the
//! offsets of the protocol tables; the unit tests check those offsets.

#![allow(dead_code)]

use crate::i915::{ExecObject2, Pod, SimpleIoctl};
use crate::uapi::{ioc_is_out, ioc_size};

// ---------------------------------------------------------------------------
// ccmd ids and framing
// ---------------------------------------------------------------------------

pub const I915_CCMD_IOCTL_SIMPLE: u32 = 1;
pub const I915_CCMD_GETPARAM: u32 = 2;
pub const I915_CCMD_QUERYPARAM: u32 = 3;
pub const I915_CCMD_GEM_CREATE: u32 = 4;
pub const I915_CCMD_GEM_CREATE_EXT: u32 = 5;
pub const I915_CCMD_GEM_CONTEXT_CREATE: u32 = 6;
pub const I915_CCMD_GEM_EXECBUFFER2: u32 = 7;
pub const I915_CCMD_GEM_SET_MMAP_MODE: u32 = 8;
pub const I915_CCMD_GEM_BUSY: u32 = 9;

/// `struct vdrm_ccmd_req`: cmd @0, len @4, seqno @8, rsp_off @12.
pub const CCMD_HDR_SIZE: usize = 16;
/// i915 only enforces 4-byte alignment of `len` and `rsp_off`.
pub const CCMD_ALIGN: usize = 4;
/// Response slots are rounded to 8 bytes (all responses are multiples of 8).
pub const RSP_SLOT_ALIGN: u32 = 8;

/// Value pre-stored in a response slot's `ret` field; a host that executed
/// the ccmd always overwrites it with an errno (0..4095).
pub const RSP_SENTINEL: i32 = 0x7fff_ffff;

/// IOCTL_SIMPLE payloads are capped by the host.
pub const IOCTL_SIMPLE_MAX_PAYLOAD: usize = 128;

// ---------------------------------------------------------------------------
// The i915 shmem header (`struct i915_shmem`, 16 bytes at the blob start)
// ---------------------------------------------------------------------------

pub const SHMEM_SEQNO_OFF: usize = 0;
pub const SHMEM_RSP_MEM_OFFSET_OFF: usize = 4;
pub const SHMEM_BANNED_CTX_MASK_OFF: usize = 8;
pub const I915_SHMEM_SIZE: usize = 16;

/// `vdrm_shmem_has_field`: a field is provided iff it ends at or before
/// `rsp_mem_offset`.
pub fn shmem_has_banned_mask(rsp_mem_offset: u32) -> bool {
    rsp_mem_offset as usize >= SHMEM_BANNED_CTX_MASK_OFF + 8
}

// ---------------------------------------------------------------------------
// Seqno arithmetic (u32, wrapping)
// ---------------------------------------------------------------------------

/// `a` happened strictly before `b` in wrapping u32 sequence space.
pub fn seqno_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a` is at or after `b` (the host has processed `b` if its seqno is `a`).
pub fn seqno_reached(a: u32, b: u32) -> bool {
    !seqno_before(a, b)
}

// ---------------------------------------------------------------------------
// Little-endian field helpers
// ---------------------------------------------------------------------------

pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_i32(b: &mut [u8], off: usize, v: i32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
pub fn get_i32(b: &[u8], off: usize) -> Option<i32> {
    get_u32(b, off).map(|v| v as i32)
}

// ---------------------------------------------------------------------------
// The request/response traits
// ---------------------------------------------------------------------------

/// Errors while decoding a response slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The host wrote fewer bytes than the fields we need (`rsp.len`).
    Short {
        need: usize,
        got: usize,
    },
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Short { need, got } => {
                write!(f, "response too short: rsp.len {} < {} needed", got, need)
            }
            DecodeError::Invalid(s) => write!(f, "invalid response: {}", s),
        }
    }
}

pub trait Response: Sized {
    /// Byte offset of the `ret` field (receives [`RSP_SENTINEL`] before
    /// submission). Unused for [`NoResponse`].
    const RET_OFFSET: usize;
    /// Decode the bytes the host wrote (`buf.len()` = `rsp.len`).
    fn decode(buf: &[u8]) -> Result<Self, DecodeError>;
}

/// A ccmd request. Implementors write their body at the protocol offsets.
pub trait Request {
    const CMD: u32;
    const NAME: &'static str;
    type Response: Response;
    /// Total ccmd length including the 16-byte header, before 4-byte padding.
    fn wire_len(&self) -> usize;
    /// Write the body fields into `buf` (already `wire_len` bytes, zeroed,
    /// header filled in). Offsets are absolute within the ccmd.
    fn encode_body(&self, buf: &mut [u8]);
    /// Size of the response the host will produce (= slot capacity we
    /// reserve); 0 for ccmds without a response.
    fn rsp_size(&self) -> usize;
}

/// Marker for ccmds without a response (GEM_CREATE, GEM_CREATE_EXT,
/// SET_MMAP_MODE). They still get a seqno and a scratch `rsp_off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoResponse;
impl Response for NoResponse {
    const RET_OFFSET: usize = 0;
    fn decode(_: &[u8]) -> Result<Self, DecodeError> {
        Ok(NoResponse)
    }
}

/// `struct vdrm_ccmd_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcmdHdr {
    pub cmd: u32,
    pub len: u32,
    pub seqno: u32,
    pub rsp_off: u32,
}

impl CcmdHdr {
    pub fn write(&self, b: &mut [u8]) {
        put_u32(b, 0, self.cmd);
        put_u32(b, 4, self.len);
        put_u32(b, 8, self.seqno);
        put_u32(b, 12, self.rsp_off);
    }
    pub fn read(b: &[u8]) -> Option<CcmdHdr> {
        Some(CcmdHdr { cmd: get_u32(b, 0)?, len: get_u32(b, 4)?, seqno: get_u32(b, 8)?, rsp_off: get_u32(b, 12)? })
    }
}

fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

/// Encode one ccmd: header (cmd, len, seqno, rsp_off) + body, padded to 4.
pub fn encode<R: Request>(req: &R, seqno: u32, rsp_off: u32) -> Vec<u8> {
    let len = align_up(req.wire_len().max(CCMD_HDR_SIZE), CCMD_ALIGN);
    let mut b = vec![0u8; len];
    CcmdHdr { cmd: R::CMD, len: len as u32, seqno, rsp_off }.write(&mut b);
    req.encode_body(&mut b);
    b
}

/// Slot capacity to reserve for a request (its response size rounded to 8).
pub fn slot_size<R: Request>(req: &R) -> u32 {
    align_up(req.rsp_size(), RSP_SLOT_ALIGN as usize) as u32
}

// ---------------------------------------------------------------------------
// 1: IOCTL_SIMPLE
// ---------------------------------------------------------------------------

/// `i915_ccmd_ioctl_simple_req`: hdr, cmd u32 @16, pad @20, payload @24.
#[derive(Debug, Clone)]
pub struct IoctlSimpleReq {
    pub ioctl: u32,
    pub payload: Vec<u8>,
}

impl IoctlSimpleReq {
    pub fn new<T: SimpleIoctl>(payload: &T) -> Self {
        IoctlSimpleReq { ioctl: T::NR, payload: payload.to_bytes() }
    }
    /// A raw ioctl number (used to provoke a rejection in `--negative`).
    pub fn raw(ioctl: u32, payload: Vec<u8>) -> Self {
        IoctlSimpleReq { ioctl, payload }
    }
    /// Host rule: `len == 24 + _IOC_SIZE(cmd)` exactly, `_IOC_SIZE <= 128`.
    pub fn validate(&self) -> Result<(), String> {
        if self.payload.len() != ioc_size(self.ioctl) {
            return Err(format!(
                "payload {} bytes != _IOC_SIZE({:#x}) = {}",
                self.payload.len(),
                self.ioctl,
                ioc_size(self.ioctl)
            ));
        }
        if self.payload.len() > IOCTL_SIMPLE_MAX_PAYLOAD || !(24 + self.payload.len()).is_multiple_of(CCMD_ALIGN) {
            return Err(format!("payload size {} not encodable", self.payload.len()));
        }
        Ok(())
    }
}

/// `i915_ccmd_ioctl_simple_rsp`: len @0, ret @4, payload @8 (IOC_OUT only).
#[derive(Debug, Clone)]
pub struct IoctlSimpleRsp {
    pub ret: i32,
    pub payload: Vec<u8>,
}

impl IoctlSimpleRsp {
    pub fn payload_as<T: Pod>(&self) -> Option<T> {
        T::from_bytes(&self.payload)
    }
}

impl Response for IoctlSimpleRsp {
    const RET_OFFSET: usize = 4;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let ret = get_i32(b, 4).ok_or(DecodeError::Short { need: 8, got: b.len() })?;
        Ok(IoctlSimpleRsp { ret, payload: b[8..].to_vec() })
    }
}

impl Request for IoctlSimpleReq {
    const CMD: u32 = I915_CCMD_IOCTL_SIMPLE;
    const NAME: &'static str = "IOCTL_SIMPLE";
    type Response = IoctlSimpleRsp;
    fn wire_len(&self) -> usize {
        24 + self.payload.len()
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.ioctl);
        b[24..24 + self.payload.len()].copy_from_slice(&self.payload);
    }
    fn rsp_size(&self) -> usize {
        8 + if ioc_is_out(self.ioctl) { ioc_size(self.ioctl) } else { 0 }
    }
}

// ---------------------------------------------------------------------------
// 2: GETPARAM
// ---------------------------------------------------------------------------

/// `i915_ccmd_getparam_req`: hdr, param @16, value @20 (unused).
#[derive(Debug, Clone, Copy)]
pub struct GetparamReq {
    pub param: u32,
}

/// `i915_ccmd_getparam_rsp` (16 B): len, pad @4, ret @8, value @12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetparamRsp {
    pub ret: i32,
    pub value: i32,
}

impl Response for GetparamRsp {
    const RET_OFFSET: usize = 8;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let short = DecodeError::Short { need: 16, got: b.len() };
        Ok(GetparamRsp { ret: get_i32(b, 8).ok_or(short.clone())?, value: get_i32(b, 12).ok_or(short)? })
    }
}

impl Request for GetparamReq {
    const CMD: u32 = I915_CCMD_GETPARAM;
    const NAME: &'static str = "GETPARAM";
    type Response = GetparamRsp;
    fn wire_len(&self) -> usize {
        24
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.param);
    }
    fn rsp_size(&self) -> usize {
        16
    }
}

// ---------------------------------------------------------------------------
// 3: QUERYPARAM
// ---------------------------------------------------------------------------

/// `i915_ccmd_queryparam_req`: hdr, query_id @16, length @20, flags @24, pad @28.
#[derive(Debug, Clone, Copy)]
pub struct QueryparamReq {
    pub query_id: u32,
    pub length: u32,
    pub flags: u32,
}

/// `i915_ccmd_queryparam_rsp`: len, pad, ret @8, length @12, payload @16.
#[derive(Debug, Clone)]
pub struct QueryparamRsp {
    pub ret: i32,
    pub length: i32,
    pub payload: Vec<u8>,
}

impl Response for QueryparamRsp {
    const RET_OFFSET: usize = 8;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let short = DecodeError::Short { need: 16, got: b.len() };
        let ret = get_i32(b, 8).ok_or(short.clone())?;
        let length = get_i32(b, 12).ok_or(short)?;
        Ok(QueryparamRsp { ret, length, payload: b[16..].to_vec() })
    }
}

impl Request for QueryparamReq {
    const CMD: u32 = I915_CCMD_QUERYPARAM;
    const NAME: &'static str = "QUERYPARAM";
    type Response = QueryparamRsp;
    fn wire_len(&self) -> usize {
        32
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.query_id);
        put_u32(b, 20, self.length);
        put_u32(b, 24, self.flags);
    }
    fn rsp_size(&self) -> usize {
        16 + self.length as usize
    }
}

// ---------------------------------------------------------------------------
// 4: GEM_CREATE (no response)
// ---------------------------------------------------------------------------

/// `i915_ccmd_gem_create_req`: hdr, size u64 @16, blob_id @24, pad @28.
#[derive(Debug, Clone, Copy)]
pub struct GemCreateReq {
    pub size: u64,
    pub blob_id: u32,
}

impl Request for GemCreateReq {
    const CMD: u32 = I915_CCMD_GEM_CREATE;
    const NAME: &'static str = "GEM_CREATE";
    type Response = NoResponse;
    fn wire_len(&self) -> usize {
        32
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u64(b, 16, self.size);
        put_u32(b, 24, self.blob_id);
    }
    fn rsp_size(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------
// 5: GEM_CREATE_EXT (no response)
// ---------------------------------------------------------------------------

/// `i915_ccmd_gem_create_ext_req`: hdr, size @16, blob_id @24, gem_flags @28,
/// ext_size @32, pad @36, payload @40 (serialized extension chain).
#[derive(Debug, Clone)]
pub struct GemCreateExtReq {
    pub size: u64,
    pub blob_id: u32,
    pub gem_flags: u32,
    pub ext: Vec<u8>,
}

impl GemCreateExtReq {
    /// `len` must equal `40 + ext_size` exactly and be a multiple of 4.
    pub fn validate(&self) -> Result<(), String> {
        if !self.ext.len().is_multiple_of(CCMD_ALIGN) {
            return Err(format!("extension chain of {} bytes is not 4-byte aligned", self.ext.len()));
        }
        Ok(())
    }
}

impl Request for GemCreateExtReq {
    const CMD: u32 = I915_CCMD_GEM_CREATE_EXT;
    const NAME: &'static str = "GEM_CREATE_EXT";
    type Response = NoResponse;
    fn wire_len(&self) -> usize {
        40 + self.ext.len()
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u64(b, 16, self.size);
        put_u32(b, 24, self.blob_id);
        put_u32(b, 28, self.gem_flags);
        put_u32(b, 32, self.ext.len() as u32);
        b[40..40 + self.ext.len()].copy_from_slice(&self.ext);
    }
    fn rsp_size(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------
// 6: GEM_CONTEXT_CREATE
// ---------------------------------------------------------------------------

/// `i915_ccmd_gem_context_create_req`: hdr, flags @16, params_size @20,
/// payload @24 (SETPARAM chain).
#[derive(Debug, Clone)]
pub struct GemContextCreateReq {
    pub flags: u32,
    pub params: Vec<u8>,
}

impl GemContextCreateReq {
    pub fn validate(&self) -> Result<(), String> {
        if !self.params.len().is_multiple_of(CCMD_ALIGN) {
            return Err("params not 4-byte aligned".into());
        }
        if self.flags & crate::i915::I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS != 0 && self.params.is_empty() {
            // Protocol §3.6: the host would let i915 parse heap garbage.
            return Err("USE_EXTENSIONS with params_size 0 is forbidden".into());
        }
        Ok(())
    }
}

/// `i915_ccmd_gem_context_create_rsp` (16 B): len, pad, ret @8, ctx_id @12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemContextCreateRsp {
    pub ret: i32,
    pub ctx_id: u32,
}

impl Response for GemContextCreateRsp {
    const RET_OFFSET: usize = 8;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let short = DecodeError::Short { need: 16, got: b.len() };
        Ok(GemContextCreateRsp { ret: get_i32(b, 8).ok_or(short.clone())?, ctx_id: get_u32(b, 12).ok_or(short)? })
    }
}

impl Request for GemContextCreateReq {
    const CMD: u32 = I915_CCMD_GEM_CONTEXT_CREATE;
    const NAME: &'static str = "GEM_CONTEXT_CREATE";
    type Response = GemContextCreateRsp;
    fn wire_len(&self) -> usize {
        24 + self.params.len()
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.flags);
        put_u32(b, 20, self.params.len() as u32);
        b[24..24 + self.params.len()].copy_from_slice(&self.params);
    }
    fn rsp_size(&self) -> usize {
        16
    }
}

// ---------------------------------------------------------------------------
// 7: GEM_EXECBUFFER2
// ---------------------------------------------------------------------------

pub const EXEC_OBJECT_WIRE_SIZE: usize = 56;
pub const RELOC_WIRE_SIZE: usize = 32;

/// `i915_ccmd_gem_execbuffer2_req`: hdr, flags u64 @16, context_id u64 @24,
/// buffer_count @32, batch_start_offset @36, batch_len @40, relocs_count @44,
/// payload @48 (exec objects, then relocations).
#[derive(Debug, Clone)]
pub struct Execbuffer2Req {
    pub flags: u64,
    pub context_id: u64,
    pub batch_start_offset: u32,
    pub batch_len: u32,
    pub objects: Vec<ExecObject2>,
    pub relocs: Vec<[u8; RELOC_WIRE_SIZE]>,
}

impl Execbuffer2Req {
    /// The virtio ring this execbuffer must be fenced on: `1 + (flags & 0x3f)`.
    pub fn ring_idx(&self) -> u32 {
        1 + (self.flags & crate::i915::I915_EXEC_RING_MASK) as u32
    }
}

/// `i915_ccmd_gem_execbuffer2_rsp` (8 B): len, ret @4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execbuffer2Rsp {
    pub ret: i32,
}

impl Response for Execbuffer2Rsp {
    const RET_OFFSET: usize = 4;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        Ok(Execbuffer2Rsp { ret: get_i32(b, 4).ok_or(DecodeError::Short { need: 8, got: b.len() })? })
    }
}

impl Request for Execbuffer2Req {
    const CMD: u32 = I915_CCMD_GEM_EXECBUFFER2;
    const NAME: &'static str = "GEM_EXECBUFFER2";
    type Response = Execbuffer2Rsp;
    fn wire_len(&self) -> usize {
        48 + EXEC_OBJECT_WIRE_SIZE * self.objects.len() + RELOC_WIRE_SIZE * self.relocs.len()
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u64(b, 16, self.flags);
        put_u64(b, 24, self.context_id);
        put_u32(b, 32, self.objects.len() as u32);
        put_u32(b, 36, self.batch_start_offset);
        put_u32(b, 40, self.batch_len);
        put_u32(b, 44, self.relocs.len() as u32);
        let mut o = 48;
        for obj in &self.objects {
            b[o..o + EXEC_OBJECT_WIRE_SIZE].copy_from_slice(&obj.to_bytes());
            o += EXEC_OBJECT_WIRE_SIZE;
        }
        for r in &self.relocs {
            b[o..o + RELOC_WIRE_SIZE].copy_from_slice(r);
            o += RELOC_WIRE_SIZE;
        }
    }
    fn rsp_size(&self) -> usize {
        8
    }
}

// ---------------------------------------------------------------------------
// 8: GEM_SET_MMAP_MODE (no response)
// ---------------------------------------------------------------------------

/// `i915_ccmd_gem_set_mmap_mode_req`: hdr, res_id @16, flags @20.
#[derive(Debug, Clone, Copy)]
pub struct SetMmapModeReq {
    pub res_id: u32,
    pub flags: u32,
}

impl Request for SetMmapModeReq {
    const CMD: u32 = I915_CCMD_GEM_SET_MMAP_MODE;
    const NAME: &'static str = "GEM_SET_MMAP_MODE";
    type Response = NoResponse;
    fn wire_len(&self) -> usize {
        24
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.res_id);
        put_u32(b, 20, self.flags);
    }
    fn rsp_size(&self) -> usize {
        0
    }
}

// ---------------------------------------------------------------------------
// 9: GEM_BUSY
// ---------------------------------------------------------------------------

/// `i915_ccmd_gem_busy_req`: hdr, res_id @16, pad @20.
#[derive(Debug, Clone, Copy)]
pub struct GemBusyReq {
    pub res_id: u32,
}

/// `i915_ccmd_gem_busy_rsp` (16 B): len, pad, ret @8, busy @12.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemBusyRsp {
    pub ret: i32,
    pub busy: u32,
}

impl Response for GemBusyRsp {
    const RET_OFFSET: usize = 8;
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        let short = DecodeError::Short { need: 16, got: b.len() };
        Ok(GemBusyRsp { ret: get_i32(b, 8).ok_or(short.clone())?, busy: get_u32(b, 12).ok_or(short)? })
    }
}

impl Request for GemBusyReq {
    const CMD: u32 = I915_CCMD_GEM_BUSY;
    const NAME: &'static str = "GEM_BUSY";
    type Response = GemBusyRsp;
    fn wire_len(&self) -> usize {
        24
    }
    fn encode_body(&self, b: &mut [u8]) {
        put_u32(b, 16, self.res_id);
    }
    fn rsp_size(&self) -> usize {
        16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i915::*;

    fn hdr(b: &[u8]) -> CcmdHdr {
        CcmdHdr::read(b).unwrap()
    }

    #[test]
    fn header_layout() {
        let b = encode(&GetparamReq { param: 4 }, 0x1234_5678, 0x40);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..4], &2u32.to_le_bytes());
        assert_eq!(&b[4..8], &24u32.to_le_bytes());
        assert_eq!(&b[8..12], &0x1234_5678u32.to_le_bytes());
        assert_eq!(&b[12..16], &0x40u32.to_le_bytes());
        assert_eq!(&b[16..20], &4u32.to_le_bytes());
        assert_eq!(&b[20..24], &[0; 4]);
    }

    #[test]
    fn nominal_sizes_match_table() {
        // Protocol §3 table: request sizes 24/24/32/32/40/24/48/24/24 and
        // response sizes 8(+payload)/16/16+len/-/-/16/8/-/16.
        let ap = IoctlSimpleReq::new(&GemGetAperture::default());
        assert_eq!(encode(&ap, 0, 0).len(), 24 + 16);
        assert_eq!(ap.rsp_size(), 8 + 16);
        let destroy = IoctlSimpleReq::new(&GemContextDestroy::default());
        assert_eq!(encode(&destroy, 0, 0).len(), 32);
        assert_eq!(destroy.rsp_size(), 8); // write-only ioctl: no payload back
        let vmd = IoctlSimpleReq::new(&GemVmDestroy::default());
        assert_eq!(vmd.rsp_size(), 8);
        assert_eq!(encode(&vmd, 0, 0).len(), 40);
        let rs = IoctlSimpleReq::new(&ResetStats::default());
        assert_eq!(encode(&rs, 0, 0).len(), 48);
        assert_eq!(rs.rsp_size(), 32);
        let cc = IoctlSimpleReq::new(&GemContextCreate::default());
        assert_eq!(cc.rsp_size(), 16);

        assert_eq!(encode(&GetparamReq { param: 0 }, 0, 0).len(), 24);
        assert_eq!(GetparamReq { param: 0 }.rsp_size(), 16);
        let q = QueryparamReq { query_id: 1, length: 100, flags: 0 };
        assert_eq!(encode(&q, 0, 0).len(), 32);
        assert_eq!(q.rsp_size(), 116);
        assert_eq!(encode(&GemCreateReq { size: 4096, blob_id: 1 }, 0, 0).len(), 32);
        let ce = GemCreateExtReq { size: 4096, blob_id: 1, gem_flags: 0, ext: vec![] };
        assert_eq!(encode(&ce, 0, 0).len(), 40);
        let cc = GemContextCreateReq { flags: 0, params: vec![] };
        assert_eq!(encode(&cc, 0, 0).len(), 24);
        assert_eq!(cc.rsp_size(), 16);
        let eb = Execbuffer2Req {
            flags: 0,
            context_id: 0,
            batch_start_offset: 0,
            batch_len: 0,
            objects: vec![],
            relocs: vec![],
        };
        assert_eq!(encode(&eb, 0, 0).len(), 48);
        assert_eq!(eb.rsp_size(), 8);
        assert_eq!(encode(&SetMmapModeReq { res_id: 1, flags: 2 }, 0, 0).len(), 24);
        assert_eq!(encode(&GemBusyReq { res_id: 1 }, 0, 0).len(), 24);
        assert_eq!(GemBusyReq { res_id: 1 }.rsp_size(), 16);
    }

    #[test]
    fn ioctl_simple_layout() {
        let p = GemContextGetparam(GemContextParam { ctx_id: 3, size: 0, param: 6, value: 0 });
        let r = IoctlSimpleReq::new(&p);
        r.validate().unwrap();
        let b = encode(&r, 9, 16);
        assert_eq!(hdr(&b).len, 48);
        assert_eq!(&b[16..20], &0xc018_6474u32.to_le_bytes());
        assert_eq!(&b[20..24], &[0; 4]);
        assert_eq!(&b[24..28], &3u32.to_le_bytes());
        assert_eq!(&b[32..40], &6u64.to_le_bytes());
        // Wrong payload size is refused locally.
        assert!(IoctlSimpleReq::raw(0xc018_6474, vec![0; 16]).validate().is_err());
        // SET_DOMAIN: 12-byte payload, len 36 (4-byte aligned, not 8).
        let sd = IoctlSimpleReq::raw(DRM_IOCTL_I915_GEM_SET_DOMAIN, vec![0; 12]);
        sd.validate().unwrap();
        assert_eq!(encode(&sd, 0, 0).len(), 36);
        assert_eq!(sd.rsp_size(), 8);
    }

    #[test]
    fn create_layouts() {
        let b = encode(&GemCreateReq { size: 0x1_0000_2000, blob_id: 77 }, 5, 0);
        assert_eq!(&b[16..24], &0x1_0000_2000u64.to_le_bytes());
        assert_eq!(&b[24..28], &77u32.to_le_bytes());
        assert_eq!(&b[28..32], &[0; 4]);

        let ext = create_ext_memory_regions(&[(0, 0)]);
        let r = GemCreateExtReq { size: 8192, blob_id: 3, gem_flags: 0x10, ext: ext.clone() };
        r.validate().unwrap();
        let b = encode(&r, 6, 0);
        assert_eq!(hdr(&b).len as usize, 40 + 52);
        assert_eq!(&b[16..24], &8192u64.to_le_bytes());
        assert_eq!(&b[24..28], &3u32.to_le_bytes());
        assert_eq!(&b[28..32], &0x10u32.to_le_bytes());
        assert_eq!(&b[32..36], &52u32.to_le_bytes());
        assert_eq!(&b[36..40], &[0; 4]);
        assert_eq!(&b[40..], &ext[..]);
    }

    #[test]
    fn context_create_layout() {
        let mut params = context_setparam(I915_CONTEXT_PARAM_ENGINES, 0, &engines_param(&[(0, 0)]));
        params.extend(context_setparam(I915_CONTEXT_PARAM_RECOVERABLE, 0, &[]));
        let r = GemContextCreateReq { flags: I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS, params: params.clone() };
        r.validate().unwrap();
        let b = encode(&r, 1, 8);
        assert_eq!(hdr(&b).len as usize, 24 + params.len());
        assert_eq!(&b[16..20], &1u32.to_le_bytes());
        assert_eq!(&b[20..24], &(params.len() as u32).to_le_bytes());
        assert_eq!(&b[24..], &params[..]);
        assert!(GemContextCreateReq { flags: 1, params: vec![] }.validate().is_err());
    }

    #[test]
    fn execbuffer_layout() {
        let obj = ExecObject2 {
            handle: 42,
            offset: 0x1_0000_0000,
            flags: EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS,
            ..Default::default()
        };
        let r = Execbuffer2Req {
            flags: 1 | I915_EXEC_NO_RELOC,
            context_id: 5,
            batch_start_offset: 8,
            batch_len: 64,
            objects: vec![obj, obj],
            relocs: vec![],
        };
        assert_eq!(r.ring_idx(), 2);
        let b = encode(&r, 3, 24);
        assert_eq!(b.len(), 48 + 112);
        assert_eq!(&b[16..24], &(1u64 | 0x800).to_le_bytes());
        assert_eq!(&b[24..32], &5u64.to_le_bytes());
        assert_eq!(&b[32..36], &2u32.to_le_bytes());
        assert_eq!(&b[36..40], &8u32.to_le_bytes());
        assert_eq!(&b[40..44], &64u32.to_le_bytes());
        assert_eq!(&b[44..48], &0u32.to_le_bytes());
        assert_eq!(&b[48..52], &42u32.to_le_bytes());
        assert_eq!(&b[48 + 24..48 + 32], &0x1_0000_0000u64.to_le_bytes());
        assert_eq!(&b[48 + 56..48 + 60], &42u32.to_le_bytes());
        let r2 = Execbuffer2Req { flags: 0x3f | 0x40, ..r };
        assert_eq!(r2.ring_idx(), 64);
    }

    #[test]
    fn small_layouts() {
        let b = encode(&SetMmapModeReq { res_id: 9, flags: 2 }, 0, 0);
        assert_eq!(&b[16..20], &9u32.to_le_bytes());
        assert_eq!(&b[20..24], &2u32.to_le_bytes());
        let b = encode(&GemBusyReq { res_id: 11 }, 0, 0);
        assert_eq!(&b[16..20], &11u32.to_le_bytes());
        let b = encode(&QueryparamReq { query_id: 2, length: 300, flags: 0 }, 0, 0);
        assert_eq!(&b[16..20], &2u32.to_le_bytes());
        assert_eq!(&b[20..24], &300u32.to_le_bytes());
        assert_eq!(&b[24..32], &[0; 8]);
    }

    #[test]
    fn response_decoding() {
        let mut r = vec![0u8; 16];
        put_u32(&mut r, 0, 16);
        put_i32(&mut r, 8, 22);
        put_i32(&mut r, 12, -1);
        assert_eq!(GetparamRsp::decode(&r).unwrap(), GetparamRsp { ret: 22, value: -1 });
        assert!(GetparamRsp::decode(&r[..12]).is_err());

        put_u32(&mut r, 12, 7);
        assert_eq!(GemContextCreateRsp::decode(&r).unwrap().ctx_id, 7);
        assert_eq!(GemBusyRsp::decode(&r).unwrap().busy, 7);

        let mut q = vec![0u8; 20];
        put_i32(&mut q, 12, -22);
        q[16] = 0xaa;
        let d = QueryparamRsp::decode(&q).unwrap();
        assert_eq!(d.length, -22);
        assert_eq!(d.payload, vec![0xaa, 0, 0, 0]);

        let mut s = vec![0u8; 24];
        put_i32(&mut s, 4, 1);
        put_u64(&mut s, 8, 1 << 32);
        let d = IoctlSimpleRsp::decode(&s).unwrap();
        assert_eq!(d.ret, 1);
        assert_eq!(d.payload_as::<GemGetAperture>().unwrap().aper_size, 1 << 32);
        assert_eq!(Execbuffer2Rsp::decode(&s[..8]).unwrap().ret, 1);
    }

    #[test]
    fn sentinel_offsets_inside_response() {
        const { assert!(<GetparamRsp as Response>::RET_OFFSET + 4 <= 16) };
        const { assert!(<Execbuffer2Rsp as Response>::RET_OFFSET + 4 <= 8) };
        const { assert!(<IoctlSimpleRsp as Response>::RET_OFFSET + 4 <= 8) };
        const { assert!(<QueryparamRsp as Response>::RET_OFFSET + 4 <= 16) };
        const { assert!(<GemBusyRsp as Response>::RET_OFFSET + 4 <= 16) };
        const { assert!(<GemContextCreateRsp as Response>::RET_OFFSET + 4 <= 16) };
    }

    #[test]
    fn seqno_wraparound() {
        assert!(seqno_before(1, 2));
        assert!(!seqno_before(2, 2));
        assert!(!seqno_before(3, 2));
        assert!(seqno_before(0xffff_fff0, 5)); // 5 is after the wrap
        assert!(!seqno_before(5, 0xffff_fff0));
        assert!(seqno_reached(0, 0xffff_ffff));
        assert!(!seqno_reached(0xffff_ffff, 0));
        assert!(seqno_reached(0x8000_0000, 0x7fff_ffff));
        assert!(seqno_before(0, 1));
    }

    #[test]
    fn shmem_field_rule() {
        assert!(shmem_has_banned_mask(16));
        assert!(!shmem_has_banned_mask(8));
    }
}
