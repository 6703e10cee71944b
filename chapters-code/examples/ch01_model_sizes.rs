//! Data for Chapter 1's LoRA calculator: the two models' shapes and parameter counts, as
//! lorakit reads and counts them, written to `book/data/models.json`.
//!
//!     cargo run -p lorakit --example ch01_model_sizes [-- OUT.json]
//!
//! SmolLM2-135M-Instruct comes from the cached GGUF (the checkpoint every chapter trains),
//! so its shapes and its parameter count are checked against the real tensors. Llama 3.2 1B
//! is not downloaded: its `config.json` values go through the same parser a Hub checkpoint
//! goes through. The widget computes Σ r·(in + out) × layers from the module shapes here;
//! `checks` holds what `LoraConfig::num_parameters` gives for many settings, and the book's
//! browser check asserts that the widget shows exactly those numbers.
use anyhow::{Context, Result, bail};
use lorakit::candle::{DType, Device};
use lorakit::lora::TARGET_MODULES;
use lorakit::model::config::HfConfig;
use lorakit::{Checkpoint, LlamaConfig, LoraAdapter, LoraConfig, fetch};
use serde_json::{Value, json};
use std::path::PathBuf;

/// `meta-llama/Llama-3.2-1B-Instruct/config.json`, the fields the counts depend on.
fn llama_3_2_1b() -> Result<LlamaConfig> {
    let hf: HfConfig = serde_json::from_value(json!({
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
        "head_dim": 64, "vocab_size": 128256, "tie_word_embeddings": true, "rope_theta": 500000.0,
        "rms_norm_eps": 1e-5, "max_position_embeddings": 131072
    }))?;
    hf.into_config("Llama-3.2-1B config.json")
}

/// Every tensor of the checkpoint has the shape the config predicts, and together they hold
/// exactly `num_parameters()` numbers.
fn check_against_tensors(cfg: &LlamaConfig, ckpt: &Checkpoint) -> Result<usize> {
    for layer in 0..cfg.num_hidden_layers {
        for m in TARGET_MODULES {
            let name = format!("{}.weight", lorakit::lora::module_path(layer, m));
            let t = ckpt.tensors.get(&name).with_context(|| format!("tensor {name} is missing"))?;
            let (i, o) = cfg.module_shape(m).expect("known module");
            if t.dims() != [o, i] {
                bail!("{name}: shape {:?}, the config says [{o}, {i}]", t.dims())
            }
        }
    }
    let counted: usize = ckpt.tensors.values().map(|t| t.elem_count()).sum();
    if counted != cfg.num_parameters() {
        bail!("the checkpoint holds {counted} numbers, LlamaConfig::num_parameters says {}", cfg.num_parameters())
    }
    Ok(counted)
}

fn model_json(id: &str, name: &str, source: &str, cfg: &LlamaConfig) -> Result<Value> {
    let modules: Vec<Value> = TARGET_MODULES
        .iter()
        .map(|m| {
            let (i, o) = cfg.module_shape(m).expect("known module");
            json!({"name": m, "in": i, "out": o})
        })
        .collect();
    // What the crate counts, for the widget to be checked against.
    let all: Vec<&str> = TARGET_MODULES.to_vec();
    let mut sets: Vec<Vec<&str>> =
        vec![vec!["q_proj", "v_proj"], vec!["q_proj", "k_proj", "v_proj", "o_proj"], all.clone()];
    sets.extend(all.iter().map(|m| vec![*m]));
    let mut checks = Vec::new();
    for r in [1, 2, 4, 8, 16, 32, 64, 128, 256] {
        for targets in &sets {
            let lora = LoraConfig {
                r,
                target_modules: targets.iter().map(|s| s.to_string()).collect(),
                ..LoraConfig::default()
            };
            if lora.validate(Some(cfg)).is_err() {
                continue; // r larger than a targeted matrix (k_proj of SmolLM2 is 192 wide)
            }
            checks.push(json!({"r": r, "targets": targets, "trainable_params": lora.num_parameters(cfg)}));
        }
    }
    Ok(json!({
        "id": id,
        "name": name,
        "source": source,
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "attention_heads": cfg.num_attention_heads,
        "kv_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size,
        "tied_embeddings": cfg.tie_word_embeddings,
        "base_params": cfg.num_parameters(),
        "modules": modules,
        "checks": checks,
    }))
}

fn main() -> Result<()> {
    let out = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../book/data/models.json"),
    };

    let gguf = fetch::default_model_path()?;
    let ckpt = Checkpoint::load(&gguf, DType::F32, &Device::Cpu)?;
    let smol = ckpt.config.clone();
    let counted = check_against_tensors(&smol, &ckpt)?;
    let gguf_name = gguf.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    println!("SmolLM2-135M-Instruct ({gguf_name}): {counted} parameters in the tensors = LlamaConfig::num_parameters");

    // A real adapter, initialised and saved as PEFT does: its element count and file size.
    let adapter = LoraAdapter::init(LoraConfig::default(), &smol, 0, DType::F32, &Device::Cpu)?;
    let dir = tempfile::tempdir()?;
    adapter.save_peft(dir.path())?;
    let file_bytes = std::fs::metadata(dir.path().join(lorakit::lora::WEIGHTS_FILE))?.len();
    let default = LoraConfig::default();
    println!(
        "LoRA r = {}, all seven projections: {} parameters, adapter_model.safetensors {file_bytes} bytes",
        default.r,
        adapter.num_parameters()
    );
    if adapter.num_parameters() != default.num_parameters(&smol) {
        bail!(
            "LoraAdapter::init made {} parameters, LoraConfig::num_parameters says {}",
            adapter.num_parameters(),
            default.num_parameters(&smol)
        )
    }

    let llama = llama_3_2_1b()?;
    println!("Llama 3.2 1B (config.json values): {} parameters", llama.num_parameters());

    let doc = json!({
        "command": "cargo run -p lorakit --example ch01_model_sizes",
        "bytes": {
            "note": "per trainable parameter in f32 training: weight, gradient, AdamW m and v",
            "weight": 4, "gradient": 4, "adam_m": 4, "adam_v": 4
        },
        "models": [
            model_json("smollm2-135m", "SmolLM2-135M-Instruct",
                &format!("{gguf_name} (GGUF read by lorakit::Checkpoint; shapes checked against the tensors)"), &smol)?,
            model_json("llama-3.2-1b", "Llama 3.2 1B",
                "meta-llama/Llama-3.2-1B-Instruct config.json values, through lorakit's HfConfig", &llama)?,
        ],
        "measured_adapter": {
            "model": "smollm2-135m",
            "r": default.r,
            "targets": default.target_modules,
            "trainable_params": adapter.num_parameters(),
            "safetensors_file_bytes": file_bytes,
        },
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    lorakit::io::atomic_write(&out, (serde_json::to_string_pretty(&doc)? + "\n").as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
