//! virtio-intel-client: exercises every i915 ccmd of the virtio-intel
//! protocol from a Linux guest through the upstream virtio_gpu uAPI, the way
//! Mesa's vdrm/intel virtio guest code does, and reports one line per check.

mod bo;
mod i915;
mod mi;
mod proto;
mod uapi;
mod vdrm;

use bo::Bo;
use i915::*;
use proto::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use vdrm::{Connection, Device, Error};

const DEFAULT_DEVICE: &str = "/dev/dri/renderD128";
const DEBUG_NAME: &str = "virtio-intel-client";
const TGL_GT2_DEVICE_ID: u32 = 0x9a49;
const CAPSET_DRM_SIZE: usize = 160;
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HANG_TIMEOUT: Duration = Duration::from_secs(20);
const HANG_EXPECTED: Duration = Duration::from_secs(15);
const EINVAL: i32 = libc::EINVAL;
const EPERM: i32 = libc::EPERM;
const EIO: i32 = libc::EIO;

type CheckResult = Result<(), String>;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

struct Opts {
    verbose: bool,
    negative: bool,
    only: Vec<String>,
    device: String,
    hang_timeout: Duration,
    bench: Option<u32>,
    bench_bo: Option<u32>,
    bench_exec: Option<u32>,
}

const USAGE: &str = "usage: virtio-intel-client [--verbose] [--only <check>[,<check>...]] [--negative]
                           [--device <render node>] [--hang-timeout <seconds>] [--list]
Runs the virtio-intel protocol checks inside a virtio-gpu guest.
  --verbose        dump every ccmd and response header on stderr
  --only <check>   run only the named check(s) (names or numbers, see --list);
                   prerequisites are created on demand
  --negative       also run the protocol-violating check 'rejected-ccmd'
  --device <path>  render node (default /dev/dri/renderD128)
  --hang-timeout   seconds to wait for the hung batch's fence (default 20)
  --bench <n>      instead of the checks, time <n> synchronous GETPARAM ccmds and print
                   the median and 90th percentile (the seed design's path, for tools/vm/bench.sh)
  --bench-bo <n>   instead of the checks, time <n> times: create a 4 KiB BO, map it, write one
                   word, unmap and close it; print the median and 90th percentile
  --bench-exec <n> instead of the checks, time <n> execbuffers of an empty batch: the
                   submit, and until its fence signals; print medians and 90th percentiles";

fn parse_args() -> Result<Option<Opts>, String> {
    let mut o = Opts {
        verbose: false,
        negative: false,
        only: Vec::new(),
        device: DEFAULT_DEVICE.to_string(),
        hang_timeout: DEFAULT_HANG_TIMEOUT,
        bench: None,
        bench_bo: None,
        bench_exec: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-v" | "--verbose" => o.verbose = true,
            "--negative" => o.negative = true,
            "--bench-bo" => {
                let v = args.next().ok_or("--bench-bo needs a count")?;
                let n: u32 = v.parse().map_err(|_| format!("bad --bench-bo {:?}", v))?;
                if n == 0 {
                    return Err("--bench-bo needs a count above 0".into());
                }
                o.bench_bo = Some(n);
            }
            "--bench-exec" => {
                let v = args.next().ok_or("--bench-exec needs a count")?;
                let n: u32 = v.parse().map_err(|_| format!("bad --bench-exec {:?}", v))?;
                if n == 0 {
                    return Err("--bench-exec needs a count above 0".into());
                }
                o.bench_exec = Some(n);
            }
            "--bench" => {
                let v = args.next().ok_or("--bench needs a count")?;
                let n: u32 = v.parse().map_err(|_| format!("bad --bench {:?}", v))?;
                if n == 0 {
                    return Err("--bench needs a count above 0".into());
                }
                o.bench = Some(n);
            }
            "--only" => {
                let v = args.next().ok_or("--only needs a check name")?;
                o.only.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string));
            }
            "--device" => o.device = args.next().ok_or("--device needs a path")?,
            "--hang-timeout" => {
                let v = args.next().ok_or("--hang-timeout needs seconds")?;
                let s: u64 = v.parse().map_err(|_| format!("bad --hang-timeout {:?}", v))?;
                o.hang_timeout = Duration::from_secs(s);
            }
            "--list" => {
                for (i, c) in CHECKS.iter().enumerate() {
                    println!("{:2} {}{}", i + 1, c.name, if c.negative { " (--negative)" } else { "" });
                }
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{}", USAGE);
                return Ok(None);
            }
            other => return Err(format!("unknown argument {:?}\n{}", other, USAGE)),
        }
    }
    for name in &o.only {
        let known = CHECKS.iter().enumerate().any(|(i, c)| c.name == name || (i + 1).to_string() == *name);
        if !known {
            return Err(format!("unknown check {:?} (see --list)", name));
        }
    }
    Ok(Some(o))
}

// ---------------------------------------------------------------------------
// Shared state (prerequisites are created lazily so --only works)
// ---------------------------------------------------------------------------

/// A BO softpinned at a fixed GPU virtual address.
struct GpuBo {
    bo: Bo,
    va: u64,
}

struct ExecCtx {
    ctx_id: u32,
    /// Index of the copy engine in the context's engine map, if any.
    copy_idx: Option<u64>,
}

struct State {
    opts: Opts,
    conn: Option<Connection>,
    conn_error: Option<String>,
    engines: Option<Vec<EngineInfo>>,
    exec_ctx: Option<ExecCtx>,
    bos: Vec<GpuBo>,
    /// Index into `bos` of a target BO that an executed batch wrote.
    target: Option<usize>,
    next_va: u64,
}

/// Softpin addresses start at 4 GiB (canonical, below 2^47), 2 MiB apart.
const VA_BASE: u64 = 0x1_0000_0000;
const VA_ALIGN: u64 = 2 << 20;

fn info(msg: impl AsRef<str>) {
    println!("# {}", msg.as_ref());
}

fn e2s(e: Error) -> String {
    e.to_string()
}

impl State {
    fn ensure_conn(&mut self) -> CheckResult {
        if self.conn.is_some() {
            return Ok(());
        }
        if let Some(e) = &self.conn_error {
            return Err(format!("no connection ({})", e));
        }
        let r = open_device(&self.opts.device)
            .and_then(|dev| Connection::init(dev, Some(DEBUG_NAME), self.opts.verbose).map_err(e2s));
        match r {
            Ok(c) => {
                self.conn = Some(c);
                Ok(())
            }
            Err(e) => {
                self.conn_error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, String> {
        self.ensure_conn()?;
        self.conn.as_mut().ok_or_else(|| "no connection".to_string())
    }

    fn alloc_va(&mut self, size: u64) -> u64 {
        let va = self.next_va;
        self.next_va += size.div_ceil(VA_ALIGN).max(1) * VA_ALIGN;
        va
    }

    /// Create a mapped BO with a GPU VA and keep it for teardown.
    fn new_bo(&mut self, size: u64) -> Result<usize, String> {
        let bo = Bo::create(self.conn()?, size).map_err(e2s)?;
        let va = self.alloc_va(bo.size);
        self.bos.push(GpuBo { bo, va });
        Ok(self.bos.len() - 1)
    }

    fn engines(&mut self) -> Result<Vec<EngineInfo>, String> {
        if let Some(e) = &self.engines {
            return Ok(e.clone());
        }
        let blob = query(self.conn()?, DRM_I915_QUERY_ENGINE_INFO)?;
        let e = decode_engines(&blob)?;
        self.engines = Some(e.clone());
        Ok(e)
    }

    fn exec_ctx(&mut self) -> Result<(u32, Option<u64>), String> {
        if let Some(c) = &self.exec_ctx {
            return Ok((c.ctx_id, c.copy_idx));
        }
        let engines = self.engines()?;
        let has_copy = engines.iter().any(|e| e.class == I915_ENGINE_CLASS_COPY);
        let mut map = vec![(I915_ENGINE_CLASS_RENDER, 0u16)];
        if has_copy {
            map.push((I915_ENGINE_CLASS_COPY, 0));
        }
        let ctx_id = create_context(self.conn()?, &map, false)?;
        let copy_idx = if has_copy { Some(1) } else { None };
        self.exec_ctx = Some(ExecCtx { ctx_id, copy_idx });
        Ok((ctx_id, copy_idx))
    }
}

fn open_device(path: &str) -> Result<Device, String> {
    let dev = Device::open(path).map_err(|e| format!("{} (is this a virtio-gpu guest with a render node?)", e))?;
    let (name, ..) = dev.driver().map_err(|e| format!("{}: {} (not a DRM device?)", path, e))?;
    if name != "virtio_gpu" {
        return Err(format!("{} is driven by {:?}, not virtio_gpu", path, name));
    }
    Ok(dev)
}

// ---------------------------------------------------------------------------
// ccmd helpers
// ---------------------------------------------------------------------------

fn getparam(conn: &mut Connection, param: u32) -> Result<GetparamRsp, String> {
    conn.sync(&GetparamReq { param }).map_err(|e| format!("GETPARAM({}): {}", param, e))
}

/// IOCTL_SIMPLE; returns the response `ret` and the ioctl struct after the call.
fn simple<T: SimpleIoctl>(conn: &mut Connection, payload: &T) -> Result<(i32, T), String> {
    let req = IoctlSimpleReq::new(payload);
    req.validate().map_err(|e| format!("{}: {}", T::NAME, e))?;
    let rsp = conn.sync(&req).map_err(|e| format!("{}: {}", T::NAME, e))?;
    let out = if uapi::ioc_is_out(T::NR) {
        rsp.payload_as::<T>()
            .ok_or_else(|| format!("{}: response payload short ({} bytes)", T::NAME, rsp.payload.len()))?
    } else {
        *payload
    };
    Ok((rsp.ret, out))
}

fn expect_ret(what: &str, ret: i32, want: i32) -> CheckResult {
    if ret == want {
        Ok(())
    } else {
        Err(format!("{}: ret {} ({}), expected {}", what, ret, errno_name(ret), want))
    }
}

fn errno_name(e: i32) -> String {
    if e == 0 {
        return "ok".into();
    }
    std::io::Error::from_raw_os_error(e).to_string()
}

/// Two-call QUERYPARAM: length 0 → size, then fetch.
fn query(conn: &mut Connection, id: u32) -> Result<Vec<u8>, String> {
    let r = conn
        .sync(&QueryparamReq { query_id: id, length: 0, flags: 0 })
        .map_err(|e| format!("QUERYPARAM({}, length 0): {}", id, e))?;
    expect_ret(&format!("QUERYPARAM({}, length 0)", id), r.ret, 0)?;
    if r.length <= 0 {
        return Err(format!("QUERYPARAM({}): required length {}", id, r.length));
    }
    let len = r.length as u32;
    let r2 = conn
        .sync(&QueryparamReq { query_id: id, length: len, flags: 0 })
        .map_err(|e| format!("QUERYPARAM({}, length {}): {}", id, len, e))?;
    expect_ret(&format!("QUERYPARAM({}, length {})", id, len), r2.ret, 0)?;
    if r2.length != len as i32 || r2.payload.len() < len as usize {
        return Err(format!(
            "QUERYPARAM({}): length {} / {} payload bytes, expected {}",
            id,
            r2.length,
            r2.payload.len(),
            len
        ));
    }
    Ok(r2.payload[..len as usize].to_vec())
}

/// GEM_CONTEXT_CREATE (ccmd 6) with USE_EXTENSIONS: ENGINES map and
/// RECOVERABLE = 0.
fn create_context(conn: &mut Connection, engines: &[(u16, u16)], verbose_info: bool) -> Result<u32, String> {
    let mut params = context_setparam(I915_CONTEXT_PARAM_ENGINES, 0, &engines_param(engines));
    params.extend(context_setparam(I915_CONTEXT_PARAM_RECOVERABLE, 0, &[]));
    let req = GemContextCreateReq { flags: I915_CONTEXT_CREATE_FLAGS_USE_EXTENSIONS, params };
    req.validate()?;
    let r = conn.sync(&req).map_err(|e| format!("GEM_CONTEXT_CREATE: {}", e))?;
    expect_ret("GEM_CONTEXT_CREATE", r.ret, 0)?;
    if verbose_info {
        info(format!("GEM_CONTEXT_CREATE: ctx_id {} engines {:?} recoverable 0", r.ctx_id, engines));
    }
    Ok(r.ctx_id)
}

fn destroy_context(conn: &mut Connection, ctx_id: u32) -> CheckResult {
    let (ret, _) = simple(conn, &GemContextDestroy { ctx_id, pad: 0 })?;
    expect_ret(&format!("GEM_CONTEXT_DESTROY({})", ctx_id), ret, 0)
}

/// One EXECBUFFER2 per fenced SUBMIT_3D; the last object is the batch.
/// Returns (ret, time waited for the out-fence).
fn run_exec(
    st: &mut State,
    ctx_id: u32,
    engine_idx: u64,
    objs: &[(usize, bool)],
    batch_len: u32,
    timeout: Duration,
) -> Result<(i32, Duration), String> {
    let (req, handles) = build_exec(st, ctx_id, engine_idx, objs, batch_len);
    let conn = st.conn()?;
    let p = conn.exec_submit(&req, &handles).map_err(e2s)?;
    let (rsp, waited) = conn.exec_wait(p, timeout).map_err(e2s)?;
    Ok((rsp.ret, waited))
}

fn build_exec(
    st: &State,
    ctx_id: u32,
    engine_idx: u64,
    objs: &[(usize, bool)],
    batch_len: u32,
) -> (Execbuffer2Req, Vec<u32>) {
    let mut objects = Vec::new();
    let mut handles = Vec::new();
    for &(i, write) in objs {
        let g = &st.bos[i];
        let mut flags = EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS;
        if write {
            flags |= EXEC_OBJECT_WRITE;
        }
        objects.push(ExecObject2 { handle: g.bo.res_id, offset: g.va, flags, ..Default::default() });
        handles.push(g.bo.handle);
    }
    let req = Execbuffer2Req {
        flags: (engine_idx & I915_EXEC_RING_MASK) | I915_EXEC_NO_RELOC,
        context_id: ctx_id as u64,
        batch_start_offset: 0,
        batch_len,
        objects,
        relocs: Vec::new(),
    };
    (req, handles)
}

fn write_batch(st: &State, idx: usize, b: &mi::Batch) -> Result<u32, String> {
    let bytes = b.to_bytes();
    st.bos[idx].bo.write_bytes(0, &bytes).map_err(e2s)?;
    Ok(bytes.len() as u32)
}

fn check_u32(bo: &Bo, off: u64, want: u32, what: &str, errs: &mut Vec<String>) {
    match bo.read_u32(off) {
        Ok(v) if v == want => {}
        Ok(v) => errs.push(format!("{}: target+{:#x} = {:#010x}, expected {:#010x}", what, off, v, want)),
        Err(e) => errs.push(format!("{}: {}", what, e)),
    }
}

fn check_u64(bo: &Bo, off: u64, want: u64, what: &str, errs: &mut Vec<String>) {
    match bo.read_u64(off) {
        Ok(v) if v == want => {}
        Ok(v) => errs.push(format!("{}: target+{:#x} = {:#018x}, expected {:#018x}", what, off, v, want)),
        Err(e) => errs.push(format!("{}: {}", what, e)),
    }
}

fn join(errs: Vec<String>) -> CheckResult {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

struct Check {
    name: &'static str,
    negative: bool,
    run: fn(&mut State) -> CheckResult,
}

const CHECKS: &[Check] = &[
    Check { name: "features", negative: false, run: check_features },
    Check { name: "capset", negative: false, run: check_capset },
    Check { name: "context-init", negative: false, run: check_context_init },
    Check { name: "getparam", negative: false, run: check_getparam },
    Check { name: "queryparam", negative: false, run: check_queryparam },
    Check { name: "ioctl-simple", negative: false, run: check_ioctl_simple },
    Check { name: "gem-create", negative: false, run: check_gem_create },
    Check { name: "context-create", negative: false, run: check_context_create },
    Check { name: "execbuffer", negative: false, run: check_execbuffer },
    Check { name: "busy-wait", negative: false, run: check_busy_wait },
    Check { name: "hang-ban", negative: false, run: check_hang_ban },
    Check { name: "rejected-ccmd", negative: true, run: check_rejected_ccmd },
    Check { name: "teardown", negative: false, run: check_teardown },
];

/// 1. virtio_gpu features.
fn check_features(st: &mut State) -> CheckResult {
    let dev = open_device(&st.opts.device)?;
    let (name, maj, min, pl) = dev.driver().map_err(e2s)?;
    info(format!("{}: driver {} {}.{}.{}", dev.path, name, maj, min, pl));
    let mut errs = Vec::new();
    for (p, n) in [
        (uapi::VIRTGPU_PARAM_3D_FEATURES, "3D_FEATURES"),
        (uapi::VIRTGPU_PARAM_RESOURCE_BLOB, "RESOURCE_BLOB"),
        (uapi::VIRTGPU_PARAM_HOST_VISIBLE, "HOST_VISIBLE"),
        (uapi::VIRTGPU_PARAM_CONTEXT_INIT, "CONTEXT_INIT"),
    ] {
        match dev.getparam(p) {
            Ok(v) => {
                info(format!("VIRTGPU_PARAM_{} = {}", n, v));
                if v != 1 {
                    errs.push(format!("{} = {}, expected 1", n, v));
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    for (p, n) in [
        (uapi::VIRTGPU_PARAM_CROSS_DEVICE, "CROSS_DEVICE"),
        (uapi::VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME, "EXPLICIT_DEBUG_NAME"),
    ] {
        match dev.getparam(p) {
            Ok(v) => info(format!("VIRTGPU_PARAM_{} = {}", n, v)),
            Err(e) => info(format!("VIRTGPU_PARAM_{}: {}", n, e)),
        }
    }
    match dev.getparam(uapi::VIRTGPU_PARAM_SUPPORTED_CAPSET_IDS) {
        Ok(v) => {
            info(format!("VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs = {:#x}", v));
            if v & (1 << uapi::VIRTGPU_DRM_CAPSET_DRM) == 0 {
                errs.push(format!("SUPPORTED_CAPSET_IDs {:#x} lacks bit 6 (DRM capset)", v));
            }
        }
        Err(e) => errs.push(e.to_string()),
    }
    join(errs)
}

/// 2. capset 6.
fn check_capset(st: &mut State) -> CheckResult {
    let dev = open_device(&st.opts.device)?;
    let c = dev.get_caps(uapi::VIRTGPU_DRM_CAPSET_DRM, 0, CAPSET_DRM_SIZE).map_err(e2s)?;
    let f = |o: usize| get_u32(&c, o).unwrap_or(0);
    let (wire, maj, min, pl, ctype) = (f(0), f(4), f(8), f(12), f(16));
    let (bus, pdev, func, rev, dom, devid) = (f(24), f(28), f(32), f(36), f(40), f(44));
    info(format!("capset 6: wire_format_version {} context_type {} host i915 {}.{}.{}", wire, ctype, maj, min, pl));
    info(format!(
        "host GPU: PCI {:04x}:{:02x}:{:02x}.{} device 8086:{:04x} revision {:#04x}",
        dom, bus, pdev, func, devid, rev
    ));
    let mut errs = Vec::new();
    if wire != 1 {
        errs.push(format!("wire_format_version {}, expected 1", wire));
    }
    if ctype != 3 {
        errs.push(format!("context_type {}, expected 3 (i915)", ctype));
    }
    if devid != TGL_GT2_DEVICE_ID {
        errs.push(format!("pci_device_id {:#06x}, expected {:#06x} (TigerLake GT2)", devid, TGL_GT2_DEVICE_ID));
    }
    join(errs)
}

/// 3. CONTEXT_INIT + shmem blob.
fn check_context_init(st: &mut State) -> CheckResult {
    let conn = st.conn()?;
    info(format!(
        "CONTEXT_INIT capset 6, {} rings, debug name {}; shmem blob handle {} res_id {} ({} bytes)",
        vdrm::NUM_RINGS,
        if conn.debug_name_sent { DEBUG_NAME } else { "(not supported by kernel)" },
        conn.shmem_handle,
        conn.shmem_res_id,
        vdrm::SHMEM_SIZE
    ));
    info(format!(
        "shmem: rsp_mem_offset {} seqno {} banned_ctx_mask {:?}",
        conn.rsp_mem_offset,
        conn.initial_seqno,
        conn.banned_ctx_mask()
    ));
    let mut errs = Vec::new();
    if conn.rsp_mem_offset != I915_SHMEM_SIZE as u32 {
        errs.push(format!("rsp_mem_offset {}, expected 16", conn.rsp_mem_offset));
    }
    if conn.initial_seqno != 0 {
        errs.push(format!("initial seqno {}, expected 0", conn.initial_seqno));
    }
    join(errs)
}

/// 4. GETPARAM ccmd.
fn check_getparam(st: &mut State) -> CheckResult {
    let conn = st.conn()?;
    let mut errs = Vec::new();
    let mut get = |conn: &mut Connection, p: u32, n: &str| -> Option<i32> {
        match getparam(conn, p) {
            Ok(r) if r.ret == 0 => {
                info(format!("I915_PARAM_{} ({}) = {} ({:#x})", n, p, r.value, r.value));
                Some(r.value)
            }
            Ok(r) => {
                errs.push(format!("{}: ret {} ({})", n, r.ret, errno_name(r.ret)));
                None
            }
            Err(e) => {
                errs.push(e);
                None
            }
        }
    };
    let chip = get(conn, I915_PARAM_CHIPSET_ID, "CHIPSET_ID");
    let _rev = get(conn, I915_PARAM_REVISION, "REVISION");
    let freq = get(conn, I915_PARAM_CS_TIMESTAMP_FREQUENCY, "CS_TIMESTAMP_FREQUENCY");
    let iso = get(conn, I915_PARAM_HAS_CONTEXT_ISOLATION, "HAS_CONTEXT_ISOLATION");
    let softpin = get(conn, I915_PARAM_HAS_EXEC_SOFTPIN, "HAS_EXEC_SOFTPIN");
    let gtt = get(conn, I915_PARAM_MMAP_GTT_VERSION, "MMAP_GTT_VERSION");
    if let Some(v) = chip {
        if v as u32 != TGL_GT2_DEVICE_ID {
            errs.push(format!("CHIPSET_ID {:#x}, expected {:#x}", v, TGL_GT2_DEVICE_ID));
        }
    }
    if let Some(v) = freq {
        if v <= 0 {
            errs.push(format!("CS_TIMESTAMP_FREQUENCY {} not > 0", v));
        }
    }
    if let Some(v) = iso {
        // i915 reports a bitmask of engine classes with isolation; the
        // render class (bit 0) must be there.
        if v & 1 == 0 {
            errs.push(format!("HAS_CONTEXT_ISOLATION {:#x} lacks the render class", v));
        }
    }
    if let Some(v) = softpin {
        if v != 1 {
            errs.push(format!("HAS_EXEC_SOFTPIN {}, expected 1", v));
        }
    }
    if let Some(v) = gtt {
        if v > 4 {
            errs.push(format!("MMAP_GTT_VERSION {} > 4 (host must clamp it)", v));
        }
    }
    match getparam(conn, 9999) {
        Ok(r) => {
            info(format!("I915_PARAM 9999: ret {} value {}", r.ret, r.value));
            if r.ret != EINVAL {
                errs.push(format!("unknown param 9999: ret {}, expected EINVAL", r.ret));
            }
        }
        Err(e) => errs.push(e),
    }
    join(errs)
}

/// 5. QUERYPARAM ccmd.
fn check_queryparam(st: &mut State) -> CheckResult {
    let mut errs = Vec::new();
    let conn = st.conn()?;
    match query(conn, DRM_I915_QUERY_TOPOLOGY_INFO).and_then(|b| decode_topology(&b)) {
        Ok(t) => {
            info(format!(
                "topology: max {} slices x {} subslices x {} EUs, slice mask {:02x?}, {} EUs enabled",
                t.max_slices, t.max_subslices, t.max_eus_per_subslice, t.slice_mask, t.total_eus
            ));
            if t.max_slices == 0 || t.slice_mask.iter().all(|&b| b == 0) || t.total_eus == 0 {
                errs.push("topology: no enabled slice/EU".into());
            }
        }
        Err(e) => errs.push(format!("TOPOLOGY_INFO: {}", e)),
    }
    match query(conn, DRM_I915_QUERY_ENGINE_INFO).and_then(|b| decode_engines(&b)) {
        Ok(e) => {
            let names: Vec<String> =
                e.iter().map(|x| format!("{}{}", engine_class_name(x.class), x.instance)).collect();
            info(format!("engines: {}", names.join(" ")));
            if !e.iter().any(|x| x.class == I915_ENGINE_CLASS_RENDER) {
                errs.push("ENGINE_INFO: no render engine (class 0)".into());
            }
            st.engines = Some(e);
        }
        Err(e) => errs.push(format!("ENGINE_INFO: {}", e)),
    }
    let conn = st.conn()?;
    match query(conn, DRM_I915_QUERY_MEMORY_REGIONS).and_then(|b| decode_memory_regions(&b)) {
        Ok(r) => {
            for m in &r {
                info(format!(
                    "memory region class {} instance {}: probed {} MiB, unallocated {} MiB",
                    m.class,
                    m.instance,
                    m.probed_size >> 20,
                    m.unallocated_size >> 20
                ));
            }
            if !r.iter().any(|m| m.class == I915_MEMORY_CLASS_SYSTEM && m.probed_size > 0) {
                errs.push("MEMORY_REGIONS: no system memory region (class 0)".into());
            }
        }
        Err(e) => errs.push(format!("MEMORY_REGIONS: {}", e)),
    }
    match conn.sync(&QueryparamReq { query_id: 9999, length: 0, flags: 0 }) {
        Ok(r) => {
            info(format!("query 9999: ret {} length {}", r.ret, r.length));
            if r.ret != 0 || r.length != -EINVAL {
                errs.push(format!(
                    "unknown query 9999: ret {} length {}, expected ret 0 length -EINVAL",
                    r.ret, r.length
                ));
            }
        }
        Err(e) => errs.push(format!("QUERYPARAM(9999): {}", e)),
    }
    join(errs)
}

/// 6. IOCTL_SIMPLE.
fn check_ioctl_simple(st: &mut State) -> CheckResult {
    let conn = st.conn()?;
    let mut errs = Vec::new();

    match simple(conn, &GemGetAperture::default()) {
        Ok((0, a)) => {
            info(format!(
                "GEM_GET_APERTURE: size {} MiB available {} MiB",
                a.aper_size >> 20,
                a.aper_available_size >> 20
            ));
            if a.aper_size == 0 {
                errs.push("GEM_GET_APERTURE: aper_size 0".into());
            }
        }
        Ok((ret, _)) => errs.push(format!("GEM_GET_APERTURE: ret {} ({})", ret, errno_name(ret))),
        Err(e) => errs.push(e),
    }

    match simple(conn, &GemContextCreate::default()) {
        Ok((0, c)) => {
            let ctx = c.ctx_id;
            info(format!("legacy GEM_CONTEXT_CREATE: ctx_id {}", ctx));
            let gp = |p: u64, v: u64| GemContextGetparam(GemContextParam { ctx_id: ctx, size: 0, param: p, value: v });
            match simple(conn, &gp(I915_CONTEXT_PARAM_GTT_SIZE, 0)) {
                Ok((0, r)) => {
                    info(format!("CONTEXT_GETPARAM GTT_SIZE = {:#x}", r.0.value));
                    if r.0.value == 0 {
                        errs.push("GTT_SIZE 0".into());
                    }
                }
                Ok((ret, _)) => errs.push(format!("CONTEXT_GETPARAM GTT_SIZE: ret {} ({})", ret, errno_name(ret))),
                Err(e) => errs.push(e),
            }
            match simple(conn, &gp(I915_CONTEXT_PARAM_PRIORITY, 0)) {
                Ok((0, r)) => info(format!("CONTEXT_GETPARAM PRIORITY = {}", r.0.value as i64)),
                Ok((ret, _)) => errs.push(format!("CONTEXT_GETPARAM PRIORITY: ret {} ({})", ret, errno_name(ret))),
                Err(e) => errs.push(e),
            }
            let sp = GemContextSetparam(GemContextParam {
                ctx_id: ctx,
                size: 0,
                param: I915_CONTEXT_PARAM_PRIORITY,
                value: 1,
            });
            match simple(conn, &sp) {
                Ok((ret, _)) => {
                    info(format!("CONTEXT_SETPARAM PRIORITY=1: ret {} ({})", ret, errno_name(ret)));
                    if let Err(e) = expect_ret("CONTEXT_SETPARAM PRIORITY=1", ret, EPERM) {
                        errs.push(e);
                    }
                }
                Err(e) => errs.push(e),
            }
            match simple(conn, &ResetStats { ctx_id: ctx, ..Default::default() }) {
                Ok((0, r)) => info(format!(
                    "GET_RESET_STATS ctx {}: reset_count {} batch_active {} batch_pending {}",
                    ctx, r.reset_count, r.batch_active, r.batch_pending
                )),
                Ok((ret, _)) => errs.push(format!("GET_RESET_STATS: ret {} ({})", ret, errno_name(ret))),
                Err(e) => errs.push(e),
            }
            if let Err(e) = destroy_context(conn, ctx) {
                errs.push(e);
            }
        }
        Ok((ret, _)) => errs.push(format!("legacy GEM_CONTEXT_CREATE: ret {} ({})", ret, errno_name(ret))),
        Err(e) => errs.push(e),
    }

    match simple(conn, &GemVmCreate(GemVmControl::default())) {
        Ok((0, v)) => {
            let vm_id = v.0.vm_id;
            info(format!("GEM_VM_CREATE: vm_id {}", vm_id));
            if vm_id == 0 {
                errs.push("GEM_VM_CREATE returned vm_id 0".into());
            }
            match simple(conn, &GemVmDestroy(GemVmControl { vm_id, ..Default::default() })) {
                Ok((ret, _)) => {
                    if let Err(e) = expect_ret("GEM_VM_DESTROY", ret, 0) {
                        errs.push(e);
                    }
                }
                Err(e) => errs.push(e),
            }
        }
        Ok((ret, _)) => errs.push(format!("GEM_VM_CREATE: ret {} ({})", ret, errno_name(ret))),
        Err(e) => errs.push(e),
    }
    join(errs)
}

fn pattern(i: u64) -> u32 {
    (i as u32).wrapping_mul(0x9e37_79b1) ^ 0xa5a5_0f0f
}

fn pattern_test(bo: &Bo, what: &str) -> CheckResult {
    let n = bo.size / 4;
    for i in 0..n {
        bo.write_u32(4 * i, pattern(i)).map_err(e2s)?;
    }
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    for i in 0..n {
        let v = bo.read_u32(4 * i).map_err(e2s)?;
        if v != pattern(i) {
            return Err(format!("{}: readback at {:#x} = {:#x}, expected {:#x}", what, 4 * i, v, pattern(i)));
        }
    }
    Ok(())
}

/// 7. GEM_CREATE / GEM_CREATE_EXT / tiling / SET_MMAP_MODE.
fn check_gem_create(st: &mut State) -> CheckResult {
    let mut errs = Vec::new();
    let size = 64 * 1024;

    // GEM_CREATE
    let i1 = st.new_bo(size)?;
    {
        let b = &st.bos[i1].bo;
        info(format!(
            "GEM_CREATE: blob_id {} handle {} res_id {} size {} (seqno {})",
            b.blob_id, b.handle, b.res_id, b.size, b.create_seqno
        ));
        if let Err(e) = pattern_test(b, "GEM_CREATE BO") {
            errs.push(e);
        }
    }

    // GEM_CREATE_EXT with a MEMORY_REGIONS extension naming system memory.
    let ext = create_ext_memory_regions(&[(I915_MEMORY_CLASS_SYSTEM, 0)]);
    let r = Bo::create_ext(st.conn()?, size, 0, ext);
    let i2 = match r {
        Ok(bo) => {
            info(format!(
                "GEM_CREATE_EXT(MEMORY_REGIONS system): blob_id {} handle {} res_id {} (seqno {})",
                bo.blob_id, bo.handle, bo.res_id, bo.create_seqno
            ));
            if let Err(e) = pattern_test(&bo, "GEM_CREATE_EXT BO") {
                errs.push(e);
            }
            let va = st.alloc_va(bo.size);
            st.bos.push(GpuBo { bo, va });
            Some(st.bos.len() - 1)
        }
        Err(e) => {
            errs.push(format!("GEM_CREATE_EXT: {}", e));
            None
        }
    };

    // SET_TILING / GET_TILING with the res_id in `handle`.
    let res_id = st.bos[i1].bo.res_id;
    let conn = st.conn()?;
    for (mode, stride) in [(I915_TILING_X, 512u32), (I915_TILING_NONE, 0)] {
        let set = GemSetTiling { handle: res_id, tiling_mode: mode, stride, swizzle_mode: 0 };
        match simple(conn, &set) {
            Ok((0, mut out)) => {
                let host_handle = out.handle;
                out.handle = res_id; // restore our handle (host wrote its own)
                info(format!(
                    "SET_TILING mode {} stride {}: ok (host handle {}, swizzle {})",
                    mode, stride, host_handle, out.swizzle_mode
                ));
                match simple(conn, &GemGetTiling { handle: res_id, ..Default::default() }) {
                    Ok((0, mut g)) => {
                        g.handle = res_id;
                        if g.tiling_mode != mode {
                            errs.push(format!("GET_TILING: mode {}, expected {}", g.tiling_mode, mode));
                        }
                    }
                    Ok((ret, _)) => errs.push(format!("GET_TILING: ret {} ({})", ret, errno_name(ret))),
                    Err(e) => errs.push(e),
                }
            }
            Ok((ret, _)) => errs.push(format!("SET_TILING mode {}: ret {} ({})", mode, ret, errno_name(ret))),
            Err(e) => errs.push(e),
        }
    }

    // SET_MMAP_MODE (no response; the seqno must still advance).
    let target = i2.unwrap_or(i1);
    let res_id = st.bos[target].bo.res_id;
    let conn = st.conn()?;
    match conn.sync(&SetMmapModeReq { res_id, flags: I915_MMAP_OFFSET_WB }) {
        Ok(_) => info(format!("SET_MMAP_MODE(res_id {}, WB): seqno {} published", res_id, conn.last_seqno())),
        Err(e) => errs.push(format!("SET_MMAP_MODE: {}", e)),
    }
    join(errs)
}

/// 8. GEM_CONTEXT_CREATE with ENGINES + RECOVERABLE=0.
fn check_context_create(st: &mut State) -> CheckResult {
    st.exec_ctx = None;
    let (ctx, copy) = st.exec_ctx()?;
    info(format!(
        "GEM_CONTEXT_CREATE(USE_EXTENSIONS, ENGINES [rcs0{}], RECOVERABLE 0): ctx_id {}",
        if copy.is_some() { ", bcs0" } else { "" },
        ctx
    ));
    let conn = st.conn()?;
    let gp =
        GemContextGetparam(GemContextParam { ctx_id: ctx, size: 0, param: I915_CONTEXT_PARAM_RECOVERABLE, value: 0 });
    let (ret, out) = simple(conn, &gp)?;
    expect_ret("CONTEXT_GETPARAM RECOVERABLE", ret, 0)?;
    if out.0.value != 0 {
        return Err(format!("RECOVERABLE reads back {}, expected 0", out.0.value));
    }
    Ok(())
}

/// Basic SDI batch (dword + qword) into a fresh target; returns the target index.
fn sdi_exec(st: &mut State, errs: &mut Vec<String>) -> Result<usize, String> {
    let (ctx, _) = st.exec_ctx()?;
    let target = st.new_bo(4096)?;
    let batch = st.new_bo(4096)?;
    st.bos[target].bo.fill(0).map_err(e2s)?;
    let t = st.bos[target].va;
    let mut b = mi::Batch::new();
    b.store_dword_imm(t, 0xc0ff_ee01).store_qword_imm(t + 8, 0x1122_3344_5566_7788).end();
    let len = write_batch(st, batch, &b)?;
    let (ret, waited) = run_exec(st, ctx, 0, &[(target, true), (batch, false)], len, EXEC_TIMEOUT)?;
    info(format!("EXECBUFFER2 SDI batch on ring 1: ret {} fence after {:.1} ms", ret, waited.as_secs_f64() * 1e3));
    expect_ret("EXECBUFFER2 (SDI)", ret, 0)?;
    let tb = &st.bos[target].bo;
    check_u32(tb, 0, 0xc0ff_ee01, "MI_STORE_DATA_IMM dword", errs);
    check_u64(tb, 8, 0x1122_3344_5566_7788, "MI_STORE_DATA_IMM qword", errs);
    st.target = Some(target);
    Ok(target)
}

/// 9. EXECBUFFER2.
fn check_execbuffer(st: &mut State) -> CheckResult {
    let mut errs = Vec::new();
    let target = sdi_exec(st, &mut errs)?;
    let (ctx, copy) = st.exec_ctx()?;
    let t = st.bos[target].va;

    // Second batch: SRM timestamp, PIPE_CONTROL write, COPY_MEM_MEM, chain.
    let batch = st.new_bo(4096)?;
    let batch2 = st.new_bo(4096)?;
    {
        let tb = &st.bos[target].bo;
        tb.write_u32(0x40, 0xdead_beef).map_err(e2s)?;
        tb.write_u32(0x58, 0x1357_9bdf).map_err(e2s)?;
    }
    let b2va = st.bos[batch2].va;
    let mut b = mi::Batch::new();
    b.store_register_mem(mi::RCS_BASE + mi::RING_TIMESTAMP, t + 0x40)
        .pipe_control_write_imm(t + 0x48, 0xa5a5_a5a5_5a5a_5a5a)
        .copy_mem_mem(t + 0x60, t + 0x58)
        .batch_buffer_start(b2va, false);
    let len = write_batch(st, batch, &b)?;
    let mut b2 = mi::Batch::new();
    b2.store_dword_imm(t + 0x68, 0x600d_f00d).end();
    write_batch(st, batch2, &b2)?;
    match run_exec(st, ctx, 0, &[(target, true), (batch2, false), (batch, false)], len, EXEC_TIMEOUT) {
        Ok((ret, waited)) => {
            info(format!(
                "EXECBUFFER2 SRM/PIPE_CONTROL/COPY_MEM_MEM/chained batch: ret {} fence after {:.1} ms",
                ret,
                waited.as_secs_f64() * 1e3
            ));
            if let Err(e) = expect_ret("EXECBUFFER2 (second batch)", ret, 0) {
                errs.push(e);
            }
            let tb = &st.bos[target].bo;
            match tb.read_u32(0x40) {
                Ok(0xdead_beef) => errs.push("MI_STORE_REGISTER_MEM: RCS TIMESTAMP not stored".into()),
                Ok(v) => info(format!("RCS TIMESTAMP (0x2358) = {:#x}", v)),
                Err(e) => errs.push(e.to_string()),
            }
            check_u64(tb, 0x48, 0xa5a5_a5a5_5a5a_5a5a, "PIPE_CONTROL write immediate", &mut errs);
            check_u32(tb, 0x60, 0x1357_9bdf, "MI_COPY_MEM_MEM", &mut errs);
            check_u32(tb, 0x68, 0x600d_f00d, "chained MI_BATCH_BUFFER_START", &mut errs);
        }
        Err(e) => errs.push(format!("second batch: {}", e)),
    }

    // MI_FLUSH_DW with post-sync write on the blitter, if mapped.
    match copy {
        Some(idx) => {
            let batch3 = st.new_bo(4096)?;
            let mut b3 = mi::Batch::new();
            b3.flush_dw_store_imm(t + 0x70, 0xb117_b117_0000_b117).end();
            let len = write_batch(st, batch3, &b3)?;
            match run_exec(st, ctx, idx, &[(target, true), (batch3, false)], len, EXEC_TIMEOUT) {
                Ok((ret, _)) => {
                    info(format!(
                        "EXECBUFFER2 MI_FLUSH_DW on bcs0 (engine index {}, ring {}): ret {}",
                        idx,
                        idx + 1,
                        ret
                    ));
                    if let Err(e) = expect_ret("EXECBUFFER2 (blitter)", ret, 0) {
                        errs.push(e);
                    }
                    check_u64(&st.bos[target].bo, 0x70, 0xb117_b117_0000_b117, "MI_FLUSH_DW post-sync", &mut errs);
                }
                Err(e) => errs.push(format!("blitter batch: {}", e)),
            }
        }
        None => info("no copy engine in the engine map: MI_FLUSH_DW skipped"),
    }
    join(errs)
}

/// 10. GEM_BUSY + VIRTGPU_WAIT.
fn check_busy_wait(st: &mut State) -> CheckResult {
    let target = match st.target {
        Some(t) => t,
        None => {
            let mut errs = Vec::new();
            let t = sdi_exec(st, &mut errs)?;
            join(errs)?;
            t
        }
    };
    let (res_id, handle) = (st.bos[target].bo.res_id, st.bos[target].bo.handle);
    let conn = st.conn()?;
    let r = conn.sync(&GemBusyReq { res_id }).map_err(|e| format!("GEM_BUSY: {}", e))?;
    info(format!("GEM_BUSY(res_id {}): ret {} busy {:#x}", res_id, r.ret, r.busy));
    expect_ret("GEM_BUSY", r.ret, 0)?;
    if r.busy != 0 {
        return Err(format!("GEM_BUSY: busy {:#x} after the fence signalled", r.busy));
    }
    conn.virtgpu_wait(handle, false).map_err(e2s)?;
    conn.virtgpu_wait(handle, true).map_err(|e| format!("{} (NOWAIT after completion)", e))?;
    Ok(())
}

/// Runs `body` on the context `ctx`, then `destroy` on it exactly once, whether
/// `body` succeeded, failed part way or returned early. Destroying twice would be
/// wrong as soon as the id is reused: i915 hands out the lowest free context id, so
/// a second GEM_CONTEXT_DESTROY can hit a newer context with the same id. Both
/// results are reported.
fn run_then_destroy<S>(
    st: &mut S,
    ctx: u32,
    body: impl FnOnce(&mut S, u32) -> CheckResult,
    destroy: impl FnOnce(&mut S, u32) -> CheckResult,
) -> CheckResult {
    let errs: Vec<String> = [body(st, ctx), destroy(st, ctx)].into_iter().filter_map(Result::err).collect();
    join(errs)
}

/// The bit of `ctx` in `banned_ctx_mask`, which only covers ids below 64.
fn banned_bit(ctx: u32) -> Option<u64> {
    1u64.checked_shl(ctx)
}

/// 11. Hang + ban.
fn check_hang_ban(st: &mut State) -> CheckResult {
    let ctx = create_context(st.conn()?, &[(I915_ENGINE_CLASS_RENDER, 0)], true)?;
    run_then_destroy(st, ctx, hang_ban_inner, destroy_banned_context)
}

/// GEM_CONTEXT_DESTROY of the banned context; its bit leaves `banned_ctx_mask`.
fn destroy_banned_context(st: &mut State, ctx: u32) -> CheckResult {
    let conn = st.conn()?;
    destroy_context(conn, ctx)?;
    match (conn.banned_ctx_mask(), banned_bit(ctx)) {
        (Some(m), Some(bit)) if m & bit != 0 => {
            Err(format!("banned_ctx_mask {:#x} still has bit {} after GEM_CONTEXT_DESTROY", m, ctx))
        }
        (Some(m), _) => {
            info(format!("after GEM_CONTEXT_DESTROY: banned_ctx_mask = {:#x}", m));
            Ok(())
        }
        (None, _) => Ok(()),
    }
}

/// Everything of check 11 but the final GEM_CONTEXT_DESTROY.
fn hang_ban_inner(st: &mut State, ctx: u32) -> CheckResult {
    let Some(bit) = banned_bit(ctx) else {
        return Err(format!("context id {} >= 64 is not tracked in banned_ctx_mask", ctx));
    };
    let hang = st.new_bo(4096)?;
    let va = st.bos[hang].va;
    let mut b = mi::Batch::new();
    b.batch_buffer_start(va, false); // jump to itself forever
    let len = write_batch(st, hang, &b)?;
    let timeout = st.opts.hang_timeout;
    let start = Instant::now();
    let (ret, waited) = run_exec(st, ctx, 0, &[(hang, false)], len, timeout)
        .map_err(|e| format!("hung batch: {} (the host must declare a hang)", e))?;
    info(format!("hung batch on ctx {}: ret {}, out-fence signalled after {:.2} s", ctx, ret, waited.as_secs_f64()));
    expect_ret("EXECBUFFER2 (hanging batch submission)", ret, 0)?;
    let mut errs = Vec::new();
    if start.elapsed() > HANG_EXPECTED {
        errs.push(format!("hang detected only after {:.1} s (> 15 s)", start.elapsed().as_secs_f64()));
    }

    // Next execbuffer on the banned context: ret EIO, banned bit set.
    let nop = st.new_bo(4096)?;
    let mut b = mi::Batch::new();
    b.end();
    let len = write_batch(st, nop, &b)?;
    match run_exec(st, ctx, 0, &[(nop, false)], len, EXEC_TIMEOUT) {
        Ok((ret, _)) => {
            info(format!("EXECBUFFER2 after the hang: ret {} ({})", ret, errno_name(ret)));
            if ret != EIO {
                errs.push(format!("EXECBUFFER2 after hang: ret {}, expected EIO", ret));
            }
        }
        Err(e) => errs.push(format!("EXECBUFFER2 after hang: {}", e)),
    }
    let conn = st.conn()?;
    match conn.banned_ctx_mask() {
        Some(m) => {
            info(format!("banned_ctx_mask = {:#x}", m));
            if m & bit == 0 {
                errs.push(format!("banned_ctx_mask {:#x} lacks bit {}", m, ctx));
            }
        }
        None => errs.push("shmem has no banned_ctx_mask".into()),
    }
    match simple(conn, &ResetStats { ctx_id: ctx, ..Default::default() }) {
        Ok((0, r)) => {
            info(format!(
                "GET_RESET_STATS ctx {}: reset_count {} batch_active {} batch_pending {}",
                ctx, r.reset_count, r.batch_active, r.batch_pending
            ));
            if r.batch_active < 1 {
                errs.push(format!("GET_RESET_STATS: batch_active {}, expected >= 1", r.batch_active));
            }
        }
        Ok((ret, _)) => errs.push(format!("GET_RESET_STATS: ret {} ({})", ret, errno_name(ret))),
        Err(e) => errs.push(e),
    }
    join(errs)
}

/// 12. (--negative) A rejected ccmd is detected and the connection survives.
fn check_rejected_ccmd(st: &mut State) -> CheckResult {
    let conn = st.conn()?;
    let before = conn.shmem_seqno();
    let bad = IoctlSimpleReq::raw(DRM_IOCTL_I915_GEM_MADVISE, GemMadvise::default().to_bytes());
    let start = Instant::now();
    match conn.sync(&bad) {
        Err(Error::Rejected { seqno, shmem_seqno, sentinel_intact, .. }) => {
            info(format!(
                "IOCTL_SIMPLE(GEM_MADVISE {:#x}) rejected after {:.1} ms: seqno {} not published (shmem {}), sentinel intact {:?}",
                DRM_IOCTL_I915_GEM_MADVISE,
                start.elapsed().as_secs_f64() * 1e3,
                seqno,
                shmem_seqno,
                sentinel_intact
            ));
            if shmem_seqno != before {
                return Err(format!("shmem seqno moved from {} to {}", before, shmem_seqno));
            }
            if sentinel_intact != Some(true) {
                return Err("response slot was modified by a rejected ccmd".into());
            }
        }
        Ok(r) => return Err(format!("non-allow-listed ioctl was accepted (ret {})", r.ret)),
        Err(e) => return Err(format!("expected a rejection, got: {}", e)),
    }
    // Drain the host's stale response into the scratch slot (errata §A.3),
    // then prove the connection still works.
    conn.sync(&SetMmapModeReq { res_id: 0, flags: I915_MMAP_OFFSET_WB })
        .map_err(|e| format!("after rejection, SET_MMAP_MODE: {}", e))?;
    let r = getparam(conn, I915_PARAM_CHIPSET_ID)?;
    expect_ret("GETPARAM after rejection", r.ret, 0)?;
    info(format!("connection still works: CHIPSET_ID {:#x}", r.value));
    Ok(())
}

/// 13. Teardown and reopen.
fn check_teardown(st: &mut State) -> CheckResult {
    st.ensure_conn()?;
    let mut errs = Vec::new();
    let mut conn = st.conn.take().ok_or("no connection")?;
    if let Some(c) = st.exec_ctx.take() {
        if let Err(e) = destroy_context(&mut conn, c.ctx_id) {
            errs.push(e);
        }
    }
    let n = st.bos.len();
    for g in st.bos.drain(..) {
        if let Err(e) = g.bo.close(&conn) {
            errs.push(e.to_string());
        }
    }
    st.target = None;
    info(format!("closed {} BOs", n));
    if let Err(e) = conn.close() {
        errs.push(format!("closing the connection: {}", e));
    }

    // Reopen: a fresh context and shmem, GETPARAM works again.
    match open_device(&st.opts.device).and_then(|d| Connection::init(d, Some(DEBUG_NAME), st.opts.verbose).map_err(e2s))
    {
        Ok(mut c) => {
            if c.rsp_mem_offset != 16 || c.initial_seqno != 0 {
                errs.push(format!("reopened shmem: rsp_mem_offset {} seqno {}", c.rsp_mem_offset, c.initial_seqno));
            }
            match getparam(&mut c, I915_PARAM_CHIPSET_ID) {
                Ok(r) if r.ret == 0 && r.value as u32 == TGL_GT2_DEVICE_ID => {
                    info(format!("reopened: GETPARAM CHIPSET_ID {:#x}", r.value))
                }
                Ok(r) => errs.push(format!("reopened GETPARAM: ret {} value {:#x}", r.ret, r.value)),
                Err(e) => errs.push(format!("reopened: {}", e)),
            }
            if let Err(e) = c.close() {
                errs.push(format!("closing the reopened connection: {}", e));
            }
        }
        Err(e) => errs.push(format!("reopen: {}", e)),
    }
    join(errs)
}

// ---------------------------------------------------------------------------

/// `--bench n`: n synchronous GETPARAM(CHIPSET_ID) ccmds through the upstream uAPI.
fn bench(opts: &Opts, n: u32) -> Result<(), String> {
    let dev = open_device(&opts.device)?;
    let mut conn = Connection::init(dev, Some(DEBUG_NAME), false).map_err(e2s)?;
    let mut us: Vec<f64> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let r = getparam(&mut conn, I915_PARAM_CHIPSET_ID)?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
        if r.ret != 0 {
            return Err(format!("GETPARAM ret {}", r.ret));
        }
    }
    us.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
    println!("bench getparam-vdrm: median {:.1} us p90 {:.1} us over {} ops", at(0.5), at(0.9), n);
    Ok(())
}

/// `--bench-bo n`: n times BO create + map + one write + close, through the upstream uAPI.
fn bench_bo(opts: &Opts, n: u32) -> Result<(), String> {
    let dev = open_device(&opts.device)?;
    let mut conn = Connection::init(dev, Some(DEBUG_NAME), false).map_err(e2s)?;
    let mut us: Vec<f64> = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = std::time::Instant::now();
        let bo = Bo::create(&mut conn, 4096).map_err(e2s)?;
        bo.write_u32(0, i).map_err(e2s)?;
        bo.close(&conn).map_err(e2s)?;
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
    println!("bench bo-vdrm: median {:.1} us p90 {:.1} us over {} ops", at(0.5), at(0.9), n);
    Ok(())
}

/// `--bench-exec n`: n execbuffers of an empty batch (MI_BATCH_BUFFER_END) on the render
/// engine through the upstream uAPI, as the seed design's Mesa submits them: the CPU time of
/// the submit, and the time until its out-fence signals.
fn bench_exec(opts: &Opts, n: u32) -> Result<(), String> {
    let dev = open_device(&opts.device)?;
    let mut conn = Connection::init(dev, Some(DEBUG_NAME), false).map_err(e2s)?;
    let bo = Bo::create(&mut conn, 4096).map_err(e2s)?;
    let mut b = mi::Batch::new();
    b.end();
    bo.write_bytes(0, &b.to_bytes()).map_err(e2s)?;
    let req = Execbuffer2Req {
        flags: I915_EXEC_NO_RELOC,
        context_id: 0,
        batch_start_offset: 0,
        batch_len: 0,
        objects: vec![ExecObject2 {
            handle: bo.res_id,
            offset: VA_BASE,
            flags: EXEC_OBJECT_PINNED | EXEC_OBJECT_SUPPORTS_48B_ADDRESS,
            ..Default::default()
        }],
        relocs: Vec::new(),
    };
    let (mut submit, mut total) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
    for _ in 0..n {
        let t = std::time::Instant::now();
        let p = conn.exec_submit(&req, &[bo.handle]).map_err(e2s)?;
        submit.push(t.elapsed().as_secs_f64() * 1e6);
        let (rsp, _) = conn.exec_wait(p, Duration::from_secs(10)).map_err(e2s)?;
        total.push(t.elapsed().as_secs_f64() * 1e6);
        if rsp.ret != 0 {
            return Err(format!("EXECBUFFER2 ret {}", rsp.ret));
        }
    }
    for (name, us) in [("exec-submit-vdrm", &mut submit), ("exec-done-vdrm", &mut total)] {
        us.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
        println!("bench {}: median {:.1} us p90 {:.1} us over {} ops", name, at(0.5), at(0.9), n);
    }
    bo.close(&conn).map_err(e2s)?;
    Ok(())
}

fn main() {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            eprintln!("virtio-intel-client: {}", e);
            std::process::exit(2);
        }
    };
    if let Some(n) = opts.bench_exec {
        if let Err(e) = bench_exec(&opts, n) {
            eprintln!("virtio-intel-client: bench-exec: {}", e);
            std::process::exit(1);
        }
        return;
    }
    if let Some(n) = opts.bench_bo {
        if let Err(e) = bench_bo(&opts, n) {
            eprintln!("virtio-intel-client: bench-bo: {}", e);
            std::process::exit(1);
        }
        return;
    }
    if let Some(n) = opts.bench {
        if let Err(e) = bench(&opts, n) {
            eprintln!("virtio-intel-client: bench: {}", e);
            std::process::exit(1);
        }
        return;
    }
    let selected: Vec<&Check> = CHECKS
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            if opts.only.is_empty() {
                !c.negative || opts.negative
            } else {
                opts.only.iter().any(|n| n == c.name || *n == (i + 1).to_string())
            }
        })
        .map(|(_, c)| c)
        .collect();

    let mut st = State {
        opts,
        conn: None,
        conn_error: None,
        engines: None,
        exec_ctx: None,
        bos: Vec::new(),
        target: None,
        next_va: VA_BASE,
    };
    let (mut passed, mut failed) = (0, 0);
    for c in selected {
        let r = catch_unwind(AssertUnwindSafe(|| (c.run)(&mut st))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            Err(format!("internal error (panic): {}", msg))
        });
        match r {
            Ok(()) => {
                passed += 1;
                println!("ok - {}", c.name);
            }
            Err(e) => {
                failed += 1;
                println!("not ok - {}: {}", c.name, e.replace('\n', " "));
            }
        }
    }
    println!("{} passed, {} failed", passed, failed);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the fake checks did: every call with its context id.
    #[derive(Default)]
    struct Calls {
        body: Vec<u32>,
        destroy: Vec<u32>,
    }

    fn destroy_ok(c: &mut Calls, ctx: u32) -> CheckResult {
        c.destroy.push(ctx);
        Ok(())
    }

    #[test]
    fn a_failed_check_destroys_its_context_once() {
        let mut c = Calls::default();
        let r = run_then_destroy(
            &mut c,
            3,
            |c, ctx| {
                c.body.push(ctx);
                Err("no ban".into())
            },
            destroy_ok,
        );
        assert_eq!(r, Err("no ban".to_string()));
        assert_eq!((c.body, c.destroy), (vec![3], vec![3]));
    }

    #[test]
    fn a_passing_check_destroys_its_context_once() {
        let mut c = Calls::default();
        let r = run_then_destroy(
            &mut c,
            5,
            |c, ctx| {
                c.body.push(ctx);
                Ok(())
            },
            destroy_ok,
        );
        assert_eq!(r, Ok(()));
        assert_eq!((c.body, c.destroy), (vec![5], vec![5]));
    }

    #[test]
    fn check_and_destroy_errors_are_both_reported() {
        let mut c = Calls::default();
        let r = run_then_destroy(
            &mut c,
            7,
            |_, _| Err("hang not detected".into()),
            |c, ctx| {
                c.destroy.push(ctx);
                Err("GEM_CONTEXT_DESTROY(7): ret 2".into())
            },
        );
        assert_eq!(r, Err("hang not detected; GEM_CONTEXT_DESTROY(7): ret 2".to_string()));
        assert_eq!(c.destroy, vec![7], "not retried");
    }

    #[test]
    fn banned_bits_exist_below_64_only() {
        assert_eq!(banned_bit(0), Some(1));
        assert_eq!(banned_bit(63), Some(1 << 63));
        assert_eq!(banned_bit(64), None);
        assert_eq!(banned_bit(u32::MAX), None);
    }
}
