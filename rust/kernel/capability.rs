// SPDX-License-Identifier: GPL-2.0

//! POSIX capabilities of the current task.
//!
//! C header: [`include/linux/capability.h`](srctree/include/linux/capability.h).
//!
//! Drivers check a capability of the task that called them when an answer or an action
//! depends on the caller's privileges (for example, i915 shows live memory statistics only
//! to callers with `CAP_PERFMON`). Like `capable()` in C, a successful check marks the task
//! as having used its privilege (`PF_SUPERPRIV`), so call these only where the privilege is
//! really exercised.

use crate::{
    bindings,
    prelude::*, //
};

/// A POSIX capability (`CAP_*` in `include/uapi/linux/capability.h`).
///
/// # Invariants
///
/// The value is a valid capability number (`cap_valid()`): only the constants below exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability(i32);

impl Capability {
    /// `CAP_SYS_ADMIN`.
    pub const SYS_ADMIN: Self = Self(bindings::CAP_SYS_ADMIN as i32);
    /// `CAP_SYS_NICE`.
    pub const SYS_NICE: Self = Self(bindings::CAP_SYS_NICE as i32);
    /// `CAP_PERFMON`.
    pub const PERFMON: Self = Self(bindings::CAP_PERFMON as i32);
}

/// Whether the current task has `cap` in its user namespace's initial namespace
/// (`capable()`).
pub fn capable(cap: Capability) -> bool {
    // SAFETY: `capable` only reads the current task's credentials and may be called from any
    // process context; `cap.0` is a valid capability (type invariant), so its `BUG()` on an
    // invalid one cannot trigger.
    unsafe { bindings::capable(cap.0) }
}

/// Whether the current task may use performance monitoring (`perfmon_capable()`):
/// `CAP_PERFMON`, or `CAP_SYS_ADMIN` for older userspace.
pub fn perfmon_capable() -> bool {
    capable(Capability::PERFMON) || capable(Capability::SYS_ADMIN)
}

#[kunit_tests(rust_capability)]
mod tests {
    use super::*;

    #[test]
    fn kunit_runs_with_full_privileges() {
        // KUnit runs in a kernel thread, which holds every capability.
        assert!(capable(Capability::SYS_ADMIN));
        assert!(perfmon_capable());
    }
}
