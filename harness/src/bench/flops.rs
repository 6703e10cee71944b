//! The arithmetic a LoRA training step must do, for model-FLOPs utilisation (MFU).
//!
//! Counted are the matrix products of the model (2 FLOPs per multiply-add); element-wise
//! work (norms, RoPE, softmax, SiLU, AdamW) is left out, as MFU conventionally does.
//! A frozen weight needs no weight gradient, so its backward pass is one GEMM (the input
//! gradient), not the two of full training: the step costs 4·N FLOPs per token for the
//! frozen projections, not the usual 6·N. Both PyTorch and candle are measured against
//! this same count.

use lorakit::lora::LoraConfig;
use lorakit::model::LlamaConfig;
use lorakit::model::Projection;

/// FLOPs of one training step on `batch` rows of `seq` tokens, every next token scored.
pub fn train_step_flops(cfg: &LlamaConfig, lora: &LoraConfig, batch: usize, seq: usize) -> f64 {
    let tokens = (batch * seq) as f64;
    let (mut frozen, mut adapter) = (0.0, 0.0);
    for module in Projection::ALL {
        let (i, o) = module.shape(cfg);
        frozen += (i * o) as f64;
        if lora.targets(module) {
            adapter += (lora.r * (i + o)) as f64;
        }
    }
    let layers = cfg.num_hidden_layers as f64;
    // Forward + input gradient for frozen weights; forward + input + weight gradients for A, B.
    let projections = layers * tokens * (4.0 * frozen + 6.0 * adapter);
    // Q·Kᵀ and P·V over the full (seq × seq) square, forward (2 GEMMs) and backward (4).
    let width = (cfg.num_attention_heads * cfg.head_dim) as f64;
    let attention = layers * batch as f64 * 12.0 * (seq * seq) as f64 * width;
    // The vocabulary projection at every scored position (seq − 1 per row): forward + input gradient.
    let scored = (batch * seq.saturating_sub(1)) as f64;
    let head = 4.0 * scored * (cfg.vocab_size * cfg.hidden_size) as f64;
    projections + attention + head
}
