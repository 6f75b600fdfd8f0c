// SPDX-License-Identifier: MIT
//! Run-time configuration, read once from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `VIRTIO_INTEL_HOST_LOG` | file the host appends its log to (`-` = stderr) | stderr |
//! | `VIRTIO_INTEL_HOST_STRICT` | `1`: every guest protocol violation is logged as a `VIOLATION` line (tests fail on them) | off |
//! | `VIRTIO_INTEL_HOST_PROFILE` | device profile | `tgl-gt2` |
//! | `VIRTIO_INTEL_HOST_HANG_MS` | a batch still running after this long is a GPU hang | 2000 |
//! | `VIRTIO_INTEL_HOST_FAIL_CCMD` | fault: the N-th ccmd (1-based, counted over the process) fails as a protocol error | none |
//! | `VIRTIO_INTEL_HOST_DROP_RSP` | fault: the N-th response is not written (seqno still advances) | none |
//! | `VIRTIO_INTEL_HOST_FAIL_BLOB` | fault: the N-th `RESOURCE_CREATE_BLOB` of a GEM object fails (`-EINVAL`, the pending object is dropped) | none |
//! | `VIRTIO_INTEL_HOST_FAIL_MAP` | fault: the N-th `RESOURCE_MAP_BLOB` of a GEM object fails (`-ENOMEM`) | none |
//! | `VIRTIO_INTEL_HOST_FAIL_EXEC` | fault: the N-th `GEM_EXECBUFFER2` (of valid form) fails in the host's i915 (`-ENOSPC`), as a host out of address space would | none |
//! | `VIRTIO_INTEL_HOST_FENCE_DELAY_MS` | fault: every ring fence is reported this much later | 0 |
//! | `VIRTIO_INTEL_HOST_FENCE_NEVER` | fault: ring fences are never reported | off |

use std::sync::OnceLock;
use std::time::Duration;

/// The host's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) log_path: Option<String>,
    pub(crate) strict: bool,
    pub(crate) profile: String,
    pub(crate) hang_timeout: Duration,
    pub(crate) fail_ccmd: Option<u64>,
    pub(crate) drop_rsp: Option<u64>,
    pub(crate) fail_blob: Option<u64>,
    pub(crate) fail_map: Option<u64>,
    pub(crate) fail_exec: Option<u64>,
    pub(crate) fence_delay: Duration,
    pub(crate) fence_never: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_path: None,
            strict: false,
            profile: "tgl-gt2".into(),
            hang_timeout: Duration::from_millis(2000),
            fail_ccmd: None,
            drop_rsp: None,
            fail_blob: None,
            fail_map: None,
            fail_exec: None,
            fence_delay: Duration::ZERO,
            fence_never: false,
        }
    }
}

fn flag(v: &str) -> bool {
    matches!(v, "1" | "y" | "yes" | "true" | "on")
}

impl Config {
    /// Builds a configuration from `(name, value)` pairs; unknown names are ignored,
    /// malformed numbers are reported in the returned warnings and left at default.
    pub(crate) fn from_vars<I: IntoIterator<Item = (String, String)>>(vars: I) -> (Config, Vec<String>) {
        let mut c = Config::default();
        let mut warnings = Vec::new();
        for (k, v) in vars {
            let num = |warnings: &mut Vec<String>| -> Option<u64> {
                match v.trim().parse::<u64>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        warnings.push(format!("ignoring {k}={v}: not a number"));
                        None
                    }
                }
            };
            match k.as_str() {
                "VIRTIO_INTEL_HOST_LOG" => c.log_path = Some(v.clone()),
                "VIRTIO_INTEL_HOST_STRICT" => c.strict = flag(&v),
                "VIRTIO_INTEL_HOST_PROFILE" => c.profile = v.clone(),
                "VIRTIO_INTEL_HOST_HANG_MS" => {
                    if let Some(n) = num(&mut warnings) {
                        c.hang_timeout = Duration::from_millis(n.max(1));
                    }
                }
                "VIRTIO_INTEL_HOST_FAIL_CCMD" => c.fail_ccmd = num(&mut warnings).filter(|n| *n > 0),
                "VIRTIO_INTEL_HOST_DROP_RSP" => c.drop_rsp = num(&mut warnings).filter(|n| *n > 0),
                "VIRTIO_INTEL_HOST_FAIL_BLOB" => c.fail_blob = num(&mut warnings).filter(|n| *n > 0),
                "VIRTIO_INTEL_HOST_FAIL_MAP" => c.fail_map = num(&mut warnings).filter(|n| *n > 0),
                "VIRTIO_INTEL_HOST_FAIL_EXEC" => c.fail_exec = num(&mut warnings).filter(|n| *n > 0),
                "VIRTIO_INTEL_HOST_FENCE_DELAY_MS" => {
                    if let Some(n) = num(&mut warnings) {
                        c.fence_delay = Duration::from_millis(n);
                    }
                }
                "VIRTIO_INTEL_HOST_FENCE_NEVER" => c.fence_never = flag(&v),
                _ => {}
            }
        }
        (c, warnings)
    }
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The process-wide configuration (read from the environment on first use).
pub(crate) fn get() -> &'static Config {
    CONFIG.get_or_init(|| {
        let (c, warnings) = Config::from_vars(std::env::vars().filter(|(k, _)| k.starts_with("VIRTIO_INTEL_HOST_")));
        for w in warnings {
            crate::log::warn(&w);
        }
        c
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_variables() {
        let (c, w) = Config::from_vars(vec![
            ("VIRTIO_INTEL_HOST_STRICT".into(), "1".into()),
            ("VIRTIO_INTEL_HOST_HANG_MS".into(), "250".into()),
            ("VIRTIO_INTEL_HOST_FAIL_CCMD".into(), "3".into()),
            ("VIRTIO_INTEL_HOST_FAIL_EXEC".into(), "2".into()),
            ("VIRTIO_INTEL_HOST_FENCE_NEVER".into(), "0".into()),
        ]);
        assert!(w.is_empty());
        assert!(c.strict);
        assert_eq!(c.hang_timeout, Duration::from_millis(250));
        assert_eq!(c.fail_ccmd, Some(3));
        assert_eq!(c.fail_exec, Some(2));
        assert!(!c.fence_never);
    }

    #[test]
    fn bad_numbers_warn_and_keep_defaults() {
        let (c, w) = Config::from_vars(vec![("VIRTIO_INTEL_HOST_HANG_MS".into(), "soon".into())]);
        assert_eq!(w.len(), 1);
        assert_eq!(c.hang_timeout, Duration::from_millis(2000));
    }
}
