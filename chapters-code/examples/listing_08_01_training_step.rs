//! Listing 8-1: one LoRA training step by hand — forward, masked loss, backward, AdamW —
//! on a tiny Llama with random weights, then a few more steps of the same.
//!
//!     cargo run -p lorakit --example listing_08_01_training_step
use std::collections::HashMap;
use std::path::PathBuf;

use lorakit::candle::{DType, Device, Tensor};
use lorakit::lora::{TARGET_MODULES, module_path};
use lorakit::model::config::RopeScaling;
use lorakit::model::weights::Format;
use lorakit::train::{AdamW, AdamWConfig, IGNORE, causal_lm_loss};
use lorakit::{Checkpoint, Llama, LlamaConfig, LoraAdapter, LoraConfig};

fn main() -> anyhow::Result<()> {
    // ANCHOR: setup
    // A frozen base model (random here; Chapter 9 uses the real one) and a fresh adapter:
    // A random, B zero, so the adapted model starts out computing exactly the base model.
    let mut model = tiny_llama(2024)?;
    let lora = LoraConfig { r: 4, alpha: 8.0, ..LoraConfig::default() };
    let adapter = LoraAdapter::init(lora, &model.config, 42, DType::F32, &Device::Cpu)?;
    model.apply_adapter(&adapter)?;
    println!(
        "base: {} parameters (frozen); adapter: {} (trainable)",
        model.config.num_parameters(),
        adapter.num_parameters()
    );
    // ANCHOR_END: setup

    // ANCHOR: batch
    // One example of 12 tokens: an 8-token prompt, then a 4-token answer ending in the
    // end-of-turn id 2. Prompt labels are IGNORE: only the answer is scored.
    let tokens: Vec<u32> = vec![1, 17, 42, 99, 7, 3, 120, 5, 200, 201, 202, 2];
    let labels: Vec<i64> = tokens.iter().enumerate().map(|(t, &id)| if t < 8 { IGNORE } else { id as i64 }).collect();
    let ids = model.ids_tensor(&[tokens])?;
    let labels = vec![labels];
    // ANCHOR_END: batch

    // ANCHOR: step
    // 1. Forward pass and masked cross-entropy (logits at t are scored against labels[t+1]).
    let (loss, scored) = causal_lm_loss(&model, &ids, &labels, None)?;
    println!(
        "loss {:.4} over {scored} scored tokens (a uniform guess: ln 256 = {:.4})",
        loss.to_scalar::<f32>()?,
        256f64.ln()
    );
    // 2. Backward pass: gradients for every tensor the loss depends on, A and B included.
    let grads = loss.backward()?;
    for (name, var) in adapter.named_vars().into_iter().filter(|(n, _)| n.contains("layers.0.self_attn.q_proj")) {
        let g = grads.get(var.as_tensor()).expect("every adapter tensor gets a gradient");
        let max = g.abs()?.max_all()?.to_scalar::<f32>()?;
        println!("  {name}: max |gradient| = {max:.3e}");
    }
    // 3. AdamW on the adapter's tensors only: the base weights are not in its list.
    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, AdamWConfig { lr: 1e-2, weight_decay: 0.0, ..AdamWConfig::default() })?;
    opt.step(&grads)?;
    let (after, _) = causal_lm_loss(&model, &ids, &labels, None)?;
    println!("after one AdamW step: loss {:.4}", after.to_scalar::<f32>()?);
    // ANCHOR_END: step

    // ANCHOR: more
    for step in 2..=20 {
        let (loss, _) = causal_lm_loss(&model, &ids, &labels, None)?;
        opt.step(&loss.backward()?)?;
        if step % 4 == 0 {
            println!("step {step:>2}: loss before the update {:.4}", loss.to_scalar::<f32>()?);
        }
    }
    let (last, _) = causal_lm_loss(&model, &ids, &labels, None)?;
    println!("after 20 steps: loss {:.4}", last.to_scalar::<f32>()?);
    // ANCHOR_END: more
    Ok(())
}

// ANCHOR: tiny
/// A Llama with 2 layers, 64-wide hidden states and a 256-token vocabulary, its weights
/// drawn uniformly from ±0.1 by a seeded generator: the same model on every machine.
fn tiny_llama(seed: u64) -> anyhow::Result<Llama> {
    let config = LlamaConfig {
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        vocab_size: 256,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: RopeScaling::None,
        max_position_embeddings: 2048,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_ids: vec![],
    };
    let mut state = seed;
    let mut uniform = |rows: usize, cols: usize| -> anyhow::Result<Tensor> {
        // xorshift64*: enough randomness for a toy, and no dependency.
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
                (unit * 2.0 - 1.0) * 0.1
            })
            .collect();
        Ok(Tensor::from_vec(values, (rows, cols), &Device::Cpu)?)
    };
    let (h, v) = (config.hidden_size, config.vocab_size);
    let mut tensors = HashMap::new();
    tensors.insert("model.embed_tokens.weight".to_string(), uniform(v, h)?);
    for layer in 0..config.num_hidden_layers {
        for module in TARGET_MODULES {
            let (fan_in, fan_out) = config.module_shape(module).expect("a Llama projection");
            tensors.insert(format!("{}.weight", module_path(layer, module)), uniform(fan_out, fan_in)?);
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.insert(format!("model.layers.{layer}.{norm}.weight"), Tensor::ones(h, DType::F32, &Device::Cpu)?);
        }
    }
    tensors.insert("model.norm.weight".to_string(), Tensor::ones(h, DType::F32, &Device::Cpu)?);
    let format = Format::HfDir { dir: PathBuf::from("random") };
    Llama::new(Checkpoint { config, tensors, format })
}
// ANCHOR_END: tiny
