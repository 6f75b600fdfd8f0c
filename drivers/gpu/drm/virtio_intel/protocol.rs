// SPDX-License-Identifier: GPL-2.0

//! virtio-gpu control commands and the DRM capset (`include/uapi/linux/virtio_gpu.h`,
//! `virtio-intel-protocol.md` §1).
//!
//! Every command is a `#[repr(C)]` struct starting with [`CtrlHdr`]; [`Command`] ties it
//! to its response type. All fields are little-endian on the wire; the structs store
//! them in wire order and convert on access.

use core::mem::size_of;
use kernel::prelude::*;
use zerocopy::{
    Immutable,
    KnownLayout, //
};
use zerocopy_derive::{
    Immutable,
    KnownLayout, //
};

/// `VIRTIO_GPU_CMD_GET_CAPSET_INFO`.
pub(crate) const CMD_GET_CAPSET_INFO: u32 = 0x0108;
/// `VIRTIO_GPU_CMD_GET_CAPSET`.
pub(crate) const CMD_GET_CAPSET: u32 = 0x0109;
/// `VIRTIO_GPU_RESP_OK_CAPSET_INFO`.
pub(crate) const RESP_OK_CAPSET_INFO: u32 = 0x1102;
/// `VIRTIO_GPU_RESP_OK_CAPSET`.
pub(crate) const RESP_OK_CAPSET: u32 = 0x1103;
/// First error response (`VIRTIO_GPU_RESP_ERR_UNSPEC`).
pub(crate) const RESP_ERR_UNSPEC: u32 = 0x1200;

/// Capset id of the DRM native context.
pub(crate) const CAPSET_DRM: u32 = 6;
/// `VIRTGPU_DRM_CONTEXT_I915`.
pub(crate) const CONTEXT_TYPE_I915: u32 = 3;

/// Feature bits (`VIRTIO_GPU_F_*`).
pub(crate) const F_VIRGL: u32 = 0;
pub(crate) const F_RESOURCE_BLOB: u32 = 3;
pub(crate) const F_CONTEXT_INIT: u32 = 4;
pub(crate) const F_BLOB_ALIGNMENT: u32 = 5;
/// `VIRTIO_F_VERSION_1`.
pub(crate) const F_VERSION_1: u32 = 32;

/// Config space offsets (`struct virtio_gpu_config`).
pub(crate) const CONFIG_NUM_CAPSETS: u32 = 12;
pub(crate) const CONFIG_BLOB_ALIGNMENT: u32 = 16;

/// `VIRTIO_GPU_SHM_ID_HOST_VISIBLE`.
pub(crate) const SHM_ID_HOST_VISIBLE: u8 = 1;

/// `struct virtio_gpu_ctrl_hdr` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(crate) struct CtrlHdr {
    type_: u32,
    flags: u32,
    fence_id: u64,
    ctx_id: u32,
    ring_idx: u8,
    padding: [u8; 3],
}

impl CtrlHdr {
    /// A header for command `type_` with no fence and no context.
    pub(crate) fn new(type_: u32) -> Self {
        Self {
            type_: type_.to_le(),
            ..Default::default()
        }
    }

    /// The command or response type.
    pub(crate) fn type_(&self) -> u32 {
        u32::from_le(self.type_)
    }
}

/// A control command and its response.
pub(crate) trait Command: IntoBytes + Immutable {
    /// What the device answers.
    type Response: FromBytes + KnownLayout + Immutable;
    /// The response type code that means success.
    const OK: u32;
}

/// `struct virtio_gpu_get_capset_info`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GetCapsetInfo {
    hdr: CtrlHdr,
    capset_index: u32,
    padding: u32,
}

impl GetCapsetInfo {
    pub(crate) fn new(index: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CMD_GET_CAPSET_INFO),
            capset_index: index.to_le(),
            padding: 0,
        }
    }
}

/// `struct virtio_gpu_resp_capset_info`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub(crate) struct RespCapsetInfo {
    pub(crate) hdr: CtrlHdr,
    capset_id: u32,
    capset_max_version: u32,
    capset_max_size: u32,
    padding: u32,
}

impl RespCapsetInfo {
    pub(crate) fn id(&self) -> u32 {
        u32::from_le(self.capset_id)
    }
    pub(crate) fn max_version(&self) -> u32 {
        u32::from_le(self.capset_max_version)
    }
    pub(crate) fn max_size(&self) -> u32 {
        u32::from_le(self.capset_max_size)
    }
}

impl Command for GetCapsetInfo {
    type Response = RespCapsetInfo;
    const OK: u32 = RESP_OK_CAPSET_INFO;
}

/// `struct virtio_gpu_get_capset`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct GetCapset {
    hdr: CtrlHdr,
    capset_id: u32,
    capset_version: u32,
}

impl GetCapset {
    pub(crate) fn new(id: u32, version: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CMD_GET_CAPSET),
            capset_id: id.to_le(),
            capset_version: version.to_le(),
        }
    }
}

/// The part of `struct virgl_renderer_capset_drm` this driver uses (48 bytes; the host's
/// struct is 160 or more).
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, Immutable, KnownLayout)]
pub(crate) struct CapsetDrm {
    wire_format_version: u32,
    version_major: u32,
    version_minor: u32,
    version_patchlevel: u32,
    context_type: u32,
    pad: u32,
    pci_bus: u32,
    pci_dev: u32,
    pci_func: u32,
    pci_revision_id: u32,
    pci_domain: u32,
    pci_device_id: u32,
}

/// The response to [`GetCapset`] for capset 6: header plus the capset.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub(crate) struct RespCapsetDrm {
    pub(crate) hdr: CtrlHdr,
    pub(crate) capset: CapsetDrm,
}

impl Command for GetCapset {
    type Response = RespCapsetDrm;
    const OK: u32 = RESP_OK_CAPSET;
}

/// The host's i915 identity, validated from the DRM capset.
///
/// # Invariants
///
/// `context_type` is [`CONTEXT_TYPE_I915`], the wire format is 1 and the PCI ids fit
/// their PCI widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct I915Identity {
    pub(crate) device_id: u16,
    pub(crate) revision: u8,
    pub(crate) bus: u8,
    pub(crate) dev: u8,
    pub(crate) func: u8,
    pub(crate) domain: u32,
    pub(crate) drm_version: (u32, u32, u32),
}

/// PCI device ids of Tiger Lake (LP) GPUs (`INTEL_TGL_IDS`).
const TGL_IDS: [u16; 11] = [
    0x9a40, 0x9a49, 0x9a59, 0x9a60, 0x9a68, 0x9a70, 0x9a78, 0x9ac0, 0x9ac9, 0x9ad9, 0x9af8,
];

impl I915Identity {
    /// `EOPNOTSUPP` unless the host GPU is a Tiger Lake, the last platform of graphics
    /// version 12 and later that i915 serves `GEM_PREAD`, `GEM_PWRITE` and the legacy
    /// `GEM_MMAP` on: for those and the other ioctls whose answers on other platforms this
    /// driver does not profile yet.
    pub(crate) fn tigerlake_only(&self) -> Result {
        if TGL_IDS.contains(&self.device_id) {
            Ok(())
        } else {
            Err(EOPNOTSUPP)
        }
    }

    /// Validates a DRM capset (everything in it comes from the untrusted host).
    ///
    /// # Errors
    ///
    /// `ENODEV` when the host serves another kind of native context or a wire format this
    /// driver does not speak; `EINVAL` when a PCI field is out of range.
    pub(crate) fn from_capset(c: &CapsetDrm) -> Result<Self> {
        let ctx = u32::from_le(c.context_type);
        let wire = u32::from_le(c.wire_format_version);
        if ctx != CONTEXT_TYPE_I915 {
            return Err(ENODEV);
        }
        if wire != 1 {
            return Err(ENODEV);
        }
        let narrow = |v: u32| u8::try_from(u32::from_le(v)).map_err(|_| EINVAL);
        Ok(Self {
            device_id: u16::try_from(u32::from_le(c.pci_device_id)).map_err(|_| EINVAL)?,
            revision: narrow(c.pci_revision_id)?,
            bus: narrow(c.pci_bus)?,
            dev: narrow(c.pci_dev)?,
            func: narrow(c.pci_func)?,
            domain: u32::from_le(c.pci_domain),
            drm_version: (
                u32::from_le(c.version_major),
                u32::from_le(c.version_minor),
                u32::from_le(c.version_patchlevel),
            ),
        })
    }
}

// ---------------------------------------------------------------------------------
// Contexts, blobs and submission

pub(crate) const CMD_RESOURCE_UNREF: u32 = 0x0102;
pub(crate) const CMD_RESOURCE_CREATE_BLOB: u32 = 0x010c;
pub(crate) const CMD_CTX_CREATE: u32 = 0x0200;
pub(crate) const CMD_CTX_DESTROY: u32 = 0x0201;
pub(crate) const CMD_CTX_ATTACH_RESOURCE: u32 = 0x0202;
pub(crate) const CMD_SUBMIT_3D: u32 = 0x0207;
pub(crate) const CMD_RESOURCE_MAP_BLOB: u32 = 0x0208;
pub(crate) const CMD_RESOURCE_UNMAP_BLOB: u32 = 0x0209;
/// `VIRTIO_GPU_RESP_OK_NODATA`.
pub(crate) const RESP_OK_NODATA: u32 = 0x1100;
/// `VIRTIO_GPU_RESP_OK_MAP_INFO`.
pub(crate) const RESP_OK_MAP_INFO: u32 = 0x1106;
/// `VIRTIO_GPU_MAP_CACHE_*`: the caching the host maps a blob with.
pub(crate) const MAP_CACHE_NONE: u32 = 0;
pub(crate) const MAP_CACHE_CACHED: u32 = 1;
pub(crate) const MAP_CACHE_UNCACHED: u32 = 2;
pub(crate) const MAP_CACHE_WC: u32 = 3;
/// `VIRTIO_GPU_FLAG_FENCE` and `VIRTIO_GPU_FLAG_INFO_RING_IDX`.
pub(crate) const FLAG_FENCE: u32 = 1;
pub(crate) const FLAG_INFO_RING_IDX: u32 = 2;
/// `VIRTIO_GPU_BLOB_MEM_HOST3D`, `VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE`.
pub(crate) const BLOB_MEM_HOST3D: u32 = 2;
pub(crate) const BLOB_FLAG_USE_MAPPABLE: u32 = 1;
/// `VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE`: the host holds the object as a dma-buf.
pub(crate) const BLOB_FLAG_USE_SHAREABLE: u32 = 2;

impl CtrlHdr {
    /// A header for command `type_` in context `ctx`.
    pub(crate) fn in_ctx(type_: u32, ctx: u32) -> Self {
        Self {
            type_: type_.to_le(),
            ctx_id: ctx.to_le(),
            ..Default::default()
        }
    }

    /// Asks for a fence on ring `ring`: the host answers once the fence retires.
    pub(crate) fn fenced(mut self, fence_id: u64, ring: u8) -> Self {
        self.flags = (FLAG_FENCE | FLAG_INFO_RING_IDX).to_le();
        self.fence_id = fence_id.to_le();
        self.ring_idx = ring;
        self
    }
}

/// A response that is only a header.
pub(crate) type RespNoData = CtrlHdr;

/// Commands the host answers with `OK_NODATA`.
macro_rules! no_data_commands {
    ($($t:ty),* $(,)?) => {
        $(
            impl Command for $t {
                type Response = RespNoData;
                const OK: u32 = RESP_OK_NODATA;
            }
        )*
    };
}

no_data_commands!(
    CtxCreate,
    CtxDestroy,
    ResourceCreateBlob,
    ResourceCmd,
    Submit3d
);

/// `struct virtio_gpu_ctx_create`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct CtxCreate {
    hdr: CtrlHdr,
    nlen: u32,
    context_init: u32,
    debug_name: [u8; 64],
}

impl CtxCreate {
    /// A context of capset `capset` named `name` (truncated to 63 bytes).
    pub(crate) fn new(ctx: u32, capset: u32, name: &[u8]) -> Self {
        let mut debug_name = [0u8; 64];
        let n = name.len().min(63);
        debug_name[..n].copy_from_slice(&name[..n]);
        Self {
            hdr: CtrlHdr::in_ctx(CMD_CTX_CREATE, ctx),
            nlen: (n as u32).to_le(),
            context_init: capset.to_le(),
            debug_name,
        }
    }
}

/// `struct virtio_gpu_ctx_destroy`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct CtxDestroy {
    hdr: CtrlHdr,
}

impl CtxDestroy {
    pub(crate) fn new(ctx: u32) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_CTX_DESTROY, ctx),
        }
    }
}

/// `struct virtio_gpu_resource_create_blob`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct ResourceCreateBlob {
    hdr: CtrlHdr,
    resource_id: u32,
    blob_mem: u32,
    blob_flags: u32,
    nr_entries: u32,
    blob_id: u64,
    size: u64,
}

impl ResourceCreateBlob {
    /// A HOST3D blob of context `ctx`.
    pub(crate) fn host3d(ctx: u32, res: u32, flags: u32, blob_id: u64, size: u64) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_RESOURCE_CREATE_BLOB, ctx),
            resource_id: res.to_le(),
            blob_mem: BLOB_MEM_HOST3D.to_le(),
            blob_flags: flags.to_le(),
            nr_entries: 0,
            blob_id: blob_id.to_le(),
            size: size.to_le(),
        }
    }
}

/// `struct virtio_gpu_resource_map_blob`.
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct ResourceMapBlob {
    hdr: CtrlHdr,
    resource_id: u32,
    padding: u32,
    offset: u64,
}

impl ResourceMapBlob {
    pub(crate) fn new(ctx: u32, res: u32, offset: u64) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_RESOURCE_MAP_BLOB, ctx),
            resource_id: res.to_le(),
            padding: 0,
            offset: offset.to_le(),
        }
    }
}

/// `struct virtio_gpu_resp_map_info`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, Immutable, KnownLayout)]
pub(crate) struct RespMapInfo {
    hdr: CtrlHdr,
    map_info: u32,
    padding: u32,
}

impl RespMapInfo {
    /// `VIRTIO_GPU_MAP_CACHE_*` (low four bits).
    pub(crate) fn cache(&self) -> u32 {
        u32::from_le(self.map_info) & 0xf
    }
}

impl Command for ResourceMapBlob {
    type Response = RespMapInfo;
    const OK: u32 = RESP_OK_MAP_INFO;
}

/// A command naming one resource (`RESOURCE_UNMAP_BLOB`, `RESOURCE_UNREF`,
/// `CTX_ATTACH_RESOURCE`).
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct ResourceCmd {
    hdr: CtrlHdr,
    resource_id: u32,
    padding: u32,
}

impl ResourceCmd {
    pub(crate) fn unmap_blob(ctx: u32, res: u32) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_RESOURCE_UNMAP_BLOB, ctx),
            resource_id: res.to_le(),
            padding: 0,
        }
    }
    /// Makes resource `res` usable in context `ctx` (the host imports the object there).
    pub(crate) fn ctx_attach(ctx: u32, res: u32) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_CTX_ATTACH_RESOURCE, ctx),
            resource_id: res.to_le(),
            padding: 0,
        }
    }
    pub(crate) fn unref(res: u32) -> Self {
        Self {
            hdr: CtrlHdr::new(CMD_RESOURCE_UNREF),
            resource_id: res.to_le(),
            padding: 0,
        }
    }
}

/// `struct virtio_gpu_cmd_submit` (header of `SUBMIT_3D`; the ccmd stream follows).
#[repr(C)]
#[derive(IntoBytes, Immutable)]
pub(crate) struct Submit3d {
    hdr: CtrlHdr,
    size: u32,
    padding: u32,
}

impl Submit3d {
    /// A submit of `size` bytes in context `ctx` without a fence: QEMU answers it once the
    /// host has processed it (ccmds run synchronously in that processing).
    pub(crate) fn unfenced(ctx: u32, size: u32) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_SUBMIT_3D, ctx),
            size: size.to_le(),
            padding: 0,
        }
    }

    /// A submit of `size` bytes in context `ctx`, fenced on `ring` with `fence_id`.
    pub(crate) fn fenced(ctx: u32, size: u32, fence_id: u64, ring: u8) -> Self {
        Self {
            hdr: CtrlHdr::in_ctx(CMD_SUBMIT_3D, ctx).fenced(fence_id, ring),
            size: size.to_le(),
            padding: 0,
        }
    }
}

// Wire sizes (`include/uapi/linux/virtio_gpu.h`); `IntoBytes` proves there is no padding.
kernel::static_assert!(size_of::<CtrlHdr>() == 24);
kernel::static_assert!(size_of::<GetCapsetInfo>() == 32);
kernel::static_assert!(size_of::<RespCapsetInfo>() == 40);
kernel::static_assert!(size_of::<GetCapset>() == 32);
kernel::static_assert!(size_of::<CapsetDrm>() == 48);
kernel::static_assert!(core::mem::offset_of!(CapsetDrm, context_type) == 16);
kernel::static_assert!(core::mem::offset_of!(CapsetDrm, pci_device_id) == 44);
kernel::static_assert!(size_of::<CtxCreate>() == 96);
kernel::static_assert!(size_of::<CtxDestroy>() == 24);
kernel::static_assert!(size_of::<ResourceCreateBlob>() == 56);
kernel::static_assert!(size_of::<ResourceMapBlob>() == 40);
kernel::static_assert!(size_of::<RespMapInfo>() == 32);
kernel::static_assert!(size_of::<ResourceCmd>() == 32);
kernel::static_assert!(size_of::<Submit3d>() == 32);

#[kunit_tests(virtio_intel_protocol)]
mod tests {
    use super::*;

    fn tgl() -> CapsetDrm {
        CapsetDrm {
            wire_format_version: 1u32.to_le(),
            version_major: 1u32.to_le(),
            version_minor: 6u32.to_le(),
            context_type: CONTEXT_TYPE_I915.to_le(),
            pci_dev: 2u32.to_le(),
            pci_revision_id: 1u32.to_le(),
            pci_device_id: 0x9a49u32.to_le(),
            ..Default::default()
        }
    }

    #[test]
    fn capset_validation() {
        let id = I915Identity::from_capset(&tgl()).expect("valid capset");
        assert_eq!((id.device_id, id.revision, id.dev), (0x9a49, 1, 2));
        let mut c = tgl();
        c.context_type = 1u32.to_le();
        assert_eq!(I915Identity::from_capset(&c), Err(ENODEV));
        let mut c = tgl();
        c.pci_device_id = 0x1_0000u32.to_le();
        assert_eq!(I915Identity::from_capset(&c), Err(EINVAL));
        let mut c = tgl();
        c.wire_format_version = 2u32.to_le();
        assert_eq!(I915Identity::from_capset(&c), Err(ENODEV));
    }
}
