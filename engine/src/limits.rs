//! Per-run resource limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The hard limits one run is held to. Exceeding any of them ends that run
/// alone with a typed [`RunError`](crate::RunError).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Instructions the guest may execute (wasmtime fuel; about 1.5e7 per ms of guest CPU here).
    pub fuel: u64,
    /// Wall-clock deadline of the whole run, instantiation included; in JSON
    /// `timeout_ms`, as manifests name it (`timeout`, its first name, is read too).
    #[serde(rename = "timeout_ms", alias = "timeout", with = "millis")]
    pub timeout: Duration,
    /// Linear memory the guest may hold, in bytes, across all its memories.
    pub memory_bytes: u64,
    /// Largest output JSON accepted, in bytes.
    pub output_bytes: u64,
    /// Largest run log kept, in bytes (guest stdout, stderr and host log lines); the rest is dropped.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 20_000_000_000,
            timeout: Duration::from_secs(10),
            memory_bytes: 256 << 20,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
        }
    }
}

/// Bounds on a component's shape, checked (by parsing, which is cheap) before
/// it is compiled (which is not: 990,000 small functions took 80 s and 5.9 GB).
/// The defaults are generous: the bundled plugins have 350 to 450 functions
/// and 130 to 190 KiB of code each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeLimits {
    /// Functions, imported and defined, across every core module.
    pub functions: u64,
    /// Bytes of the largest function body.
    pub function_bytes: u64,
    /// Bytes of code, all bodies together.
    pub code_bytes: u64,
    /// Bytes of data segments.
    pub data_bytes: u64,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        Self {
            functions: 50_000,
            function_bytes: 512 << 10,
            code_bytes: 16 << 20,
            data_bytes: 16 << 20,
        }
    }
}

/// Per-algorithm changes to the engine's default [`Limits`]; `None` keeps the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::fuel`].
    pub fuel: Option<u64>,
    /// See [`Limits::timeout`], in milliseconds.
    pub timeout_ms: Option<u64>,
    /// See [`Limits::memory_bytes`].
    pub memory_bytes: Option<u64>,
    /// See [`Limits::output_bytes`].
    pub output_bytes: Option<u64>,
    /// See [`Limits::log_bytes`].
    pub log_bytes: Option<u64>,
}

impl LimitOverrides {
    /// The defaults with these overrides applied.
    pub fn apply(&self, defaults: Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(defaults.fuel),
            timeout: self.timeout_ms.map_or(defaults.timeout, Duration::from_millis),
            memory_bytes: self.memory_bytes.unwrap_or(defaults.memory_bytes),
            output_bytes: self.output_bytes.unwrap_or(defaults.output_bytes),
            log_bytes: self.log_bytes.unwrap_or(defaults.log_bytes),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_name() {
        let defaults = Limits::default();
        let limits = LimitOverrides {
            timeout_ms: Some(250),
            ..Default::default()
        }
        .apply(defaults);
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(limits.fuel, defaults.fuel);
    }
}
