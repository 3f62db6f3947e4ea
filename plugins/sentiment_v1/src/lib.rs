//! `sentiment_v1`: lexicon-based sentiment of a call, per speaker and overall.
//!
//! Every word found in the lexicon adds its weight; a speaker's score is
//! `(positive - negative) / (positive + negative + 2)`, in (-1, 1). Scores
//! above 0.2 are Positive, below -0.2 Negative, Neutral between. No handling of
//! negation or context: that is what `new_sentiment_v2` adds.

use std::collections::BTreeMap;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
use gensail_text::{lexicon, round, tokens};
use serde::Serialize;

/// Score above which a speaker or call is Positive (below its negation, Negative).
const THRESHOLD: f64 = 0.2;

/// The algorithm.
pub struct SentimentV1;

/// Sentiment of one speaker (or of the whole call).
#[derive(Debug, Serialize, PartialEq)]
pub struct SpeakerSentiment {
    /// Speaker label, or `"overall"`.
    pub speaker: String,
    /// Positive, Neutral or Negative.
    pub label: &'static str,
    /// In (-1, 1).
    pub score: f64,
    /// Sum of positive weights.
    pub positive: f64,
    /// Sum of negative weights.
    pub negative: f64,
    /// Most weighty sentiment words, strongest first.
    pub top_words: Vec<String>,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// Overall label, as in the product's webhook (`"Positive"`).
    pub call_sentiment: &'static str,
    /// Why, in one sentence.
    pub call_sentiment_reason: String,
    /// How sure, 0–100: grows with the strength of the score and the amount of evidence.
    pub confidence_score: f64,
    /// Overall figures.
    pub overall: SpeakerSentiment,
    /// One entry per speaker, in order of first appearance.
    pub speakers: Vec<SpeakerSentiment>,
}

#[derive(Default)]
struct Tally {
    positive: f64,
    negative: f64,
    words: BTreeMap<String, f64>,
}

impl Tally {
    fn add(&mut self, word: &str, weight: f64) {
        if weight > 0.0 {
            self.positive += weight;
        } else {
            self.negative -= weight;
        }
        *self.words.entry(word.to_owned()).or_default() += weight;
    }

    fn summary(&self, speaker: &str) -> SpeakerSentiment {
        let score = (self.positive - self.negative) / (self.positive + self.negative + 2.0);
        let mut top: Vec<(&String, &f64)> = self.words.iter().collect();
        top.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(b.0)));
        SpeakerSentiment {
            speaker: speaker.to_owned(),
            label: label(score),
            score: round(score, 3),
            positive: round(self.positive, 2),
            negative: round(self.negative, 2),
            top_words: top.into_iter().take(5).map(|(w, _)| w.clone()).collect(),
        }
    }
}

fn label(score: f64) -> &'static str {
    if score > THRESHOLD {
        "Positive"
    } else if score < -THRESHOLD {
        "Negative"
    } else {
        "Neutral"
    }
}

/// Analyses a transcript (the plugin's whole logic, callable natively).
pub fn analyse(transcript: &Transcript) -> Output {
    let mut overall = Tally::default();
    let mut per_speaker: Vec<(String, Tally)> = transcript
        .speakers()
        .into_iter()
        .map(|s| (s.to_owned(), Tally::default()))
        .collect();
    for segment in &transcript.segments {
        let tally = &mut per_speaker
            .iter_mut()
            .find(|(s, _)| *s == segment.speaker)
            .expect("speaker listed")
            .1;
        for token in tokens(&segment.text) {
            if let Some(w) = lexicon::weight(&token.norm) {
                tally.add(&token.norm, w);
                overall.add(&token.norm, w);
            }
        }
    }
    let summary = overall.summary("overall");
    let evidence = summary.positive + summary.negative;
    let confidence = 50.0 + 50.0 * summary.score.abs() * (evidence / (evidence + 5.0));
    let reason = if evidence == 0.0 {
        "No sentiment words were found.".to_owned()
    } else {
        format!(
            "{} words outweigh {} words ({:.1} vs {:.1}); strongest: {}.",
            if summary.positive >= summary.negative {
                "Positive"
            } else {
                "Negative"
            },
            if summary.positive >= summary.negative {
                "negative"
            } else {
                "positive"
            },
            summary.positive.max(summary.negative),
            summary.positive.min(summary.negative),
            summary.top_words.join(", ")
        )
    };
    Output {
        call_sentiment: summary.label,
        call_sentiment_reason: reason,
        confidence_score: round(confidence, 1),
        speakers: per_speaker.iter().map(|(s, t)| t.summary(s)).collect(),
        overall: summary,
    }
}

impl Algorithm for SentimentV1 {
    type Config = ();
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "sentiment_v1",
            env!("CARGO_PKG_VERSION"),
            "Lexicon-based sentiment per speaker and overall: Positive, Neutral or Negative with a score and a reason.",
        )
    }

    fn run(transcript: &Transcript, _config: ()) -> Result<Output, AlgorithmError> {
        transcript.require_speech()?;
        Ok(analyse(transcript))
    }
}

register_algorithm!(SentimentV1);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    #[test]
    fn booking_call_is_positive() {
        let out = analyse(&fixtures::load("dental_booking.txt"));
        assert_eq!(out.call_sentiment, "Positive");
        assert_eq!(out.speakers.len(), 2);
        assert!(
            out.overall.top_words.contains(&"great".to_owned()),
            "{:?}",
            out.overall.top_words
        );
        assert!(out.confidence_score > 50.0);
    }

    #[test]
    fn angry_customer_is_negative() {
        let out = analyse(&fixtures::load("angry_support.txt"));
        let customer = out.speakers.iter().find(|s| s.speaker == "Customer").unwrap();
        assert_eq!(customer.label, "Negative", "{customer:?}");
        assert!(customer.top_words.contains(&"ridiculous".to_owned()));
    }

    #[test]
    fn no_speech_is_an_invalid_transcript() {
        let t = Transcript::parse(r#"{"segments":[{"speaker":"A","start_ms":0,"end_ms":1,"text":" "}]}"#).unwrap();
        assert!(matches!(
            SentimentV1::run(&t, ()),
            Err(AlgorithmError::InvalidTranscript(_))
        ));
    }

    #[test]
    fn output_is_json_through_the_plugin_boundary() {
        let json = gensail_host_api::run_json::<SentimentV1>(&fixtures::load("support_resolved.json"), "{}").unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["call_sentiment"], "Positive");
    }
}
