// SPDX-License-Identifier: MIT
//! Device profiles: what a real GPU's i915 answers to `GETPARAM`, `QUERY`,
//! `REG_READ` and the few fixed numbers around them.
//!
//! The host has no Intel GPU, so every value the guest's Mesa (iris, ANV) and
//! IGT see must be made up here, and it must be the value a real i915 on the
//! real part would give. The only profile is `tgl-gt2`: TigerLake-LP GT2,
//! PCI 8086:9A49, as driven by Linux 7.x i915 with its defaults
//! (`enable_guc=0` on TGL, so execlists submission and no HuC; PXP not usable).
//!
//! # Where the values come from
//!
//! Sources: `drivers/gpu/drm/i915/{i915_getparam.c, i915_query.c, i915_ioctl.c,
//! i915_pci.c, i915_gem.c, i915_driver.h}`, `gt/{intel_engine_cs.c,
//! intel_engine_user.c, intel_sseu.c, intel_gt_clock_utils.c}`,
//! `gt/uc/{intel_uc.c, intel_huc.c}`, `pxp/intel_pxp.c`, `gem/i915_gem_mman.c`,
//! `i915_perf.c` and `include/uapi/drm/i915_drm.h`. Read, not copied.
//!
//! | item | TGL value | why |
//! |---|---|---|
//! | `CHIPSET_ID`, `REVISION` | 0x9a49, 1 | `pdev->device` / `pdev->revision`; production TGL-LP GT2 is revision 01 (the shim says 0) |
//! | `HAS_GEM`, `HAS_EXECBUF2`, `HAS_EXEC_*`, `MMAP_VERSION`, `HAS_USERPTR_PROBE`, … | 1 | the "always true" group of `i915_getparam_ioctl` (the shim says 0 for `USERPTR_PROBE`) |
//! | `IRQ_ACTIVE`, `ALLOW_BATCHBUFFER`, `LAST_DISPATCH`, `HAS_EXEC_CONSTANTS` | `ENODEV` | removed UMS/DRI1 params |
//! | `NUM_FENCES_AVAIL` | 32 | gen ≥ 7 with a mappable aperture |
//! | `HAS_OVERLAY`, `HAS_WT`, `HAS_SECURE_BATCHES`, `HAS_RESOURCE_STREAMER`, `HAS_POOLED_EU`, `MIN_EU_IN_POOL`, `CMD_PARSER_VERSION`, `MMAP_GTT_COHERENT` | 0 | no overlay / eDRAM; secure batches only before gen6; no BXT pooled EUs; the command parser is only used on gen7 and the gen9 blitter; `has_coherent_ggtt = false` from gen11 |
//! | `HAS_BSD`, `HAS_BSD2`, `HAS_BLT`, `HAS_VEBOX` | 1 | uabi engines vcs0, vcs1, bcs0, vecs0 exist |
//! | `HAS_LLC` | 1 | `has_llc` inherited from gen6 features |
//! | `HAS_ALIASING_PPGTT` | 2 | `INTEL_PPGTT_FULL`, 48 bit |
//! | `HAS_SEMAPHORES` | 1 | `caps.scheduler & SEMAPHORES` |
//! | `HAS_GPU_RESET` | 2 | hangcheck on, engine reset (`reset=3` default) |
//! | `HAS_SCHEDULER` | 0x1f | execlists engines: ENABLED, PRIORITY, PREEMPTION, SEMAPHORES, ENGINE_BUSY_STATS; no STATIC_PRIORITY_MAP (GuC only) |
//! | `HUC_STATUS` | `EOPNOTSUPP` | `enable_guc=0` on TGL leaves the HuC firmware DISABLED |
//! | `HAS_CONTEXT_ISOLATION` | 0xf | bitmask of uabi classes whose engines have a default context image: render, copy, video, video-enhance (the shim says 1) |
//! | `CS_TIMESTAMP_FREQUENCY`, `OA_TIMESTAMP_FREQUENCY` | 19 200 000 | gen11+ derives it from the crystal clock and CTC shift in `RPM_CONFIG0` (board fuses, so not fixed by the source); TGL-LP parts report 19.2 MHz. The shim's 12 500 000 is Mesa's gfx8 devinfo default inherited by its gfx12 table, not a kernel value |
//! | `MMAP_GTT_VERSION` | 5 | `i915_gem_mmap_gtt_version()` (the virtio caller clamps to 4; the shim says 4) |
//! | `PERF_REVISION` | 7 | `i915_perf_ioctl_version()` (6 only on early MTL steppings; the shim says 3) |
//! | `SLICE_MASK`, `SUBSLICE_MASK`, `SUBSLICE_TOTAL`, `EU_TOTAL` | 1, 0x3f, 6, 96 | `gen12_sseu_info_init`: 1 slice, 6 DSS, 16 EUs per DSS (fuse bits are EU pairs) |
//! | `PXP_STATUS` | `ENODEV` | `intel_pxp_get_readiness_status` without a usable PXP (no `CONFIG_DRM_I915_PXP` or no mei-pxp). The host cannot do protected content, so this is the only honest answer (the shim says 1) |
//! | `HAS_CONTEXT_FREQ_HINT` | success, value −22 | i915 stores `-EINVAL` in the *value* and returns 0 when GuC submission is off; it is not an ioctl error (the shim fails with ENOENT) |
//! | any other param | `EINVAL` | `default:` |
//!
//! Queries (`DRM_I915_QUERY`), in the order i915 checks things:
//!
//! | id | TGL answer |
//! |---|---|
//! | 0 | the whole ioctl fails with `EINVAL` (not per item) |
//! | 1 `TOPOLOGY_INFO` | flags ≠ 0 → −EINVAL; else 30 bytes: 16-byte header (max 1/6/16, subslice_offset 1, stride 1, eu_offset 2, eu_stride 2), slice mask 0x01, DSS mask 0x3f, 6 × `ff ff` |
//! | 2 `ENGINE_INFO` | flags ≠ 0 → −EINVAL; else 16 + 5 × 56 = 296 bytes: rcs0, bcs0, vcs0, vcs1, vecs0 (uabi order: class, then physical instance); every entry has `HAS_LOGICAL_INSTANCE`; vcs caps HEVC\|SFC (both physical vcs0 and vcs2 are even, so both have an SFC), vecs caps SFC. The shim reports only rcs0 + bcs0 (128 bytes) |
//! | 3 `PERF_CONFIG` | flags not 1/2/3 → −EINVAL; else −ENODEV: the host has no OA unit, so it answers like an i915 whose perf support did not initialise (a real TGL with OA would list its configs) |
//! | 4 `MEMORY_REGIONS` | flags ≠ 0 → −EINVAL; else 16 + 88 = 104 bytes: one region, system memory (class 0, instance 0); stolen memory is private and not listed. `unallocated_size` = `probed_size`: i915 does not track system memory, so even a `CAP_PERFMON` caller gets the total (`intel_memory_region_avail()`; IGT `i915_query@query-regions-sanity-check` asserts it) |
//! | 5 `HWCONFIG_BLOB` | −ENODEV (no GuC hwconfig table before DG2/MTL); the shim says −EINVAL |
//! | 6 `GEOMETRY_SUBSLICES` | −ENODEV for any flags: the graphics IP check (< 12.55) comes before the engine lookup |
//! | 7 `GUC_SUBMISSION_VERSION` | −ENODEV (execlists); the shim says −EINVAL |
//! | ≥ 8 | −EINVAL |
//!
//! Other numbers: DRM version 1.6.0 (`DRIVER_MAJOR/MINOR/PATCHLEVEL`); PCI
//! 0000:00:02.0; `CONTEXT_GETPARAM(GTT_SIZE)` = 2^48 (full 48-bit PPGTT);
//! `GEM_GET_APERTURE.aper_size` = 4 GiB, which is `ggtt->vm.total` (the whole
//! GGTT from an 8 MiB GSM), *not* the 256 MiB CPU-mappable GMADR window;
//! `REG_READ` accepts only the RCS timestamp 0x2358 (64-bit read) and 0x2359
//! (the same with `I915_REG_READ_8B_WA`, read as two 32-bit halves).
//!
//! The system memory size is host-specific on real hardware
//! (`totalram_pages() << PAGE_SHIFT`); the profile carries a nominal 16 GiB and
//! [`memory_regions_blob`] lets the caller report the guest's real size.
//!
//! Errors: [`Profile::getparam`] returns positive errno values (what the
//! ioctl fails with); [`Profile::query`] returns the negative errno i915 puts
//! into `drm_i915_query_item.length`. [`Profile::answer_query_item`] applies
//! i915's item-length protocol on top of [`Profile::query`].

// A uapi table: not every constant is used by every build of the host.
#![allow(dead_code)]

/// Errno values used here (Linux, all architectures the host runs on).
pub(crate) mod errno {
    /// Bad address.
    pub(crate) const EFAULT: i32 = 14;
    /// No such device.
    pub(crate) const ENODEV: i32 = 19;
    /// Invalid argument.
    pub(crate) const EINVAL: i32 = 22;
    /// Operation not supported.
    pub(crate) const EOPNOTSUPP: i32 = 95;
}

/// `I915_PARAM_*` numbers from `i915_drm.h`.
pub(crate) mod param {
    pub(crate) const IRQ_ACTIVE: i32 = 1;
    pub(crate) const ALLOW_BATCHBUFFER: i32 = 2;
    pub(crate) const LAST_DISPATCH: i32 = 3;
    pub(crate) const CHIPSET_ID: i32 = 4;
    pub(crate) const HAS_GEM: i32 = 5;
    pub(crate) const NUM_FENCES_AVAIL: i32 = 6;
    pub(crate) const HAS_OVERLAY: i32 = 7;
    pub(crate) const HAS_PAGEFLIPPING: i32 = 8;
    pub(crate) const HAS_EXECBUF2: i32 = 9;
    pub(crate) const HAS_BSD: i32 = 10;
    pub(crate) const HAS_BLT: i32 = 11;
    pub(crate) const HAS_RELAXED_FENCING: i32 = 12;
    pub(crate) const HAS_COHERENT_RINGS: i32 = 13;
    pub(crate) const HAS_EXEC_CONSTANTS: i32 = 14;
    pub(crate) const HAS_RELAXED_DELTA: i32 = 15;
    pub(crate) const HAS_GEN7_SOL_RESET: i32 = 16;
    pub(crate) const HAS_LLC: i32 = 17;
    pub(crate) const HAS_ALIASING_PPGTT: i32 = 18;
    pub(crate) const HAS_WAIT_TIMEOUT: i32 = 19;
    pub(crate) const HAS_SEMAPHORES: i32 = 20;
    pub(crate) const HAS_PRIME_VMAP_FLUSH: i32 = 21;
    pub(crate) const HAS_VEBOX: i32 = 22;
    pub(crate) const HAS_SECURE_BATCHES: i32 = 23;
    pub(crate) const HAS_PINNED_BATCHES: i32 = 24;
    pub(crate) const HAS_EXEC_NO_RELOC: i32 = 25;
    pub(crate) const HAS_EXEC_HANDLE_LUT: i32 = 26;
    pub(crate) const HAS_WT: i32 = 27;
    pub(crate) const CMD_PARSER_VERSION: i32 = 28;
    pub(crate) const HAS_COHERENT_PHYS_GTT: i32 = 29;
    pub(crate) const MMAP_VERSION: i32 = 30;
    pub(crate) const HAS_BSD2: i32 = 31;
    pub(crate) const REVISION: i32 = 32;
    pub(crate) const SUBSLICE_TOTAL: i32 = 33;
    pub(crate) const EU_TOTAL: i32 = 34;
    pub(crate) const HAS_GPU_RESET: i32 = 35;
    pub(crate) const HAS_RESOURCE_STREAMER: i32 = 36;
    pub(crate) const HAS_EXEC_SOFTPIN: i32 = 37;
    pub(crate) const HAS_POOLED_EU: i32 = 38;
    pub(crate) const MIN_EU_IN_POOL: i32 = 39;
    pub(crate) const MMAP_GTT_VERSION: i32 = 40;
    pub(crate) const HAS_SCHEDULER: i32 = 41;
    pub(crate) const HUC_STATUS: i32 = 42;
    pub(crate) const HAS_EXEC_ASYNC: i32 = 43;
    pub(crate) const HAS_EXEC_FENCE: i32 = 44;
    pub(crate) const HAS_EXEC_CAPTURE: i32 = 45;
    pub(crate) const SLICE_MASK: i32 = 46;
    pub(crate) const SUBSLICE_MASK: i32 = 47;
    pub(crate) const HAS_EXEC_BATCH_FIRST: i32 = 48;
    pub(crate) const HAS_EXEC_FENCE_ARRAY: i32 = 49;
    pub(crate) const HAS_CONTEXT_ISOLATION: i32 = 50;
    pub(crate) const CS_TIMESTAMP_FREQUENCY: i32 = 51;
    pub(crate) const MMAP_GTT_COHERENT: i32 = 52;
    pub(crate) const HAS_EXEC_SUBMIT_FENCE: i32 = 53;
    pub(crate) const PERF_REVISION: i32 = 54;
    pub(crate) const HAS_EXEC_TIMELINE_FENCES: i32 = 55;
    pub(crate) const HAS_USERPTR_PROBE: i32 = 56;
    pub(crate) const OA_TIMESTAMP_FREQUENCY: i32 = 57;
    pub(crate) const PXP_STATUS: i32 = 58;
    pub(crate) const HAS_CONTEXT_FREQ_HINT: i32 = 59;
}

/// `DRM_I915_QUERY_*` item ids and the `PERF_CONFIG` item flags.
pub(crate) mod query_id {
    pub(crate) const TOPOLOGY_INFO: u64 = 1;
    pub(crate) const ENGINE_INFO: u64 = 2;
    pub(crate) const PERF_CONFIG: u64 = 3;
    pub(crate) const MEMORY_REGIONS: u64 = 4;
    pub(crate) const HWCONFIG_BLOB: u64 = 5;
    pub(crate) const GEOMETRY_SUBSLICES: u64 = 6;
    pub(crate) const GUC_SUBMISSION_VERSION: u64 = 7;

    /// `DRM_I915_QUERY_PERF_CONFIG_LIST`.
    pub(crate) const PERF_CONFIG_LIST: u32 = 1;
    /// `DRM_I915_QUERY_PERF_CONFIG_DATA_FOR_UUID`.
    pub(crate) const PERF_CONFIG_DATA_FOR_UUID: u32 = 2;
    /// `DRM_I915_QUERY_PERF_CONFIG_DATA_FOR_ID`.
    pub(crate) const PERF_CONFIG_DATA_FOR_ID: u32 = 3;
}

/// `I915_ENGINE_CLASS_*`.
pub(crate) const ENGINE_CLASS_RENDER: u16 = 0;
pub(crate) const ENGINE_CLASS_COPY: u16 = 1;
pub(crate) const ENGINE_CLASS_VIDEO: u16 = 2;
pub(crate) const ENGINE_CLASS_VIDEO_ENHANCE: u16 = 3;
pub(crate) const ENGINE_CLASS_COMPUTE: u16 = 4;

/// `I915_VIDEO_CLASS_CAPABILITY_HEVC`.
pub(crate) const CAP_VIDEO_HEVC: u64 = 1 << 0;
/// `I915_VIDEO_AND_ENHANCE_CLASS_CAPABILITY_SFC`.
pub(crate) const CAP_VIDEO_AND_ENHANCE_SFC: u64 = 1 << 1;

/// `I915_ENGINE_INFO_HAS_LOGICAL_INSTANCE`.
pub(crate) const ENGINE_INFO_HAS_LOGICAL_INSTANCE: u64 = 1 << 0;

/// `I915_SCHEDULER_CAP_*`.
pub(crate) const SCHEDULER_CAP_ENABLED: i32 = 1 << 0;
pub(crate) const SCHEDULER_CAP_PRIORITY: i32 = 1 << 1;
pub(crate) const SCHEDULER_CAP_PREEMPTION: i32 = 1 << 2;
pub(crate) const SCHEDULER_CAP_SEMAPHORES: i32 = 1 << 3;
pub(crate) const SCHEDULER_CAP_ENGINE_BUSY_STATS: i32 = 1 << 4;
pub(crate) const SCHEDULER_CAP_STATIC_PRIORITY_MAP: i32 = 1 << 5;

/// `I915_MEMORY_CLASS_SYSTEM`.
pub(crate) const MEMORY_CLASS_SYSTEM: u16 = 0;
/// `I915_MEMORY_CLASS_DEVICE`.
pub(crate) const MEMORY_CLASS_DEVICE: u16 = 1;

/// `RING_TIMESTAMP(RENDER_RING_BASE)`: the only register `REG_READ` allows.
pub(crate) const REG_RCS_TIMESTAMP: u64 = 0x2358;
/// `I915_REG_READ_8B_WA`: low offset bit asking for two 32-bit reads.
pub(crate) const REG_READ_8B_WA: u64 = 1;

/// `sizeof(struct drm_i915_query_topology_info)` without its data.
pub(crate) const TOPOLOGY_HEADER_SIZE: usize = 16;
/// `sizeof(struct drm_i915_query_engine_info)` without its engines.
pub(crate) const ENGINE_INFO_HEADER_SIZE: usize = 16;
/// `sizeof(struct drm_i915_engine_info)`.
pub(crate) const ENGINE_INFO_ENTRY_SIZE: usize = 56;
/// `sizeof(struct drm_i915_query_memory_regions)` without its regions.
pub(crate) const MEMORY_REGIONS_HEADER_SIZE: usize = 16;
/// `sizeof(struct drm_i915_memory_region_info)`.
pub(crate) const MEMORY_REGION_ENTRY_SIZE: usize = 88;
/// `sizeof(struct drm_i915_query_guc_submission_version)`.
pub(crate) const GUC_SUBMISSION_VERSION_SIZE: usize = 16;

/// The profile used when `VIRTIO_INTEL_HOST_PROFILE` is unset.
pub(crate) const DEFAULT_PROFILE: &str = "tgl-gt2";

/// One engine as reported by DRM_I915_QUERY_ENGINE_INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Engine {
    pub(crate) class: u16,
    pub(crate) instance: u16,
    pub(crate) capabilities: u64,
}

/// What a real GPU's i915 reports.
#[derive(Debug)]
pub(crate) struct Profile {
    /// Profile name, e.g. "tgl-gt2".
    pub(crate) name: &'static str,
    /// PCI device id (`CHIPSET_ID`).
    pub(crate) pci_device_id: u16,
    /// PCI revision (`REVISION`, sysfs `revision`).
    pub(crate) pci_revision: u8,
    pub(crate) pci_bus: u32,
    pub(crate) pci_dev: u32,
    pub(crate) pci_func: u32,
    pub(crate) pci_domain: u32,
    /// i915's DRIVER_MAJOR/MINOR/PATCHLEVEL.
    pub(crate) drm_version: (u32, u32, u32),
    /// `DRM_IOCTL_VERSION` name.
    pub(crate) drm_name: &'static str,
    /// `DRM_IOCTL_VERSION` description.
    pub(crate) drm_desc: &'static str,
    /// CONTEXT_GETPARAM(GTT_SIZE) with full ppgtt (48-bit).
    pub(crate) gtt_size: u64,
    /// GEM_GET_APERTURE `aper_size`: i915 reports `ggtt->vm.total`, the whole GGTT.
    pub(crate) aperture_size: u64,
    /// The CPU-mappable part of the GGTT (GMADR BAR); informational.
    pub(crate) mappable_aperture_size: u64,
    /// CS timestamp frequency in Hz.
    pub(crate) cs_timestamp_frequency: u32,
    /// OA report timestamp frequency in Hz (equal to the CS one before DG2).
    pub(crate) oa_timestamp_frequency: u32,
    /// Engines in i915's uabi order.
    pub(crate) engines: &'static [Engine],
    /// `logical_instance` of each engine, same order as `engines`.
    pub(crate) engine_logical_instances: &'static [u16],
    /// Bytes reported for the system memory region (`probed_size`).
    pub(crate) system_memory: u64,
    /// Graphics IP version (major, minor): 12.0 for TGL.
    pub(crate) graphics_ver: (u8, u8),
    /// Topology: sseu `max_slices`.
    pub(crate) max_slices: u16,
    /// Topology: sseu `max_subslices` (DSS on gen12).
    pub(crate) max_subslices: u16,
    /// Topology: sseu `max_eus_per_subslice`.
    pub(crate) max_eus_per_subslice: u16,
    /// Enabled slices.
    pub(crate) slice_mask: u8,
    /// Enabled subslices in every enabled slice.
    pub(crate) subslice_mask: u32,
    /// Enabled EUs in every enabled subslice.
    pub(crate) eu_mask: u16,
    /// `HAS_LLC`.
    pub(crate) has_llc: bool,
    /// `HAS_ALIASING_PPGTT` (`INTEL_PPGTT_*`).
    pub(crate) ppgtt_type: i32,
    /// `NUM_FENCES_AVAIL`.
    pub(crate) num_fences: i32,
    /// `HAS_GPU_RESET`.
    pub(crate) gpu_reset: i32,
    /// `HAS_SCHEDULER` (`I915_SCHEDULER_CAP_*`).
    pub(crate) scheduler_caps: i32,
    /// `HAS_CONTEXT_ISOLATION` (bitmask of uabi engine classes).
    pub(crate) context_isolation: i32,
    /// `MMAP_GTT_VERSION`, before any clamping by the caller.
    pub(crate) mmap_gtt_version: i32,
    /// `PERF_REVISION`.
    pub(crate) perf_revision: i32,
    /// `CMD_PARSER_VERSION`.
    pub(crate) cmd_parser_version: i32,
    /// `MMAP_GTT_COHERENT`.
    pub(crate) mmap_gtt_coherent: bool,
    /// `HUC_STATUS`: value or positive errno.
    pub(crate) huc_status: Result<i32, i32>,
    /// `PXP_STATUS`: value or positive errno.
    pub(crate) pxp_status: Result<i32, i32>,
    /// Whether GuC submission is in use (gates FREQ_HINT, GUC_SUBMISSION_VERSION, STATIC_PRIORITY_MAP).
    pub(crate) guc_submission: bool,
    /// GuC submission interface version (major, minor, patch) when `guc_submission`.
    pub(crate) guc_submission_version: (u32, u32, u32),
    /// GuC hwconfig table; empty = none (`HWCONFIG_BLOB` gives -ENODEV).
    pub(crate) hwconfig_blob: &'static [u8],
    /// Whether i915-perf (OA) is available; the host has none.
    pub(crate) perf_available: bool,
    /// Whether `I915_GEM_CREATE_EXT_SET_PAT` is accepted (graphics IP 12.70+);
    /// i915 fails it with `ENODEV` before that.
    pub(crate) has_set_pat: bool,
}

/// What the query ioctl does with one `drm_i915_query_item`, see
/// [`Profile::answer_query_item`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryReply {
    /// Only `item.length` is written back (the size, or a negative errno).
    Length(i32),
    /// `data` is copied to `item.data_ptr` and `length` into `item.length`.
    Data { length: i32, data: Vec<u8> },
}

const TGL_GT2_ENGINES: [Engine; 5] = [
    Engine { class: ENGINE_CLASS_RENDER, instance: 0, capabilities: 0 },
    Engine { class: ENGINE_CLASS_COPY, instance: 0, capabilities: 0 },
    // Physical vcs0.
    Engine { class: ENGINE_CLASS_VIDEO, instance: 0, capabilities: CAP_VIDEO_HEVC | CAP_VIDEO_AND_ENHANCE_SFC },
    // Physical vcs2 (TGL has no vcs1): uabi instance 1, even physical id, so it has its own SFC.
    Engine { class: ENGINE_CLASS_VIDEO, instance: 1, capabilities: CAP_VIDEO_HEVC | CAP_VIDEO_AND_ENHANCE_SFC },
    Engine { class: ENGINE_CLASS_VIDEO_ENHANCE, instance: 0, capabilities: CAP_VIDEO_AND_ENHANCE_SFC },
];

// Logical ids: render/copy/vebox are identity; video uses the {0,2,4,6,1,3,5,7}
// physical order, so physical vcs0 -> 0 and vcs2 -> 1.
const TGL_GT2_LOGICAL: [u16; 5] = [0, 0, 0, 1, 0];

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

static TGL_GT2: Profile = Profile {
    name: "tgl-gt2",
    pci_device_id: 0x9a49,
    pci_revision: 1,
    pci_bus: 0,
    pci_dev: 2,
    pci_func: 0,
    pci_domain: 0,
    drm_version: (1, 6, 0),
    drm_name: "i915",
    drm_desc: "Intel Graphics",
    gtt_size: 1 << 48,
    aperture_size: 4 * GIB,
    mappable_aperture_size: 256 * MIB,
    cs_timestamp_frequency: 19_200_000,
    oa_timestamp_frequency: 19_200_000,
    engines: &TGL_GT2_ENGINES,
    engine_logical_instances: &TGL_GT2_LOGICAL,
    system_memory: 16 * GIB,
    graphics_ver: (12, 0),
    max_slices: 1,
    max_subslices: 6,
    max_eus_per_subslice: 16,
    slice_mask: 0x1,
    subslice_mask: 0x3f,
    eu_mask: 0xffff,
    has_llc: true,
    ppgtt_type: 2,
    num_fences: 32,
    gpu_reset: 2,
    scheduler_caps: SCHEDULER_CAP_ENABLED
        | SCHEDULER_CAP_PRIORITY
        | SCHEDULER_CAP_PREEMPTION
        | SCHEDULER_CAP_SEMAPHORES
        | SCHEDULER_CAP_ENGINE_BUSY_STATS,
    context_isolation: (1 << ENGINE_CLASS_RENDER)
        | (1 << ENGINE_CLASS_COPY)
        | (1 << ENGINE_CLASS_VIDEO)
        | (1 << ENGINE_CLASS_VIDEO_ENHANCE),
    mmap_gtt_version: 5,
    perf_revision: 7,
    cmd_parser_version: 0,
    mmap_gtt_coherent: false,
    huc_status: Err(errno::EOPNOTSUPP),
    pxp_status: Err(errno::ENODEV),
    guc_submission: false,
    guc_submission_version: (0, 0, 0),
    hwconfig_blob: &[],
    perf_available: false,
    has_set_pat: false,
};

static PROFILES: [&Profile; 1] = [&TGL_GT2];

/// The profile selected by name (`VIRTIO_INTEL_HOST_PROFILE`, default "tgl-gt2").
pub(crate) fn by_name(name: &str) -> Option<&'static Profile> {
    let name = name.trim();
    let name = if name.is_empty() { DEFAULT_PROFILE } else { name };
    PROFILES.iter().copied().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Names of all profiles, for error messages.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|p| p.name)
}

/// Whether a query item with this id makes i915 fail the whole
/// `DRM_IOCTL_I915_QUERY` with `EINVAL` instead of writing a per-item error.
pub(crate) const fn query_id_fails_ioctl(query_id: u64) -> bool {
    query_id == 0
}

/// `drm_i915_query_memory_regions` with the single system-memory region of an
/// integrated part, sized `system_memory` bytes. i915 does not track how much system
/// memory is in use, so its unallocated sizes are the totals for every caller, with or
/// without `CAP_PERFMON` (only device-local regions report live values).
pub(crate) fn memory_regions_blob(system_memory: u64) -> Vec<u8> {
    let unallocated = system_memory;
    let mut out = Vec::with_capacity(MEMORY_REGIONS_HEADER_SIZE + MEMORY_REGION_ENTRY_SIZE);
    // Header: num_regions, rsvd[3].
    put_u32(&mut out, 1);
    put_zeros(&mut out, 12);
    // drm_i915_memory_region_info.
    put_u16(&mut out, MEMORY_CLASS_SYSTEM); // region.memory_class
    put_u16(&mut out, 0); // region.memory_instance
    put_u32(&mut out, 0); // rsvd0
    put_u64(&mut out, system_memory); // probed_size
    put_u64(&mut out, unallocated); // unallocated_size (system memory: the total)
    put_u64(&mut out, system_memory); // probed_cpu_visible_size (smem: all of it)
    put_u64(&mut out, unallocated); // unallocated_cpu_visible_size
    put_zeros(&mut out, 6 * 8); // rest of rsvd1[8]
    out
}

impl Profile {
    /// DRM_IOCTL_I915_GETPARAM: Ok(value) or Err(positive errno) exactly as i915 would (EINVAL for unknown params, ENODEV where i915 returns that, etc.).
    pub(crate) fn getparam(&self, param: i32) -> Result<i32, i32> {
        use self::param as p;
        let v = match param {
            p::IRQ_ACTIVE | p::ALLOW_BATCHBUFFER | p::LAST_DISPATCH | p::HAS_EXEC_CONSTANTS => {
                return Err(errno::ENODEV)
            }
            p::CHIPSET_ID => i32::from(self.pci_device_id),
            p::REVISION => i32::from(self.pci_revision),
            p::NUM_FENCES_AVAIL => self.num_fences,
            p::HAS_OVERLAY => 0,
            p::HAS_BSD => i32::from(self.has_engine(ENGINE_CLASS_VIDEO, 0)),
            p::HAS_BLT => i32::from(self.has_engine(ENGINE_CLASS_COPY, 0)),
            p::HAS_VEBOX => i32::from(self.has_engine(ENGINE_CLASS_VIDEO_ENHANCE, 0)),
            p::HAS_BSD2 => i32::from(self.has_engine(ENGINE_CLASS_VIDEO, 1)),
            p::HAS_LLC => i32::from(self.has_llc),
            p::HAS_WT => 0,
            p::HAS_ALIASING_PPGTT => self.ppgtt_type,
            p::HAS_SEMAPHORES => i32::from(self.scheduler_caps & SCHEDULER_CAP_SEMAPHORES != 0),
            p::HAS_SECURE_BATCHES => 0,
            p::CMD_PARSER_VERSION => self.cmd_parser_version,
            p::SUBSLICE_TOTAL => nonzero_or_enodev(self.subslice_total())?,
            p::EU_TOTAL => nonzero_or_enodev(self.eu_total())?,
            p::HAS_GPU_RESET => self.gpu_reset,
            p::HAS_RESOURCE_STREAMER => 0,
            p::HAS_POOLED_EU => 0,
            p::MIN_EU_IN_POOL => 0,
            p::HUC_STATUS => self.huc_status?,
            p::PXP_STATUS => self.pxp_status?,
            p::MMAP_GTT_VERSION => self.mmap_gtt_version,
            p::HAS_SCHEDULER => self.scheduler_caps,
            p::MMAP_VERSION
            | p::HAS_GEM
            | p::HAS_PAGEFLIPPING
            | p::HAS_EXECBUF2
            | p::HAS_RELAXED_FENCING
            | p::HAS_COHERENT_RINGS
            | p::HAS_RELAXED_DELTA
            | p::HAS_GEN7_SOL_RESET
            | p::HAS_WAIT_TIMEOUT
            | p::HAS_PRIME_VMAP_FLUSH
            | p::HAS_PINNED_BATCHES
            | p::HAS_EXEC_NO_RELOC
            | p::HAS_EXEC_HANDLE_LUT
            | p::HAS_COHERENT_PHYS_GTT
            | p::HAS_EXEC_SOFTPIN
            | p::HAS_EXEC_ASYNC
            | p::HAS_EXEC_FENCE
            | p::HAS_EXEC_CAPTURE
            | p::HAS_EXEC_BATCH_FIRST
            | p::HAS_EXEC_FENCE_ARRAY
            | p::HAS_EXEC_SUBMIT_FENCE
            | p::HAS_EXEC_TIMELINE_FENCES
            | p::HAS_USERPTR_PROBE => 1,
            // Not an error: i915 writes -EINVAL into the value and succeeds.
            p::HAS_CONTEXT_FREQ_HINT => {
                if self.guc_submission {
                    1
                } else {
                    -errno::EINVAL
                }
            }
            p::HAS_CONTEXT_ISOLATION => self.context_isolation,
            p::SLICE_MASK => {
                if self.is_xehp_or_later() {
                    return Err(errno::EINVAL);
                }
                nonzero_or_enodev(i32::from(self.slice_mask))?
            }
            p::SUBSLICE_MASK => {
                if self.is_xehp_or_later() {
                    return Err(errno::EINVAL);
                }
                // Only the first slice's subslices, as an int.
                let first = if self.slice_mask & 1 != 0 { self.subslice_mask } else { 0 };
                nonzero_or_enodev(first as i32)?
            }
            p::CS_TIMESTAMP_FREQUENCY => self.cs_timestamp_frequency as i32,
            p::MMAP_GTT_COHERENT => i32::from(self.mmap_gtt_coherent),
            p::PERF_REVISION => self.perf_revision,
            p::OA_TIMESTAMP_FREQUENCY => self.oa_timestamp_frequency as i32,
            _ => return Err(errno::EINVAL),
        };
        Ok(v)
    }

    /// The full data of one DRM_I915_QUERY item (what i915 writes when the user's length is large enough), or Err(negative errno) as i915 puts into item.length for a per-item failure (e.g. -EINVAL for unknown query ids or nonzero flags where not allowed, -ENODEV for HWCONFIG_BLOB on TGL). `flags` is the item's flags field.
    ///
    /// Query id 0 gives `Err(-EINVAL)` here, but i915 fails the whole ioctl
    /// for it (see [`query_id_fails_ioctl`]).
    pub(crate) fn query(&self, query_id: u64, flags: u32) -> Result<Vec<u8>, i32> {
        match query_id {
            query_id::TOPOLOGY_INFO => {
                if flags != 0 {
                    return Err(-errno::EINVAL);
                }
                self.topology_blob()
            }
            query_id::ENGINE_INFO => {
                if flags != 0 {
                    return Err(-errno::EINVAL);
                }
                Ok(self.engine_info_blob())
            }
            query_id::PERF_CONFIG => match flags {
                query_id::PERF_CONFIG_LIST
                | query_id::PERF_CONFIG_DATA_FOR_UUID
                | query_id::PERF_CONFIG_DATA_FOR_ID => {
                    // Without i915-perf every valid sub-query is -ENODEV. The
                    // host implements no OA, so it never claims to have it.
                    Err(-errno::ENODEV)
                }
                _ => Err(-errno::EINVAL),
            },
            query_id::MEMORY_REGIONS => {
                if flags != 0 {
                    return Err(-errno::EINVAL);
                }
                Ok(memory_regions_blob(self.system_memory))
            }
            query_id::HWCONFIG_BLOB => {
                if self.hwconfig_blob.is_empty() {
                    Err(-errno::ENODEV)
                } else {
                    Ok(self.hwconfig_blob.to_vec())
                }
            }
            query_id::GEOMETRY_SUBSLICES => {
                if !self.is_xehp_or_later() {
                    return Err(-errno::ENODEV);
                }
                // flags is a struct i915_engine_class_instance {u16 class; u16 instance}.
                let class = (flags & 0xffff) as u16;
                let instance = (flags >> 16) as u16;
                // i915 looks the engine up with u8-truncated class/instance.
                let found = self
                    .engines
                    .iter()
                    .find(|e| e.class == u16::from(class as u8) && e.instance == u16::from(instance as u8));
                match found {
                    Some(e) if e.class == ENGINE_CLASS_RENDER => self.topology_blob(),
                    _ => Err(-errno::EINVAL),
                }
            }
            query_id::GUC_SUBMISSION_VERSION => {
                if !self.guc_submission {
                    return Err(-errno::ENODEV);
                }
                let (major, minor, patch) = self.guc_submission_version;
                let mut out = Vec::with_capacity(GUC_SUBMISSION_VERSION_SIZE);
                put_u32(&mut out, 0); // branch
                put_u32(&mut out, major);
                put_u32(&mut out, minor);
                put_u32(&mut out, patch);
                Ok(out)
            }
            _ => Err(-errno::EINVAL),
        }
    }

    /// One query item through i915's whole per-item protocol.
    ///
    /// `user_length` is `item.length` as the guest passed it; `user_data` is
    /// what is at `item.data_ptr` (the caller may pass fewer bytes than
    /// `user_length` if it could not read them; a header i915 needs to read
    /// and cannot gives `-EFAULT`). Order as in i915: per-query flag and
    /// availability checks, then length 0 → report the size, length too small
    /// → `-EINVAL`, then the input-header checks (`ENGINE_INFO` and
    /// `MEMORY_REGIONS` need the first 16 bytes zero; `GUC_SUBMISSION_VERSION`
    /// all 16). The length comparison is unsigned, as in i915, so a negative
    /// `user_length` counts as huge.
    ///
    /// `Err(EINVAL)` (positive) means the whole ioctl fails (query id 0).
    /// `PERF_CONFIG` and `HWCONFIG_BLOB` only reach their data through the
    /// same path here; on TGL both fail before any length handling.
    pub(crate) fn answer_query_item(
        &self,
        query_id: u64,
        flags: u32,
        user_length: i32,
        user_data: &[u8],
    ) -> Result<QueryReply, i32> {
        if query_id_fails_ioctl(query_id) {
            return Err(errno::EINVAL);
        }
        let data = match self.query(query_id, flags) {
            Ok(d) => d,
            Err(e) => return Ok(QueryReply::Length(e)),
        };
        let total = match i32::try_from(data.len()) {
            Ok(t) => t,
            Err(_) => return Ok(QueryReply::Length(-errno::EINVAL)),
        };
        if user_length == 0 {
            return Ok(QueryReply::Length(total));
        }
        if (user_length as u32) < (total as u32) {
            return Ok(QueryReply::Length(-errno::EINVAL));
        }
        let header_len = match query_id {
            query_id::ENGINE_INFO => ENGINE_INFO_HEADER_SIZE,
            query_id::MEMORY_REGIONS => MEMORY_REGIONS_HEADER_SIZE,
            query_id::GUC_SUBMISSION_VERSION => GUC_SUBMISSION_VERSION_SIZE,
            query_id::TOPOLOGY_INFO | query_id::GEOMETRY_SUBSLICES => TOPOLOGY_HEADER_SIZE,
            _ => 0,
        };
        let header = match user_data.get(..header_len) {
            Some(h) => h,
            None => return Ok(QueryReply::Length(-errno::EFAULT)),
        };
        let must_be_zero =
            matches!(query_id, query_id::ENGINE_INFO | query_id::MEMORY_REGIONS | query_id::GUC_SUBMISSION_VERSION);
        if must_be_zero && header.iter().any(|&b| b != 0) {
            return Ok(QueryReply::Length(-errno::EINVAL));
        }
        // GUC_SUBMISSION_VERSION returns 0, not its size, on success.
        let length = if query_id == query_id::GUC_SUBMISSION_VERSION { 0 } else { total };
        Ok(QueryReply::Data { length, data })
    }

    /// Whether DRM_IOCTL_I915_REG_READ allows this register offset (i915's whitelist: the RCS timestamp and its 8B/UDW/LDW variants on gen12), returning the register width in bytes.
    ///
    /// Accepted: 0x2358 (one 64-bit read) and 0x2359 (`I915_REG_READ_8B_WA`:
    /// upper and lower dwords read separately). Anything else, including the
    /// UDW address 0x235c, fails with `EINVAL`.
    pub(crate) fn reg_read_width(&self, offset: u64) -> Option<u32> {
        let (major, _) = self.graphics_ver;
        if !(4..=12).contains(&major) {
            return None;
        }
        const SIZE: u64 = 8;
        if offset & !(SIZE - 1) != REG_RCS_TIMESTAMP {
            return None;
        }
        match offset & (SIZE - 1) {
            0 | REG_READ_8B_WA => Some(SIZE as u32),
            _ => None,
        }
    }

    /// Whether `GEM_CREATE_EXT_MEMORY_REGIONS` may name this region: the
    /// regions `MEMORY_REGIONS` lists (i915 rejects missing and private ones,
    /// such as stolen memory, with `EINVAL`). An iGPU has system memory 0:0 only.
    pub(crate) fn has_memory_region(&self, class: u16, instance: u16) -> bool {
        class == MEMORY_CLASS_SYSTEM && instance == 0
    }

    /// Whether a uabi engine with this class and instance exists.
    pub(crate) fn has_engine(&self, class: u16, instance: u16) -> bool {
        self.engines.iter().any(|e| e.class == class && e.instance == instance)
    }

    /// `SUBSLICE_TOTAL`: enabled subslices over all enabled slices.
    pub(crate) fn subslice_total(&self) -> i32 {
        let slices = (self.slice_mask & self.valid_slice_bits()).count_ones();
        let per_slice = (self.subslice_mask & self.valid_subslice_bits()).count_ones();
        (slices * per_slice) as i32
    }

    /// `EU_TOTAL`: enabled EUs over all enabled subslices.
    pub(crate) fn eu_total(&self) -> i32 {
        self.subslice_total() * (self.eu_mask & self.valid_eu_bits()).count_ones() as i32
    }

    fn is_xehp_or_later(&self) -> bool {
        self.graphics_ver >= (12, 55)
    }

    fn valid_slice_bits(&self) -> u8 {
        low_bits_u32(u32::from(self.max_slices)) as u8
    }

    fn valid_subslice_bits(&self) -> u32 {
        low_bits_u32(u32::from(self.max_subslices))
    }

    fn valid_eu_bits(&self) -> u16 {
        low_bits_u32(u32::from(self.max_eus_per_subslice)) as u16
    }

    /// `drm_i915_query_topology_info` followed by the slice, subslice and EU masks.
    fn topology_blob(&self) -> Result<Vec<u8>, i32> {
        if self.max_slices == 0 {
            return Err(-errno::ENODEV);
        }
        let max_s = usize::from(self.max_slices);
        let max_ss = usize::from(self.max_subslices);
        let ss_stride = usize::from(self.max_subslices).div_ceil(8);
        let eu_stride = usize::from(self.max_eus_per_subslice).div_ceil(8);
        let slice_len = 1; // sizeof(sseu->slice_mask)
        let subslice_len = max_s * ss_stride;
        let eu_len = max_s * max_ss * eu_stride;
        let total = TOPOLOGY_HEADER_SIZE + slice_len + subslice_len + eu_len;

        let mut out = Vec::with_capacity(total);
        put_u16(&mut out, 0); // flags
        put_u16(&mut out, self.max_slices);
        put_u16(&mut out, self.max_subslices);
        put_u16(&mut out, self.max_eus_per_subslice);
        put_u16(&mut out, slice_len as u16); // subslice_offset
        put_u16(&mut out, ss_stride as u16); // subslice_stride
        put_u16(&mut out, (slice_len + subslice_len) as u16); // eu_offset
        put_u16(&mut out, eu_stride as u16); // eu_stride

        let slices = self.slice_mask & self.valid_slice_bits();
        let subslices = self.subslice_mask & self.valid_subslice_bits();
        let eus = self.eu_mask & self.valid_eu_bits();
        out.push(slices);

        let mut ss_bytes = vec![0u8; subslice_len];
        let mut eu_bytes = vec![0u8; eu_len];
        for s in 0..max_s {
            if !bit_set(u32::from(slices), s) {
                continue;
            }
            for ss in 0..max_ss {
                if !bit_set(subslices, ss) {
                    continue;
                }
                let bit = s * ss_stride * 8 + ss;
                set_bit(&mut ss_bytes, bit);
                for eu in 0..usize::from(self.max_eus_per_subslice) {
                    if !bit_set(u32::from(eus), eu) {
                        continue;
                    }
                    let bit = ((s * max_ss + ss) * eu_stride) * 8 + eu;
                    set_bit(&mut eu_bytes, bit);
                }
            }
        }
        out.extend_from_slice(&ss_bytes);
        out.extend_from_slice(&eu_bytes);
        Ok(out)
    }

    /// `drm_i915_query_engine_info` with one `drm_i915_engine_info` per engine.
    fn engine_info_blob(&self) -> Vec<u8> {
        let n = self.engines.len();
        let mut out = Vec::with_capacity(ENGINE_INFO_HEADER_SIZE + n * ENGINE_INFO_ENTRY_SIZE);
        put_u32(&mut out, n as u32); // num_engines
        put_zeros(&mut out, 12); // rsvd[3]
        for (i, e) in self.engines.iter().enumerate() {
            let logical = self.engine_logical_instances.get(i).copied().unwrap_or(e.instance);
            put_u16(&mut out, e.class); // engine.engine_class
            put_u16(&mut out, e.instance); // engine.engine_instance
            put_u32(&mut out, 0); // rsvd0
            put_u64(&mut out, ENGINE_INFO_HAS_LOGICAL_INSTANCE); // flags
            put_u64(&mut out, e.capabilities);
            put_u16(&mut out, logical); // logical_instance
            put_zeros(&mut out, 6); // rsvd1[3]
            put_zeros(&mut out, 24); // rsvd2[3]
        }
        out
    }
}

fn nonzero_or_enodev(v: i32) -> Result<i32, i32> {
    if v == 0 {
        Err(errno::ENODEV)
    } else {
        Ok(v)
    }
}

fn bit_set(mask: u32, bit: usize) -> bool {
    u32::try_from(bit).ok().and_then(|b| mask.checked_shr(b)).is_some_and(|v| v & 1 != 0)
}

fn set_bit(bytes: &mut [u8], bit: usize) {
    if let Some(b) = bytes.get_mut(bit / 8) {
        *b |= 1 << (bit % 8);
    }
}

fn low_bits_u32(n: u32) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1u32 << n) - 1
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgl() -> &'static Profile {
        by_name("tgl-gt2").expect("tgl-gt2 profile")
    }

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes([b[off], b[off + 1]])
    }

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn selection() {
        assert!(std::ptr::eq(by_name("tgl-gt2").unwrap(), &TGL_GT2));
        assert!(std::ptr::eq(by_name("").unwrap(), &TGL_GT2));
        assert!(std::ptr::eq(by_name(" TGL-GT2 ").unwrap(), &TGL_GT2));
        assert!(by_name("skl-gt2").is_none());
        assert!(by_name("nonsense").is_none());
        assert_eq!(names().collect::<Vec<_>>(), vec!["tgl-gt2"]);
        assert_eq!(DEFAULT_PROFILE, "tgl-gt2");
    }

    #[test]
    fn identity() {
        let p = tgl();
        assert_eq!(p.pci_device_id, 0x9a49);
        assert_eq!((p.pci_domain, p.pci_bus, p.pci_dev, p.pci_func), (0, 0, 2, 0));
        assert_eq!(p.drm_version, (1, 6, 0));
        assert_eq!(p.drm_name, "i915");
        // Same as the trace's CONTEXT_GETPARAM(GTT_SIZE) val_out=0x1000000000000.
        assert_eq!(p.gtt_size, 0x1_0000_0000_0000);
        assert_eq!(p.aperture_size, 1 << 32);
        assert_eq!(p.engines.len(), p.engine_logical_instances.len());
    }

    #[test]
    fn getparam_values_seen_in_traces() {
        let p = tgl();
        // Values the traces show and a real TGL agrees with.
        for (param, want) in [
            (param::HAS_WAIT_TIMEOUT, 1),
            (param::HAS_EXECBUF2, 1),
            (param::HAS_EXEC_SOFTPIN, 1),
            (param::HAS_EXEC_FENCE_ARRAY, 1),
            (param::HAS_EXEC_ASYNC, 1),
            (param::HAS_EXEC_CAPTURE, 1),
            (param::HAS_EXEC_TIMELINE_FENCES, 1),
            (param::MMAP_VERSION, 1),
            (param::CHIPSET_ID, 0x9a49),
        ] {
            assert_eq!(p.getparam(param), Ok(want), "param {param}");
        }
        // Values where the real kernel differs from the shim's trace.
        assert_eq!(p.getparam(param::REVISION), Ok(1));
        assert_eq!(p.getparam(param::CS_TIMESTAMP_FREQUENCY), Ok(19_200_000));
        assert_eq!(p.getparam(param::MMAP_GTT_VERSION), Ok(5));
        assert_eq!(p.getparam(param::HAS_USERPTR_PROBE), Ok(1));
        assert_eq!(p.getparam(param::HAS_CONTEXT_ISOLATION), Ok(0xf));
        assert_eq!(p.getparam(param::HAS_CONTEXT_FREQ_HINT), Ok(-22));
        assert_eq!(p.getparam(param::PXP_STATUS), Err(errno::ENODEV));
        assert_eq!(p.getparam(param::PERF_REVISION), Ok(7));
    }

    #[test]
    fn getparam_other_values() {
        let p = tgl();
        for (param, want) in [
            (param::HAS_GEM, Ok(1)),
            (param::NUM_FENCES_AVAIL, Ok(32)),
            (param::HAS_OVERLAY, Ok(0)),
            (param::HAS_PAGEFLIPPING, Ok(1)),
            (param::HAS_BSD, Ok(1)),
            (param::HAS_BLT, Ok(1)),
            (param::HAS_VEBOX, Ok(1)),
            (param::HAS_BSD2, Ok(1)),
            (param::HAS_RELAXED_FENCING, Ok(1)),
            (param::HAS_COHERENT_RINGS, Ok(1)),
            (param::HAS_RELAXED_DELTA, Ok(1)),
            (param::HAS_GEN7_SOL_RESET, Ok(1)),
            (param::HAS_LLC, Ok(1)),
            (param::HAS_ALIASING_PPGTT, Ok(2)),
            (param::HAS_SEMAPHORES, Ok(1)),
            (param::HAS_PRIME_VMAP_FLUSH, Ok(1)),
            (param::HAS_SECURE_BATCHES, Ok(0)),
            (param::HAS_PINNED_BATCHES, Ok(1)),
            (param::HAS_EXEC_NO_RELOC, Ok(1)),
            (param::HAS_EXEC_HANDLE_LUT, Ok(1)),
            (param::HAS_WT, Ok(0)),
            (param::CMD_PARSER_VERSION, Ok(0)),
            (param::HAS_COHERENT_PHYS_GTT, Ok(1)),
            (param::SUBSLICE_TOTAL, Ok(6)),
            (param::EU_TOTAL, Ok(96)),
            (param::HAS_GPU_RESET, Ok(2)),
            (param::HAS_RESOURCE_STREAMER, Ok(0)),
            (param::HAS_POOLED_EU, Ok(0)),
            (param::MIN_EU_IN_POOL, Ok(0)),
            (param::HAS_SCHEDULER, Ok(0x1f)),
            (param::HUC_STATUS, Err(errno::EOPNOTSUPP)),
            (param::HAS_EXEC_FENCE, Ok(1)),
            (param::SLICE_MASK, Ok(1)),
            (param::SUBSLICE_MASK, Ok(0x3f)),
            (param::HAS_EXEC_BATCH_FIRST, Ok(1)),
            (param::MMAP_GTT_COHERENT, Ok(0)),
            (param::HAS_EXEC_SUBMIT_FENCE, Ok(1)),
            (param::OA_TIMESTAMP_FREQUENCY, Ok(19_200_000)),
        ] {
            assert_eq!(p.getparam(param), want, "param {param}");
        }
        assert_eq!(p.getparam(param::HAS_SCHEDULER).unwrap() & SCHEDULER_CAP_STATIC_PRIORITY_MAP, 0);
    }

    #[test]
    fn getparam_legacy_and_unknown() {
        let p = tgl();
        for legacy in [param::IRQ_ACTIVE, param::ALLOW_BATCHBUFFER, param::LAST_DISPATCH, param::HAS_EXEC_CONSTANTS] {
            assert_eq!(p.getparam(legacy), Err(errno::ENODEV), "param {legacy}");
        }
        for unknown in [0, 60, 61, 100, -1, i32::MIN, i32::MAX] {
            assert_eq!(p.getparam(unknown), Err(errno::EINVAL), "param {unknown}");
        }
        // Every param 1..=59 is known.
        for known in 1..=59 {
            assert_ne!(p.getparam(known), Err(errno::EINVAL), "param {known}");
        }
    }

    #[test]
    fn topology_info() {
        let p = tgl();
        let t = p.query(query_id::TOPOLOGY_INFO, 0).unwrap();
        assert_eq!(t.len(), 30); // as in the traces
        assert_eq!(u16_at(&t, 0), 0); // flags
        assert_eq!(u16_at(&t, 2), 1); // max_slices
        assert_eq!(u16_at(&t, 4), 6); // max_subslices
        assert_eq!(u16_at(&t, 6), 16); // max_eus_per_subslice
        assert_eq!(u16_at(&t, 8), 1); // subslice_offset
        assert_eq!(u16_at(&t, 10), 1); // subslice_stride
        assert_eq!(u16_at(&t, 12), 2); // eu_offset
        assert_eq!(u16_at(&t, 14), 2); // eu_stride
        assert_eq!(t[16], 0x01); // slice mask
        assert_eq!(t[17], 0x3f); // DSS mask of slice 0
        assert!(t[18..30].iter().all(|&b| b == 0xff));
        // EU count derived from the blob matches EU_TOTAL.
        let eus: u32 = t[18..].iter().map(|b| b.count_ones()).sum();
        assert_eq!(eus as i32, p.getparam(param::EU_TOTAL).unwrap());
        assert_eq!(p.query(query_id::TOPOLOGY_INFO, 1), Err(-errno::EINVAL));
        assert_eq!(p.query(query_id::TOPOLOGY_INFO, 0x8000_0000), Err(-errno::EINVAL));
    }

    #[test]
    fn topology_with_fused_dss() {
        // An 80-EU TGL (5 DSS) and a fused EU pair, to check bit placement.
        let p = Profile { subslice_mask: 0x1f, eu_mask: 0xfff3, ..clone_tgl() };
        let t = p.query(query_id::TOPOLOGY_INFO, 0).unwrap();
        assert_eq!(t[17], 0x1f);
        for ss in 0..5 {
            assert_eq!(&t[18 + 2 * ss..20 + 2 * ss], &[0xf3, 0xff]);
        }
        assert_eq!(&t[28..30], &[0, 0]);
        assert_eq!(p.getparam(param::SUBSLICE_TOTAL), Ok(5));
        assert_eq!(p.getparam(param::EU_TOTAL), Ok(70));
    }

    fn clone_tgl() -> Profile {
        Profile { ..TGL_GT2 }
    }

    #[test]
    fn engine_info() {
        let p = tgl();
        let e = p.query(query_id::ENGINE_INFO, 0).unwrap();
        assert_eq!(ENGINE_INFO_HEADER_SIZE + 5 * ENGINE_INFO_ENTRY_SIZE, 296);
        assert_eq!(e.len(), 296);
        assert_eq!(u32_at(&e, 0), 5);
        assert!(e[4..16].iter().all(|&b| b == 0));
        let want: [(u16, u16, u64, u16); 5] = [
            (ENGINE_CLASS_RENDER, 0, 0, 0),
            (ENGINE_CLASS_COPY, 0, 0, 0),
            (ENGINE_CLASS_VIDEO, 0, 3, 0),
            (ENGINE_CLASS_VIDEO, 1, 3, 1),
            (ENGINE_CLASS_VIDEO_ENHANCE, 0, 2, 0),
        ];
        for (i, (class, inst, caps, logical)) in want.into_iter().enumerate() {
            let o = ENGINE_INFO_HEADER_SIZE + i * ENGINE_INFO_ENTRY_SIZE;
            assert_eq!(u16_at(&e, o), class, "engine {i} class");
            assert_eq!(u16_at(&e, o + 2), inst, "engine {i} instance");
            assert_eq!(u32_at(&e, o + 4), 0, "engine {i} rsvd0");
            assert_eq!(u64_at(&e, o + 8), ENGINE_INFO_HAS_LOGICAL_INSTANCE, "engine {i} flags");
            assert_eq!(u64_at(&e, o + 16), caps, "engine {i} caps");
            assert_eq!(u16_at(&e, o + 24), logical, "engine {i} logical");
            assert!(e[o + 26..o + 56].iter().all(|&b| b == 0), "engine {i} rsvd1/2");
        }
        assert_eq!(p.query(query_id::ENGINE_INFO, 1), Err(-errno::EINVAL));
        assert!(!p.has_engine(ENGINE_CLASS_COMPUTE, 0));
    }

    #[test]
    fn memory_regions() {
        let p = tgl();
        let m = p.query(query_id::MEMORY_REGIONS, 0).unwrap();
        assert_eq!(MEMORY_REGIONS_HEADER_SIZE + MEMORY_REGION_ENTRY_SIZE, 104);
        assert_eq!(m.len(), 104); // as in the traces
        assert_eq!(u32_at(&m, 0), 1);
        assert!(m[4..16].iter().all(|&b| b == 0));
        assert_eq!(u16_at(&m, 16), MEMORY_CLASS_SYSTEM);
        assert_eq!(u16_at(&m, 18), 0);
        assert_eq!(u32_at(&m, 20), 0);
        assert_eq!(u64_at(&m, 24), p.system_memory); // probed_size
                                                     // System memory is not tracked: unallocated is the total, as i915 and IGT have it.
        let live = p.system_memory;
        assert_eq!(u64_at(&m, 32), live); // unallocated_size
        assert_eq!(u64_at(&m, 40), p.system_memory); // probed_cpu_visible_size
        assert_eq!(u64_at(&m, 48), live); // unallocated_cpu_visible_size
        assert!(m[56..104].iter().all(|&b| b == 0));
        assert_eq!(p.query(query_id::MEMORY_REGIONS, 1), Err(-errno::EINVAL));
        let custom = memory_regions_blob(3 * GIB + 123 * 4096);
        assert_eq!(custom.len(), 104);
        assert_eq!(u64_at(&custom, 24), 3 * GIB + 123 * 4096);
        assert_ne!(MEMORY_CLASS_DEVICE, MEMORY_CLASS_SYSTEM);
        assert!(p.has_memory_region(MEMORY_CLASS_SYSTEM, 0));
        assert!(!p.has_memory_region(MEMORY_CLASS_SYSTEM, 1));
        assert!(!p.has_memory_region(MEMORY_CLASS_DEVICE, 0));
        assert!(!p.has_set_pat);
    }

    #[test]
    fn queries_absent_on_tgl() {
        let p = tgl();
        for flags in [0, 1, 0x0001_0000, u32::MAX] {
            assert_eq!(p.query(query_id::HWCONFIG_BLOB, flags), Err(-errno::ENODEV));
            assert_eq!(p.query(query_id::GEOMETRY_SUBSLICES, flags), Err(-errno::ENODEV));
            assert_eq!(p.query(query_id::GUC_SUBMISSION_VERSION, flags), Err(-errno::ENODEV));
        }
        assert_eq!(p.query(query_id::PERF_CONFIG, 0), Err(-errno::EINVAL));
        assert_eq!(p.query(query_id::PERF_CONFIG, 4), Err(-errno::EINVAL));
        for f in [query_id::PERF_CONFIG_LIST, query_id::PERF_CONFIG_DATA_FOR_UUID, query_id::PERF_CONFIG_DATA_FOR_ID] {
            assert_eq!(p.query(query_id::PERF_CONFIG, f), Err(-errno::ENODEV));
        }
        assert!(!p.perf_available);
    }

    #[test]
    fn unknown_queries() {
        let p = tgl();
        for id in [0, 8, 9, 0x100, u64::MAX] {
            assert_eq!(p.query(id, 0), Err(-errno::EINVAL), "id {id}");
        }
        assert!(query_id_fails_ioctl(0));
        assert!(!query_id_fails_ioctl(8));
        assert_eq!(p.answer_query_item(0, 0, 0, &[]), Err(errno::EINVAL));
        assert_eq!(p.answer_query_item(8, 0, 0, &[]), Ok(QueryReply::Length(-errno::EINVAL)));
    }

    #[test]
    fn xehp_only_paths() {
        // Exercise the 12.55+ branches with a synthetic profile.
        let mut x = clone_tgl();
        x.graphics_ver = (12, 55);
        assert_eq!(x.getparam(param::SLICE_MASK), Err(errno::EINVAL));
        assert_eq!(x.getparam(param::SUBSLICE_MASK), Err(errno::EINVAL));
        assert_eq!(x.query(query_id::GEOMETRY_SUBSLICES, 0), x.query(query_id::TOPOLOGY_INFO, 0));
        // bcs0 = class 1, instance 0: exists but is not render.
        assert_eq!(x.query(query_id::GEOMETRY_SUBSLICES, 1), Err(-errno::EINVAL));
        // rcs1 does not exist.
        assert_eq!(x.query(query_id::GEOMETRY_SUBSLICES, 0x0001_0000), Err(-errno::EINVAL));
        x.guc_submission = true;
        x.guc_submission_version = (1, 2, 3);
        let v = x.query(query_id::GUC_SUBMISSION_VERSION, 0).unwrap();
        assert_eq!(v.len(), GUC_SUBMISSION_VERSION_SIZE);
        assert_eq!((u32_at(&v, 0), u32_at(&v, 4), u32_at(&v, 8), u32_at(&v, 12)), (0, 1, 2, 3));
        assert_eq!(x.getparam(param::HAS_CONTEXT_FREQ_HINT), Ok(1));
        let zero = [0u8; 16];
        assert_eq!(
            x.answer_query_item(query_id::GUC_SUBMISSION_VERSION, 0, 16, &zero),
            Ok(QueryReply::Data { length: 0, data: v })
        );
        x.hwconfig_blob = &[1, 2, 3, 4];
        assert_eq!(x.query(query_id::HWCONFIG_BLOB, 0), Ok(vec![1, 2, 3, 4]));
        x.max_slices = 0;
        assert_eq!(x.query(query_id::TOPOLOGY_INFO, 0), Err(-errno::ENODEV));
    }

    #[test]
    fn item_length_protocol() {
        let p = tgl();
        let zero = [0u8; 512];
        // Length 0: report the size.
        assert_eq!(p.answer_query_item(1, 0, 0, &[]), Ok(QueryReply::Length(30)));
        assert_eq!(p.answer_query_item(2, 0, 0, &[]), Ok(QueryReply::Length(296)));
        assert_eq!(p.answer_query_item(4, 0, 0, &[]), Ok(QueryReply::Length(104)));
        // Too small.
        assert_eq!(p.answer_query_item(1, 0, 29, &zero), Ok(QueryReply::Length(-22)));
        assert_eq!(p.answer_query_item(2, 0, 128, &zero), Ok(QueryReply::Length(-22)));
        // Large enough.
        let topo = p.query(1, 0).unwrap();
        assert_eq!(p.answer_query_item(1, 0, 64, &zero), Ok(QueryReply::Data { length: 30, data: topo.clone() }));
        // Negative lengths compare as unsigned in i915.
        assert_eq!(p.answer_query_item(1, 0, -1, &zero), Ok(QueryReply::Data { length: 30, data: topo }));
        // Nonzero input headers are rejected for engine info and memory regions.
        let mut dirty = [0u8; 512];
        dirty[12] = 1;
        assert_eq!(p.answer_query_item(2, 0, 296, &dirty), Ok(QueryReply::Length(-22)));
        assert_eq!(p.answer_query_item(4, 0, 104, &dirty), Ok(QueryReply::Length(-22)));
        // ... but not for topology.
        assert!(matches!(p.answer_query_item(1, 0, 30, &dirty), Ok(QueryReply::Data { .. })));
        // Unreadable header.
        assert_eq!(p.answer_query_item(2, 0, 296, &[0; 8]), Ok(QueryReply::Length(-errno::EFAULT)));
        // Per-item errors pass through before any length handling.
        assert_eq!(p.answer_query_item(5, 0, 0, &[]), Ok(QueryReply::Length(-19)));
        assert_eq!(p.answer_query_item(6, 0, 0, &[]), Ok(QueryReply::Length(-19)));
        assert_eq!(p.answer_query_item(7, 0, 0, &[]), Ok(QueryReply::Length(-19)));
        assert_eq!(p.answer_query_item(1, 1, 0, &[]), Ok(QueryReply::Length(-22)));
    }

    #[test]
    fn reg_read_whitelist() {
        let p = tgl();
        assert_eq!(p.reg_read_width(0x2358), Some(8));
        assert_eq!(p.reg_read_width(0x2358 | REG_READ_8B_WA), Some(8)); // the trace's 0x2359
        assert_eq!(p.reg_read_width(0x235c), None); // UDW alone: flags 4
        assert_eq!(p.reg_read_width(0x235a), None);
        assert_eq!(p.reg_read_width(0x235f), None);
        assert_eq!(p.reg_read_width(0x2350), None);
        assert_eq!(p.reg_read_width(0x2360), None);
        assert_eq!(p.reg_read_width(0), None);
        assert_eq!(p.reg_read_width(0x1_0000_2358), None);
        let mut x = clone_tgl();
        x.graphics_ver = (20, 0);
        assert_eq!(x.reg_read_width(0x2358), None);
    }

    #[test]
    fn struct_offsets() {
        // Spot-check the encoders' field offsets against the uapi layout.
        let e = tgl().engine_info_blob();
        assert_eq!(e.len() - ENGINE_INFO_HEADER_SIZE, tgl().engines.len() * ENGINE_INFO_ENTRY_SIZE);
        // logical_instance of the 4th engine (vcs1) sits at entry offset 24.
        assert_eq!(u16_at(&e, ENGINE_INFO_HEADER_SIZE + 3 * ENGINE_INFO_ENTRY_SIZE + 24), 1);
        let m = memory_regions_blob(0x1122_3344_5566_7788);
        assert_eq!(&m[24..32], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(TOPOLOGY_HEADER_SIZE, 8 * 2);
        assert_eq!(ENGINE_INFO_ENTRY_SIZE, 4 + 4 + 8 + 8 + 2 + 6 + 24);
        assert_eq!(MEMORY_REGION_ENTRY_SIZE, 4 + 4 + 8 + 8 + 64);
        assert_eq!(GUC_SUBMISSION_VERSION_SIZE, 4 * 4);
    }
}
