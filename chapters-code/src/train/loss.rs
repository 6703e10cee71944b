//! The causal language-modelling loss with label masking.

use crate::data::{IGNORE, TokenizedExample, collate};
use crate::load::LoadedModel;
use crate::model::Llama;
use crate::ops;
use anyhow::{Result, bail};
use candle_core::{D, DType, Tensor};
use rand_chacha::ChaCha8Rng;

/// Mean cross-entropy of next-token prediction over a batch: the logits at position t are
/// scored against `labels[t + 1]`, averaged over every non-ignored label of the batch.
///
/// Only the positions that are scored go through the `lm_head` (with prompt masking most
/// are not, and the 49k-wide vocabulary projection is the single biggest matmul).
/// Returns the loss and the number of scored tokens.
pub fn causal_lm_loss(
    model: &Llama,
    ids: &Tensor,
    labels: &[Vec<i64>],
    rng: Option<&mut ChaCha8Rng>,
) -> Result<(Tensor, usize)> {
    let (b, t) = ids.dims2()?;
    if labels.len() != b || labels.iter().any(|l| l.len() != t) {
        bail!("labels must have the shape of the ids ({b} × {t})")
    }
    let positions: Vec<usize> = (0..t).collect();
    let hidden = model.hidden_states(ids, &positions, None, rng)?;
    let h = hidden.dim(D::Minus1)?;
    let hidden = hidden.reshape((b * t, h))?;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (r, row) in labels.iter().enumerate() {
        for p in 0..t.saturating_sub(1) {
            if row[p + 1] != IGNORE {
                rows.push((r * t + p) as u32);
                targets.push(row[p + 1]);
            }
        }
    }
    if rows.is_empty() {
        bail!("the batch has no label to score (every label is {IGNORE})")
    }
    let idx = Tensor::new(rows.as_slice(), hidden.device())?;
    // The vocabulary projection and the loss together, a chunk of rows at a time.
    Ok(ops::linear_cross_entropy(&hidden.index_select(&idx, 0)?, model.head_weight(), &targets)?)
}

/// Mean loss over a set (token-weighted), in batches, without building a graph.
pub fn eval_loss(m: &LoadedModel, set: &[TokenizedExample], batch: usize) -> Result<f64> {
    let pad = *m.stop_ids.first().unwrap_or(&0);
    let (mut total, mut count) = (0.0, 0usize);
    for chunk in set.chunks(batch.max(1)) {
        let refs: Vec<&TokenizedExample> = chunk.iter().collect();
        let (ids, labels) = collate(&refs, pad);
        let (loss, n) = crate::ops::no_grad(|| causal_lm_loss(&m.model, &m.model.ids_tensor(&ids)?, &labels, None))?;
        total += loss.to_dtype(DType::F64)?.to_scalar::<f64>()? * n as f64;
        count += n;
    }
    Ok(if count == 0 { f64::NAN } else { total / count as f64 })
}
