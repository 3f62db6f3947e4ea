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
///
/// One pass over the text and one allocation per token (its lowercase form):
/// algorithms call this on every segment, so it is the hot path of most plugins.
pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::with_capacity(text.len() / 5);
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if !c.is_alphanumeric() {
            continue;
        }
        let mut norm = String::with_capacity(12);
        push_lower(&mut norm, c);
        let mut end = start + c.len_utf8();
        while let Some(&(at, ch)) = chars.peek() {
            if ch.is_alphanumeric() {
                push_lower(&mut norm, ch);
            } else if matches!(ch, '\'' | '\u{2019}' | '-' | '@' | '.' | '_')
                && text[at + ch.len_utf8()..].starts_with(char::is_alphanumeric)
            {
                norm.push(if ch == '\u{2019}' { '\'' } else { ch });
            } else {
                break;
            }
            end = at + ch.len_utf8();
            chars.next();
        }
        let ends_clause = text[end..].starts_with(['.', '!', '?', ';', ',']);
        out.push(Token {
            norm,
            start,
            end,
            ends_clause,
        });
    }
    out
}

fn push_lower(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        out.extend(c.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_contractions_and_emails() {
        let t: Vec<String> = tokens("I don't know, email maria.g@example.com!")
            .into_iter()
            .map(|t| t.norm)
            .collect();
        assert_eq!(t, ["i", "don't", "know", "email", "maria.g@example.com"]);
    }

    #[test]
    fn positions_and_curly_apostrophes() {
        let text = "Ça va? Don\u{2019}t—worry";
        let t = tokens(text);
        let norms: Vec<&str> = t.iter().map(|t| t.norm.as_str()).collect();
        assert_eq!(norms, ["ça", "va", "don't", "worry"]);
        assert_eq!(&text[t[2].start..t[2].end], "Don\u{2019}t");
        assert!(t[1].ends_clause);
    }

    #[test]
    fn marks_clause_ends() {
        let t = tokens("Fine. But no");
        assert!(t[0].ends_clause);
        assert!(!t[1].ends_clause);
    }
}
