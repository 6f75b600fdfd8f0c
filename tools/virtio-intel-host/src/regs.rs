// SPDX-License-Identifier: MIT
//! The MMIO registers a batch can load, compute with and read back.
//!
//! A real command streamer reaches registers through MI_LOAD_REGISTER_IMM/REG/MEM,
//! MI_STORE_REGISTER_MEM, MI_MATH (the CS general purpose registers), MI_PREDICATE and
//! MI_SEMAPHORE_WAIT's register poll mode. Mesa (iris, ANV, the `mi_builder`) uses them
//! for query results, indirect draws, conditional rendering and, on gen12, for the
//! CCS aux-table invalidation it waits on after every submission that touched the
//! aux map. This module is the register file behind those commands.
//!
//! Offsets are byte offsets in the GPU's MMIO space (bits 22:2 of a register operand).
//! Engine registers are given relative to the engine's MMIO base (RCS 0x2000, BCS
//! 0x22000, ...), so `base + GPR0` is 0x2600 on the render engine.
//!
//! | register | offset | model |
//! |---|---|---|
//! | `CS_GPR0`..`CS_GPR15` | base + 0x600 + 8·n (low dword), + 4 (high dword) | 64-bit storage |
//! | `RING_TIMESTAMP`, `_UDW` | base + 0x358, 0x35c | live: the device's CS timestamp in ticks |
//! | `CTX_TIMESTAMP` | base + 0x3a8 | live: same clock (the model runs one context at a time) |
//! | `MI_PREDICATE_SRC0`, `SRC1` | base + 0x400, 0x408 | 64-bit storage |
//! | `MI_PREDICATE_RESULT` | base + 0x418 | bit 0 is the predicate MI_PREDICATE computes and MI_BATCH_BUFFER_START / MI_STORE_REGISTER_MEM test |
//! | `MI_PREDICATE_DATA`, `_RESULT_1`, `_RESULT_2` | base + 0x410, 0x41c, 0x3bc | storage (MI_SET_PREDICATE is not executed, see [`crate::cs`]) |
//! | `NOPID` | base + 0x094 | written by MI_NOOP with bit 22 |
//! | gen12 `*_AUX_NV` | 0x4208 (RCS), 0x4218/0x4228/0x4298/0x42a8 (VD0-3), 0x4238/0x42b8 (VE0-1), 0x4248 (BCS), 0x42c8 (CCS0) | bit 0 starts an aux-table invalidation and reads back 0 once it is done; the model finishes it at once |
//! | anything else | | 32-bit storage, 0 until written |
//!
//! Masked registers (upper 16 bits a write mask) are not special-cased: nothing Mesa
//! reads back depends on them.

use std::collections::HashMap;

/// `CS_GPR0` low dword, from the engine's MMIO base. GPR `n` is at `+ 8 * n`.
pub(crate) const CS_GPR0: u32 = 0x600;
/// Number of CS general purpose registers (64 bits each).
pub(crate) const CS_GPR_COUNT: u32 = 16;
/// `RING_TIMESTAMP` (low dword), from the engine's MMIO base.
pub(crate) const RING_TIMESTAMP: u32 = 0x358;
/// `RING_TIMESTAMP_UDW`, from the engine's MMIO base.
pub(crate) const RING_TIMESTAMP_UDW: u32 = 0x35c;
/// `CTX_TIMESTAMP`, from the engine's MMIO base.
pub(crate) const CTX_TIMESTAMP: u32 = 0x3a8;
/// `NOPID`, from the engine's MMIO base.
pub(crate) const NOPID: u32 = 0x094;
/// `MI_PREDICATE_SRC0` (64 bits), from the engine's MMIO base.
pub(crate) const MI_PREDICATE_SRC0: u32 = 0x400;
/// `MI_PREDICATE_SRC1` (64 bits), from the engine's MMIO base.
pub(crate) const MI_PREDICATE_SRC1: u32 = 0x408;
/// `MI_PREDICATE_RESULT`: bit 0 is the predicate MI_PREDICATE computes.
pub(crate) const MI_PREDICATE_RESULT: u32 = 0x418;

/// The gen12 aux-table invalidation registers (absolute offsets), one per engine:
/// RCS, VD0, VD1, VD2, VD3, VE0, VE1, BCS, CCS0.
pub(crate) const AUX_INV: [u32; 9] = [0x4208, 0x4218, 0x4228, 0x4298, 0x42a8, 0x4238, 0x42b8, 0x4248, 0x42c8];

/// Mask of the register offset in a register operand (bits 22:2).
pub(crate) const REG_MASK: u32 = 0x7f_fffc;

/// The registers of one engine as its batches see them.
#[derive(Debug, Default)]
pub(crate) struct RegFile {
    vals: HashMap<u32, u32>,
    /// Graphics version × 10 (120 for TGL): the aux-invalidation registers exist from 120.
    gen: u16,
}

impl RegFile {
    /// An empty register file (every register reads 0) of a device of graphics
    /// version `gen` × 10.
    pub(crate) fn new(gen: u16) -> RegFile {
        RegFile { vals: HashMap::new(), gen }
    }

    /// Reads the dword register at `reg` (bits 22:2 are used) of the engine at
    /// `base`; `ts` is the current CS timestamp in ticks, for the live registers.
    pub(crate) fn read(&self, base: u32, reg: u32, ts: u64) -> u32 {
        let reg = reg & REG_MASK;
        let rel = reg.wrapping_sub(base);
        match rel {
            RING_TIMESTAMP | CTX_TIMESTAMP => ts as u32,
            RING_TIMESTAMP_UDW => (ts >> 32) as u32,
            _ => self.vals.get(&reg).copied().unwrap_or(0),
        }
    }

    /// Writes `v` to the dword register at `reg` of the engine at `base`. Writes to
    /// the live timestamp registers are ignored (the model's clock is the device's).
    pub(crate) fn write(&mut self, base: u32, reg: u32, v: u32) {
        let reg = reg & REG_MASK;
        let rel = reg.wrapping_sub(base);
        if matches!(rel, RING_TIMESTAMP | RING_TIMESTAMP_UDW | CTX_TIMESTAMP) {
            return;
        }
        let v = if self.gen >= 120 && AUX_INV.contains(&reg) {
            // Bit 0 requests an invalidation of the engine's aux-table TLB; it reads
            // back as 0 once the hardware is done, which here is at once.
            v & !1
        } else {
            v
        };
        self.vals.insert(reg, v);
    }

    /// Reads the 64-bit register pair at `reg` (low dword) and `reg + 4` (high dword).
    pub(crate) fn read64(&self, base: u32, reg: u32, ts: u64) -> u64 {
        u64::from(self.read(base, reg, ts)) | (u64::from(self.read(base, reg.wrapping_add(4), ts)) << 32)
    }

    /// Writes the 64-bit register pair at `reg` (low dword) and `reg + 4`.
    pub(crate) fn write64(&mut self, base: u32, reg: u32, v: u64) {
        self.write(base, reg, v as u32);
        self.write(base, reg.wrapping_add(4), (v >> 32) as u32);
    }

    /// `CS_GPR[n]` of the engine at `base` (`n` taken modulo 16, as the 4-bit ALU
    /// register operand does).
    pub(crate) fn gpr(&self, base: u32, n: u32) -> u64 {
        self.read64(base, base.wrapping_add(CS_GPR0 + 8 * (n % CS_GPR_COUNT)), 0)
    }

    /// Sets `CS_GPR[n]` of the engine at `base` (`n` modulo 16).
    pub(crate) fn set_gpr(&mut self, base: u32, n: u32, v: u64) {
        self.write64(base, base.wrapping_add(CS_GPR0 + 8 * (n % CS_GPR_COUNT)), v);
    }

    /// Bit 0 of `MI_PREDICATE_RESULT` of the engine at `base`.
    pub(crate) fn predicate(&self, base: u32) -> bool {
        self.read(base, base.wrapping_add(MI_PREDICATE_RESULT), 0) & 1 != 0
    }

    /// Sets `MI_PREDICATE_RESULT` of the engine at `base` to 0 or 1.
    pub(crate) fn set_predicate(&mut self, base: u32, p: bool) {
        self.write(base, base.wrapping_add(MI_PREDICATE_RESULT), u32::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_live_timestamps_and_gprs() {
        let mut r = RegFile::new(120);
        assert_eq!(r.read(0x2000, 0x2100, 0), 0);
        r.write(0x2000, 0x2100, 7);
        assert_eq!(r.read(0x2000, 0x2100 | 3, 0), 7, "bits 1:0 are not part of the offset");
        assert_eq!(r.read64(0x2000, 0x2358, 0x1_0000_0002), 0x1_0000_0002);
        assert_eq!(r.read(0x22000, 0x2235c, 0x5_0000_0000), 5);
        assert_eq!(r.read(0x2000, 0x23a8, 9), 9);
        r.write(0x2000, 0x2358, 1);
        assert_eq!(r.read(0x2000, 0x2358, 3), 3);
        r.set_gpr(0x2000, 3, 0x1122_3344_5566_7788);
        assert_eq!(r.read(0x2000, 0x2618, 0), 0x5566_7788);
        assert_eq!(r.read(0x2000, 0x261c, 0), 0x1122_3344);
        assert_eq!(r.gpr(0x2000, 19), 0x1122_3344_5566_7788);
        r.set_predicate(0x2000, true);
        assert_eq!(r.read(0x2000, 0x2418, 0), 1);
        assert!(r.predicate(0x2000));
        assert!(!r.predicate(0x22000));
    }

    #[test]
    fn aux_invalidation_completes_at_once_from_gen12() {
        let mut r = RegFile::new(120);
        for reg in AUX_INV {
            r.write(0x2000, reg, 1);
            assert_eq!(r.read(0x2000, reg, 0), 0, "{reg:#x}");
        }
        let mut old = RegFile::new(90);
        old.write(0x2000, 0x4208, 1);
        assert_eq!(old.read(0x2000, 0x4208, 0), 1);
    }
}
