//! `new_sentiment_v2`: call sentiment that reads words in context.
//!
//! Starting from the same lexicon as `sentiment_v1`, it:
//! - flips a word after a negator within three words ("not happy", "nobody has fixed it");
//! - scales a word after an intensifier ("really", "extremely") or a softener ("slightly");
//! - weighs the clause after "but"/"however" over the one before it;
//! - ignores scripted courtesy ("thank you for calling", "sorry to hear") that says
//!   nothing about the caller's mood;
//! - weighs the end of the call more than its start, and reports the trajectory
//!   over the call's three thirds (improving / worsening / stable).

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
use gensail_text::{lexicon, round, tokens};
use serde::{Deserialize, Serialize};

const NEGATORS: &[&str] = &[
    "not", "no", "never", "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "won't", "can't", "cannot",
    "nobody", "nothing", "hardly", "neither", "nor", "without",
];
const INTENSIFIERS: &[(&str, f64)] = &[
    ("very", 1.5),
    ("really", 1.5),
    ("so", 1.3),
    ("extremely", 2.0),
    ("totally", 1.7),
    ("completely", 1.7),
    ("absolutely", 1.8),
    ("super", 1.5),
    ("incredibly", 2.0),
    ("truly", 1.5),
];
const SOFTENERS: &[(&str, f64)] = &[
    ("slightly", 0.5),
    ("somewhat", 0.6),
    ("little", 0.6),
    ("bit", 0.6),
    ("kinda", 0.6),
    ("fairly", 0.8),
];
const CONTRASTS: &[&str] = &["but", "however", "although", "though", "yet"];
/// Scripted phrases whose sentiment words say nothing about the caller's mood.
const COURTESY: &[&str] = &[
    "thank you for calling",
    "thanks for calling",
    "sorry to hear",
    "you're welcome",
    "welcome to",
    "thank you for your patience",
    "have a great day",
    "have a good day",
    "have a nice day",
    // An agent's apology or empathy is service, not the agent's own bad mood.
    "i'm sorry",
    "i'm really sorry",
    "i'm so sorry",
    "i apologize",
    "how frustrating",
    "if anything goes wrong",
];

/// The algorithm.
pub struct NewSentimentV2;

/// Config.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Label of the speaker whose mood matters most (the caller); weighed double
    /// in the overall score. Default: every speaker who is not the agent.
    pub customer_speaker: Option<String>,
}

/// Sentiment of one speaker.
#[derive(Debug, Serialize)]
pub struct SpeakerSentiment {
    /// Speaker label.
    pub speaker: String,
    /// Positive, Neutral or Negative.
    pub label: &'static str,
    /// In (-1, 1).
    pub score: f64,
    /// Strongest contributions, e.g. `"not happy" (-1.2)`.
    pub evidence: Vec<String>,
}

/// Sentiment of one third of the call.
#[derive(Debug, Serialize)]
pub struct Phase {
    /// `start`, `middle` or `end`.
    pub phase: &'static str,
    /// In (-1, 1).
    pub score: f64,
    /// Positive, Neutral or Negative.
    pub label: &'static str,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// Overall label (`"Positive"`, `"Neutral"`, `"Negative"`).
    pub call_sentiment: &'static str,
    /// Why, in one or two sentences.
    pub call_sentiment_reason: String,
    /// How sure, 0–100.
    pub confidence_score: f64,
    /// Overall score in (-1, 1), end of call and customer weighted.
    pub score: f64,
    /// `improving`, `worsening` or `stable`.
    pub trajectory: &'static str,
    /// Start, middle and end of the call.
    pub phases: Vec<Phase>,
    /// Per speaker.
    pub speakers: Vec<SpeakerSentiment>,
}

/// One scored word in context.
struct Hit {
    speaker: usize,
    at_ms: u64,
    weight: f64,
    phrase: String,
}

fn label(score: f64) -> &'static str {
    if score > 0.2 {
        "Positive"
    } else if score < -0.2 {
        "Negative"
    } else {
        "Neutral"
    }
}

fn score_of<'a>(weights: impl Iterator<Item = &'a f64>) -> f64 {
    let (mut pos, mut neg) = (0.0, 0.0);
    for w in weights {
        if *w > 0.0 { pos += w } else { neg -= w }
    }
    (pos - neg) / (pos + neg + 2.0)
}

/// Scores every sentiment word of the transcript in its context.
fn hits(transcript: &Transcript, speakers: &[&str]) -> Vec<Hit> {
    let mut out = Vec::new();
    for segment in &transcript.segments {
        let speaker = speakers.iter().position(|s| *s == segment.speaker).expect("listed");
        let lower = segment.text.to_lowercase();
        let courtesy: Vec<(usize, usize)> = COURTESY
            .iter()
            .flat_map(|c| gensail_text::find_phrase(&lower, c))
            .collect();
        let toks = tokens(&segment.text);
        // Clause weights: before a contrast word 0.5, after it 1.5.
        let contrast_at = toks.iter().position(|t| CONTRASTS.contains(&t.norm.as_str()));
        for (i, tok) in toks.iter().enumerate() {
            let Some(base) = lexicon::weight(&tok.norm) else {
                continue;
            };
            if NEGATORS.contains(&tok.norm.as_str()) || courtesy.iter().any(|(s, e)| tok.start >= *s && tok.end <= *e) {
                continue;
            }
            let mut weight = base;
            let mut phrase = tok.norm.clone();
            // Look back up to three words, not across a clause boundary.
            let window_start = i.saturating_sub(3);
            for j in (window_start..i).rev() {
                if toks[j].ends_clause {
                    break;
                }
                let w = toks[j].norm.as_str();
                if NEGATORS.contains(&w) {
                    weight = -weight * 0.8;
                    phrase = format!("{w} … {phrase}");
                    break;
                }
                if let Some((_, f)) = INTENSIFIERS.iter().chain(SOFTENERS).find(|(k, _)| *k == w) {
                    weight *= f;
                    phrase = format!("{w} {phrase}");
                }
            }
            if let Some(c) = contrast_at {
                weight *= if i < c { 0.5 } else { 1.5 };
            }
            out.push(Hit {
                speaker,
                at_ms: gensail_text::time::offset_ms(segment, tok.start),
                weight,
                phrase,
            });
        }
    }
    out
}

/// Analyses a transcript (the whole logic, callable natively).
pub fn analyse(transcript: &Transcript, config: &Config) -> Output {
    let speakers = transcript.speakers();
    let agent = gensail_text::roles::agent_speaker(transcript, None);
    let is_customer = |i: usize| match &config.customer_speaker {
        Some(c) => speakers[i] == c,
        None => agent.as_deref() != Some(speakers[i]),
    };
    let hits = hits(transcript, &speakers);
    let duration = transcript.duration_ms.max(1) as f64;

    // Overall: later words weigh more (0.5 at the start, 1.5 at the end), the customer double.
    let weighted: Vec<f64> = hits
        .iter()
        .map(|h| h.weight * (0.5 + h.at_ms as f64 / duration) * if is_customer(h.speaker) { 2.0 } else { 1.0 })
        .collect();
    let score = score_of(weighted.iter());

    let phases: Vec<Phase> = ["start", "middle", "end"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let (from, to) = (duration * k as f64 / 3.0, duration * (k + 1) as f64 / 3.0);
            let ws: Vec<f64> = hits
                .iter()
                .filter(|h| (h.at_ms as f64) >= from && ((h.at_ms as f64) < to || k == 2))
                .map(|h| h.weight)
                .collect();
            let s = score_of(ws.iter());
            Phase {
                phase: name,
                score: round(s, 3),
                label: label(s),
            }
        })
        .collect();
    let delta = phases[2].score - phases[0].score;
    let trajectory = if delta > 0.25 {
        "improving"
    } else if delta < -0.25 {
        "worsening"
    } else {
        "stable"
    };

    let per_speaker: Vec<SpeakerSentiment> = speakers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut mine: Vec<&Hit> = hits.iter().filter(|h| h.speaker == i).collect();
            let s = score_of(mine.iter().map(|h| &h.weight));
            mine.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
            SpeakerSentiment {
                speaker: (*name).to_owned(),
                label: label(s),
                score: round(s, 3),
                evidence: mine
                    .iter()
                    .take(4)
                    .map(|h| format!("\"{}\" ({:+.1})", h.phrase, h.weight))
                    .collect(),
            }
        })
        .collect();

    let evidence: f64 = hits.iter().map(|h| h.weight.abs()).sum();
    let confidence = 50.0 + 50.0 * score.abs() * (evidence / (evidence + 5.0));
    let customer_view = per_speaker
        .iter()
        .enumerate()
        .filter(|(i, _)| is_customer(*i))
        .map(|(_, s)| s)
        .next();
    let reason = match customer_view {
        _ if hits.is_empty() => "No sentiment-bearing words were found.".to_owned(),
        Some(c) => format!(
            "{} is {} ({}); the call is {} from a {} start to a {} end.",
            c.speaker,
            c.label.to_lowercase(),
            c.evidence.join(", "),
            trajectory,
            phases[0].label.to_lowercase(),
            phases[2].label.to_lowercase()
        ),
        None => format!(
            "The call is {} from a {} start to a {} end.",
            trajectory,
            phases[0].label.to_lowercase(),
            phases[2].label.to_lowercase()
        ),
    };
    Output {
        call_sentiment: label(score),
        call_sentiment_reason: reason,
        confidence_score: round(confidence, 1),
        score: round(score, 3),
        trajectory,
        phases,
        speakers: per_speaker,
    }
}

impl Algorithm for NewSentimentV2 {
    type Config = Config;
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "new_sentiment_v2",
            env!("CARGO_PKG_VERSION"),
            "Call sentiment with negation, intensifiers, contrast clauses and the trajectory over the call; customer and end of call weighted.",
        )
        .with_config_schema(serde_json::json!({
            "type": "object",
            "properties": {"customer_speaker": {"type": "string", "description": "label of the caller; default: everyone but the agent"}},
            "additionalProperties": false
        }))
    }

    fn run(transcript: &Transcript, config: Config) -> Result<Output, AlgorithmError> {
        transcript.require_speech()?;
        if let Some(c) = &config.customer_speaker
            && !transcript.speakers().contains(&c.as_str())
        {
            return Err(AlgorithmError::InvalidConfig(format!(
                "customer_speaker {c:?} does not speak in this call (speakers: {})",
                transcript.speakers().join(", ")
            )));
        }
        Ok(analyse(transcript, &config))
    }
}

register_algorithm!(NewSentimentV2);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    fn lines(text: &str) -> Transcript {
        Transcript::parse(text).unwrap()
    }

    #[test]
    fn negation_flips() {
        let out = analyse(
            &lines("Agent: How was it?\nCaller: I am not happy and it was not good at all."),
            &Config::default(),
        );
        assert_eq!(out.call_sentiment, "Negative", "{out:?}");
        assert!(
            out.speakers[1].evidence.iter().any(|e| e.contains("not … happy")),
            "{:?}",
            out.speakers[1].evidence
        );
    }

    #[test]
    fn contrast_clause_wins() {
        let out = analyse(
            &lines("Agent: How was the visit?\nCaller: The staff was nice, but the wait was terrible and awful."),
            &Config::default(),
        );
        assert_eq!(out.speakers[1].label, "Negative", "{out:?}");
    }

    #[test]
    fn intensifiers_scale() {
        let plain = analyse(&lines("Agent: Hi.\nCaller: That is good."), &Config::default());
        let strong = analyse(
            &lines("Agent: Hi.\nCaller: That is extremely good."),
            &Config::default(),
        );
        assert!(strong.speakers[1].score > plain.speakers[1].score);
    }

    #[test]
    fn angry_support_call_is_negative_and_improving() {
        let out = analyse(&fixtures::load("angry_support.txt"), &Config::default());
        assert_eq!(out.call_sentiment, "Negative", "{out:?}");
        let customer = out.speakers.iter().find(|s| s.speaker == "Customer").unwrap();
        assert_eq!(customer.label, "Negative");
        assert_eq!(out.trajectory, "improving", "{:?}", out.phases);
        // "nobody has fixed it" is not praise (sentiment_v1 counts "fixed" as positive).
        assert!(
            !customer.evidence.iter().any(|e| e == "\"fixed\" (+1.0)"),
            "{:?}",
            customer.evidence
        );
    }

    #[test]
    fn an_apologising_agent_is_not_negative() {
        let out = analyse(&fixtures::load("angry_support.txt"), &Config::default());
        let agent = out.speakers.iter().find(|s| s.speaker == "Agent").unwrap();
        assert_ne!(agent.label, "Negative", "{agent:?}");
    }

    #[test]
    fn courtesy_is_not_mood() {
        let out = analyse(
            &lines("Agent: Thank you for calling, sorry to hear that.\nCaller: The bill is due."),
            &Config::default(),
        );
        assert_eq!(out.call_sentiment, "Neutral", "{out:?}");
    }

    #[test]
    fn resolved_support_call_is_positive() {
        let out = analyse(&fixtures::load("support_resolved.json"), &Config::default());
        assert_eq!(out.call_sentiment, "Positive", "{out:?}");
    }

    #[test]
    fn unknown_customer_speaker_is_a_config_error() {
        let t = lines("Agent: hi\nCaller: hi");
        let err = NewSentimentV2::run(
            &t,
            Config {
                customer_speaker: Some("Bob".into()),
            },
        )
        .unwrap_err();
        assert!(matches!(err, AlgorithmError::InvalidConfig(m) if m.contains("Agent, Caller")));
    }
}
