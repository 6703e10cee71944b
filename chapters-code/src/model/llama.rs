//! A Llama decoder you can read top to bottom, with a LoRA path on every projection.
//!
//! Shapes: `b` batch, `t` new tokens, `T` tokens in the cache after this step, `h` hidden
//! size, `nh`/`nkv` query/key-value heads, `d` head dim.

use super::config::LlamaConfig;
use super::projection::Projection;
use super::rope::Rope;
use super::weights::{Blocks, Checkpoint};
use crate::ops;
use anyhow::{Context, Result, bail};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::ops::Range;
use std::sync::Arc;

/// The LoRA branch of one projection: `scale · B(A(dropout(x)))`.
#[derive(Clone)]
pub struct LoraBranch {
    pub a: Tensor, // (r, in)
    pub b: Tensor, // (out, r)
    pub scale: f64,
    pub dropout: f64,
}

/// A frozen projection `W x` (W is (out, in)) with an optional LoRA branch.
#[derive(Clone)]
pub struct Linear {
    /// Empty once [`Llama::quantize`] has replaced it by its blocks.
    pub weight: Tensor,
    pub lora: Option<LoraBranch>,
    /// The weight in a block type, for inference (see [`Llama::quantize`]).
    quantized: Option<Quantized>,
}

/// A weight kept only in a block type: the kernel that multiplies in it, and the blocks.
#[derive(Clone)]
struct Quantized {
    matmul: Arc<QMatMul>,
    blocks: Arc<QTensor>,
}

impl Quantized {
    fn new(blocks: Arc<QTensor>) -> Result<Self> {
        Ok(Self { matmul: Arc::new(QMatMul::from_arc(blocks.clone())?), blocks })
    }

    /// `w` (named `name` in the error) quantized to `dtype`, whose blocks must tile its rows.
    fn quantize(w: &Tensor, name: &str, dtype: GgmlDType) -> Result<Self> {
        let (cols, block) = (w.dim(D::Minus1)?, dtype.block_size());
        if cols % block != 0 {
            bail!(
                "cannot quantize {name} to {dtype:?}: its rows of {cols} are not a multiple of the {block}-value block"
            )
        }
        Self::new(Arc::new(QTensor::quantize(&w.to_dtype(DType::F32)?, dtype)?))
    }
}

impl Linear {
    fn new(weight: Tensor) -> Self {
        Self { weight, lora: None, quantized: None }
    }

    /// The weight in full precision: the one held, or the blocks dequantized.
    pub fn full_weight(&self) -> Result<Tensor> {
        match &self.quantized {
            Some(q) => Ok(ops::FrozenWeight::full(&q.blocks)?),
            None => Ok(self.weight.clone()),
        }
    }

    // ANCHOR: linear_forward
    /// `W x + scale · B A x`: the whole idea of LoRA in one line (one fused graph node; see
    /// [`ops::lora_linear`] for the gradients).
    pub fn forward(&self, x: &Tensor, rng: &mut Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        match &self.quantized {
            Some(q) => self.forward_on(x, &q.blocks, Some(&q.matmul), rng),
            None => self.forward_on(x, &self.weight, None, rng),
        }
    }

    /// The product on the base weight `w`, held in f32 or in quantized blocks. A single row
    /// outside training (a decoding step) goes through the block kernel when there is one.
    fn forward_on(
        &self,
        x: &Tensor,
        w: &impl ops::FrozenWeight,
        block_kernel: Option<&QMatMul>,
        rng: &mut Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let training = ops::tracks(&[x]) || self.lora.as_ref().is_some_and(|l| ops::tracks(&[&l.a, &l.b]));
        if let Some(kernel) = block_kernel.filter(|_| decoding(x) && !training) {
            let base = kernel.forward(x)?;
            let Some(l) = &self.lora else { return Ok(base) };
            let down = (x.broadcast_matmul(&l.a.detach().t()?)? * l.scale)?;
            return Ok((base + down.broadcast_matmul(&l.b.detach().t()?)?)?);
        }
        let Some(l) = &self.lora else { return Ok(ops::frozen_linear(x, w)?) };
        let keep = match rng {
            Some(rng) if l.dropout > 0.0 => {
                let keep: Vec<f32> = (0..x.elem_count()).map(|_| f32::from(rng.random::<f64>() >= l.dropout)).collect();
                Some(Tensor::from_vec(keep, x.shape(), x.device())?)
            }
            _ => None,
        };
        let (a, b) = (ops::graph_input(&l.a), ops::graph_input(&l.b));
        Ok(ops::lora_linear(x, w, (&a, &b, l.scale), keep.as_ref().map(|k| (k, l.dropout)))?)
    }
    // ANCHOR_END: linear_forward

    /// Fold the branch into the weight: `W' = W + scale · B A` (exact same function, no
    /// extra latency at inference).
    pub fn merge(&mut self) -> Result<()> {
        if let Some(l) = self.lora.take() {
            let delta = (l.b.matmul(&l.a)? * l.scale)?.to_dtype(self.weight.dtype())?;
            self.weight = (&self.weight + delta)?;
        }
        Ok(())
    }
}

/// Whether `x` (…, in) is a single row: a decoding step. A quantized model multiplies those
/// in the block type, which reads a quarter of f32's bytes per weight (decoding is bound by
/// memory traffic); many rows at once (a prompt) go through the f32 GEMM on weights
/// dequantized for the product, which is faster there (measured on SmolLM2, 128-token prompt,
/// with f32 weights at hand: 880 vs 240 tokens/s).
fn decoding(x: &Tensor) -> bool {
    x.elem_count() == x.dims().last().copied().unwrap_or(0)
}

/// Per-layer key/value cache for generation.
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// Per row of a batch (empty: none), the key positions that hold filler: no real token
    /// attends to them.
    filler: Vec<Range<usize>>,
}

impl KvCache {
    pub fn new(n_layers: usize) -> Self {
        Self { layers: vec![None; n_layers], filler: Vec::new() }
    }
    /// A cache for a batch whose row b starts with `pads[b]` filler tokens (prompts of
    /// different lengths, left-aligned to end together). RoPE makes attention depend only on
    /// the distance between positions, so a row's real tokens give the same result wherever
    /// they start.
    pub fn padded(n_layers: usize, pads: Vec<usize>) -> Self {
        Self { layers: vec![None; n_layers], filler: pads.into_iter().map(|p| 0..p).collect() }
    }
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.as_ref()).map(|(k, _)| k.dim(2).unwrap_or(0)).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
}

impl Attention {
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        filler: &[Range<usize>],
        rng: &mut Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, d) = (self.n_head, self.n_kv_head, self.head_dim);
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            // (b, t, n·d) → (b, n, t, d)
            Ok(y.reshape((b, t, n, d))?.transpose(1, 2)?.contiguous()?)
        };
        let q = heads(self.q_proj.forward(x, rng)?, nh)?;
        let k = heads(self.k_proj.forward(x, rng)?, nkv)?;
        let v = heads(self.v_proj.forward(x, rng)?, nkv)?;
        let q = ops::rope(&q, cos, sin)?;
        let k = ops::rope(&k, cos, sin)?;

        let (k, v) = match cache {
            Some(slot) => {
                let kv = match slot.take() {
                    Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some(kv.clone());
                kv
            }
            None => (k, v),
        };
        // Causal, grouped-query attention in one graph node (see ops::attention).
        let out = if filler.iter().any(|r| !r.is_empty()) {
            ops::attention_padded(&q, &k, &v, filler)?
        } else {
            ops::attention(&q, &k, &v)?
        }; // (b, nh, t, d)
        let out = out.transpose(1, 2)?.reshape((b, t, nh * d))?;
        self.o_proj.forward(&out, rng)
    }
}

struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor, rng: &mut Option<&mut ChaCha8Rng>) -> Result<Tensor> {
        let gate = self.gate_proj.forward(x, rng)?;
        let up = self.up_proj.forward(x, rng)?;
        self.down_proj.forward(&ops::swiglu(&gate, &up)?, rng)
    }
}

struct Block {
    input_layernorm: Tensor,
    self_attn: Attention,
    post_attention_layernorm: Tensor,
    mlp: Mlp,
}

/// A Llama-family causal language model.
pub struct Llama {
    pub config: LlamaConfig,
    embed_tokens: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    lm_head: Option<Tensor>,
    /// The vocabulary projection quantized for inference (see [`Llama::quantize`]).
    quantized_head: Option<Arc<QMatMul>>,
    rope: Rope,
    dtype: DType,
    device: Device,
}

impl Llama {
    /// Build the model from a checkpoint (any format; see [`Checkpoint`]).
    pub fn new(ckpt: Checkpoint) -> Result<Self> {
        Self::with_blocks(ckpt, Blocks::new())
    }

    /// [`Llama::new`] with projections that arrive in blocks already (see
    /// [`Checkpoint::load_with_gguf_header_in`]): the model is then quantized, as after
    /// [`Llama::quantize`] to the blocks' type, without ever holding those weights in f32.
    pub fn with_blocks(ckpt: Checkpoint, mut kept: Blocks) -> Result<Self> {
        let Checkpoint { config, mut tensors, .. } = ckpt;
        let block_type = kept.values().next().map(|b| b.dtype());
        let mut take = |name: String| -> Result<Tensor> {
            tensors.remove(&name).with_context(|| format!("tensor {name} is missing"))
        };
        let embed_tokens = take("model.embed_tokens.weight".into())?;
        let (dtype, device) = (embed_tokens.dtype(), embed_tokens.device().clone());
        let mut blocks = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut lin = |m: Projection| -> Result<Linear> {
                let name = format!("{}.weight", m.hf_path(l));
                match kept.remove(&name) {
                    Some(b) => Ok(Linear {
                        weight: Tensor::zeros(0, dtype, &device)?,
                        lora: None,
                        quantized: Some(Quantized::new(b)?),
                    }),
                    None => Ok(Linear::new(take(name)?)),
                }
            };
            let self_attn = Attention {
                q_proj: lin(Projection::Q)?,
                k_proj: lin(Projection::K)?,
                v_proj: lin(Projection::V)?,
                o_proj: lin(Projection::O)?,
                n_head: config.num_attention_heads,
                n_kv_head: config.num_key_value_heads,
                head_dim: config.head_dim,
            };
            let mlp = Mlp {
                gate_proj: lin(Projection::Gate)?,
                up_proj: lin(Projection::Up)?,
                down_proj: lin(Projection::Down)?,
            };
            blocks.push(Block {
                input_layernorm: take(format!("{p}.input_layernorm.weight"))?,
                self_attn,
                post_attention_layernorm: take(format!("{p}.post_attention_layernorm.weight"))?,
                mlp,
            });
        }
        let norm = take("model.norm.weight".into())?;
        let lm_head = if config.tie_word_embeddings { None } else { Some(take("lm_head.weight".into())?) };
        let rope = Rope::new(&config);
        let mut model = Self { config, embed_tokens, blocks, norm, lm_head, quantized_head: None, rope, dtype, device };
        if let Some(t) = block_type {
            // All projections in blocks or none: a half-quantized model has no meaning here.
            for (l, block) in model.blocks.iter().enumerate() {
                for p in Projection::ALL {
                    if block.linear(p).quantized.as_ref().map(|q| q.blocks.dtype()) != Some(t) {
                        bail!("{} is not in {t:?} blocks like the other projections", p.hf_path(l));
                    }
                }
            }
            model.quantized_head =
                Some(Quantized::quantize(model.head_weight(), "the vocabulary projection", t)?.matmul);
        }
        Ok(model)
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Projection `p` of layer `layer`, e.g. to attach a LoRA branch (see
    /// [`crate::lora`]) or change its weight.
    pub fn projection_mut(&mut self, layer: usize, p: Projection) -> Result<&mut Linear> {
        let block = self.blocks.get_mut(layer).with_context(|| format!("no layer {layer}"))?;
        Ok(block.linear_mut(p))
    }

    /// Drop every LoRA branch (back to the base model).
    pub fn remove_adapter(&mut self) {
        for block in &mut self.blocks {
            for p in Projection::ALL {
                block.linear_mut(p).lora = None;
            }
        }
    }

    /// Merge the applied adapter into the base weights (`W + scale·BA`).
    pub fn merge_adapter(&mut self) -> Result<()> {
        self.refuse_if_quantized("merge an adapter into it")?;
        for block in &mut self.blocks {
            for p in Projection::ALL {
                block.linear_mut(p).merge()?;
            }
        }
        Ok(())
    }

    /// Quantize the seven projections of every layer and the vocabulary projection to
    /// `dtype` for inference (`lora generate --quantize`): each decoding step then multiplies
    /// in the block type, on about a quarter of the memory traffic of f32 for Q8_0, as
    /// llama.cpp and Ollama do. The projections' f32 weights are dropped, so the model takes
    /// about the file's size in memory; a prompt of many tokens dequantizes each weight for
    /// its product (see [`decoding`]). The embedding stays in f32 (it is looked up by row,
    /// and is the vocabulary projection's weight when tied). An applied adapter keeps
    /// working beside the quantized base; training and merging need the full-precision model.
    /// Quantizing an f32 copy of a Q8_0 file gives back the file's own blocks.
    pub fn quantize(&mut self, dtype: GgmlDType) -> Result<()> {
        self.refuse_if_quantized("quantize it again")?;
        let q = |w: &Tensor, name: &str| Quantized::quantize(w, name, dtype);
        // Every block first, so that a failure leaves the model as it was.
        let mut done = Vec::new();
        for (l, block) in self.blocks.iter().enumerate() {
            for p in Projection::ALL {
                done.push(q(&block.linear(p).weight, &p.hf_path(l))?);
            }
        }
        let head = q(self.head_weight(), "the vocabulary projection")?;
        let mut done = done.into_iter();
        for block in &mut self.blocks {
            for p in Projection::ALL {
                let lin = block.linear_mut(p);
                lin.weight = Tensor::zeros(0, lin.weight.dtype(), &self.device)?;
                lin.quantized = done.next();
            }
        }
        self.quantized_head = Some(head.matmul);
        // The f32 weights' pages go back to the system now, not at some later trim.
        crate::runtime::release_memory();
        Ok(())
    }

    /// Undo [`Llama::quantize`]: every projection back in f32, from its blocks (so with the
    /// quantization error in it). Training on this model and on the quantized one computes
    /// the same numbers; only the memory and the time differ.
    pub fn dequantize(&mut self) -> Result<()> {
        for block in &mut self.blocks {
            for p in Projection::ALL {
                let lin = block.linear_mut(p);
                if lin.quantized.is_some() {
                    lin.weight = lin.full_weight()?;
                    lin.quantized = None;
                }
            }
        }
        self.quantized_head = None;
        Ok(())
    }

    /// An error for operations that change or train the full-precision weights, which a
    /// quantized model no longer holds.
    pub(crate) fn refuse_if_quantized(&self, what: &str) -> Result<()> {
        if self.is_quantized() {
            bail!("this model is quantized for inference (--quantize): load it again without quantizing to {what}")
        }
        Ok(())
    }

    /// Whether [`Llama::quantize`] was applied.
    pub fn is_quantized(&self) -> bool {
        self.quantized_head.is_some()
    }

    /// The base weights by HF name (after any merge), e.g. for exporting a merged model; a
    /// quantized model's are its blocks dequantized.
    pub fn named_weights(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed_tokens.clone())];
        for (l, block) in self.blocks.iter().enumerate() {
            let p = format!("model.layers.{l}");
            out.push((format!("{p}.input_layernorm.weight"), block.input_layernorm.clone()));
            out.push((format!("{p}.post_attention_layernorm.weight"), block.post_attention_layernorm.clone()));
            for p in Projection::ALL {
                out.push((format!("{}.weight", p.hf_path(l)), block.linear(p).full_weight()?));
            }
        }
        out.push(("model.norm.weight".into(), self.norm.clone()));
        if let Some(head) = &self.lm_head {
            out.push(("lm_head.weight".into(), head.clone()));
        }
        Ok(out)
    }

    /// Final hidden states (after the last norm), (b, t, h).
    pub fn hidden_states(
        &self,
        ids: &Tensor,
        positions: &[usize],
        mut cache: Option<&mut KvCache>,
        mut rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if positions.len() != t {
            bail!("{} positions for {t} tokens", positions.len())
        }
        if let Ok(max) = ids.flatten_all()?.max(0)?.to_scalar::<u32>()
            && max as usize >= self.config.vocab_size
        {
            bail!("token id {max} is outside the vocabulary of {}", self.config.vocab_size)
        }
        let (cos, sin) = self.rope.cos_sin(positions, self.dtype, &self.device)?;
        let mut x = self.embed_tokens.index_select(&ids.flatten_all()?, 0)?.reshape((b, t, ()))?;
        let eps = self.config.rms_norm_eps;
        let filler = cache.as_ref().map(|c| c.filler.clone()).unwrap_or_default();
        if !filler.is_empty() && filler.len() != b {
            bail!("a cache padded for {} rows used with {b}", filler.len())
        }
        for (l, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| {
                if c.layers.len() < self.blocks.len() {
                    c.layers.resize(self.blocks.len(), None);
                }
                &mut c.layers[l]
            });
            let residual = x.clone();
            let h = ops::rms_norm(&x, &block.input_layernorm, eps)?;
            let h = block.self_attn.forward(&h, &cos, &sin, slot, &filler, &mut rng)?;
            x = (h + residual)?;
            let residual = x.clone();
            let h = ops::rms_norm(&x, &block.post_attention_layernorm, eps)?;
            let h = block.mlp.forward(&h, &mut rng)?;
            x = (h + residual)?;
        }
        Ok(ops::rms_norm(&x, &self.norm, eps)?)
    }

    /// Project hidden states to vocabulary logits (the tied embedding when there is no
    /// separate `lm_head`).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.quantized_head {
            Some(q) if decoding(hidden) && !ops::tracks(&[hidden]) => Ok(q.forward(hidden)?),
            _ => Ok(ops::frozen_linear(hidden, self.head_weight())?),
        }
    }

    /// The vocabulary projection's weight (vocab, hidden): `lm_head`, or the embedding when tied.
    pub fn head_weight(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }

    /// Logits for every position, (b, t, vocab), positions `0..t`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let positions: Vec<usize> = (0..t).collect();
        self.logits(&self.hidden_states(ids, &positions, None, None)?)
    }

    /// Logits for every position with explicit position ids.
    pub fn forward_at(&self, ids: &Tensor, positions: &[usize]) -> Result<Tensor> {
        self.logits(&self.hidden_states(ids, positions, None, None)?)
    }

    /// Logits of the last position only, (b, vocab), using and extending `cache`.
    pub fn forward_step(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let t = ids.dim(1)?;
        let start = cache.len();
        let positions: Vec<usize> = (start..start + t).collect();
        // Decoding never trains: no graph (a cached K/V would otherwise keep every earlier
        // step's graph alive).
        ops::no_grad(|| {
            let h = self.hidden_states(ids, &positions, Some(cache), None)?;
            let last = h.narrow(1, t - 1, 1)?.squeeze(1)?;
            self.logits(&last)
        })
    }

    /// A cache for a batch of prompts that all begin with the prompt cached in `prefix`
    /// (one row), so that prefix is computed once: row b gets the prefix's keys and values,
    /// then `pads[b]` filler positions, then its own tokens (fed next, left-padded to end
    /// together). Keys carry their position's RoPE rotation, and a rotation by p followed by
    /// one by q is one by p + q: rotating row b's prefix keys by `pads[b]` puts the prefix
    /// right before the row's own tokens, as in the prompt alone.
    pub fn share_prefix(&self, prefix: &KvCache, pads: &[usize]) -> Result<KvCache> {
        let n = prefix.len();
        // One rotation per row, the same in every layer.
        let rotations = pads
            .iter()
            .map(|&pad| self.rope.cos_sin(&vec![pad; n], self.dtype, &self.device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut layers = Vec::with_capacity(prefix.layers.len());
        for layer in &prefix.layers {
            let Some((k, v)) = layer else { bail!("the prefix cache is empty") };
            if k.dim(0)? != 1 {
                bail!("the prefix cache must hold one row (it holds {})", k.dim(0)?)
            }
            let rows = rotations
                .iter()
                .map(|(cos, sin)| ops::no_grad(|| ops::rope(k, cos, sin)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let v = v.broadcast_as((pads.len(), v.dim(1)?, n, v.dim(3)?))?.contiguous()?;
            layers.push(Some((Tensor::cat(&rows, 0)?, v)));
        }
        let filler = pads.iter().map(|&p| n..n + p).collect();
        Ok(KvCache { layers, filler })
    }

    /// The ids tensor for token ids.
    pub fn ids_tensor(&self, rows: &[Vec<u32>]) -> Result<Tensor> {
        let t = rows.first().map(|r| r.len()).unwrap_or(0);
        if rows.iter().any(|r| r.len() != t) {
            bail!("all rows of a batch must have the same length")
        }
        let flat: Vec<u32> = rows.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(flat, (rows.len(), t), &self.device)?)
    }
}

impl Block {
    fn linear(&self, p: Projection) -> &Linear {
        let (a, m) = (&self.self_attn, &self.mlp);
        match p {
            Projection::Q => &a.q_proj,
            Projection::K => &a.k_proj,
            Projection::V => &a.v_proj,
            Projection::O => &a.o_proj,
            Projection::Gate => &m.gate_proj,
            Projection::Up => &m.up_proj,
            Projection::Down => &m.down_proj,
        }
    }
    fn linear_mut(&mut self, p: Projection) -> &mut Linear {
        let (a, m) = (&mut self.self_attn, &mut self.mlp);
        match p {
            Projection::Q => &mut a.q_proj,
            Projection::K => &mut a.k_proj,
            Projection::V => &mut a.v_proj,
            Projection::O => &mut a.o_proj,
            Projection::Gate => &mut m.gate_proj,
            Projection::Up => &mut m.up_proj,
            Projection::Down => &mut m.down_proj,
        }
    }
}

/// Index of the maximum of each row of a (n, vocab) tensor.
pub fn argmax_rows(logits: &Tensor) -> Result<Vec<u32>> {
    Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
}
