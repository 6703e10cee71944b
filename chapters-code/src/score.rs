//! Scoring: the model's next-token distribution at every position of a sequence. Used by
//! `lora score` for troubleshooting and for checks from outside (e.g. against llama.cpp).

use crate::model::Llama;
use anyhow::{Result, bail};
use candle_core::{D, DType};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TokenScore {
    pub id: u32,
    pub logit: f32,
    pub prob: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct PositionScore {
    /// The `k` most likely next tokens, most likely first.
    pub top: Vec<TokenScore>,
    /// log Σ exp(logits): with `logit`, gives any token's log-probability.
    pub logsumexp: f64,
    /// The whole logits row (only with `full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logits: Option<Vec<f32>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    pub ids: Vec<u32>,
    pub positions: Vec<PositionScore>,
}

/// Score `ids` (one sequence, positions 0..n).
pub fn score(model: &Llama, ids: &[u32], top: usize, full: bool) -> Result<ScoreReport> {
    if ids.is_empty() {
        bail!("nothing to score: the sequence is empty")
    }
    let t = model.ids_tensor(&[ids.to_vec()])?;
    let logits = crate::ops::no_grad(|| model.forward(&t))?.squeeze(0)?.to_dtype(DType::F32)?; // (n, vocab)
    let lse = logits.log_sum_exp(D::Minus1)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let rows = logits.to_vec2::<f32>()?;
    let positions = rows
        .into_iter()
        .zip(lse)
        .map(|(row, lse)| {
            let mut order: Vec<usize> = (0..row.len()).collect();
            let k = top.min(row.len());
            order.select_nth_unstable_by(k.saturating_sub(1).min(row.len() - 1), |&a, &b| row[b].total_cmp(&row[a]));
            order.truncate(k);
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let top = order
                .into_iter()
                .map(|i| TokenScore { id: i as u32, logit: row[i], prob: ((row[i] as f64) - lse).exp() as f32 })
                .collect();
            PositionScore { top, logsumexp: lse, logits: full.then_some(row) }
        })
        .collect();
    Ok(ScoreReport { ids: ids.to_vec(), positions })
}
