//! Shared by the benchmarks: generated transcripts of a chosen length.
#![allow(dead_code)]

use gensail_host_api::{Segment, Transcript};

/// A deterministic one-hour, two-speaker call of about 10,000 words.
pub fn one_hour_transcript() -> Transcript {
    transcript_of_words(10_000)
}

/// A deterministic two-speaker call of about `target_words` words (150 words a minute).
pub fn transcript_of_words(target_words: usize) -> Transcript {
    const WORDS: &[&str] = &[
        "the",
        "appointment",
        "is",
        "great",
        "and",
        "thank",
        "you",
        "but",
        "my",
        "tooth",
        "pain",
        "was",
        "terrible",
        "we",
        "can",
        "schedule",
        "a",
        "cleaning",
        "for",
        "next",
        "week",
        "insurance",
        "covers",
        "most",
        "of",
        "it",
        "really",
        "happy",
        "with",
        "service",
        "nobody",
        "called",
        "back",
        "frustrating",
        "perfect",
        "wonderful",
        "problem",
        "fixed",
        "okay",
        "sure",
    ];
    let mut seed: u64 = 42;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut segments = Vec::new();
    let (mut words, mut clock) = (0, 0u64);
    while words < target_words {
        let n = 8 + next() % 25;
        let text: Vec<&str> = (0..n).map(|_| WORDS[next() % WORDS.len()]).collect();
        let length = n as u64 * 360;
        segments.push(Segment {
            speaker: if segments.len() % 2 == 0 {
                "Agent".into()
            } else {
                "Caller".into()
            },
            start_ms: clock,
            end_ms: clock + length,
            text: text.join(" ") + ".",
            confidence: Some(0.9),
            channel: None,
        });
        clock += length + 200;
        words += n;
    }
    Transcript {
        language: Some("en-US".into()),
        duration_ms: clock,
        segments,
    }
}

/// Call `i` of a generated corpus of dental calls, each distinct and 1 to 5
/// minutes long: one of the labelled calls (`plugins/fixtures/dental_outcome_labels.json`)
/// with small talk before its ending, the caller's name and the date varying.
pub fn corpus_call(i: usize) -> Transcript {
    static CALLS: std::sync::OnceLock<Vec<Transcript>> = std::sync::OnceLock::new();
    let calls = CALLS.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plugins/fixtures/dental_outcome_labels.json"
        );
        let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        file["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Transcript::parse(c["transcript"].as_str().unwrap()).unwrap())
            .collect()
    });
    const SMALL_TALK: &[&str] = &[
        "Can I have your date of birth to pull up your chart?",
        "Sure, one moment while I find my card.",
        "The weather has been lovely this week, hasn't it?",
        "I'm sorry, could you spell your last name for me?",
        "Let me just check the doctor's calendar on my screen.",
        "We also have a new parking lot behind the building.",
        "Is the phone number we have on file still the best one to reach you?",
        "Yes, that's still my cell number.",
    ];
    let base = &calls[i % calls.len()];
    let minutes = 1 + (i * 7919) % 5;
    let target_words = minutes * 150;
    let mut segments: Vec<Segment> = Vec::new();
    let (first, rest) = base.segments.split_at(1.min(base.segments.len()));
    let speakers: Vec<String> = base.segments.iter().map(|s| s.speaker.clone()).take(2).collect();
    let mut push = |speaker: &str, text: String| {
        let start = segments.last().map_or(0, |s: &Segment| s.end_ms + 400);
        let words = text.split_whitespace().count() as u64;
        segments.push(Segment {
            speaker: speaker.to_owned(),
            start_ms: start,
            end_ms: start + words * 400,
            text,
            confidence: None,
            channel: None,
        });
    };
    for s in first {
        push(&s.speaker, format!("{} Call reference {i}.", s.text));
    }
    let mut words = 0;
    let mut k = i;
    while words
        + base
            .segments
            .iter()
            .map(|s| s.text.split_whitespace().count())
            .sum::<usize>()
        < target_words
    {
        let line = SMALL_TALK[k % SMALL_TALK.len()];
        words += line.split_whitespace().count();
        push(&speakers[k % speakers.len()], line.to_owned());
        k += 3;
    }
    for s in rest {
        push(&s.speaker, s.text.clone());
    }
    Transcript {
        language: None,
        duration_ms: 0,
        segments,
    }
}
