//! A LoRA adapter as llama.cpp and Ollama load it (`--lora`, `ADAPTER`): a GGUF file with
//! `general.type = adapter` and a `lora_a`/`lora_b` pair per adapted matrix.

use super::gguf::{ExportDtype, f32v, strv, to_qtensor};
use crate::lora::{LoraAdapter, LoraPair};
use crate::model::weights::permute_qk;
use crate::model::{LlamaConfig, Projection};
use anyhow::{Result, bail};
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Value;
use candle_core::{DType, Tensor};

// ANCHOR: gguf_alpha
/// The `adapter.lora.alpha` llama.cpp needs. It always scales by `alpha / r`, so an rsLoRA
/// adapter (PEFT scale `alpha / √r`) must carry `alpha · √r` to be applied at the same
/// strength. llama.cpp's own `convert_lora_to_gguf.py` misses this.
pub fn gguf_alpha(adapter: &LoraAdapter) -> f64 {
    let c = &adapter.config;
    if c.use_rslora { c.alpha * (c.r as f64).sqrt() } else { c.alpha }
}
// ANCHOR_END: gguf_alpha

/// GGUF tensors with their names, in the order written.
pub type NamedTensors = Vec<(String, QTensor)>;

/// Metadata and tensors of the GGUF adapter: a lora_a/lora_b pair per adapted matrix
/// ([`gguf_lora_pair`]), and no rank key (llama.cpp reads r from the shapes).
pub fn adapter_gguf(
    adapter: &LoraAdapter,
    cfg: &LlamaConfig,
    name: &str,
    dtype: ExportDtype,
) -> Result<(Vec<(String, Value)>, NamedTensors)> {
    let ty = match dtype {
        ExportDtype::F32 | ExportDtype::F16 => dtype.ggml(),
        other => {
            bail!("a GGUF adapter is written in f32 or f16, not {} (quantize the merged model instead)", other.name())
        }
    };
    let metadata = vec![
        ("general.architecture".to_string(), strv("llama")),
        ("general.type".into(), strv("adapter")),
        ("adapter.type".into(), strv("lora")),
        ("general.name".into(), strv(name)),
        ("adapter.lora.alpha".into(), f32v(gguf_alpha(adapter))),
        ("general.quantization_version".into(), Value::U32(2)),
    ];
    let mut tensors = Vec::new();
    for ((layer, module), pair) in adapter.layers() {
        for (tname, t) in gguf_lora_pair(layer, module, pair, cfg)? {
            tensors.push((tname.clone(), to_qtensor(&tname, &t, ty)?));
        }
    }
    Ok((metadata, tensors))
}

// ANCHOR: gguf_lora_pair
/// One adapted matrix as llama.cpp reads it: `blk.N.attn_q.weight.lora_a` holds A
/// (`[r, in]`), `….lora_b` holds B (`[out, r]`). Neither is transposed: GGUF lists a
/// tensor's dimensions innermost first, so a row-major `[r, in]` is stored as ne = [in, r],
/// the layout ggml multiplies with. Only B's rows of q and k are reordered, like those of
/// the base's q and k matrices the adapter is added to.
pub fn gguf_lora_pair(
    layer: usize,
    module: Projection,
    pair: &LoraPair,
    cfg: &LlamaConfig,
) -> Result<[(String, Tensor); 2]> {
    let name = |suffix: &str| format!("blk.{layer}.{}.weight.{suffix}", module.gguf_name());
    let a = pair.a.as_tensor().to_dtype(DType::F32)?;
    let mut b = pair.b.as_tensor().to_dtype(DType::F32)?;
    if let Some(heads) = module.qk_heads(cfg) {
        b = permute_qk(&b, heads)?;
    }
    Ok([(name("lora_a"), a), (name("lora_b"), b)])
}
// ANCHOR_END: gguf_lora_pair
