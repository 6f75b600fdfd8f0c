// SPDX-License-Identifier: MIT
//! The virtio-intel wire protocol: ccmd requests and responses with their explicit
//! little-endian byte layout, and the i915 uAPI structs carried inside them.
//!
//! This is the only module that reads or writes protocol bytes by offset. Offsets and
//! sizes follow `virtio-intel-protocol.md` §2-§3 (current `i915_proto.h` revision) and
//! the errata's appendix C.

/// Reads a little-endian u32 at `off`; bytes past the end of `b` read as zero
/// (requests shorter than their nominal size are zero-padded, as the real host does).
pub(crate) fn rd32(b: &[u8], off: usize) -> u32 {
    let mut v = [0u8; 4];
    for (i, x) in v.iter_mut().enumerate() {
        *x = off.checked_add(i).and_then(|j| b.get(j)).copied().unwrap_or(0);
    }
    u32::from_le_bytes(v)
}

/// Reads a little-endian u64 at `off` (zero past the end).
pub(crate) fn rd64(b: &[u8], off: usize) -> u64 {
    u64::from(rd32(b, off)) | (u64::from(rd32(b, off.saturating_add(4))) << 32)
}

/// Reads a little-endian u16 at `off` (zero past the end).
pub(crate) fn rd16(b: &[u8], off: usize) -> u16 {
    (rd32(b, off) & 0xffff) as u16
}

/// Stores a little-endian u32 at `off`; the buffer must be large enough.
pub(crate) fn wr32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = b.get_mut(off..off + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Stores a little-endian u64 at `off`; the buffer must be large enough.
pub(crate) fn wr64(b: &mut [u8], off: usize, v: u64) {
    if let Some(s) = b.get_mut(off..off + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

// ---------------------------------------------------------------------------------
// ccmd framing

/// Size of `struct vdrm_ccmd_req`.
pub(crate) const CCMD_HDR_SIZE: usize = 16;
/// `struct i915_shmem`: seqno @0, rsp_mem_offset @4, banned_ctx_mask @8.
pub(crate) const SHMEM_HDR_SIZE: u32 = 16;
pub(crate) const SHMEM_SEQNO: u64 = 0;
pub(crate) const SHMEM_RSP_MEM_OFFSET: u64 = 4;
pub(crate) const SHMEM_BANNED_MASK: u64 = 8;

/// `enum i915_ccmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum CcmdId {
    IoctlSimple = 1,
    Getparam = 2,
    Queryparam = 3,
    GemCreate = 4,
    GemCreateExt = 5,
    GemContextCreate = 6,
    GemExecbuffer2 = 7,
    GemSetMmapMode = 8,
    GemBusy = 9,
}

impl CcmdId {
    /// Decodes a ccmd id; `None` for 0 and for ids ≥ 10 (the host rejects them).
    pub(crate) fn from_u32(v: u32) -> Option<CcmdId> {
        Some(match v {
            1 => CcmdId::IoctlSimple,
            2 => CcmdId::Getparam,
            3 => CcmdId::Queryparam,
            4 => CcmdId::GemCreate,
            5 => CcmdId::GemCreateExt,
            6 => CcmdId::GemContextCreate,
            7 => CcmdId::GemExecbuffer2,
            8 => CcmdId::GemSetMmapMode,
            9 => CcmdId::GemBusy,
            _ => return None,
        })
    }

    /// The request struct's nominal size (the private copy is at least this long).
    pub(crate) fn nominal_size(self) -> usize {
        match self {
            CcmdId::IoctlSimple => IoctlSimpleReq::SIZE,
            CcmdId::Getparam => GetparamReq::SIZE,
            CcmdId::Queryparam => QueryparamReq::SIZE,
            CcmdId::GemCreate => GemCreateReq::SIZE,
            CcmdId::GemCreateExt => GemCreateExtReq::SIZE,
            CcmdId::GemContextCreate => GemContextCreateReq::SIZE,
            CcmdId::GemExecbuffer2 => ExecbufReq::SIZE,
            CcmdId::GemSetMmapMode => SetMmapModeReq::SIZE,
            CcmdId::GemBusy => GemBusyReq::SIZE,
        }
    }
}

/// `struct vdrm_ccmd_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CcmdHdr {
    pub(crate) cmd: u32,
    pub(crate) len: u32,
    pub(crate) seqno: u32,
    pub(crate) rsp_off: u32,
}

impl CcmdHdr {
    pub(crate) fn decode(b: &[u8]) -> CcmdHdr {
        CcmdHdr { cmd: rd32(b, 0), len: rd32(b, 4), seqno: rd32(b, 8), rsp_off: rd32(b, 12) }
    }

    #[cfg(test)]
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        wr32(&mut b, 0, self.cmd);
        wr32(&mut b, 4, self.len);
        wr32(&mut b, 8, self.seqno);
        wr32(&mut b, 12, self.rsp_off);
        b
    }
}

/// A ccmd request; ties the request layout to its response type.
pub(crate) trait Request: Sized {
    /// The ccmd id.
    const ID: CcmdId;
    /// Nominal request size, header included.
    const SIZE: usize;
    /// The response this request produces.
    type Response: Response;
    /// Decodes from the zero-padded private copy (header included).
    fn decode(b: &[u8]) -> Self;
}

/// A ccmd response with a fixed or computed byte layout (`len` @0 is set by the copy).
pub(crate) trait Response {
    /// Encoded bytes, `len` field included (the dispatcher overwrites it).
    fn encode(&self) -> Vec<u8>;
}

/// Marker for ccmds that produce no response.
#[derive(Debug)]
pub(crate) struct NoResponse;

impl Response for NoResponse {
    fn encode(&self) -> Vec<u8> {
        Vec::new()
    }
}

fn rsp_buf(size: usize) -> Vec<u8> {
    let mut v = vec![0u8; size];
    wr32(&mut v, 0, size as u32);
    v
}

// ---------------------------------------------------------------------------------
// ccmd 1: IOCTL_SIMPLE

/// `i915_ccmd_ioctl_simple_req`: cmd @16, pad @20, payload @24.
#[derive(Debug)]
pub(crate) struct IoctlSimpleReq {
    pub(crate) cmd: u32,
    pub(crate) payload: Vec<u8>,
}

impl Request for IoctlSimpleReq {
    const ID: CcmdId = CcmdId::IoctlSimple;
    const SIZE: usize = 24;
    type Response = IoctlSimpleRsp;
    fn decode(b: &[u8]) -> Self {
        IoctlSimpleReq { cmd: rd32(b, 16), payload: b.get(24..).map(|s| s.to_vec()).unwrap_or_default() }
    }
}

/// `i915_ccmd_ioctl_simple_rsp`: ret @4, payload @8 (only for `_IOC_READ` ioctls).
#[derive(Debug)]
pub(crate) struct IoctlSimpleRsp {
    pub(crate) ret: i32,
    pub(crate) payload: Vec<u8>,
}

impl Response for IoctlSimpleRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(8 + self.payload.len());
        wr32(&mut v, 4, self.ret as u32);
        v[8..].copy_from_slice(&self.payload);
        v
    }
}

// ---------------------------------------------------------------------------------
// ccmd 2: GETPARAM

/// `i915_ccmd_getparam_req`: param @16, value @20.
#[derive(Debug)]
pub(crate) struct GetparamReq {
    pub(crate) param: u32,
}

impl Request for GetparamReq {
    const ID: CcmdId = CcmdId::Getparam;
    const SIZE: usize = 24;
    type Response = GetparamRsp;
    fn decode(b: &[u8]) -> Self {
        GetparamReq { param: rd32(b, 16) }
    }
}

/// `i915_ccmd_getparam_rsp` (16 B): ret @8, value @12.
#[derive(Debug)]
pub(crate) struct GetparamRsp {
    pub(crate) ret: i32,
    pub(crate) value: i32,
}

impl Response for GetparamRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(16);
        wr32(&mut v, 8, self.ret as u32);
        wr32(&mut v, 12, self.value as u32);
        v
    }
}

// ---------------------------------------------------------------------------------
// ccmd 3: QUERYPARAM

/// `i915_ccmd_queryparam_req`: query_id @16, length @20, flags @24.
#[derive(Debug)]
pub(crate) struct QueryparamReq {
    pub(crate) query_id: u32,
    pub(crate) length: u32,
    pub(crate) flags: u32,
}

impl Request for QueryparamReq {
    const ID: CcmdId = CcmdId::Queryparam;
    const SIZE: usize = 32;
    type Response = QueryparamRsp;
    fn decode(b: &[u8]) -> Self {
        QueryparamReq { query_id: rd32(b, 16), length: rd32(b, 20), flags: rd32(b, 24) }
    }
}

/// `i915_ccmd_queryparam_rsp`: ret @8, length @12, payload @16 (`16 + req.length` bytes
/// are reserved whatever the item's real length).
#[derive(Debug)]
pub(crate) struct QueryparamRsp {
    pub(crate) ret: i32,
    pub(crate) length: i32,
    pub(crate) payload: Vec<u8>,
    pub(crate) reserved: usize,
}

impl Response for QueryparamRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(16 + self.reserved);
        wr32(&mut v, 8, self.ret as u32);
        wr32(&mut v, 12, self.length as u32);
        let n = self.payload.len().min(self.reserved);
        v[16..16 + n].copy_from_slice(&self.payload[..n]);
        v
    }
}

// ---------------------------------------------------------------------------------
// ccmd 4 / 5: GEM_CREATE(_EXT)

/// `i915_ccmd_gem_create_req`: size @16, blob_id @24.
#[derive(Debug)]
pub(crate) struct GemCreateReq {
    pub(crate) size: u64,
    pub(crate) blob_id: u32,
}

impl Request for GemCreateReq {
    const ID: CcmdId = CcmdId::GemCreate;
    const SIZE: usize = 32;
    type Response = NoResponse;
    fn decode(b: &[u8]) -> Self {
        GemCreateReq { size: rd64(b, 16), blob_id: rd32(b, 24) }
    }
}

/// `i915_ccmd_gem_create_ext_req`: size @16, blob_id @24, gem_flags @28, ext_size @32,
/// payload @40.
#[derive(Debug)]
pub(crate) struct GemCreateExtReq {
    pub(crate) size: u64,
    pub(crate) blob_id: u32,
    pub(crate) gem_flags: u32,
    pub(crate) ext_size: u32,
    pub(crate) payload: Vec<u8>,
}

impl Request for GemCreateExtReq {
    const ID: CcmdId = CcmdId::GemCreateExt;
    const SIZE: usize = 40;
    type Response = NoResponse;
    fn decode(b: &[u8]) -> Self {
        GemCreateExtReq {
            size: rd64(b, 16),
            blob_id: rd32(b, 24),
            gem_flags: rd32(b, 28),
            ext_size: rd32(b, 32),
            payload: b.get(40..).map(|s| s.to_vec()).unwrap_or_default(),
        }
    }
}

/// `struct i915_user_extension` (32 B): next @0, name @8, flags @12, rsvd[4] @16.
pub(crate) const USER_EXT_SIZE: usize = 32;

/// Decoded i915_user_extension base.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserExt {
    pub(crate) name: u32,
    pub(crate) flags: u32,
    pub(crate) rsvd_nonzero: bool,
}

impl UserExt {
    pub(crate) fn decode(b: &[u8]) -> UserExt {
        UserExt { name: rd32(b, 8), flags: rd32(b, 12), rsvd_nonzero: (0..4).any(|i| rd32(b, 16 + 4 * i) != 0) }
    }
}

/// `I915_GEM_CREATE_EXT_*` extension names.
pub(crate) const GEM_CREATE_EXT_MEMORY_REGIONS: u32 = 0;
pub(crate) const GEM_CREATE_EXT_PROTECTED_CONTENT: u32 = 1;
pub(crate) const GEM_CREATE_EXT_SET_PAT: u32 = 2;
/// Serialized sizes of those extensions (without trailing region array).
pub(crate) const MEMORY_REGIONS_EXT_SIZE: usize = 48;
pub(crate) const PROTECTED_EXT_SIZE: usize = 40;
pub(crate) const SET_PAT_EXT_SIZE: usize = 40;

// ---------------------------------------------------------------------------------
// ccmd 6: GEM_CONTEXT_CREATE

/// `i915_ccmd_gem_context_create_req`: flags @16, params_size @20, payload @24.
#[derive(Debug)]
pub(crate) struct GemContextCreateReq {
    pub(crate) flags: u32,
    pub(crate) params_size: u32,
    pub(crate) payload: Vec<u8>,
}

impl Request for GemContextCreateReq {
    const ID: CcmdId = CcmdId::GemContextCreate;
    const SIZE: usize = 24;
    type Response = ContextCreateRsp;
    fn decode(b: &[u8]) -> Self {
        GemContextCreateReq {
            flags: rd32(b, 16),
            params_size: rd32(b, 20),
            payload: b.get(24..).map(|s| s.to_vec()).unwrap_or_default(),
        }
    }
}

/// Serialized `drm_i915_gem_context_create_ext_setparam` element (56 B).
pub(crate) const SETPARAM_EXT_SIZE: usize = 56;

/// `i915_ccmd_gem_context_create_rsp` (16 B): ret @8, ctx_id @12.
#[derive(Debug)]
pub(crate) struct ContextCreateRsp {
    pub(crate) ret: i32,
    pub(crate) ctx_id: u32,
}

impl Response for ContextCreateRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(16);
        wr32(&mut v, 8, self.ret as u32);
        wr32(&mut v, 12, self.ctx_id);
        v
    }
}

// ---------------------------------------------------------------------------------
// ccmd 7: GEM_EXECBUFFER2

/// `i915_ccmd_gem_execbuffer2_req` header (48 B); exec objects and relocs follow.
#[derive(Debug)]
pub(crate) struct ExecbufReq {
    pub(crate) flags: u64,
    pub(crate) context_id: u64,
    pub(crate) buffer_count: u32,
    pub(crate) batch_start_offset: u32,
    pub(crate) batch_len: u32,
    pub(crate) relocs_count: u32,
    pub(crate) payload: Vec<u8>,
}

impl Request for ExecbufReq {
    const ID: CcmdId = CcmdId::GemExecbuffer2;
    const SIZE: usize = 48;
    type Response = ExecbufRsp;
    fn decode(b: &[u8]) -> Self {
        ExecbufReq {
            flags: rd64(b, 16),
            context_id: rd64(b, 24),
            buffer_count: rd32(b, 32),
            batch_start_offset: rd32(b, 36),
            batch_len: rd32(b, 40),
            relocs_count: rd32(b, 44),
            payload: b.get(48..).map(|s| s.to_vec()).unwrap_or_default(),
        }
    }
}

/// `drm_i915_gem_exec_object2` (56 B).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExecObject {
    pub(crate) handle: u32,
    pub(crate) relocation_count: u32,
    pub(crate) relocs_ptr: u64,
    pub(crate) alignment: u64,
    pub(crate) offset: u64,
    pub(crate) flags: u64,
    pub(crate) rsvd1: u64,
    pub(crate) rsvd2: u64,
}

/// Size of an exec object on the wire.
pub(crate) const EXEC_OBJECT_SIZE: usize = 56;

impl ExecObject {
    pub(crate) fn decode(b: &[u8]) -> ExecObject {
        ExecObject {
            handle: rd32(b, 0),
            relocation_count: rd32(b, 4),
            relocs_ptr: rd64(b, 8),
            alignment: rd64(b, 16),
            offset: rd64(b, 24),
            flags: rd64(b, 32),
            rsvd1: rd64(b, 40),
            rsvd2: rd64(b, 48),
        }
    }
}

/// `drm_i915_gem_relocation_entry` (32 B).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reloc {
    pub(crate) target_handle: u32,
    pub(crate) delta: u32,
    pub(crate) offset: u64,
    pub(crate) presumed_offset: u64,
    pub(crate) read_domains: u32,
    pub(crate) write_domain: u32,
}

/// Size of a relocation entry on the wire.
pub(crate) const RELOC_SIZE: usize = 32;

impl Reloc {
    pub(crate) fn decode(b: &[u8]) -> Reloc {
        Reloc {
            target_handle: rd32(b, 0),
            delta: rd32(b, 4),
            offset: rd64(b, 8),
            presumed_offset: rd64(b, 16),
            read_domains: rd32(b, 24),
            write_domain: rd32(b, 28),
        }
    }
}

/// `i915_ccmd_gem_execbuffer2_rsp` (8 B): ret @4.
#[derive(Debug)]
pub(crate) struct ExecbufRsp {
    pub(crate) ret: i32,
}

impl Response for ExecbufRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(8);
        wr32(&mut v, 4, self.ret as u32);
        v
    }
}

// ---------------------------------------------------------------------------------
// ccmd 8 / 9

/// `i915_ccmd_gem_set_mmap_mode_req`: res_id @16, flags @20.
#[derive(Debug)]
pub(crate) struct SetMmapModeReq {
    pub(crate) res_id: u32,
    pub(crate) flags: u32,
}

impl Request for SetMmapModeReq {
    const ID: CcmdId = CcmdId::GemSetMmapMode;
    const SIZE: usize = 24;
    type Response = NoResponse;
    fn decode(b: &[u8]) -> Self {
        SetMmapModeReq { res_id: rd32(b, 16), flags: rd32(b, 20) }
    }
}

/// `i915_ccmd_gem_busy_req`: res_id @16.
#[derive(Debug)]
pub(crate) struct GemBusyReq {
    pub(crate) res_id: u32,
}

impl Request for GemBusyReq {
    const ID: CcmdId = CcmdId::GemBusy;
    const SIZE: usize = 24;
    type Response = GemBusyRsp;
    fn decode(b: &[u8]) -> Self {
        GemBusyReq { res_id: rd32(b, 16) }
    }
}

/// `i915_ccmd_gem_busy_rsp` (16 B): ret @8, busy @12.
#[derive(Debug)]
pub(crate) struct GemBusyRsp {
    pub(crate) ret: i32,
    pub(crate) busy: u32,
}

impl Response for GemBusyRsp {
    fn encode(&self) -> Vec<u8> {
        let mut v = rsp_buf(16);
        wr32(&mut v, 8, self.ret as u32);
        wr32(&mut v, 12, self.busy);
        v
    }
}

// ---------------------------------------------------------------------------------
// i915 ioctl numbers allowed through IOCTL_SIMPLE (the host's exact allow-list)

pub(crate) const IOCTL_REG_READ: u32 = 0xc010_6471;
pub(crate) const IOCTL_GET_APERTURE: u32 = 0x8010_6463;
pub(crate) const IOCTL_SET_TILING: u32 = 0xc010_6461;
pub(crate) const IOCTL_GET_TILING: u32 = 0xc010_6462;
pub(crate) const IOCTL_SET_DOMAIN: u32 = 0x400c_645f;
pub(crate) const IOCTL_GET_RESET_STATS: u32 = 0xc018_6472;
pub(crate) const IOCTL_CONTEXT_CREATE: u32 = 0xc008_646d;
pub(crate) const IOCTL_CONTEXT_DESTROY: u32 = 0x4008_646e;
pub(crate) const IOCTL_CONTEXT_GETPARAM: u32 = 0xc018_6474;
pub(crate) const IOCTL_CONTEXT_SETPARAM: u32 = 0xc018_6475;
pub(crate) const IOCTL_VM_CREATE: u32 = 0xc010_647a;
pub(crate) const IOCTL_VM_DESTROY: u32 = 0x4010_647b;

/// `_IOC_SIZE` of an ioctl number.
pub(crate) fn ioc_size(cmd: u32) -> usize {
    ((cmd >> 16) & 0x3fff) as usize
}

/// Whether the ioctl copies data back to the caller (`_IOC_READ`).
pub(crate) fn ioc_out(cmd: u32) -> bool {
    (cmd >> 30) & 2 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_sizes_match_the_protocol_table() {
        let t = [(1, 24), (2, 24), (3, 32), (4, 32), (5, 40), (6, 24), (7, 48), (8, 24), (9, 24)];
        for (id, size) in t {
            let c = CcmdId::from_u32(id).expect("valid id");
            assert_eq!(c.nominal_size(), size, "ccmd {id}");
            assert_eq!(c as u32, id);
        }
        assert!(CcmdId::from_u32(0).is_none());
        assert!(CcmdId::from_u32(10).is_none());
    }

    #[test]
    fn response_layouts() {
        let g = GetparamRsp { ret: 22, value: -1 }.encode();
        assert_eq!(g.len(), 16);
        assert_eq!(rd32(&g, 0), 16);
        assert_eq!(rd32(&g, 8), 22);
        assert_eq!(rd32(&g, 12), u32::MAX);
        let q = QueryparamRsp { ret: 0, length: 30, payload: vec![1; 30], reserved: 40 }.encode();
        assert_eq!(q.len(), 56);
        assert_eq!(rd32(&q, 12), 30);
        assert_eq!(q[16 + 29], 1);
        assert_eq!(q[16 + 30], 0);
        let s = IoctlSimpleRsp { ret: 1, payload: vec![9; 16] }.encode();
        assert_eq!((s.len(), rd32(&s, 4), s[8]), (24, 1, 9));
        let e = ExecbufRsp { ret: 5 }.encode();
        assert_eq!((e.len(), rd32(&e, 4)), (8, 5));
        let c = ContextCreateRsp { ret: 0, ctx_id: 3 }.encode();
        assert_eq!((c.len(), rd32(&c, 12)), (16, 3));
        let b = GemBusyRsp { ret: 0, busy: 0x10001 }.encode();
        assert_eq!(rd32(&b, 12), 0x10001);
    }

    #[test]
    fn request_decoding_is_zero_padded() {
        let hdr = CcmdHdr { cmd: 7, len: 16, seqno: 5, rsp_off: 8 }.encode();
        let r = ExecbufReq::decode(&hdr);
        assert_eq!((r.flags, r.buffer_count, r.payload.len()), (0, 0, 0));
        assert_eq!(CcmdHdr::decode(&hdr).seqno, 5);
    }

    #[test]
    fn ioctl_number_fields() {
        assert_eq!(ioc_size(IOCTL_SET_DOMAIN), 12);
        assert!(!ioc_out(IOCTL_SET_DOMAIN));
        assert_eq!(ioc_size(IOCTL_GET_RESET_STATS), 24);
        assert!(ioc_out(IOCTL_GET_APERTURE));
        assert_eq!(ioc_size(IOCTL_CONTEXT_CREATE), 8);
    }

    #[test]
    fn exec_object_layout() {
        let mut b = vec![0u8; EXEC_OBJECT_SIZE];
        wr32(&mut b, 0, 7);
        wr64(&mut b, 24, 0x1_0000_0000);
        wr64(&mut b, 32, 0x18);
        let o = ExecObject::decode(&b);
        assert_eq!((o.handle, o.offset, o.flags), (7, 0x1_0000_0000, 0x18));
    }
}
