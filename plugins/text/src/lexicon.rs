//! Sentiment word lists with weights (a small hand-made lexicon tuned for
//! service calls: appointments, support, billing).

/// Words that signal a positive mood, with their weight.
pub const POSITIVE: &[(&str, f64)] = &[
    ("thank", 1.0),
    ("thanks", 1.0),
    ("great", 1.5),
    ("good", 1.0),
    ("wonderful", 2.0),
    ("excellent", 2.0),
    ("perfect", 2.0),
    ("happy", 1.5),
    ("glad", 1.5),
    ("love", 2.0),
    ("awesome", 2.0),
    ("helpful", 1.5),
    ("appreciate", 1.5),
    ("pleased", 1.5),
    ("fantastic", 2.0),
    ("welcome", 0.5),
    ("works", 0.5),
    ("easy", 1.0),
    ("fixed", 1.0),
    ("resolved", 1.5),
    ("nice", 1.0),
    ("amazing", 2.0),
    ("interesting", 0.5),
    ("sure", 0.3),
    ("fair", 0.5),
];

/// Words that signal a negative mood, with their weight.
pub const NEGATIVE: &[(&str, f64)] = &[
    ("frustrating", 2.0),
    ("frustrated", 2.0),
    ("terrible", 2.5),
    ("awful", 2.5),
    ("ridiculous", 2.5),
    ("angry", 2.0),
    ("upset", 2.0),
    ("bad", 1.5),
    ("worst", 3.0),
    ("hate", 2.5),
    ("problem", 1.0),
    ("issue", 0.8),
    ("broken", 1.5),
    ("dropping", 1.0),
    ("lost", 1.0),
    ("cancel", 1.0),
    ("cancelling", 1.5),
    ("complaint", 2.0),
    ("disappointed", 2.0),
    ("unacceptable", 3.0),
    ("sorry", 0.5),
    ("pain", 1.0),
    ("hurting", 1.0),
    ("expensive", 1.0),
    ("confusion", 1.0),
    ("excuses", 1.5),
    ("never", 0.5),
    ("nobody", 1.0),
    ("embarrassing", 1.5),
    ("wrong", 1.0),
];

/// The weight of a word: positive, negative, or `None` when it carries no sentiment.
pub fn weight(word: &str) -> Option<f64> {
    POSITIVE
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, v)| *v)
        .or_else(|| NEGATIVE.iter().find(|(w, _)| *w == word).map(|(_, v)| -*v))
}
