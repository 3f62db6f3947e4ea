//! The trait an algorithm implements, and the JSON boundary around it.

use serde::{Serialize, de::DeserializeOwned};

use crate::Transcript;

/// What a plugin says about itself. The host checks `id` against the ID the
/// plugin is loaded under and parses `version` as semver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The versioned algorithm ID, e.g. `rise_dds_v5`.
    pub id: String,
    /// The plugin's semver version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: String,
    /// One or two sentences for the people choosing algorithms.
    pub description: String,
    /// JSON Schema of the accepted config, as JSON text.
    pub config_schema: Option<String>,
    /// JSON Schema of the output, as JSON text.
    pub output_schema: Option<String>,
}

impl Metadata {
    /// Metadata with no schemas.
    pub fn new(id: &str, version: &str, description: &str) -> Self {
        Self {
            id: id.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            config_schema: None,
            output_schema: None,
        }
    }

    /// Adds the JSON Schema of the config.
    pub fn with_config_schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = Some(schema.to_string());
        self
    }

    /// Adds the JSON Schema of the output.
    pub fn with_output_schema(mut self, schema: serde_json::Value) -> Self {
        self.output_schema = Some(schema.to_string());
        self
    }
}

/// Why a run produced no output, as the algorithm itself reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgorithmError {
    /// The config was malformed or had values the algorithm cannot use.
    InvalidConfig(String),
    /// The transcript cannot be analysed by this algorithm.
    InvalidTranscript(String),
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for AlgorithmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::InvalidTranscript(m) => write!(f, "invalid transcript: {m}"),
            Self::Failed(m) => write!(f, "algorithm failed: {m}"),
        }
    }
}

impl std::error::Error for AlgorithmError {}

/// An algorithm over call transcripts.
///
/// Implement it on a unit struct and register it with
/// [`register_algorithm!`](crate::register_algorithm). Runs are independent:
/// the host gives every run a fresh instance, so no state survives between runs.
pub trait Algorithm {
    /// The config the algorithm accepts. An absent or empty config becomes
    /// `Default::default()`; a config that does not deserialize fails the run
    /// with [`AlgorithmError::InvalidConfig`] naming the problem.
    type Config: DeserializeOwned + Default;
    /// The result, serialized to JSON for the host.
    type Output: Serialize;

    /// Describes the algorithm.
    fn metadata() -> Metadata;

    /// Analyses one transcript.
    fn run(transcript: &Transcript, config: Self::Config) -> Result<Self::Output, AlgorithmError>;
}

/// Runs `A` with config given as JSON text and returns its output as JSON text:
/// exactly what the plugin does when the host calls it, so native tests and
/// benchmarks exercise the same path as the wasm build.
pub fn run_json<A: Algorithm>(transcript: &Transcript, config_json: &str) -> Result<String, AlgorithmError> {
    let config = parse_config::<A::Config>(config_json)?;
    let output = A::run(transcript, config)?;
    serde_json::to_string(&output).map_err(|e| AlgorithmError::Failed(format!("output is not serializable: {e}")))
}

fn parse_config<C: DeserializeOwned + Default>(config_json: &str) -> Result<C, AlgorithmError> {
    let trimmed = config_json.trim();
    if trimmed.is_empty() || trimmed == "null" {
        return Ok(C::default());
    }
    let parsed = serde_json::from_str(trimmed);
    // `{}` is what the host sends when no config is set; a config type that cannot
    // be built from an empty object (such as `()`) then takes its default.
    if parsed.is_err()
        && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(trimmed).is_ok_and(|m| m.is_empty())
    {
        return Ok(C::default());
    }
    parsed.map_err(|e| AlgorithmError::InvalidConfig(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Default, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        threshold: u32,
    }

    #[test]
    fn empty_config_is_default() {
        assert_eq!(parse_config::<Cfg>("").unwrap(), Cfg::default());
        assert_eq!(parse_config::<Cfg>(" null ").unwrap(), Cfg::default());
        assert_eq!(parse_config::<()>("{}").unwrap(), ());
    }

    #[test]
    fn bad_config_names_the_problem() {
        let err = parse_config::<Cfg>(r#"{"threshold": "high"}"#).unwrap_err();
        assert!(
            matches!(&err, AlgorithmError::InvalidConfig(m) if m.contains("threshold") || m.contains("invalid type")),
            "{err}"
        );
        let err = parse_config::<Cfg>(r#"{"treshold": 3}"#).unwrap_err();
        assert!(err.to_string().contains("treshold"), "{err}");
    }
}
