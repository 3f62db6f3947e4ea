//! `internal_metrics_v1`: conversation metrics from segment timing.
//!
//! A *turn* is a run of consecutive segments by one speaker. A *gap* is
//! silence between two segments longer than `gap_threshold_ms`; an *overlap*
//! is a segment that starts before the previous one ended (cross-talk).

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
use gensail_text::round;
use gensail_text::time::format_ms;
use serde::{Deserialize, Serialize};

/// Config.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Silence longer than this between segments counts as a gap.
    pub gap_threshold_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self { gap_threshold_ms: 2000 }
    }
}

/// Metrics of one speaker.
#[derive(Debug, Serialize)]
pub struct SpeakerMetrics {
    /// Speaker label.
    pub speaker: String,
    /// Milliseconds of speech.
    pub talk_ms: u64,
    /// Share of all speech, 0–1.
    pub talk_ratio: f64,
    /// Words spoken.
    pub words: usize,
    /// Words per minute of their own speech.
    pub words_per_minute: f64,
    /// Turns taken.
    pub turns: usize,
    /// Longest single turn in milliseconds.
    pub longest_turn_ms: u64,
}

/// The longest monologue.
#[derive(Debug, Serialize, PartialEq)]
pub struct Monologue {
    /// Who.
    pub speaker: String,
    /// How long, ms.
    pub duration_ms: u64,
    /// When it started, `m:ss`.
    pub starts_at: String,
}

/// Silence or cross-talk totals.
#[derive(Debug, Serialize, Default, PartialEq)]
pub struct Intervals {
    /// How many.
    pub count: usize,
    /// Their total length, ms.
    pub total_ms: u64,
    /// The longest, ms.
    pub longest_ms: u64,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// Call length, ms.
    pub duration_ms: u64,
    /// Call length in seconds (as the webhook's `recording_duration`).
    pub recording_duration: f64,
    /// Total speech (union of segments), ms.
    pub speech_ms: u64,
    /// Share of the call with nobody speaking, 0–1.
    pub silence_ratio: f64,
    /// Words on the call.
    pub total_words: usize,
    /// Words per minute of speech, all speakers.
    pub words_per_minute: f64,
    /// Speaker changes + 1.
    pub total_turns: usize,
    /// Per speaker, in order of first appearance.
    pub speakers: Vec<SpeakerMetrics>,
    /// The longest single turn.
    pub longest_monologue: Option<Monologue>,
    /// Silences longer than the threshold.
    pub gaps: Intervals,
    /// Cross-talk.
    pub overlaps: Intervals,
}

fn add(intervals: &mut Intervals, ms: u64) {
    intervals.count += 1;
    intervals.total_ms += ms;
    intervals.longest_ms = intervals.longest_ms.max(ms);
}

fn wpm(words: usize, ms: u64) -> f64 {
    if ms == 0 {
        0.0
    } else {
        round(words as f64 * 60_000.0 / ms as f64, 1)
    }
}

/// Computes the metrics (the whole logic, callable natively).
pub fn analyse(transcript: &Transcript, config: &Config) -> Output {
    let names = transcript.speakers();
    let mut speakers: Vec<SpeakerMetrics> = names
        .iter()
        .map(|s| SpeakerMetrics {
            speaker: (*s).to_owned(),
            talk_ms: 0,
            talk_ratio: 0.0,
            words: 0,
            words_per_minute: 0.0,
            turns: 0,
            longest_turn_ms: 0,
        })
        .collect();
    let (mut gaps, mut overlaps) = (Intervals::default(), Intervals::default());
    let mut longest: Option<Monologue> = None;
    let mut speech_ms = 0;
    let mut covered_until = 0u64;
    // The current turn: speaker index, start, end.
    let mut turn: Option<(usize, u64, u64)> = None;
    let close_turn = |turn: (usize, u64, u64), speakers: &mut Vec<SpeakerMetrics>, longest: &mut Option<Monologue>| {
        let (who, start, end) = turn;
        let length = end.saturating_sub(start);
        speakers[who].turns += 1;
        speakers[who].longest_turn_ms = speakers[who].longest_turn_ms.max(length);
        if longest.as_ref().is_none_or(|m| length > m.duration_ms) {
            *longest = Some(Monologue {
                speaker: speakers[who].speaker.clone(),
                duration_ms: length,
                starts_at: format_ms(start),
            });
        }
    };
    for (i, seg) in transcript.segments.iter().enumerate() {
        let who = names.iter().position(|n| *n == seg.speaker).expect("listed");
        speakers[who].talk_ms += seg.duration_ms();
        speakers[who].words += seg.word_count();
        // Union of speech, for silence.
        if seg.end_ms > covered_until {
            speech_ms += seg.end_ms - seg.start_ms.max(covered_until);
        }
        if i > 0 {
            if seg.start_ms > covered_until && seg.start_ms - covered_until > config.gap_threshold_ms {
                add(&mut gaps, seg.start_ms - covered_until);
            } else if seg.start_ms < covered_until && transcript.segments[i - 1].speaker != seg.speaker {
                add(&mut overlaps, covered_until.min(seg.end_ms) - seg.start_ms);
            }
        }
        covered_until = covered_until.max(seg.end_ms);
        turn = match turn {
            Some((w, start, _)) if w == who => Some((w, start, seg.end_ms)),
            Some(previous) => {
                close_turn(previous, &mut speakers, &mut longest);
                Some((who, seg.start_ms, seg.end_ms))
            }
            None => Some((who, seg.start_ms, seg.end_ms)),
        };
    }
    if let Some(last) = turn {
        close_turn(last, &mut speakers, &mut longest);
    }
    let total_talk: u64 = speakers.iter().map(|s| s.talk_ms).sum();
    for s in &mut speakers {
        s.talk_ratio = if total_talk == 0 {
            0.0
        } else {
            round(s.talk_ms as f64 / total_talk as f64, 3)
        };
        s.words_per_minute = wpm(s.words, s.talk_ms);
    }
    let total_words = speakers.iter().map(|s| s.words).sum();
    let duration = transcript.duration_ms;
    Output {
        duration_ms: duration,
        recording_duration: round(duration as f64 / 1000.0, 3),
        speech_ms,
        silence_ratio: if duration == 0 {
            0.0
        } else {
            round(1.0 - speech_ms as f64 / duration as f64, 3).max(0.0)
        },
        total_words,
        words_per_minute: wpm(total_words, speech_ms),
        total_turns: speakers.iter().map(|s| s.turns).sum(),
        speakers,
        longest_monologue: longest,
        gaps,
        overlaps,
    }
}

/// The algorithm.
pub struct InternalMetricsV1;

impl Algorithm for InternalMetricsV1 {
    type Config = Config;
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "internal_metrics_v1",
            env!("CARGO_PKG_VERSION"),
            "Talk ratio per speaker, words per minute, turns, longest monologue, gaps and overlaps.",
        )
        .with_config_schema(serde_json::json!({
            "type": "object",
            "properties": {"gap_threshold_ms": {"type": "integer", "minimum": 0}},
            "additionalProperties": false
        }))
    }

    fn run(transcript: &Transcript, config: Config) -> Result<Output, AlgorithmError> {
        if transcript.segments.is_empty() {
            return Err(AlgorithmError::InvalidTranscript(
                "the transcript has no segments".into(),
            ));
        }
        Ok(analyse(transcript, &config))
    }
}

register_algorithm!(InternalMetricsV1);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    #[test]
    fn timed_support_call() {
        let out = analyse(&fixtures::load("support_resolved.json"), &Config::default());
        assert_eq!(out.duration_ms, 95_000);
        assert_eq!(out.total_turns, 9);
        let agent = &out.speakers[0];
        assert_eq!(agent.speaker, "Agent");
        assert_eq!(agent.turns, 5);
        assert_eq!(agent.talk_ms, 5200 + 7400 + 15000 + 7500 + 4800);
        // 23,000 -> 30,000 is the only silence over 2 s between segments.
        assert_eq!(
            out.gaps,
            Intervals {
                count: 1,
                total_ms: 7000,
                longest_ms: 7000
            }
        );
        // The customer starts at 20,300 while the agent talks until 20,500.
        assert_eq!(
            out.overlaps,
            Intervals {
                count: 1,
                total_ms: 200,
                longest_ms: 200
            }
        );
        assert_eq!(
            out.longest_monologue,
            Some(Monologue {
                speaker: "Agent".into(),
                duration_ms: 15_000,
                starts_at: "0:30".into()
            })
        );
        let ratios: f64 = out.speakers.iter().map(|s| s.talk_ratio).sum();
        assert!((ratios - 1.0).abs() < 0.01);
        // 68 s of speech-or-gaps ends at 68,000 in a 95,000 ms call: the tail is silence.
        assert!(out.silence_ratio > 0.3, "{}", out.silence_ratio);
    }

    #[test]
    fn consecutive_segments_are_one_turn() {
        let t = Transcript::parse(
            r#"{"segments":[{"speaker":"A","start_ms":0,"end_ms":1000,"text":"one two"},{"speaker":"A","start_ms":1000,"end_ms":3000,"text":"three"},{"speaker":"B","start_ms":3000,"end_ms":4000,"text":"four"}]}"#,
        )
        .unwrap();
        let out = analyse(&t, &Config::default());
        assert_eq!(out.speakers[0].turns, 1);
        assert_eq!(out.speakers[0].longest_turn_ms, 3000);
        assert_eq!(out.total_turns, 2);
    }

    #[test]
    fn gap_threshold_is_configurable() {
        let t = fixtures::load("support_resolved.json");
        let out = analyse(&t, &Config { gap_threshold_ms: 400 });
        assert!(out.gaps.count > 1);
    }
}
