//! Text helpers shared by the bundled algorithms.
//!
//! # Layout
//! - [`tokens`]: words with their byte positions, normalised for matching.
//! - [`phrase`]: whole-word phrase search and context snippets.
//! - [`lexicon`]: the sentiment word lists both sentiment algorithms start from.
//! - [`roles`]: which speaker is the agent.
//! - [`time`]: call timestamps.
//! - [`fixtures`] (native only): the realistic call transcripts under `plugins/fixtures/`.

pub mod lexicon;
pub mod phrase;
pub mod roles;
pub mod time;
pub mod tokens;

#[cfg(not(target_arch = "wasm32"))]
pub mod fixtures;

pub use phrase::{find_phrase, mentions_any, snippet};
pub use tokens::{Token, tokens};

/// Rounds to the given number of decimals, so outputs stay readable and stable.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}
