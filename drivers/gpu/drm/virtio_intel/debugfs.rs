// SPDX-License-Identifier: GPL-2.0

//! The i915 debugfs files IGT needs, in the DRM device's directory
//! (`/sys/kernel/debug/dri/<minor>/`).
//!
//! `i915_gem_drop_caches` mirrors upstream `i915_debugfs.c`: reading gives the mask of
//! `DROP_*` bits it takes (all of them, as i915), writing a mask (any base `kstrtou64`
//! takes) drops what it names. Today:
//! - `DROP_RETIRE`, `DROP_ACTIVE`, `DROP_IDLE`, `DROP_RESET_ACTIVE`: wait (bounded) until
//!   the device answered every command queued so far and the fence work those answers
//!   queued has run, so every retired fence is signalled;
//! - `DROP_FREED`: wait until the host objects of freed GEM objects were released (that
//!   work runs on the device's workqueue);
//! - `DROP_UNBOUND`, `DROP_BOUND`, `DROP_SHRINK_ALL` (i915: unbind and shrink objects):
//!   not acted on yet, objects leave the host-visible window only when it is full;
//! - `DROP_RCU`, `DROP_RESET_SEQNO`: nothing to act on.
//!
//! IGT's `drm_open_driver()` writes it before every test.
//!
//! `i915_params/reset` is the device's copy of i915's `reset` parameter (initialised from the
//! module parameter when the device is bound), where IGT looks for i915's parameters and
//! sets it before its hang detector runs. It is only recorded: the host's i915 resets its
//! GPU by its own policy.
//!
//! `virtio_intel_commands` (not i915's) gives the number of control commands the host
//! answered since probe, each a round trip, for `make bench`.
//!
//! `i915_gem_objects` gives the number and total size of the device's GEM objects, in the
//! form IGT parses (`"%u objects, %llu bytes"`); IGT compares counts to find leaks.

use core::sync::atomic::Ordering;
use kernel::{
    drm::debugfs::DebugfsFile,
    prelude::*, //
};

use crate::driver::{
    Bound,
    VirtioIntelDriver, //
};

/// `DROP_RETIRE | DROP_ACTIVE | DROP_IDLE | DROP_RESET_ACTIVE`: the bits that wait for the
/// device.
const DROP_WAIT: u64 = (1 << 2) | (1 << 3) | (1 << 6) | (1 << 7);
/// `DROP_FREED`: wait for the objects being freed.
const DROP_FREED: u64 = 1 << 4;
/// `DROP_ALL`: the ten bits i915 defines (`DROP_UNBOUND` .. `DROP_RCU`).
const DROP_ALL: u64 = (1 << 10) - 1;

/// The device's debugfs files.
pub(crate) const FILES: &[DebugfsFile<VirtioIntelDriver>] = &[
    DebugfsFile {
        name: c"i915_gem_drop_caches",
        show: drop_caches_show,
        store: Some(drop_caches_store),
        dir: None,
    },
    DebugfsFile {
        name: c"i915_gem_objects",
        show: objects_show,
        store: None,
        dir: None,
    },
    DebugfsFile {
        name: c"virtio_intel_commands",
        show: commands_show,
        store: None,
        dir: None,
    },
    DebugfsFile {
        name: c"reset",
        show: reset_show,
        store: Some(reset_store),
        dir: Some(c"i915_params"),
    },
];

/// Appends formatted text to a file's content.
fn put(out: &mut KVec<u8>, args: core::fmt::Arguments<'_>) -> Result {
    let text = kernel::str::CString::try_from_fmt(args)?;
    out.extend_from_slice(text.to_bytes(), GFP_KERNEL)?;
    Ok(())
}

fn reset_show(bound: &Bound<'_>, out: &mut KVec<u8>) -> Result {
    let v = bound.stats.reset.load(Ordering::Relaxed);
    put(out, fmt!("{}\n", v))
}

fn reset_store(bound: &Bound<'_>, input: &[u8]) -> Result {
    let v = u32::try_from(parse_u64(input)?).map_err(|_| ERANGE)?;
    bound.stats.reset.store(v, Ordering::Relaxed);
    Ok(())
}

fn objects_show(bound: &Bound<'_>, out: &mut KVec<u8>) -> Result {
    let (n, bytes) = (
        bound.stats.objects.load(Ordering::Relaxed),
        bound.stats.object_bytes.load(Ordering::Relaxed),
    );
    put(out, fmt!("{} objects, {} bytes\n", n, bytes))
}

/// The control commands the host answered since probe (each a round trip): what `make
/// bench` counts per Mesa device initialisation.
fn commands_show(bound: &Bound<'_>, out: &mut KVec<u8>) -> Result {
    put(out, fmt!("{}\n", bound.queue.answered()))
}

fn drop_caches_show(_bound: &Bound<'_>, out: &mut KVec<u8>) -> Result {
    put(out, fmt!("{:#010x}\n", DROP_ALL))
}

fn drop_caches_store(bound: &Bound<'_>, input: &[u8]) -> Result {
    let mask = parse_u64(input)?;
    if mask & DROP_WAIT != 0 {
        bound.queue.wait_idle()?;
    }
    if mask & DROP_FREED != 0 {
        bound.queue.flush_deferred();
    }
    Ok(())
}

/// Parses an unsigned number as `kstrtou64(s, 0)` does: decimal, `0x` hex or `0` octal, an
/// optional trailing newline.
///
/// # Errors
///
/// `EINVAL` for anything else, `ERANGE` when it does not fit.
fn parse_u64(input: &[u8]) -> Result<u64> {
    let s = input.strip_suffix(b"\n").unwrap_or(input);
    let (digits, radix) = match s {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
        _ => (s, 10),
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix).ok_or(EINVAL)?;
        v = v
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(ERANGE)?;
    }
    Ok(v)
}

#[kunit_tests(virtio_intel_debugfs)]
mod tests {
    use super::*;

    #[test]
    fn masks_parse_as_kstrtou64() {
        assert_eq!(parse_u64(b"0x3ff\n"), Ok(0x3ff));
        assert_eq!(parse_u64(b"1023"), Ok(1023));
        assert_eq!(parse_u64(b"017"), Ok(0o17));
        assert_eq!(parse_u64(b"0"), Ok(0));
        assert_eq!(parse_u64(b""), Err(EINVAL));
        assert_eq!(parse_u64(b"0x"), Err(EINVAL));
        assert_eq!(parse_u64(b"12a"), Err(EINVAL));
        assert_eq!(parse_u64(b"0x10000000000000000"), Err(ERANGE));
        assert_eq!(DROP_ALL, 0x3ff);
    }
}
