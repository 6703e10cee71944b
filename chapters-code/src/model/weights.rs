//! Loading a checkpoint into Hugging Face names and layout, whatever the file format.
//!
//! Everything downstream (the model, LoRA, PEFT import/export) speaks one convention: HF
//! tensor names (`model.layers.0.self_attn.q_proj.weight`), `[out, in]` matrices and
//! half-split RoPE. GGUF files are translated on load: names mapped, quantized blocks
//! dequantized, and the Q/K rows un-permuted (llama.cpp stores them for interleaved RoPE).

use super::config::{HfConfig, LlamaConfig, config_from_gguf};
use super::projection::Projection;
use anyhow::{Context, Result, bail};
use candle_core::quantized::{GgmlDType, QTensor, ggml_file::qtensor_from_ggml, gguf_file};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why pickle checkpoints are refused, for the error messages.
pub const ONLY_SAFE_FORMATS: &str = "lorakit loads only safetensors and GGUF files, never pickle \
     (unpickling can run arbitrary code); convert it with safetensors or llama.cpp first";

/// What a file that is not GGUF starts as, if it is a PyTorch checkpoint: a raw pickle
/// (`0x80` + protocol 2..=5) or `torch.save`'s zip archive around one.
fn pickle_kind<R: Read + Seek>(file: &mut R) -> Option<&'static str> {
    let mut head = [0u8; 4];
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_exact(&mut head).ok()?;
    match head {
        [0x80, 2..=5, ..] => Some("a pickle file (PyTorch .bin/.pt)"),
        [b'P', b'K', 3, 4] => Some("a zip archive (a PyTorch .pt/.bin checkpoint holds a pickle)"),
        _ => None,
    }
}

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

/// Projection weights kept in a block type instead of f32, by HF name (see
/// [`Checkpoint::load_with_gguf_header_in`]).
pub type Blocks = HashMap<String, Arc<QTensor>>;

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
    let gguf = ["attn_norm", "ffn_norm"]
        .into_iter()
        .chain(Projection::ALL.map(Projection::gguf_name))
        .find(|g| gguf_to_hf_module(g).as_deref() == Some(module))?;
    Some(format!("blk.{layer}.{gguf}.weight"))
}

/// `attn_q` → `self_attn.q_proj` and so on, for the per-layer tensors.
pub fn gguf_to_hf_module(gguf: &str) -> Option<String> {
    match gguf {
        "attn_norm" => Some("input_layernorm".into()),
        "ffn_norm" => Some("post_attention_layernorm".into()),
        _ => Projection::from_gguf(gguf).map(|p| format!("{}.{}", p.group(), p.name())),
    }
}

/// The inverse of [`gguf_to_hf_module`] for the seven LoRA target modules.
pub fn hf_module_to_gguf(module: &str) -> Option<&'static str> {
    Projection::from_name(module).map(Projection::gguf_name)
}

// ANCHOR: permute_qk
/// llama.cpp's Q/K row permutation (HF rotate-half → interleaved pairs), as in
/// `convert_hf_to_gguf.py`: `w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2)`.
pub fn permute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    w.reshape((n_head, 2, rows / n_head / 2, cols))?.transpose(1, 2)?.contiguous()?.reshape((rows, cols))
}
// ANCHOR_END: permute_qk

/// The inverse of [`permute_qk`].
pub fn unpermute_qk(w: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    w.reshape((n_head, rows / n_head / 2, 2, cols))?.transpose(1, 2)?.contiguous()?.reshape((rows, cols))
}

/// [`unpermute_qk`] on blocks: each row is whole blocks, so moving rows moves bytes, and the
/// file's blocks stay exactly as they are.
pub fn unpermute_qk_blocks(q: &QTensor, n_head: usize) -> candle_core::Result<QTensor> {
    let (rows, cols) = q.shape().dims2()?;
    let index = Tensor::arange(0u32, rows as u32, &Device::Cpu)?.to_dtype(DType::F32)?.reshape((rows, 1))?;
    let order: Vec<f32> = unpermute_qk(&index, n_head)?.flatten_all()?.to_vec1()?;
    let data = q.data()?;
    let row_bytes = data.len() / rows;
    let mut out = Vec::with_capacity(data.len());
    for src in order {
        out.extend_from_slice(&data[src as usize * row_bytes..][..row_bytes]);
    }
    qtensor_from_ggml(q.dtype(), &out, vec![rows, cols], &Device::Cpu)
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
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Self::read_gguf(&mut file, path, dtype, dev)
    }

    /// [`Checkpoint::load`], also returning a GGUF file's header (metadata and tensor index), so
    /// that the tokenizer and an export read it from memory rather than parse the file again.
    pub fn load_with_gguf_header(
        path: &Path,
        dtype: DType,
        dev: &Device,
    ) -> Result<(Self, Option<gguf_file::Content>)> {
        if !path.is_file() {
            return Ok((Self::load(path, dtype, dev)?, None));
        }
        let (ckpt, header, _) = Self::load_with_gguf_header_in(path, dtype, dev, None)?;
        Ok((ckpt, header))
    }

    /// [`Checkpoint::load_with_gguf_header`] with the seven projections of every layer of a
    /// GGUF file kept in `blocks` (the returned [`Blocks`], not in `tensors`): for training on
    /// a quantized base without an f32 copy of the model ever in memory. A projection already
    /// in that type keeps the file's own blocks; another is dequantized and quantized one
    /// tensor at a time. An HF directory loads as usual (no blocks).
    pub fn load_with_gguf_header_in(
        path: &Path,
        dtype: DType,
        dev: &Device,
        blocks: Option<GgmlDType>,
    ) -> Result<(Self, Option<gguf_file::Content>, Blocks)> {
        if !path.is_file() {
            return Ok((Self::load(path, dtype, dev)?, None, Blocks::new()));
        }
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let (ckpt, header, kept) = Self::read_gguf_with_header(&mut file, path, dtype, dev, blocks)?;
        Ok((ckpt, Some(header), kept))
    }

    /// [`Checkpoint::load_gguf`] from any reader (e.g. bytes in memory); `path` names the
    /// source in errors and in [`Format::Gguf`].
    pub fn read_gguf<R: Read + Seek>(file: &mut R, path: &Path, dtype: DType, dev: &Device) -> Result<Self> {
        Ok(Self::read_gguf_with_header(file, path, dtype, dev, None)?.0)
    }

    fn read_gguf_with_header<R: Read + Seek>(
        file: &mut R,
        path: &Path,
        dtype: DType,
        dev: &Device,
        blocks: Option<GgmlDType>,
    ) -> Result<(Self, gguf_file::Content, Blocks)> {
        let origin = path.display().to_string();
        // Every error names the file: the checks below do, and anything they miss (a bare
        // candle error) gets the name here rather than reaching the user without it.
        Self::read_gguf_checked(file, path, dtype, dev, blocks).map_err(|e| {
            if format!("{e:#}").contains(&origin) {
                e
            } else {
                e.context(format!("{origin}: cannot load this GGUF file"))
            }
        })
    }

    fn read_gguf_checked<R: Read + Seek>(
        file: &mut R,
        path: &Path,
        dtype: DType,
        dev: &Device,
        keep: Option<GgmlDType>,
    ) -> Result<(Self, gguf_file::Content, Blocks)> {
        let origin = path.display().to_string();
        let content = match gguf_file::Content::read(file) {
            Ok(content) => content,
            Err(e) => match pickle_kind(file) {
                Some(kind) => bail!("{origin}: {kind}; {ONLY_SAFE_FORMATS}"),
                None => bail!("{origin}: not a readable GGUF file: {e}"),
            },
        };
        // candle reads a tensor by viewing its bytes as blocks: an empty one (a dangling,
        // unaligned pointer) or a byte size that overflows must not get that far.
        for (name, info) in &content.tensor_infos {
            let dims = info.shape.dims();
            let (block, block_bytes) = (info.ggml_dtype.block_size(), info.ggml_dtype.type_size());
            let elems = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            match elems.and_then(|n| (n / block).checked_mul(block_bytes).map(|_| n)) {
                Some(0) => bail!("{origin}: tensor {name} has no elements (shape {dims:?})"),
                None => bail!("{origin}: tensor {name} has an impossible shape {dims:?}"),
                Some(_) => {}
            }
        }
        let read = |file: &mut R, name: &str| -> Result<Tensor> {
            let q = content
                .tensor(file, name, &Device::Cpu)
                .map_err(|e| anyhow::anyhow!("{origin}: tensor {name}: {e}"))?;
            let t = q.dequantize(dev).map_err(|e| anyhow::anyhow!("{origin}: tensor {name}: {e}"))?;
            Ok(t)
        };
        let rope_freqs = if content.tensor_infos.contains_key("rope_freqs.weight") {
            let t = read(file, "rope_freqs.weight")?;
            let freqs = t.to_dtype(DType::F32).and_then(|t| t.to_vec1::<f32>()).map_err(|e| {
                anyhow::anyhow!(
                    "{origin}: tensor rope_freqs.weight has shape {:?}, expected 1 dimension: {e}",
                    t.dims()
                )
            })?;
            Some(freqs)
        } else {
            None
        };
        let embd = content
            .tensor_infos
            .get("token_embd.weight")
            .with_context(|| format!("{origin}: tensor token_embd.weight is missing"))?;
        let &[vocab_rows, _] = embd.shape.dims() else {
            bail!("{origin}: tensor token_embd.weight has shape {:?}, expected 2 dimensions", embd.shape.dims())
        };
        let has_output = content.tensor_infos.contains_key("output.weight");
        let config = config_from_gguf(&content, &origin, rope_freqs, has_output, vocab_rows)?;

        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let mut tensors = HashMap::new();
        let mut kept = Blocks::new();
        for name in names {
            if name == "rope_freqs.weight" {
                continue;
            }
            let hf = hf_name_from_gguf(name).with_context(|| format!("{origin}: unexpected tensor {name}"))?;
            // A q/k tensor of the wrong size cannot be un-permuted: say which one it is here,
            // before the shape check below would.
            let bad = |e: candle_core::Error| anyhow::anyhow!("{origin}: tensor {name} ({hf}): {e}");
            let projection =
                name.strip_prefix("blk.").and_then(|rest| rest.split('.').nth(1)).and_then(Projection::from_gguf);
            let heads = match projection {
                Some(Projection::Q) => Some(config.num_attention_heads),
                Some(Projection::K) => Some(config.num_key_value_heads),
                _ => None,
            };
            let keep_as = keep.filter(|_| projection.is_some());
            if let Some(want) = keep_as
                && content.tensor_infos[name].ggml_dtype == want
            {
                // Already in the wanted type: the file's own blocks, moved but never changed.
                let q = content.tensor(file, name, &Device::Cpu).map_err(bad)?;
                let q = match heads {
                    Some(h) => unpermute_qk_blocks(&q, h).map_err(bad)?,
                    None => q,
                };
                kept.insert(hf, Arc::new(q));
                continue;
            }
            let mut t = read(file, name)?;
            if let Some(h) = heads {
                t = unpermute_qk(&t, h).map_err(bad)?;
            }
            match keep_as {
                // One tensor in f32 at a time, then only its blocks.
                Some(want) => {
                    let q = QTensor::quantize(&t.to_dtype(DType::F32).map_err(bad)?, want).with_context(|| {
                        format!(
                            "{origin}: tensor {name} ({hf}) cannot be kept in {want:?} blocks of {} values (q8_0, q4_0 and q4_1 use 32)",
                            want.block_size()
                        )
                    })?;
                    kept.insert(hf, Arc::new(q));
                }
                None => {
                    tensors.insert(hf.clone(), t.to_dtype(dtype).map_err(bad)?);
                }
            }
        }
        let ckpt = Self { config, tensors, format: Format::Gguf { path: path.to_path_buf() } };
        ckpt.check_with(&origin, &kept)?;
        Ok((ckpt, content, kept))
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
            let pickles = ["pytorch_model.bin", "model.bin", "model.pt", "model.pth"];
            match pickles.iter().find(|p| dir.join(p).exists()) {
                Some(p) => bail!("{origin}: no *.safetensors weights found, only {p} (pickle); {ONLY_SAFE_FORMATS}"),
                None => bail!("{origin}: no *.safetensors weights found"),
            }
        }
        let mut tensors = HashMap::new();
        for f in &files {
            let loaded = candle_core::safetensors::load(f, dev).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            for (name, t) in loaded {
                tensors.insert(name, t.to_dtype(dtype)?);
            }
        }
        if config.tie_word_embeddings {
            tensors.remove("lm_head.weight");
        }
        let ckpt = Self { config, tensors, format: Format::HfDir { dir: dir.to_path_buf() } };
        ckpt.check_with(&origin, &Blocks::new())?;
        Ok(ckpt)
    }

    /// Every tensor the model needs is present with the shape the config implies.
    fn check_with(&self, origin: &str, blocks: &Blocks) -> Result<()> {
        let c = &self.config;
        let (h, v) = (c.hidden_size, c.vocab_size);
        // A GGUF reader knows the file's own names: give those, with ours in brackets.
        let shown = |name: &str| match gguf_name_from_hf(name) {
            Some(g) if origin.ends_with(".gguf") => format!("{g} ({name})"),
            _ => name.to_string(),
        };
        let expect = |name: &str, shape: &[usize]| -> Result<()> {
            let dims = match (self.tensors.get(name), blocks.get(name)) {
                (Some(t), _) => t.dims(),
                (None, Some(q)) => q.shape().dims(),
                (None, None) => bail!("{origin}: tensor {} is missing", shown(name)),
            };
            if dims != shape {
                bail!("{origin}: tensor {} has shape {dims:?}, expected {shape:?}", shown(name))
            }
            Ok(())
        };
        expect("model.embed_tokens.weight", &[v, h])?;
        expect("model.norm.weight", &[h])?;
        if !c.tie_word_embeddings {
            expect("lm_head.weight", &[v, h])?;
        }
        // Layer by layer, so that a header claiming billions of layers fails at the first
        // missing one instead of listing them all first (found by fuzzing).
        for l in 0..c.num_hidden_layers {
            let p = format!("model.layers.{l}");
            expect(&format!("{p}.input_layernorm.weight"), &[h])?;
            expect(&format!("{p}.post_attention_layernorm.weight"), &[h])?;
            for proj in Projection::ALL {
                // Saturated sizes for untrusted header values (see `shape`).
                let (fan_in, fan_out) = proj.shape(c);
                expect(&format!("{}.weight", proj.hf_path(l)), &[fan_out, fan_in])?;
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).with_context(|| format!("tensor {name} is missing"))
    }
}
