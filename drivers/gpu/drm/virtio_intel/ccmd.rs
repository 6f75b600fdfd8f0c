// SPDX-License-Identifier: GPL-2.0

//! virtio-intel context commands (ccmds) and their responses (`virtio-intel-protocol.md`
//! §2-§3, current `i915_proto.h` layout).
//!
//! Requests are encoded with their explicit little-endian layout; responses come from the
//! untrusted host through the shared response page and are decoded with bounds checks.

use kernel::prelude::*;

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
    Getparam = 2,
    Queryparam = 3,
}

/// A ccmd and the response it produces.
pub(crate) trait Ccmd {
    /// The command id.
    const ID: CcmdId;
    /// The decoded response.
    type Response;
    /// The response size the host writes for this request (the slot must hold it).
    fn response_size(&self) -> usize;
    /// Appends the body (after the header) to `out`.
    fn encode_body(&self, out: &mut KVec<u8>) -> Result;
    /// Decodes the response from the `len` bytes the host says it wrote.
    fn decode(&self, rsp: &[u8]) -> Result<Self::Response>;
}

fn rd32(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).ok_or(EIO)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn push32(out: &mut KVec<u8>, v: u32) -> Result {
    out.extend_from_slice(&v.to_le_bytes(), GFP_KERNEL)?;
    Ok(())
}

/// Encodes `c` with its header.
pub(crate) fn encode<C: Ccmd>(c: &C, seqno: u32, rsp_off: u32) -> Result<KVec<u8>> {
    let mut out = KVec::new();
    push32(&mut out, C::ID as u32)?;
    push32(&mut out, 0)?; // `len`, set once the body is encoded
    push32(&mut out, seqno)?;
    push32(&mut out, rsp_off)?;
    c.encode_body(&mut out)?;
    let len = u32::try_from(out.len()).map_err(|_| EINVAL)?;
    out.get_mut(4..8)
        .ok_or(EINVAL)?
        .copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// `I915_CCMD_GETPARAM`.
pub(crate) struct Getparam {
    pub(crate) param: i32,
}

/// The host's answer to GETPARAM: `Err(errno)` from the host's ioctl or the value.
pub(crate) type GetparamResult = core::result::Result<i32, u32>;

impl Ccmd for Getparam {
    const ID: CcmdId = CcmdId::Getparam;
    type Response = GetparamResult;

    fn response_size(&self) -> usize {
        16
    }

    fn encode_body(&self, out: &mut KVec<u8>) -> Result {
        push32(out, self.param as u32)?;
        push32(out, 0)
    }

    fn decode(&self, rsp: &[u8]) -> Result<GetparamResult> {
        let ret = rd32(rsp, 8)?;
        let value = rd32(rsp, 12)? as i32;
        if ret == RET_SENTINEL {
            return Err(EIO);
        }
        Ok(if ret == 0 { Ok(value) } else { Err(ret) })
    }
}

/// `I915_CCMD_QUERYPARAM`: one `DRM_I915_QUERY` item.
pub(crate) struct Queryparam {
    pub(crate) query_id: u32,
    pub(crate) length: u32,
    pub(crate) flags: u32,
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
    type Response = core::result::Result<QueryAnswer, u32>;

    fn response_size(&self) -> usize {
        16 + self.length as usize
    }

    fn encode_body(&self, out: &mut KVec<u8>) -> Result {
        push32(out, self.query_id)?;
        push32(out, self.length)?;
        push32(out, self.flags)?;
        push32(out, 0)
    }

    fn decode(&self, rsp: &[u8]) -> Result<Self::Response> {
        let ret = rd32(rsp, 8)?;
        if ret == RET_SENTINEL {
            return Err(EIO);
        }
        if ret != 0 {
            return Ok(Err(ret));
        }
        let length = rd32(rsp, 12)? as i32;
        let mut data = KVec::new();
        if length > 0 && self.length > 0 {
            // The host may not claim more than was asked for, nor more than it wrote.
            let n = length as u32;
            if n > self.length {
                return Err(EIO);
            }
            let bytes = rsp.get(16..16 + n as usize).ok_or(EIO)?;
            data.extend_from_slice(bytes, GFP_KERNEL)?;
        }
        Ok(Ok(QueryAnswer { length, data }))
    }
}

#[kunit_tests(virtio_intel_ccmd)]
mod tests {
    use super::*;

    #[test]
    fn getparam_encoding() -> Result {
        let b = encode(&Getparam { param: 4 }, 7, 64)?;
        assert_eq!(b.len(), 24);
        assert_eq!(rd32(&b, 0)?, 2);
        assert_eq!(rd32(&b, 4)?, 24);
        assert_eq!(rd32(&b, 8)?, 7);
        assert_eq!(rd32(&b, 12)?, 64);
        assert_eq!(rd32(&b, 16)?, 4);
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
