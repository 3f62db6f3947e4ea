//! A well-behaved guest built against a future major version of the contract
//! (`wit/algorithm.wit` here is the 1.0.0 file relabelled 2.0.0): the host must
//! refuse it at load time, naming both versions.

wit_bindgen::generate!({ path: "wit", world: "gensail:algorithm/algorithm" });

use exports::gensail::algorithm::plugin::{AlgorithmError, AlgorithmMetadata, Guest, Transcript};

struct FromTheFuture;

impl Guest for FromTheFuture {
    fn metadata() -> AlgorithmMetadata {
        AlgorithmMetadata {
            id: "wit_v2".into(),
            version: "2.0.0".into(),
            description: "Built against gensail:algorithm@2.0.0.".into(),
            config_schema: None,
            output_schema: None,
        }
    }

    fn run(_transcript: Transcript, _config_json: String) -> Result<String, AlgorithmError> {
        Ok("{}".into())
    }
}

export!(FromTheFuture);
