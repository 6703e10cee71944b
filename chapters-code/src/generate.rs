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

/// A common beginning at least this long is computed once for the whole batch.
const SHARED_PREFIX_MIN: usize = 16;

/// Greedy answers to many prompts, `batch` at a time: each batch is left-padded so its
/// prompts end together, prefilled in one pass, and decoded one token per row per step until
/// every row has produced a stop token (or `max_new_tokens`). When the prompts of a batch
/// begin alike (the same system prompt and few-shot examples), that beginning is computed
/// once and shared (see [`Llama::share_prefix`]). Decoding a single row reads
/// every weight for one token; a batch shares that read, which is where the speed comes from.
/// Answers equal [`generate`]'s greedy ones up to float rounding (the products run in other
/// shapes), which can flip a near-tie between two tokens. Prompts of similar length share a
/// batch; the answers come back in the prompts' order.
pub fn generate_greedy_batch(
    model: &Llama,
    prompts: &[Vec<u32>],
    stop: &[u32],
    max_new_tokens: usize,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Vec<u32>>> {
    if let Some(i) = prompts.iter().position(|p| p.is_empty()) {
        bail!("prompt {} is empty", i + 1)
    }
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| prompts[i].len());
    let mut answers = vec![Vec::new(); prompts.len()];
    for chunk in order.chunks(batch.max(1)) {
        // The tokens every prompt of the batch begins with (a few-shot prompt's examples),
        // keeping at least one token of each prompt for the batch itself.
        let shortest = chunk.iter().map(|&i| prompts[i].len()).min().unwrap_or(0);
        let first = &prompts[chunk[0]];
        let shared = (0..shortest - 1).take_while(|&j| chunk.iter().all(|&i| prompts[i][j] == first[j])).count();
        let shared = if chunk.len() > 1 && shared >= SHARED_PREFIX_MIN { shared } else { 0 };
        let own = |i: usize| &prompts[i][shared..];
        let longest = chunk.iter().map(|&i| own(i).len()).max().unwrap_or(0);
        let pads: Vec<usize> = chunk.iter().map(|&i| longest - own(i).len()).collect();
        // The filler is the row's own first token: any id would do, since nothing sees it.
        let rows: Vec<Vec<u32>> = chunk
            .iter()
            .zip(&pads)
            .map(|(&i, &pad)| std::iter::repeat_n(own(i)[0], pad).chain(own(i).iter().copied()).collect())
            .collect();
        let n_layers = model.config.num_hidden_layers;
        let mut cache = if shared > 0 {
            let mut prefix = KvCache::new(n_layers);
            model.forward_step(&model.ids_tensor(&[first[..shared].to_vec()])?, &mut prefix)?;
            model.share_prefix(&prefix, &pads)?
        } else {
            KvCache::padded(n_layers, pads)
        };
        let mut input = model.ids_tensor(&rows)?;
        let mut done = vec![false; chunk.len()];
        for _ in 0..max_new_tokens {
            let next =
                crate::model::llama::argmax_rows(&model.forward_step(&input, &mut cache)?.to_dtype(DType::F32)?)?;
            for (row, (&i, &id)) in chunk.iter().zip(&next).enumerate() {
                if done[row] {
                    continue;
                }
                if stop.contains(&id) {
                    done[row] = true;
                } else {
                    answers[i].push(id);
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            input = Tensor::from_vec(next, (chunk.len(), 1), model.device())?;
        }
        progress(chunk.len());
    }
    Ok(answers)
}
