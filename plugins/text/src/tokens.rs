//! Words with their byte positions in the original text.

/// One word: its normalised form (lowercase, letters, digits and inner
/// apostrophes) and where it sits in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Lowercase form used for matching.
    pub norm: String,
    /// Byte offset of the word's start in the original text.
    pub start: usize,
    /// Byte offset just past the word's end.
    pub end: usize,
    /// Whether a clause boundary (`.`, `!`, `?`, `;`, `,`) directly follows the word.
    pub ends_clause: bool,
}

/// Splits text into tokens. Punctuation separates words; an apostrophe or a
/// hyphen inside a word is kept ("don't", "follow-up"); `@` and `.` inside a
/// word are kept too, so e-mail addresses stay one token.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < bytes.len() {
        let (start, c) = bytes[i];
        if !c.is_alphanumeric() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < bytes.len() {
            let ch = bytes[j].1;
            let joins = matches!(ch, '\'' | '\u{2019}' | '-' | '@' | '.' | '_')
                && bytes.get(j + 1).is_some_and(|(_, n)| n.is_alphanumeric());
            if ch.is_alphanumeric() || joins {
                j += 1;
            } else {
                break;
            }
        }
        let end = bytes.get(j).map_or(text.len(), |(p, _)| *p);
        let ends_clause = bytes.get(j).is_some_and(|(_, n)| matches!(n, '.' | '!' | '?' | ';' | ','));
        out.push(Token {
            norm: text[start..end].to_lowercase().replace('\u{2019}', "'"),
            start,
            end,
            ends_clause,
        });
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_contractions_and_emails() {
        let t: Vec<String> = tokens("I don't know, email maria.g@example.com!").into_iter().map(|t| t.norm).collect();
        assert_eq!(t, ["i", "don't", "know", "email", "maria.g@example.com"]);
    }

    #[test]
    fn marks_clause_ends() {
        let t = tokens("Fine. But no");
        assert!(t[0].ends_clause);
        assert!(!t[1].ends_clause);
    }
}
