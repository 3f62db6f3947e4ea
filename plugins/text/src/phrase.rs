//! Whole-word phrase search and context snippets.

use crate::tokens::{Token, tokens};

/// Byte ranges where `phrase` occurs in `text` as whole words, case-insensitively.
pub fn find_phrase(text: &str, phrase: &str) -> Vec<(usize, usize)> {
    let needle: Vec<String> = tokens(phrase).into_iter().map(|t| t.norm).collect();
    if needle.is_empty() {
        return Vec::new();
    }
    let hay: Vec<Token> = tokens(text);
    let mut found = Vec::new();
    for w in hay.windows(needle.len()) {
        if w.iter().zip(&needle).all(|(t, n)| &t.norm == n) {
            found.push((w[0].start, w[needle.len() - 1].end));
        }
    }
    found
}

/// Whether any of the phrases occurs in the text.
pub fn mentions_any(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| !find_phrase(text, p).is_empty())
}

/// The text around a byte range, about `radius` bytes either side, cut at word
/// boundaries and marked with `…` where it was cut.
pub fn snippet(text: &str, start: usize, end: usize, radius: usize) -> String {
    let mut from = start.saturating_sub(radius);
    while from > 0 && !text.is_char_boundary(from) {
        from -= 1;
    }
    if from > 0 {
        from = text[from..start].find(' ').map_or(from, |p| from + p + 1);
    }
    let mut to = (end + radius).min(text.len());
    while to < text.len() && !text.is_char_boundary(to) {
        to += 1;
    }
    if to < text.len() {
        to = text[end..to].rfind(' ').map_or(to, |p| end + p);
    }
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.push_str(text[from..to].trim());
    if to < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        assert_eq!(find_phrase("We use Gong and Gongs", "gong").len(), 1);
        assert_eq!(find_phrase("switching to Zoom Info soon", "zoom info"), vec![(13, 22)]);
    }

    #[test]
    fn snippet_cuts_at_words() {
        let text = "one two three four five six seven eight nine ten";
        let (s, e) = find_phrase(text, "five")[0];
        assert_eq!(snippet(text, s, e, 10), "…four five six…");
    }
}
