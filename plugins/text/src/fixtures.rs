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

/// A labelled dental call of `plugins/fixtures/dental_outcome_labels.json`.
pub struct LabelledCall {
    /// Its place in the file, for messages.
    pub index: usize,
    /// The outcome the labelling rule gives (docs/algorithms.md).
    pub label: String,
    /// Why, in the labeller's words.
    pub why: String,
    /// The call.
    pub transcript: Transcript,
}

/// Every call of the labelled dental set (`plugins/fixtures/dental_outcome_labels.json`).
///
/// # Panics
/// When the file is missing or malformed.
pub fn dental_outcome_calls() -> Vec<LabelledCall> {
    let path = format!("{}/../fixtures/dental_outcome_labels.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let file: serde_json::Value = serde_json::from_str(&text).expect("the labelled set is JSON");
    file["calls"]
        .as_array()
        .expect("a list of calls")
        .iter()
        .enumerate()
        .map(|(index, call)| LabelledCall {
            index,
            label: call["label"].as_str().expect("a label").to_owned(),
            why: call["why"].as_str().unwrap_or_default().to_owned(),
            transcript: Transcript::parse(call["transcript"].as_str().expect("a transcript"))
                .unwrap_or_else(|e| panic!("call {index} is not a transcript: {e}")),
        })
        .collect()
}
