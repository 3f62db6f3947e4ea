//! Small extractors: names, phones, e-mails, dates, times.

use gensail_text::tokens::{Token, tokens};

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// Capitalised words that start a reply but are not names.
const NOT_NAMES: &[&str] = &[
    "sure", "yes", "yeah", "hi", "hello", "it's", "its", "that's", "i", "i'm", "my", "okay", "ok", "um", "uh", "well",
    "this", "thank", "thanks", "oh", "no", "so", "the", "and", "date", "name", "dr", "good", "hey",
];

fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
        && word.chars().skip(1).all(|c| c.is_lowercase() || c == '\'' || c == '-')
}

/// A person's name right after `cue` ("my name is", "this is", "it's"), or at
/// the start of `text` when `cue` is empty: up to three capitalised words.
pub fn name_after(text: &str, cue: &str) -> Option<String> {
    let rest = if cue.is_empty() {
        text
    } else {
        let lower = text.to_lowercase();
        let at = lower.find(cue)?;
        &text[at + cue.len()..]
    };
    let mut words = Vec::new();
    for tok in tokens(rest) {
        let original = &rest[tok.start..tok.end];
        if words.is_empty() && NOT_NAMES.contains(&tok.norm.as_str()) {
            if cue.is_empty() {
                continue;
            }
            return None;
        }
        if !is_capitalised(original) || NOT_NAMES.contains(&tok.norm.as_str()) {
            break;
        }
        words.push(original.to_owned());
        if words.len() == 3 || tok.ends_clause {
            break;
        }
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// Words spelled letter by letter ("G-O-N-Z-A-L-E-Z"), as a capitalised word.
pub fn spelled_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| {
            let letters: Vec<&str> = w.split('-').collect();
            letters.len() >= 3
                && letters
                    .iter()
                    .all(|l| l.len() == 1 && l.chars().all(|c| c.is_ascii_uppercase()))
        })
        .map(|w| {
            let joined: String = w.split('-').collect();
            // The first letter stays upper case, the rest are lowered.
            let mut chars = joined.chars();
            chars
                .next()
                .into_iter()
                .chain(chars.flat_map(char::to_lowercase))
                .collect()
        })
        .collect()
}

/// A North American phone number (10 digits, or 11 starting with 1), formatted `555-234-8812`.
pub fn phone(text: &str) -> Option<String> {
    let mut digits = String::new();
    let flush = |digits: &mut String| -> Option<String> {
        let d = std::mem::take(digits);
        let d = if d.len() == 11 && d.starts_with('1') {
            d[1..].to_owned()
        } else {
            d
        };
        (d.len() == 10).then(|| format!("{}-{}-{}", &d[..3], &d[3..6], &d[6..]))
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            digits.push(*c);
        } else if is_separator(*c)
            && !digits.is_empty()
            && chars[i..]
                .iter()
                .find(|n| !is_separator(**n))
                .is_some_and(char::is_ascii_digit)
        {
            // "(555) 876-1234": separators between digit groups belong to the number.
            continue;
        } else if let Some(p) = flush(&mut digits) {
            return Some(p);
        }
    }
    flush(&mut digits)
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | ' ' | '(' | ')')
}

/// The first e-mail address.
pub fn email(text: &str) -> Option<String> {
    tokens(text).into_iter().map(|t| t.norm).find(|w| {
        w.split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.') && !host.ends_with('.'))
    })
}

fn number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn iso(year: u32, month: u32, day: u32) -> Option<String> {
    let year = if year < 100 {
        if year > 30 { 1900 + year } else { 2000 + year }
    } else {
        year
    };
    ((1..=12).contains(&month) && (1..=31).contains(&day) && (1900..=2100).contains(&year))
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// The first full date (with a year) in the text, as `YYYY-MM-DD`. Reads
/// "March 14, 1986", "July 2nd 1975", "14 March 1986" and "11/23/1968".
pub fn date(text: &str) -> Option<String> {
    let toks: Vec<Token> = tokens(text);
    let between = |a: &Token, b: &Token| &text[a.end..b.start];
    for i in 0..toks.len() {
        let w = |k: usize| toks.get(i + k).map(|t| t.norm.as_str());
        let month = |k: usize| {
            w(k).and_then(|m| MONTHS.iter().position(|x| *x == m))
                .map(|p| p as u32 + 1)
        };
        if let (Some(m), Some(d), Some(y)) = (month(0), w(1).and_then(number), w(2).and_then(number))
            && y >= 1000
        {
            return iso(y, m, d);
        }
        if let (Some(d), Some(m), Some(y)) = (w(0).and_then(number), month(1), w(2).and_then(number))
            && y >= 1000
        {
            return iso(y, m, d);
        }
        if let (Some(a), Some(b), Some(c)) = (w(0).and_then(number), w(1).and_then(number), w(2).and_then(number)) {
            let seps = [between(&toks[i], &toks[i + 1]), between(&toks[i + 1], &toks[i + 2])];
            if seps.iter().all(|s| *s == "/" || *s == "-") {
                return iso(c, a, b);
            }
        }
    }
    None
}

/// The last clock time in the text, as `10:30 AM`: "10:30 AM", "2 PM", "3:15pm", "at 11".
pub fn time(text: &str) -> Option<String> {
    let toks = tokens(text);
    let mut found = None;
    for (i, t) in toks.iter().enumerate() {
        let Some(hour) = number(&t.norm).filter(|h| (1..=12).contains(h)) else {
            continue;
        };
        let next = toks.get(i + 1).map(|t| t.norm.as_str());
        let colon = text[t.end..].starts_with(':');
        let (minutes, after) = if colon {
            match next.and_then(number).filter(|m| *m < 60) {
                Some(m) => (m, toks.get(i + 2).map(|t| t.norm.as_str())),
                None => continue,
            }
        } else {
            (0, next)
        };
        let suffix = t.norm.trim_start_matches(|c: char| c.is_ascii_digit());
        let meridiem = match (suffix, after) {
            ("am" | "pm", _) => suffix.to_uppercase(),
            (_, Some("am" | "a.m")) => "AM".into(),
            (_, Some("pm" | "p.m")) => "PM".into(),
            _ if colon => {
                if (7..12).contains(&hour) {
                    "AM".into()
                } else {
                    "PM".into()
                }
            }
            _ => {
                // A bare number is a time only after "at" ("at 11").
                if i > 0 && toks[i - 1].norm == "at" {
                    if (7..12).contains(&hour) {
                        "AM".into()
                    } else {
                        "PM".into()
                    }
                } else {
                    continue;
                }
            }
        };
        found = Some(format!("{hour}:{minutes:02} {meridiem}"));
    }
    found
}

/// The day an appointment is for, as said: "next Thursday", "Friday the 20th", "today", "tomorrow".
pub fn day(text: &str) -> Option<String> {
    let toks = tokens(text);
    let mut found = None;
    for (i, t) in toks.iter().enumerate() {
        let w = t.norm.as_str();
        if WEEKDAYS.contains(&w) {
            let mut phrase = text[t.start..t.end].to_owned();
            if i > 0 && matches!(toks[i - 1].norm.as_str(), "next" | "this" | "following") {
                phrase = format!("{} {phrase}", toks[i - 1].norm);
            }
            if toks.get(i + 1).is_some_and(|n| n.norm == "the")
                && toks.get(i + 2).is_some_and(|n| number(&n.norm).is_some())
            {
                phrase = format!("{phrase} the {}", toks[i + 2].norm);
            }
            found = Some(phrase);
        } else if matches!(w, "today" | "tomorrow" | "tonight") {
            found = Some(w.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            name_after("Sure, it's Maria Gonzalez. That's G-O-N", "").as_deref(),
            Some("Maria Gonzalez")
        );
        assert_eq!(
            name_after("Hi James, this is Robert Chen. I have", "this is").as_deref(),
            Some("Robert Chen")
        );
        assert_eq!(
            name_after("Aisha Rahman, date of birth June 30th", "").as_deref(),
            Some("Aisha Rahman")
        );
        assert_eq!(name_after("this is the office", "this is"), None);
    }

    #[test]
    fn spelled() {
        assert_eq!(spelled_words("That's G-O-N-Z-A-L-E-Z."), ["Gonzalez"]);
    }

    #[test]
    fn phones() {
        assert_eq!(phone("It's 555-234-8812.").as_deref(), Some("555-234-8812"));
        assert_eq!(phone("call (555) 876 1234 please").as_deref(), Some("555-876-1234"));
        assert_eq!(phone("555.876.1234.").as_deref(), Some("555-876-1234"));
        assert_eq!(phone("extension 4417"), None);
    }

    #[test]
    fn dates() {
        assert_eq!(date("March 14, 1986.").as_deref(), Some("1986-03-14"));
        assert_eq!(date("July 2nd, 1975.").as_deref(), Some("1975-07-02"));
        assert_eq!(date("11/23/1968.").as_deref(), Some("1968-11-23"));
        assert_eq!(date("born 30 June 1992").as_deref(), Some("1992-06-30"));
        assert_eq!(date("on Friday the 20th"), None);
    }

    #[test]
    fn times_and_days() {
        assert_eq!(time("Tuesday at 10:30 AM with Dr. Patel").as_deref(), Some("10:30 AM"));
        assert_eq!(time("today at 3:45 PM.").as_deref(), Some("3:45 PM"));
        assert_eq!(time("next Thursday at 11 AM").as_deref(), Some("11:00 AM"));
        assert_eq!(time("Thursday at 2 PM").as_deref(), Some("2:00 PM"));
        assert_eq!(time("95 dollars"), None);
        assert_eq!(day("next Thursday at 11 AM").as_deref(), Some("next Thursday"));
        assert_eq!(
            day("for Friday the 20th at 1:30 PM").as_deref(),
            Some("Friday the 20th")
        );
    }
}
