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
