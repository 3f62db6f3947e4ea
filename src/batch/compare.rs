//! When two outputs agree, where they differ, and what an experiment's calls
//! add up to. The one home of "equal outputs": the golden gate and the
//! lifecycle's compare use [`differences`] too.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::store::ItemRow;

/// Most differing paths listed per output pair; the count is always complete.
pub const MAX_LISTED_DIFFERENCES: usize = 50;

/// Distinct values per axis of a confusion matrix; the rest share one row or column.
const MAX_LABELS: usize = 50;

/// Label of the values past [`MAX_LABELS`].
const OTHER_VALUES: &str = "(other values)";

/// Longest label kept whole.
const MAX_LABEL_CHARS: usize = 64;

/// Two JSON values are equal as canonical JSON: objects by their keys,
/// arrays in order, numbers equal within 1e-9 relative.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| equal(v, w)),
        _ => a == b,
    }
}

/// How a differing path is written.
#[derive(Debug, Clone, Copy)]
pub enum PathStyle {
    /// `$.mentions[2].name` (the lifecycle's compare).
    JsonPath,
    /// `/mentions/2/name` (RFC 6901, experiments).
    Pointer,
}

impl PathStyle {
    fn root(self) -> &'static str {
        match self {
            Self::JsonPath => "$",
            Self::Pointer => "",
        }
    }

    fn key(self, parent: &str, key: &str) -> String {
        match self {
            Self::JsonPath => format!("{parent}.{key}"),
            Self::Pointer => format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1")),
        }
    }

    fn index(self, parent: &str, i: usize) -> String {
        match self {
            Self::JsonPath => format!("{parent}[{i}]"),
            Self::Pointer => format!("{parent}/{i}"),
        }
    }
}

/// The paths where `a` and `b` differ (a changed leaf, a key only one side
/// has, an array element only one side has), at most
/// [`MAX_LISTED_DIFFERENCES`] of them, and how many there are.
pub fn differences(a: &Value, b: &Value, style: PathStyle) -> (Vec<String>, usize) {
    let (mut out, mut count) = (Vec::new(), 0);
    walk(style.root(), a, b, style, &mut out, &mut count);
    (out, count)
}

fn walk(path: &str, a: &Value, b: &Value, style: PathStyle, out: &mut Vec<String>, count: &mut usize) {
    fn record(p: String, out: &mut Vec<String>, count: &mut usize) {
        *count += 1;
        if out.len() < MAX_LISTED_DIFFERENCES {
            out.push(p);
        }
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))).collect();
            keys.sort();
            for key in keys {
                let child = style.key(path, key);
                match (x.get(key), y.get(key)) {
                    (Some(l), Some(r)) => walk(&child, l, r, style, out, count),
                    _ => record(child, out, count),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let child = style.index(path, i);
                match (x.get(i), y.get(i)) {
                    (Some(l), Some(r)) => walk(&child, l, r, style, out, count),
                    _ => record(child, out, count),
                }
            }
        }
        _ if !equal(a, b) => record(path.to_owned(), out, count),
        _ => {}
    }
}

/// The compared pointers whose values differ between two outputs (a value
/// missing on one side is `null` there); with no pointers, every differing
/// path of the whole output.
pub fn differing_paths(compare: &[String], baseline: &Value, candidate: &Value) -> Vec<String> {
    if compare.is_empty() {
        return differences(baseline, candidate, PathStyle::Pointer).0;
    }
    compare
        .iter()
        .filter(|p| !equal(at(baseline, p), at(candidate, p)))
        .cloned()
        .collect()
}

fn at<'v>(output: &'v Value, pointer: &str) -> &'v Value {
    output.pointer(pointer).unwrap_or(&Value::Null)
}

/// What an experiment's done calls add up to.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Calls where both sides completed.
    pub compared: i64,
    /// Compared calls where every compared path agrees.
    pub agree: i64,
    /// `agree / compared`; null before any call is compared.
    pub agreement_rate: Option<f64>,
    /// Calls where the baseline failed.
    pub baseline_failed: i64,
    /// Calls where the candidate failed.
    pub candidate_failed: i64,
    /// Per compared pointer (`""` is the whole output).
    pub paths: BTreeMap<String, PathSummary>,
    /// What each side cost.
    pub cost: Cost,
}

/// One compared pointer over the compared calls.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PathSummary {
    /// Calls where the values differ.
    pub differ: i64,
    /// For string, boolean and null values: baseline value → candidate value → calls.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub confusion_matrix: BTreeMap<String, BTreeMap<String, i64>>,
    /// For numbers: mean of candidate − baseline over calls where both are numbers.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_difference: Option<f64>,
    /// Calls where both values are numbers.
    #[serde(skip, default)]
    numeric: i64,
    #[serde(skip, default)]
    numeric_sum: f64,
}

/// Both sides' cost, over every call done (memoized runs count at their stored cost).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Cost {
    /// Baseline mean fuel per run.
    pub baseline_mean_fuel: Option<f64>,
    /// Candidate mean fuel per run.
    pub candidate_mean_fuel: Option<f64>,
    /// Candidate / baseline mean fuel.
    pub fuel_ratio: Option<f64>,
    /// Baseline mean wall time per run, ms.
    pub baseline_mean_ms: Option<f64>,
    /// Candidate mean wall time per run, ms.
    pub candidate_mean_ms: Option<f64>,
    /// Candidate / baseline mean time.
    pub time_ratio: Option<f64>,
    #[serde(skip, default)]
    sums: [f64; 4],
    #[serde(skip, default)]
    runs: i64,
}

impl Summary {
    /// An empty summary over these pointers (`""` when none: the whole output).
    pub fn new(compare: &[String]) -> Self {
        let pointers: Vec<String> = if compare.is_empty() {
            vec![String::new()]
        } else {
            compare.to_vec()
        };
        Self {
            paths: pointers.into_iter().map(|p| (p, PathSummary::default())).collect(),
            ..Self::default()
        }
    }

    /// Adds one done call.
    pub fn add(&mut self, item: &ItemRow) {
        let (b, c) = (&item.baseline, &item.candidate);
        self.baseline_failed += i64::from(!b.completed());
        self.candidate_failed += i64::from(!c.completed());
        self.cost.add(
            b.fuel_consumed as f64,
            b.duration_ms,
            c.fuel_consumed as f64,
            c.duration_ms,
        );
        let (Some(bo), Some(co)) = (
            b.output.as_ref().filter(|_| b.completed()),
            c.output.as_ref().filter(|_| c.completed()),
        ) else {
            return;
        };
        self.compared += 1;
        self.agree += i64::from(item.agrees());
        for (pointer, path) in &mut self.paths {
            path.add(at(bo, pointer), at(co, pointer));
        }
    }

    /// Fills in the rates and means.
    pub fn finish(mut self) -> Self {
        self.agreement_rate = (self.compared > 0).then(|| round(self.agree as f64 / self.compared as f64));
        for path in self.paths.values_mut() {
            path.mean_difference = (path.numeric > 0).then(|| path.numeric_sum / path.numeric as f64);
        }
        self.cost.finish();
        self
    }
}

impl PathSummary {
    fn add(&mut self, baseline: &Value, candidate: &Value) {
        self.differ += i64::from(!equal(baseline, candidate));
        if let (Some(x), Some(y)) = (baseline.as_f64(), candidate.as_f64()) {
            self.numeric += 1;
            self.numeric_sum += y - x;
        } else if let (Some(x), Some(y)) = (label(baseline), label(candidate)) {
            let row_label = self.row_label(x);
            let row = self.confusion_matrix.entry(row_label).or_default();
            let column = if row.contains_key(&y) || row.len() < MAX_LABELS {
                y
            } else {
                OTHER_VALUES.to_owned()
            };
            *row.entry(column).or_default() += 1;
        }
    }

    fn row_label(&self, label: String) -> String {
        if self.confusion_matrix.contains_key(&label) || self.confusion_matrix.len() < MAX_LABELS {
            label
        } else {
            OTHER_VALUES.to_owned()
        }
    }
}

/// A value's name in a confusion matrix: strings (cut to 64 characters),
/// booleans and null; numbers, objects and arrays have none.
fn label(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.chars().take(MAX_LABEL_CHARS).collect()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_owned()),
        _ => None,
    }
}

impl Cost {
    fn add(&mut self, baseline_fuel: f64, baseline_ms: f64, candidate_fuel: f64, candidate_ms: f64) {
        for (sum, v) in self
            .sums
            .iter_mut()
            .zip([baseline_fuel, baseline_ms, candidate_fuel, candidate_ms])
        {
            *sum += v;
        }
        self.runs += 1;
    }

    fn finish(&mut self) {
        if self.runs == 0 {
            return;
        }
        let mean = |i: usize| self.sums[i] / self.runs as f64;
        self.baseline_mean_fuel = Some(mean(0));
        self.baseline_mean_ms = Some(mean(1));
        self.candidate_mean_fuel = Some(mean(2));
        self.candidate_mean_ms = Some(mean(3));
        self.fuel_ratio = ratio(mean(2), mean(0));
        self.time_ratio = ratio(mean(3), mean(1));
    }
}

/// `numerator / denominator` to three decimals; none when the denominator is 0.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| round(numerator / denominator))
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_have_no_differences() {
        let v = json!({"a": [1, {"b": 2}]});
        assert_eq!(differences(&v, &v.clone(), PathStyle::JsonPath), (vec![], 0));
    }

    #[test]
    fn differences_name_changed_added_and_removed_paths() {
        let (out, count) = differences(
            &json!({"score": 0.5, "tags": ["x"], "old": 1}),
            &json!({"score": 0.7, "tags": ["x", "y"], "new": true}),
            PathStyle::JsonPath,
        );
        assert_eq!(out, vec!["$.new", "$.old", "$.score", "$.tags[1]"]);
        assert_eq!(count, 4);
        let (pointers, _) = differences(
            &json!({"a/b": {"c": [1, 2]}}),
            &json!({"a/b": {"c": [1, 3]}}),
            PathStyle::Pointer,
        );
        assert_eq!(pointers, vec!["/a~1b/c/1"]);
    }

    #[test]
    fn a_type_change_is_one_difference() {
        let (out, _) = differences(&json!({"a": {"b": 1}}), &json!({"a": [1]}), PathStyle::JsonPath);
        assert_eq!(out, vec!["$.a"]);
    }

    #[test]
    fn numbers_agree_within_a_billionth_and_objects_ignore_key_order() {
        assert!(equal(&json!(0.1 + 0.2), &json!(0.3)));
        assert!(equal(&json!(1), &json!(1.0)));
        assert!(!equal(&json!(1.0), &json!(1.000_001)));
        assert!(equal(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
        assert!(!equal(&json!(null), &json!(0)));
    }

    #[test]
    fn compared_pointers_treat_a_missing_value_as_null() {
        let b = json!({"outcome": "booked", "score": 3});
        let c = json!({"outcome": "booked"});
        assert_eq!(
            differing_paths(&["/outcome".into(), "/score".into()], &b, &c),
            vec!["/score"]
        );
        assert!(differing_paths(&["/missing".into()], &b, &c).is_empty());
    }

    #[test]
    fn confusion_matrices_are_bounded() {
        let mut path = PathSummary::default();
        for i in 0..200 {
            path.add(&json!(format!("b{i}")), &json!(format!("c{i}")));
        }
        assert_eq!(path.confusion_matrix.len(), MAX_LABELS + 1);
        let other = &path.confusion_matrix[OTHER_VALUES];
        assert_eq!(other.values().sum::<i64>(), 150);
        assert!(other.len() <= MAX_LABELS + 1);
    }
}
