//! Scoring a model's answer against the gold answer, one metric per task.
//!
//! Each metric is deliberately simple enough to state in one sentence, so a reader can
//! judge what a score means and where it is too kind or too harsh. Exact match is
//! shown for contrast: it is what people reach for first, and it punishes answers that are
//! right in different words.

use serde_json::Value;

use super::synth::{PERSONA_CLOSING, PERSONA_OPENING, Task};

/// Equal after trimming and collapsing runs of whitespace to one space. Case and
/// punctuation count: "Paris." is not "paris".
pub fn exact_match(pred: &str, gold: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(pred) == norm(gold)
}

/// The fraction of `gold`'s top-level keys whose value in `pred` is equal, both parsed as
/// JSON. Strict on purpose, because a program will consume the output: `pred` must be one
/// JSON value and nothing else (surrounding prose or a code fence score 0), strings must
/// match exactly (`"oslo"` is not `"Oslo"`), and `3` is not `"3"`. Numbers compare by
/// value (`3` equals `3.0`). Extra keys in `pred` cost nothing. If `gold` is not an
/// object, the score is 1 when the whole values are equal, else 0.
pub fn json_field_accuracy(pred: &str, gold: &str) -> f64 {
    let (Ok(pred), Ok(gold)) = (serde_json::from_str::<Value>(pred.trim()), serde_json::from_str::<Value>(gold)) else {
        return 0.0;
    };
    let Value::Object(gold) = gold else {
        return if json_equal(&pred, &gold) { 1.0 } else { 0.0 };
    };
    if gold.is_empty() {
        return if pred == Value::Object(gold) { 1.0 } else { 0.0 };
    }
    let right = gold.iter().filter(|(k, v)| pred.get(k.as_str()).is_some_and(|p| json_equal(p, v))).count();
    right as f64 / gold.len() as f64
}

fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The captain's style: the trimmed answer starts with "Aye!" and ends with "Fair winds.".
/// It checks the markers only, not the voice in between.
pub fn persona_ok(pred: &str) -> bool {
    let pred = pred.trim();
    pred.starts_with(PERSONA_OPENING) && pred.ends_with(PERSONA_CLOSING)
}

/// The words of `gold` that carry its facts:
/// * every token with a digit in it (`3`, `2.4`, `AES-256`, `0800`);
/// * every token that starts with a capital letter, except a sentence's first word (which
///   is capitalised for grammar, not meaning);
/// * a leading "Yes" or "No", the whole answer to a yes/no question.
///
/// Tokens are split on whitespace with surrounding punctuation trimmed. Lowercase words are
/// not checked, so "3 years" and "3 months" look alike: the synthetic answers put their
/// facts in numbers and names, and the Support data has a test that no fact's key terms
/// are all found in another fact's answer.
pub fn key_terms(gold: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut sentence_start = true;
    for (i, raw) in gold.split_whitespace().enumerate() {
        let token = trim_token(raw);
        let yes_no = i == 0 && (token == "Yes" || token == "No");
        let digit = token.chars().any(|c| c.is_ascii_digit());
        let capital = !sentence_start && token.chars().next().is_some_and(char::is_uppercase);
        if !token.is_empty() && (yes_no || digit || capital) {
            terms.push(token.to_string());
        }
        sentence_start = raw.ends_with(['.', '!', '?']);
    }
    terms
}

fn trim_token(raw: &str) -> &str {
    raw.trim_matches(|c: char| !c.is_alphanumeric())
}

/// 1 when every key term of `gold` (see [`key_terms`]) appears in `pred` as a whole word,
/// ignoring case; when `gold` has no key terms, falls back to [`exact_match`].
pub fn facts_match(pred: &str, gold: &str) -> bool {
    let terms = key_terms(gold);
    if terms.is_empty() {
        return exact_match(pred, gold);
    }
    let words: Vec<String> = pred.split_whitespace().map(|w| trim_token(w).to_lowercase()).collect();
    terms.iter().all(|t| words.contains(&t.to_lowercase()))
}

/// The score eval reports for one example, in [0, 1]:
/// * Extract: [`json_field_accuracy`], so one wrong field out of four scores 0.75.
/// * Support: 1 if [`facts_match`] (every number and name of the gold answer is in the
///   prediction), else 0. Wording is free; facts are not.
/// * Persona: 1 if [`persona_ok`] and [`facts_match`], else 0. The style must not come at
///   the cost of the answer.
pub fn task_metric(task: Task, pred: &str, gold: &str) -> f64 {
    let score = |ok: bool| if ok { 1.0 } else { 0.0 };
    match task {
        Task::Extract => json_field_accuracy(pred, gold),
        Task::Support => score(facts_match(pred, gold)),
        Task::Persona => score(persona_ok(pred) && facts_match(pred, gold)),
    }
}
