//! Listing 7-1: LoRA configurations and what they cost, for SmolLM2-135M and Llama 3.2 1B,
//! with the sizes from the models' own `config.json`; the scale factor; the errors a bad
//! configuration gets; the training defaults as a TOML file.
//!
//!     cargo run -p lorakit --example listing_07_01_lora_config
use lorakit::lora::TARGET_MODULES;
use lorakit::model::config::RopeScaling;
use lorakit::train::TrainConfig;
use lorakit::{LlamaConfig, LoraConfig};

// ANCHOR: models
/// SmolLM2-135M, from `HuggingFaceTB/SmolLM2-135M-Instruct/config.json`: hidden_size 576,
/// intermediate_size 1536, num_hidden_layers 30, num_attention_heads 9, num_key_value_heads 3,
/// vocab_size 49152, tie_word_embeddings true.
fn smollm2_135m() -> LlamaConfig {
    llama(576, 1536, 30, 9, 3, 49152)
}

/// Llama 3.2 1B, from `meta-llama/Llama-3.2-1B-Instruct/config.json`: 2048, 8192, 16 layers,
/// 32 heads sharing 8 key/value heads, vocab_size 128256, tied embeddings.
fn llama_3_2_1b() -> LlamaConfig {
    llama(2048, 8192, 16, 32, 8, 128256)
}

/// A Llama with tied embeddings: only the sizes matter for counting parameters.
fn llama(
    hidden: usize,
    intermediate: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
) -> LlamaConfig {
    LlamaConfig {
        hidden_size: hidden,
        intermediate_size: intermediate,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim: hidden / heads,
        vocab_size: vocab,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: RopeScaling::None,
        max_position_embeddings: 2048,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}
// ANCHOR_END: models

fn main() -> anyhow::Result<()> {
    // ANCHOR: count
    let targets: [(&str, Vec<&str>); 3] = [
        ("q, v", vec!["q_proj", "v_proj"]),
        ("q, k, v, o", vec!["q_proj", "k_proj", "v_proj", "o_proj"]),
        ("all seven", TARGET_MODULES.to_vec()),
    ];
    for (name, model) in [("SmolLM2-135M", smollm2_135m()), ("Llama 3.2 1B", llama_3_2_1b())] {
        let base = model.num_parameters();
        println!("{name}: {base} parameters");
        for r in [8, 16, 64] {
            for (label, modules) in &targets {
                let lora = LoraConfig {
                    r,
                    target_modules: modules.iter().map(|m| m.to_string()).collect(),
                    ..LoraConfig::default()
                };
                lora.validate(Some(&model))?;
                let n = lora.num_parameters(&model);
                // f32 weights; AdamW keeps two more f32 numbers (m and v) per parameter.
                println!(
                    "  r = {r:<2}  {label:<10} {n:>10} trainable ({:>5.2}%)  adapter {:>6.1} MB f32, {:>5.1} MB f16  AdamW state {:>6.1} MB",
                    100.0 * n as f64 / base as f64,
                    n as f64 * 4.0 / 1e6,
                    n as f64 * 2.0 / 1e6,
                    n as f64 * 8.0 / 1e6,
                );
            }
        }
    }
    // ANCHOR_END: count

    // ANCHOR: scale
    for r in [4, 8, 16, 64] {
        let plain = LoraConfig { r, alpha: 16.0, ..LoraConfig::default() };
        let rs = LoraConfig { use_rslora: true, ..plain.clone() };
        println!("alpha 16, r = {r:<2}: scale {:.3} (rsLoRA {:.3})", plain.scaling(), rs.scaling());
    }
    // ANCHOR_END: scale

    // ANCHOR: validate
    let smol = smollm2_135m();
    let wrong = [
        LoraConfig { r: 0, ..LoraConfig::default() },
        LoraConfig { r: 256, ..LoraConfig::default() },
        LoraConfig { target_modules: vec!["qproj".into()], ..LoraConfig::default() },
        LoraConfig { dropout: 1.0, ..LoraConfig::default() },
    ];
    for cfg in wrong {
        println!("error: {}", cfg.validate(Some(&smol)).unwrap_err());
    }
    // ANCHOR_END: validate

    // ANCHOR: toml
    // Every setting `lora train --config run.toml` reads, at its default.
    print!("{}", TrainConfig::default().to_toml()?);
    // ANCHOR_END: toml
    Ok(())
}
