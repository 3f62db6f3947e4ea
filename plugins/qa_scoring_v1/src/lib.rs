//! `qa_scoring_v1`: scores the agent's side of a call against a weighted rubric.
//!
//! Each criterion is met when the agent says one of its phrases in the part of
//! the call the criterion looks at (the opening turns, anywhere, or the closing
//! turns). The score is the weight met over the total weight, 0–100, and every
//! met criterion carries the words that met it.

use std::collections::BTreeMap;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Segment, Transcript, register_algorithm};
use gensail_text::time::{format_ms, offset_ms};
use gensail_text::{find_phrase, round, snippet};
use serde::{Deserialize, Serialize};

/// Where in the call a criterion looks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The agent's first two turns.
    Opening,
    /// Anything the agent says.
    Anywhere,
    /// The agent's last two turns.
    Closing,
}

/// One rubric line.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// Name, e.g. `greeting`.
    pub name: String,
    /// Relative weight (> 0).
    pub weight: f64,
    /// Phrases, any of which meets the criterion (whole words, case-insensitive).
    pub phrases: Vec<String>,
    /// Where to look.
    pub window: Window,
}

/// Config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// A rubric replacing the default one.
    pub criteria: Option<Vec<Criterion>>,
    /// New weights for criteria by name (of the default rubric, or of `criteria`).
    pub weights: BTreeMap<String, f64>,
    /// Label of the agent; default: detected.
    pub agent_speaker: Option<String>,
}

fn default_rubric() -> Vec<Criterion> {
    let c = |name: &str, weight: f64, window: Window, phrases: &[&str]| Criterion {
        name: name.into(),
        weight,
        phrases: phrases.iter().map(|p| (*p).into()).collect(),
        window,
    };
    vec![
        c(
            "greeting",
            15.0,
            Window::Opening,
            &[
                "thank you for calling",
                "thanks for calling",
                "good morning",
                "good afternoon",
                "good evening",
                "hello",
                "hi",
                "welcome",
            ],
        ),
        c(
            "identification",
            20.0,
            Window::Anywhere,
            &[
                "this is",
                "my name is",
                "speaking",
                "your name",
                "date of birth",
                "account number",
                "confirm your",
                "who am i speaking with",
            ],
        ),
        c(
            "empathy",
            20.0,
            Window::Anywhere,
            &[
                "sorry",
                "apologize",
                "i understand",
                "i completely understand",
                "i hear you",
                "that must be",
                "sounds painful",
                "i hope",
            ],
        ),
        c(
            "resolution",
            30.0,
            Window::Anywhere,
            &[
                "all set",
                "i've booked",
                "booked you",
                "you're booked",
                "i've scheduled",
                "rescheduled",
                "i've moved",
                "i have you down",
                "i'll send",
                "i'll email",
                "i've applied",
                "escalate",
                "i've cancelled",
                "i found it",
                "i've sent",
                "i've added",
                "we'll check",
                "we can verify",
            ],
        ),
        c(
            "closing",
            15.0,
            Window::Closing,
            &[
                "anything else",
                "have a great day",
                "have a good day",
                "have a nice day",
                "goodbye",
                "bye",
                "take care",
                "see you",
                "thank you for calling",
            ],
        ),
    ]
}

/// The words that met a criterion.
#[derive(Debug, Serialize)]
pub struct Evidence {
    /// The phrase matched.
    pub phrase: String,
    /// Who said it (the agent).
    pub speaker: String,
    /// `m:ss`.
    pub timestamp: String,
    /// The words around it.
    pub snippet: String,
}

/// A criterion's result.
#[derive(Debug, Serialize)]
pub struct CriterionResult {
    /// Name.
    pub name: String,
    /// Weight.
    pub weight: f64,
    /// Whether the agent met it.
    pub met: bool,
    /// What met it.
    pub evidence: Option<Evidence>,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// 0–100.
    pub score: f64,
    /// `excellent` (≥ 90), `good` (≥ 75), `needs_improvement` (≥ 50) or `poor`.
    pub grade: &'static str,
    /// The speaker scored.
    pub agent_speaker: String,
    /// Criteria in rubric order.
    pub criteria: Vec<CriterionResult>,
    /// Names of the criteria not met.
    pub missed: Vec<String>,
}

fn rubric(config: &Config) -> Result<Vec<Criterion>, AlgorithmError> {
    let mut rubric = config.criteria.clone().unwrap_or_else(default_rubric);
    if rubric.is_empty() {
        return Err(AlgorithmError::InvalidConfig(
            "criteria is empty: give at least one criterion".into(),
        ));
    }
    for (name, weight) in &config.weights {
        let c = rubric.iter_mut().find(|c| &c.name == name).ok_or_else(|| {
            let names: Vec<&str> = rubric_names(&config.criteria);
            AlgorithmError::InvalidConfig(format!(
                "weights names unknown criterion {name:?} (criteria: {})",
                names.join(", ")
            ))
        })?;
        c.weight = *weight;
    }
    if let Some(bad) = rubric.iter().find(|c| !(c.weight >= 0.0 && c.weight.is_finite())) {
        return Err(AlgorithmError::InvalidConfig(format!(
            "criterion {:?} has weight {}; weights must be zero or more",
            bad.name, bad.weight
        )));
    }
    if rubric.iter().map(|c| c.weight).sum::<f64>() <= 0.0 {
        return Err(AlgorithmError::InvalidConfig("the weights add up to zero".into()));
    }
    Ok(rubric)
}

fn rubric_names(custom: &Option<Vec<Criterion>>) -> Vec<&'static str> {
    match custom {
        Some(_) => vec!["(the names in criteria)"],
        None => vec!["greeting", "identification", "empathy", "resolution", "closing"],
    }
}

/// Scores the agent (the whole logic, callable natively).
pub fn analyse(transcript: &Transcript, rubric: &[Criterion], agent: &str) -> Output {
    let agent_segments: Vec<&Segment> = transcript.segments.iter().filter(|s| s.speaker == agent).collect();
    let n = agent_segments.len();
    let mut results = Vec::new();
    for criterion in rubric {
        let window: &[&Segment] = match criterion.window {
            Window::Opening => &agent_segments[..n.min(2)],
            Window::Anywhere => &agent_segments,
            Window::Closing => &agent_segments[n.saturating_sub(2)..],
        };
        let evidence = window.iter().find_map(|seg| {
            criterion.phrases.iter().find_map(|p| {
                find_phrase(&seg.text, p).first().map(|(s, e)| Evidence {
                    phrase: p.clone(),
                    speaker: seg.speaker.clone(),
                    timestamp: format_ms(offset_ms(seg, *s)),
                    snippet: snippet(&seg.text, *s, *e, 50),
                })
            })
        });
        results.push(CriterionResult {
            name: criterion.name.clone(),
            weight: criterion.weight,
            met: evidence.is_some(),
            evidence,
        });
    }
    let total: f64 = results.iter().map(|r| r.weight).sum();
    let met: f64 = results.iter().filter(|r| r.met).map(|r| r.weight).sum();
    let score = round(100.0 * met / total, 1);
    let grade = match score {
        s if s >= 90.0 => "excellent",
        s if s >= 75.0 => "good",
        s if s >= 50.0 => "needs_improvement",
        _ => "poor",
    };
    Output {
        score,
        grade,
        agent_speaker: agent.to_owned(),
        missed: results.iter().filter(|r| !r.met).map(|r| r.name.clone()).collect(),
        criteria: results,
    }
}

/// The algorithm.
pub struct QaScoringV1;

impl Algorithm for QaScoringV1 {
    type Config = Config;
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "qa_scoring_v1",
            env!("CARGO_PKG_VERSION"),
            "QA score 0-100 of the agent against a weighted rubric (greeting, identification, empathy, resolution, closing), with evidence.",
        )
        .with_config_schema(serde_json::json!({
            "type": "object",
            "properties": {
                "criteria": {"type": "array", "items": {"type": "object", "required": ["name", "weight", "phrases", "window"],
                    "properties": {"name": {"type": "string"}, "weight": {"type": "number", "minimum": 0},
                        "phrases": {"type": "array", "items": {"type": "string"}}, "window": {"enum": ["opening", "anywhere", "closing"]}}}},
                "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                "agent_speaker": {"type": "string"}
            },
            "additionalProperties": false
        }))
    }

    fn run(transcript: &Transcript, config: Config) -> Result<Output, AlgorithmError> {
        let rubric = rubric(&config)?;
        let agent = gensail_text::roles::agent_speaker(transcript, config.agent_speaker.as_deref())
            .ok_or_else(|| AlgorithmError::InvalidTranscript("the transcript has no speakers".into()))?;
        if !transcript.speakers().contains(&agent.as_str()) {
            return Err(AlgorithmError::InvalidConfig(format!(
                "agent_speaker {agent:?} does not speak in this call (speakers: {})",
                transcript.speakers().join(", ")
            )));
        }
        Ok(analyse(transcript, &rubric, &agent))
    }
}

register_algorithm!(QaScoringV1);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    fn score(name: &str, config: &str) -> Output {
        let json = gensail_host_api::run_json::<QaScoringV1>(&fixtures::load(name), config).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let config: Config = serde_json::from_str(config).unwrap();
        let out = QaScoringV1::run(&fixtures::load(name), config).unwrap();
        assert_eq!(v["score"], out.score);
        out
    }

    #[test]
    fn a_model_booking_call_scores_full_marks() {
        let out = score("dental_booking.txt", "{}");
        assert_eq!(out.score, 100.0, "{out:?}");
        assert_eq!(out.grade, "excellent");
        assert_eq!(out.agent_speaker, "Agent");
        let greeting = &out.criteria[0];
        assert_eq!(greeting.evidence.as_ref().unwrap().phrase, "thank you for calling");
    }

    #[test]
    fn a_missed_opportunity_scores_poorly() {
        let out = score("dental_missed_opportunity.txt", "{}");
        assert_eq!(out.missed, ["greeting", "identification", "empathy", "resolution"]);
        assert_eq!(out.score, 15.0);
        assert_eq!(out.grade, "poor");
    }

    #[test]
    fn weights_from_config() {
        let out = score(
            "dental_missed_opportunity.txt",
            r#"{"weights": {"closing": 85, "resolution": 0}}"#,
        );
        assert_eq!(out.score, round(100.0 * 85.0 / (15.0 + 20.0 + 20.0 + 0.0 + 85.0), 1));
    }

    #[test]
    fn custom_rubric_and_bad_configs() {
        let out = score(
            "sales_competitors.txt",
            r#"{"criteria": [{"name": "next_step", "weight": 1, "phrases": ["send a proposal"], "window": "anywhere"}]}"#,
        );
        assert_eq!(out.score, 100.0);
        let t = fixtures::load("sales_competitors.txt");
        let err = QaScoringV1::run(&t, serde_json::from_str(r#"{"weights": {"smile": 3}}"#).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("smile") && err.to_string().contains("greeting"),
            "{err}"
        );
        let err = QaScoringV1::run(&t, serde_json::from_str(r#"{"agent_speaker": "Bot"}"#).unwrap()).unwrap_err();
        assert!(err.to_string().contains("Rep, Prospect"), "{err}");
    }
}
