//! The subset of the i915 uAPI (`include/uapi/drm/i915_drm.h`, x86-64 layout)
//! that travels inside ccmds: IOCTL_SIMPLE payload structs, exec objects,
//! extension chains and the query result formats.
//!
//! All structs here are plain integers without implicit padding, so
//! [`Pod::to_bytes`]/[`Pod::from_bytes`] are exact byte images.

#![allow(dead_code)]

use crate::uapi::{ior, iow, iowr, DRM_COMMAND_BASE, DRM_IOCTL_BASE};
use std::mem::size_of;

// ---------------------------------------------------------------------------
// Plain-old-data helper
// ---------------------------------------------------------------------------

/// Marker for `#[repr(C)]` structs consisting only of integers, with no
/// implicit padding (checked by the size assertions below).
///
/// # Safety
/// Implementors must have no padding bytes and accept every bit pattern.
pub unsafe trait Pod: Copy + Default {
    fn to_bytes(&self) -> Vec<u8> {
        let n = size_of::<Self>();
        let mut v = vec![0u8; n];
        // SAFETY: Self is POD without padding; v has exactly n bytes.
        unsafe { std::ptr::copy_nonoverlapping(self as *const Self as *const u8, v.as_mut_ptr(), n) };
        v
    }
    fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked; any bit pattern is valid for Self.
        Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const Self) })
    }
}

// ---------------------------------------------------------------------------
// ioctl numbers of the IOCTL_SIMPLE allow-list (and one that is not on it)
// ---------------------------------------------------------------------------

const fn i915_nr(n: u32) -> u32 {
    DRM_COMMAND_BASE + n
}

pub const DRM_IOCTL_I915_GEM_SET_DOMAIN: u32 = iow(DRM_IOCTL_BASE, i915_nr(0x1f), 12);
pub const DRM_IOCTL_I915_GEM_SET_TILING: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x21), size_of::<GemSetTiling>());
pub const DRM_IOCTL_I915_GEM_GET_TILING: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x22), size_of::<GemGetTiling>());
pub const DRM_IOCTL_I915_GEM_GET_APERTURE: u32 = ior(DRM_IOCTL_BASE, i915_nr(0x23), size_of::<GemGetAperture>());
pub const DRM_IOCTL_I915_GEM_MADVISE: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x26), size_of::<GemMadvise>());
pub const DRM_IOCTL_I915_GEM_CONTEXT_CREATE: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x2d), size_of::<GemContextCreate>());
pub const DRM_IOCTL_I915_GEM_CONTEXT_DESTROY: u32 = iow(DRM_IOCTL_BASE, i915_nr(0x2e), size_of::<GemContextDestroy>());
pub const DRM_IOCTL_I915_REG_READ: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x31), 16);
pub const DRM_IOCTL_I915_GET_RESET_STATS: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x32), size_of::<ResetStats>());
pub const DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x34), size_of::<GemContextParam>());
pub const DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x35), size_of::<GemContextParam>());
pub const DRM_IOCTL_I915_GEM_VM_CREATE: u32 = iowr(DRM_IOCTL_BASE, i915_nr(0x3a), size_of::<GemVmControl>());
pub const DRM_IOCTL_I915_GEM_VM_DESTROY: u32 = iow(DRM_IOCTL_BASE, i915_nr(0x3b), size_of::<GemVmControl>());

/// Ties an IOCTL_SIMPLE payload struct to its ioctl number.
pub trait SimpleIoctl: Pod {
    const NR: u32;
    const NAME: &'static str;
}

// ---------------------------------------------------------------------------
// Parameters and flags
// ---------------------------------------------------------------------------

pub const I915_PARAM_CHIPSET_ID: u32 = 4;
pub const I915_PARAM_REVISION: u32 = 32;
pub const I915_PARAM_HAS_EXEC_SOFTPIN: u32 = 37;
pub const I915_PARAM_MMAP_GTT_VERSION: u32 = 40;
pub const I915_PARAM_HAS_CONTEXT_ISOLATION: u32 = 50;
pub const I915_PARAM_CS_TIMESTAMP_FREQUENCY: u32 = 51;

pub const DRM_I915_QUERY_TOPOLOGY_INFO: u32 = 1;
pub const DRM_I915_QUERY_ENGINE_INFO: u32 = 2;
pub const DRM_I915_QUERY_MEMORY_REGIONS: u32 = 4;

pub const I915_ENGINE_CLASS_RENDER: u16 = 0;
pub const I915_ENGINE_CLASS_COPY: u16 = 1;
pub const I915_ENGINE_CLASS_VIDEO: u16 = 2;
pub const I915_ENGINE_CLASS_VIDEO_ENHANCE: u16 = 3;
pub const I915_ENGINE_CLASS_COMPUTE: u16 = 4;

pub const I915_MEMORY_CLASS_SYSTEM: u16 = 0;
pub const I915_MEMORY_CLASS_DEVICE: u16 = 1;

pub const I915_CONTEXT_PARAM_GTT_SIZE: u64 = 3;
pub const I915_CONTEXT_PARAM_PRIORITY: u64 = 6;
pub const I915_CONTEXT_PARAM_RECOVERABLE: u64 = 8;
pub const I915_CONTEXT_PARAM_VM: u64 = 9;
pub const I915_CONTEXT_PARAM_ENGINES: u64 = 10;

pub const I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS: u32 = 1;
pub const I915_CONTEXT_CREATE_EXT_SETPARAM: u32 = 0;
pub const I915_GEM_CREATE_EXT_MEMORY_REGIONS: u32 = 0;

pub const I915_TILING_NONE: u32 = 0;
pub const I915_TILING_X: u32 = 1;

pub const I915_MMAP_OFFSET_WB: u32 = 2;

pub const I915_EXEC_RING_MASK: u64 = 0x3f;
pub const I915_EXEC_NO_RELOC: u64 = 1 << 11;
pub const I915_EXEC_HANDLE_LUT: u64 = 1 << 12;
pub const I915_EXEC_BATCH_FIRST: u64 = 1 << 18;

pub const EXEC_OBJECT_WRITE: u64 = 1 << 2;
pub const EXEC_OBJECT_SUPPORTS_48B_ADDRESS: u64 = 1 << 3;
pub const EXEC_OBJECT_PINNED: u64 = 1 << 4;

pub const I915_MADV_WILLNEED: u32 = 0;

// ---------------------------------------------------------------------------
// Payload structs
// ---------------------------------------------------------------------------

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemGetAperture {
    pub aper_size: u64,
    pub aper_available_size: u64,
}
const _: () = assert!(size_of::<GemGetAperture>() == 16);
unsafe impl Pod for GemGetAperture {}
impl SimpleIoctl for GemGetAperture {
    const NR: u32 = DRM_IOCTL_I915_GEM_GET_APERTURE;
    const NAME: &'static str = "GEM_GET_APERTURE";
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemContextCreate {
    pub ctx_id: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<GemContextCreate>() == 8);
unsafe impl Pod for GemContextCreate {}
impl SimpleIoctl for GemContextCreate {
    const NR: u32 = DRM_IOCTL_I915_GEM_CONTEXT_CREATE;
    const NAME: &'static str = "GEM_CONTEXT_CREATE";
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemContextDestroy {
    pub ctx_id: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<GemContextDestroy>() == 8);
unsafe impl Pod for GemContextDestroy {}
impl SimpleIoctl for GemContextDestroy {
    const NR: u32 = DRM_IOCTL_I915_GEM_CONTEXT_DESTROY;
    const NAME: &'static str = "GEM_CONTEXT_DESTROY";
}

/// `struct drm_i915_gem_context_param`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemContextParam {
    pub ctx_id: u32,
    pub size: u32,
    pub param: u64,
    pub value: u64,
}
const _: () = assert!(size_of::<GemContextParam>() == 24);
unsafe impl Pod for GemContextParam {}

/// Newtypes so GET and SET share the struct but not the ioctl number.
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemContextGetparam(pub GemContextParam);
unsafe impl Pod for GemContextGetparam {}
impl SimpleIoctl for GemContextGetparam {
    const NR: u32 = DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM;
    const NAME: &'static str = "GEM_CONTEXT_GETPARAM";
}
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemContextSetparam(pub GemContextParam);
unsafe impl Pod for GemContextSetparam {}
impl SimpleIoctl for GemContextSetparam {
    const NR: u32 = DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM;
    const NAME: &'static str = "GEM_CONTEXT_SETPARAM";
}

/// `struct drm_i915_gem_vm_control`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemVmControl {
    pub extensions: u64,
    pub flags: u32,
    pub vm_id: u32,
}
const _: () = assert!(size_of::<GemVmControl>() == 16);
unsafe impl Pod for GemVmControl {}
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemVmCreate(pub GemVmControl);
unsafe impl Pod for GemVmCreate {}
impl SimpleIoctl for GemVmCreate {
    const NR: u32 = DRM_IOCTL_I915_GEM_VM_CREATE;
    const NAME: &'static str = "GEM_VM_CREATE";
}
#[repr(transparent)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemVmDestroy(pub GemVmControl);
unsafe impl Pod for GemVmDestroy {}
impl SimpleIoctl for GemVmDestroy {
    const NR: u32 = DRM_IOCTL_I915_GEM_VM_DESTROY;
    const NAME: &'static str = "GEM_VM_DESTROY";
}

/// `struct drm_i915_reset_stats`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ResetStats {
    pub ctx_id: u32,
    pub flags: u32,
    pub reset_count: u32,
    pub batch_active: u32,
    pub batch_pending: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<ResetStats>() == 24);
unsafe impl Pod for ResetStats {}
impl SimpleIoctl for ResetStats {
    const NR: u32 = DRM_IOCTL_I915_GET_RESET_STATS;
    const NAME: &'static str = "GET_RESET_STATS";
}

/// `struct drm_i915_gem_set_tiling`; `handle` carries the res_id on the wire.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemSetTiling {
    pub handle: u32,
    pub tiling_mode: u32,
    pub stride: u32,
    pub swizzle_mode: u32,
}
const _: () = assert!(size_of::<GemSetTiling>() == 16);
unsafe impl Pod for GemSetTiling {}
impl SimpleIoctl for GemSetTiling {
    const NR: u32 = DRM_IOCTL_I915_GEM_SET_TILING;
    const NAME: &'static str = "GEM_SET_TILING";
}

/// `struct drm_i915_gem_get_tiling`; `handle` carries the res_id on the wire.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemGetTiling {
    pub handle: u32,
    pub tiling_mode: u32,
    pub swizzle_mode: u32,
    pub phys_swizzle_mode: u32,
}
const _: () = assert!(size_of::<GemGetTiling>() == 16);
unsafe impl Pod for GemGetTiling {}
impl SimpleIoctl for GemGetTiling {
    const NR: u32 = DRM_IOCTL_I915_GEM_GET_TILING;
    const NAME: &'static str = "GEM_GET_TILING";
}

/// `struct drm_i915_gem_madvise` — NOT on the host allow-list (used only by
/// the `--negative` check).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GemMadvise {
    pub handle: u32,
    pub madv: u32,
    pub retained: u32,
}
const _: () = assert!(size_of::<GemMadvise>() == 12);
unsafe impl Pod for GemMadvise {}
impl SimpleIoctl for GemMadvise {
    const NR: u32 = DRM_IOCTL_I915_GEM_MADVISE;
    const NAME: &'static str = "GEM_MADVISE";
}

/// `struct drm_i915_gem_exec_object2`; `handle` carries the res_id on the wire.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ExecObject2 {
    pub handle: u32,
    pub relocation_count: u32,
    pub relocs_ptr: u64,
    pub alignment: u64,
    pub offset: u64,
    pub flags: u64,
    pub rsvd1: u64,
    pub rsvd2: u64,
}
const _: () = assert!(size_of::<ExecObject2>() == 56);
unsafe impl Pod for ExecObject2 {}

// ---------------------------------------------------------------------------
// Serialized extension chains (protocol §3.5 / §3.6, errata A.17)
// ---------------------------------------------------------------------------

/// Size of `struct i915_user_extension`.
pub const USER_EXTENSION_SIZE: usize = 32;
/// Size of `struct drm_i915_gem_create_ext_memory_regions`.
pub const CREATE_EXT_MEMORY_REGIONS_SIZE: usize = 48;
/// Size of `struct drm_i915_gem_context_create_ext_setparam`.
pub const CONTEXT_CREATE_EXT_SETPARAM_SIZE: usize = 56;

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// `I915_GEM_CREATE_EXT_MEMORY_REGIONS` element followed by its
/// `num_regions` × `drm_i915_gem_memory_class_instance` (u16 class, u16 instance).
/// Pointer fields (`next_extension`, `regions`) are zero: the host rewrites them.
pub fn create_ext_memory_regions(regions: &[(u16, u16)]) -> Vec<u8> {
    let mut b = vec![0u8; CREATE_EXT_MEMORY_REGIONS_SIZE + 4 * regions.len()];
    // base: next_extension @0 = 0, name @8, flags @12 = 0, rsvd[4] @16 = 0
    put_u32(&mut b, 8, I915_GEM_CREATE_EXT_MEMORY_REGIONS);
    // pad @32 = 0, num_regions @36, regions @40 = 0
    put_u32(&mut b, 36, regions.len() as u32);
    for (i, &(class, instance)) in regions.iter().enumerate() {
        let o = CREATE_EXT_MEMORY_REGIONS_SIZE + 4 * i;
        put_u16(&mut b, o, class);
        put_u16(&mut b, o + 2, instance);
    }
    b
}

/// One `I915_CONTEXT_CREATE_EXT_SETPARAM` element. With `data` empty the
/// `value` is literal (size 0); otherwise `size = data.len()` and the data
/// follows inline (the host points `value` at it).
pub fn context_setparam(param: u64, value: u64, data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; CONTEXT_CREATE_EXT_SETPARAM_SIZE + data.len()];
    // base: next_extension @0 = 0, name @8 = SETPARAM (0), flags/rsvd = 0
    put_u32(&mut b, 8, I915_CONTEXT_CREATE_EXT_SETPARAM);
    // param: ctx_id @32 = 0, size @36, param @40, value @48
    put_u32(&mut b, 36, data.len() as u32);
    put_u64(&mut b, 40, param);
    put_u64(&mut b, 48, if data.is_empty() { value } else { 0 });
    b[CONTEXT_CREATE_EXT_SETPARAM_SIZE..].copy_from_slice(data);
    b
}

/// Inline `struct i915_context_param_engines` (extensions = 0, then the
/// engine class/instance pairs).
pub fn engines_param(engines: &[(u16, u16)]) -> Vec<u8> {
    let mut b = vec![0u8; 8 + 4 * engines.len()];
    for (i, &(class, instance)) in engines.iter().enumerate() {
        put_u16(&mut b, 8 + 4 * i, class);
        put_u16(&mut b, 8 + 4 * i + 2, instance);
    }
    b
}

// ---------------------------------------------------------------------------
// Query result decoding
// ---------------------------------------------------------------------------

fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}
fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// Header of `struct drm_i915_query_topology_info` (16 bytes, then data[]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyInfo {
    pub flags: u16,
    pub max_slices: u16,
    pub max_subslices: u16,
    pub max_eus_per_subslice: u16,
    pub subslice_offset: u16,
    pub subslice_stride: u16,
    pub eu_offset: u16,
    pub eu_stride: u16,
    pub slice_mask: Vec<u8>,
    pub total_eus: u32,
}

pub fn decode_topology(b: &[u8]) -> Result<TopologyInfo, String> {
    let f = |o| get_u16(b, o).ok_or_else(|| format!("topology blob too short ({} bytes)", b.len()));
    let mut t = TopologyInfo {
        flags: f(0)?,
        max_slices: f(2)?,
        max_subslices: f(4)?,
        max_eus_per_subslice: f(6)?,
        subslice_offset: f(8)?,
        subslice_stride: f(10)?,
        eu_offset: f(12)?,
        eu_stride: f(14)?,
        slice_mask: Vec::new(),
        total_eus: 0,
    };
    let data = &b[16..];
    let slice_bytes = (t.max_slices as usize).div_ceil(8);
    let eu_end = t.eu_offset as usize + t.max_slices as usize * t.max_subslices as usize * t.eu_stride as usize;
    if data.len() < slice_bytes || data.len() < eu_end {
        return Err(format!(
            "topology data too short: {} bytes, need {} (eu_offset {} eu_stride {})",
            data.len(),
            eu_end.max(slice_bytes),
            t.eu_offset,
            t.eu_stride
        ));
    }
    t.slice_mask = data[..slice_bytes].to_vec();
    t.total_eus = data[t.eu_offset as usize..eu_end].iter().map(|x| x.count_ones()).sum();
    Ok(t)
}

/// One `struct drm_i915_engine_info` (56 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineInfo {
    pub class: u16,
    pub instance: u16,
    pub flags: u64,
    pub capabilities: u64,
    pub logical_instance: u16,
}
pub const ENGINE_INFO_SIZE: usize = 56;

/// `struct drm_i915_query_engine_info`: num_engines @0, rsvd[3], engines @16.
pub fn decode_engines(b: &[u8]) -> Result<Vec<EngineInfo>, String> {
    let n = get_u32(b, 0).ok_or("engine info too short")? as usize;
    let need = 16 + n * ENGINE_INFO_SIZE;
    if b.len() < need {
        return Err(format!("engine info: {} engines need {} bytes, got {}", n, need, b.len()));
    }
    Ok((0..n)
        .map(|i| {
            let o = 16 + i * ENGINE_INFO_SIZE;
            EngineInfo {
                class: get_u16(b, o).unwrap_or(0),
                instance: get_u16(b, o + 2).unwrap_or(0),
                flags: get_u64(b, o + 8).unwrap_or(0),
                capabilities: get_u64(b, o + 16).unwrap_or(0),
                logical_instance: get_u16(b, o + 24).unwrap_or(0),
            }
        })
        .collect())
}

/// One `struct drm_i915_memory_region_info` (88 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegionInfo {
    pub class: u16,
    pub instance: u16,
    pub probed_size: u64,
    pub unallocated_size: u64,
}
pub const MEMORY_REGION_INFO_SIZE: usize = 88;

/// `struct drm_i915_query_memory_regions`: num_regions @0, rsvd[3], regions @16.
pub fn decode_memory_regions(b: &[u8]) -> Result<Vec<MemoryRegionInfo>, String> {
    let n = get_u32(b, 0).ok_or("memory regions too short")? as usize;
    let need = 16 + n * MEMORY_REGION_INFO_SIZE;
    if b.len() < need {
        return Err(format!("memory regions: {} regions need {} bytes, got {}", n, need, b.len()));
    }
    Ok((0..n)
        .map(|i| {
            let o = 16 + i * MEMORY_REGION_INFO_SIZE;
            MemoryRegionInfo {
                class: get_u16(b, o).unwrap_or(0),
                instance: get_u16(b, o + 2).unwrap_or(0),
                probed_size: get_u64(b, o + 8).unwrap_or(0),
                unallocated_size: get_u64(b, o + 16).unwrap_or(0),
            }
        })
        .collect())
}

pub fn engine_class_name(class: u16) -> &'static str {
    match class {
        I915_ENGINE_CLASS_RENDER => "rcs",
        I915_ENGINE_CLASS_COPY => "bcs",
        I915_ENGINE_CLASS_VIDEO => "vcs",
        I915_ENGINE_CLASS_VIDEO_ENHANCE => "vecs",
        I915_ENGINE_CLASS_COMPUTE => "ccs",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn allow_list_numbers() {
        // Protocol §3.1 allow-list table (verified against the host header).
        assert_eq!(DRM_IOCTL_I915_REG_READ, 0xc010_6471);
        assert_eq!(DRM_IOCTL_I915_GEM_GET_APERTURE, 0x8010_6463);
        assert_eq!(DRM_IOCTL_I915_GEM_SET_TILING, 0xc010_6461);
        assert_eq!(DRM_IOCTL_I915_GEM_GET_TILING, 0xc010_6462);
        assert_eq!(DRM_IOCTL_I915_GEM_SET_DOMAIN, 0x400c_645f);
        assert_eq!(DRM_IOCTL_I915_GET_RESET_STATS, 0xc018_6472);
        assert_eq!(DRM_IOCTL_I915_GEM_CONTEXT_CREATE, 0xc008_646d);
        assert_eq!(DRM_IOCTL_I915_GEM_CONTEXT_DESTROY, 0x4008_646e);
        assert_eq!(DRM_IOCTL_I915_GEM_CONTEXT_GETPARAM, 0xc018_6474);
        assert_eq!(DRM_IOCTL_I915_GEM_CONTEXT_SETPARAM, 0xc018_6475);
        assert_eq!(DRM_IOCTL_I915_GEM_VM_CREATE, 0xc010_647a);
        assert_eq!(DRM_IOCTL_I915_GEM_VM_DESTROY, 0x4010_647b);
        assert_eq!(DRM_IOCTL_I915_GEM_MADVISE, 0xc00c_6466);
    }

    #[test]
    fn payload_layouts() {
        assert_eq!(offset_of!(GemContextParam, size), 4);
        assert_eq!(offset_of!(GemContextParam, param), 8);
        assert_eq!(offset_of!(GemContextParam, value), 16);
        assert_eq!(offset_of!(GemVmControl, flags), 8);
        assert_eq!(offset_of!(GemVmControl, vm_id), 12);
        assert_eq!(offset_of!(ResetStats, batch_active), 12);
        assert_eq!(offset_of!(ExecObject2, relocation_count), 4);
        assert_eq!(offset_of!(ExecObject2, relocs_ptr), 8);
        assert_eq!(offset_of!(ExecObject2, alignment), 16);
        assert_eq!(offset_of!(ExecObject2, offset), 24);
        assert_eq!(offset_of!(ExecObject2, flags), 32);
        assert_eq!(offset_of!(ExecObject2, rsvd1), 40);
        assert_eq!(offset_of!(ExecObject2, rsvd2), 48);
    }

    #[test]
    fn pod_roundtrip() {
        let p = GemContextParam { ctx_id: 7, size: 0, param: 6, value: 0x1122_3344_5566_7788 };
        let b = p.to_bytes();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..4], &7u32.to_le_bytes());
        assert_eq!(&b[8..16], &6u64.to_le_bytes());
        let q = GemContextParam::from_bytes(&b).unwrap();
        assert_eq!(q.value, p.value);
        assert!(GemContextParam::from_bytes(&b[..23]).is_none());
    }

    #[test]
    fn memory_regions_ext() {
        let b = create_ext_memory_regions(&[(0, 0), (1, 2)]);
        assert_eq!(b.len(), 48 + 8);
        assert_eq!(&b[8..12], &0u32.to_le_bytes()); // name MEMORY_REGIONS
        assert_eq!(&b[36..40], &2u32.to_le_bytes()); // num_regions
        assert!(b[40..48].iter().all(|&x| x == 0)); // regions ptr
        assert_eq!(&b[52..54], &1u16.to_le_bytes());
        assert_eq!(&b[54..56], &2u16.to_le_bytes());
    }

    #[test]
    fn setparam_ext() {
        let lit = context_setparam(I915_CONTEXT_PARAM_RECOVERABLE, 0, &[]);
        assert_eq!(lit.len(), 56);
        assert_eq!(&lit[36..40], &0u32.to_le_bytes());
        assert_eq!(&lit[40..48], &8u64.to_le_bytes());
        let eng = engines_param(&[(0, 0), (1, 0)]);
        assert_eq!(eng.len(), 16);
        assert_eq!(&eng[12..14], &1u16.to_le_bytes());
        let e = context_setparam(I915_CONTEXT_PARAM_ENGINES, 123, &eng);
        assert_eq!(e.len(), 72);
        assert_eq!(&e[36..40], &16u32.to_le_bytes());
        assert_eq!(&e[40..48], &10u64.to_le_bytes());
        assert_eq!(&e[48..56], &0u64.to_le_bytes()); // pointer: host rewrites
        assert_eq!(&e[56..], &eng[..]);
    }

    #[test]
    fn decode_queries() {
        let mut e = vec![0u8; 16 + 2 * 56];
        e[0] = 2;
        e[16 + 56] = 1; // second engine: class 1
        e[16 + 56 + 2] = 3; // instance 3
        let v = decode_engines(&e).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].class, 1);
        assert_eq!(v[1].instance, 3);
        assert!(decode_engines(&e[..100]).is_err());

        let mut m = vec![0u8; 16 + 88];
        m[0] = 1;
        m[16 + 8..16 + 16].copy_from_slice(&(1u64 << 33).to_le_bytes());
        let r = decode_memory_regions(&m).unwrap();
        assert_eq!(r[0].class, 0);
        assert_eq!(r[0].probed_size, 1 << 33);

        // 1 slice, 2 subslices, 8 EUs each; subslice/eu strides of 1 byte.
        let mut t = vec![0u8; 16];
        let hdr: [u16; 8] = [0, 1, 2, 8, 1, 1, 2, 1];
        for (i, v) in hdr.iter().enumerate() {
            t[2 * i..2 * i + 2].copy_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&[0x1, 0x3, 0xff, 0x0f]);
        let ti = decode_topology(&t).unwrap();
        assert_eq!(ti.slice_mask, vec![1]);
        assert_eq!(ti.total_eus, 12);
    }
}
