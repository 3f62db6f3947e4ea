//! Who is who on a call: the business side (agent) and the caller.

use gensail_host_api::Transcript;

/// Speaker labels that name the business side of a call.
const AGENT_LABELS: &[&str] = &[
    "agent",
    "rep",
    "representative",
    "receptionist",
    "staff",
    "front desk",
    "office",
    "support",
    "sales",
];

/// Phrases the business side opens a call with.
const OPENINGS: &[&str] = &[
    "thank you for calling",
    "thanks for calling",
    "how can i help",
    "how may i help",
    "this is",
];

/// The speaker who answers for the business: `explicit` when given, else a
/// speaker whose label says so, else the one who opens with a business
/// greeting, else whoever speaks first.
pub fn agent_speaker(transcript: &Transcript, explicit: Option<&str>) -> Option<String> {
    if let Some(name) = explicit {
        return Some(name.to_owned());
    }
    let speakers = transcript.speakers();
    if let Some(s) = speakers
        .iter()
        .find(|s| AGENT_LABELS.iter().any(|l| s.to_lowercase().contains(l)))
    {
        return Some((*s).to_owned());
    }
    for segment in transcript.segments.iter().take(4) {
        let text = segment.text.to_lowercase();
        if OPENINGS.iter().any(|o| text.contains(o)) {
            return Some(segment.speaker.clone());
        }
    }
    speakers.first().map(|s| (*s).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_agent() {
        let t = Transcript::parse("Customer: hi\nAgent: hello").unwrap();
        assert_eq!(agent_speaker(&t, None).as_deref(), Some("Agent"));
        let t = Transcript::parse("spk_1: hi there\nspk_0: Thank you for calling Bright Smile").unwrap();
        assert_eq!(agent_speaker(&t, None).as_deref(), Some("spk_0"));
        assert_eq!(agent_speaker(&t, Some("spk_1")).as_deref(), Some("spk_1"));
    }
}
