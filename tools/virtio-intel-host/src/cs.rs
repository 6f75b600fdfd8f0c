// SPDX-License-Identifier: MIT
//! A software command streamer for Gen12 engines.
//!
//! It executes the MI/PIPE_CONTROL subset the tests need over a GPU virtual address
//! space ([`GpuMemory`]) and skips every other command by its length field, as the
//! real command streamer would parse past it:
//!
//! | command | opcode (dw0) | effect |
//! |---|---|---|
//! | MI_NOOP | 0x00 | none |
//! | MI_ARB_CHECK | 0x05 | none |
//! | MI_BATCH_BUFFER_END | 0x0a | end of the batch, or return from a second-level batch |
//! | MI_SEMAPHORE_WAIT | 0x1c | polls a dword until the comparison holds |
//! | MI_STORE_DATA_IMM | 0x20 | stores a dword (or, with bit 21, a qword) |
//! | MI_LOAD_REGISTER_IMM | 0x22 | writes (register, value) pairs |
//! | MI_STORE_REGISTER_MEM | 0x24 | stores a register (the CS timestamp is live) |
//! | MI_FLUSH_DW | 0x26 | optional post-sync write of immediate data or timestamp |
//! | MI_COPY_MEM_MEM | 0x2e | copies a dword |
//! | MI_BATCH_BUFFER_START | 0x31 | jumps (chained) or calls (bit 22, second level) |
//! | MI_CONDITIONAL_BATCH_BUFFER_END | 0x36 | ends the batch (or, bit 18, its level) unless a dword compares true |
//! | PIPE_CONTROL | 3D 0x7a00 | optional post-sync write of immediate data or timestamp |
//!
//! A batch that is still running at its deadline is a hang; an access to an unbound
//! address is a GPU page fault. Both end the batch and are reported to the caller.

use std::collections::HashMap;
use std::time::Instant;

/// A GPU page fault at a virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault(pub(crate) u64);

/// The engine's view of memory: the VM the batch runs in.
pub(crate) trait GpuMemory {
    fn read_u32(&self, va: u64) -> Result<u32, Fault>;
    fn write_u32(&self, va: u64, v: u32) -> Result<(), Fault>;
    fn write_u64(&self, va: u64, v: u64) -> Result<(), Fault> {
        self.write_u32(va, v as u32)?;
        self.write_u32(va.wrapping_add(4), (v >> 32) as u32)
    }
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Reached MI_BATCH_BUFFER_END of the first-level batch.
    Completed { commands: u64 },
    /// Still running at the deadline.
    Hang { at: u64 },
    /// Touched an unbound address.
    PageFault(u64),
    /// A command the hardware would reject (e.g. a fourth batch level).
    Invalid { at: u64 },
}

/// Per-engine state the streamer needs.
pub(crate) struct Engine<'a> {
    /// MMIO base of the engine (RCS 0x2000, BCS 0x22000, ...).
    pub(crate) mmio_base: u32,
    /// Register file for LRI/SRM (the timestamp registers are synthesized).
    pub(crate) regs: &'a mut HashMap<u32, u32>,
    /// Current CS timestamp in ticks.
    pub(crate) timestamp: &'a dyn Fn() -> u64,
}

/// Offset of RING_TIMESTAMP (low dword) from the engine's MMIO base.
pub(crate) const RING_TIMESTAMP: u32 = 0x358;
/// Offset of RING_TIMESTAMP_UDW from the engine's MMIO base.
pub(crate) const RING_TIMESTAMP_UDW: u32 = 0x35c;

const MI_NOOP: u32 = 0x00;
const MI_ARB_CHECK: u32 = 0x05;
const MI_BATCH_BUFFER_END: u32 = 0x0a;
const MI_SEMAPHORE_WAIT: u32 = 0x1c;
const MI_STORE_DATA_IMM: u32 = 0x20;
const MI_LOAD_REGISTER_IMM: u32 = 0x22;
const MI_STORE_REGISTER_MEM: u32 = 0x24;
const MI_FLUSH_DW: u32 = 0x26;
const MI_COPY_MEM_MEM: u32 = 0x2e;
const MI_BATCH_BUFFER_START: u32 = 0x31;
const MI_CONDITIONAL_BATCH_BUFFER_END: u32 = 0x36;
/// Marks the end of the whole batch, all levels (`Ok(Some(END_ALL))`).
const END_ALL: u64 = u64::MAX - 3;

/// Whether MI_CONDITIONAL_BATCH_BUFFER_END lets the batch go on: the memory dword `mad`
/// against the inline data `idd`, with the compare operation of dw0 14:12 when the compare
/// bit (21) is set, else "greater than" (the gen8 behaviour).
fn cond_bbe_continues(dw0: u32, mad: u32, idd: u32) -> bool {
    let op = if dw0 & (1 << 21) != 0 { (dw0 >> 12) & 7 } else { 0 };
    match op {
        0 => mad > idd,
        1 => mad >= idd,
        2 => mad < idd,
        3 => mad <= idd,
        4 => mad == idd,
        5 => mad != idd,
        _ => true,
    }
}

/// Maximum batch nesting (first level plus two called levels).
const MAX_DEPTH: usize = 3;

fn addr(lo: u32, hi: u32, align_mask: u32) -> u64 {
    (u64::from(hi & 0xffff) << 32) | u64::from(lo & !align_mask)
}

/// Total length in dwords of the command starting with `dw0`.
pub(crate) fn command_len(dw0: u32) -> u32 {
    match dw0 >> 29 {
        // MI: opcodes below 0x10 are single-dword; the rest carry a length in 7:0
        // (MI_STORE_DATA_IMM has a 10-bit field).
        0 => {
            let op = (dw0 >> 23) & 0x3f;
            if op < 0x10 {
                1
            } else if op == MI_STORE_DATA_IMM {
                (dw0 & 0x3ff) + 2
            } else {
                (dw0 & 0xff) + 2
            }
        }
        // 2D (blitter) and 3D/media/GPGPU: DWord Length in 7:0.
        2 | 3 => (dw0 & 0xff) + 2,
        // Reserved command types: advance by one dword, as a NOOP.
        _ => 1,
    }
}

fn semaphore_holds(op: u32, sad: u32, sdd: u32) -> bool {
    match op {
        0 => sad > sdd,
        1 => sad >= sdd,
        2 => sad < sdd,
        3 => sad <= sdd,
        4 => sad == sdd,
        5 => sad != sdd,
        _ => true,
    }
}

/// Executes the batch at `start` until its end, a hang (`deadline`) or a fault.
pub(crate) fn execute(mem: &dyn GpuMemory, eng: &mut Engine<'_>, start: u64, deadline: Instant) -> Outcome {
    let mut ip = start;
    let mut stack: Vec<u64> = Vec::new();
    let mut commands: u64 = 0;
    loop {
        commands += 1;
        if commands.is_multiple_of(256) && Instant::now() >= deadline {
            return Outcome::Hang { at: ip };
        }
        let dw0 = match mem.read_u32(ip) {
            Ok(v) => v,
            Err(Fault(a)) => return Outcome::PageFault(a),
        };
        let len = command_len(dw0);
        let dw = |i: u32| mem.read_u32(ip.wrapping_add(4 * u64::from(i)));
        let r: Result<Option<u64>, Fault> = (|| {
            if dw0 >> 29 == 0 {
                match (dw0 >> 23) & 0x3f {
                    MI_NOOP | MI_ARB_CHECK => {}
                    MI_BATCH_BUFFER_END => return Ok(Some(u64::MAX)),
                    MI_STORE_DATA_IMM => {
                        let a = addr(dw(1)?, dw(2)?, 0x3);
                        if dw0 & (1 << 21) != 0 {
                            mem.write_u64(a & !7, u64::from(dw(3)?) | (u64::from(dw(4)?) << 32))?;
                        } else {
                            for i in 0..len.saturating_sub(3) {
                                mem.write_u32(a + 4 * u64::from(i), dw(3 + i)?)?;
                            }
                        }
                    }
                    MI_LOAD_REGISTER_IMM => {
                        let mut i = 1;
                        while i + 1 < len {
                            let reg = dw(i)? & 0x7f_fffc;
                            let v = dw(i + 1)?;
                            eng.regs.insert(reg, v);
                            i += 2;
                        }
                    }
                    MI_STORE_REGISTER_MEM => {
                        let reg = dw(1)? & 0x7f_fffc;
                        let a = addr(dw(2)?, dw(3)?, 0x3);
                        let ts = (eng.timestamp)();
                        let v = if reg == eng.mmio_base + RING_TIMESTAMP {
                            ts as u32
                        } else if reg == eng.mmio_base + RING_TIMESTAMP_UDW {
                            (ts >> 32) as u32
                        } else {
                            eng.regs.get(&reg).copied().unwrap_or(0)
                        };
                        mem.write_u32(a, v)?;
                    }
                    MI_FLUSH_DW => {
                        let op = (dw0 >> 14) & 3;
                        if op != 0 && len >= 4 {
                            let a = addr(dw(1)?, dw(2)?, 0x7);
                            if op == 1 {
                                if len >= 5 {
                                    mem.write_u64(a, u64::from(dw(3)?) | (u64::from(dw(4)?) << 32))?;
                                } else {
                                    mem.write_u32(a, dw(3)?)?;
                                }
                            } else if op == 3 {
                                mem.write_u64(a, (eng.timestamp)())?;
                            }
                        }
                    }
                    MI_COPY_MEM_MEM => {
                        let dst = addr(dw(1)?, dw(2)?, 0x3);
                        let src = addr(dw(3)?, dw(4)?, 0x3);
                        let v = mem.read_u32(src)?;
                        mem.write_u32(dst, v)?;
                    }
                    MI_SEMAPHORE_WAIT => {
                        let sdd = dw(1)?;
                        let a = addr(dw(2)?, dw(3)?, 0x3);
                        let op = (dw0 >> 12) & 7;
                        let mut spins: u32 = 0;
                        loop {
                            if semaphore_holds(op, mem.read_u32(a)?, sdd) {
                                break;
                            }
                            if Instant::now() >= deadline {
                                return Ok(Some(u64::MAX - 1));
                            }
                            spins = spins.saturating_add(1);
                            if spins < 64 {
                                std::hint::spin_loop();
                            } else {
                                std::thread::sleep(std::time::Duration::from_micros(50));
                            }
                        }
                    }
                    MI_CONDITIONAL_BATCH_BUFFER_END => {
                        let idd = dw(1)?;
                        let mad = mem.read_u32(addr(dw(2)?, dw(3)?, 0x7))?;
                        if !cond_bbe_continues(dw0, mad, idd) {
                            // Bit 18: end only the current level, as MI_BATCH_BUFFER_END does.
                            return Ok(Some(if dw0 & (1 << 18) != 0 { u64::MAX } else { END_ALL }));
                        }
                    }
                    MI_BATCH_BUFFER_START => {
                        let target = addr(dw(1)?, dw(2)?, 0x3);
                        if dw0 & (1 << 22) != 0 {
                            if stack.len() + 1 >= MAX_DEPTH {
                                return Ok(Some(u64::MAX - 2));
                            }
                            stack.push(ip + 4 * u64::from(len));
                        }
                        return Ok(Some(target));
                    }
                    _ => {}
                }
            } else if dw0 >> 16 == 0x7a00 {
                // PIPE_CONTROL: post-sync operation in dw1 15:14, address dw2-3, data dw4-5.
                let op = (dw(1)? >> 14) & 3;
                if len >= 6 {
                    let a = addr(dw(2)?, dw(3)?, 0x7);
                    match op {
                        1 => mem.write_u64(a, u64::from(dw(4)?) | (u64::from(dw(5)?) << 32))?,
                        3 => mem.write_u64(a, (eng.timestamp)())?,
                        _ => {}
                    }
                }
            }
            Ok(None)
        })();
        match r {
            Err(Fault(a)) => return Outcome::PageFault(a),
            Ok(Some(u64::MAX)) => match stack.pop() {
                Some(ret) => ip = ret,
                None => return Outcome::Completed { commands },
            },
            Ok(Some(x)) if x == u64::MAX - 1 => return Outcome::Hang { at: ip },
            Ok(Some(x)) if x == u64::MAX - 2 => return Outcome::Invalid { at: ip },
            Ok(Some(END_ALL)) => return Outcome::Completed { commands },
            Ok(Some(target)) => ip = target,
            Ok(None) => ip = ip.wrapping_add(4 * u64::from(len)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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

    fn run(cmds: &[u32], mem_dw: usize, ms: u64) -> (Outcome, Vec<u32>) {
        let mut m = vec![0u32; mem_dw];
        m[..cmds.len()].copy_from_slice(cmds);
        let flat = Flat(RefCell::new(m));
        let mut regs = HashMap::new();
        let ts = || 0x1_2345_6789u64;
        let mut e = Engine { mmio_base: 0x2000, regs: &mut regs, timestamp: &ts };
        let o = execute(&flat, &mut e, BASE, Instant::now() + Duration::from_millis(ms));
        (o, flat.0.into_inner())
    }

    const END: u32 = 0x0a << 23;
    const SDI: u32 = 0x20 << 23;

    #[test]
    fn store_dword_and_qword() {
        let target = (BASE + 0x400) as u32;
        let (o, m) =
            run(&[SDI | 2, target, 0, 0xcafe, SDI | (1 << 21) | 3, target + 8, 0, 0x1111, 0x2222, END], 512, 1000);
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
        assert_eq!(m[0x100], 0xcafe);
        assert_eq!((m[0x102], m[0x103]), (0x1111, 0x2222));
    }

    #[test]
    fn unknown_commands_are_skipped_by_length() {
        let target = (BASE + 0x400) as u32;
        // A 3DSTATE-like command of 4 dwords whose payload looks like MI_BATCH_BUFFER_END.
        let (o, m) = run(&[0x7800_0002, END, END, END, SDI | 2, target, 0, 7, END], 512, 1000);
        assert!(matches!(o, Outcome::Completed { .. }));
        assert_eq!(m[0x100], 7);
    }

    #[test]
    fn second_level_batch_returns() {
        let t = (BASE + 0x400) as u32;
        let sub = (BASE + 0x200) as u32;
        let mut cmds = vec![0u32; 0x90];
        cmds[..6].copy_from_slice(&[(0x31 << 23) | (1 << 22) | (1 << 8) | 1, sub, 0, SDI | 2, t, 0]);
        cmds[6] = 2;
        cmds[7] = END;
        cmds[0x80..0x85].copy_from_slice(&[SDI | 2, t + 4, 0, 1, END]);
        let (o, m) = run(&cmds, 512, 1000);
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
        assert_eq!((m[0x100], m[0x101]), (2, 1));
    }

    /// IGT's spinner: a loop that ends once the dword it compares reads MI_BATCH_BUFFER_END.
    #[test]
    fn conditional_end_stops_a_spinner() {
        const COND_BBE: u32 = (0x36 << 23) | (1 << 21) | 2;
        let cond = (BASE + 0x100) as u32;
        let loop_ = [COND_BBE, END, cond, 0, (0x31 << 23) | (1 << 8) | 1, BASE as u32, 0];
        // Greater than MI_BATCH_BUFFER_END: it loops until the deadline.
        let mut cmds = loop_.to_vec();
        cmds.resize(0x40, 0);
        cmds.push(0xffff_ffff);
        let (o, _) = run(&cmds, 128, 50);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
        // Equal: the batch ends, even when called as a second level without bit 18.
        cmds[0x40] = END;
        let (o, _) = run(&cmds, 128, 1000);
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
        // Not-equal mode (5) with bit 18: ends only the called level.
        assert!(cond_bbe_continues(COND_BBE | (5 << 12), 1, 2));
        assert!(!cond_bbe_continues(COND_BBE | (5 << 12), 2, 2));
        assert!(cond_bbe_continues(0x36 << 23, 3, 2));
    }

    #[test]
    fn self_jump_is_a_hang() {
        let (o, _) = run(&[(0x31 << 23) | (1 << 8) | 1, BASE as u32, 0], 64, 50);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
    }

    #[test]
    fn semaphore_wait_that_never_holds_is_a_hang() {
        let a = (BASE + 0x100) as u32;
        let (o, _) = run(&[(0x1c << 23) | (1 << 15) | (4 << 12) | 2, 1, a, 0, END], 128, 50);
        assert!(matches!(o, Outcome::Hang { .. }), "{o:?}");
    }

    #[test]
    fn semaphore_wait_that_holds_passes() {
        let a = (BASE + 0x100) as u32;
        let (o, _) = run(&[(0x1c << 23) | (1 << 15) | (4 << 12) | 2, 0, a, 0, END], 128, 1000);
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
    }

    #[test]
    fn timestamps_registers_copies_and_post_sync() {
        let t = (BASE + 0x400) as u32;
        let cmds = [
            (0x24 << 23) | 2,
            0x2358,
            t,
            0, // SRM timestamp low
            (0x22 << 23) | 1,
            0x2100,
            0xabcd, // LRI
            (0x24 << 23) | 2,
            0x2100,
            t + 4,
            0, // SRM of that register
            (0x2e << 23) | 3,
            t + 8,
            0,
            t + 4,
            0, // MI_COPY_MEM_MEM
            0x7a00_0004,
            1 << 14,
            t + 16,
            0,
            0x55,
            0x66, // PIPE_CONTROL write imm
            0x7a00_0004,
            3 << 14,
            t + 24,
            0,
            0,
            0, // PIPE_CONTROL timestamp
            (0x26 << 23) | (1 << 14) | 2,
            t + 32,
            0,
            0x77, // MI_FLUSH_DW dword
            END,
        ];
        let (o, m) = run(&cmds, 512, 1000);
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
        assert_eq!(m[0x100], 0x2345_6789);
        assert_eq!(m[0x101], 0xabcd);
        assert_eq!(m[0x102], 0xabcd);
        assert_eq!((m[0x104], m[0x105]), (0x55, 0x66));
        assert_eq!((m[0x106], m[0x107]), (0x2345_6789, 1));
        assert_eq!(m[0x108], 0x77);
    }

    #[test]
    fn unbound_access_is_a_page_fault() {
        let (o, _) = run(&[SDI | 2, 0x9000_0000, 0, 1, END], 64, 1000);
        assert_eq!(o, Outcome::PageFault(0x9000_0000));
    }

    #[test]
    fn running_off_the_end_is_a_page_fault() {
        let (o, _) = run(&[0, 0], 2, 1000);
        assert!(matches!(o, Outcome::PageFault(_)));
    }
}
