//! The tensors of a merged model GGUF: the base weights with `scale·B·A` added, under
//! llama.cpp's names and in its Q/K row order.

use super::gguf::{ExportDtype, tensor_type, to_qtensor};
use crate::model::Llama;
use crate::model::config::RopeScaling;
use crate::model::rope::llama3_factors;
use crate::model::weights::{gguf_name_from_hf, permute_qk};
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
    for (hf, tensor) in model.named_weights() {
        let name = gguf_name_from_hf(&hf).with_context(|| format!("no GGUF name for tensor {hf}"))?;
        let mut t = tensor.to_dtype(DType::F32)?;
        // llama.cpp rotates interleaved pairs; HF rotates halves: permute the Q/K rows.
        if name.ends_with("attn_q.weight") {
            t = permute_qk(&t, cfg.num_attention_heads)?;
        } else if name.ends_with("attn_k.weight") {
            t = permute_qk(&t, cfg.num_key_value_heads)?;
        }
        let ty = tensor_type(&t, dtype);
        out.push((name.clone(), to_qtensor(&name, &t, ty)?));
    }
    Ok(out)
}
