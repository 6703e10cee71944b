//! Does a program still print what the book quotes? Text must be equal; numbers may move a
//! little (another CPU's SIMD kernels change the last digits of a loss), and numbers that
//! measure the machine (time, speed, memory) may move freely.
//!
//! The rule, line by line:
//! * SHA-256 digests are not compared (a weight that differs in its last bit on another CPU
//!   changes the whole digest; the byte counts beside them still must match);
//! * both outputs have the same number of lines, and each line the same text between its numbers;
//! * on a *measurement line* (it mentions seconds, ms, tokens/s, peak memory, RSS, …) numbers are
//!   not compared (file sizes in MB are: they do not depend on the machine);
//! * on a *rounding line* (it reports a difference or an error between two computations) a
//!   number only has to stay within ten times the quoted one (or below 1e-7 where 0 is quoted):
//!   it measures floating-point rounding, which another CPU's kernels change;
//! * an integer must be equal (counts, sizes, token ids);
//! * a decimal may differ by 0.5 % of its value or two units of its last printed digit,
//!   whichever is larger.

use regex::Regex;
use std::sync::LazyLock;

static DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-f]{64}\b").expect("a valid pattern"));

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?").expect("a valid pattern"));

/// Words that mark a line as a measurement of the machine rather than of the model.
static MEASUREMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(tok(en)?s?/s|tokens_per_second|per_second|wall|\bsecs?\b|seconds|_secs|elapsed|\bms\b|\d+(\.\d+)?\s*(ms|s)\b|rss|peak|memory|took|speed|throughput|\btime\b|_time)",
    )
    .expect("a valid pattern")
});

/// Words that mark a line as a report of rounding: how far apart two computations are.
static ROUNDING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(difference|\berror\b|\|[^|]*−[^|]*\|)").expect("a valid pattern"));

/// The first difference between what the book quotes and what the program printed now.
pub fn first_difference(quoted: &str, printed: &str) -> Option<String> {
    let q: Vec<&str> = quoted.lines().collect();
    let p: Vec<&str> = printed.lines().collect();
    for (i, (a, b)) in q.iter().zip(&p).enumerate() {
        if let Some(why) = line_difference(a, b) {
            return Some(format!("line {}: {why}\n  quoted:  {a}\n  printed: {b}", i + 1));
        }
    }
    (q.len() != p.len()).then(|| format!("the book quotes {} lines, the program printed {}", q.len(), p.len()))
}

fn line_difference(quoted: &str, printed: &str) -> Option<String> {
    let (quoted, printed) = (DIGEST.replace_all(quoted, "<sha256>"), DIGEST.replace_all(printed, "<sha256>"));
    let (qt, qn) = split(&quoted);
    let (pt, pn) = split(&printed);
    if qt != pt || qn.len() != pn.len() {
        return Some("the text differs".into());
    }
    if MEASUREMENT.is_match(&quoted) {
        return None;
    }
    let rounding = ROUNDING.is_match(&quoted);
    qn.iter().zip(&pn).find_map(|(a, b)| if rounding { rounding_difference(a, b) } else { number_difference(a, b) })
}

/// The line without its numbers (each replaced by `#`), and the numbers.
fn split(line: &str) -> (String, Vec<&str>) {
    let text = NUMBER.replace_all(line, "#").into_owned();
    (text, NUMBER.find_iter(line).map(|m| m.as_str()).collect())
}

fn number_difference(quoted: &str, printed: &str) -> Option<String> {
    if quoted == printed {
        return None;
    }
    let decimal = |s: &str| s.contains(['.', 'e', 'E']);
    if !decimal(quoted) {
        return Some(format!("{quoted} became {printed}"));
    }
    let (a, b): (f64, f64) = (quoted.parse().ok()?, printed.parse().ok()?);
    let digits = quoted.split(['e', 'E']).next().and_then(|m| m.split_once('.')).map_or(0, |(_, f)| f.len());
    let exponent: i32 = quoted.split(['e', 'E']).nth(1).and_then(|e| e.parse().ok()).unwrap_or(0);
    let last_digit = 10f64.powi(exponent - digits as i32);
    let allowed = (0.005 * a.abs()).max(2.0 * last_digit);
    ((a - b).abs() > allowed).then(|| format!("{quoted} became {printed} (allowed ±{allowed:.3e})"))
}

fn rounding_difference(quoted: &str, printed: &str) -> Option<String> {
    if !quoted.contains(['.', 'e', 'E']) {
        return number_difference(quoted, printed);
    }
    let (a, b): (f64, f64) = (quoted.parse().ok()?, printed.parse().ok()?);
    let bound = (10.0 * a.abs()).max(1e-7);
    (b.abs() > bound).then(|| format!("{quoted} became {printed} (a rounding error, allowed up to {bound:.1e})"))
}

#[cfg(test)]
mod tests {
    use super::first_difference;

    #[test]
    fn equal_outputs_pass() {
        assert_eq!(first_difference("loss 0.9654\nsteps 10\n", "loss 0.9654\nsteps 10\n"), None);
    }

    #[test]
    fn a_changed_word_or_count_fails() {
        assert!(first_difference("answer: Kyoto", "answer: Tokyo").is_some());
        assert!(first_difference("steps 10", "steps 11").is_some());
        assert!(first_difference("a\nb", "a").is_some());
    }

    #[test]
    fn decimals_may_move_in_their_last_digits_only() {
        assert_eq!(first_difference("loss 0.9654", "loss 0.9655"), None);
        assert_eq!(first_difference("loss 0.9653637711865914", "loss 0.9653637711901"), None);
        assert!(first_difference("loss 0.9654", "loss 0.9754").is_some());
        assert!(first_difference("loss 1.2e-3", "loss 1.6e-3").is_some());
    }

    #[test]
    fn rounding_errors_may_move_within_their_order_of_magnitude() {
        let line = |x: &str| format!("merged vs adapter outputs: max |difference| {x} (tolerance 1e-5)");
        assert_eq!(first_difference(&line("6.0e-7"), &line("2.4e-6")), None);
        assert!(first_difference(&line("6.0e-7"), &line("8.0e-6")).is_some());
        assert_eq!(first_difference("dA  max |naive − fused| 0.0e0", "dA  max |naive − fused| 3.0e-8"), None);
        assert!(first_difference("dA  max |naive − fused| 0.0e0", "dA  max |naive − fused| 3.0e-4").is_some());
    }

    #[test]
    fn digests_are_not_compared() {
        let a = format!("9.34 MiB  sha256:{}  adapter.gguf", "ab12".repeat(16));
        let b = format!("9.34 MiB  sha256:{}  adapter.gguf", "cd34".repeat(16));
        assert_eq!(first_difference(&a, &b), None);
        assert!(first_difference(&a, &b.replace("adapter", "model")).is_some());
    }

    #[test]
    fn measurements_may_move_freely() {
        assert_eq!(first_difference("  \"tokens_per_second\": 350.5,", "  \"tokens_per_second\": 120.4,"), None);
        assert_eq!(first_difference("step 10 took 1.5 s", "step 10 took 4.1 s"), None);
        assert!(first_difference("step 10 took 1.5 s", "step 10 lasted 4.1 s").is_some());
    }
}
