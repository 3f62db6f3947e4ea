//! The WIT bindings and the glue that forwards the world's exports to an
//! [`Algorithm`]. Authors never name anything here; [`register_algorithm!`]
//! does.
//!
//! [`register_algorithm!`]: crate::register_algorithm

use std::marker::PhantomData;

use crate::{Algorithm, AlgorithmError, Segment, Transcript};

/// Generated bindings of `gensail:algorithm@1.0.0` (the only bindgen in the SDK).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "gensail:algorithm/algorithm",
        pub_export_macro: true,
        export_macro_name: "__gensail_export_world",
    });
}

use bindings::exports::gensail::algorithm::plugin::{self, Guest};
use bindings::gensail::algorithm::types as wit;

/// The exported component for algorithm `A`.
pub struct Export<A>(PhantomData<A>);

impl<A: Algorithm> Guest for Export<A> {
    fn metadata() -> plugin::AlgorithmMetadata {
        let m = A::metadata();
        plugin::AlgorithmMetadata {
            id: m.id,
            version: m.version,
            description: m.description,
            config_schema: m.config_schema,
            output_schema: m.output_schema,
        }
    }

    fn run(transcript: plugin::Transcript, config_json: String) -> Result<String, plugin::AlgorithmError> {
        let transcript = Transcript {
            language: transcript.language,
            duration_ms: transcript.duration_ms,
            segments: transcript.segments.into_iter().map(segment_from_wit).collect(),
        };
        crate::run_json::<A>(&transcript, &config_json).map_err(|e| match e {
            AlgorithmError::InvalidConfig(m) => wit::AlgorithmError::InvalidConfig(m),
            AlgorithmError::InvalidTranscript(m) => wit::AlgorithmError::InvalidTranscript(m),
            AlgorithmError::Failed(m) => wit::AlgorithmError::Failed(m),
        })
    }
}

fn segment_from_wit(s: wit::Segment) -> Segment {
    Segment {
        speaker: s.speaker,
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        text: s.text,
        confidence: s.confidence,
        channel: s.channel,
    }
}
