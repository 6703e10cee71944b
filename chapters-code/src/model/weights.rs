//! Loading a checkpoint into Hugging Face names and layout, whatever the file format.
//!
//! Everything downstream (the model, LoRA, PEFT import/export) speaks one convention: HF
//! tensor names (`model.layers.0.self_attn.q_proj.weight`), `[out, in]` matrices and
//! half-split RoPE. GGUF files are translated on load: names mapped, quantized blocks
//! dequantized, and the Q/K rows un-permuted (llama.cpp stores them for interleaved RoPE).

use super::config::{HfConfig, LlamaConfig, config_from_gguf};
use anyhow::{Context, Result, bail};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a checkpoint came from; kept for exports that copy metadata (tokenizer, template).
#[derive(Debug, Clone)]
pub enum Format {
    Gguf { path: PathBuf },
    HfDir { dir: PathBuf },
}

/// A loaded base model: its config and its tensors, by HF name.
pub struct Checkpoint {
    pub config: LlamaConfig,
    pub tensors: HashMap<String, Tensor>,
    pub format: Format,
}

/// HF name of a GGUF tensor (`blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_name_from_gguf(name: &str) -> Option<String> {
    let fixed = match name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let module = gguf_to_hf_module(tail.strip_suffix(".weight")?)?;
    Some(format!("model.layers.{layer}.{module}.weight"))
}

/// GGUF name of an HF tensor: the inverse of [`hf_name_from_gguf`].
pub fn gguf_name_from_hf(name: &str) -> Option<String> {
    let fixed = match name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let module = tail.strip_suffix(".weight")?;
    let gguf = ["attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        .into_iter()
        .find(|g| gguf_to_hf_module(g) == Some(module))?;
    Some(format!("blk.{layer}.{gguf}.weight"))
}

/// `attn_q` → `self_attn.q_proj` and so on, for the per-layer tensors.
pub fn gguf_to_hf_module(gguf: &str) -> Option<&'static str> {
    Some(match gguf {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    })
}

/// The inverse of [`gguf_to_hf_module`] for the seven LoRA target modules.
pub fn hf_module_to_gguf(module: &str) -> Option<&'static str> {
    Some(match module {
        "q_proj" => "attn_q",
        "k_proj" => "attn_k",
        "v_proj" => "attn_v",
        "o_proj" => "attn_output",
        "gate_proj" => "ffn_gate",
        "up_proj" => "ffn_up",
        "down_proj" => "ffn_down",
        _ => return None,
    })
}

/// llama.cpp's Q/K row permutation (HF rotate-half → interleaved pairs), as in
/// `convert_hf_to_gguf.py`: `w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)`.
pub fn permute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    w.reshape((n_head, 2, rows / n_head / 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

/// The inverse of [`permute_qk`].
pub fn unpermute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    w.reshape((n_head, rows / n_head / 2, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))
}

impl Checkpoint {
    /// Load a `.gguf` file or an HF directory (`config.json` + `*.safetensors`).
    pub fn load(path: &Path, dtype: DType, dev: &Device) -> Result<Self> {
        if path.is_dir() {
            Self::load_hf_dir(path, dtype, dev)
        } else if path.is_file() {
            Self::load_gguf(path, dtype, dev)
        } else {
            bail!("model path {} does not exist", path.display())
        }
    }

    pub fn load_gguf(path: &Path, dtype: DType, dev: &Device) -> Result<Self> {
        let origin = path.display().to_string();
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot open {origin}"))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| anyhow::anyhow!("{origin}: not a readable GGUF file: {e}"))?;
        let mut read = |name: &str| -> Result<Tensor> {
            let q = content
                .tensor(&mut file, name, &Device::Cpu)
                .map_err(|e| anyhow::anyhow!("{origin}: tensor {name}: {e}"))?;
            let t = q
                .dequantize(dev)
                .map_err(|e| anyhow::anyhow!("{origin}: tensor {name}: {e}"))?;
            Ok(t)
        };
        let rope_freqs = if content.tensor_infos.contains_key("rope_freqs.weight") {
            Some(read("rope_freqs.weight")?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
        } else {
            None
        };
        let embd = content
            .tensor_infos
            .get("token_embd.weight")
            .with_context(|| format!("{origin}: tensor token_embd.weight is missing"))?;
        let vocab_rows = embd.shape.dims()[0];
        let has_output = content.tensor_infos.contains_key("output.weight");
        let config = config_from_gguf(&content, &origin, rope_freqs, has_output, vocab_rows)?;

        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let mut tensors = HashMap::new();
        for name in names {
            if name == "rope_freqs.weight" {
                continue;
            }
            let hf = hf_name_from_gguf(name)
                .with_context(|| format!("{origin}: unexpected tensor {name}"))?;
            let mut t = read(name)?;
            if name.ends_with("attn_q.weight") {
                t = unpermute_qk(&t, config.num_attention_heads)?;
            } else if name.ends_with("attn_k.weight") {
                t = unpermute_qk(&t, config.num_key_value_heads)?;
            }
            tensors.insert(hf, t.to_dtype(dtype)?);
        }
        let ckpt = Self { config, tensors, format: Format::Gguf { path: path.to_path_buf() } };
        ckpt.check(&origin)?;
        Ok(ckpt)
    }

    pub fn load_hf_dir(dir: &Path, dtype: DType, dev: &Device) -> Result<Self> {
        let origin = dir.display().to_string();
        let cfg_path = dir.join("config.json");
        let config = HfConfig::from_file(&cfg_path)?.into_config(&cfg_path.display().to_string())?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {origin}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{origin}: no *.safetensors weights found")
        }
        let mut tensors = HashMap::new();
        for f in &files {
            let loaded = candle_core::safetensors::load(f, dev)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            for (name, t) in loaded {
                tensors.insert(name, t.to_dtype(dtype)?);
            }
        }
        if config.tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        let ckpt = Self { config, tensors, format: Format::HfDir { dir: dir.to_path_buf() } };
        ckpt.check(&origin)?;
        Ok(ckpt)
    }

    /// Every tensor the model needs is present with the shape the config implies.
    fn check(&self, origin: &str) -> Result<()> {
        let c = &self.config;
        let (h, f, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
        let q = c.num_attention_heads * c.head_dim;
        let kv = c.num_key_value_heads * c.head_dim;
        let mut expected: Vec<(String, Vec<usize>)> = vec![
            ("model.embed_tokens.weight".into(), vec![v, h]),
            ("model.norm.weight".into(), vec![h]),
        ];
        if !c.tie_word_embeddings {
            expected.push(("lm_head.weight".into(), vec![v, h]));
        }
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            expected.extend([
                (format!("{p}.input_layernorm.weight"), vec![h]),
                (format!("{p}.post_attention_layernorm.weight"), vec![h]),
                (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
                (format!("{p}.mlp.gate_proj.weight"), vec![f, h]),
                (format!("{p}.mlp.up_proj.weight"), vec![f, h]),
                (format!("{p}.mlp.down_proj.weight"), vec![h, f]),
            ]);
        }
        // A GGUF reader knows the file's own names: give those, with ours in brackets.
        let shown = |name: &str| match gguf_name_from_hf(name) {
            Some(g) if origin.ends_with(".gguf") => format!("{g} ({name})"),
            _ => name.to_string(),
        };
        for (name, shape) in expected {
            let t = self
                .tensors
                .get(&name)
                .with_context(|| format!("{origin}: tensor {} is missing", shown(&name)))?;
            if t.dims() != shape.as_slice() {
                bail!("{origin}: tensor {} has shape {:?}, expected {shape:?}", shown(&name), t.dims())
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).with_context(|| format!("tensor {name} is missing"))
    }
}
