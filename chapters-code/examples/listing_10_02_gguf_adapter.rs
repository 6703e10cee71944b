//! Listing 10-2: the two details a GGUF adapter must get right — the Q/K row order of
//! llama.cpp, and the alpha llama.cpp needs for an rsLoRA adapter — and the metadata and
//! tensor names of the file, on a tiny Llama (no model download, runs in a second).
//!
//!     cargo run -p lorakit --example listing_10_02_gguf_adapter
use lorakit::candle::{Device, Tensor};
use lorakit::export::ExportDtype;
use lorakit::export::adapter::{adapter_gguf, gguf_alpha};
use lorakit::model::config::RopeScaling;
use lorakit::model::weights::permute_qk;
use lorakit::{LlamaConfig, LoraAdapter, LoraConfig};

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    // ANCHOR: rows
    // One head of width 8: row i of W_q produces coordinate i of the query. Hugging Face's
    // RoPE rotates coordinate i together with i + 4 (the two halves); llama.cpp rotates
    // neighbours 2i and 2i + 1. The GGUF file stores the rows so that neighbours are pairs.
    let rows = Tensor::arange(0f32, 8f32, &dev)?.reshape((8, 1))?;
    let order: Vec<u32> = permute_qk(&rows, 1)?.flatten_all()?.to_vec1::<f32>()?.iter().map(|&x| x as u32).collect();
    println!("GGUF row r holds Hugging Face row {order:?}");
    // ANCHOR_END: rows

    // ANCHOR: identity
    // The permutation reorders rows, so it passes through the product B·A onto B alone:
    // P(W + s·B·A) = P(W) + s·P(B)·A. An exported adapter permutes the rows of B for q and k.
    let values = |n: usize, rows: usize, phase: f64| -> anyhow::Result<Tensor> {
        // Deterministic stand-ins for weights: a sine wave, no random generator needed.
        Ok(Tensor::arange(0f32, n as f32, &dev)?.affine(0.37, phase)?.sin()?.reshape((rows, n / rows))?)
    };
    let heads = 2;
    let (w, b, a) = (values(16 * 6, 16, 0.1)?, values(16 * 2, 16, 0.7)?, values(2 * 6, 2, 1.3)?);
    let s = 2.0;
    let merged_then_permuted = permute_qk(&(&w + (b.matmul(&a)? * s)?)?, heads)?;
    let right = (permute_qk(&w, heads)? + (permute_qk(&b, heads)?.matmul(&a)? * s)?)?;
    let wrong = (permute_qk(&w, heads)? + (b.matmul(&a)? * s)?)?;
    let max_diff =
        |x: &Tensor| -> anyhow::Result<f32> { Ok((x - &merged_then_permuted)?.abs()?.max_all()?.to_scalar()?) };
    println!("B permuted:     max |difference| = {:.1e}", max_diff(&right)?);
    println!("B not permuted: max |difference| = {:.1e}", max_diff(&wrong)?);
    // ANCHOR_END: identity

    // ANCHOR: alpha
    // PEFT scales by alpha/r, or alpha/√r with rsLoRA; llama.cpp always divides the file's
    // adapter.lora.alpha by r. An rsLoRA adapter must therefore carry alpha·√r.
    let cfg = tiny_llama();
    for use_rslora in [false, true] {
        let lora = LoraConfig { r: 16, alpha: 16.0, use_rslora, ..LoraConfig::default() };
        let adapter = LoraAdapter::init(lora.clone(), &cfg, 42, lorakit::candle::DType::F32, &dev)?;
        let file_alpha = gguf_alpha(&adapter);
        println!(
            "r 16, alpha 16, rsLoRA {use_rslora:<5}: PEFT scale {:.2}; GGUF alpha {file_alpha:>4} -> llama.cpp scale {:.2} \
             (alpha 16 copied as is: {:.2})",
            lora.scaling(),
            file_alpha / lora.r as f64,
            lora.alpha / lora.r as f64
        );
    }
    // ANCHOR_END: alpha

    // ANCHOR: file
    // What the GGUF adapter holds: a few metadata keys and one lora_a/lora_b pair per matrix.
    let lora = LoraConfig { r: 4, alpha: 8.0, ..LoraConfig::default() };
    let adapter = LoraAdapter::init(lora, &cfg, 42, lorakit::candle::DType::F32, &dev)?;
    let (metadata, tensors) = adapter_gguf(&adapter, &cfg, "tiny-lora", ExportDtype::F32)?;
    for (key, value) in &metadata {
        println!("{key:<30} {value:?}");
    }
    println!("{} tensors, e.g.:", tensors.len());
    for (name, t) in tensors.iter().filter(|(n, _)| n.starts_with("blk.0.")).take(6) {
        // GGUF lists dimensions innermost first; candle shows them as a Rust shape.
        println!("  {name:<26} {:?} {:?}", t.shape().dims(), t.dtype());
    }
    // ANCHOR_END: file
    Ok(())
}

/// A Llama with 2 layers, 64 wide, 4 query heads sharing 2 key/value heads of width 16.
fn tiny_llama() -> LlamaConfig {
    LlamaConfig {
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
    }
}
