//! A dataset's vital signs, before spending hours training on it: how many records, how
//! many repeat a prompt, which roles appear, and how long the examples are in tokens
//! (which sets `max_len`, and so memory and speed).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use anyhow::{Context, Result, bail};

use super::load::Record;
use super::synth::prompt_key;

/// Token length statistics. Percentiles use the nearest-rank method: p50 is the smallest
/// length at least half the examples fit in.
#[derive(Debug, Clone, PartialEq)]
pub struct LengthStats {
    pub min: usize,
    pub mean: f64,
    pub p50: usize,
    pub p95: usize,
    pub max: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetReport {
    pub records: usize,
    /// Indices (from 0) of records whose prompt repeats an earlier record's
    /// ([`prompt_key`]): wasted steps at best, conflicting answers at worst.
    pub duplicates: Vec<usize>,
    /// How many messages have each role, over the whole dataset.
    pub roles: BTreeMap<String, usize>,
    pub tokens: LengthStats,
    pub max_len: usize,
    /// Indices (from 0) of records longer than `max_len` tokens, which training would
    /// have to cut or skip.
    pub over_max_len: Vec<usize>,
}

/// Inspect `records`. `count_tokens` gives one record's length as training will see it
/// (normally: render the chat template and tokenize).
pub fn check(
    records: &[Record],
    count_tokens: impl Fn(&Record) -> Result<usize>,
    max_len: usize,
) -> Result<DatasetReport> {
    if records.is_empty() {
        bail!("no records to check")
    }
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    let mut roles = BTreeMap::new();
    let mut lengths = Vec::with_capacity(records.len());
    let mut over_max_len = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if !seen.insert(prompt_key(r)) {
            duplicates.push(i);
        }
        for m in &r.messages {
            *roles.entry(m.role.clone()).or_insert(0) += 1;
        }
        let n = count_tokens(r).with_context(|| format!("counting the tokens of record {}", i + 1))?;
        if n > max_len {
            over_max_len.push(i);
        }
        lengths.push(n);
    }
    Ok(DatasetReport {
        records: records.len(),
        duplicates,
        roles,
        tokens: length_stats(lengths),
        max_len,
        over_max_len,
    })
}

fn length_stats(mut lengths: Vec<usize>) -> LengthStats {
    lengths.sort_unstable();
    let n = lengths.len();
    // Nearest rank: the ceil(p·n)-th smallest value.
    let rank = |p: usize| lengths[(p * n).div_ceil(100).clamp(1, n) - 1];
    LengthStats {
        min: lengths[0],
        mean: lengths.iter().sum::<usize>() as f64 / n as f64,
        p50: rank(50),
        p95: rank(95),
        max: lengths[n - 1],
    }
}

/// Up to five indices, then how many more.
fn some_indices(ix: &[usize]) -> String {
    let shown: Vec<String> = ix.iter().take(5).map(|i| i.to_string()).collect();
    let more = ix.len().saturating_sub(5);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

impl fmt::Display for DatasetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "records:     {}", self.records)?;
        if self.duplicates.is_empty() {
            writeln!(f, "duplicates:  none")?;
        } else {
            writeln!(f, "duplicates:  {} (records {})", self.duplicates.len(), some_indices(&self.duplicates))?;
        }
        let roles: Vec<String> = self.roles.iter().map(|(r, n)| format!("{r} {n}")).collect();
        writeln!(f, "roles:       {}", roles.join(", "))?;
        let t = &self.tokens;
        writeln!(f, "tokens:      min {}, mean {:.1}, p50 {}, p95 {}, max {}", t.min, t.mean, t.p50, t.p95, t.max)?;
        if self.over_max_len.is_empty() {
            write!(f, "over {}:    none", self.max_len)
        } else {
            write!(
                f,
                "over {}:    {} (records {})",
                self.max_len,
                self.over_max_len.len(),
                some_indices(&self.over_max_len)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = length_stats((1..=20).collect());
        assert_eq!((s.min, s.p50, s.p95, s.max), (1, 10, 19, 20));
        assert_eq!(s.mean, 10.5);
        let one = length_stats(vec![7]);
        assert_eq!((one.min, one.p50, one.p95, one.max), (7, 7, 7, 7));
    }
}
