//! The SDK for gensail algorithm authors.
//!
//! An algorithm is a plain Rust type that implements [`Algorithm`]; one call of
//! [`register_algorithm!`] turns the crate into a gensail plugin when it is built
//! for `wasm32-wasip2`. The same code compiles natively, so the algorithm's logic
//! is unit-tested with `cargo test` like any other Rust code.
//!
//! ```ignore
//! use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
//!
//! struct WordCount;
//!
//! impl Algorithm for WordCount {
//!     type Config = ();
//!     type Output = serde_json::Value;
//!     fn metadata() -> Metadata {
//!         Metadata::new("word_count_v1", env!("CARGO_PKG_VERSION"), "Counts words per speaker")
//!     }
//!     fn run(transcript: &Transcript, _config: ()) -> Result<Self::Output, AlgorithmError> {
//!         Ok(serde_json::json!({ "words": transcript.word_count() }))
//!     }
//! }
//!
//! register_algorithm!(WordCount);
//! ```
//!
//! # Layout
//! - [`algorithm`]: the [`Algorithm`] trait, [`Metadata`], [`AlgorithmError`] and [`run_json`],
//!   the JSON-in/JSON-out entry point the plugin glue (and native tests) call.
//! - [`transcript`]: [`Transcript`] and [`Segment`], and the two text forms a transcript is
//!   read from (JSON segments, or `Speaker: text` lines).
//! - [`log`]: structured logging into the run's log.
//! - `__private` (wasm only): the WIT bindings and the export glue behind [`register_algorithm!`].
//!
//! # Compatibility
//! This SDK implements `gensail:algorithm@1.0.0` (see `wit/algorithm.wit`). A host
//! loads plugins built against the same major WIT version and a minor version no
//! greater than its own.

pub mod algorithm;
pub mod log;
pub mod transcript;

pub use algorithm::{Algorithm, AlgorithmError, Metadata, run_json};
pub use transcript::{Segment, Transcript, TranscriptParseError};

/// The WIT package version this SDK builds plugins against.
pub const WIT_VERSION: &str = "1.0.0";

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private;

/// Makes a type that implements [`Algorithm`] the plugin's export.
///
/// Call it once, at the crate root of the plugin. On native targets it expands to
/// nothing, so the crate still builds and tests natively.
#[macro_export]
macro_rules! register_algorithm {
    ($algorithm:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __GensailExport = $crate::__private::Export<$algorithm>;
            $crate::__private::bindings::__gensail_export_world!(__GensailExport with_types_in $crate::__private::bindings);
        };
    };
}
