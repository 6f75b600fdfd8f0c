//! virtio_gpu DRM uAPI (`include/uapi/drm/virtgpu_drm.h`, `drm.h`): ioctl
//! numbers and argument structs with explicit `#[repr(C)]` layouts.
//!
//! Every struct has a compile-time size assertion against the x86-64 layout of
//! the kernel header, and the unit tests check the field offsets.

#![allow(dead_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;

// ---------------------------------------------------------------------------
// ioctl number encoding (asm-generic/ioctl.h)
// ---------------------------------------------------------------------------

pub const IOC_NONE: u32 = 0;
pub const IOC_WRITE: u32 = 1;
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32 & 0x3fff) << 16) | (ty << 8) | nr
}
pub const fn iow(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}
pub const fn ior(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}
pub const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}
/// `_IOC_SIZE(nr)`.
pub const fn ioc_size(nr: u32) -> usize {
    ((nr >> 16) & 0x3fff) as usize
}
/// `_IOC_DIR(nr) & _IOC_READ` (the ioctl copies data back to user space).
pub const fn ioc_is_out(nr: u32) -> bool {
    (nr >> 30) & IOC_READ != 0
}

pub const DRM_IOCTL_BASE: u32 = b'd' as u32;
pub const DRM_COMMAND_BASE: u32 = 0x40;

// ---------------------------------------------------------------------------
// Core DRM
// ---------------------------------------------------------------------------

/// `struct drm_version` (x86-64: three ints, padding, then size_t/pointer pairs).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVersion {
    pub version_major: i32,
    pub version_minor: i32,
    pub version_patchlevel: i32,
    pub _pad: u32,
    pub name_len: u64,
    pub name: u64,
    pub date_len: u64,
    pub date: u64,
    pub desc_len: u64,
    pub desc: u64,
}
const _: () = assert!(size_of::<DrmVersion>() == 64);

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmGemClose>() == 8);

pub const DRM_IOCTL_VERSION: u32 = iowr(DRM_IOCTL_BASE, 0x00, size_of::<DrmVersion>());
pub const DRM_IOCTL_GEM_CLOSE: u32 = iow(DRM_IOCTL_BASE, 0x09, size_of::<DrmGemClose>());

// ---------------------------------------------------------------------------
// virtio_gpu
// ---------------------------------------------------------------------------

pub const DRM_VIRTGPU_MAP: u32 = 0x01;
pub const DRM_VIRTGPU_EXECBUFFER: u32 = 0x02;
pub const DRM_VIRTGPU_GETPARAM: u32 = 0x03;
pub const DRM_VIRTGPU_WAIT: u32 = 0x08;
pub const DRM_VIRTGPU_GET_CAPS: u32 = 0x09;
pub const DRM_VIRTGPU_RESOURCE_CREATE_BLOB: u32 = 0x0a;
pub const DRM_VIRTGPU_CONTEXT_INIT: u32 = 0x0b;

pub const VIRTGPU_EXECBUF_FENCE_FD_IN: u32 = 0x01;
pub const VIRTGPU_EXECBUF_FENCE_FD_OUT: u32 = 0x02;
pub const VIRTGPU_EXECBUF_RING_IDX: u32 = 0x04;

pub const VIRTGPU_PARAM_3D_FEATURES: u64 = 1;
pub const VIRTGPU_PARAM_CAPSET_QUERY_FIX: u64 = 2;
pub const VIRTGPU_PARAM_RESOURCE_BLOB: u64 = 3;
pub const VIRTGPU_PARAM_HOST_VISIBLE: u64 = 4;
pub const VIRTGPU_PARAM_CROSS_DEVICE: u64 = 5;
pub const VIRTGPU_PARAM_CONTEXT_INIT: u64 = 6;
pub const VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS: u64 = 7;
pub const VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME: u64 = 8;

pub const VIRTGPU_DRM_CAPSET_DRM: u32 = 6;

pub const VIRTGPU_BLOB_MEM_GUEST: u32 = 0x0001;
pub const VIRTGPU_BLOB_MEM_HOST3D: u32 = 0x0002;
pub const VIRTGPU_BLOB_MEM_HOST3D_GUEST: u32 = 0x0003;

pub const VIRTGPU_BLOB_FLAG_USE_MAPPABLE: u32 = 0x0001;
pub const VIRTGPU_BLOB_FLAG_USE_SHAREABLE: u32 = 0x0002;
pub const VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE: u32 = 0x0004;

pub const VIRTGPU_CONTEXT_PARAM_CAPSET_ID: u64 = 0x0001;
pub const VIRTGPU_CONTEXT_PARAM_NUM_RINGS: u64 = 0x0002;
pub const VIRTGPU_CONTEXT_PARAM_POLL_RINGS_MASK: u64 = 0x0003;
pub const VIRTGPU_CONTEXT_PARAM_DEBUG_NAME: u64 = 0x0004;

pub const VIRTGPU_WAIT_NOWAIT: u32 = 1;

/// `struct drm_virtgpu_map`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuMap {
    pub offset: u64,
    pub handle: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmVirtgpuMap>() == 16);

/// `struct drm_virtgpu_execbuffer`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuExecbuffer {
    pub flags: u32,
    pub size: u32,
    pub command: u64,
    pub bo_handles: u64,
    pub num_bo_handles: u32,
    pub fence_fd: i32,
    pub ring_idx: u32,
    pub syncobj_stride: u32,
    pub num_in_syncobjs: u32,
    pub num_out_syncobjs: u32,
    pub in_syncobjs: u64,
    pub out_syncobjs: u64,
}
const _: () = assert!(size_of::<DrmVirtgpuExecbuffer>() == 64);

/// `struct drm_virtgpu_getparam`; `value` is a *pointer* to an `int` the
/// kernel writes.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuGetparam {
    pub param: u64,
    pub value: u64,
}
const _: () = assert!(size_of::<DrmVirtgpuGetparam>() == 16);

/// `struct drm_virtgpu_3d_wait`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpu3dWait {
    pub handle: u32,
    pub flags: u32,
}
const _: () = assert!(size_of::<DrmVirtgpu3dWait>() == 8);

/// `struct drm_virtgpu_get_caps`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuGetCaps {
    pub cap_set_id: u32,
    pub cap_set_ver: u32,
    pub addr: u64,
    pub size: u32,
    pub pad: u32,
}
const _: () = assert!(size_of::<DrmVirtgpuGetCaps>() == 24);

/// `struct drm_virtgpu_resource_create_blob` (the 48-byte layout; newer
/// kernels that append fields zero-extend shorter user structs).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuResourceCreateBlob {
    pub blob_mem: u32,
    pub blob_flags: u32,
    pub bo_handle: u32,
    pub res_handle: u32,
    pub size: u64,
    pub pad: u32,
    pub cmd_size: u32,
    pub cmd: u64,
    pub blob_id: u64,
}
const _: () = assert!(size_of::<DrmVirtgpuResourceCreateBlob>() == 48);

/// `struct drm_virtgpu_context_set_param`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuContextSetParam {
    pub param: u64,
    pub value: u64,
}
const _: () = assert!(size_of::<DrmVirtgpuContextSetParam>() == 16);

/// `struct drm_virtgpu_context_init`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct DrmVirtgpuContextInit {
    pub num_params: u32,
    pub pad: u32,
    pub ctx_set_params: u64,
}
const _: () = assert!(size_of::<DrmVirtgpuContextInit>() == 16);

pub const DRM_IOCTL_VIRTGPU_MAP: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_MAP, size_of::<DrmVirtgpuMap>());
pub const DRM_IOCTL_VIRTGPU_EXECBUFFER: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_EXECBUFFER, size_of::<DrmVirtgpuExecbuffer>());
pub const DRM_IOCTL_VIRTGPU_GETPARAM: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_GETPARAM, size_of::<DrmVirtgpuGetparam>());
pub const DRM_IOCTL_VIRTGPU_WAIT: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_WAIT, size_of::<DrmVirtgpu3dWait>());
pub const DRM_IOCTL_VIRTGPU_GET_CAPS: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_GET_CAPS, size_of::<DrmVirtgpuGetCaps>());
pub const DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: u32 = iowr(
    DRM_IOCTL_BASE,
    DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB,
    size_of::<DrmVirtgpuResourceCreateBlob>(),
);
pub const DRM_IOCTL_VIRTGPU_CONTEXT_INIT: u32 =
    iowr(DRM_IOCTL_BASE, DRM_COMMAND_BASE + DRM_VIRTGPU_CONTEXT_INIT, size_of::<DrmVirtgpuContextInit>());

/// Issue an ioctl, retrying on EINTR/EAGAIN like libdrm's `drmIoctl`.
///
/// # Safety
/// `arg` must be the argument struct the kernel expects for `request`, and
/// every pointer stored inside it must be valid for the duration of the call.
pub unsafe fn ioctl<T>(fd: RawFd, request: u32, arg: &mut T) -> io::Result<()> {
    loop {
        // SAFETY: forwarded to the caller's contract.
        let r = unsafe { libc::ioctl(fd, request as libc::Ioctl, arg as *mut T) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn ioctl_numbers_match_kernel_headers() {
        // Values as computed by the C macros on x86-64.
        assert_eq!(DRM_IOCTL_VERSION, 0xc040_6400);
        assert_eq!(DRM_IOCTL_GEM_CLOSE, 0x4008_6409);
        assert_eq!(DRM_IOCTL_VIRTGPU_MAP, 0xc010_6441);
        assert_eq!(DRM_IOCTL_VIRTGPU_EXECBUFFER, 0xc040_6442);
        assert_eq!(DRM_IOCTL_VIRTGPU_GETPARAM, 0xc010_6443);
        assert_eq!(DRM_IOCTL_VIRTGPU_WAIT, 0xc008_6448);
        assert_eq!(DRM_IOCTL_VIRTGPU_GET_CAPS, 0xc018_6449);
        assert_eq!(DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, 0xc030_644a);
        assert_eq!(DRM_IOCTL_VIRTGPU_CONTEXT_INIT, 0xc010_644b);
    }

    #[test]
    fn ioc_helpers() {
        assert_eq!(ioc_size(0xc010_6471), 16);
        assert_eq!(ioc_size(0x400c_645f), 12);
        assert!(ioc_is_out(0xc010_6471));
        assert!(ioc_is_out(0x8010_6463));
        assert!(!ioc_is_out(0x4008_646e));
    }

    #[test]
    fn struct_offsets() {
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, command), 8);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, bo_handles), 16);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, num_bo_handles), 24);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, fence_fd), 28);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, ring_idx), 32);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, syncobj_stride), 36);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, in_syncobjs), 48);
        assert_eq!(offset_of!(DrmVirtgpuExecbuffer, out_syncobjs), 56);
        assert_eq!(offset_of!(DrmVirtgpuResourceCreateBlob, size), 16);
        assert_eq!(offset_of!(DrmVirtgpuResourceCreateBlob, cmd_size), 28);
        assert_eq!(offset_of!(DrmVirtgpuResourceCreateBlob, cmd), 32);
        assert_eq!(offset_of!(DrmVirtgpuResourceCreateBlob, blob_id), 40);
        assert_eq!(offset_of!(DrmVirtgpuGetCaps, addr), 8);
        assert_eq!(offset_of!(DrmVirtgpuGetCaps, size), 16);
        assert_eq!(offset_of!(DrmVirtgpuContextInit, ctx_set_params), 8);
        assert_eq!(offset_of!(DrmVirtgpuMap, handle), 8);
        assert_eq!(offset_of!(DrmVersion, name_len), 16);
        assert_eq!(offset_of!(DrmVersion, name), 24);
    }
}
