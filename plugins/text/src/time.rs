//! Timestamps inside a call.

use gensail_host_api::Segment;

/// `m:ss` (or `h:mm:ss`) for a millisecond offset, as people read call timestamps.
pub fn format_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Estimated time of a byte offset inside a segment's text, assuming an even pace.
pub fn offset_ms(segment: &Segment, byte: usize) -> u64 {
    let len = segment.text.len().max(1) as u64;
    segment.start_ms + segment.duration_ms() * (byte as u64).min(len) / len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_ms(65_000), "1:05");
        assert_eq!(format_ms(3_725_000), "1:02:05");
    }
}
