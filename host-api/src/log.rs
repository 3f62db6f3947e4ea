//! Structured logging into the run's log.
//!
//! In a plugin the lines go to the host, which keeps them with the run (bounded
//! by the run's log limit). In native builds (an author's `cargo test`) they go
//! to stderr, so they show up in test output.

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fine-grained detail.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

/// Writes one line with key/value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    imp::log(level, message, fields);
}

/// Writes an info line.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Writes a debug line.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Writes a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Writes an error line.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::__private::bindings::gensail::algorithm::host::{self, LogLevel};

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        host::log(level, message, &fields);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
        eprintln!("[{level:?}] {message}{fields}");
    }
}
