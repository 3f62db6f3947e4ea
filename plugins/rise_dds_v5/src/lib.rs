//! `rise_dds_v5`: dental call outcome from weighted, speaker-aware signals.
//!
//! What v5 does that `rise_dds_v4` does not:
//! - **who said it**: the office's confirmation ("you're all set", "I've
//!   cancelled your appointment") weighs most; an offer phrased as a question
//!   ("would you like to reschedule?") weighs little;
//! - **negation**: "I don't want to cancel" and "rather than cancel" are not
//!   cancellations (they lean towards rescheduling);
//! - **how the call ended**: a confirmed booking, rescheduling or cancellation
//!   decides the outcome; only calls without one are insurance questions,
//!   billing calls or missed opportunities, by weight;
//! - **missed opportunity** needs a caller who wanted to come in and an office
//!   that did not book them.

use std::collections::BTreeMap;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Segment, Transcript, register_algorithm};
use gensail_text::time::{format_ms, offset_ms};
use gensail_text::{find_phrase, round};
use serde::Serialize;

/// Who must say a phrase for it to count.
#[derive(Clone, Copy, PartialEq)]
enum Who {
    Agent,
    Caller,
    Anyone,
}

/// (outcome, phrase, who, weight, is a confirmation that decides the call).
type Signal = (&'static str, &'static str, Who, f64, bool);

const SIGNALS: &[Signal] = &[
    ("booked", "you're all set", Who::Agent, 3.0, true),
    ("booked", "all set for", Who::Agent, 3.0, true),
    ("booked", "i have you down", Who::Agent, 3.0, true),
    ("booked", "i've booked", Who::Agent, 3.0, true),
    ("booked", "booked you", Who::Agent, 3.0, true),
    ("booked", "i've scheduled", Who::Agent, 3.0, true),
    ("booked", "see you then", Who::Agent, 1.0, false),
    ("booked", "that works", Who::Caller, 0.5, false),
    ("booked", "works great", Who::Caller, 0.5, false),
    ("rescheduled", "i've rescheduled", Who::Agent, 4.0, true),
    ("rescheduled", "rescheduled your", Who::Agent, 4.0, true),
    ("rescheduled", "i've moved", Who::Agent, 4.0, true),
    ("rescheduled", "reschedule", Who::Anyone, 2.0, false),
    ("rescheduled", "move it", Who::Anyone, 2.0, false),
    ("rescheduled", "different day", Who::Caller, 2.0, false),
    ("rescheduled", "can't make it", Who::Caller, 1.5, false),
    ("cancelled", "i've cancelled", Who::Agent, 4.0, true),
    ("cancelled", "cancelled your", Who::Agent, 4.0, true),
    ("cancelled", "cancel", Who::Caller, 2.0, false),
    ("cancelled", "won't be coming back", Who::Caller, 1.5, false),
    ("cancelled", "no thank you", Who::Caller, 1.0, false),
    ("insurance_question", "insurance", Who::Caller, 1.5, false),
    ("insurance_question", "do you take", Who::Caller, 2.0, false),
    ("insurance_question", "in network", Who::Anyone, 1.0, false),
    ("insurance_question", "covered", Who::Caller, 2.0, false),
    ("insurance_question", "coverage", Who::Anyone, 1.0, false),
    ("insurance_question", "benefits", Who::Anyone, 1.0, false),
    ("billing", "statement", Who::Anyone, 2.0, false),
    ("billing", "bill", Who::Anyone, 2.0, false),
    ("billing", "balance", Who::Anyone, 1.5, false),
    ("billing", "charge", Who::Anyone, 1.5, false),
    ("billing", "payment plan", Who::Anyone, 1.5, false),
    ("billing", "itemized", Who::Anyone, 1.5, false),
    ("billing", "billing", Who::Anyone, 2.0, false),
    ("missed_opportunity", "taking new patients", Who::Caller, 1.5, false),
    ("missed_opportunity", "get it looked at", Who::Caller, 1.5, false),
    ("missed_opportunity", "make an appointment", Who::Caller, 1.5, false),
    ("missed_opportunity", "booked right now", Who::Agent, 2.0, false),
    ("missed_opportunity", "call back", Who::Agent, 1.5, false),
    ("missed_opportunity", "i'm not sure", Who::Agent, 1.0, false),
    ("missed_opportunity", "no availability", Who::Agent, 2.0, false),
    ("missed_opportunity", "somewhere else", Who::Caller, 2.5, false),
    ("missed_opportunity", "never mind", Who::Caller, 1.5, false),
];

/// Words that, just before a phrase, deny it ("don't want to cancel", "rather than cancel").
const NEGATIONS: &[&str] = &[
    "don't want to",
    "do not want to",
    "rather than",
    "instead of",
    "not",
    "no need to",
    "won't",
];

/// Outcomes a confirmation can decide, and the rest in tie-break order.
const OUTCOMES: &[&str] = &[
    "booked",
    "rescheduled",
    "cancelled",
    "insurance_question",
    "billing",
    "missed_opportunity",
];

/// A phrase that counted.
#[derive(Debug, Serialize)]
pub struct Evidence {
    /// The outcome it supports.
    pub outcome: &'static str,
    /// The phrase.
    pub phrase: &'static str,
    /// Who said it.
    pub speaker: String,
    /// `m:ss`.
    pub timestamp: String,
    /// Its weight after context (questions weigh less).
    pub weight: f64,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// booked, rescheduled, cancelled, insurance_question, billing, missed_opportunity or other.
    pub outcome: &'static str,
    /// 0–100.
    pub confidence: f64,
    /// Why, in plain words.
    pub reasons: Vec<String>,
    /// Total weight per outcome.
    pub scores: BTreeMap<&'static str, f64>,
    /// Every phrase that counted, in call order.
    pub evidence: Vec<Evidence>,
    /// Whether the caller wanted an appointment that was not booked (also set
    /// beside other outcomes, e.g. an insurance question that ended without a booking).
    pub missed_opportunity: bool,
}

fn negated(text: &str, at: usize) -> bool {
    let before = text[..at].to_lowercase();
    let before = before.trim_end();
    NEGATIONS.iter().any(|n| before.ends_with(n))
}

/// The sentence around a byte offset ends in a question mark.
fn in_question(text: &str, at: usize) -> bool {
    text[at..]
        .find(['.', '!', '?'])
        .is_some_and(|end| text[at + end..].starts_with('?'))
}

/// Classifies a call (the whole logic, callable natively).
pub fn classify(transcript: &Transcript) -> Output {
    let agent = gensail_text::roles::agent_speaker(transcript, None).unwrap_or_default();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut last_confirmation: Option<(&'static str, usize)> = None;
    for (i, segment) in transcript.segments.iter().enumerate() {
        let is_agent = segment.speaker == agent;
        for (outcome, phrase, who, weight, confirms) in SIGNALS {
            if (*who == Who::Agent && !is_agent) || (*who == Who::Caller && is_agent) {
                continue;
            }
            // One count per phrase per segment; the first occurrence that is not denied.
            let found = find_phrase(&segment.text, phrase);
            let Some(&(at, _)) = found.iter().find(|(s, _)| !negated(&segment.text, *s)) else {
                if let (Some((denied_at, _)), "cancelled") = (found.first(), *outcome) {
                    // A denied cancellation ("rather than cancel") is a wish to keep the appointment.
                    push(
                        &mut evidence,
                        "rescheduled",
                        "denied cancellation",
                        segment,
                        *denied_at,
                        1.0,
                    );
                }
                continue;
            };
            let weight = if in_question(&segment.text, at) {
                weight * 0.3
            } else {
                *weight
            };
            if *confirms && weight >= 1.0 {
                last_confirmation = Some((outcome, i));
            }
            push(&mut evidence, outcome, phrase, segment, at, weight);
        }
    }
    let mut scores: BTreeMap<&'static str, f64> = OUTCOMES.iter().map(|o| (*o, 0.0)).collect();
    for e in &evidence {
        *scores.entry(e.outcome).or_default() += e.weight;
    }
    let caller_wanted_in = evidence
        .iter()
        .any(|e| e.outcome == "missed_opportunity" && e.speaker != agent);
    let missed = caller_wanted_in && !matches!(last_confirmation, Some(("booked" | "rescheduled", _)));
    let total: f64 = scores.values().sum();
    let (outcome, reasons) = if let Some((outcome, at)) = last_confirmation {
        let said = &transcript.segments[at];
        (
            outcome,
            vec![format!(
                "the office confirmed it at {}: \"{}\"",
                format_ms(said.start_ms),
                said.text
            )],
        )
    } else {
        let open = ["insurance_question", "billing", "missed_opportunity"];
        let best = open.iter().copied().fold("other", |best, o| {
            let eligible = o != "missed_opportunity" || missed;
            if eligible && scores[o] > scores.get(best).copied().unwrap_or(0.0) {
                o
            } else {
                best
            }
        });
        let reasons = if best == "other" {
            vec![
                "nothing was booked, moved or cancelled, and no insurance, billing or appointment request came up"
                    .to_owned(),
            ]
        } else {
            vec![format!(
                "no appointment was confirmed; the call was mostly about {}",
                best.replace('_', " ")
            )]
        };
        (best, reasons)
    };
    let mut reasons = reasons;
    reasons.extend(
        evidence
            .iter()
            .filter(|e| e.outcome == outcome)
            .take(4)
            .map(|e| format!("{} said \"{}\" at {}", e.speaker, e.phrase, e.timestamp)),
    );
    let share = if total > 0.0 {
        scores.get(outcome).copied().unwrap_or(0.0) / total
    } else {
        0.0
    };
    let confidence = if last_confirmation.is_some() {
        70.0 + 30.0 * share
    } else {
        40.0 + 50.0 * share
    };
    scores.values_mut().for_each(|v| *v = round(*v, 2));
    Output {
        outcome,
        confidence: round(confidence, 1),
        reasons,
        scores,
        evidence,
        missed_opportunity: missed,
    }
}

fn push(
    evidence: &mut Vec<Evidence>,
    outcome: &'static str,
    phrase: &'static str,
    segment: &Segment,
    at: usize,
    weight: f64,
) {
    let at_ms = offset_ms(segment, at);
    evidence.push(Evidence {
        outcome,
        phrase,
        speaker: segment.speaker.clone(),
        timestamp: format_ms(at_ms),
        weight: round(weight, 2),
    });
}

/// The algorithm.
pub struct RiseDdsV5;

impl Algorithm for RiseDdsV5 {
    type Config = ();
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "rise_dds_v5",
            env!("CARGO_PKG_VERSION"),
            "Dental call outcome (booked, rescheduled, cancelled, insurance question, billing, missed opportunity) from speaker- and negation-aware signals, decided by the office's confirmation.",
        )
    }

    fn run(transcript: &Transcript, _config: ()) -> Result<Output, AlgorithmError> {
        transcript.require_speech()?;
        Ok(classify(transcript))
    }
}

register_algorithm!(RiseDdsV5);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    #[test]
    fn every_labelled_fixture() {
        for (name, label) in fixtures::dental_outcome_labels() {
            let out = classify(&fixtures::load(&name));
            assert_eq!(out.outcome, label, "{name}: {:?}", out.reasons);
        }
    }

    #[test]
    fn v5_is_measurably_better_than_v4() {
        let labels = fixtures::dental_outcome_labels();
        let correct = |f: &dyn Fn(&Transcript) -> &'static str| {
            labels
                .iter()
                .filter(|(name, label)| f(&fixtures::load(name)) == label)
                .count()
        };
        let v4 = correct(&|t| rise_dds_v4::classify(t).outcome);
        let v5 = correct(&|t| classify(t).outcome);
        eprintln!("accuracy on {} labelled calls: v4 {v4}, v5 {v5}", labels.len());
        assert!(v5 > v4 + 2, "v4 {v4}, v5 {v5}");
    }

    #[test]
    fn denied_cancellation_is_not_a_cancellation() {
        let t = Transcript::parse("Agent: Smile Dental.\nCaller: I don't want to cancel, can we move it to Friday?\nAgent: Sure, I've moved it to Friday at 9 AM.").unwrap();
        let out = classify(&t);
        assert_eq!(out.outcome, "rescheduled");
        assert!(!out.evidence.iter().any(|e| e.outcome == "cancelled"));
    }

    #[test]
    fn an_offer_is_not_a_booking() {
        let t = Transcript::parse("Agent: Bright Smile, this is Sofia.\nCaller: Do you take Aetna insurance?\nAgent: We do. Would you like me to book you an appointment?\nCaller: Not yet, thanks.").unwrap();
        let out = classify(&t);
        assert_eq!(out.outcome, "insurance_question", "{out:?}");
        assert!(!out.missed_opportunity);
    }
}
