// SPDX-License-Identifier: MIT
//! `virtio-intel-host`: a software i915 host for the virtio-intel native context.
//!
//! Built as a `cdylib` with the soname `libvirglrenderer.so.1`, it replaces
//! virglrenderer behind QEMU 11.1's `virtio-gpu-gl` device (loaded through
//! `LD_LIBRARY_PATH`) and behaves like virglrenderer's `i915-experimental` backend on
//! a host i915, with the i915 itself simulated on the CPU:
//!
//! - [`ffi`]: the 29 `virgl_renderer_*` entry points QEMU imports;
//! - [`renderer`]: resources, contexts, the DRM capset, fence reporting threads;
//! - [`ccmd`]: the ccmd dispatcher and the nine i915 ccmds, with the real host's
//!   checks and failure behaviour, and strict-mode protocol checking;
//! - [`proto`]: the wire layout of ccmds and responses;
//! - [`swi915`] and [`cs`]: the software i915 (GEM, contexts, VMs, execbuffer, hangs)
//!   and its command streamer, with the hardware's command lengths in [`cmd_len`] and
//!   its register file in [`regs`]; [`ids`]: its lowest-free id tables;
//! - [`profile`]: what a real GPU's i915 answers to GETPARAM and QUERY;
//! - [`config`], [`log`]: environment knobs (strict mode, fault injection) and the log.

pub mod ffi;

pub(crate) mod ccmd;
pub(crate) mod cmd_len;
pub(crate) mod config;
pub(crate) mod cs;
pub(crate) mod fence;
pub(crate) mod ids;
pub(crate) mod log;
pub(crate) mod mem;
pub(crate) mod profile;
pub(crate) mod proto;
pub(crate) mod regs;
pub(crate) mod renderer;
pub(crate) mod swi915;
pub(crate) mod sync;

#[cfg(test)]
mod tests;
