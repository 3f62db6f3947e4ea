//! The realistic call transcripts under `plugins/fixtures/`, for native tests.

use gensail_host_api::Transcript;

/// Reads `plugins/fixtures/NAME` (either transcript form).
///
/// # Panics
/// When the file is missing or is not a valid transcript: a test fixture that
/// cannot be read is a broken test.
pub fn load(name: &str) -> Transcript {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"));
    Transcript::parse(&text).unwrap_or_else(|e| panic!("fixture {path} is not a transcript: {e}"))
}

/// The labelled outcome of each dental fixture (`plugins/fixtures/labels.json`), sorted by name.
pub fn dental_outcome_labels() -> Vec<(String, String)> {
    let path = format!("{}/../fixtures/labels.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let labels: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).expect("labels.json is a map");
    labels.into_iter().filter(|(name, _)| !name.starts_with('_')).collect()
}
