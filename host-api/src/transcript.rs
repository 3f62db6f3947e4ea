//! Call transcripts, and the two text forms they are read from.
//!
//! Wherever gensail reads a transcript (the API, the CLI, fixture files in an
//! author's tests) it accepts either form:
//! - JSON: `{"language"?, "duration_ms"?, "segments": [{"speaker", "start_ms", "end_ms", "text", "confidence"?, "channel"?}]}`;
//! - plain text: one `Speaker: text` line per turn. Timestamps are then estimated
//!   from word counts at [`ESTIMATED_MS_PER_WORD`]; a line without a speaker label
//!   continues the previous turn.

use serde::{Deserialize, Serialize};

/// Speaking pace used to estimate timestamps of plain-text transcripts (150 words a minute).
pub const ESTIMATED_MS_PER_WORD: u64 = 400;

/// The longest call a transcript may describe: a week. Longer is a clock
/// error, and the bound keeps every time and sum of times well inside `i64`
/// (the databases' integer), which a `u64` from JSON is not.
pub const MAX_CALL_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// One stretch of speech by one speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Who spoke, as the transcriber labelled them.
    pub speaker: String,
    /// Start, milliseconds from the start of the call.
    pub start_ms: u64,
    /// End, milliseconds from the start of the call.
    pub end_ms: u64,
    /// What was said.
    pub text: String,
    /// Transcriber confidence, 0.0 to 1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// Audio channel, for per-channel recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
}

impl Segment {
    /// Number of whitespace-separated words.
    pub fn word_count(&self) -> usize {
        self.text.split_whitespace().count()
    }

    /// Length in milliseconds (zero if the timestamps are reversed).
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// A call transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// BCP 47 language tag, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Call length in milliseconds; when absent it is the end of the last segment.
    #[serde(default)]
    pub duration_ms: u64,
    /// Segments in time order.
    pub segments: Vec<Segment>,
}

/// Why a transcript could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptParseError(pub String);

impl std::fmt::Display for TranscriptParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TranscriptParseError {}

impl Transcript {
    /// Reads a transcript from text in either form: JSON when it starts with `{`,
    /// `Speaker: text` lines otherwise.
    pub fn parse(text: &str) -> Result<Self, TranscriptParseError> {
        if text.trim_start().starts_with('{') {
            let transcript: Transcript = serde_json::from_str(text)
                .map_err(|e| TranscriptParseError(format!("transcript JSON is invalid: {e}")))?;
            transcript.validated()
        } else {
            Self::from_lines(text)
        }
    }

    /// Reads `Speaker: text` lines, estimating timestamps from word counts.
    pub fn from_lines(text: &str) -> Result<Self, TranscriptParseError> {
        let mut segments: Vec<Segment> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            match split_speaker(line) {
                Some((speaker, said)) => segments.push(Segment {
                    speaker: speaker.to_owned(),
                    start_ms: 0,
                    end_ms: 0,
                    text: said.to_owned(),
                    confidence: None,
                    channel: None,
                }),
                None => match segments.last_mut() {
                    Some(previous) => {
                        previous.text.push(' ');
                        previous.text.push_str(line);
                    }
                    None => {
                        return Err(TranscriptParseError(format!(
                            "line {} has no speaker label: write each turn as `Speaker: text`",
                            number + 1
                        )));
                    }
                },
            }
        }
        let mut clock = 0;
        for segment in &mut segments {
            segment.start_ms = clock;
            clock += segment.word_count().max(1) as u64 * ESTIMATED_MS_PER_WORD;
            segment.end_ms = clock;
        }
        Transcript {
            language: None,
            duration_ms: clock,
            segments,
        }
        .validated()
    }

    /// Checks timestamps and fills in a missing duration.
    fn validated(mut self) -> Result<Self, TranscriptParseError> {
        if self.duration_ms > MAX_CALL_MS {
            return Err(TranscriptParseError(format!(
                "duration_ms is {}; a call lasts at most {MAX_CALL_MS} ms (a week)",
                self.duration_ms
            )));
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.end_ms > MAX_CALL_MS {
                return Err(TranscriptParseError(format!(
                    "segment {i} ends at {} ms; a call lasts at most {MAX_CALL_MS} ms (a week)",
                    s.end_ms
                )));
            }
            if s.end_ms < s.start_ms {
                return Err(TranscriptParseError(format!(
                    "segment {i} ends ({} ms) before it starts ({} ms)",
                    s.end_ms, s.start_ms
                )));
            }
            if let Some(c) = s.confidence
                && !(0.0..=1.0).contains(&c)
            {
                return Err(TranscriptParseError(format!(
                    "segment {i} has confidence {c}; it must be between 0 and 1"
                )));
            }
        }
        let last_end = self.segments.iter().map(|s| s.end_ms).max().unwrap_or(0);
        self.duration_ms = self.duration_ms.max(last_end);
        Ok(self)
    }

    /// Whether any segment has words in it.
    pub fn has_speech(&self) -> bool {
        self.segments.iter().any(|s| !s.text.trim().is_empty())
    }

    /// `Err(InvalidTranscript)` when no segment has words: the check most
    /// algorithms start with.
    pub fn require_speech(&self) -> Result<(), crate::AlgorithmError> {
        if self.has_speech() {
            Ok(())
        } else {
            Err(crate::AlgorithmError::InvalidTranscript(
                "the transcript has no speech".into(),
            ))
        }
    }

    /// Words across all segments.
    pub fn word_count(&self) -> usize {
        self.segments.iter().map(Segment::word_count).sum()
    }

    /// Speakers in order of first appearance.
    pub fn speakers(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.segments {
            if !seen.contains(&s.speaker.as_str()) {
                seen.push(&s.speaker);
            }
        }
        seen
    }
}

/// Splits `Speaker: text`. A label is short (at most 40 characters and 4 words)
/// and does not start with a digit, so "We open at 10:30" is not read as a label.
fn split_speaker(line: &str) -> Option<(&str, &str)> {
    let (label, rest) = line.split_once(':')?;
    let label = label.trim();
    let plausible = !label.is_empty()
        && label.len() <= 40
        && label.split_whitespace().count() <= 4
        && !label.starts_with(|c: char| c.is_ascii_digit());
    plausible.then(|| (label, rest.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_get_estimated_timestamps() {
        let t = Transcript::parse("Agent: Thanks for calling Bright Smile Dental.\nCaller: Hi, I need a cleaning.\n")
            .unwrap();
        assert_eq!(t.segments.len(), 2);
        assert_eq!(t.segments[0].speaker, "Agent");
        assert_eq!(t.segments[0].start_ms, 0);
        assert_eq!(t.segments[0].end_ms, 6 * ESTIMATED_MS_PER_WORD);
        assert_eq!(t.segments[1].start_ms, t.segments[0].end_ms);
        assert_eq!(t.duration_ms, t.segments[1].end_ms);
        assert_eq!(t.speakers(), vec!["Agent", "Caller"]);
    }

    #[test]
    fn a_line_without_label_continues_the_turn() {
        let t = Transcript::parse("Agent: We open at\n10:30 on Mondays.").unwrap();
        assert_eq!(t.segments.len(), 1);
        assert_eq!(t.segments[0].text, "We open at 10:30 on Mondays.");
    }

    #[test]
    fn first_line_must_have_a_speaker() {
        let err = Transcript::parse("hello there").unwrap_err();
        assert!(err.0.contains("line 1"), "{err}");
    }

    #[test]
    fn json_form_fills_duration_and_checks_times() {
        let t = Transcript::parse(r#"{"segments":[{"speaker":"A","start_ms":0,"end_ms":1500,"text":"hi"}]}"#).unwrap();
        assert_eq!(t.duration_ms, 1500);
        let err =
            Transcript::parse(r#"{"segments":[{"speaker":"A","start_ms":900,"end_ms":100,"text":"hi"}]}"#).unwrap_err();
        assert!(err.0.contains("segment 0 ends"), "{err}");
        let err = Transcript::parse(r#"{"segments":[{"speaker":"A"}]}"#).unwrap_err();
        assert!(err.0.contains("start_ms"), "{err}");
    }

    #[test]
    fn times_beyond_a_week_are_refused_not_wrapped() {
        // 2^63 once went into the database as i64::MIN and passed the minimum-duration filter.
        let err = Transcript::parse(
            r#"{"duration_ms":9223372036854775808,"segments":[{"speaker":"A","start_ms":0,"end_ms":1,"text":"hi"}]}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("at most 604800000 ms"), "{err}");
        let err = Transcript::parse(
            r#"{"segments":[{"speaker":"A","start_ms":0,"end_ms":18446744073709551615,"text":"hi"}]}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("segment 0 ends"), "{err}");
        let week = format!(r#"{{"segments":[{{"speaker":"A","start_ms":0,"end_ms":{MAX_CALL_MS},"text":"hi"}}]}}"#);
        assert_eq!(Transcript::parse(&week).unwrap().duration_ms, MAX_CALL_MS);
    }

    #[test]
    fn speech_detection() {
        let t = Transcript::parse(r#"{"segments":[{"speaker":"A","start_ms":0,"end_ms":1,"text":"   "}]}"#).unwrap();
        assert!(!t.has_speech());
    }
}
