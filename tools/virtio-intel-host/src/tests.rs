// SPDX-License-Identifier: MIT
//! End-to-end tests through the C ABI: a fake VMM drives the library the way QEMU
//! 11.1 does (see `qemu-virglrenderer-abi.md`) and a fake guest speaks the ccmd
//! protocol through the mapped response page.

use std::ffi::c_void;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ffi::*;
use crate::proto::{rd32, wr32, wr64};

static SERIAL: Mutex<()> = Mutex::new(());
static FENCES: Mutex<Vec<(u32, u32, u64)>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_ctx_fence(_c: *mut c_void, ctx: u32, ring: u32, id: u64) {
    if let Ok(mut f) = FENCES.lock() {
        f.push((ctx, ring, id));
    }
}

unsafe extern "C" fn on_fence(_c: *mut c_void, id: u32) {
    if let Ok(mut f) = FENCES.lock() {
        f.push((0, u32::MAX, u64::from(id)));
    }
}

static mut CBS: VirglCallbacks = VirglCallbacks {
    version: 4,
    write_fence: Some(on_fence),
    create_gl_context: None,
    destroy_gl_context: None,
    make_current: None,
    get_drm_fd: None,
    write_context_fence: Some(on_ctx_fence),
    get_server_fd: None,
    get_egl_display: None,
};

fn fenced(ctx: u32, ring: u32, id: u64) -> bool {
    FENCES.lock().map(|f| f.contains(&(ctx, ring, id))).unwrap_or(false)
}

fn wait_fence(ctx: u32, ring: u32, id: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if fenced(ctx, ring, id) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

const SHMEM_SIZE: u64 = 16384;

/// A fake guest with one native context.
struct Guest {
    ctx: u32,
    shm: *mut u8,
    seqno: u32,
    next_res: u32,
    next_blob: u32,
    next_fence: u64,
}

impl Guest {
    fn new(ctx: u32) -> Guest {
        // SAFETY: test-only calls into our own library with valid arguments.
        unsafe {
            assert_eq!(virgl_renderer_init(std::ptr::null_mut(), 0x502, std::ptr::addr_of_mut!(CBS)), 0);
            assert_eq!(virgl_renderer_context_create_with_flags(ctx, 6, 4, c"test".as_ptr()), 0);
            let a = VirglCreateBlobArgs {
                res_handle: 100 + ctx,
                ctx_id: ctx,
                blob_mem: 2,
                blob_flags: 1,
                blob_id: 0,
                size: SHMEM_SIZE,
                iovecs: std::ptr::null(),
                num_iovs: 0,
            };
            assert_eq!(virgl_renderer_resource_create_blob(&a), 0);
            let mut p: *mut c_void = std::ptr::null_mut();
            let mut sz = 0u64;
            assert_eq!(virgl_renderer_resource_map(100 + ctx, &mut p, &mut sz), 0);
            assert_eq!(sz, SHMEM_SIZE);
            let mut mi = 0u32;
            virgl_renderer_resource_get_map_info(100 + ctx, &mut mi);
            assert_eq!(mi, 1);
            virgl_renderer_ctx_attach_resource(ctx as i32, (100 + ctx) as i32);
            Guest { ctx, shm: p.cast(), seqno: 0, next_res: 1000 * ctx, next_blob: 1, next_fence: 1 }
        }
    }

    fn shm_u32(&self, off: usize) -> u32 {
        // SAFETY: `off + 4 <= SHMEM_SIZE` in every caller.
        unsafe { std::ptr::read_volatile(self.shm.add(off) as *const u32) }
    }
    fn shm_u64(&self, off: usize) -> u64 {
        u64::from(self.shm_u32(off)) | (u64::from(self.shm_u32(off + 4)) << 32)
    }
    fn set_slot(&self, rsp_off: usize, cap: u32) {
        // SAFETY: in bounds of the response area.
        unsafe {
            std::ptr::write_bytes(self.shm.add(16 + rsp_off), 0, cap.max(4) as usize);
            std::ptr::write_volatile(self.shm.add(16 + rsp_off) as *mut u32, cap);
        }
    }
    fn rsp(&self, rsp_off: usize, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                // SAFETY: in bounds of the response area.
                unsafe { std::ptr::read_volatile(self.shm.add(16 + rsp_off + i)) }
            })
            .collect()
    }

    /// Encodes one ccmd with the next seqno.
    fn ccmd(&mut self, cmd: u32, body: &[u8], rsp_off: u32) -> Vec<u8> {
        self.seqno += 1;
        let mut v = vec![0u8; 16];
        wr32(&mut v, 0, cmd);
        wr32(&mut v, 4, (16 + body.len()) as u32);
        wr32(&mut v, 8, self.seqno);
        wr32(&mut v, 12, rsp_off);
        v.extend_from_slice(body);
        v
    }

    fn submit(&self, buf: &[u8]) -> i32 {
        let mut b = buf.to_vec();
        // SAFETY: a valid buffer of `len / 4` dwords.
        unsafe { virgl_renderer_submit_cmd(b.as_mut_ptr().cast(), self.ctx as i32, (b.len() / 4) as i32) }
    }

    /// A synchronous ccmd: slot at `rsp_off` with capacity `cap`; returns the response.
    fn call(&mut self, cmd: u32, body: &[u8], cap: u32) -> Option<Vec<u8>> {
        let rsp_off = 256;
        self.set_slot(rsp_off, cap);
        let c = self.ccmd(cmd, body, rsp_off as u32);
        self.submit(&c);
        (self.shm_u32(0) == self.seqno).then(|| self.rsp(rsp_off, cap as usize))
    }

    fn getparam(&mut self, p: u32) -> (i32, i32) {
        let mut b = vec![0u8; 8];
        wr32(&mut b, 0, p);
        let r = self.call(2, &b, 16).expect("GETPARAM answered");
        (rd32(&r, 8) as i32, rd32(&r, 12) as i32)
    }

    /// GEM_CREATE + CREATE_BLOB; returns (res_id, host mapping).
    fn bo(&mut self, size: u64) -> (u32, *mut u8) {
        let blob = self.next_blob;
        self.next_blob += 1;
        self.next_res += 1;
        let res = self.next_res;
        let mut b = vec![0u8; 16];
        wr64(&mut b, 0, size);
        wr32(&mut b, 8, blob);
        self.set_slot(0, 0);
        let c = self.ccmd(4, &b, 0);
        assert_eq!(self.submit(&c), 0);
        let a = VirglCreateBlobArgs {
            res_handle: res,
            ctx_id: self.ctx,
            blob_mem: 2,
            blob_flags: 3,
            blob_id: u64::from(blob),
            size,
            iovecs: std::ptr::null(),
            num_iovs: 0,
        };
        let mut p: *mut c_void = std::ptr::null_mut();
        let mut sz = 0u64;
        // SAFETY: test-only calls with valid arguments.
        unsafe {
            assert_eq!(virgl_renderer_resource_create_blob(&a), 0);
            virgl_renderer_ctx_attach_resource(self.ctx as i32, res as i32);
            assert_eq!(virgl_renderer_resource_map(res, &mut p, &mut sz), 0);
        }
        assert_eq!(sz, size);
        (res, p.cast())
    }

    /// One EXECBUFFER2 ccmd (softpinned objects) in its own submit, fenced on its ring.
    fn exec(&mut self, ctx_id: u64, flags: u64, objs: &[(u32, u64, bool)]) -> (i32, u64) {
        let mut b = vec![0u8; 32 + 56 * objs.len()];
        wr64(&mut b, 0, flags);
        wr64(&mut b, 8, ctx_id);
        wr32(&mut b, 16, objs.len() as u32);
        for (i, (res, va, write)) in objs.iter().enumerate() {
            let o = 32 + 56 * i;
            wr32(&mut b, o, *res);
            wr64(&mut b, o + 24, *va);
            wr64(&mut b, o + 32, 0x18 | if *write { 4 } else { 0 });
        }
        let rsp_off = 512;
        self.set_slot(rsp_off, 8);
        let c = self.ccmd(7, &b, rsp_off as u32);
        self.submit(&c);
        let ring = 1 + (flags & 0x3f) as u32;
        let id = self.next_fence;
        self.next_fence += 1;
        assert_eq!(virgl_renderer_context_create_fence(self.ctx, 1, ring, id), 0);
        (rd32(&self.rsp(rsp_off, 8), 4) as i32, id)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        virgl_renderer_context_destroy(self.ctx);
        virgl_renderer_cleanup(std::ptr::null_mut());
    }
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    match SERIAL.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn write_dwords(p: *mut u8, dws: &[u32]) {
    for (i, d) in dws.iter().enumerate() {
        // SAFETY: `p` maps a BO larger than the batch.
        unsafe { std::ptr::write_volatile((p as *mut u32).add(i), *d) };
    }
}

#[test]
fn capset_describes_a_tgl_gt2_i915_context() {
    let _s = serial();
    let (mut v, mut s) = (9u32, 0u32);
    // SAFETY: valid out-pointers and a buffer of the announced size.
    unsafe {
        virgl_renderer_get_cap_set(6, &mut v, &mut s);
        assert_eq!((v, s), (0, 160));
        virgl_renderer_get_cap_set(7, &mut v, &mut s);
        assert_eq!((v, s), (0, 0), "unknown capset");
        let mut caps = vec![0xffu8; 160];
        virgl_renderer_fill_caps(6, 0, caps.as_mut_ptr().cast());
        assert_eq!(rd32(&caps, 0), 1);
        assert_eq!(rd32(&caps, 16), 3);
        assert_eq!(rd32(&caps, 44), 0x9a49);
        assert_eq!(caps[48..].iter().filter(|b| **b != 0).count(), 0);
    }
}

/// Capsets 1 and 2 are announced with virglrenderer 1.3.0's versions and sizes, before
/// init as QEMU asks at realize, and filled as the real library without vrend does: all
/// zeros, whatever the buffer held and whichever version is asked for.
#[test]
fn virgl_capsets_match_the_real_library_and_advertise_nothing() {
    let _s = serial();
    for (set, info) in [(1u32, (1u32, 308u32)), (2, (2, 1408))] {
        let (mut v, mut s) = (9u32, 9u32);
        // SAFETY: valid out-pointers and a buffer of the announced size.
        unsafe {
            virgl_renderer_get_cap_set(set, &mut v, &mut s);
            assert_eq!((v, s), info, "capset {set}");
            for version in 0..=v + 1 {
                let mut caps = vec![0xa5u8; s as usize];
                virgl_renderer_fill_caps(set, version, caps.as_mut_ptr().cast());
                assert!(caps.iter().all(|b| *b == 0), "capset {set} v{version} is not all zeros");
            }
        }
    }
    // A NULL buffer is ignored.
    // SAFETY: fill_caps checks the pointer.
    unsafe { virgl_renderer_fill_caps(2, 2, std::ptr::null_mut()) };
}

/// Capset ids QEMU lists: VIRGL always, VIRGL2 when its max_ver is non-zero, DRM when
/// its max_size is non-zero (ABI record §1). The guest then sees mask 0x46, as with
/// the real library.
#[test]
fn qemu_would_list_the_same_capsets_as_with_virglrenderer() {
    let _s = serial();
    let mut mask = 1u32 << 1;
    let (mut v, mut s) = (0u32, 0u32);
    // SAFETY: valid out-pointers.
    unsafe {
        virgl_renderer_get_cap_set(2, &mut v, &mut s);
        if v != 0 {
            mask |= 1 << 2;
        }
        virgl_renderer_get_cap_set(6, &mut v, &mut s);
        if s != 0 {
            mask |= 1 << 6;
        }
    }
    assert_eq!(mask, 0x46);
}

/// Without vrend, classic virgl contexts are refused, as by the real library.
#[test]
fn virgl_contexts_are_refused() {
    let _s = serial();
    let _g = Guest::new(2);
    let name = b"virgl";
    for capset in [1u32, 2] {
        // SAFETY: a valid name of `nlen` bytes.
        let r = unsafe { virgl_renderer_context_create_with_flags(40 + capset, capset, 5, name.as_ptr().cast()) };
        assert_ne!(r, 0, "capset {capset} context created");
    }
    // SAFETY: as above.
    assert_ne!(unsafe { virgl_renderer_context_create(43, 5, name.as_ptr().cast()) }, 0);
}

#[test]
fn getparam_and_query_round_trip() {
    let _s = serial();
    let mut g = Guest::new(2);
    assert_eq!(g.shm_u32(4), 16, "rsp_mem_offset");
    assert_eq!(g.getparam(4), (0, 0x9a49));
    assert_eq!(g.getparam(40), (0, 4), "MMAP_GTT_VERSION clamped to 4");
    assert_eq!(g.getparam(9999), (libc::EINVAL, -1));
    // QUERY topology: length 0 asks for the size, then the data.
    let mut q = vec![0u8; 16];
    wr32(&mut q, 0, 1);
    let r = g.call(3, &q, 16).expect("answered");
    let len = rd32(&r, 12);
    assert_eq!((rd32(&r, 8), len), (0, 30));
    wr32(&mut q, 4, len);
    let r = g.call(3, &q, 16 + len).expect("answered");
    assert_eq!(rd32(&r, 12), 30);
    assert_eq!(r[16 + 16], 1, "slice mask");
    // Too small a length: per-item -EINVAL.
    wr32(&mut q, 4, 8);
    let r = g.call(3, &q, 24).expect("answered");
    assert_eq!(rd32(&r, 12) as i32, -libc::EINVAL);
    // A slot capacity shorter than the response truncates it and says so.
    let r = g
        .call(
            2,
            &{
                let mut b = vec![0u8; 8];
                wr32(&mut b, 0, 4);
                b
            },
            12,
        )
        .expect("answered");
    assert_eq!(rd32(&r, 0), 12);
}

#[test]
fn rejected_ccmd_publishes_nothing_and_drops_the_rest() {
    let _s = serial();
    let mut g = Guest::new(3);
    let before = crate::log::violation_count();
    g.set_slot(64, 32);
    g.set_slot(128, 16);
    let mut bad = vec![0u8; 8 + 16];
    wr32(&mut bad, 0, 0xc010_6400); // not on the allow-list
    let mut c = g.ccmd(1, &bad, 64);
    let seq_bad = g.seqno;
    let mut gp = vec![0u8; 8];
    wr32(&mut gp, 0, 4);
    c.extend(g.ccmd(2, &gp, 128));
    assert_eq!(g.submit(&c), -libc::EINVAL);
    assert!(g.shm_u32(0) < seq_bad, "seqno not published");
    assert_eq!(rd32(&g.rsp(128, 16), 0), 16, "later ccmd dropped: slot untouched");
    assert!(crate::log::violation_count() > before);
    // The connection still works, and the reserved response of the rejected ccmd is
    // written at the next response-less ccmd's slot (the real host's quirk).
    g.set_slot(192, 8);
    let mut mm = vec![0u8; 8];
    wr32(&mut mm, 0, 4242);
    let c = g.ccmd(8, &mm, 192);
    assert_eq!(g.submit(&c), 0);
    assert_eq!(g.shm_u32(0), g.seqno);
    assert_eq!(rd32(&g.rsp(192, 8), 0), 8, "stale response landed");
    assert_eq!(g.getparam(4), (0, 0x9a49));
}

#[test]
fn framing_errors_are_rejected() {
    let _s = serial();
    let mut g = Guest::new(4);
    let mut c = g.ccmd(2, &[0u8; 8], 256);
    wr32(&mut c, 4, 18); // not a multiple of 4
    assert_eq!(g.submit(&c), -libc::EINVAL);
    let mut c = g.ccmd(12, &[0u8; 8], 0);
    assert_eq!(g.submit(&c), -libc::EINVAL);
    wr32(&mut c, 0, 2);
    wr32(&mut c, 12, 2); // misaligned rsp_off
    assert_eq!(g.submit(&c), -libc::EINVAL);
    let c = g.ccmd(2, &[0u8; 8], 16384); // response does not fit
    assert_eq!(g.submit(&c), -libc::ENOMEM);
}

#[test]
fn execbuffer_runs_the_batch_and_signals_the_ring_fence() {
    let _s = serial();
    let mut g = Guest::new(5);
    let (batch, bp) = g.bo(4096);
    let (target, tp) = g.bo(8192);
    let t: u32 = 0x20_0000;
    write_dwords(
        bp,
        &[(0x20 << 23) | 2, t + 0x10, 0, 0xc0ffee, (0x20 << 23) | (1 << 21) | 3, t + 0x18, 0, 1, 2, 0x0a << 23],
    );
    let (ret, id) = g.exec(0, 1 << 18, &[(batch, 0x10_0000, false), (target, u64::from(t), true)]);
    assert_eq!(ret, 0);
    assert!(wait_fence(5, 1, id), "ring-1 fence reported");
    // SAFETY: `tp` maps 8192 bytes.
    let got = unsafe {
        [
            std::ptr::read_volatile((tp as *const u32).add(4)),
            std::ptr::read_volatile((tp as *const u32).add(6)),
            std::ptr::read_volatile((tp as *const u32).add(7)),
        ]
    };
    assert_eq!(got, [0xc0ffee, 1, 2]);
    // GEM_BUSY is idle afterwards; an unknown res_id is EINVAL.
    let mut b = vec![0u8; 8];
    wr32(&mut b, 0, target);
    let r = g.call(9, &b, 16).expect("answered");
    assert_eq!((rd32(&r, 8), rd32(&r, 12)), (0, 0));
    wr32(&mut b, 0, 77777);
    assert_eq!(rd32(&g.call(9, &b, 16).expect("answered"), 8), libc::EINVAL as u32);
    // An exec naming an unknown res_id fails with EINVAL in its response.
    let (ret, id2) = g.exec(0, 0, &[(31337, 0x10_0000, false)]);
    assert_eq!(ret, libc::EINVAL);
    assert!(wait_fence(5, 1, id2));
    // Ring 0 fences retire at once, nested in the call.
    assert_eq!(virgl_renderer_context_create_fence(5, 1, 0, 99), 0);
    assert!(fenced(5, 0, 99));
}

#[test]
fn hang_bans_the_context_in_the_shmem_mask() {
    let _s = serial();
    let mut g = Guest::new(6);
    let create = |g: &mut Guest| {
        let mut legacy = vec![0u8; 8 + 8];
        wr32(&mut legacy, 0, 0xc008_646d);
        let r = g.call(1, &legacy, 16).expect("answered");
        assert_eq!(rd32(&r, 4), 0);
        rd32(&r, 8)
    };
    let destroy = |g: &mut Guest, id: u32| {
        let mut d = vec![0u8; 8 + 8];
        wr32(&mut d, 0, 0x4008_646e);
        wr32(&mut d, 8, id);
        let r = g.call(1, &d, 8).expect("answered");
        assert_eq!(rd32(&r, 4), 0);
    };
    // Ids are lowest-free as in i915: after 10,000 contexts have come and gone, a new
    // one still gets id 1, which banned_ctx_mask (ids below 64) can report.
    for _ in 0..10_000 {
        let id = create(&mut g);
        assert_eq!(id, 1);
        destroy(&mut g, id);
    }
    let gem_ctx = create(&mut g);
    assert_eq!(gem_ctx, 1);
    // Not recoverable: i915 bans such a context at its first hang.
    let mut sp = vec![0u8; 8 + 24];
    wr32(&mut sp, 0, 0xc018_6475);
    wr32(&mut sp, 8, gem_ctx);
    wr32(&mut sp, 16, 8);
    let r = g.call(1, &sp, 32).expect("answered");
    assert_eq!(rd32(&r, 4), 0);
    let (batch, bp) = g.bo(4096);
    write_dwords(bp, &[(0x31 << 23) | (1 << 8) | 1, 0x10_0000, 0]);
    let (ret, id) = g.exec(u64::from(gem_ctx), 0, &[(batch, 0x10_0000, false)]);
    assert_eq!(ret, 0);
    assert!(wait_fence(6, 1, id), "hung batch's fence still signals");
    let (ret, _) = g.exec(u64::from(gem_ctx), 0, &[(batch, 0x10_0000, false)]);
    assert_eq!(ret, libc::EIO);
    assert_eq!(g.shm_u64(8) & (1 << gem_ctx), 1 << gem_ctx, "banned_ctx_mask");
    let mut rs = vec![0u8; 8 + 24];
    wr32(&mut rs, 0, 0xc018_6472);
    wr32(&mut rs, 8, gem_ctx);
    let r = g.call(1, &rs, 32).expect("answered");
    assert_eq!(rd32(&r, 4), 0);
    assert!(rd32(&r, 8 + 12) >= 1, "batch_active");
    destroy(&mut g, gem_ctx);
    assert_eq!(g.shm_u64(8) & (1 << gem_ctx), 0, "destroy clears the bit");
}

#[test]
fn blob_size_must_match_the_gem_create() {
    let _s = serial();
    let mut g = Guest::new(7);
    let mut b = vec![0u8; 16];
    wr64(&mut b, 0, 8192);
    wr32(&mut b, 8, 55);
    g.set_slot(0, 0);
    let c = g.ccmd(4, &b, 0);
    assert_eq!(g.submit(&c), 0);
    let a = VirglCreateBlobArgs {
        res_handle: 4444,
        ctx_id: 7,
        blob_mem: 2,
        blob_flags: 3,
        blob_id: 55,
        size: 4096,
        iovecs: std::ptr::null(),
        num_iovs: 0,
    };
    // SAFETY: valid args.
    unsafe {
        assert_eq!(virgl_renderer_resource_create_blob(&a), -libc::EINVAL);
        let a2 = VirglCreateBlobArgs { size: 8192, ..a };
        assert_eq!(virgl_renderer_resource_create_blob(&a2), -libc::ENOENT, "pending object consumed");
    }
}

#[test]
fn priority_and_param_filters_match_the_host() {
    let _s = serial();
    let mut g = Guest::new(8);
    let mut p = vec![0u8; 8 + 24];
    wr32(&mut p, 0, 0xc018_6475);
    wr64(&mut p, 16, 6);
    wr64(&mut p, 24, 1);
    assert_eq!(rd32(&g.call(1, &p, 32).expect("answered"), 4), libc::EPERM as u32);
    wr64(&mut p, 24, 0);
    assert_eq!(rd32(&g.call(1, &p, 32).expect("answered"), 4), 0);
    wr64(&mut p, 16, 3); // GTT_SIZE cannot be set
    assert_eq!(rd32(&g.call(1, &p, 32).expect("answered"), 4), libc::EINVAL as u32);
    wr32(&mut p, 0, 0xc018_6474);
    let r = g.call(1, &p, 32).expect("answered");
    assert_eq!(crate::proto::rd64(&r, 8 + 16), 1 << 48);
    wr64(&mut p, 16, 4); // NO_ERROR_CAPTURE: not allowed through IOCTL_SIMPLE
    assert!(g.call(1, &p, 32).is_none(), "protocol error");
}

#[test]
fn guest_writes_to_the_shmem_header_are_violations() {
    let _s = serial();
    let mut g = Guest::new(9);
    let before = crate::log::violation_count();
    // SAFETY: offset 4 of the mapped shmem.
    unsafe { std::ptr::write_volatile(g.shm.add(4) as *mut u32, 4096) };
    assert_eq!(g.getparam(4), (0, 0x9a49));
    assert!(crate::log::violation_count() > before);
    assert_eq!(g.shm_u32(4), 16, "restored");
}
