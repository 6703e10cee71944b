//! The tensors of a merged model GGUF: the base weights with `scale·B·A` added, under
//! llama.cpp's names and in its Q/K row order.

use super::gguf::{ExportDtype, tensor_type, to_qtensor};
use crate::model::config::RopeScaling;
use crate::model::rope::llama3_factors;
use crate::model::weights::{gguf_name_from_hf, permute_qk};
use crate::model::{Llama, LlamaConfig};
use anyhow::{Context, Result};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Tensor};

/// Every tensor of `model` (whose adapter, if any, is already merged) as GGUF tensors.
pub fn merged_tensors(model: &Llama, dtype: ExportDtype) -> Result<Vec<(String, QTensor)>> {
    let cfg = &model.config;
    let mut out = Vec::new();
    // llama3 RoPE scaling travels as per-frequency divisors, not as config keys.
    let factors = match &cfg.rope_scaling {
        RopeScaling::Factors(f) => Some(f.clone()),
        RopeScaling::Llama3(_) => llama3_factors(cfg),
        RopeScaling::None => None,
    };
    if let Some(f) = factors {
        let t = Tensor::new(f.as_slice(), model.device())?;
        out.push(("rope_freqs.weight".to_string(), to_qtensor("rope_freqs.weight", &t, GgmlDType::F32)?));
    }
    for (hf, tensor) in model.named_weights()? {
        let (name, t) = llama_cpp_tensor(&hf, &tensor, cfg)?;
        let ty = tensor_type(&t, dtype);
        out.push((name.clone(), to_qtensor(&name, &t, ty)?));
    }
    Ok(out)
}

// ANCHOR: llama_cpp_tensor
/// A weight under llama.cpp's name and in its row order. The model holds q and k in Hugging
/// Face's order (rotate-half RoPE; the loader undoes the permutation of a GGUF base), and
/// llama.cpp rotates interleaved pairs, so every GGUF written gets their rows permuted.
pub fn llama_cpp_tensor(hf: &str, tensor: &Tensor, cfg: &LlamaConfig) -> Result<(String, Tensor)> {
    let name = gguf_name_from_hf(hf).with_context(|| format!("no GGUF name for tensor {hf}"))?;
    let t = tensor.to_dtype(DType::F32)?;
    let t = if name.ends_with("attn_q.weight") {
        permute_qk(&t, cfg.num_attention_heads)?
    } else if name.ends_with("attn_k.weight") {
        permute_qk(&t, cfg.num_key_value_heads)?
    } else {
        t
    };
    Ok((name, t))
}
// ANCHOR_END: llama_cpp_tensor
