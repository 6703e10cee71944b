//! Model hyper-parameters, read from a Hugging Face `config.json` or from GGUF metadata.
//!
//! Two types, as in candle: [`HfConfig`] mirrors `config.json`; [`LlamaConfig`] is the plain
//! config the model uses, whatever file it came from.

use anyhow::{Context, Result, bail};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Llama 3's frequency-dependent RoPE scaling (`rope_scaling.rope_type = "llama3"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

/// How RoPE frequencies are obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RopeScaling {
    /// `inv_freq[i] = theta^(-2i/d)`.
    None,
    /// The Llama 3 formula applied to the plain frequencies (HF checkpoints).
    Llama3(Llama3RopeScaling),
    /// Per-frequency divisors, as stored in a GGUF `rope_freqs.weight` tensor by llama.cpp.
    Factors(Vec<f32>),
}

/// What the Llama model needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl LlamaConfig {
    /// Number of parameters of the base model (embeddings counted once when tied).
    pub fn num_parameters(&self) -> usize {
        let (h, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim;
        let kv = self.num_key_value_heads * self.head_dim;
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * f + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * per_layer + h + head
    }

    /// (in, out) features of a target module such as `q_proj` or `down_proj`.
    pub fn module_shape(&self, module: &str) -> Option<(usize, usize)> {
        Some(super::Projection::from_name(module)?.shape(self))
    }

    fn validate(self, origin: &str) -> Result<Self> {
        let checks = [
            (self.hidden_size > 0, "hidden_size must be > 0"),
            (self.num_hidden_layers > 0, "num_hidden_layers must be > 0"),
            (self.num_attention_heads > 0, "num_attention_heads must be > 0"),
            (self.num_key_value_heads > 0, "num_key_value_heads must be > 0"),
            (self.head_dim > 0 && self.head_dim.is_multiple_of(2), "head_dim must be even and > 0"),
            (self.vocab_size > 0, "vocab_size must be > 0"),
            (
                self.num_attention_heads.is_multiple_of(self.num_key_value_heads.max(1)),
                "num_attention_heads must be a multiple of num_key_value_heads",
            ),
        ];
        for (ok, msg) in checks {
            if !ok {
                bail!("{origin}: {msg}")
            }
        }
        Ok(self)
    }
}

/// `config.json` of a Hugging Face Llama checkpoint (only the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct HfConfig {
    pub model_type: Option<String>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Legacy layout; transformers 5 writes `rope_parameters` instead.
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<serde_json::Value>,
    pub rope_parameters: Option<serde_json::Value>,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<serde_json::Value>,
    pub hidden_act: Option<String>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_pos() -> usize {
    2048
}

impl HfConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a Llama config", path.display()))
    }

    pub fn into_config(self, origin: &str) -> Result<LlamaConfig> {
        if let Some(mt) = &self.model_type
            && mt != "llama"
        {
            bail!("{origin}: model_type {mt:?} is not supported (only \"llama\")")
        }
        if let Some(act) = &self.hidden_act
            && act != "silu"
        {
            bail!("{origin}: hidden_act {act:?} is not supported (only \"silu\")")
        }
        if self.attention_bias || self.mlp_bias {
            bail!("{origin}: attention_bias/mlp_bias are not supported")
        }
        // transformers 5 moved rope settings under `rope_parameters`; hub files use the old keys.
        let params = self.rope_parameters.as_ref();
        let rope_theta = self
            .rope_theta
            .or_else(|| params.and_then(|p| p.get("rope_theta")).and_then(|v| v.as_f64()))
            .unwrap_or(10000.0);
        let scaling = self.rope_scaling.as_ref().or(params);
        let rope_scaling = match scaling {
            Some(s) => {
                let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(|v| v.as_str());
                match kind {
                    None | Some("default") => RopeScaling::None,
                    Some("llama3") => RopeScaling::Llama3(
                        serde_json::from_value(s.clone())
                            .with_context(|| format!("{origin}: bad llama3 rope_scaling"))?,
                    ),
                    Some(other) => bail!("{origin}: rope_scaling type {other:?} is not supported"),
                }
            }
            None => RopeScaling::None,
        };
        let eos_token_ids = match &self.eos_token_id {
            Some(serde_json::Value::Number(n)) => n.as_u64().map(|v| vec![v as u32]).unwrap_or_default(),
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_u64()).map(|v| v as u32).collect(),
            _ => vec![],
        };
        let heads = self.num_attention_heads;
        LlamaConfig {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(heads),
            head_dim: self.head_dim.unwrap_or(self.hidden_size / heads.max(1)),
            vocab_size: self.vocab_size,
            rms_norm_eps: self.rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings: self.max_position_embeddings,
            tie_word_embeddings: self.tie_word_embeddings,
            bos_token_id: self.bos_token_id,
            eos_token_ids,
        }
        .validate(origin)
    }
}

/// Read the `llama.*` hyper-parameters of a GGUF file. `rope_freqs` is the content of the
/// optional `rope_freqs.weight` tensor (llama3 scaling), `has_output` whether an untied
/// `output.weight` exists, `vocab_rows` the row count of `token_embd.weight`.
pub fn config_from_gguf(
    content: &gguf_file::Content,
    origin: &str,
    rope_freqs: Option<Vec<f32>>,
    has_output: bool,
    vocab_rows: usize,
) -> Result<LlamaConfig> {
    let md = &content.metadata;
    let arch = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .with_context(|| format!("{origin}: GGUF metadata key general.architecture is missing"))?;
    if arch != "llama" {
        bail!("{origin}: GGUF architecture {arch:?} is not supported (only \"llama\")")
    }
    let get_u = |key: &str| -> Result<usize> {
        let v = md.get(key).with_context(|| format!("{origin}: GGUF metadata key {key} is missing"))?;
        v.to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .or_else(|_| v.to_i32().map(|x| x as u64))
            .map(|x| x as usize)
            .map_err(|e| anyhow::anyhow!("{origin}: GGUF metadata key {key}: {e}"))
    };
    let get_f =
        |key: &str| -> Option<f64> { md.get(key).and_then(|v| v.to_f32().map(f64::from).or_else(|_| v.to_f64()).ok()) };
    let hidden = get_u("llama.embedding_length")?;
    let heads = get_u("llama.attention.head_count")?;
    let kv_heads = get_u("llama.attention.head_count_kv").unwrap_or(heads);
    let head_dim = get_u("llama.attention.key_length").unwrap_or(hidden / heads.max(1));
    let u32_key = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
    let eos: Vec<u32> = u32_key("tokenizer.ggml.eos_token_id").into_iter().collect();
    LlamaConfig {
        hidden_size: hidden,
        intermediate_size: get_u("llama.feed_forward_length")?,
        num_hidden_layers: get_u("llama.block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        vocab_size: vocab_rows,
        rms_norm_eps: get_f("llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        rope_theta: get_f("llama.rope.freq_base").unwrap_or(10000.0),
        rope_scaling: rope_freqs.map(RopeScaling::Factors).unwrap_or(RopeScaling::None),
        max_position_embeddings: get_u("llama.context_length").unwrap_or(2048),
        tie_word_embeddings: !has_output,
        bos_token_id: u32_key("tokenizer.ggml.bos_token_id"),
        eos_token_ids: eos,
    }
    .validate(origin)
}
