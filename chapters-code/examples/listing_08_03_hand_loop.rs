//! Listing 8-3: the training loop written out by hand — batching, forward pass, masked loss,
//! backward pass, accumulation, clipping, AdamW at the scheduled rate, one log line per
//! update — on the run of Listing 8-2. Its losses are the ones `lorakit::train::train`
//! reports for the same config (`chapters-code/tests/hand_loop.rs` checks it).
//!
//!     cargo run -p lorakit --example listing_08_03_hand_loop
use std::path::Path;

use anyhow::{Context, Result, ensure};
use book_support::data_dir;
use lorakit::LoraAdapter;
use lorakit::candle::{DType, Tensor};
use lorakit::data::collate;
use lorakit::load::LoadedModel;
use lorakit::train::schedule::lr_at;
use lorakit::train::trainer::tokenize_file;
use lorakit::train::{AdamW, AdamWConfig, TrainConfig, batch_indices, causal_lm_loss};

fn main() -> Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    let cfg = config(&data_dir()?);
    let mut m = lorakit::load::load(&cfg.model, DType::F32)?;
    // On the compute pool, as `train` runs (faster, same numbers: see lorakit::runtime).
    lorakit::runtime::install(|| hand_loop(&cfg, &mut m, |line| println!("{line}")))?;
    Ok(())
}

/// Listing 8-2's run: the Extract task, 10 updates of 2 micro-batches of 4 examples.
pub fn config(data: &Path) -> TrainConfig {
    TrainConfig { train_data: data.join("extract/train.jsonl"), max_steps: Some(10), ..TrainConfig::default() }
}

// ANCHOR: loop
/// Train a fresh adapter on `m` as `train` does, minus validation, checkpoints and progress
/// reports. `log` gets one line per update; the losses are returned.
pub fn hand_loop(cfg: &TrainConfig, m: &mut LoadedModel, mut log: impl FnMut(&str)) -> Result<Vec<f64>> {
    cfg.validate()?;
    ensure!(cfg.lora.dropout == 0.0, "this loop draws no dropout masks: set dropout to 0");
    let data = tokenize_file(m, &cfg.train_data, cfg)?;
    // A random, B zero; AdamW holds the adapter's tensors only, so the base stays frozen.
    let adapter = LoraAdapter::init(cfg.lora.clone(), &m.model.config, cfg.seed, DType::F32, m.model.device())?;
    m.model.apply_adapter(&adapter)?;
    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, AdamWConfig { lr: cfg.lr, weight_decay: cfg.weight_decay, ..Default::default() })?;
    let per_epoch = (data.len() / cfg.micro_batch).max(1);
    let total = cfg.max_steps.unwrap_or_else(|| (cfg.epochs * per_epoch).div_ceil(cfg.grad_accum));
    let pad = m.stop_ids.first().copied().unwrap_or(0);
    let mut losses = Vec::new();
    for step in 0..total {
        // Batching: grad_accum micro-batches, the next ones of the seeded shuffle.
        let batches: Vec<Vec<_>> = (0..cfg.grad_accum)
            .map(|k| batch_indices(step * cfg.grad_accum + k, per_epoch, data.len(), cfg))
            .map(|idx| idx.iter().map(|&i| &data[i]).collect())
            .collect();
        let scored: usize = batches.iter().flatten().map(|e| e.n_targets()).sum();
        let (mut loss, mut grads) = (0.0, None::<Vec<Tensor>>);
        for batch in &batches {
            // Forward pass and masked loss, weighted by the micro-batch's share of the scored
            // tokens: the update is the mean over all of them, as one big batch would give.
            let (ids, labels) = collate(batch, pad);
            let (l, n) = causal_lm_loss(&m.model, &m.model.ids_tensor(&ids)?, &labels, None)?;
            let weight = n as f64 / scored as f64;
            loss += l.to_dtype(DType::F64)?.to_scalar::<f64>()? * weight;
            // Backward pass; the micro-batches' gradients add up.
            let g = opt.collect_grads(&(l * weight)?.backward()?)?;
            grads = Some(match grads {
                None => g,
                Some(acc) => acc.iter().zip(&g).map(|(a, b)| a + b).collect::<Result<_, _>>()?,
            });
        }
        let mut grads = grads.context("grad_accum must be at least 1")?;
        // Clipping: above max_grad_norm, scale every gradient so the global norm is max_grad_norm.
        let mut sq = 0.0;
        for g in &grads {
            sq += g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        }
        let norm = f64::sqrt(sq);
        if cfg.max_grad_norm > 0.0 && norm > cfg.max_grad_norm {
            let s = cfg.max_grad_norm / (norm + 1e-6);
            grads = grads.iter().map(|g| g * s).collect::<Result<_, _>>()?;
        }
        // AdamW at the scheduled rate (linear warmup, then cosine decay).
        let lr = lr_at(step, total, cfg.warmup_steps, cfg.lr, cfg.schedule);
        opt.update(&grads, lr)?;
        log(&format!("step {}/{total}: loss {loss:.4} lr {lr:.2e} grad norm {norm:.3}", step + 1));
        losses.push(loss);
    }
    Ok(losses)
}
// ANCHOR_END: loop
