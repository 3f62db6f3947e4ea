//! `competitor_mentions_v1`: finds competitors named on a call.
//!
//! The competitor list comes from config (names with aliases); without one, a
//! default list of call-analytics vendors is used. Matching is whole-word and
//! case-insensitive, so "Gong" does not match "Gongs" and "ZoomInfo Chorus" is
//! one mention of Chorus, not two.

use std::collections::BTreeMap;

use gensail_host_api::{Algorithm, AlgorithmError, Metadata, Transcript, register_algorithm};
use gensail_text::time::{format_ms, offset_ms};
use gensail_text::{find_phrase, snippet};
use serde::{Deserialize, Serialize};

/// A competitor to look for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CompetitorSpec {
    /// Just a name.
    Name(String),
    /// A name with other names people use for it.
    WithAliases {
        /// The canonical name reported.
        name: String,
        /// Other spellings or product names.
        #[serde(default)]
        aliases: Vec<String>,
    },
}

impl CompetitorSpec {
    fn name(&self) -> &str {
        match self {
            Self::Name(n) | Self::WithAliases { name: n, .. } => n,
        }
    }

    /// Name and aliases, longest first so "ZoomInfo Chorus" wins over "Chorus".
    fn terms(&self) -> Vec<String> {
        let mut terms = match self {
            Self::Name(n) => vec![n.clone()],
            Self::WithAliases { name, aliases } => {
                std::iter::once(name.clone()).chain(aliases.iter().cloned()).collect()
            }
        };
        terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
        terms
    }
}

/// Config.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Competitors to look for.
    pub competitors: Vec<CompetitorSpec>,
    /// Bytes of context either side of a mention in the snippet.
    pub snippet_radius: usize,
}

impl Default for Config {
    fn default() -> Self {
        let c = |name: &str, aliases: &[&str]| CompetitorSpec::WithAliases {
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).into()).collect(),
        };
        Self {
            competitors: vec![
                c("Gong", &["Gong.io"]),
                c("Chorus", &["ZoomInfo Chorus", "Chorus.ai"]),
                c("CallRail", &["Call Rail"]),
                c("Invoca", &[]),
                c("Dialpad", &[]),
                c("Observe.AI", &["Observe AI"]),
            ],
            snippet_radius: 60,
        }
    }
}

/// One mention.
#[derive(Debug, Serialize, PartialEq)]
pub struct Mention {
    /// The words as said.
    pub matched: String,
    /// Who said it.
    pub speaker: String,
    /// Milliseconds from the start of the call (estimated within the segment).
    pub at_ms: u64,
    /// `m:ss`.
    pub timestamp: String,
    /// The words around it.
    pub snippet: String,
}

/// Everything about one competitor.
#[derive(Debug, Serialize)]
pub struct CompetitorReport {
    /// The canonical name.
    pub name: String,
    /// How many times it was mentioned.
    pub count: usize,
    /// Mentions per speaker.
    pub by_speaker: BTreeMap<String, usize>,
    /// Each mention in call order.
    pub mentions: Vec<Mention>,
}

/// The output.
#[derive(Debug, Serialize)]
pub struct Output {
    /// Mentions of all competitors.
    pub total_mentions: usize,
    /// Names of the competitors mentioned, most mentioned first.
    pub mentioned: Vec<String>,
    /// Competitors mentioned at least once, most mentioned first.
    pub competitors: Vec<CompetitorReport>,
}

/// Finds the configured competitors (the whole logic, callable natively).
pub fn analyse(transcript: &Transcript, config: &Config) -> Output {
    let mut reports: Vec<CompetitorReport> = Vec::new();
    for spec in &config.competitors {
        let mut mentions = Vec::new();
        for segment in &transcript.segments {
            let mut taken: Vec<(usize, usize)> = Vec::new();
            for term in spec.terms() {
                for (s, e) in find_phrase(&segment.text, &term) {
                    // A shorter alias inside a longer match is the same mention.
                    if taken.iter().any(|(ts, te)| s < *te && e > *ts) {
                        continue;
                    }
                    taken.push((s, e));
                    let at_ms = offset_ms(segment, s);
                    mentions.push(Mention {
                        matched: segment.text[s..e].to_owned(),
                        speaker: segment.speaker.clone(),
                        at_ms,
                        timestamp: format_ms(at_ms),
                        snippet: snippet(&segment.text, s, e, config.snippet_radius),
                    });
                }
            }
        }
        if mentions.is_empty() {
            continue;
        }
        mentions.sort_by_key(|m| m.at_ms);
        let mut by_speaker = BTreeMap::new();
        for m in &mentions {
            *by_speaker.entry(m.speaker.clone()).or_insert(0) += 1;
        }
        reports.push(CompetitorReport {
            name: spec.name().to_owned(),
            count: mentions.len(),
            by_speaker,
            mentions,
        });
    }
    reports.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
    Output {
        total_mentions: reports.iter().map(|r| r.count).sum(),
        mentioned: reports.iter().map(|r| r.name.clone()).collect(),
        competitors: reports,
    }
}

impl Algorithm for CompetitorMentionsV1 {
    type Config = Config;
    type Output = Output;

    fn metadata() -> Metadata {
        Metadata::new(
            "competitor_mentions_v1",
            env!("CARGO_PKG_VERSION"),
            "Competitor names and aliases mentioned on a call: counts, speaker, timestamp and a context snippet.",
        )
        .with_config_schema(serde_json::json!({
            "type": "object",
            "properties": {
                "competitors": {"type": "array", "items": {"oneOf": [
                    {"type": "string"},
                    {"type": "object", "properties": {"name": {"type": "string"}, "aliases": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]}
                ]}},
                "snippet_radius": {"type": "integer", "minimum": 0}
            },
            "additionalProperties": false
        }))
    }

    fn run(transcript: &Transcript, config: Config) -> Result<Output, AlgorithmError> {
        if let Some(blank) = config
            .competitors
            .iter()
            .find(|c| c.terms().iter().any(|t| t.trim().is_empty()))
        {
            return Err(AlgorithmError::InvalidConfig(format!(
                "competitor {:?} has an empty name or alias",
                blank.name()
            )));
        }
        Ok(analyse(transcript, &config))
    }
}

/// The algorithm.
pub struct CompetitorMentionsV1;

register_algorithm!(CompetitorMentionsV1);

#[cfg(test)]
mod tests {
    use super::*;
    use gensail_text::fixtures;

    #[test]
    fn sales_call_default_list() {
        let out = analyse(&fixtures::load("sales_competitors.txt"), &Config::default());
        assert_eq!(out.mentioned, ["Gong", "CallRail", "Chorus"]);
        let gong = &out.competitors[0];
        assert_eq!(gong.count, 3);
        assert_eq!(gong.by_speaker["Prospect"], 2);
        assert_eq!(gong.by_speaker["Rep"], 1);
        assert!(
            gong.mentions[0].snippet.contains("sales team tried Gong"),
            "{}",
            gong.mentions[0].snippet
        );
        let chorus = out.competitors.iter().find(|c| c.name == "Chorus").unwrap();
        assert_eq!(chorus.count, 2);
        assert!(chorus.mentions.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(out.total_mentions, 7);
    }

    #[test]
    fn aliases_from_config_and_longest_match() {
        let config: Config = serde_json::from_str(
            r#"{"competitors": ["Aspen Dental", {"name": "Chorus", "aliases": ["ZoomInfo Chorus", "ZoomInfo"]}]}"#,
        )
        .unwrap();
        let t = Transcript::parse("Caller: We looked at ZoomInfo Chorus and Aspen Dental.\nAgent: ZoomInfo again?")
            .unwrap();
        let out = analyse(&t, &config);
        let chorus = out.competitors.iter().find(|c| c.name == "Chorus").unwrap();
        assert_eq!(chorus.count, 2);
        assert_eq!(chorus.mentions[0].matched, "ZoomInfo Chorus");
        assert_eq!(
            out.competitors.iter().find(|c| c.name == "Aspen Dental").unwrap().count,
            1
        );
    }

    #[test]
    fn no_mentions_in_a_dental_call() {
        let out = analyse(&fixtures::load("dental_booking.txt"), &Config::default());
        assert_eq!(out.total_mentions, 0);
        assert!(out.competitors.is_empty());
    }

    #[test]
    fn bad_config_is_named() {
        let err = gensail_host_api::run_json::<CompetitorMentionsV1>(
            &fixtures::load("dental_booking.txt"),
            r#"{"competitors": 5}"#,
        )
        .unwrap_err();
        assert!(matches!(err, AlgorithmError::InvalidConfig(_)), "{err}");
        let err = gensail_host_api::run_json::<CompetitorMentionsV1>(
            &fixtures::load("dental_booking.txt"),
            r#"{"competitors": [" "]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty name"), "{err}");
    }
}
