//! One optimizer update: the loss of each micro-batch, backward, gradient accumulation,
//! clipping to a global norm, AdamW. The trainer, the full fine-tuning experiment, the
//! benchmark and the book's hand-written loop all take their steps here.

use super::AdamW;
use super::loss::causal_lm_loss;
use crate::data::{IGNORE, TokenizedExample, collate};
use crate::model::Llama;
use anyhow::Result;
use candle_core::{DType, Tensor};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// One micro-batch: token ids `(b, t)` and their labels, right-padded to one length.
pub struct MicroBatch {
    pub ids: Tensor,
    pub labels: Vec<Vec<i64>>,
    /// Tokens in the batch, padding included (what a step's throughput counts).
    pub tokens: usize,
    /// Labels the loss scores (after the causal shift).
    pub scored: usize,
}

impl MicroBatch {
    /// `ids` (b, t) and labels of the same shape.
    pub fn new(ids: Tensor, labels: Vec<Vec<i64>>) -> Self {
        let tokens = ids.elem_count();
        let scored = labels.iter().map(|row| row.iter().skip(1).filter(|&&l| l != IGNORE).count()).sum();
        Self { ids, labels, tokens, scored }
    }

    /// Tokenized examples padded with `pad` into one batch for `model`.
    pub fn collate(model: &Llama, examples: &[&TokenizedExample], pad: u32) -> Result<Self> {
        let (ids, labels) = collate(examples, pad);
        Ok(Self::new(model.ids_tensor(&ids)?, labels))
    }
}

/// The settings of one update.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    pub lr: f64,
    /// Scale the gradients down to this global norm when above it; 0 disables clipping.
    pub max_grad_norm: f64,
}

/// What one update did.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcome {
    /// Mean loss over every scored token of the micro-batches.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens processed, padding included.
    pub tokens: usize,
}

/// The loss or the gradient norm stopped being a number: the update was not applied.
#[derive(Debug, Clone, Copy)]
pub enum NonFinite {
    Loss(f64),
    GradNorm(f64),
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonFinite::Loss(v) => write!(f, "the loss became {v}"),
            NonFinite::GradNorm(v) => write!(f, "the gradient norm became {v}"),
        }
    }
}

impl std::error::Error for NonFinite {}

/// One update of the variables `opt` holds from `batches` (gradient accumulation). Each
/// micro-batch is weighted by its share of the scored tokens, so the update is the mean over
/// all of them, as one big batch would give. `dropout` draws the LoRA dropout masks (`None`
/// when dropout is off). Fails with [`NonFinite`] before touching the weights.
pub fn step(
    model: &Llama,
    opt: &mut AdamW,
    batches: &[MicroBatch],
    settings: &StepSettings,
    mut dropout: Option<&mut ChaCha8Rng>,
) -> Result<StepOutcome> {
    let scored: usize = batches.iter().map(|b| b.scored).sum();
    let mut grads: Option<Vec<Tensor>> = None;
    let (mut loss_sum, mut tokens) = (0.0, 0);
    for batch in batches {
        let (loss, n) = causal_lm_loss(model, &batch.ids, &batch.labels, dropout.as_deref_mut())?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(NonFinite::Loss(value).into());
        }
        let weight = n as f64 / scored as f64;
        loss_sum += value * weight;
        tokens += batch.tokens;
        let g = opt.collect_grads(&(loss * weight)?.backward()?)?;
        grads = Some(match grads {
            None => g,
            Some(acc) => acc.iter().zip(&g).map(|(a, b)| a + b).collect::<candle_core::Result<_>>()?,
        });
    }
    let grads = grads.ok_or_else(|| anyhow::anyhow!("a step needs at least one micro-batch"))?;
    let norm = global_norm(&grads)?;
    if !norm.is_finite() {
        return Err(NonFinite::GradNorm(norm).into());
    }
    let grads = clip_to_norm(grads, norm, settings.max_grad_norm)?;
    opt.update(&grads, settings.lr)?;
    Ok(StepOutcome { loss: loss_sum, grad_norm: norm, tokens })
}

/// Scale `grads` (whose global norm is `norm`) down to `max_norm` if above it; 0 disables.
fn clip_to_norm(grads: Vec<Tensor>, norm: f64, max_norm: f64) -> Result<Vec<Tensor>> {
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        return Ok(grads.iter().map(|g| g * s).collect::<candle_core::Result<_>>()?);
    }
    Ok(grads)
}

fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut sq = 0.0;
    for g in grads {
        sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(sq.sqrt())
}
