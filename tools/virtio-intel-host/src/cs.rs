// SPDX-License-Identifier: MIT
//! A software command streamer for gen9 to gen12.5 engines.
//!
//! [`execute`] walks a batch in a GPU virtual address space ([`GpuMemory`]). Every
//! header is decoded with the hardware's length rules ([`crate::cmd_len`]), so the
//! next command is found where the hardware would find it. Commands whose effect a
//! batch (or the CPU waiting on it) can observe are executed; all others are skipped
//! by their length. The register file behind the MI register commands is
//! [`crate::regs`].
//!
//! Executed:
//!
//! | command | effect |
//! |---|---|
//! | MI_NOOP | bit 22: writes the identification number to `NOPID` |
//! | MI_BATCH_BUFFER_END | ends the batch, or returns from a second-level batch |
//! | MI_BATCH_BUFFER_START | jumps (chained) or calls (bit 22, second level; at most 3 levels); bit 15: only if `MI_PREDICATE_RESULT` is set |
//! | MI_CONDITIONAL_BATCH_BUFFER_END | ends the batch (or, bit 18, its level) unless the memory dword compares true |
//! | MI_SEMAPHORE_WAIT | polls a memory dword, or (bit 16, register poll mode) a register, until the comparison holds |
//! | MI_PREDICATE | sets `MI_PREDICATE_RESULT` from `MI_PREDICATE_SRC0/1` (load, combine, compare operations) |
//! | MI_MATH | the ALU over `CS_GPR0-15`: LOAD, LOADINV, LOAD0, LOAD1, ADD, SUB, AND, OR, XOR, STORE, STOREINV (and SHL, SHR, SAR from 12.5) with ACCU, ZF and CF |
//! | MI_LOAD_REGISTER_IMM | writes (register, value) pairs; byte write disables (11:8), CS MMIO offset (19) |
//! | MI_LOAD_REGISTER_MEM, _REG | loads a register from memory or from another register |
//! | MI_STORE_REGISTER_MEM | stores any modelled register; predicate enable (21) |
//! | MI_STORE_DATA_IMM | stores dwords (or, bit 21, a qword) |
//! | MI_COPY_MEM_MEM | copies a dword |
//! | MI_ATOMIC | AND, OR, XOR, MOVE, INC, DEC, ADD, SUB, RSUB, IMAX, IMIN, UMAX, UMIN, CMP_WR on dwords and qwords; return data (16) to `CS_GPR0` |
//! | MI_FLUSH_DW | post-sync write of immediate data or the timestamp |
//! | PIPE_CONTROL | post-sync write of immediate data, the timestamp or the depth count (0: the model draws nothing); LRI post-sync (dw1 bit 23) writes a register |
//!
//! Everything else (3D and GPGPU state, draws and walkers, media, 2D blits, display
//! and context MI commands) is skipped by its length: the host models a GPU's
//! protocol and synchronisation, not its rendering. A header that is no command of
//! the engine and graphics version is skipped by the rule of its command type and
//! counted in [`Stats`]; it never hangs the batch. A mode of an executed command
//! that the model does not implement (an MI_ATOMIC without inline operands, a
//! DELTAS_EQUAL predicate, an indirect ALU access) is counted too and does nothing.
//! MI_SET_PREDICATE is skipped: its predication of later commands is not modelled.
//! The 3D commands' and walkers' own predicate enables need nothing, as those commands
//! are skipped anyway.
//!
//! A batch that is still running at its deadline is a hang; an access to an unbound
//! address is a GPU page fault. Both end the batch and are reported with the address
//! and header of the command that was executing.

use std::time::Instant;

use crate::cmd_len::{self, Lookup};
use crate::regs::{self, RegFile, REG_MASK};

/// A GPU page fault at a virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault(pub(crate) u64);

/// The engine's view of memory: the VM the batch runs in.
pub(crate) trait GpuMemory {
    fn read_u32(&self, va: u64) -> Result<u32, Fault>;
    fn write_u32(&self, va: u64, v: u32) -> Result<(), Fault>;
    fn read_u64(&self, va: u64) -> Result<u64, Fault> {
        Ok(u64::from(self.read_u32(va)?) | (u64::from(self.read_u32(va.wrapping_add(4))?) << 32))
    }
    fn write_u64(&self, va: u64, v: u64) -> Result<(), Fault> {
        self.write_u32(va, v as u32)?;
        self.write_u32(va.wrapping_add(4), (v >> 32) as u32)
    }
}

/// How a batch ended. `at` is the GPU address of the command's header and `dw0` the
/// header itself when it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Reached MI_BATCH_BUFFER_END of the first-level batch after `commands` commands.
    Completed { commands: u64 },
    /// Still running at the deadline.
    Hang { at: u64, dw0: Option<u32> },
    /// Touched the unbound address `addr`.
    PageFault { addr: u64, at: u64, dw0: Option<u32> },
    /// A command the hardware would reject (a fourth batch level).
    Invalid { at: u64, dw0: u32 },
}

/// What the streamer counted in one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Headers that are no command of this engine and graphics version.
    pub(crate) unknown: u64,
    /// The first of them: (GPU address, header).
    pub(crate) first_unknown: Option<(u64, u32)>,
    /// Executed commands whose mode the model does not implement (they did nothing).
    pub(crate) unsupported: u64,
    /// The first of them: (GPU address, header).
    pub(crate) first_unsupported: Option<(u64, u32)>,
}

/// Per-engine state the streamer needs.
pub(crate) struct Engine<'a> {
    /// MMIO base of the engine (RCS 0x2000, BCS 0x22000, ...).
    pub(crate) mmio_base: u32,
    /// Which engine this is, as a [`cmd_len`] engine bit ([`cmd_len::RENDER`], ...).
    pub(crate) kind: u8,
    /// Graphics version × 10 (120 for TGL).
    pub(crate) gen: u16,
    /// The engine's registers.
    pub(crate) regs: &'a mut RegFile,
    /// Current CS timestamp in ticks.
    pub(crate) timestamp: &'a dyn Fn() -> u64,
    /// Counters of this batch (reset by the caller).
    pub(crate) stats: Stats,
}

const MI_NOOP: u32 = 0x00;
const MI_BATCH_BUFFER_END: u32 = 0x0a;
const MI_PREDICATE: u32 = 0x0c;
const MI_MATH: u32 = 0x1a;
const MI_SEMAPHORE_WAIT: u32 = 0x1c;
const MI_STORE_DATA_IMM: u32 = 0x20;
const MI_LOAD_REGISTER_IMM: u32 = 0x22;
const MI_STORE_REGISTER_MEM: u32 = 0x24;
const MI_FLUSH_DW: u32 = 0x26;
const MI_LOAD_REGISTER_MEM: u32 = 0x29;
const MI_LOAD_REGISTER_REG: u32 = 0x2a;
const MI_COPY_MEM_MEM: u32 = 0x2e;
const MI_ATOMIC: u32 = 0x2f;
const MI_BATCH_BUFFER_START: u32 = 0x31;
const MI_CONDITIONAL_BATCH_BUFFER_END: u32 = 0x36;
/// PIPE_CONTROL's dw0 bits 31:16.
const PIPE_CONTROL: u32 = 0x7a00;

/// Maximum batch nesting (first level plus two called levels).
const MAX_DEPTH: usize = 3;

/// Whether the streamer executes the command with header `dw0` (as opposed to
/// skipping it by its length), whatever the engine.
#[cfg(test)]
pub(crate) fn is_executed(dw0: u32) -> bool {
    match dw0 >> 29 {
        0 => matches!(
            (dw0 >> 23) & 0x3f,
            MI_NOOP
                | MI_BATCH_BUFFER_END
                | MI_PREDICATE
                | MI_MATH
                | MI_SEMAPHORE_WAIT
                | MI_STORE_DATA_IMM
                | MI_LOAD_REGISTER_IMM
                | MI_STORE_REGISTER_MEM
                | MI_FLUSH_DW
                | MI_LOAD_REGISTER_MEM
                | MI_LOAD_REGISTER_REG
                | MI_COPY_MEM_MEM
                | MI_ATOMIC
                | MI_BATCH_BUFFER_START
                | MI_CONDITIONAL_BATCH_BUFFER_END
        ),
        3 => dw0 >> 16 == PIPE_CONTROL,
        _ => false,
    }
}

/// Whether MI_CONDITIONAL_BATCH_BUFFER_END lets the batch go on: the memory dword `mad`
/// against the inline data `idd`, with the compare operation of dw0 14:12 when the compare
/// bit (21) is set, else "greater than" (the gen8 behaviour).
fn cond_bbe_continues(dw0: u32, mad: u32, idd: u32) -> bool {
    let op = if dw0 & (1 << 21) != 0 { (dw0 >> 12) & 7 } else { 0 };
    compare(op, mad, idd)
}

/// The six compare operations of MI_SEMAPHORE_WAIT and MI_CONDITIONAL_BATCH_BUFFER_END
/// (`a` is the value read, `b` the inline data); reserved operations hold.
fn compare(op: u32, a: u32, b: u32) -> bool {
    match op {
        0 => a > b,
        1 => a >= b,
        2 => a < b,
        3 => a <= b,
        4 => a == b,
        5 => a != b,
        _ => true,
    }
}

/// A 48-bit GPU address from a low and a high dword, with the low `align_mask` bits
/// (reserved in the command) cleared.
fn addr(lo: u32, hi: u32, align_mask: u32) -> u64 {
    (u64::from(hi & 0xffff) << 32) | u64::from(lo & !align_mask)
}

/// One command being executed.
struct Cmd<'m> {
    mem: &'m dyn GpuMemory,
    /// Address of the header.
    ip: u64,
    /// Header.
    dw0: u32,
    /// Length in dwords, from the header.
    len: u32,
}

impl Cmd<'_> {
    /// Dword `i` of the command; dwords past its length read as 0 (a command too
    /// short for its operation is malformed, and the hardware reads no further).
    fn dw(&self, i: u32) -> Result<u32, Fault> {
        if i >= self.len {
            return Ok(0);
        }
        self.mem.read_u32(self.ip.wrapping_add(4 * u64::from(i)))
    }

    /// The address in dwords `i` and `i + 1`.
    fn addr(&self, i: u32, align_mask: u32) -> Result<u64, Fault> {
        Ok(addr(self.dw(i)?, self.dw(i + 1)?, align_mask))
    }

    /// dw0 bit `b`.
    fn bit(&self, b: u32) -> bool {
        self.dw0 & (1 << b) != 0
    }
}

/// What to do after a command.
enum Step {
    Next,
    Jump(u64),
    Call(u64),
    EndLevel,
    EndAll,
    Hang,
}

/// MI_MATH's ALU registers. They live in the command streamer, so they persist from
/// one MI_MATH to the next within a batch.
#[derive(Default)]
struct Alu {
    srca: u64,
    srcb: u64,
    accu: u64,
    zf: bool,
    cf: bool,
}

/// ALU operand encodings (bits 19:10 and 9:0 of an ALU instruction).
const ALU_SRCA: u32 = 0x20;
const ALU_SRCB: u32 = 0x21;
const ALU_ACCU: u32 = 0x31;
const ALU_ZF: u32 = 0x32;
const ALU_CF: u32 = 0x33;

struct Streamer<'e, 'a> {
    mem: &'e dyn GpuMemory,
    eng: &'e mut Engine<'a>,
    deadline: Instant,
    alu: Alu,
}

impl Streamer<'_, '_> {
    fn base(&self) -> u32 {
        self.eng.mmio_base
    }

    fn ts(&self) -> u64 {
        (self.eng.timestamp)()
    }

    fn read_reg(&self, reg: u32) -> u32 {
        self.eng.regs.read(self.base(), reg, self.ts())
    }

    /// A register operand (bits 22:2), plus the engine's MMIO base when the command's
    /// "Add CS MMIO Start Offset" bit is set.
    fn reg_operand(&self, v: u32, add_base: bool) -> u32 {
        let r = v & REG_MASK;
        if add_base {
            r.wrapping_add(self.base()) & REG_MASK
        } else {
            r
        }
    }

    fn unsupported(&mut self, c: &Cmd<'_>) {
        let s = &mut self.eng.stats;
        s.unsupported = s.unsupported.saturating_add(1);
        s.first_unsupported.get_or_insert((c.ip, c.dw0));
    }

    /// Waits until `poll` reads a value that compares true against `sdd`, or the deadline.
    fn wait_until(&self, op: u32, sdd: u32, mut poll: impl FnMut(&Self) -> Result<u32, Fault>) -> Result<Step, Fault> {
        let mut spins: u32 = 0;
        loop {
            if compare(op, poll(self)?, sdd) {
                return Ok(Step::Next);
            }
            if Instant::now() >= self.deadline {
                return Ok(Step::Hang);
            }
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }

    fn exec(&mut self, c: &Cmd<'_>) -> Result<Step, Fault> {
        match c.dw0 >> 29 {
            0 => self.exec_mi(c),
            3 if c.dw0 >> 16 == PIPE_CONTROL => self.pipe_control(c),
            _ => Ok(Step::Next),
        }
    }

    fn exec_mi(&mut self, c: &Cmd<'_>) -> Result<Step, Fault> {
        let base = self.base();
        match (c.dw0 >> 23) & 0x3f {
            MI_NOOP if c.bit(22) => {
                self.eng.regs.write(base, base.wrapping_add(regs::NOPID), c.dw0 & 0x3f_ffff);
            }
            MI_BATCH_BUFFER_END => return Ok(Step::EndLevel),
            MI_PREDICATE => self.predicate(c),
            MI_MATH => {
                for i in 1..c.len {
                    let insn = c.dw(i)?;
                    if !self.alu(insn) {
                        self.unsupported(c);
                    }
                }
            }
            MI_SEMAPHORE_WAIT => {
                let op = (c.dw0 >> 12) & 7;
                let sdd = c.dw(1)?;
                return if c.bit(16) {
                    // Register poll mode: the semaphore address is a register offset.
                    let reg = c.dw(2)? & REG_MASK;
                    self.wait_until(op, sdd, |s| Ok(s.read_reg(reg)))
                } else {
                    let a = c.addr(2, 0x3)?;
                    self.wait_until(op, sdd, |s| s.mem.read_u32(a))
                };
            }
            MI_STORE_DATA_IMM => {
                let a = c.addr(1, 0x3)?;
                if c.bit(21) {
                    let v = u64::from(c.dw(3)?) | (u64::from(c.dw(4)?) << 32);
                    self.mem.write_u64(a & !7, v)?;
                } else {
                    for i in 3..c.len {
                        let off = 4 * u64::from(i - 3);
                        self.mem.write_u32(a.wrapping_add(off), c.dw(i)?)?;
                    }
                }
            }
            MI_LOAD_REGISTER_IMM => {
                // Byte Write Disables, one bit per byte of the value.
                let bwd = (c.dw0 >> 8) & 0xf;
                let keep = (0..4).filter(|b| bwd & (1 << b) != 0).fold(0u32, |m, b| m | (0xff << (8 * b)));
                let mut i = 1;
                while i + 1 < c.len {
                    let reg = self.reg_operand(c.dw(i)?, c.bit(19));
                    let v = c.dw(i + 1)?;
                    let v = if keep != 0 { (self.read_reg(reg) & keep) | (v & !keep) } else { v };
                    self.eng.regs.write(base, reg, v);
                    i += 2;
                }
            }
            MI_STORE_REGISTER_MEM => {
                if c.bit(21) && !self.eng.regs.predicate(base) {
                    return Ok(Step::Next);
                }
                let reg = self.reg_operand(c.dw(1)?, c.bit(19));
                let a = c.addr(2, 0x3)?;
                self.mem.write_u32(a, self.read_reg(reg))?;
            }
            MI_LOAD_REGISTER_MEM => {
                let reg = self.reg_operand(c.dw(1)?, c.bit(19));
                let v = self.mem.read_u32(c.addr(2, 0x3)?)?;
                self.eng.regs.write(base, reg, v);
            }
            MI_LOAD_REGISTER_REG => {
                let src = self.reg_operand(c.dw(1)?, c.bit(18));
                let dst = self.reg_operand(c.dw(2)?, c.bit(19));
                let v = self.read_reg(src);
                self.eng.regs.write(base, dst, v);
            }
            MI_FLUSH_DW => {
                // Post-Sync Operation 15:14; Store Data Index (21) targets the hardware
                // status page, which is not in the VM.
                let op = (c.dw0 >> 14) & 3;
                if op != 0 && !c.bit(21) {
                    let a = c.addr(1, 0x7)?;
                    match op {
                        1 if c.len >= 5 => self.mem.write_u64(a, u64::from(c.dw(3)?) | (u64::from(c.dw(4)?) << 32))?,
                        1 => self.mem.write_u32(a, c.dw(3)?)?,
                        3 => self.mem.write_u64(a, self.ts())?,
                        _ => {}
                    }
                }
            }
            MI_COPY_MEM_MEM => {
                let dst = c.addr(1, 0x3)?;
                let src = c.addr(3, 0x3)?;
                let v = self.mem.read_u32(src)?;
                self.mem.write_u32(dst, v)?;
            }
            MI_ATOMIC => self.atomic(c)?,
            MI_CONDITIONAL_BATCH_BUFFER_END => {
                let idd = c.dw(1)?;
                let mad = self.mem.read_u32(c.addr(2, 0x7)?)?;
                if !cond_bbe_continues(c.dw0, mad, idd) {
                    // Bit 18: end only the current level, as MI_BATCH_BUFFER_END does.
                    return Ok(if c.bit(18) { Step::EndLevel } else { Step::EndAll });
                }
            }
            MI_BATCH_BUFFER_START => {
                // Predication Enable (15): jump only if MI_PREDICATE_RESULT is set.
                if c.bit(15) && !self.eng.regs.predicate(base) {
                    return Ok(Step::Next);
                }
                let target = c.addr(1, 0x3)?;
                return Ok(if c.bit(22) { Step::Call(target) } else { Step::Jump(target) });
            }
            _ => {}
        }
        Ok(Step::Next)
    }

    /// MI_PREDICATE: compare SRC0 and SRC1 (1:0), load or invert the result into the
    /// value (7:6; KEEP uses the current predicate), and combine it (4:3) with
    /// `MI_PREDICATE_RESULT`.
    fn predicate(&mut self, c: &Cmd<'_>) {
        let base = self.base();
        let src0 = self.eng.regs.read64(base, base.wrapping_add(regs::MI_PREDICATE_SRC0), 0);
        let src1 = self.eng.regs.read64(base, base.wrapping_add(regs::MI_PREDICATE_SRC1), 0);
        let cmp = match c.dw0 & 3 {
            0 => true,
            1 => false,
            2 => src0 == src1,
            _ => {
                // DELTAS_EQUAL compares against values the model does not keep.
                self.unsupported(c);
                false
            }
        };
        let cur = self.eng.regs.predicate(base);
        let val = match (c.dw0 >> 6) & 3 {
            2 => cmp,
            3 => !cmp,
            _ => cur,
        };
        let new = match (c.dw0 >> 3) & 3 {
            0 => val,
            1 => cur & val,
            2 => cur | val,
            _ => cur ^ val,
        };
        self.eng.regs.set_predicate(base, new);
    }

    fn alu_read(&self, op: u32) -> Option<u64> {
        let flag = |f: bool| if f { u64::MAX } else { 0 };
        match op {
            0..=0x0f => Some(self.eng.regs.gpr(self.base(), op)),
            ALU_SRCA => Some(self.alu.srca),
            ALU_SRCB => Some(self.alu.srcb),
            ALU_ACCU => Some(self.alu.accu),
            ALU_ZF => Some(flag(self.alu.zf)),
            ALU_CF => Some(flag(self.alu.cf)),
            _ => None,
        }
    }

    /// One ALU instruction: opcode 31:20, operand 1 19:10, operand 2 9:0. Returns
    /// false for an instruction the model does not implement (it does nothing).
    fn alu(&mut self, insn: u32) -> bool {
        let opc = insn >> 20;
        let op1 = (insn >> 10) & 0x3ff;
        let op2 = insn & 0x3ff;
        let load = |s: &mut Self, v: u64| match op1 {
            ALU_SRCA => {
                s.alu.srca = v;
                true
            }
            ALU_SRCB => {
                s.alu.srcb = v;
                true
            }
            _ => false,
        };
        let (a, b) = (self.alu.srca, self.alu.srcb);
        let logic = |s: &mut Self, v: u64| {
            s.alu.accu = v;
            s.alu.zf = v == 0;
            s.alu.cf = false;
            true
        };
        match opc {
            0x000 => true,
            0x080 => self.alu_read(op2).is_some_and(|v| load(self, v)),
            0x480 => self.alu_read(op2).is_some_and(|v| load(self, !v)),
            0x081 => load(self, 0),
            0x481 => load(self, 1),
            0x100 | 0x101 => {
                let (v, carry) = if opc == 0x100 { a.overflowing_add(b) } else { a.overflowing_sub(b) };
                self.alu.accu = v;
                self.alu.zf = v == 0;
                self.alu.cf = carry;
                true
            }
            0x102 => logic(self, a & b),
            0x103 => logic(self, a | b),
            0x104 => logic(self, a ^ b),
            0x105..=0x107 if self.eng.gen >= 125 => {
                let sh = (b & 63) as u32;
                let v = match opc {
                    0x105 => a << sh,
                    0x106 => a >> sh,
                    _ => ((a as i64) >> sh) as u64,
                };
                logic(self, v)
            }
            0x180 | 0x580 => match (op1, self.alu_read(op2)) {
                (0..=0x0f, Some(v)) => {
                    let v = if opc == 0x580 { !v } else { v };
                    let base = self.base();
                    self.eng.regs.set_gpr(base, op1, v);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// MI_ATOMIC on a dword or qword: opcode 15:8 (bit 5 of it selects the qword
    /// forms), inline operands (18) in dwords 3-6, return data (16) of the old
    /// memory value to `CS_GPR0`.
    fn atomic(&mut self, c: &Cmd<'_>) -> Result<(), Fault> {
        let opc = (c.dw0 >> 8) & 0xff;
        let qword = match opc >> 4 {
            0 => false,
            2 => true,
            _ => {
                self.unsupported(c); // the octword compare-and-write
                return Ok(());
            }
        };
        let op = opc & 0xf;
        let needs_operands = !matches!(op, 5 | 6);
        if needs_operands && !c.bit(18) {
            // Operands outside the command are not modelled.
            self.unsupported(c);
            return Ok(());
        }
        let a = c.addr(1, 0x3)?;
        let (s1, s2) = if qword {
            (u64::from(c.dw(3)?) | (u64::from(c.dw(5)?) << 32), u64::from(c.dw(4)?) | (u64::from(c.dw(6)?) << 32))
        } else {
            (u64::from(c.dw(3)?), u64::from(c.dw(4)?))
        };
        let old = if qword { self.mem.read_u64(a)? } else { u64::from(self.mem.read_u32(a)?) };
        // Sign-extends the operand width to i64 for IMAX/IMIN.
        let signed = |v: u64| if qword { v as i64 } else { i64::from(v as u32 as i32) };
        let new = match op {
            1 => old & s1,
            2 => old | s1,
            3 => old ^ s1,
            4 => s1,
            5 => old.wrapping_add(1),
            6 => old.wrapping_sub(1),
            7 => old.wrapping_add(s1),
            8 => old.wrapping_sub(s1),
            9 => s1.wrapping_sub(old),
            0xa => {
                if signed(s1) > signed(old) {
                    s1
                } else {
                    old
                }
            }
            0xb => {
                if signed(s1) < signed(old) {
                    s1
                } else {
                    old
                }
            }
            0xc => old.max(s1),
            0xd => old.min(s1),
            0xe => {
                if old == s1 {
                    s2
                } else {
                    old
                }
            }
            _ => {
                self.unsupported(c);
                return Ok(());
            }
        };
        if qword {
            self.mem.write_u64(a, new)?;
        } else {
            self.mem.write_u32(a, new as u32)?;
        }
        if c.bit(16) {
            let base = self.base();
            self.eng.regs.set_gpr(base, 0, old);
        }
        Ok(())
    }

    /// PIPE_CONTROL: Post Sync Operation in dw1 15:14 (1 immediate, 2 depth count, 3
    /// timestamp) to the address in dw2-3 with the qword in dw4-5; LRI Post Sync
    /// Operation (dw1 bit 23) writes dw4 to the register at dw2 instead; Store Data
    /// Index (dw1 bit 21) targets the hardware status page, which is not in the VM.
    fn pipe_control(&mut self, c: &Cmd<'_>) -> Result<Step, Fault> {
        let dw1 = c.dw(1)?;
        if dw1 & (1 << 23) != 0 {
            let reg = c.dw(2)? & REG_MASK;
            let v = c.dw(4)?;
            let base = self.base();
            self.eng.regs.write(base, reg, v);
            return Ok(Step::Next);
        }
        let op = (dw1 >> 14) & 3;
        if op == 0 || dw1 & (1 << 21) != 0 {
            return Ok(Step::Next);
        }
        let a = c.addr(2, 0x3)?;
        let v = match op {
            1 => u64::from(c.dw(4)?) | (u64::from(c.dw(5)?) << 32),
            2 => 0,
            _ => self.ts(),
        };
        self.mem.write_u64(a, v)?;
        Ok(Step::Next)
    }
}

/// Executes the batch at `start` until its end, a hang (`deadline`) or a fault.
pub(crate) fn execute(mem: &dyn GpuMemory, eng: &mut Engine<'_>, start: u64, deadline: Instant) -> Outcome {
    let mut s = Streamer { mem, eng, deadline, alu: Alu::default() };
    let mut ip = start;
    let mut stack: Vec<u64> = Vec::new();
    let mut commands: u64 = 0;
    loop {
        commands = commands.saturating_add(1);
        if commands.is_multiple_of(256) && Instant::now() >= deadline {
            return Outcome::Hang { at: ip, dw0: mem.read_u32(ip).ok() };
        }
        let dw0 = match mem.read_u32(ip) {
            Ok(v) => v,
            Err(Fault(a)) => return Outcome::PageFault { addr: a, at: ip, dw0: None },
        };
        let look = cmd_len::lookup(dw0, s.eng.gen, s.eng.kind);
        if let Lookup::Unknown(_) = look {
            let st = &mut s.eng.stats;
            st.unknown = st.unknown.saturating_add(1);
            st.first_unknown.get_or_insert((ip, dw0));
        }
        let len = look.dwords(dw0);
        let c = Cmd { mem, ip, dw0, len };
        let step = match s.exec(&c) {
            Ok(step) => step,
            Err(Fault(a)) => return Outcome::PageFault { addr: a, at: ip, dw0: Some(dw0) },
        };
        let next = ip.checked_add(4 * u64::from(len));
        match step {
            Step::Next => match next {
                Some(n) => ip = n,
                None => return Outcome::PageFault { addr: ip, at: ip, dw0: Some(dw0) },
            },
            Step::Jump(t) => ip = t,
            Step::Call(t) => {
                let Some(n) = next else {
                    return Outcome::PageFault { addr: ip, at: ip, dw0: Some(dw0) };
                };
                if stack.len() + 1 >= MAX_DEPTH {
                    return Outcome::Invalid { at: ip, dw0 };
                }
                stack.push(n);
                ip = t;
            }
            Step::EndLevel => match stack.pop() {
                Some(ret) => ip = ret,
                None => return Outcome::Completed { commands },
            },
            Step::EndAll => return Outcome::Completed { commands },
            Step::Hang => return Outcome::Hang { at: ip, dw0: Some(dw0) },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cmd_len::{Len, COPY, RENDER, TABLE, VEBOX, VIDEO, VIDEO_PIPELINE};
    use std::cell::RefCell;
    use std::time::Duration;

    /// A flat test memory from VA 0x10000 of `n` dwords.
    pub(crate) struct Flat(pub(crate) RefCell<Vec<u32>>);
    const BASE: u64 = 0x10000;

    impl GpuMemory for Flat {
        fn read_u32(&self, va: u64) -> Result<u32, Fault> {
            let i = va.checked_sub(BASE).ok_or(Fault(va))? / 4;
            self.0.borrow().get(i as usize).copied().ok_or(Fault(va))
        }
        fn write_u32(&self, va: u64, v: u32) -> Result<(), Fault> {
            let i = va.checked_sub(BASE).ok_or(Fault(va))? / 4;
            let mut m = self.0.borrow_mut();
            let slot = m.get_mut(i as usize).ok_or(Fault(va))?;
            *slot = v;
            Ok(())
        }
    }

    struct Run {
        o: Outcome,
        m: Vec<u32>,
        stats: Stats,
        regs: RegFile,
    }

    fn run_on(cmds: &[u32], mem_dw: usize, ms: u64, kind: u8, gen: u16, mmio_base: u32) -> Run {
        let mut m = vec![0u32; mem_dw.max(cmds.len())];
        m[..cmds.len()].copy_from_slice(cmds);
        let flat = Flat(RefCell::new(m));
        let mut regs = RegFile::new(gen);
        let ts = || 0x1_2345_6789u64;
        let mut e = Engine { mmio_base, kind, gen, regs: &mut regs, timestamp: &ts, stats: Stats::default() };
        let o = execute(&flat, &mut e, BASE, Instant::now() + Duration::from_millis(ms));
        let stats = e.stats;
        Run { o, m: flat.0.into_inner(), stats, regs }
    }

    fn run(cmds: &[u32], mem_dw: usize, ms: u64) -> (Outcome, Vec<u32>) {
        let r = run_on(cmds, mem_dw, ms, RENDER, 120, 0x2000);
        (r.o, r.m)
    }

    fn completed(o: Outcome) -> bool {
        matches!(o, Outcome::Completed { .. })
    }

    const END: u32 = 0x0a << 23;
    const SDI: u32 = 0x20 << 23;
    const LRI1: u32 = (0x22 << 23) | 1;
    const SRM: u32 = (0x24 << 23) | 2;
    const LRM: u32 = (0x29 << 23) | 2;
    const LRR: u32 = (0x2a << 23) | 1;
    const BBS: u32 = (0x31 << 23) | (1 << 8) | 1;
    const NOOP: u32 = 0;

    /// Target address (dword index `i` of the flat memory).
    fn t(i: u32) -> u32 {
        BASE as u32 + 4 * i
    }

    /// Issue 10, input 1: iris/ANV's PIPE_CONTROL + PIPELINE_SELECT(GPGPU) in a fresh
    /// zero-filled BO. PIPELINE_SELECT has no length field: read as one, its mask bits
    /// (0x13) made it 21 dwords long, past the MI_BATCH_BUFFER_END into zeroes and off
    /// the end of the object.
    #[test]
    fn pipeline_select_is_one_dword() {
        let cmds = [0x7a00_0004, 1 << 20, 0, 0, 0, 0, 0x6904_1312, NOOP, NOOP, NOOP, END];
        let r = run_on(&cmds, cmds.len() + 8, 1000, RENDER, 120, 0x2000);
        assert_eq!(r.o, Outcome::Completed { commands: 6 });
        assert_eq!(r.stats.unknown, 0);
        // The same with 3DSTATE_VF_STATISTICS, also length-less.
        let cmds = [0x680b_0001, END];
        let r = run_on(&cmds, cmds.len(), 1000, RENDER, 90, 0x2000);
        assert_eq!(r.o, Outcome::Completed { commands: 2 });
    }

    /// Issue 10, input 2: ANV's and iris' gen12 aux-table invalidation, an LRI of 1 to
    /// GFX_CCS_AUX_NV (0x4208) and a register-poll MI_SEMAPHORE_WAIT for it to read 0.
    #[test]
    fn aux_invalidation_wait_completes() {
        let cmds = [LRI1, 0x4208, 1, 0x0e01_c002, 0, 0x4208, 0, END];
        let start = Instant::now();
        let r = run_on(&cmds, 64, 5000, RENDER, 120, 0x2000);
        assert_eq!(r.o, Outcome::Completed { commands: 3 });
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(r.regs.read(0x2000, 0x4208, 0), 0);
        // The copy engine's register on the copy engine, the compute one on CCS.
        for (reg, kind, base) in [(0x4248, COPY, 0x22000), (0x42c8, crate::cmd_len::COMPUTE, 0x1a000)] {
            let cmds = [LRI1, reg, 1, 0x0e01_c002, 0, reg, 0, END];
            let r = run_on(&cmds, 64, 5000, kind, 125, base);
            assert!(completed(r.o), "{reg:#x}: {:?}", r.o);
        }
        // A register nothing clears keeps the wait waiting: a real hang.
        let cmds = [LRI1, 0x2100, 1, 0x0e01_c002, 0, 0x2100, 0, END];
        let r = run_on(&cmds, 64, 50, RENDER, 120, 0x2000);
        assert_eq!(r.o, Outcome::Hang { at: BASE + 12, dw0: Some(0x0e01_c002) });
    }

    #[test]
    fn store_dword_and_qword() {
        let target = t(0x100);
        let (o, m) =
            run(&[SDI | 2, target, 0, 0xcafe, SDI | (1 << 21) | 3, target + 8, 0, 0x1111, 0x2222, END], 512, 1000);
        assert!(completed(o), "{o:?}");
        assert_eq!(m[0x100], 0xcafe);
        assert_eq!((m[0x102], m[0x103]), (0x1111, 0x2222));
    }

    #[test]
    fn unknown_commands_are_skipped_by_length_and_counted() {
        // 0x7800 is no gen12 command: skipped by the 3D rule (7:0), payload and all.
        let cmds = [0x7800_0002, END, END, END, 0x2000_0000, (0x3f << 23) | 1, END, END, SDI | 2, t(0x100), 0, 7, END];
        let r = run_on(&cmds, 512, 1000, RENDER, 120, 0x2000);
        assert!(completed(r.o), "{:?}", r.o);
        assert_eq!(r.m[0x100], 7);
        assert_eq!(r.stats.unknown, 3);
        assert_eq!(r.stats.first_unknown, Some((BASE, 0x7800_0002)));
    }

    /// 3D family: 8-bit fields, 9-bit binding table edits, length-less commands.
    #[test]
    fn three_d_commands_are_skipped_by_their_lengths() {
        let mut cmds = vec![0x7847_0000 | 0x120]; // BINDING_TABLE_EDIT_PS, 0x122 dwords
        cmds.extend(std::iter::repeat_n(END, 0x121));
        cmds.extend([0x7b00_0105, END, END, END, END, END, END]); // 3DPRIMITIVE, predicated
        cmds.extend([0x7917_0100]); // SO_DECL_LIST, 0x102 dwords
        cmds.extend(std::iter::repeat_n(END, 0x101));
        cmds.extend([0x6101_0014]); // STATE_BASE_ADDRESS, 22 dwords
        cmds.extend(std::iter::repeat_n(END, 21));
        cmds.extend([SDI | 2, t(0x400), 0, 9, END]);
        let r = run_on(&cmds, 0x500, 1000, RENDER, 120, 0x2000);
        assert_eq!(r.o, Outcome::Completed { commands: 6 });
        assert_eq!(r.m[0x400], 9);
        assert_eq!(r.stats.unknown, 0);
    }

    /// Media and video: 16-bit fields on render, 12-bit on the video engines.
    #[test]
    fn media_and_video_commands_are_skipped_by_their_lengths() {
        let mut cmds = vec![0x7000_0007]; // MEDIA_VFE_STATE, 9 dwords
        cmds.extend(std::iter::repeat_n(END, 8));
        cmds.extend([0x7105_050d]); // GPGPU_WALKER with flags in 15:8: 15 dwords
        cmds.extend(std::iter::repeat_n(END, 14));
        cmds.push(END);
        let r = run_on(&cmds, 64, 1000, RENDER, 120, 0x2000);
        assert_eq!(r.o, Outcome::Completed { commands: 3 });
        assert_eq!(r.stats.unknown, 0);
        // MFX_PIPE_MODE_SELECT with bits 15:12 set: only 11:0 is length on VCS.
        let mut cmds = vec![0x7000_f004];
        cmds.extend(std::iter::repeat_n(END, 5));
        cmds.extend([0x6800_0000, (0x26 << 23) | (1 << 14) | 3, t(0x30), 0, 5, 0, END]);
        let r = run_on(&cmds, 64, 1000, VIDEO, 120, 0x1c0000);
        assert_eq!(r.o, Outcome::Completed { commands: 4 });
        assert_eq!((r.m[0x30], r.m[0x31]), (5, 0));
        assert_eq!(r.stats.unknown, 0);
    }

    /// 2D: XY_* commands on the copy engine, 7:0.
    #[test]
    fn blitter_commands_are_skipped_by_their_lengths() {
        let mut cmds = vec![0x54c0_0008]; // XY_SRC_COPY_BLT, 10 dwords
        cmds.extend(std::iter::repeat_n(END, 9));
        cmds.extend([0x5080_0008]); // XY_FAST_COPY_BLT
        cmds.extend(std::iter::repeat_n(END, 9));
        cmds.extend([(0x26 << 23) | (3 << 14) | 3, t(0x40), 0, 0, 0, END]); // MI_FLUSH_DW timestamp
        let r = run_on(&cmds, 128, 1000, COPY, 120, 0x22000);
        assert_eq!(r.o, Outcome::Completed { commands: 4 });
        assert_eq!((r.m[0x40], r.m[0x41]), (0x2345_6789, 1));
        assert_eq!(r.stats.unknown, 0);
    }

    #[test]
    fn second_level_batch_returns() {
        let t0 = t(0x100);
        let sub = t(0x80);
        let mut cmds = vec![0u32; 0x90];
        cmds[..6].copy_from_slice(&[BBS | (1 << 22), sub, 0, SDI | 2, t0, 0]);
        cmds[6] = 2;
        cmds[7] = END;
        cmds[0x80..0x85].copy_from_slice(&[SDI | 2, t0 + 4, 0, 1, END]);
        let (o, m) = run(&cmds, 512, 1000);
        assert!(completed(o), "{o:?}");
        assert_eq!((m[0x100], m[0x101]), (2, 1));
    }

    #[test]
    fn fourth_batch_level_is_invalid() {
        // Calls itself: the third call would make a fourth level.
        let cmds = [BBS | (1 << 22), BASE as u32, 0];
        let (o, _) = run(&cmds, 64, 1000);
        assert_eq!(o, Outcome::Invalid { at: BASE, dw0: BBS | (1 << 22) });
    }

    /// IGT's spinner: a loop that ends once the dword it compares reads MI_BATCH_BUFFER_END.
    #[test]
    fn conditional_end_stops_a_spinner() {
        const COND_BBE: u32 = (0x36 << 23) | (1 << 21) | 2;
        let cond = t(0x40);
        let loop_ = [COND_BBE, END, cond, 0, BBS, BASE as u32, 0];
        // Greater than MI_BATCH_BUFFER_END: it loops until the deadline.
        let mut cmds = loop_.to_vec();
        cmds.resize(0x40, 0);
        cmds.push(0xffff_ffff);
        let (o, _) = run(&cmds, 128, 50);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
        // Equal: the batch ends, even when called as a second level without bit 18.
        cmds[0x40] = END;
        let (o, _) = run(&cmds, 128, 1000);
        assert!(completed(o), "{o:?}");
        // Not-equal mode (5) with bit 18: ends only the called level.
        assert!(cond_bbe_continues(COND_BBE | (5 << 12), 1, 2));
        assert!(!cond_bbe_continues(COND_BBE | (5 << 12), 2, 2));
        assert!(cond_bbe_continues(0x36 << 23, 3, 2));
    }

    #[test]
    fn self_jump_is_a_hang() {
        let (o, _) = run(&[BBS, BASE as u32, 0], 64, 50);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
    }

    #[test]
    fn semaphore_wait_on_memory() {
        let a = t(0x40);
        let (o, _) = run(&[(0x1c << 23) | (1 << 15) | (4 << 12) | 2, 1, a, 0, END], 128, 50);
        assert_eq!(o, Outcome::Hang { at: BASE, dw0: Some((0x1c << 23) | (1 << 15) | (4 << 12) | 2) });
        let (o, _) = run(&[(0x1c << 23) | (1 << 15) | (4 << 12) | 2, 0, a, 0, END], 128, 1000);
        assert!(completed(o), "{o:?}");
    }

    #[test]
    fn timestamps_registers_copies_and_post_sync() {
        let b = t(0x100);
        #[rustfmt::skip]
        let cmds = [
            SRM, 0x2358, b, 0, // SRM timestamp low
            LRI1, 0x2100, 0xabcd, // LRI
            SRM, 0x2100, b + 4, 0, // SRM of that register
            (0x2e << 23) | 3, b + 8, 0, b + 4, 0, // MI_COPY_MEM_MEM
            0x7a00_0004, 1 << 14, b + 16, 0, 0x55, 0x66, // PIPE_CONTROL write imm
            0x7a00_0004, 3 << 14, b + 24, 0, 0, 0, // PIPE_CONTROL timestamp
            0x7a00_0004, 2 << 14, b + 40, 0, 0, 0, // PIPE_CONTROL depth count
            0x7a00_0004, (1 << 23) | (1 << 14), 0x2104, 0, 0x99, 0, // PIPE_CONTROL LRI post-sync
            SRM, 0x2104, b + 48, 0,
            SRM | (1 << 19), 0x104, b + 52, 0, // the same, relative to the engine
            END,
        ];
        let mut mem = vec![0u32; 512];
        mem[0x10a] = 0xdead;
        mem[0x10b] = 0xdead;
        mem[..cmds.len()].copy_from_slice(&cmds);
        let (o, m) = run(&mem, 512, 1000);
        assert!(completed(o), "{o:?}");
        assert_eq!(m[0x100], 0x2345_6789);
        assert_eq!(m[0x101], 0xabcd);
        assert_eq!(m[0x102], 0xabcd);
        assert_eq!((m[0x104], m[0x105]), (0x55, 0x66));
        assert_eq!((m[0x106], m[0x107]), (0x2345_6789, 1));
        assert_eq!((m[0x10a], m[0x10b]), (0, 0));
        assert_eq!((m[0x10c], m[0x10d]), (0x99, 0x99));
    }

    /// MI_LOAD_REGISTER_MEM/REG, byte write disables, CS MMIO offsets, NOPID.
    #[test]
    fn register_loads_and_stores() {
        let b = t(0x100);
        #[rustfmt::skip]
        let cmds = [
            LRM, 0x2600, b, 0, // GPR0.lo = mem[0x100]
            LRR, 0x2600, 0x2608, // GPR1.lo = GPR0.lo
            LRI1 | (0b0101 << 8), 0x2608, 0xaabb_ccdd, // bytes 0 and 2 kept
            LRR | (1 << 18) | (1 << 19), 0x608, 0x610, // relative: GPR2.lo = GPR1.lo
            NOOP | (1 << 22) | 0x1234, // NOPID
            SRM, 0x2608, b + 4, 0,
            SRM, 0x2610, b + 8, 0,
            SRM, 0x2094, b + 12, 0,
            END,
        ];
        let mut mem = vec![0u32; 512];
        mem[..cmds.len()].copy_from_slice(&cmds);
        mem[0x100] = 0x1122_3344;
        let (o, m) = run(&mem, 512, 1000);
        assert!(completed(o), "{o:?}");
        assert_eq!(m[0x101], 0xaa22_cc44);
        assert_eq!(m[0x102], 0xaa22_cc44);
        assert_eq!(m[0x103], 0x1234);
    }

    /// ALU instruction: opcode, operand 1, operand 2.
    fn alu(opc: u32, a: u32, b: u32) -> u32 {
        (opc << 20) | (a << 10) | b
    }
    const LOAD: u32 = 0x080;
    const LOADINV: u32 = 0x480;
    const LOAD0: u32 = 0x081;
    const LOAD1: u32 = 0x481;
    const ADD: u32 = 0x100;
    const SUB: u32 = 0x101;
    const AND: u32 = 0x102;
    const OR: u32 = 0x103;
    const XOR: u32 = 0x104;
    const STORE: u32 = 0x180;
    const STOREINV: u32 = 0x580;
    const A: u32 = 0x20;
    const B: u32 = 0x21;
    const ACCU: u32 = 0x31;
    const ZF: u32 = 0x32;
    const CF: u32 = 0x33;

    fn gpr_lri(n: u32, v: u64) -> [u32; 5] {
        [(0x22 << 23) | 3, 0x2600 + 8 * n, v as u32, 0x2604 + 8 * n, (v >> 32) as u32]
    }

    #[test]
    fn mi_math_alu() {
        let mut cmds = Vec::new();
        cmds.extend(gpr_lri(0, 5));
        cmds.extend(gpr_lri(1, 7));
        cmds.extend(gpr_lri(2, u64::MAX));
        let math = [
            alu(LOAD, A, 0),
            alu(LOAD, B, 1),
            alu(SUB, 0, 0),
            alu(STORE, 3, ACCU), // R3 = 5 - 7
            alu(STORE, 4, CF),   // R4 = borrow: ~0
            alu(LOAD, A, 2),
            alu(LOAD1, B, 0),
            alu(ADD, 0, 0),
            alu(STORE, 5, ZF), // R5 = (MAX + 1 == 0): ~0
            alu(STORE, 6, CF), // R6 = carry: ~0
            alu(LOADINV, A, 0),
            alu(LOAD, B, 1),
            alu(AND, 0, 0),
            alu(STORE, 7, ACCU), // !5 & 7 = 2
            alu(LOAD0, A, 0),
            alu(OR, 0, 0),
            alu(STOREINV, 8, ACCU), // !(0 | 7)
            alu(LOAD, A, 1),
            alu(XOR, 0, 0),
            alu(STORE, 9, ZF),  // 7 ^ 7 == 0: ~0
            alu(STORE, 10, CF), // logic ops clear CF
        ];
        cmds.push((0x1a << 23) | (math.len() as u32 - 1));
        cmds.extend(math);
        for r in 3..=10u32 {
            cmds.extend([(0x24 << 23) | 2, 0x2600 + 8 * r, t(0x200 + 2 * r), 0]);
            cmds.extend([(0x24 << 23) | 2, 0x2604 + 8 * r, t(0x200 + 2 * r + 1), 0]);
        }
        cmds.push(END);
        let r = run_on(&cmds, 0x300, 1000, RENDER, 120, 0x2000);
        assert!(completed(r.o), "{:?}", r.o);
        assert_eq!(r.stats.unsupported, 0);
        let q = |n: usize| u64::from(r.m[0x200 + 2 * n]) | (u64::from(r.m[0x201 + 2 * n]) << 32);
        assert_eq!(q(3), 5u64.wrapping_sub(7));
        assert_eq!(q(4), u64::MAX);
        assert_eq!(q(5), u64::MAX);
        assert_eq!(q(6), u64::MAX);
        assert_eq!(q(7), 2);
        assert_eq!(q(8), !7);
        assert_eq!(q(9), u64::MAX);
        assert_eq!(q(10), 0);
        // Shifts exist from 12.5 only; on 12.0 they are counted and do nothing.
        let mut cmds = Vec::new();
        cmds.extend(gpr_lri(0, 3));
        cmds.extend([(0x1a << 23) | 3, alu(LOAD, A, 0), alu(LOAD1, B, 0), alu(0x105, 0, 0), alu(STORE, 1, ACCU)]);
        cmds.extend([(0x24 << 23) | 2, 0x2608, t(0x100), 0, END]);
        let r = run_on(&cmds, 0x200, 1000, RENDER, 125, 0x2000);
        assert_eq!(r.m[0x100], 6);
        let r = run_on(&cmds, 0x200, 1000, RENDER, 120, 0x2000);
        assert_eq!(r.stats.unsupported, 1);
    }

    /// MI_PREDICATE into MI_PREDICATE_RESULT, and predicated MI_BATCH_BUFFER_START, as
    /// Mesa's `mi_builder` uses them for conditional jumps.
    #[test]
    fn predicate_and_predicated_jumps() {
        const MI_PRED: u32 = 0x0c << 23;
        const LOADOP: u32 = 2 << 6;
        const LOADINV: u32 = 3 << 6;
        const SRCS_EQUAL: u32 = 2;
        const OR: u32 = 2 << 3;
        let sub = 0x80u32;
        let mut cmds = vec![0u32; 0x90];
        #[rustfmt::skip]
        let body = [
            LRI1 | 6, 0x2400, 5, 0x2404, 0, 0x2408, 5, 0x240c, 0, // SRC0 = SRC1 = 5
            MI_PRED | LOADINV | SRCS_EQUAL, // false
            SRM, 0x2418, t(0x60), 0,
            BBS | (1 << 15), t(0x70), 0, // not taken
            MI_PRED | LOADOP | OR | 1, // false | COMPARE_FALSE = false
            SRM, 0x2418, t(0x61), 0,
            MI_PRED | LOADOP | SRCS_EQUAL, // true
            SRM, 0x2418, t(0x62), 0,
            BBS | (1 << 15) | (1 << 22), t(sub), 0, // taken, second level
            SRM | (1 << 21), 0x2418, t(0x63), 0, // predicated store: done
            END,
        ];
        cmds[..body.len()].copy_from_slice(&body);
        cmds[0x70] = SDI | 2;
        cmds[0x71] = t(0x64);
        cmds[0x73] = 0xbad;
        cmds[0x74] = END;
        cmds[sub as usize..sub as usize + 5].copy_from_slice(&[SDI | 2, t(0x65), 0, 0x600d, END]);
        cmds[0x60] = 0xffff;
        cmds[0x61] = 0xffff;
        let r = run_on(&cmds, 0x100, 1000, RENDER, 120, 0x2000);
        assert!(completed(r.o), "{:?}", r.o);
        assert_eq!(&r.m[0x60..0x66], &[0, 0, 1, 1, 0, 0x600d]);
    }

    #[test]
    fn mi_atomic_ops() {
        let atomic = |op: u32, inline: bool, ret: bool| {
            (0x2f << 23) | (op << 8) | (u32::from(ret) << 16) | (u32::from(inline) << 18) | if inline { 9 } else { 1 }
        };
        let a = t(0x100);
        let mut mem = vec![0u32; 0x200];
        #[rustfmt::skip]
        let cmds = [
            vec![atomic(0x05, false, false), a, 0],                        // INC
            vec![atomic(0x07, true, true), a + 4, 0, 10, 0, 0, 0, 0, 0, 0, 0], // ADD 10, return
            vec![atomic(0x27, true, false), a + 8, 0, 1, 0, 1, 0, 0, 0, 0, 0], // ADD8B 1 + 2^32
            vec![atomic(0x0e, true, false), a + 16, 0, 3, 9, 0, 0, 0, 0, 0, 0], // CMP_WR: 3 -> 9
            vec![atomic(0x0e, true, false), a + 20, 0, 3, 9, 0, 0, 0, 0, 0, 0], // CMP_WR: no match
            vec![atomic(0x09, true, false), a + 24, 0, 100, 0, 0, 0, 0, 0, 0, 0], // RSUB
            vec![atomic(0x0a, true, false), a + 28, 0, 1, 0, 0, 0, 0, 0, 0, 0], // IMAX(-1, 1)
            vec![atomic(0x0c, true, false), a + 32, 0, 1, 0, 0, 0, 0, 0, 0, 0], // UMAX(~0, 1)
            vec![atomic(0x07, false, false), a + 36, 0],                      // ADD, no operands
            vec![(0x24 << 23) | 2, 0x2600, a + 40, 0, END],
        ]
        .concat();
        mem[..cmds.len()].copy_from_slice(&cmds);
        mem[0x100] = 41;
        mem[0x101] = 5;
        mem[0x102] = 0xffff_ffff;
        mem[0x104] = 3;
        mem[0x105] = 4;
        mem[0x106] = 30;
        mem[0x107] = 0xffff_ffff;
        mem[0x108] = 0xffff_ffff;
        mem[0x109] = 77;
        let r = run_on(&mem, 0x200, 1000, RENDER, 120, 0x2000);
        assert!(completed(r.o), "{:?}", r.o);
        assert_eq!(r.m[0x100], 42);
        assert_eq!(r.m[0x101], 15);
        assert_eq!((r.m[0x102], r.m[0x103]), (0, 2));
        assert_eq!((r.m[0x104], r.m[0x105]), (9, 4));
        assert_eq!(r.m[0x106], 70);
        assert_eq!(r.m[0x107], 1);
        assert_eq!(r.m[0x108], 0xffff_ffff);
        assert_eq!(r.m[0x109], 77, "no inline operands: not modelled, nothing written");
        assert_eq!(r.stats.unsupported, 1);
        assert_eq!(r.m[0x10a], 5, "return data: old value in GPR0");
    }

    #[test]
    fn unbound_access_is_a_page_fault() {
        let (o, _) = run(&[SDI | 2, 0x9000_0000, 0, 1, END], 64, 1000);
        assert_eq!(o, Outcome::PageFault { addr: 0x9000_0000, at: BASE, dw0: Some(SDI | 2) });
    }

    #[test]
    fn running_off_the_end_is_a_page_fault() {
        let (o, _) = run(&[0, 0], 2, 1000);
        assert_eq!(o, Outcome::PageFault { addr: BASE + 8, at: BASE + 8, dw0: None });
    }

    /// xorshift64*: a small deterministic generator for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Random well-formed sequences of skipped commands, built from the length table
    /// with random payload (often MI_BATCH_BUFFER_END) and random flag bits, always stop
    /// at their own MI_BATCH_BUFFER_END, on every engine and graphics version.
    #[test]
    fn random_sequences_stop_at_their_end() {
        let engines = [(RENDER, 0x2000), (COPY, 0x22000), (VIDEO, 0x1c0000), (VEBOX, 0x1c8000)];
        let gens = [90, 110, 120, 125];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            let (kind, base) = engines[round % engines.len()];
            let gen = gens[(round / engines.len()) % gens.len()];
            let pool: Vec<&crate::cmd_len::Cmd> = TABLE
                .iter()
                .chain(std::iter::once(&VIDEO_PIPELINE))
                .filter(|c| c.engines & kind != 0 && (c.gens.0..=c.gens.1).contains(&gen) && !is_executed(c.key))
                .collect();
            assert!(!pool.is_empty());
            let mut batch = Vec::new();
            let n = 1 + rng.below(40);
            for _ in 0..n {
                let c = pool[rng.below(pool.len() as u64) as usize];
                let (field, payload) = match c.len {
                    Len::Fixed(n) => (0, n - 1),
                    Len::Field(bits) => {
                        let max = (1u64 << bits) - 1;
                        // Mostly short commands, sometimes up to the field's maximum.
                        let v =
                            if rng.below(10) == 0 { rng.below(max.min(600) + 1) } else { rng.below(max.min(12) + 1) };
                        (v as u32, v as u32 + 1)
                    }
                };
                let field_mask = match c.len {
                    Len::Fixed(_) => 0,
                    Len::Field(bits) => (1u32 << bits) - 1,
                };
                let flags = rng.next() as u32 & !c.mask & !field_mask;
                batch.push(c.key | flags | field);
                for _ in 0..payload {
                    batch.push(if rng.below(3) == 0 { END } else { rng.next() as u32 });
                }
            }
            batch.push(END);
            // Zeroes after the end (MI_NOOPs), as in a fresh object.
            let r = run_on(&batch, batch.len() + 16, 5000, kind, gen, base);
            assert_eq!(r.o, Outcome::Completed { commands: n + 1 }, "round {round}: {batch:x?}");
            assert_eq!(r.stats.unknown, 0, "round {round}");
        }
    }
}
