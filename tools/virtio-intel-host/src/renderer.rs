// SPDX-License-Identifier: MIT
//! The renderer: virtio-gpu resources and contexts as virglrenderer keeps them, the
//! DRM capset, and the fence plumbing back into the VMM.
//!
//! All VMM calls arrive on one thread (QEMU's main loop) and take the [`STATE`] lock.
//! Ring fences are reported from per-ring sync threads (one per context and ring, as
//! the real host's `intel-sync` threads) through `write_context_fence`, never by a
//! polling timer; the VMM's handler only queues the fence, so calling it from any
//! thread, or nested inside `context_create_fence`, is safe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock};

use crate::ccmd::{CtxObject, NativeCtx, ResourceView, MAP_CACHE_CACHED};
use crate::fence::Fence;
use crate::mem::SharedMem;
use crate::proto::{wr32, SHMEM_HDR_SIZE, SHMEM_RSP_MEM_OFFSET};
use crate::swi915::{self, Object};

/// Capset id of classic virgl with the v1 caps layout (`VIRTIO_GPU_CAPSET_VIRGL`).
pub(crate) const CAPSET_VIRGL: u32 = 1;
/// Capset id of classic virgl with the v2 caps layout (`VIRTIO_GPU_CAPSET_VIRGL2`).
pub(crate) const CAPSET_VIRGL2: u32 = 2;
/// Capset id of the DRM native context.
pub(crate) const CAPSET_DRM: u32 = 6;
/// `sizeof(struct virgl_renderer_capset_drm)` of a host built without amdgpu.
pub(crate) const CAPSET_DRM_SIZE: u32 = 160;
/// virglrenderer 1.3.0's answer for capset 1: version 1, `sizeof(struct virgl_caps_v1)`
/// (ABI record, §3.B trace).
pub(crate) const CAPSET_VIRGL_INFO: (u32, u32) = (1, 308);
/// virglrenderer 1.3.0's answer for capset 2: version 2, `sizeof(struct virgl_caps_v2)`
/// (ABI record, §3.A and §3.B traces).
pub(crate) const CAPSET_VIRGL2_INFO: (u32, u32) = (2, 1408);
/// `VIRTGPU_DRM_CONTEXT_I915`.
pub(crate) const CONTEXT_TYPE_I915: u32 = 3;

pub(crate) const BLOB_MEM_GUEST: u32 = 1;
pub(crate) const BLOB_MEM_HOST3D: u32 = 2;
pub(crate) const BLOB_FLAG_MAPPABLE: u32 = 1;

/// The VMM's fence callbacks.
#[derive(Clone, Copy)]
pub(crate) struct Callbacks {
    pub(crate) cookie: usize,
    pub(crate) write_fence: Option<unsafe extern "C" fn(*mut libc::c_void, u32)>,
    pub(crate) write_context_fence: Option<unsafe extern "C" fn(*mut libc::c_void, u32, u32, u64)>,
}

static CALLBACKS: RwLock<Option<Callbacks>> = RwLock::new(None);

pub(crate) fn set_callbacks(cb: Option<Callbacks>) {
    match CALLBACKS.write() {
        Ok(mut g) => *g = cb,
        Err(p) => *p.into_inner() = cb,
    }
}

fn callbacks() -> Option<Callbacks> {
    match CALLBACKS.read() {
        Ok(g) => *g,
        Err(p) => *p.into_inner(),
    }
}

/// Reports a context fence to the VMM.
pub(crate) fn report_context_fence(ctx: u32, ring: u32, fence_id: u64) {
    if let Some(cb) = callbacks() {
        if let Some(f) = cb.write_context_fence {
            // SAFETY: the VMM registered this callback with this cookie; its handler is
            // safe to call from any thread (it only queues the fence).
            unsafe { f(cb.cookie as *mut libc::c_void, ctx, ring, fence_id) };
        }
    }
}

/// Reports a ctx-0 fence to the VMM.
pub(crate) fn report_fence(fence_id: u32) {
    if let Some(cb) = callbacks() {
        if let Some(f) = cb.write_fence {
            // SAFETY: as for `report_context_fence`.
            unsafe { f(cb.cookie as *mut libc::c_void, fence_id) };
        }
    }
}

/// What backs a resource.
/// GEM blobs created and mapped so far (for fault injection).
static GEM_BLOB_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static GEM_MAP_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a map of GEM blob `res`; whether fault injection refuses it.
fn map_refused(res: u32) -> bool {
    let k = GEM_MAP_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let refused = crate::config::get().fail_map == Some(k);
    if refused {
        crate::log::info(&format!("fault injection: map #{k} of GEM blob {res} refused"));
    }
    refused
}

pub(crate) enum Backing {
    /// The response page of a native context.
    Shmem(Arc<SharedMem>),
    /// A GEM object (exported as a dma-buf when SHAREABLE).
    Gem(Arc<Object>),
    /// Guest pages (BLOB_MEM_GUEST or classic resources with attached backing).
    Guest,
    /// A classic 2D resource (console): pixels kept host-side.
    Plain2D { width: u32, height: u32, data: Vec<u8> },
}

/// A virtio-gpu resource.
pub(crate) struct Resource {
    pub(crate) backing: Backing,
    pub(crate) owner: u32,
    pub(crate) map_info: u32,
    pub(crate) mappable: bool,
    /// Mapped by `resource_map` (pointer, length); never set by `map_fixed`.
    pub(crate) extra_map: Option<(usize, u64)>,
    /// Guest pages attached by the VMM (iovec array, count); owned by the VMM.
    pub(crate) iov: Option<(usize, i32)>,
}

impl Resource {
    fn mem(&self) -> Option<&SharedMem> {
        match &self.backing {
            Backing::Shmem(m) => Some(m),
            Backing::Gem(o) => Some(&o.mem),
            _ => None,
        }
    }
}

struct Resources<'a>(&'a mut HashMap<u32, Resource>);

impl ResourceView for Resources<'_> {
    fn exists(&self, res_id: u32) -> bool {
        self.0.contains_key(&res_id)
    }
    fn mapped(&self, res_id: u32) -> bool {
        self.0.get(&res_id).is_some_and(|r| r.extra_map.is_some())
    }
    fn set_map_info(&mut self, res_id: u32, map_info: u32) {
        if let Some(r) = self.0.get_mut(&res_id) {
            r.map_info = map_info;
        }
    }
}

/// A ring's sync thread: reports fences in FIFO order once their host fence signals.
struct RingSync {
    tx: mpsc::Sender<(u64, Arc<Fence>)>,
    stop: Arc<AtomicBool>,
}

impl RingSync {
    fn spawn(ctx: u32, ring: u32) -> Option<RingSync> {
        let (tx, rx) = mpsc::channel::<(u64, Arc<Fence>)>();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::Builder::new()
            .name(format!("intel-sync-{ctx}-{ring}"))
            .spawn(move || {
                let cfg = crate::config::get();
                while let Ok((id, fence)) = rx.recv() {
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    fence.wait();
                    if !cfg.fence_delay.is_zero() {
                        std::thread::sleep(cfg.fence_delay);
                    }
                    if st.load(Ordering::Acquire) {
                        break;
                    }
                    if cfg.fence_never {
                        continue;
                    }
                    report_context_fence(ctx, ring, id);
                }
            })
            .ok()?;
        Some(RingSync { tx, stop })
    }
}

struct Context {
    native: NativeCtx,
    rings: HashMap<u32, RingSync>,
}

/// The renderer state between `init` and `reset`/`cleanup`.
pub(crate) struct Renderer {
    dev: Arc<swi915::Device>,
    contexts: HashMap<u32, Context>,
    resources: HashMap<u32, Resource>,
}

static STATE: Mutex<Option<Renderer>> = Mutex::new(None);

/// Locks the renderer state.
pub(crate) fn state() -> MutexGuard<'static, Option<Renderer>> {
    crate::sync::lock(&STATE)
}

/// `virgl_renderer_get_cap_set`: `(max_ver, max_size)` of a capset, `(0, 0)` for one
/// this host does not know.
///
/// The answers do not depend on `virgl_renderer_init` (QEMU asks at realize, before
/// init) and are the real library's: it answers capsets 1 and 2 from static struct
/// sizes whether or not its GL renderer (vrend) will ever come up, and capset 6 from
/// the DRM capset size. With capset 2's `max_ver != 0` QEMU lists VIRGL2, so the
/// guest's capset mask is 0x46 as with virglrenderer (QEMU always lists VIRGL).
pub(crate) fn capset_info(set: u32) -> (u32, u32) {
    match set {
        CAPSET_VIRGL => CAPSET_VIRGL_INFO,
        CAPSET_VIRGL2 => CAPSET_VIRGL2_INFO,
        CAPSET_DRM => (0, CAPSET_DRM_SIZE),
        _ => (0, 0),
    }
}

/// `virgl_renderer_fill_caps` into `out`, which holds the capset's `max_size` bytes.
///
/// Capsets 1 and 2 describe vrend, virglrenderer's GL renderer. This host has none, so
/// they are all zeros: `max_version` 0, no formats, GLSL level 0, no capability bits.
/// That is byte for byte what the real library returns when vrend is not running
/// (`VIRGL_RENDERER_NO_VIRGL`): it then leaves the VMM's zeroed buffer untouched. A
/// guest's virgl driver thus learns that classic virgl offers nothing, and classic
/// contexts are refused at creation as the real library refuses them without vrend.
/// The guest kernel reads only the capset info at probe; capset data reaches guest
/// userspace only through VIRTGPU_GET_CAPS.
///
/// The DRM capset is filled for version 0 only; other sets and versions leave `out`
/// untouched.
pub(crate) fn fill_caps(profile: &crate::profile::Profile, set: u32, version: u32, out: &mut [u8]) {
    match set {
        CAPSET_VIRGL | CAPSET_VIRGL2 => out.iter_mut().for_each(|b| *b = 0),
        CAPSET_DRM if version == 0 => fill_capset(profile, out),
        _ => {}
    }
}

/// Fills the DRM capset as the i915 backend does.
pub(crate) fn fill_capset(profile: &crate::profile::Profile, out: &mut [u8]) {
    out.iter_mut().for_each(|b| *b = 0);
    wr32(out, 0, 1); // wire_format_version
    wr32(out, 4, profile.drm_version.0);
    wr32(out, 8, profile.drm_version.1);
    wr32(out, 12, profile.drm_version.2);
    wr32(out, 16, CONTEXT_TYPE_I915);
    wr32(out, 24, profile.pci_bus);
    wr32(out, 28, profile.pci_dev);
    wr32(out, 32, profile.pci_func);
    wr32(out, 36, u32::from(profile.pci_revision));
    wr32(out, 40, profile.pci_domain);
    wr32(out, 44, u32::from(profile.pci_device_id));
}

/// Arguments of `virgl_renderer_resource_create_blob`, decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobArgs {
    pub(crate) res_handle: u32,
    pub(crate) ctx_id: u32,
    pub(crate) blob_mem: u32,
    pub(crate) blob_flags: u32,
    pub(crate) blob_id: u64,
    pub(crate) size: u64,
    pub(crate) iov: usize,
    pub(crate) num_iovs: u32,
}

impl Renderer {
    pub(crate) fn new(dev: Arc<swi915::Device>) -> Renderer {
        Renderer { dev, contexts: HashMap::new(), resources: HashMap::new() }
    }

    /// `virgl_renderer_context_create_with_flags`.
    pub(crate) fn context_create(&mut self, ctx_id: u32, flags: u32, name: &str) -> i32 {
        if ctx_id == 0 || flags & !0xff != 0 {
            return -libc::EINVAL;
        }
        let capset = flags & 0xff;
        if capset != CAPSET_DRM {
            // Capsets 1 and 2 are announced but empty: there is no vrend (see `fill_caps`).
            crate::log::warn(&format!("context {ctx_id}: capset {capset} is not served by this host"));
            return -libc::EINVAL;
        }
        if self.contexts.contains_key(&ctx_id) {
            return 0;
        }
        crate::log::info(&format!("context {ctx_id} created (\"{name}\")"));
        let native = NativeCtx::new(ctx_id, self.dev.clone());
        self.contexts.insert(ctx_id, Context { native, rings: HashMap::new() });
        0
    }

    /// `virgl_renderer_context_destroy`.
    pub(crate) fn context_destroy(&mut self, ctx_id: u32) {
        self.destroy_context(ctx_id, false);
    }

    /// Destroys a context: asked by the guest, or with the device (`reset`), when dropping
    /// its pending fences is what the guest asked for.
    fn destroy_context(&mut self, ctx_id: u32, reset: bool) {
        let Some(ctx) = self.contexts.remove(&ctx_id) else {
            return;
        };
        let pending: usize =
            ctx.native.timelines.values().map(|t| t.outstanding.iter().filter(|f| !f.is_signalled()).count()).sum();
        if pending > 0 && !reset {
            crate::log::violation(&format!(
                "context {ctx_id} destroyed with {pending} ring fence(s) still pending: they will never be reported"
            ));
        }
        for r in ctx.rings.values() {
            r.stop.store(true, Ordering::Release);
        }
        crate::log::info(&format!(
            "context {ctx_id} destroyed ({} guest protocol violation(s), {} unknown command(s) so far)",
            crate::log::violation_count(),
            self.dev.unknown_commands()
        ));
    }

    /// `virgl_renderer_submit_cmd`.
    pub(crate) fn submit(&mut self, ctx_id: u32, buf: &[u8]) -> i32 {
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            crate::log::violation(&format!("SUBMIT_3D on unknown context {ctx_id}"));
            return -libc::EINVAL;
        };
        let mut view = Resources(&mut self.resources);
        ctx.native.submit(buf, &mut view)
    }

    /// `virgl_renderer_context_create_fence`.
    pub(crate) fn create_context_fence(&mut self, ctx_id: u32, ring: u32, fence_id: u64) -> i32 {
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return -libc::EINVAL;
        };
        if ring > 64 {
            crate::log::violation(&format!("context {ctx_id}: fence on ring {ring} (> 64)"));
            return -libc::EINVAL;
        }
        let t = ctx.native.timelines.entry(ring).or_default();
        if let Some(last) = t.last_fence_id {
            if fence_id <= last {
                crate::log::violation(&format!(
                    "context {ctx_id} ring {ring}: fence id {fence_id} not above the previous {last}"
                ));
            }
        }
        t.last_fence_id = Some(fence_id);
        t.outstanding.retain(|f| !f.is_signalled());
        let Some(fence) = t.last_fence.take() else {
            if ring != 0 && !t.outstanding.is_empty() {
                crate::log::violation(&format!(
                    "context {ctx_id} ring {ring}: fence {fence_id} carries no successful execbuffer and retires \
                     {} still-running earlier fence(s) early",
                    t.outstanding.len()
                ));
            }
            let cfg = crate::config::get();
            if !cfg.fence_never {
                if cfg.fence_delay.is_zero() {
                    report_context_fence(ctx_id, ring, fence_id);
                } else {
                    let f = Arc::new(Fence::new());
                    f.signal(0);
                    return self.queue_ring_fence(ctx_id, ring, fence_id, f);
                }
            }
            return 0;
        };
        t.outstanding.push(fence.clone());
        self.queue_ring_fence(ctx_id, ring, fence_id, fence)
    }

    fn queue_ring_fence(&mut self, ctx_id: u32, ring: u32, fence_id: u64, fence: Arc<Fence>) -> i32 {
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return -libc::EINVAL;
        };
        if let std::collections::hash_map::Entry::Vacant(e) = ctx.rings.entry(ring) {
            match RingSync::spawn(ctx_id, ring) {
                Some(r) => {
                    e.insert(r);
                }
                None => return -libc::EAGAIN,
            }
        }
        match ctx.rings.get(&ring) {
            Some(r) if r.tx.send((fence_id, fence)).is_ok() => 0,
            _ => -libc::EIO,
        }
    }

    /// `virgl_renderer_resource_create_blob`.
    pub(crate) fn create_blob(&mut self, a: &BlobArgs) -> i32 {
        if a.res_handle == 0 || self.resources.contains_key(&a.res_handle) || a.size == 0 {
            return -libc::EINVAL;
        }
        let mappable = a.blob_flags & BLOB_FLAG_MAPPABLE != 0;
        match a.blob_mem {
            BLOB_MEM_HOST3D => {}
            BLOB_MEM_GUEST => {
                if a.num_iovs == 0 || a.iov == 0 {
                    return -libc::EINVAL;
                }
                self.resources.insert(
                    a.res_handle,
                    Resource {
                        backing: Backing::Guest,
                        owner: a.ctx_id,
                        map_info: 0,
                        mappable: false,
                        extra_map: None,
                        iov: Some((a.iov, a.num_iovs as i32)),
                    },
                );
                return 0;
            }
            _ => return -libc::EINVAL,
        }
        if a.num_iovs != 0 {
            return -libc::EINVAL;
        }
        let Some(ctx) = self.contexts.get_mut(&a.ctx_id) else {
            crate::log::violation(&format!("CREATE_BLOB res {} in unknown context {}", a.res_handle, a.ctx_id));
            return -libc::EINVAL;
        };
        let n = &mut ctx.native;
        if a.blob_id >> 32 != 0 {
            crate::log::violation(&format!("CREATE_BLOB: blob_id {:#x} has upper bits set", a.blob_id));
            return -libc::EINVAL;
        }
        let blob_id = a.blob_id as u32;
        if blob_id == 0 {
            if a.blob_flags != BLOB_FLAG_MAPPABLE {
                crate::log::violation(&format!("shmem blob with flags {:#x} (must be MAPPABLE only)", a.blob_flags));
                return -libc::EINVAL;
            }
            if n.shmem.is_some() {
                crate::log::violation(&format!("context {}: a second shmem blob", a.ctx_id));
                return -libc::EINVAL;
            }
            if a.size < u64::from(SHMEM_HDR_SIZE) || a.size > u64::from(u32::MAX) {
                crate::log::violation(&format!("shmem blob of {} bytes (needs 16 .. 4 GiB)", a.size));
                return -libc::EINVAL;
            }
            let m = match SharedMem::new("intel-shmem", a.size) {
                Ok(m) => Arc::new(m),
                Err(_) => return -libc::ENOMEM,
            };
            let _ = m.write_u32(SHMEM_RSP_MEM_OFFSET, SHMEM_HDR_SIZE);
            n.shmem = Some((a.res_handle, m.clone()));
            self.resources.insert(
                a.res_handle,
                Resource {
                    backing: Backing::Shmem(m),
                    owner: a.ctx_id,
                    map_info: MAP_CACHE_CACHED,
                    mappable: true,
                    extra_map: None,
                    iov: None,
                },
            );
            return 0;
        }
        if n.objects.contains_key(&a.res_handle) {
            return -libc::EINVAL;
        }
        let k = GEM_BLOB_COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if crate::config::get().fail_blob == Some(k) {
            if let Some(p) = n.pending.remove(&blob_id) {
                let _ = n.file.gem_close(p.handle);
            }
            crate::log::info(&format!("fault injection: GEM blob #{k} (res {}) refused", a.res_handle));
            return -libc::EINVAL;
        }
        if !n.pending.contains_key(&blob_id) {
            if let Some(i) = n.refused_blobs.iter().position(|b| *b == blob_id) {
                n.refused_blobs.swap_remove(i);
                crate::log::info(&format!("CREATE_BLOB res {}: its GEM_CREATE was refused", a.res_handle));
                return -libc::ENOENT;
            }
        }
        let Some(p) = n.pending.remove(&blob_id) else {
            crate::log::violation(&format!(
                "CREATE_BLOB res {}: no pending GEM object with blob_id {blob_id}",
                a.res_handle
            ));
            return -libc::ENOENT;
        };
        if p.size != a.size {
            crate::log::violation(&format!(
                "CREATE_BLOB res {}: size {} differs from the GEM_CREATE size {} (the host object leaks)",
                a.res_handle, a.size, p.size
            ));
            return -libc::EINVAL;
        }
        let Some(obj) = n.file.object(p.handle) else {
            return -libc::ENOENT;
        };
        n.objects.insert(a.res_handle, CtxObject { handle: p.handle, configured: p.configured });
        self.resources.insert(
            a.res_handle,
            Resource {
                backing: Backing::Gem(obj),
                owner: a.ctx_id,
                map_info: p.map_info,
                mappable,
                extra_map: None,
                iov: None,
            },
        );
        0
    }

    /// `virgl_renderer_resource_create` (classic 2D/3D resources: console only).
    pub(crate) fn create_plain(&mut self, res: u32, width: u32, height: u32) -> i32 {
        if res == 0 || self.resources.contains_key(&res) {
            return -libc::EINVAL;
        }
        let bytes = u64::from(width) * u64::from(height) * 4;
        if bytes > 64 << 20 {
            return -libc::ENOMEM;
        }
        self.resources.insert(
            res,
            Resource {
                backing: Backing::Plain2D { width, height, data: vec![0; bytes as usize] },
                owner: 0,
                map_info: 0,
                mappable: false,
                extra_map: None,
                iov: None,
            },
        );
        0
    }

    pub(crate) fn resource(&self, res: u32) -> Option<&Resource> {
        self.resources.get(&res)
    }

    pub(crate) fn resource_mut(&mut self, res: u32) -> Option<&mut Resource> {
        self.resources.get_mut(&res)
    }

    /// The memfd to report in `resource_get_info` (shmem only, as the real host).
    pub(crate) fn info_fd(&self, res: u32) -> Option<i32> {
        let r = self.resources.get(&res)?;
        Some(match &r.backing {
            Backing::Shmem(m) => m.raw_fd(),
            _ => -1,
        })
    }

    /// Maps a blob at `addr` (`resource_map_fixed`).
    ///
    /// # Safety
    /// `addr` must be the start of a range of the blob's size owned by the caller.
    pub(crate) unsafe fn map_fixed(&self, res: u32, addr: *mut libc::c_void) -> i32 {
        let Some(r) = self.resources.get(&res) else {
            return -libc::EINVAL;
        };
        if !r.mappable {
            return -libc::EINVAL;
        }
        let Some(m) = r.mem() else {
            return -libc::EINVAL;
        };
        if matches!(r.backing, Backing::Gem(_)) && map_refused(res) {
            return -libc::ENOMEM;
        }
        // SAFETY: forwarded from the caller.
        match unsafe { m.map_fixed_at(addr) } {
            Ok(()) => 0,
            Err(crate::mem::MemError::Os(e)) => -e,
            Err(_) => -libc::EINVAL,
        }
    }

    /// Maps a blob at a new address (`resource_map`).
    pub(crate) fn map(&mut self, res: u32) -> Result<(usize, u64), i32> {
        let r = self.resources.get_mut(&res).ok_or(-libc::EINVAL)?;
        if !r.mappable || r.extra_map.is_some() {
            return Err(-libc::EINVAL);
        }
        if matches!(r.backing, Backing::Gem(_)) && map_refused(res) {
            return Err(-libc::ENOMEM);
        }
        let (p, len) = {
            let m = r.mem().ok_or(-libc::EINVAL)?;
            (m.map_extra().map_err(|_| -libc::ENOMEM)?, m.len())
        };
        r.extra_map = Some((p as usize, len));
        Ok((p as usize, len))
    }

    /// Undoes `map` (`resource_unmap`).
    pub(crate) fn unmap(&mut self, res: u32) -> i32 {
        let Some(r) = self.resources.get_mut(&res) else {
            return -libc::EINVAL;
        };
        match r.extra_map.take() {
            Some((p, len)) => {
                // SAFETY: `(p, len)` came from `map_extra` and the VMM has dropped it.
                unsafe { crate::mem::unmap_extra(p as *mut libc::c_void, len) };
                0
            }
            None => -libc::EINVAL,
        }
    }

    /// `virgl_renderer_ctx_attach_resource`: imports another context's GEM object.
    pub(crate) fn attach(&mut self, ctx_id: u32, res: u32) {
        let Some(r) = self.resources.get(&res) else {
            return;
        };
        let Some(ctx) = self.contexts.get_mut(&ctx_id) else {
            return;
        };
        if r.owner == ctx_id || ctx.native.objects.contains_key(&res) {
            return;
        }
        if let Backing::Gem(obj) = &r.backing {
            let handle = ctx.native.file.import(obj.clone());
            if let Ok(handle) = handle {
                ctx.native.objects.insert(res, CtxObject { handle, configured: false });
            }
        }
    }

    /// `virgl_renderer_ctx_detach_resource`: closes the context's handle.
    pub(crate) fn detach(&mut self, ctx_id: u32, res: u32) {
        if let Some(ctx) = self.contexts.get_mut(&ctx_id) {
            if let Some(o) = ctx.native.objects.remove(&res) {
                let _ = ctx.native.file.gem_close(o.handle);
            }
        }
    }

    /// `virgl_renderer_resource_unref`.
    pub(crate) fn unref(&mut self, res: u32) {
        let ids: Vec<u32> = self.contexts.keys().copied().collect();
        for c in ids {
            self.detach(c, res);
        }
        if let Some(mut r) = self.resources.remove(&res) {
            if let Some((p, len)) = r.extra_map.take() {
                // SAFETY: a `map_extra` mapping the VMM no longer uses (unref comes last).
                unsafe { crate::mem::unmap_extra(p as *mut libc::c_void, len) };
            }
        }
    }

    /// Copies from guest pages into a 2D resource (`transfer_write_iov`).
    pub(crate) fn transfer_write(
        &mut self,
        res: u32,
        b: (u32, u32, u32, u32),
        stride: u32,
        offset: u64,
        iov: &[(usize, usize)],
    ) -> i32 {
        let Some(r) = self.resources.get_mut(&res) else {
            return -libc::EINVAL;
        };
        let Backing::Plain2D { width, height, data } = &mut r.backing else {
            return 0;
        };
        let (x, y, w, h) = b;
        if x.checked_add(w).is_none_or(|e| e > *width) || y.checked_add(h).is_none_or(|e| e > *height) {
            return -libc::EINVAL;
        }
        let stride = if stride == 0 { *width * 4 } else { stride };
        for row in 0..h {
            let src = offset + u64::from(row) * u64::from(stride);
            let dst = ((u64::from(y + row) * u64::from(*width) + u64::from(x)) * 4) as usize;
            let n = (w as usize) * 4;
            if let Some(d) = data.get_mut(dst..dst + n) {
                crate::ffi::gather(iov, src, d);
            }
        }
        0
    }

    /// Tears everything down (`reset`/`cleanup`).
    pub(crate) fn destroy_all(&mut self) {
        let ids: Vec<u32> = self.contexts.keys().copied().collect();
        for c in ids {
            self.destroy_context(c, true);
        }
        let res: Vec<u32> = self.resources.keys().copied().collect();
        for r in res {
            self.unref(r);
        }
    }
}
