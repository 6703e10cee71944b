//! Text generation with a KV cache: greedy or seeded sampling (temperature, top-k, top-p),
//! stopping on end-of-turn tokens.

use crate::model::{KvCache, Llama};
use anyhow::{Result, bail};
use candle_core::{DType, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    /// 0 means greedy (argmax).
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub seed: u64,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self { max_new_tokens: 128, temperature: 0.0, top_k: None, top_p: None, seed: 42 }
    }
}

impl GenerationConfig {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self { max_new_tokens, ..Self::default() }
    }

    fn sampling(&self) -> Result<Sampling> {
        let t = self.temperature;
        if !(t >= 0.0 && t.is_finite()) {
            bail!("temperature must be >= 0 (got {t})")
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            bail!("top_p must be in (0, 1] (got {p})")
        }
        if self.top_k == Some(0) {
            bail!("top_k must be at least 1")
        }
        Ok(match (t == 0.0, self.top_k, self.top_p) {
            (true, _, _) => Sampling::ArgMax,
            (false, None, None) => Sampling::All { temperature: t },
            (false, Some(k), None) => Sampling::TopK { k, temperature: t },
            (false, None, Some(p)) => Sampling::TopP { p, temperature: t },
            (false, Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature: t },
        })
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// One of the stop tokens (EOS or the template's end of turn) was produced.
    StopToken(u32),
    MaxTokens,
}

/// Generate after `prompt` until a token of `stop` or `max_new_tokens`. `on_token` sees
/// each new id as it is produced (for streaming). The stop token is not included.
pub fn generate(
    model: &Llama,
    prompt: &[u32],
    stop: &[u32],
    cfg: &GenerationConfig,
    mut on_token: impl FnMut(u32) -> Result<()>,
) -> Result<(Vec<u32>, StopReason)> {
    if prompt.is_empty() {
        bail!("the prompt is empty")
    }
    let mut sampler = LogitsProcessor::from_sampling(cfg.seed, cfg.sampling()?);
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let mut out = Vec::new();
    let mut next_input = prompt.to_vec();
    for _ in 0..cfg.max_new_tokens {
        let ids = Tensor::new(next_input.as_slice(), model.device())?.unsqueeze(0)?;
        let logits = model.forward_step(&ids, &mut cache)?.squeeze(0)?.to_dtype(DType::F32)?;
        let next = sampler.sample(&logits)?;
        if stop.contains(&next) {
            return Ok((out, StopReason::StopToken(next)));
        }
        out.push(next);
        on_token(next)?;
        next_input = vec![next];
    }
    Ok((out, StopReason::MaxTokens))
}
