// SPDX-License-Identifier: MIT
//! The host's log: plain lines appended to `VIRTIO_INTEL_HOST_LOG` (or stderr).
//!
//! Line prefixes are an interface: the test rig fails a run on any `VIOLATION`
//! (a guest protocol error seen in strict mode) or `BUG` (an internal error of
//! this library) line, and checks for the `loaded` line.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static SINK: Mutex<Option<std::fs::File>> = Mutex::new(None);
static OPENED: std::sync::Once = std::sync::Once::new();
static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

fn emit(prefix: &str, msg: &str) {
    OPENED.call_once(|| {
        if let Some(p) = crate::config::get().log_path.as_deref() {
            if p != "-" {
                if let Ok(f) = OpenOptions::new().create(true).append(true).open(p) {
                    if let Ok(mut g) = SINK.lock() {
                        *g = Some(f);
                    }
                }
            }
        }
    });
    let line = format!("{prefix}: {msg}\n");
    if let Ok(mut g) = SINK.lock() {
        if let Some(f) = g.as_mut() {
            let _ = f.write_all(line.as_bytes());
            return;
        }
    }
    let _ = std::io::stderr().write_all(format!("virtio-intel-host {line}").as_bytes());
}

/// Informational line.
pub(crate) fn info(msg: &str) {
    emit("INFO", msg);
}

/// Detail for debugging (e.g. the first command the model did not know).
pub(crate) fn debug(msg: &str) {
    emit("DEBUG", msg);
}

/// Something odd that is not the guest's fault.
pub(crate) fn warn(msg: &str) {
    emit("WARN", msg);
}

/// An internal error of this library (never expected).
pub(crate) fn bug(msg: &str) {
    emit("BUG", msg);
}

/// The guest broke a protocol rule. Counted always; logged as `VIOLATION` in
/// strict mode, as `WARN` otherwise.
pub(crate) fn violation(msg: &str) {
    VIOLATIONS.fetch_add(1, Ordering::Relaxed);
    if crate::config::get().strict {
        emit("VIOLATION", msg);
    } else {
        emit("WARN", &format!("guest protocol violation: {msg}"));
    }
}

/// Number of violations seen so far by this process.
pub(crate) fn violation_count() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}
