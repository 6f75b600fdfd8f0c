// SPDX-License-Identifier: MIT
//! The C ABI of `libvirglrenderer.so.1` that QEMU 11.1's `hw-display-virtio-gpu-gl.so`
//! imports (29 functions), with virglrenderer 1.3's struct layouts.
//!
//! Every entry point validates its pointers, takes the renderer lock, and catches
//! panics so that an internal error is logged as `BUG` and returned as an error
//! instead of unwinding into C.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::renderer::{self, BlobArgs, Callbacks, Renderer};

/// `struct virgl_renderer_callbacks` (version 4, 72 bytes).
#[repr(C)]
pub struct VirglCallbacks {
    pub version: c_int,
    pub write_fence: Option<unsafe extern "C" fn(*mut c_void, u32)>,
    pub create_gl_context: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> *mut c_void>,
    pub destroy_gl_context: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    pub make_current: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut c_void) -> c_int>,
    pub get_drm_fd: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    pub write_context_fence: Option<unsafe extern "C" fn(*mut c_void, u32, u32, u64)>,
    pub get_server_fd: Option<unsafe extern "C" fn(*mut c_void, u32) -> c_int>,
    pub get_egl_display: Option<unsafe extern "C" fn(*mut c_void) -> *mut c_void>,
}

/// `struct virgl_renderer_resource_create_args`.
#[repr(C)]
pub struct VirglResourceCreateArgs {
    pub handle: u32,
    pub target: u32,
    pub format: u32,
    pub bind: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub array_size: u32,
    pub last_level: u32,
    pub nr_samples: u32,
    pub flags: u32,
}

/// `struct virgl_renderer_resource_create_blob_args`.
#[repr(C)]
pub struct VirglCreateBlobArgs {
    pub res_handle: u32,
    pub ctx_id: u32,
    pub blob_mem: u32,
    pub blob_flags: u32,
    pub blob_id: u64,
    pub size: u64,
    pub iovecs: *const libc::iovec,
    pub num_iovs: u32,
}

/// `struct virgl_renderer_resource_info`.
#[repr(C)]
pub struct VirglResourceInfo {
    pub handle: u32,
    pub virgl_format: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub flags: u32,
    pub tex_id: u32,
    pub stride: u32,
    pub drm_fourcc: c_int,
    pub fd: c_int,
}

/// `struct virgl_box`.
#[repr(C)]
pub struct VirglBox {
    pub x: u32,
    pub y: u32,
    pub z: u32,
    pub w: u32,
    pub h: u32,
    pub d: u32,
}

const _: () = assert!(std::mem::size_of::<VirglCallbacks>() == 72);
const _: () = assert!(std::mem::size_of::<VirglCreateBlobArgs>() == 48);
const _: () = assert!(std::mem::size_of::<VirglResourceInfo>() == 40);
const _: () = assert!(std::mem::size_of::<VirglResourceCreateArgs>() == 44);

const VIRGL_RENDERER_THREAD_SYNC: c_int = 2;
const VIRGL_RENDERER_ASYNC_FENCE_CB: c_int = 1 << 8;
const VIRGL_RENDERER_DRM: c_int = 1 << 10;

/// Runs `f`, turning a panic into a logged `BUG` and `err`.
fn guard<T>(what: &str, err: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            crate::log::bug(&format!("internal error in {what}"));
            err
        }
    }
}

fn with_renderer<T: Clone>(what: &str, err: T, f: impl FnOnce(&mut Renderer) -> T) -> T {
    guard(what, err.clone(), || {
        let mut g = renderer::state();
        match g.as_mut() {
            Some(r) => f(r),
            None => {
                crate::log::warn(&format!("{what} before virgl_renderer_init"));
                err
            }
        }
    })
}

/// Copies bytes at `offset` of a scatter list into `dst` (as much as the list has).
pub(crate) fn gather(iov: &[(usize, usize)], offset: u64, dst: &mut [u8]) {
    let mut skip = offset;
    let mut done = 0usize;
    for &(base, len) in iov {
        if done >= dst.len() {
            break;
        }
        let len64 = len as u64;
        if skip >= len64 {
            skip -= len64;
            continue;
        }
        let n = ((len64 - skip) as usize).min(dst.len() - done);
        // SAFETY: `(base, len)` is a guest-memory iovec the VMM handed us and keeps
        // mapped while the resource's backing is attached; `skip + n <= len`.
        let src = unsafe { std::slice::from_raw_parts((base as *const u8).add(skip as usize), n) };
        dst[done..done + n].copy_from_slice(src);
        done += n;
        skip = 0;
    }
}

fn iov_list(iov: *const libc::iovec, n: usize) -> Vec<(usize, usize)> {
    if iov.is_null() || n == 0 || n > 1 << 20 {
        return Vec::new();
    }
    // SAFETY: the VMM passes `n` valid iovecs at `iov`.
    let s = unsafe { std::slice::from_raw_parts(iov, n) };
    s.iter().map(|v| (v.iov_base as usize, v.iov_len)).collect()
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

extern "C" fn on_load() {
    let _ = catch_unwind(|| {
        let c = crate::config::get();
        crate::log::info(&format!(
            "virtio-intel-host {} loaded (profile {}, strict {}, hang bound {:?})",
            env!("CARGO_PKG_VERSION"),
            c.profile,
            c.strict,
            c.hang_timeout
        ));
    });
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_init(cookie: *mut c_void, flags: c_int, cb: *mut VirglCallbacks) -> c_int {
    guard("init", -libc::EINVAL, || {
        if cb.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: QEMU passes a pointer to its static callbacks struct.
        let cbs = unsafe { &*cb };
        if cbs.version < 3 || cbs.write_context_fence.is_none() {
            crate::log::warn("VMM callbacks lack write_context_fence (version < 3)");
            return -libc::EINVAL;
        }
        if flags & VIRGL_RENDERER_DRM != 0 && flags & VIRGL_RENDERER_ASYNC_FENCE_CB == 0 {
            crate::log::warn("DRM native contexts need VIRGL_RENDERER_ASYNC_FENCE_CB");
            return -libc::EINVAL;
        }
        let cfg = crate::config::get();
        let Some(profile) = crate::profile::by_name(&cfg.profile) else {
            crate::log::warn(&format!("unknown device profile {:?}", cfg.profile));
            return -libc::EINVAL;
        };
        renderer::set_callbacks(Some(Callbacks {
            cookie: cookie as usize,
            write_fence: cbs.write_fence,
            write_context_fence: cbs.write_context_fence,
        }));
        let dev = Arc::new(crate::swi915::Device::new(profile, cfg.hang_timeout));
        let mut g = renderer::state();
        if let Some(old) = g.as_mut() {
            old.destroy_all();
        }
        *g = Some(Renderer::new(dev));
        crate::log::info(&format!(
            "init: flags {flags:#x} (drm {}, async fence cb {}, thread sync {}), profile {} {:04x}",
            flags & VIRGL_RENDERER_DRM != 0,
            flags & VIRGL_RENDERER_ASYNC_FENCE_CB != 0,
            flags & VIRGL_RENDERER_THREAD_SYNC != 0,
            profile.name,
            profile.pci_device_id
        ));
        0
    })
}

#[no_mangle]
pub extern "C" fn virgl_renderer_poll() {}

#[no_mangle]
pub extern "C" fn virgl_renderer_force_ctx_0() {}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_get_cap_set(set: u32, max_ver: *mut u32, max_size: *mut u32) {
    let (v, s) = renderer::capset_info(set);
    // SAFETY: QEMU passes valid out-pointers (checked for NULL).
    unsafe {
        if !max_ver.is_null() {
            *max_ver = v;
        }
        if !max_size.is_null() {
            *max_size = s;
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_fill_caps(set: u32, version: u32, caps: *mut c_void) {
    guard("fill_caps", (), || {
        let (_, size) = renderer::capset_info(set);
        if size == 0 || caps.is_null() {
            return;
        }
        let cfg = crate::config::get();
        let Some(p) = crate::profile::by_name(&cfg.profile) else {
            return;
        };
        // SAFETY: the caller allocates the `max_size` bytes that `get_cap_set` announced
        // for this capset (QEMU: a zeroed buffer of exactly that size).
        let out = unsafe { std::slice::from_raw_parts_mut(caps as *mut u8, size as usize) };
        renderer::fill_caps(p, set, version, out);
    })
}

fn name_of(nlen: u32, name: *const c_char) -> String {
    if name.is_null() || nlen == 0 {
        return String::new();
    }
    // SAFETY: QEMU passes `nlen` bytes of debug name.
    let b = unsafe { std::slice::from_raw_parts(name as *const u8, nlen.min(64) as usize) };
    String::from_utf8_lossy(b).into_owned()
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_context_create_with_flags(
    ctx_id: u32,
    flags: u32,
    nlen: u32,
    name: *const c_char,
) -> c_int {
    let n = name_of(nlen, name);
    with_renderer("context_create_with_flags", -libc::EINVAL, |r| r.context_create(ctx_id, flags, &n))
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_context_create(ctx_id: u32, nlen: u32, name: *const c_char) -> c_int {
    let n = name_of(nlen, name);
    guard("context_create", -libc::EINVAL, || {
        crate::log::warn(&format!("classic virgl context {ctx_id} (\"{n}\") requested: not served by this host"));
        -libc::EINVAL
    })
}

#[no_mangle]
pub extern "C" fn virgl_renderer_context_destroy(ctx_id: u32) {
    with_renderer("context_destroy", (), |r| r.context_destroy(ctx_id))
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_submit_cmd(buffer: *mut c_void, ctx_id: c_int, ndw: c_int) -> c_int {
    with_renderer("submit_cmd", -libc::EINVAL, |r| {
        if ndw < 0 || (buffer.is_null() && ndw > 0) {
            return -libc::EINVAL;
        }
        let n = (ndw as usize).saturating_mul(4);
        let buf: &[u8] = if n == 0 {
            &[]
        } else {
            // SAFETY: QEMU passes a heap copy of `ndw` dwords.
            unsafe { std::slice::from_raw_parts(buffer as *const u8, n) }
        };
        r.submit(ctx_id as u32, buf)
    })
}

#[no_mangle]
pub extern "C" fn virgl_renderer_context_create_fence(ctx_id: u32, _flags: u32, ring_idx: u32, fence_id: u64) -> c_int {
    with_renderer("context_create_fence", -libc::EINVAL, |r| r.create_context_fence(ctx_id, ring_idx, fence_id))
}

#[no_mangle]
pub extern "C" fn virgl_renderer_create_fence(fence_id: c_int, _ctx_id: u32) -> c_int {
    guard("create_fence", libc::EINVAL, || {
        // There is no vrend timeline here: nothing is outstanding on ctx 0.
        renderer::report_fence(fence_id as u32);
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create_blob(args: *const VirglCreateBlobArgs) -> c_int {
    with_renderer("resource_create_blob", -libc::EINVAL, |r| {
        if args.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: QEMU passes a valid, initialised args struct.
        let a = unsafe { &*args };
        r.create_blob(&BlobArgs {
            res_handle: a.res_handle,
            ctx_id: a.ctx_id,
            blob_mem: a.blob_mem,
            blob_flags: a.blob_flags,
            blob_id: a.blob_id,
            size: a.size,
            iov: a.iovecs as usize,
            num_iovs: a.num_iovs,
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_create(
    args: *mut VirglResourceCreateArgs,
    iov: *mut libc::iovec,
    num_iovs: u32,
) -> c_int {
    with_renderer("resource_create", -libc::EINVAL, |r| {
        if args.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: QEMU passes a valid args struct.
        let a = unsafe { &*args };
        let ret = r.create_plain(a.handle, a.width, a.height);
        if ret == 0 && !iov.is_null() && num_iovs > 0 {
            if let Some(res) = r.resource_mut(a.handle) {
                res.iov = Some((iov as usize, num_iovs as i32));
            }
        }
        ret
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_attach_iov(
    res: c_int,
    iov: *mut libc::iovec,
    num_iovs: c_int,
) -> c_int {
    with_renderer("resource_attach_iov", -libc::EINVAL, |r| match r.resource_mut(res as u32) {
        Some(x) if x.iov.is_none() && num_iovs > 0 && !iov.is_null() => {
            x.iov = Some((iov as usize, num_iovs));
            0
        }
        _ => -libc::EINVAL,
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_detach_iov(res: c_int, iov: *mut *mut libc::iovec, num: *mut c_int) {
    let got = with_renderer("resource_detach_iov", None, |r| r.resource_mut(res as u32).and_then(|x| x.iov.take()));
    // SAFETY: QEMU passes valid out-pointers or NULL.
    unsafe {
        if !iov.is_null() {
            *iov = got.map(|(p, _)| p as *mut libc::iovec).unwrap_or(std::ptr::null_mut());
        }
        if !num.is_null() {
            *num = got.map(|(_, n)| n).unwrap_or(0);
        }
    }
}

#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unref(res: u32) {
    with_renderer("resource_unref", (), |r| r.unref(res))
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info(res: c_int, info: *mut VirglResourceInfo) -> c_int {
    with_renderer("resource_get_info", libc::EINVAL, |r| {
        if info.is_null() {
            return libc::EINVAL;
        }
        let Some(fd) = r.info_fd(res as u32) else {
            return libc::EINVAL;
        };
        // SAFETY: QEMU passes a valid out-struct.
        unsafe {
            std::ptr::write_bytes(info, 0, 1);
            (*info).handle = res as u32;
            (*info).fd = fd;
        }
        0
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_info_ext(res: c_int, _info: *mut c_void) -> c_int {
    guard("resource_get_info_ext", libc::EINVAL, || {
        // No GL textures here: scanout of classic resources is not supported.
        crate::log::info(&format!("resource_get_info_ext({res}): no GL texture (scanout unsupported)"));
        libc::EINVAL
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_map_fixed(res: u32, addr: *mut c_void) -> c_int {
    with_renderer("resource_map_fixed", -libc::EINVAL, |r| {
        if addr.is_null() || !(addr as usize).is_multiple_of(4096) {
            return -libc::EINVAL;
        }
        // SAFETY: QEMU passes the blob's window inside its own hostmem reservation.
        unsafe { r.map_fixed(res, addr) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_map(res: u32, map: *mut *mut c_void, size: *mut u64) -> c_int {
    with_renderer("resource_map", -libc::EINVAL, |r| {
        if map.is_null() || size.is_null() {
            return -libc::EINVAL;
        }
        match r.map(res) {
            Ok((p, len)) => {
                // SAFETY: valid out-pointers (checked).
                unsafe {
                    *map = p as *mut c_void;
                    *size = len;
                }
                0
            }
            Err(e) => e,
        }
    })
}

#[no_mangle]
pub extern "C" fn virgl_renderer_resource_unmap(res: u32) -> c_int {
    with_renderer("resource_unmap", -libc::EINVAL, |r| r.unmap(res))
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_resource_get_map_info(res: u32, map_info: *mut u32) -> c_int {
    with_renderer("resource_get_map_info", -libc::EINVAL, |r| {
        let Some(x) = r.resource(res) else {
            return -libc::EINVAL;
        };
        if map_info.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: valid out-pointer (checked).
        unsafe { *map_info = x.map_info };
        0
    })
}

#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_attach_resource(ctx_id: c_int, res: c_int) {
    with_renderer("ctx_attach_resource", (), |r| r.attach(ctx_id as u32, res as u32))
}

#[no_mangle]
pub extern "C" fn virgl_renderer_ctx_detach_resource(ctx_id: c_int, res: c_int) {
    with_renderer("ctx_detach_resource", (), |r| r.detach(ctx_id as u32, res as u32))
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_transfer_write_iov(
    res: u32,
    _ctx_id: u32,
    _level: c_int,
    stride: u32,
    _layer_stride: u32,
    bx: *mut VirglBox,
    offset: u64,
    iov: *mut libc::iovec,
    iovec_cnt: u32,
) -> c_int {
    with_renderer("transfer_write_iov", -libc::EINVAL, |r| {
        if bx.is_null() {
            return -libc::EINVAL;
        }
        // SAFETY: QEMU passes a valid box.
        let b = unsafe { &*bx };
        let list = if iov.is_null() || iovec_cnt == 0 {
            match r.resource(res).and_then(|x| x.iov) {
                Some((p, n)) => iov_list(p as *const libc::iovec, n.max(0) as usize),
                None => return -libc::EINVAL,
            }
        } else {
            iov_list(iov, iovec_cnt as usize)
        };
        r.transfer_write(res, (b.x, b.y, b.w, b.h), stride, offset, &list)
    })
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_transfer_read_iov(
    _res: u32,
    _ctx_id: u32,
    _level: u32,
    _stride: u32,
    _layer_stride: u32,
    _bx: *mut VirglBox,
    _offset: u64,
    _iov: *mut libc::iovec,
    _iovec_cnt: c_int,
) -> c_int {
    guard("transfer_read_iov", -libc::EINVAL, || -libc::EINVAL)
}

#[no_mangle]
pub unsafe extern "C" fn virgl_renderer_get_cursor_data(_res: u32, w: *mut u32, h: *mut u32) -> *mut c_void {
    // SAFETY: valid out-pointers or NULL.
    unsafe {
        if !w.is_null() {
            *w = 0;
        }
        if !h.is_null() {
            *h = 0;
        }
    }
    std::ptr::null_mut()
}

#[no_mangle]
pub extern "C" fn virgl_renderer_reset() {
    with_renderer("reset", (), |r| r.destroy_all())
}

#[no_mangle]
pub extern "C" fn virgl_renderer_cleanup(_cookie: *mut c_void) {
    guard("cleanup", (), || {
        let mut g = renderer::state();
        if let Some(r) = g.as_mut() {
            r.destroy_all();
        }
        *g = None;
        renderer::set_callbacks(None);
    })
}
