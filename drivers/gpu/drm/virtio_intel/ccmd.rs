// SPDX-License-Identifier: GPL-2.0

//! virtio-intel context commands (ccmds) and their responses (virglrenderer's
//! `i915_proto.h`, current layout).
//!
//! Each ccmd is a `#[repr(C)]` wire struct (header plus body) and each response a
//! `#[repr(C)]` struct read from the shared response page; zerocopy derives prove that
//! neither has padding, and the sizes are checked at compile time. [`Ccmd`] ties a request
//! to its response. Responses come from the untrusted host and are decoded with bounds
//! checks. All fields are little-endian on the wire.

use core::mem::size_of;
use kernel::prelude::*;
use zerocopy::Immutable;
use zerocopy_derive::{
    Immutable,
    KnownLayout, //
};

/// `struct i915_shmem`: seqno @0, rsp_mem_offset @4, banned_ctx_mask @8.
pub(crate) const SHMEM_SEQNO: usize = 0;
pub(crate) const SHMEM_RSP_MEM_OFFSET: usize = 4;
/// Response area offset the current protocol revision uses.
pub(crate) const RSP_MEM_OFFSET: u32 = 16;
/// The value pre-filled into `ret` of a response slot; a host never writes it.
pub(crate) const RET_SENTINEL: u32 = 0x7fff_ffff;

/// `enum i915_ccmd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// `struct vdrm_ccmd_req`: the header of every ccmd.
#[repr(C)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
pub(crate) struct CcmdHdr {
    cmd: u32,
    len: u32,
    seqno: u32,
    rsp_off: u32,
}

/// The head every response shares: `len`, padding, then the host ioctl's errno.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
struct RspHdr {
    len: u32,
    pad: u32,
    ret: u32,
}

impl RspHdr {
    /// Reads the head of `rsp` and turns the sentinel (a ccmd the host never answered)
    /// into `EIO`. Returns the host's errno (0 on success).
    fn ret(rsp: &[u8]) -> Result<u32> {
        let (h, _) = Self::read_from_prefix(rsp).map_err(|_| EIO)?;
        match u32::from_le(h.ret) {
            RET_SENTINEL => Err(EIO),
            ret => Ok(ret),
        }
    }
}

/// A ccmd and the response it produces.
pub(crate) trait Ccmd {
    /// The command id.
    const ID: CcmdId;
    /// The whole request on the wire, header included.
    type Request: IntoBytes + Immutable;
    /// The decoded response.
    type Response;
    /// The request with header `hdr`.
    fn request(&self, hdr: CcmdHdr) -> Self::Request;
    /// The response size the host writes for this request (the slot must hold it).
    fn response_size(&self) -> usize;
    /// Decodes the response from the bytes the host says it wrote.
    fn decode(&self, rsp: &[u8]) -> Result<Self::Response>;
    /// Bytes that follow the fixed request on the wire (counted in the header's `len`).
    fn payload(&self) -> &[u8] {
        &[]
    }
    /// Where the response holds the host's errno (`IOCTL_SIMPLE` has it right after `len`);
    /// the slot is pre-filled with [`RET_SENTINEL`] there.
    const RET_AT: usize = 8;
}

/// Encodes `c` with its header.
pub(crate) fn encode<C: Ccmd>(c: &C, seqno: u32, rsp_off: u32) -> Result<KVec<u8>> {
    let total = size_of::<C::Request>()
        .checked_add(c.payload().len())
        .ok_or(EINVAL)?;
    let len = u32::try_from(total).map_err(|_| EINVAL)?;
    let req = c.request(CcmdHdr {
        cmd: (C::ID as u32).to_le(),
        len: len.to_le(),
        seqno: seqno.to_le(),
        rsp_off: rsp_off.to_le(),
    });
    let mut out = KVec::with_capacity(total, GFP_KERNEL)?;
    out.extend_from_slice(req.as_bytes(), GFP_KERNEL)?;
    out.extend_from_slice(c.payload(), GFP_KERNEL)?;
    Ok(out)
}

/// The host's answer to a ccmd that wraps an i915 ioctl: the value, or the host ioctl's
/// positive errno.
pub(crate) type HostResult<T> = core::result::Result<T, u32>;

/// `I915_CCMD_GETPARAM`.
pub(crate) struct Getparam {
    pub(crate) param: i32,
}

/// `struct i915_ccmd_getparam_req`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GetparamReq {
    hdr: CcmdHdr,
    param: u32,
    value: u32,
}

/// `struct i915_ccmd_getparam_rsp`.
#[repr(C)]
#[derive(FromBytes, Immutable, KnownLayout)]
struct GetparamRsp {
    hdr: RspHdr,
    value: i32,
}

impl Ccmd for Getparam {
    const ID: CcmdId = CcmdId::Getparam;
    type Request = GetparamReq;
    type Response = HostResult<i32>;

    fn request(&self, hdr: CcmdHdr) -> GetparamReq {
        GetparamReq {
            hdr,
            param: (self.param as u32).to_le(),
            value: 0,
        }
    }

    fn response_size(&self) -> usize {
        size_of::<GetparamRsp>()
    }

    fn decode(&self, rsp: &[u8]) -> Result<HostResult<i32>> {
        let ret = RspHdr::ret(rsp)?;
        let (r, _) = GetparamRsp::read_from_prefix(rsp).map_err(|_| EIO)?;
        Ok(if ret == 0 {
            Ok(i32::from_le(r.value))
        } else {
            Err(ret)
        })
    }
}

/// `I915_CCMD_QUERYPARAM`: one `DRM_I915_QUERY` item.
pub(crate) struct Queryparam {
    pub(crate) query_id: u32,
    pub(crate) length: u32,
    pub(crate) flags: u32,
}

/// `struct i915_ccmd_queryparam_req`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct QueryparamReq {
    hdr: CcmdHdr,
    query_id: u32,
    length: u32,
    flags: u32,
    pad: u32,
}

/// Bytes of the QUERY answer's header, before the item's payload.
pub(crate) const QUERYPARAM_RSP_HEAD: usize = size_of::<QueryparamRsp>();

/// `struct i915_ccmd_queryparam_rsp`, followed by `length` bytes of payload.
#[repr(C)]
#[derive(FromBytes, Immutable, KnownLayout)]
struct QueryparamRsp {
    hdr: RspHdr,
    length: i32,
}

/// What the host's i915 said about one query item.
pub(crate) struct QueryAnswer {
    /// `item.length`: the size, or a negative errno.
    pub(crate) length: i32,
    /// The item data (`length` bytes when `length > 0` and data was asked for).
    pub(crate) data: KVec<u8>,
}

impl Ccmd for Queryparam {
    const ID: CcmdId = CcmdId::Queryparam;
    type Request = QueryparamReq;
    type Response = HostResult<QueryAnswer>;

    fn request(&self, hdr: CcmdHdr) -> QueryparamReq {
        QueryparamReq {
            hdr,
            query_id: self.query_id.to_le(),
            length: self.length.to_le(),
            flags: self.flags.to_le(),
            pad: 0,
        }
    }

    fn response_size(&self) -> usize {
        size_of::<QueryparamRsp>() + self.length as usize
    }

    fn decode(&self, rsp: &[u8]) -> Result<Self::Response> {
        let ret = RspHdr::ret(rsp)?;
        if ret != 0 {
            return Ok(Err(ret));
        }
        let (r, payload) = QueryparamRsp::read_from_prefix(rsp).map_err(|_| EIO)?;
        let length = i32::from_le(r.length);
        let mut data = KVec::new();
        if length > 0 && self.length > 0 {
            // The host may not claim more than was asked for, nor more than it wrote.
            let n = length as u32;
            if n > self.length {
                return Err(EIO);
            }
            let bytes = payload.get(..n as usize).ok_or(EIO)?;
            data.extend_from_slice(bytes, GFP_KERNEL)?;
        }
        Ok(Ok(QueryAnswer { length, data }))
    }
}

// Wire sizes (as `i915_proto.h` has them); `IntoBytes` proves there is no padding.
/// The i915 ioctls the host forwards through `IOCTL_SIMPLE`, by their full ioctl
/// numbers (direction, size, type `d`, number), which the host matches exactly.
pub(crate) mod simple {
    /// `DRM_IOCTL_I915_GEM_SET_TILING`: 16 bytes in and out, `handle` a res_id.
    pub(crate) const SET_TILING: u32 = 0xc010_6461;
    /// `DRM_IOCTL_I915_GEM_GET_TILING`: 16 bytes in and out, `handle` a res_id.
    pub(crate) const GET_TILING: u32 = 0xc010_6462;
    /// `DRM_IOCTL_I915_GEM_GET_APERTURE`: 16 bytes out.
    pub(crate) const GET_APERTURE: u32 = 0x8010_6463;
    /// `DRM_IOCTL_I915_GEM_SET_DOMAIN`: 12 bytes in, `handle` a res_id.
    pub(crate) const SET_DOMAIN: u32 = 0x400c_645f;
    /// `DRM_IOCTL_I915_REG_READ`: 16 bytes in and out.
    pub(crate) const REG_READ: u32 = 0xc010_6471;
    /// `DRM_IOCTL_I915_GET_RESET_STATS`: 24 bytes in and out.
    pub(crate) const GET_RESET_STATS: u32 = 0xc018_6472;
    /// `DRM_IOCTL_I915_GEM_CONTEXT_DESTROY`: 8 bytes in.
    pub(crate) const CONTEXT_DESTROY: u32 = 0x4008_646e;
    /// `DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM`: 24 bytes in and out.
    pub(crate) const CONTEXT_GETPARAM: u32 = 0xc018_6474;
    /// `DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM`: 24 bytes in and out.
    pub(crate) const CONTEXT_SETPARAM: u32 = 0xc018_6475;
    /// `DRM_IOCTL_I915_GEM_VM_CREATE`: 16 bytes in and out.
    pub(crate) const VM_CREATE: u32 = 0xc010_647a;
    /// `DRM_IOCTL_I915_GEM_VM_DESTROY`: 16 bytes in.
    pub(crate) const VM_DESTROY: u32 = 0x4010_647b;
}

/// `_IOC_READ` in an ioctl number: the host copies the struct back.
const IOC_OUT: u32 = 2 << 30;

/// `I915_CCMD_IOCTL_SIMPLE`: one i915 ioctl of the host's allow-list, `cmd`, with its
/// argument `arg` (the ioctl's struct, objects named by their res_id). The answer is the
/// host ioctl's errno or, on success, the argument after the call (unchanged for ioctls that
/// do not write it back).
pub(crate) struct IoctlSimple<T> {
    pub(crate) cmd: u32,
    pub(crate) arg: T,
}

#[repr(C, packed)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct IoctlSimpleReq<T: IntoBytes + Immutable> {
    hdr: CcmdHdr,
    cmd: u32,
    pad: u32,
    arg: T,
}

/// The head of an `IOCTL_SIMPLE` response: `len`, then the errno.
#[repr(C)]
#[derive(FromBytes, Immutable, KnownLayout)]
struct IoctlSimpleRsp {
    len: u32,
    ret: u32,
}

impl<T: FromBytes + IntoBytes + Immutable + Copy> Ccmd for IoctlSimple<T> {
    const ID: CcmdId = CcmdId::IoctlSimple;
    const RET_AT: usize = 4;
    type Request = IoctlSimpleReq<T>;
    type Response = HostResult<T>;

    fn request(&self, hdr: CcmdHdr) -> IoctlSimpleReq<T> {
        IoctlSimpleReq {
            hdr,
            cmd: self.cmd.to_le(),
            pad: 0,
            arg: self.arg,
        }
    }

    fn response_size(&self) -> usize {
        size_of::<IoctlSimpleRsp>()
            + if self.cmd & IOC_OUT != 0 {
                size_of::<T>()
            } else {
                0
            }
    }

    fn decode(&self, rsp: &[u8]) -> Result<HostResult<T>> {
        let (r, payload) = IoctlSimpleRsp::read_from_prefix(rsp).map_err(|_| EIO)?;
        match u32::from_le(r.ret) {
            RET_SENTINEL => Err(EIO),
            0 if self.cmd & IOC_OUT != 0 => {
                let (arg, _) = T::read_from_prefix(payload).map_err(|_| EIO)?;
                Ok(Ok(arg))
            }
            0 => Ok(Ok(self.arg)),
            e => Ok(Err(e)),
        }
    }
}

/// `I915_CCMD_GEM_CREATE`: a host GEM object of `size` bytes in system memory,
/// pending under `blob_id` until `RESOURCE_CREATE_BLOB` takes it. No response: the host
/// publishes the seqno only if the ioctl succeeded.
pub(crate) struct GemCreate {
    pub(crate) size: u64,
    pub(crate) blob_id: u32,
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GemCreateReq {
    hdr: CcmdHdr,
    size: u64,
    blob_id: u32,
    pad: u32,
}

/// Implements the parts of [`Ccmd`] common to commands the host does not answer.
macro_rules! no_response {
    () => {
        type Response = ();

        fn response_size(&self) -> usize {
            0
        }

        fn decode(&self, _rsp: &[u8]) -> Result {
            Ok(())
        }
    };
}

impl Ccmd for GemCreate {
    const ID: CcmdId = CcmdId::GemCreate;
    type Request = GemCreateReq;
    no_response!();

    fn request(&self, hdr: CcmdHdr) -> GemCreateReq {
        GemCreateReq {
            hdr,
            size: self.size.to_le(),
            blob_id: self.blob_id.to_le(),
            pad: 0,
        }
    }
}

/// `I915_CCMD_GEM_CREATE_EXT`: as [`GemCreate`], with `drm_i915_gem_create_ext`
/// flags and the extension chain serialised in `ext` (each extension struct followed by
/// its arrays, packed; pointers are rewritten by the host).
pub(crate) struct GemCreateExt {
    pub(crate) size: u64,
    pub(crate) blob_id: u32,
    pub(crate) flags: u32,
    pub(crate) ext: KVec<u8>,
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GemCreateExtReq {
    hdr: CcmdHdr,
    size: u64,
    blob_id: u32,
    gem_flags: u32,
    ext_size: u32,
    pad: u32,
}

impl Ccmd for GemCreateExt {
    const ID: CcmdId = CcmdId::GemCreateExt;
    type Request = GemCreateExtReq;
    no_response!();

    fn request(&self, hdr: CcmdHdr) -> GemCreateExtReq {
        GemCreateExtReq {
            hdr,
            size: self.size.to_le(),
            blob_id: self.blob_id.to_le(),
            gem_flags: self.flags.to_le(),
            // The callers build `ext` from at most a few hundred bytes.
            ext_size: (self.ext.len() as u32).to_le(),
            pad: 0,
        }
    }

    fn payload(&self) -> &[u8] {
        &self.ext
    }
}

/// `I915_CCMD_GEM_SET_MMAP_MODE`: the caching the host maps resource `res_id` with,
/// as `drm_i915_gem_mmap_offset.flags`; only effective before the first `MAP_BLOB`.
pub(crate) struct GemSetMmapMode {
    pub(crate) res_id: u32,
    pub(crate) flags: u32,
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GemSetMmapModeReq {
    hdr: CcmdHdr,
    res_id: u32,
    flags: u32,
}

impl Ccmd for GemSetMmapMode {
    const ID: CcmdId = CcmdId::GemSetMmapMode;
    type Request = GemSetMmapModeReq;
    no_response!();

    fn request(&self, hdr: CcmdHdr) -> GemSetMmapModeReq {
        GemSetMmapModeReq {
            hdr,
            res_id: self.res_id.to_le(),
            flags: self.flags.to_le(),
        }
    }
}

kernel::static_assert!(size_of::<IoctlSimpleReq<[u32; 3]>>() == 36);
kernel::static_assert!(size_of::<IoctlSimpleRsp>() == 8);
kernel::static_assert!(size_of::<GemCreateReq>() == 32);
kernel::static_assert!(size_of::<GemCreateExtReq>() == 40);
kernel::static_assert!(size_of::<GemSetMmapModeReq>() == 24);
kernel::static_assert!(size_of::<GemContextCreateReq>() == 24);
kernel::static_assert!(size_of::<GemContextCreateRsp>() == 16);
kernel::static_assert!(size_of::<GemExecbuffer2Req>() == 48);
kernel::static_assert!(size_of::<GemExecbuffer2Rsp>() == 8);
kernel::static_assert!(size_of::<CcmdHdr>() == 16);
kernel::static_assert!(size_of::<RspHdr>() == 12);
kernel::static_assert!(size_of::<GetparamReq>() == 24);
kernel::static_assert!(size_of::<GetparamRsp>() == 16);
kernel::static_assert!(size_of::<QueryparamReq>() == 32);
kernel::static_assert!(size_of::<QueryparamRsp>() == 16);

#[kunit_tests(virtio_intel_ccmd)]
mod tests {
    use super::*;

    fn rd32(b: &[u8], off: usize) -> u32 {
        match b.get(off..off + 4) {
            Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
            None => u32::MAX,
        }
    }

    #[test]
    fn gem_create_ext_encoding_counts_the_payload() -> Result {
        let mut ext = KVec::new();
        ext.extend_from_slice(&[0xaa; 52], GFP_KERNEL)?;
        let c = GemCreateExt {
            size: 0x2000,
            blob_id: 3,
            flags: 1,
            ext,
        };
        let b = encode(&c, 1, 0)?;
        assert_eq!(b.len(), 92);
        assert_eq!((rd32(&b, 0), rd32(&b, 4)), (5, 92));
        assert_eq!((rd32(&b, 16), rd32(&b, 24), rd32(&b, 28)), (0x2000, 3, 1));
        assert_eq!(rd32(&b, 32), 52);
        assert_eq!(b[40], 0xaa);
        assert_eq!(c.response_size(), 0);
        let b = encode(
            &GemSetMmapMode {
                res_id: 9,
                flags: 2,
            },
            4,
            0,
        )?;
        assert_eq!(
            (rd32(&b, 0), rd32(&b, 4), rd32(&b, 16), rd32(&b, 20)),
            (8, 24, 9, 2)
        );
        Ok(())
    }

    #[test]
    fn execbuffer_written_in_place_as_encoded() -> Result {
        let exec = |payload| GemExecbuffer2 {
            flags: 0x1_0000_0001,
            ctx_id: 3,
            buffer_count: 2,
            batch_start_offset: 8,
            batch_len: 16,
            relocs_count: 0,
            payload,
        };
        let mut p = ExecPayload::with_capacity(64)?;
        p.extend(&[0x5a; 40])?;
        p.extend(&[0xa5; 24])?;
        let c = exec(p);
        let encoded = encode(&c, 11, 96)?;
        let wire = c.into_wire(11, 96)?;
        assert_eq!(wire.as_slice(), encoded.as_slice());
        assert_eq!(wire.len(), ExecPayload::HEAD + 64);
        assert_eq!(
            (rd32(&wire, 4), rd32(&wire, 8), rd32(&wire, 12)),
            (112, 11, 96)
        );
        assert_eq!(
            (wire[ExecPayload::HEAD], wire[wire.len() - 1]),
            (0x5a, 0xa5)
        );
        // No payload at all: the fixed request alone.
        let c = exec(ExecPayload::with_capacity(0)?);
        assert_eq!(c.into_wire(1, 0)?.len(), ExecPayload::HEAD);
        Ok(())
    }

    #[test]
    fn getparam_encoding() -> Result {
        let b = encode(&Getparam { param: 4 }, 7, 64)?;
        assert_eq!(b.len(), 24);
        assert_eq!(rd32(&b, 0), 2);
        assert_eq!(rd32(&b, 4), 24);
        assert_eq!(rd32(&b, 8), 7);
        assert_eq!(rd32(&b, 12), 64);
        assert_eq!(rd32(&b, 16), 4);
        Ok(())
    }

    #[test]
    fn queryparam_encoding() -> Result {
        let q = Queryparam {
            query_id: 2,
            length: 296,
            flags: 5,
        };
        let b = encode(&q, 9, 16)?;
        assert_eq!(b.len(), 32);
        assert_eq!((rd32(&b, 0), rd32(&b, 4)), (3, 32));
        assert_eq!((rd32(&b, 16), rd32(&b, 20), rd32(&b, 24)), (2, 296, 5));
        assert_eq!(q.response_size(), 16 + 296);
        Ok(())
    }

    #[test]
    fn getparam_decoding_checks_the_host() -> Result {
        let g = Getparam { param: 4 };
        let mut rsp = [0u8; 16];
        rsp[12..16].copy_from_slice(&0x9a49u32.to_le_bytes());
        assert_eq!(g.decode(&rsp)?, Ok(0x9a49));
        rsp[8..12].copy_from_slice(&22u32.to_le_bytes());
        assert_eq!(g.decode(&rsp)?, Err(22));
        rsp[8..12].copy_from_slice(&RET_SENTINEL.to_le_bytes());
        assert!(g.decode(&rsp).is_err());
        rsp[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(g.decode(&rsp[..10]).is_err());
        Ok(())
    }

    #[test]
    fn query_decoding_bounds_the_length() -> Result {
        let q = Queryparam {
            query_id: 1,
            length: 8,
            flags: 0,
        };
        let mut rsp = [0u8; 24];
        rsp[12..16].copy_from_slice(&9u32.to_le_bytes());
        // The host claims more than was asked for.
        assert!(q.decode(&rsp).is_err());
        rsp[12..16].copy_from_slice(&8u32.to_le_bytes());
        let a = q.decode(&rsp)?.map_err(|_| EIO)?;
        assert_eq!((a.length, a.data.len()), (8, 8));
        // The host claims more than it wrote.
        assert!(q.decode(&rsp[..20]).is_err());
        let q0 = Queryparam {
            query_id: 1,
            length: 0,
            flags: 0,
        };
        rsp[12..16].copy_from_slice(&30u32.to_le_bytes());
        let a = q0.decode(&rsp[..16])?.map_err(|_| EIO)?;
        assert_eq!((a.length, a.data.len()), (30, 0));
        Ok(())
    }
}

/// `I915_CCMD_GEM_CONTEXT_CREATE`: `DRM_IOCTL_I915_GEM_CONTEXT_CREATE_EXT` with `flags`
/// and the `SETPARAM` chain serialised in `params` (each 56-byte
/// `drm_i915_gem_context_create_ext_setparam` followed by `param.size` bytes of the data
/// its `value` points to; the host rewrites the pointers). The answer is the new context's
/// id or the host ioctl's errno.
pub(crate) struct GemContextCreate {
    pub(crate) flags: u32,
    pub(crate) params: KVec<u8>,
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GemContextCreateReq {
    hdr: CcmdHdr,
    flags: u32,
    params_size: u32,
}

/// `struct i915_ccmd_gem_context_create_rsp`.
#[repr(C)]
#[derive(FromBytes, Immutable, KnownLayout)]
struct GemContextCreateRsp {
    hdr: RspHdr,
    ctx_id: u32,
}

impl Ccmd for GemContextCreate {
    const ID: CcmdId = CcmdId::GemContextCreate;
    type Request = GemContextCreateReq;
    type Response = HostResult<u32>;

    fn request(&self, hdr: CcmdHdr) -> GemContextCreateReq {
        GemContextCreateReq {
            hdr,
            flags: self.flags.to_le(),
            // The callers build `params` from at most 512 chain links of at most 184 bytes.
            params_size: (self.params.len() as u32).to_le(),
        }
    }

    fn response_size(&self) -> usize {
        size_of::<GemContextCreateRsp>()
    }

    fn decode(&self, rsp: &[u8]) -> Result<HostResult<u32>> {
        match RspHdr::ret(rsp)? {
            0 => {
                let (r, _) = GemContextCreateRsp::read_from_prefix(rsp).map_err(|_| EIO)?;
                Ok(Ok(u32::from_le(r.ctx_id)))
            }
            e => Ok(Err(e)),
        }
    }

    fn payload(&self) -> &[u8] {
        &self.params
    }
}

/// `I915_CCMD_GEM_EXECBUFFER2`: `DRM_IOCTL_I915_GEM_EXECBUFFER2_WR` on the host with the
/// exec objects (their `handle` a res_id) and relocation entries serialised in `payload`,
/// in that order. The answer is the host ioctl's errno (0 on success).
pub(crate) struct GemExecbuffer2 {
    pub(crate) flags: u64,
    pub(crate) ctx_id: u64,
    pub(crate) buffer_count: u32,
    pub(crate) batch_start_offset: u32,
    pub(crate) batch_len: u32,
    pub(crate) relocs_count: u32,
    pub(crate) payload: ExecPayload,
}

/// The payload of a [`GemExecbuffer2`], with room for its fixed request kept in front, so
/// that [`GemExecbuffer2::into_wire`] sends it without copying it again.
///
/// # Invariants
///
/// The buffer starts with [`ExecPayload::HEAD`] bytes that are not payload.
pub(crate) struct ExecPayload(KVec<u8>);

impl ExecPayload {
    /// Bytes of the fixed request.
    const HEAD: usize = size_of::<GemExecbuffer2Req>();

    /// An empty payload with room for `capacity` bytes.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self> {
        let total = capacity.checked_add(Self::HEAD).ok_or(ENOMEM)?;
        let mut v = KVec::with_capacity(total, GFP_KERNEL | __GFP_NOWARN)?;
        v.extend_from_slice(&[0; Self::HEAD], GFP_KERNEL)?;
        // INVARIANT: The room is there.
        Ok(Self(v))
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub(crate) fn extend(&mut self, bytes: &[u8]) -> Result {
        Ok(self.0.extend_from_slice(bytes, GFP_KERNEL | __GFP_NOWARN)?)
    }

    /// The payload.
    fn bytes(&self) -> &[u8] {
        self.0.get(Self::HEAD..).unwrap_or(&[])
    }
}

impl GemExecbuffer2 {
    /// The ccmd's bytes as [`encode`] makes them, written in place at the front of the
    /// payload's allocation.
    ///
    /// # Errors
    ///
    /// `EINVAL` for a ccmd too long for its header.
    pub(crate) fn into_wire(mut self, seqno: u32, rsp_off: u32) -> Result<KVec<u8>> {
        let len = u32::try_from(self.payload.0.len()).map_err(|_| EINVAL)?;
        let req = self.request(CcmdHdr {
            cmd: (CcmdId::GemExecbuffer2 as u32).to_le(),
            len: len.to_le(),
            seqno: seqno.to_le(),
            rsp_off: rsp_off.to_le(),
        });
        self.payload
            .0
            .get_mut(..ExecPayload::HEAD)
            .ok_or(EINVAL)?
            .copy_from_slice(req.as_bytes());
        Ok(self.payload.0)
    }
}

#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GemExecbuffer2Req {
    hdr: CcmdHdr,
    flags: u64,
    context_id: u64,
    buffer_count: u32,
    batch_start_offset: u32,
    batch_len: u32,
    relocs_count: u32,
}

/// `struct i915_ccmd_gem_execbuffer2_rsp`: `len`, then the errno.
#[repr(C)]
#[derive(FromBytes, Immutable, KnownLayout)]
pub(crate) struct GemExecbuffer2Rsp {
    len: u32,
    ret: u32,
}

impl Ccmd for GemExecbuffer2 {
    const ID: CcmdId = CcmdId::GemExecbuffer2;
    const RET_AT: usize = 4;
    type Request = GemExecbuffer2Req;
    type Response = HostResult<()>;

    fn request(&self, hdr: CcmdHdr) -> GemExecbuffer2Req {
        GemExecbuffer2Req {
            hdr,
            flags: self.flags.to_le(),
            context_id: self.ctx_id.to_le(),
            buffer_count: self.buffer_count.to_le(),
            batch_start_offset: self.batch_start_offset.to_le(),
            batch_len: self.batch_len.to_le(),
            relocs_count: self.relocs_count.to_le(),
        }
    }

    fn response_size(&self) -> usize {
        size_of::<GemExecbuffer2Rsp>()
    }

    fn decode(&self, rsp: &[u8]) -> Result<HostResult<()>> {
        let (r, _) = GemExecbuffer2Rsp::read_from_prefix(rsp).map_err(|_| EIO)?;
        match u32::from_le(r.ret) {
            RET_SENTINEL => Err(EIO),
            0 => Ok(Ok(())),
            e => Ok(Err(e)),
        }
    }

    fn payload(&self) -> &[u8] {
        self.payload.bytes()
    }
}
