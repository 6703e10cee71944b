//! A LoRA adapter as llama.cpp and Ollama load it (`--lora`, `ADAPTER`): a GGUF file with
//! `general.type = adapter` and a `lora_a`/`lora_b` pair per adapted matrix.

use super::gguf::{ExportDtype, f32v, strv, to_qtensor};
use crate::lora::LoraAdapter;
use crate::model::LlamaConfig;
use crate::model::weights::permute_qk;
use anyhow::{Result, bail};
use candle_core::DType;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::Value;

/// The `adapter.lora.alpha` llama.cpp needs. It always scales by `alpha / r`, so an rsLoRA
/// adapter (PEFT scale `alpha / √r`) must carry `alpha · √r` to be applied at the same
/// strength. llama.cpp's own `convert_lora_to_gguf.py` misses this.
pub fn gguf_alpha(adapter: &LoraAdapter) -> f64 {
    let c = &adapter.config;
    if c.use_rslora { c.alpha * (c.r as f64).sqrt() } else { c.alpha }
}

/// GGUF tensors with their names, in the order written.
pub type NamedTensors = Vec<(String, QTensor)>;

/// Metadata and tensors of the GGUF adapter. A is `[r, in]` (stored with ne = [in, r]), B is
/// `[out, r]`; the rows of B for q/k are permuted like the base's q/k weights, since the
/// adapter is added to those permuted matrices.
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
        let g = module.gguf_name();
        let a = pair.a.as_tensor().to_dtype(DType::F32)?;
        let mut b = pair.b.as_tensor().to_dtype(DType::F32)?;
        // llama.cpp stores Q and K rows interleaved for its RoPE; B's rows are output rows.
        if let Some(heads) = module.qk_heads(cfg) {
            b = permute_qk(&b, heads)?;
        }
        for (suffix, t) in [("lora_a", a), ("lora_b", b)] {
            let tname = format!("blk.{layer}.{g}.weight.{suffix}");
            tensors.push((tname.clone(), to_qtensor(&tname, &t, ty)?));
        }
    }
    Ok((metadata, tensors))
}
