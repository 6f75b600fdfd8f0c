// SPDX-License-Identifier: MIT
//! Command lengths by the hardware's own rules, for graphics versions 9 to 12.5.
//!
//! The command streamer finds the next command from the header dword (dw0) alone, so
//! a model that gets one length wrong runs into payload as if it were commands. The
//! rules, from the public PRMs ("Command Formats") and the genxml descriptions:
//!
//! | type (dw0 31:29) | identified by | length |
//! |---|---|---|
//! | 0 MI | opcode 28:23 | opcodes 0x00-0x0f: one dword, no length field; others: `DWord Length` + 2, a field of 6, 8 or 10 bits from bit 0 (per command) |
//! | 2 2D (BLT, copy engine) | opcode 28:22 | `DWord Length` 7:0 + 2 |
//! | 3 GFXPIPE, pipeline 28:27 = 0 (common) | opcode 26:24, sub-opcode 23:16 | 7:0 + 2 |
//! | 3, pipeline 1 (single dword) | 26:16 | one dword: PIPELINE_SELECT, 3DSTATE_VF_STATISTICS, MFX_WAIT |
//! | 3, pipeline 2 (media) on render/compute | 26:16 | 15:0 + 2 (MEDIA_*), 7:0 + 2 for the walkers, whose bits 15:8 are flags |
//! | 3, pipeline 2 on video/video-enhance | 26:16 | 11:0 + 2 (MFX, HCP, VDENC, HUC, SFC, VEBOX) |
//! | 3, pipeline 3 (3D) | 26:24, 23:16 | 7:0 + 2, but 8:0 for 3DSTATE_BINDING_TABLE_EDIT_* and 3DSTATE_SO_DECL_LIST |
//! | 1, 4-7 | | reserved: no command |
//!
//! [`TABLE`] lists every command of these generations that i915 userspace (Mesa,
//! IGT, the media driver) is known to emit, with its field width or fixed length, the
//! engines that accept it and the graphics versions (× 10: 90 = gen9, 120 = gen12 TGL,
//! 125 = gen12.5 DG2) that have it. Written from the documents, not generated. A
//! header that no entry matches is decoded by the rule of its type above
//! ([`Lookup::Unknown`]) so that an unknown command is still skipped by its length.

/// Engine mask bits: which engines accept a command.
pub(crate) const RENDER: u8 = 1 << 0;
/// Copy engine (BCS).
pub(crate) const COPY: u8 = 1 << 1;
/// Video decode/encode engine (VCS).
pub(crate) const VIDEO: u8 = 1 << 2;
/// Video enhancement engine (VECS).
pub(crate) const VEBOX: u8 = 1 << 3;
/// Compute engine (CCS, gen12.5).
pub(crate) const COMPUTE: u8 = 1 << 4;
/// Every engine.
pub(crate) const ALL: u8 = RENDER | COPY | VIDEO | VEBOX | COMPUTE;
/// Render and compute: the engines with a GPGPU pipeline.
const RC: u8 = RENDER | COMPUTE;
/// Engines that execute MI_FLUSH_DW (every engine but render and compute, which use
/// PIPE_CONTROL).
const NON_RC: u8 = COPY | VIDEO | VEBOX;

/// First graphics version (× 10) the table describes.
pub(crate) const MIN_GEN: u16 = 90;
/// Last graphics version (× 10) the table describes.
pub(crate) const MAX_GEN: u16 = 125;

/// How long a command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    /// A fixed number of dwords, no length field in the header.
    Fixed(u32),
    /// `DWord Length` in bits `(n-1):0` of dw0; the command is that value + 2 dwords.
    Field(u32),
}

impl Len {
    /// Total length in dwords of the command whose header is `dw0`: at most 65 537.
    pub(crate) fn dwords(self, dw0: u32) -> u32 {
        match self {
            Len::Fixed(n) => n,
            Len::Field(bits) => (dw0 & field_mask(bits)) + 2,
        }
    }
}

/// Mask of a `bits`-wide length field at bit 0 (bits clamped to 1..=16).
fn field_mask(bits: u32) -> u32 {
    (1u32 << bits.clamp(1, 16)) - 1
}

/// One command of the table.
#[derive(Debug)]
pub(crate) struct Cmd {
    /// Name as in the PRM and genxml.
    pub(crate) name: &'static str,
    /// dw0 bits that identify the command (type, pipeline, opcodes).
    pub(crate) mask: u32,
    /// Value of those bits.
    pub(crate) key: u32,
    /// Length rule.
    pub(crate) len: Len,
    /// Engines that accept the command ([`RENDER`], [`COPY`], ...).
    pub(crate) engines: u8,
    /// First and last graphics version × 10 that have it.
    pub(crate) gens: (u16, u16),
}

/// dw0 bits of an MI command's identity: type 31:29 and opcode 28:23.
pub(crate) const MI_MASK: u32 = 0xff80_0000;
/// dw0 bits of a 2D command's identity: type 31:29 and opcode 28:22.
pub(crate) const BLT_MASK: u32 = 0xffc0_0000;
/// dw0 bits of a GFXPIPE command's identity: type, pipeline, opcode and sub-opcode (31:16).
pub(crate) const GFX_MASK: u32 = 0xffff_0000;

const fn mi(name: &'static str, op: u32, len: Len, engines: u8, gens: (u16, u16)) -> Cmd {
    Cmd { name, mask: MI_MASK, key: op << 23, len, engines, gens }
}

const fn blt(name: &'static str, op: u32, gens: (u16, u16)) -> Cmd {
    Cmd { name, mask: BLT_MASK, key: (2 << 29) | (op << 22), len: Len::Field(8), engines: COPY, gens }
}

const fn gfx(name: &'static str, hi: u32, len: Len, engines: u8, gens: (u16, u16)) -> Cmd {
    Cmd { name, mask: GFX_MASK, key: hi << 16, len, engines, gens }
}

use Len::{Field, Fixed};

const ALLG: (u16, u16) = (90, 125);
const TO12: (u16, u16) = (90, 120);
const TO11: (u16, u16) = (90, 110);
const FROM11: (u16, u16) = (110, 125);
const FROM12: (u16, u16) = (120, 125);
const ONLY125: (u16, u16) = (125, 125);

/// The command table. Each entry's key is unique among the entries that share an
/// engine and a graphics version (checked by the unit tests).
pub(crate) static TABLE: &[Cmd] = &[
    // ---- MI (type 0): opcodes below 0x10 are single dwords by the hardware's rule.
    mi("MI_NOOP", 0x00, Fixed(1), ALL, ALLG),
    mi("MI_SET_PREDICATE", 0x01, Fixed(1), ALL, FROM11),
    mi("MI_USER_INTERRUPT", 0x02, Fixed(1), ALL, ALLG),
    mi("MI_WAIT_FOR_EVENT", 0x03, Fixed(1), RENDER | COPY, ALLG),
    mi("MI_WAIT_FOR_EVENT_2", 0x04, Fixed(1), RENDER | COPY, FROM12),
    mi("MI_ARB_CHECK", 0x05, Fixed(1), ALL, ALLG),
    mi("MI_RS_CONTROL", 0x06, Fixed(1), RENDER, TO12),
    mi("MI_REPORT_HEAD", 0x07, Fixed(1), ALL, ALLG),
    mi("MI_ARB_ON_OFF", 0x08, Fixed(1), ALL, ALLG),
    mi("MI_URB_ATOMIC_ALLOC", 0x09, Fixed(1), RENDER, TO11),
    mi("MI_MEM_FENCE", 0x09, Fixed(1), ALL, ONLY125),
    mi("MI_BATCH_BUFFER_END", 0x0a, Fixed(1), ALL, ALLG),
    mi("MI_SUSPEND_FLUSH", 0x0b, Fixed(1), ALL, ALLG),
    mi("MI_PREDICATE", 0x0c, Fixed(1), RC, ALLG),
    mi("MI_TOPOLOGY_FILTER", 0x0d, Fixed(1), RENDER, ALLG),
    mi("MI_SET_APPID", 0x0e, Fixed(1), ALL, ALLG),
    mi("MI_RS_CONTEXT", 0x0f, Fixed(1), RENDER, TO12),
    mi("MI_LOAD_SCAN_LINES_INCL", 0x12, Field(6), RENDER | COPY, TO12),
    mi("MI_LOAD_SCAN_LINES_EXCL", 0x13, Field(6), RENDER | COPY, TO12),
    mi("MI_DISPLAY_FLIP", 0x14, Field(8), RENDER | COPY, TO12),
    mi("MI_SET_CONTEXT", 0x18, Field(8), RENDER, ALLG),
    mi("MI_MATH", 0x1a, Field(8), ALL, ALLG),
    mi("MI_SEMAPHORE_SIGNAL", 0x1b, Field(8), ALL, ALLG),
    mi("MI_SEMAPHORE_WAIT", 0x1c, Field(8), ALL, ALLG),
    mi("MI_FORCE_WAKEUP", 0x1d, Field(8), ALL, ALLG),
    mi("MI_STORE_DATA_IMM", 0x20, Field(10), ALL, ALLG),
    mi("MI_STORE_DATA_INDEX", 0x21, Field(8), ALL, ALLG),
    mi("MI_LOAD_REGISTER_IMM", 0x22, Field(8), ALL, ALLG),
    mi("MI_UPDATE_GTT", 0x23, Field(10), ALL, ALLG),
    mi("MI_STORE_REGISTER_MEM", 0x24, Field(8), ALL, ALLG),
    mi("MI_FLUSH_DW", 0x26, Field(6), NON_RC, ALLG),
    mi("MI_CLFLUSH", 0x27, Field(10), RENDER, ALLG),
    mi("MI_REPORT_PERF_COUNT", 0x28, Field(6), RENDER, ALLG),
    mi("MI_LOAD_REGISTER_MEM", 0x29, Field(8), ALL, ALLG),
    mi("MI_LOAD_REGISTER_REG", 0x2a, Field(8), ALL, ALLG),
    mi("MI_RS_STORE_DATA_IMM", 0x2b, Field(8), RENDER, TO12),
    mi("MI_LOAD_URB_MEM", 0x2c, Field(8), RENDER, TO12),
    mi("MI_STORE_URB_MEM", 0x2d, Field(8), RENDER, TO12),
    mi("MI_COPY_MEM_MEM", 0x2e, Field(8), ALL, ALLG),
    mi("MI_ATOMIC", 0x2f, Field(8), ALL, ALLG),
    mi("MI_BATCH_BUFFER_START", 0x31, Field(8), ALL, ALLG),
    mi("MI_CONDITIONAL_BATCH_BUFFER_END", 0x36, Field(8), ALL, ALLG),
    // ---- 2D (type 2), copy engine only; DWord Length 7:0 throughout.
    blt("XY_SETUP_BLT", 0x01, TO12),
    blt("XY_SETUP_CLIP_BLT", 0x03, TO12),
    blt("XY_SETUP_MONO_PATTERN_SL_BLT", 0x11, TO12),
    blt("XY_PIXEL_BLT", 0x24, TO12),
    blt("XY_SCANLINES_BLT", 0x25, TO12),
    blt("XY_TEXT_BLT", 0x26, TO12),
    blt("XY_TEXT_IMMEDIATE_BLT", 0x31, TO12),
    blt("XY_BLOCK_COPY_BLT", 0x41, FROM12),
    blt("XY_FAST_COPY_BLT", 0x42, ALLG),
    blt("XY_FAST_COLOR_BLT", 0x44, FROM12),
    blt("XY_CTRL_SURF_COPY_BLT", 0x48, ONLY125),
    blt("XY_COLOR_BLT", 0x50, TO12),
    blt("XY_PAT_BLT", 0x51, TO12),
    blt("XY_MONO_PAT_BLT", 0x52, TO12),
    blt("XY_SRC_COPY_BLT", 0x53, TO12),
    blt("XY_MONO_SRC_COPY_BLT", 0x54, TO12),
    blt("XY_FULL_BLT", 0x55, TO12),
    blt("XY_FULL_MONO_SRC_BLT", 0x56, TO12),
    blt("XY_FULL_MONO_PATTERN_BLT", 0x57, TO12),
    blt("XY_FULL_MONO_PATTERN_MONO_SRC_BLT", 0x58, TO12),
    blt("XY_MONO_PAT_FIXED_BLT", 0x59, TO12),
    blt("XY_MONO_SRC_COPY_IMMEDIATE_BLT", 0x71, TO12),
    blt("XY_PAT_BLT_IMMEDIATE", 0x72, TO12),
    blt("XY_SRC_COPY_CHROMA_BLT", 0x73, TO12),
    blt("XY_FULL_IMMEDIATE_PATTERN_BLT", 0x74, TO12),
    blt("XY_FULL_MONO_SRC_IMMEDIATE_PATTERN_BLT", 0x75, TO12),
    blt("XY_PAT_CHROMA_BLT", 0x76, TO12),
    blt("XY_PAT_CHROMA_BLT_IMMEDIATE", 0x77, TO12),
    // ---- GFXPIPE pipeline 0 (common state).
    gfx("STATE_BASE_ADDRESS", 0x6101, Field(8), RC, ALLG),
    gfx("STATE_SIP", 0x6102, Field(8), RC, ALLG),
    gfx("SWTESS_BASE_ADDRESS", 0x6103, Field(8), RENDER, TO11),
    gfx("GPGPU_CSR_BASE_ADDRESS", 0x6104, Field(8), RENDER, TO11),
    gfx("STATE_COMPUTE_MODE", 0x6105, Field(8), RC, ONLY125),
    // ---- pipeline 1: single-dword commands, no length field.
    gfx("MFX_WAIT", 0x6800, Fixed(1), VIDEO, ALLG),
    gfx("3DSTATE_VF_STATISTICS", 0x680b, Fixed(1), RENDER, ALLG),
    gfx("PIPELINE_SELECT", 0x6904, Fixed(1), RENDER, ALLG),
    // ---- pipeline 2 on render/compute: media and GPGPU.
    gfx("MEDIA_VFE_STATE", 0x7000, Field(16), RENDER, TO12),
    gfx("CFE_STATE", 0x7000, Field(8), RC, ONLY125),
    gfx("MEDIA_CURBE_LOAD", 0x7001, Field(16), RENDER, TO12),
    gfx("MEDIA_INTERFACE_DESCRIPTOR_LOAD", 0x7002, Field(16), RENDER, TO12),
    gfx("MEDIA_STATE_FLUSH", 0x7004, Field(16), RENDER, TO12),
    gfx("MEDIA_OBJECT", 0x7100, Field(16), RENDER, TO12),
    gfx("MEDIA_OBJECT_PRT", 0x7102, Field(16), RENDER, TO12),
    gfx("MEDIA_OBJECT_WALKER", 0x7103, Field(16), RENDER, TO12),
    gfx("MEDIA_OBJECT_GRPID", 0x7104, Field(16), RENDER, TO11),
    // Bits 15:8 of the walkers hold Predicate Enable (8) and Indirect Parameter Enable (10).
    gfx("GPGPU_WALKER", 0x7105, Field(8), RENDER, TO12),
    gfx("COMPUTE_WALKER", 0x7202, Field(8), RC, ONLY125),
    // ---- pipeline 3: 3D. Opcode 0 (0x78xx): pipelined state.
    gfx("3DSTATE_CLEAR_PARAMS", 0x7804, Field(8), RENDER, ALLG),
    gfx("3DSTATE_DEPTH_BUFFER", 0x7805, Field(8), RENDER, ALLG),
    gfx("3DSTATE_STENCIL_BUFFER", 0x7806, Field(8), RENDER, ALLG),
    gfx("3DSTATE_HIER_DEPTH_BUFFER", 0x7807, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VERTEX_BUFFERS", 0x7808, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VERTEX_ELEMENTS", 0x7809, Field(8), RENDER, ALLG),
    gfx("3DSTATE_INDEX_BUFFER", 0x780a, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VF", 0x780c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_MULTISAMPLE", 0x780d, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CC_STATE_POINTERS", 0x780e, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SCISSOR_STATE_POINTERS", 0x780f, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VS", 0x7810, Field(8), RENDER, ALLG),
    gfx("3DSTATE_GS", 0x7811, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CLIP", 0x7812, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SF", 0x7813, Field(8), RENDER, ALLG),
    gfx("3DSTATE_WM", 0x7814, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CONSTANT_VS", 0x7815, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CONSTANT_GS", 0x7816, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CONSTANT_PS", 0x7817, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLE_MASK", 0x7818, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CONSTANT_HS", 0x7819, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CONSTANT_DS", 0x781a, Field(8), RENDER, ALLG),
    gfx("3DSTATE_HS", 0x781b, Field(8), RENDER, ALLG),
    gfx("3DSTATE_TE", 0x781c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_DS", 0x781d, Field(8), RENDER, ALLG),
    gfx("3DSTATE_STREAMOUT", 0x781e, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SBE", 0x781f, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PS", 0x7820, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VIEWPORT_STATE_POINTERS_SF_CLIP", 0x7821, Field(8), RENDER, ALLG),
    // Coarse pixel shading state pointer (ANV emits it at context init on gen12).
    gfx("3DSTATE_CPS_POINTERS", 0x7822, Field(8), RENDER, FROM12),
    gfx("3DSTATE_VIEWPORT_STATE_POINTERS_CC", 0x7823, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BLEND_STATE_POINTERS", 0x7824, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POINTERS_VS", 0x7826, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POINTERS_HS", 0x7827, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POINTERS_DS", 0x7828, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POINTERS_GS", 0x7829, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POINTERS_PS", 0x782a, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_STATE_POINTERS_VS", 0x782b, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_STATE_POINTERS_HS", 0x782c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_STATE_POINTERS_DS", 0x782d, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_STATE_POINTERS_GS", 0x782e, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_STATE_POINTERS_PS", 0x782f, Field(8), RENDER, ALLG),
    gfx("3DSTATE_URB_VS", 0x7830, Field(8), RENDER, ALLG),
    gfx("3DSTATE_URB_HS", 0x7831, Field(8), RENDER, ALLG),
    gfx("3DSTATE_URB_DS", 0x7832, Field(8), RENDER, ALLG),
    gfx("3DSTATE_URB_GS", 0x7833, Field(8), RENDER, ALLG),
    gfx("3DSTATE_GATHER_CONSTANT_VS", 0x7834, Field(8), RENDER, TO11),
    gfx("3DSTATE_GATHER_CONSTANT_GS", 0x7835, Field(8), RENDER, TO11),
    gfx("3DSTATE_GATHER_CONSTANT_HS", 0x7836, Field(8), RENDER, TO11),
    gfx("3DSTATE_GATHER_CONSTANT_DS", 0x7837, Field(8), RENDER, TO11),
    gfx("3DSTATE_GATHER_CONSTANT_PS", 0x7838, Field(8), RENDER, TO11),
    // The binding table edits carry up to 511 entries: a 9-bit DWord Length.
    gfx("3DSTATE_BINDING_TABLE_EDIT_VS", 0x7843, Field(9), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_EDIT_GS", 0x7844, Field(9), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_EDIT_HS", 0x7845, Field(9), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_EDIT_DS", 0x7846, Field(9), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_EDIT_PS", 0x7847, Field(9), RENDER, ALLG),
    gfx("3DSTATE_VF_INSTANCING", 0x7849, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VF_SGVS", 0x784a, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VF_TOPOLOGY", 0x784b, Field(8), RENDER, ALLG),
    gfx("3DSTATE_WM_CHROMAKEY", 0x784c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PS_BLEND", 0x784d, Field(8), RENDER, ALLG),
    gfx("3DSTATE_WM_DEPTH_STENCIL", 0x784e, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PS_EXTRA", 0x784f, Field(8), RENDER, ALLG),
    gfx("3DSTATE_RASTER", 0x7850, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SBE_SWIZ", 0x7851, Field(8), RENDER, ALLG),
    gfx("3DSTATE_WM_HZ_OP", 0x7852, Field(8), RENDER, ALLG),
    gfx("3DSTATE_RS_CONSTANT_POINTER", 0x7854, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VF_COMPONENT_PACKING", 0x7855, Field(8), RENDER, ALLG),
    gfx("3DSTATE_VF_SGVS_2", 0x7856, Field(8), RENDER, FROM11),
    // Gen12's per-slice URB allocation (ANV's URB setup on TGL; iris uses 3DSTATE_URB_*).
    gfx("3DSTATE_URB_ALLOC_VS", 0x7858, Field(8), RENDER, FROM12),
    gfx("3DSTATE_URB_ALLOC_HS", 0x7859, Field(8), RENDER, FROM12),
    gfx("3DSTATE_URB_ALLOC_DS", 0x785a, Field(8), RENDER, FROM12),
    gfx("3DSTATE_URB_ALLOC_GS", 0x785b, Field(8), RENDER, FROM12),
    gfx("3DSTATE_SO_BUFFER_INDEX_0", 0x7860, Field(8), RENDER, FROM12),
    gfx("3DSTATE_SO_BUFFER_INDEX_1", 0x7861, Field(8), RENDER, FROM12),
    gfx("3DSTATE_SO_BUFFER_INDEX_2", 0x7862, Field(8), RENDER, FROM12),
    gfx("3DSTATE_SO_BUFFER_INDEX_3", 0x7863, Field(8), RENDER, FROM12),
    gfx("3DSTATE_PRIMITIVE_REPLICATION", 0x786c, Field(8), RENDER, FROM12),
    gfx("3DSTATE_CONSTANT_ALL", 0x786d, Field(8), RENDER, FROM12),
    gfx("3DSTATE_DEPTH_BOUNDS", 0x7871, Field(8), RENDER, FROM12),
    // Opcode 1 (0x79xx): non-pipelined state.
    gfx("3DSTATE_DRAWING_RECTANGLE", 0x7900, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_PALETTE_LOAD0", 0x7902, Field(8), RENDER, ALLG),
    gfx("3DSTATE_CHROMA_KEY", 0x7904, Field(8), RENDER, ALLG),
    gfx("3DSTATE_POLY_STIPPLE_OFFSET", 0x7906, Field(8), RENDER, ALLG),
    gfx("3DSTATE_POLY_STIPPLE_PATTERN", 0x7907, Field(8), RENDER, ALLG),
    gfx("3DSTATE_LINE_STIPPLE", 0x7908, Field(8), RENDER, ALLG),
    gfx("3DSTATE_AA_LINE_PARAMETERS", 0x790a, Field(8), RENDER, ALLG),
    gfx("3DSTATE_SAMPLER_PALETTE_LOAD1", 0x790c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_MONOFILTER_SIZE", 0x7911, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PUSH_CONSTANT_ALLOC_VS", 0x7912, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PUSH_CONSTANT_ALLOC_HS", 0x7913, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PUSH_CONSTANT_ALLOC_DS", 0x7914, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PUSH_CONSTANT_ALLOC_GS", 0x7915, Field(8), RENDER, ALLG),
    gfx("3DSTATE_PUSH_CONSTANT_ALLOC_PS", 0x7916, Field(8), RENDER, ALLG),
    // Up to 128 stream-out declarations, two per dword plus a header: 9 bits.
    gfx("3DSTATE_SO_DECL_LIST", 0x7917, Field(9), RENDER, ALLG),
    gfx("3DSTATE_SO_BUFFER", 0x7918, Field(8), RENDER, ALLG),
    gfx("3DSTATE_BINDING_TABLE_POOL_ALLOC", 0x7919, Field(8), RENDER, ALLG),
    gfx("3DSTATE_GATHER_POOL_ALLOC", 0x791a, Field(8), RENDER, TO11),
    gfx("3DSTATE_SAMPLE_PATTERN", 0x791c, Field(8), RENDER, ALLG),
    gfx("3DSTATE_URB_CLEAR", 0x791d, Field(8), RENDER, ALLG),
    gfx("3DSTATE_3D_MODE", 0x791e, Field(8), RENDER, FROM12),
    gfx("3DSTATE_SUBSLICE_HASH_TABLE", 0x791f, Field(8), RENDER, FROM11),
    gfx("3DSTATE_SLICE_TABLE_STATE_POINTERS", 0x7920, Field(8), RENDER, FROM11),
    // Opcodes 2 and 3.
    gfx("PIPE_CONTROL", 0x7a00, Field(8), RC, ALLG),
    gfx("3DPRIMITIVE", 0x7b00, Field(8), RENDER, ALLG),
];

/// The video engines' pipeline-2 command families (MFX, MFC, MFD, HCP, VDENC, HUC,
/// SFC, VEBOX): too many to list one by one, and all with a 12-bit DWord Length.
pub(crate) static VIDEO_PIPELINE: Cmd = Cmd {
    name: "video pipeline command (MFX/HCP/VDENC/HUC/SFC/VEB)",
    mask: 0xf800_0000,
    key: 0x7000_0000,
    len: Field(12),
    engines: VIDEO | VEBOX,
    gens: ALLG,
};

/// What a header decodes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup {
    /// A command of the table (or of a known family) for this engine and version.
    Known(&'static Cmd),
    /// No such command here: the length follows the rule of its command type.
    Unknown(Len),
}

impl Lookup {
    /// Total length in dwords of the command with header `dw0`.
    pub(crate) fn dwords(self, dw0: u32) -> u32 {
        match self {
            Lookup::Known(c) => c.len.dwords(dw0),
            Lookup::Unknown(l) => l.dwords(dw0),
        }
    }

    /// The command's name, or `"unknown"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lookup::Known(c) => c.name,
            Lookup::Unknown(_) => "unknown",
        }
    }
}

/// The rule of the command type when no entry matches (see the module table).
fn type_rule(dw0: u32, engine: u8) -> Len {
    match dw0 >> 29 {
        0 => {
            if (dw0 >> 23) & 0x3f < 0x10 {
                Fixed(1)
            } else {
                Field(8)
            }
        }
        2 => Field(8),
        3 => match (dw0 >> 27) & 3 {
            1 => Fixed(1),
            2 if engine & (VIDEO | VEBOX) != 0 => Field(12),
            2 => Field(16),
            _ => Field(8),
        },
        // Reserved types: step over one dword, as over a NOOP.
        _ => Fixed(1),
    }
}

/// Decodes the header `dw0` for an engine (one of [`RENDER`], [`COPY`], ...) of a
/// device of graphics version `gen` × 10. Versions outside [`MIN_GEN`]..=[`MAX_GEN`]
/// use the nearest one (their own commands decode as unknown, by the type rule).
pub(crate) fn lookup(dw0: u32, gen: u16, engine: u8) -> Lookup {
    let gen = gen.clamp(MIN_GEN, MAX_GEN);
    let ty = dw0 >> 29;
    let hit = TABLE.iter().find(|c| {
        c.key >> 29 == ty && dw0 & c.mask == c.key && c.engines & engine != 0 && (c.gens.0..=c.gens.1).contains(&gen)
    });
    if let Some(c) = hit {
        return Lookup::Known(c);
    }
    let v = &VIDEO_PIPELINE;
    if dw0 & v.mask == v.key && v.engines & engine != 0 {
        return Lookup::Known(v);
    }
    Lookup::Unknown(type_rule(dw0, engine))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlap(a: (u16, u16), b: (u16, u16)) -> bool {
        a.0 <= b.1 && b.0 <= a.1
    }

    /// Every entry is well formed and agrees with the rule of its command type.
    #[test]
    fn every_entry_is_consistent() {
        for c in TABLE.iter().chain(std::iter::once(&VIDEO_PIPELINE)) {
            let n = c.name;
            assert_eq!(c.key & !c.mask, 0, "{n}: key outside its mask");
            assert!(c.engines != 0 && c.engines & !ALL == 0, "{n}: engines");
            assert!(MIN_GEN <= c.gens.0 && c.gens.0 <= c.gens.1 && c.gens.1 <= MAX_GEN, "{n}: gens");
            let ty = c.key >> 29;
            let expect_mask = match ty {
                0 => MI_MASK,
                2 => BLT_MASK,
                3 if std::ptr::eq(c, &VIDEO_PIPELINE) => 0xf800_0000,
                3 => GFX_MASK,
                _ => panic!("{n}: reserved command type {ty}"),
            };
            assert_eq!(c.mask, expect_mask, "{n}: identity bits of a type-{ty} command");
            match c.len {
                Fixed(len) => assert_eq!(len, 1, "{n}: fixed-length commands here are single dwords"),
                Field(bits) => {
                    assert!((6..=16).contains(&bits), "{n}: width {bits}");
                    assert_eq!(field_mask(bits) & c.mask, 0, "{n}: length field overlaps the opcode");
                }
            }
            // The hardware's own rules, which the table must not contradict.
            if ty == 0 {
                let short = (c.key >> 23) & 0x3f < 0x10;
                assert_eq!(short, c.len == Fixed(1), "{n}: MI opcodes below 0x10 are single dwords");
            }
            if ty == 3 && c.mask == GFX_MASK {
                assert_eq!((c.key >> 27) & 3 == 1, c.len == Fixed(1), "{n}: pipeline 1 is single dwords");
            }
            if ty == 2 {
                assert_eq!(c.engines, COPY, "{n}: 2D commands run on the copy engine");
            }
            // Names say what they are.
            let prefix_ok = match ty {
                0 => n.starts_with("MI_"),
                2 => n.starts_with("XY_"),
                _ => !n.starts_with("MI_") && !n.starts_with("XY_"),
            };
            assert!(prefix_ok, "{n}: name does not match command type {ty}");
        }
    }

    /// No two entries claim the same header on the same engine and version.
    #[test]
    fn no_overlapping_keys() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                if a.engines & b.engines == 0 || !overlap(a.gens, b.gens) {
                    continue;
                }
                let common = a.mask & b.mask;
                assert_ne!(a.key & common, b.key & common, "{} and {} overlap", a.name, b.name);
            }
        }
        // Every entry is found by its own key.
        for c in TABLE {
            let eng = 1u8 << c.engines.trailing_zeros();
            match lookup(c.key, c.gens.0, eng) {
                Lookup::Known(f) => assert!(std::ptr::eq(f, c), "{} decodes as {}", c.name, f.name),
                Lookup::Unknown(_) => panic!("{} not found", c.name),
            }
        }
    }

    fn len(dw0: u32, gen: u16, eng: u8) -> u32 {
        lookup(dw0, gen, eng).dwords(dw0)
    }

    /// Headers as Mesa and the kernel emit them decode to their documented lengths.
    #[test]
    fn documented_lengths() {
        let tgl = 120;
        // PIPELINE_SELECT to GPGPU with its mask bits, as iris/ANV emit it: one dword.
        assert_eq!(len(0x6904_1312, tgl, RENDER), 1);
        assert_eq!(lookup(0x6904_1312, tgl, RENDER).name(), "PIPELINE_SELECT");
        assert_eq!(len(0x680b_0001, tgl, RENDER), 1);
        assert_eq!(lookup(0x680b_0001, 90, RENDER).name(), "3DSTATE_VF_STATISTICS");
        assert_eq!(len(0x7a00_0004, tgl, RENDER), 6, "PIPE_CONTROL");
        assert_eq!(len(0x7b00_0005, tgl, RENDER), 7, "3DPRIMITIVE");
        assert_eq!(len(0x7b00_0105, tgl, RENDER), 7, "3DPRIMITIVE with predicate enable");
        assert_eq!(len(0x6101_0014, tgl, RENDER), 22, "gen12 STATE_BASE_ADDRESS");
        assert_eq!(lookup(0x7822_0000, tgl, RENDER).name(), "3DSTATE_CPS_POINTERS");
        assert_eq!(len(0x7822_0000, tgl, RENDER), 2, "3DSTATE_CPS_POINTERS");
        // ANV's gen12 URB setup: three dwords each, not on gen11.
        for (dw0, name) in [
            (0x7858_0001, "3DSTATE_URB_ALLOC_VS"),
            (0x7859_0001, "3DSTATE_URB_ALLOC_HS"),
            (0x785a_0001, "3DSTATE_URB_ALLOC_DS"),
            (0x785b_0001, "3DSTATE_URB_ALLOC_GS"),
        ] {
            assert_eq!(lookup(dw0, tgl, RENDER).name(), name);
            assert_eq!(len(dw0, tgl, RENDER), 3, "{name}");
            assert!(matches!(lookup(dw0, 110, RENDER), Lookup::Unknown(_)), "{name} on gen11");
        }
        // 9-bit fields.
        assert_eq!(len(0x7847_01ff, tgl, RENDER), 0x201, "3DSTATE_BINDING_TABLE_EDIT_PS");
        assert_eq!(len(0x7917_0103, tgl, RENDER), 0x105, "3DSTATE_SO_DECL_LIST");
        // MI.
        assert_eq!(len(0x0e01_c002, tgl, RENDER), 4, "MI_SEMAPHORE_WAIT, register poll");
        assert_eq!(len(0x1100_0001, tgl, RENDER), 3, "MI_LOAD_REGISTER_IMM");
        assert_eq!(len(0x1108_0001, tgl, RENDER), 3, "MI_LOAD_REGISTER_IMM with CS MMIO offset");
        assert_eq!(len(0x1000_0202, tgl, RENDER), 0x204, "MI_STORE_DATA_IMM (10 bits)");
        assert_eq!(len(0x1300_0080, tgl, COPY), 2, "MI_FLUSH_DW, bit 7 is a flag, not length");
        assert_eq!(len(0x1300_0003, tgl, VIDEO), 5, "MI_FLUSH_DW");
        assert_eq!(len(0x1880_0101, tgl, RENDER), 3, "MI_BATCH_BUFFER_START, ppgtt");
        assert_eq!(len(0x1780_0701, tgl, RENDER), 3, "MI_ATOMIC INC (opcode in 15:8)");
        assert_eq!(len(0x0d00_0003, tgl, RENDER), 5, "MI_MATH, 4 ALU instructions");
        assert_eq!(len(0x0500_0000, tgl, ALL), 1, "MI_BATCH_BUFFER_END");
        assert_eq!(len(0x0280_0000, tgl, ALL), 1, "MI_ARB_CHECK");
        // 2D.
        assert_eq!(len(0x54c0_0008, tgl, COPY), 10, "XY_SRC_COPY_BLT");
        assert_eq!(len(0x5080_0008, tgl, COPY), 10, "XY_FAST_COPY_BLT");
        // Media: 16-bit on render, 12-bit on video.
        assert_eq!(len(0x7000_0007, tgl, RENDER), 9, "MEDIA_VFE_STATE");
        assert_eq!(len(0x7105_050d, tgl, RENDER), 15, "GPGPU_WALKER with flags in 15:8");
        assert_eq!(lookup(0x7000_0004, tgl, VIDEO).name(), VIDEO_PIPELINE.name);
        assert_eq!(len(0x7000_f004, tgl, VIDEO), 6, "MFX_PIPE_MODE_SELECT: 11:0");
        assert_eq!(len(0x6800_0100, tgl, VIDEO), 1, "MFX_WAIT");
        assert_eq!(lookup(0x7000_0004, 125, RENDER).name(), "CFE_STATE");
    }

    #[test]
    fn unknown_headers_follow_the_type_rule() {
        let tgl = 120;
        // A reserved MI opcode above 0x10 and below it.
        assert!(matches!(lookup(0x1f80_0003, tgl, RENDER), Lookup::Unknown(Field(8))));
        assert_eq!(len(0x1f80_0003, tgl, RENDER), 5);
        assert!(matches!(lookup(0x0480_00ff, tgl, RENDER), Lookup::Unknown(Fixed(1))));
        // Reserved command types.
        assert_eq!(len(0x2000_00ff, tgl, RENDER), 1);
        assert_eq!(len(0xe000_00ff, tgl, RENDER), 1);
        // An unlisted pipeline-1 command is still one dword; an unlisted 3D one 8 bits.
        assert!(matches!(lookup(0x6a00_00ff, tgl, RENDER), Lookup::Unknown(Fixed(1))));
        assert_eq!(len(0x78ff_01ff, tgl, RENDER), 0x101);
        // A 3D command on the copy engine does not exist there.
        assert!(matches!(lookup(0x7a00_0004, tgl, COPY), Lookup::Unknown(_)));
        // Not yet on gen9, gone after gen12.
        assert!(matches!(lookup(0x786d_0001, 90, RENDER), Lookup::Unknown(_)));
        assert!(matches!(lookup(0x7105_0000, 125, RENDER), Lookup::Unknown(Field(16))));
        // Versions past the table use its last version.
        assert_eq!(lookup(0x6904_0000, 200, RENDER).name(), "PIPELINE_SELECT");
    }
}
