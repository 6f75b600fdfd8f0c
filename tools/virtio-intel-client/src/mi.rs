//! Gen12 command-streamer instruction encoders (MI_* and PIPE_CONTROL) used
//! by the execbuffer checks. All addresses are PPGTT virtual addresses.
//!
//! Dword 0 of an MI command: bits 31:29 = 0 (MI), opcode in bits 28:23, and a
//! length field = total dwords − 2 in the low bits.

#![allow(dead_code)]

pub const fn mi(opcode: u32, flags: u32) -> u32 {
    (opcode << 23) | flags
}

pub const MI_NOOP: u32 = 0;
pub const MI_BATCH_BUFFER_END: u32 = mi(0x0a, 0);
/// MI_STORE_DATA_IMM, 4 dwords (cmd, addr lo, addr hi, data). Bit 22 (use
/// GGTT) stays clear: we address through the PPGTT.
pub const MI_STORE_DWORD_IMM: u32 = mi(0x20, 2);
/// MI_STORE_DATA_IMM with bit 21 (store qword), 5 dwords.
pub const MI_STORE_QWORD_IMM: u32 = mi(0x20, 3) | (1 << 21);
/// MI_STORE_REGISTER_MEM (Gen8+ form), 4 dwords (cmd, reg, addr lo, addr hi).
pub const MI_STORE_REGISTER_MEM: u32 = mi(0x24, 2);
/// MI_LOAD_REGISTER_IMM for `n` (reg, value) pairs.
pub const fn mi_load_register_imm(n: u32) -> u32 {
    mi(0x22, 2 * n - 1)
}
/// MI_BATCH_BUFFER_START (Gen8+), 3 dwords; bit 8 = PPGTT address space.
pub const MI_BATCH_BUFFER_START: u32 = mi(0x31, 1);
pub const MI_BATCH_PPGTT: u32 = 1 << 8;
pub const MI_BATCH_SECOND_LEVEL: u32 = 1 << 22;
/// MI_FLUSH_DW with a post-sync immediate write: 5 dwords (cmd, addr lo,
/// addr hi, data lo, data hi); post-sync op in bits 15:14 (1 = write imm).
pub const MI_FLUSH_DW: u32 = mi(0x26, 3);
pub const MI_FLUSH_DW_OP_STORE_IMM: u32 = 1 << 14;
/// MI_COPY_MEM_MEM, 5 dwords (cmd, dst lo, dst hi, src lo, src hi); bits 22/21
/// (GGTT for src/dst) stay clear.
pub const MI_COPY_MEM_MEM: u32 = mi(0x2e, 3);
/// MI_SEMAPHORE_WAIT, 4 dwords (cmd, data, addr lo, addr hi).
pub const MI_SEMAPHORE_WAIT: u32 = mi(0x1c, 2);
pub const MI_SEMAPHORE_POLL: u32 = 1 << 15;
pub const MI_SEMAPHORE_SAD_EQ_SDD: u32 = 4 << 12;

/// PIPE_CONTROL, 6 dwords.
pub const PIPE_CONTROL: u32 = (0x3 << 29) | (0x3 << 27) | (0x2 << 24) | (6 - 2);
pub const PIPE_CONTROL_CS_STALL: u32 = 1 << 20;
pub const PIPE_CONTROL_WRITE_IMMEDIATE: u32 = 1 << 14;
pub const PIPE_CONTROL_WRITE_TIMESTAMP: u32 = 3 << 14;
/// Bit 24 "destination address type": 0 = PPGTT (kept clear).
pub const PIPE_CONTROL_GLOBAL_GTT: u32 = 1 << 24;

/// Render command streamer MMIO base and its TIMESTAMP register.
pub const RCS_BASE: u32 = 0x2000;
pub const RING_TIMESTAMP: u32 = 0x358;

fn lo(a: u64) -> u32 {
    a as u32
}
fn hi(a: u64) -> u32 {
    (a >> 32) as u32
}

/// A batch buffer under construction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub dw: Vec<u32>,
}

impl Batch {
    pub fn new() -> Self {
        Batch { dw: Vec::new() }
    }
    /// Current size in bytes (position of the next instruction).
    pub fn offset(&self) -> u64 {
        4 * self.dw.len() as u64
    }
    pub fn noop(&mut self) -> &mut Self {
        self.dw.push(MI_NOOP);
        self
    }
    pub fn store_dword_imm(&mut self, addr: u64, v: u32) -> &mut Self {
        self.dw.extend_from_slice(&[MI_STORE_DWORD_IMM, lo(addr), hi(addr), v]);
        self
    }
    pub fn store_qword_imm(&mut self, addr: u64, v: u64) -> &mut Self {
        self.dw.extend_from_slice(&[MI_STORE_QWORD_IMM, lo(addr), hi(addr), lo(v), hi(v)]);
        self
    }
    pub fn store_register_mem(&mut self, reg: u32, addr: u64) -> &mut Self {
        self.dw.extend_from_slice(&[MI_STORE_REGISTER_MEM, reg, lo(addr), hi(addr)]);
        self
    }
    pub fn load_register_imm(&mut self, pairs: &[(u32, u32)]) -> &mut Self {
        self.dw.push(mi_load_register_imm(pairs.len() as u32));
        for &(r, v) in pairs {
            self.dw.extend_from_slice(&[r, v]);
        }
        self
    }
    /// PIPE_CONTROL with CS stall and a post-sync immediate qword write.
    pub fn pipe_control_write_imm(&mut self, addr: u64, v: u64) -> &mut Self {
        self.dw.extend_from_slice(&[
            PIPE_CONTROL,
            PIPE_CONTROL_CS_STALL | PIPE_CONTROL_WRITE_IMMEDIATE,
            lo(addr),
            hi(addr),
            lo(v),
            hi(v),
        ]);
        self
    }
    /// MI_FLUSH_DW with a post-sync immediate qword write.
    pub fn flush_dw_store_imm(&mut self, addr: u64, v: u64) -> &mut Self {
        self.dw.extend_from_slice(&[MI_FLUSH_DW | MI_FLUSH_DW_OP_STORE_IMM, lo(addr), hi(addr), lo(v), hi(v)]);
        self
    }
    pub fn copy_mem_mem(&mut self, dst: u64, src: u64) -> &mut Self {
        self.dw.extend_from_slice(&[MI_COPY_MEM_MEM, lo(dst), hi(dst), lo(src), hi(src)]);
        self
    }
    /// Poll until the dword at `addr` equals `v`.
    pub fn semaphore_wait_eq(&mut self, addr: u64, v: u32) -> &mut Self {
        self.dw.extend_from_slice(&[
            MI_SEMAPHORE_WAIT | MI_SEMAPHORE_POLL | MI_SEMAPHORE_SAD_EQ_SDD,
            v,
            lo(addr),
            hi(addr),
        ]);
        self
    }
    pub fn batch_buffer_start(&mut self, addr: u64, second_level: bool) -> &mut Self {
        let mut cmd = MI_BATCH_BUFFER_START | MI_BATCH_PPGTT;
        if second_level {
            cmd |= MI_BATCH_SECOND_LEVEL;
        }
        self.dw.extend_from_slice(&[cmd, lo(addr), hi(addr)]);
        self
    }
    pub fn end(&mut self) -> &mut Self {
        self.dw.push(MI_BATCH_BUFFER_END);
        self
    }
    /// Bytes, padded with MI_NOOP to a multiple of 8 (i915 requires
    /// `batch_len` to be 8-byte aligned).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut d = self.dw.clone();
        if !d.len().is_multiple_of(2) {
            d.push(MI_NOOP);
        }
        d.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// Total dword count of the instruction whose header is `dw0`, from its
/// length field (MI: bits 5:0 for the commands we emit; PIPE_CONTROL: 7:0).
/// Used by the unit tests to check self-consistency.
pub fn instr_len(dw0: u32) -> usize {
    let client = dw0 >> 29;
    if client == 0 {
        let op = (dw0 >> 23) & 0x3f;
        if op < 0x10 {
            1 // single-dword MI commands (NOOP, BB_END, ARB_CHECK, ...)
        } else {
            (dw0 & 0x3f) as usize + 2
        }
    } else {
        (dw0 & 0xff) as usize + 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        assert_eq!(MI_BATCH_BUFFER_END, 0x0500_0000);
        assert_eq!(MI_STORE_DWORD_IMM, 0x1000_0002);
        assert_eq!(MI_STORE_QWORD_IMM, 0x1020_0003);
        assert_eq!(MI_STORE_REGISTER_MEM, 0x1200_0002);
        assert_eq!(mi_load_register_imm(1), 0x1100_0001);
        assert_eq!(MI_BATCH_BUFFER_START | MI_BATCH_PPGTT, 0x1880_0101);
        assert_eq!(MI_FLUSH_DW | MI_FLUSH_DW_OP_STORE_IMM, 0x1300_4003);
        assert_eq!(MI_COPY_MEM_MEM, 0x1700_0003);
        assert_eq!(MI_SEMAPHORE_WAIT | MI_SEMAPHORE_POLL | MI_SEMAPHORE_SAD_EQ_SDD, 0x0e00_c002);
        assert_eq!(PIPE_CONTROL, 0x7a00_0004);
        assert_eq!(RCS_BASE + RING_TIMESTAMP, 0x2358);
    }

    #[test]
    fn lengths_are_self_consistent() {
        let mut b = Batch::new();
        b.store_dword_imm(0x1000, 1)
            .store_qword_imm(0x1008, 2)
            .store_register_mem(0x2358, 0x1010)
            .load_register_imm(&[(0x2000, 1), (0x2004, 2)])
            .pipe_control_write_imm(0x1018, 3)
            .flush_dw_store_imm(0x1020, 4)
            .copy_mem_mem(0x1028, 0x1000)
            .semaphore_wait_eq(0x1030, 5)
            .batch_buffer_start(0x2000, false)
            .end();
        let mut i = 0;
        let mut count = 0;
        while i < b.dw.len() {
            i += instr_len(b.dw[i]);
            count += 1;
        }
        assert_eq!(i, b.dw.len());
        assert_eq!(count, 10);
        assert_eq!(b.to_bytes().len() % 8, 0);
    }

    #[test]
    fn address_split() {
        let mut b = Batch::new();
        b.store_qword_imm(0x0000_1234_5678_9ab8, 0x1122_3344_5566_7788);
        assert_eq!(b.dw[1], 0x5678_9ab8);
        assert_eq!(b.dw[2], 0x1234);
        assert_eq!(b.dw[3], 0x5566_7788);
        assert_eq!(b.dw[4], 0x1122_3344);
        let bytes = b.to_bytes();
        assert_eq!(bytes.len(), 24); // 5 dwords padded to 6
        assert_eq!(&bytes[20..24], &[0; 4]);
    }
}
