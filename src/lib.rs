//! gensail runs call-analytics algorithms as sandboxed WebAssembly plugins.
//!
//! This crate is the `gensail` binary: the command line, and the bundled
//! algorithms built from `plugins/`. The wasmtime host is `gensail-engine`;
//! the author SDK is `gensail-host-api`.
//!
//! # Layout
//! - [`cli`]: argument parsing (clap) and the `algorithms` commands.
//! - [`bundled`]: the bundled algorithm components, embedded at build time, and loading them.

pub mod bundled;
pub mod cli;
