//! `rise_dds_v4`: dental call outcome by keyword counting (the legacy model).
//!
//! Counts outcome keywords over the whole call and picks the outcome with the
//! most hits (ties go to the earlier outcome in [`OUTCOMES`]); a call with no
//! keyword at all is a missed opportunity. It ignores who said what, negation
//! ("I don't want to cancel") and how the call ended, which is what
//! `rise_dds_v5` fixes.

use std::collections::BTreeMap;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
use gensail_text::{round, tokens};
use serde::Serialize;

/// The outcomes, in tie-break order, with their keywords.
pub const OUTCOMES: &[(&str, &[&str])] = &[
    ("cancelled", &["cancel", "cancelled", "cancelling"]),
    ("rescheduled", &["reschedule", "rescheduled", "move", "moved"]),
    (
        "booked",
        &[
            "appointment",
            "schedule",
            "scheduled",
            "book",
            "booked",
            "opening",
            "available",
        ],
    ),
    ("insurance_question", &["insurance", "covered", "coverage", "network"]),
    ("billing", &["bill", "statement", "charge", "balance", "payment"]),
];

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// booked, rescheduled, cancelled, insurance_question, billing or missed_opportunity.
    pub outcome: &'static str,
    /// Share of keyword hits that went to the outcome, 0–100.
    pub confidence: f64,
    /// Why.
    pub reasons: Vec<String>,
    /// Keyword hits per outcome.
    pub scores: BTreeMap<&'static str, f64>,
}

/// Classifies a call (the whole logic, callable natively).
pub fn classify(transcript: &Transcript) -> Output {
    let mut scores: BTreeMap<&'static str, f64> = OUTCOMES.iter().map(|(o, _)| (*o, 0.0)).collect();
    let mut hits: Vec<String> = Vec::new();
    for segment in &transcript.segments {
        for token in tokens(&segment.text) {
            for (outcome, keywords) in OUTCOMES {
                if keywords.contains(&token.norm.as_str()) {
                    *scores.entry(outcome).or_default() += 1.0;
                    hits.push(format!("{outcome}: \"{}\"", token.norm));
                }
            }
        }
    }
    let total: f64 = scores.values().sum();
    let best = OUTCOMES
        .iter()
        .map(|(o, _)| *o)
        .fold(None::<&str>, |best, o| match best {
            Some(b) if scores[b] >= scores[o] => Some(b),
            _ => Some(o),
        });
    let (outcome, confidence, reasons) = match best {
        Some(o) if scores[o] > 0.0 => (
            o,
            100.0 * scores[o] / total,
            hits.into_iter().filter(|h| h.starts_with(o)).take(5).collect(),
        ),
        _ => (
            "missed_opportunity",
            50.0,
            vec!["no outcome keyword was said".to_owned()],
        ),
    };
    Output {
        outcome,
        confidence: round(confidence, 1),
        reasons,
        scores,
    }
}

/// The algorithm.
pub struct RiseDdsV4;

impl Algorithm for RiseDdsV4 {
    type Config = ();
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "rise_dds_v4",
            env!("CARGO_PKG_VERSION"),
            "Dental call outcome (booked, rescheduled, cancelled, insurance question, billing, missed opportunity) by keyword counting.",
        )
    }

    fn run(transcript: &Transcript, _config: ()) -> Result<Output, AlgorithmError> {
        transcript.require_speech()?;
        Ok(classify(transcript))
    }
}

register_algorithm!(RiseDdsV4);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    #[test]
    fn plain_calls() {
        assert_eq!(classify(&fixtures::load("dental_cancel.txt")).outcome, "cancelled");
        assert_eq!(
            classify(&fixtures::load("dental_insurance_question.txt")).outcome,
            "insurance_question"
        );
    }

    #[test]
    fn its_known_weakness_negation() {
        // "I don't want to cancel, I just need a different day": v4 hears "cancel".
        assert_eq!(classify(&fixtures::load("dental_reschedule.txt")).outcome, "cancelled");
    }
}
