// SPDX-License-Identifier: MIT
//! Locking helpers.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on with the data if a panicking thread poisoned it: the state the
/// host protects is valid after every individual update, and refusing service to the
/// VMM would be worse than continuing.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
