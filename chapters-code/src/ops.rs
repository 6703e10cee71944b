//! Differentiable building blocks for training on the CPU.
//!
//! candle's fused CPU kernels (`rms_norm`, `softmax_last_dim`, `rope`) are fast but have no
//! backward pass: inside a training graph they silently cut the gradient, so every LoRA
//! tensor upstream gets zero and the loss stays flat. candle's matmul backward also always
//! computes the *weight* gradient, which for the frozen base is wasted work (~40% of a step).
//!
//! The pattern here is "fast forward, analytic backward": compute the value with the fused
//! kernel on a detached input, then [`attach`] it to the graph with a hand-written gradient.
//! Each backward formula is checked against PyTorch's gradients in `tests/fixtures_train.rs`.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, D, DType, Layout, Result, Shape, Storage, Tensor};

type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;

/// A graph node whose value was computed outside the graph; `bwd` maps the gradient of the
/// value to the gradient of the single input.
struct Attach {
    value: Tensor,
    bwd: BackwardFn,
}

impl CustomOp1 for Attach {
    fn name(&self) -> &'static str {
        "attach"
    }

    fn cpu_fwd(&self, _s: &CpuStorage, _l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (storage, layout) = self.value.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            candle_core::bail!("attach: only CPU tensors are supported")
        };
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("attach: value must be contiguous".into()))?;
        let out = match cpu {
            CpuStorage::F32(v) => CpuStorage::F32(v[start..end].to_vec()),
            CpuStorage::F64(v) => CpuStorage::F64(v[start..end].to_vec()),
            CpuStorage::F16(v) => CpuStorage::F16(v[start..end].to_vec()),
            CpuStorage::BF16(v) => CpuStorage::BF16(v[start..end].to_vec()),
            other => candle_core::bail!("attach: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((self.bwd)(grad_res)?))
    }
}

/// Put `value` (computed from `x.detach()`) into `x`'s graph with the gradient rule `bwd`.
/// When `x` is not part of a training graph, `value` is returned as is (no copy).
pub fn attach(
    x: &Tensor,
    value: Tensor,
    bwd: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(value);
    }
    let value = value.contiguous()?;
    x.apply_op1(Attach { value, bwd: Box::new(bwd) })
}

/// `x · wᵀ` for a frozen weight `w` of shape (out, in): the backward pass returns only
/// the input gradient `g · w`, never the (unused) weight gradient.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    // One (tokens, in) × (in, out) GEMM rather than a batched one.
    let dims = x.dims().to_vec();
    let Some((last, lead)) = dims.split_last() else {
        candle_core::bail!("frozen_linear: scalar input")
    };
    let rows: usize = lead.iter().product();
    let mut out_dims = lead.to_vec();
    out_dims.push(w.dim(0)?);
    let y = x.detach().reshape((rows, *last))?.matmul(&w.t()?)?.reshape(out_dims)?;
    let w = w.clone();
    attach(x, y, move |g| {
        let (g_rows, out) = (g.elem_count() / w.dim(0)?, w.dim(0)?);
        g.reshape((g_rows, out))?.matmul(&w)?.reshape(dims.clone())
    })
}

/// RMSNorm, `x / sqrt(mean(x²) + eps) · w`, with a frozen weight `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let xd = x.detach().contiguous()?;
    let hidden = xd.dim(D::Minus1)? as f64;
    let inv_rms = move |xd: &Tensor| -> Result<Tensor> {
        ((xd.sqr()?.sum_keepdim(D::Minus1)? / hidden)? + eps)?.sqrt()?.recip()
    };
    let y = match xd.dtype() {
        // The fused kernel has no f64 version (f64 runs are for checking against references).
        DType::F64 => xd.broadcast_mul(&inv_rms(&xd)?)?.broadcast_mul(w)?,
        _ => candle_nn::ops::rms_norm(&xd, w, eps as f32)?,
    };
    if !x.track_op() {
        return Ok(y);
    }
    let w = w.clone();
    attach(x, y, move |g| {
        // With r = 1/sqrt(mean(x²)+eps), n = x·r and h = g·w:
        // dx = r · (h − n · mean(h·n)).
        let r = inv_rms(&xd)?;
        let n = xd.broadcast_mul(&r)?;
        let h = g.broadcast_mul(&w)?;
        let proj = ((&h * &n)?.sum_keepdim(D::Minus1)? / hidden)?;
        h.broadcast_sub(&n.broadcast_mul(&proj)?)?.broadcast_mul(&r)
    })
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    let yc = y.clone();
    // dx = y · (g − Σ g·y)
    attach(x, y, move |g| {
        let dot = (g * &yc)?.sum_keepdim(D::Minus1)?;
        yc.mul(&g.broadcast_sub(&dot)?)
    })
}

/// Rotary position embedding in the half-split ("rotate half") layout used by Hugging Face
/// checkpoints. `x` is (batch, heads, seq, head_dim); `cos`/`sin` are (seq, head_dim/2).
/// A rotation's transpose is the rotation by the opposite angle, so the backward pass is
/// the same kernel with `-sin`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let y = candle_nn::rotary_emb::rope(&x.detach().contiguous()?, cos, sin)?;
    let (cos, neg_sin) = (cos.clone(), sin.neg()?);
    attach(x, y, move |g| candle_nn::rotary_emb::rope(&g.contiguous()?, &cos, &neg_sin))
}

/// Mean causal-LM cross-entropy of `logits` (n, vocab) against `labels` (n) as i64, where
/// label -100 is ignored (PyTorch's `ignore_index`). Averaged over the counted labels of the
/// whole batch, as `F.cross_entropy(..., reduction="mean")`. Returns `(loss, n_counted)`.
///
/// Fused: the backward pass is `(softmax − onehot) / n` without keeping a log-softmax of
/// the full 49k-wide vocabulary in the graph.
pub fn cross_entropy(logits: &Tensor, labels: &[i64]) -> Result<(Tensor, usize)> {
    let (n, vocab) = logits.dims2()?;
    if labels.len() != n {
        candle_core::bail!("cross_entropy: {} labels for {n} rows", labels.len())
    }
    let rows: Vec<u32> = (0..n as u32).filter(|&i| labels[i as usize] != -100).collect();
    let targets: Vec<u32> = rows.iter().map(|&i| labels[i as usize] as u32).collect();
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("cross_entropy: label {bad} is outside the vocabulary of {vocab}")
    }
    let count = rows.len();
    if count == 0 {
        return Ok((Tensor::zeros((), logits.dtype(), logits.device())?, 0));
    }
    let dev = logits.device();
    let row_idx = Tensor::new(rows.as_slice(), dev)?;
    let tgt_idx = Tensor::new(targets.as_slice(), dev)?.unsqueeze(1)?;

    let ld = logits.detach();
    let counted = ld.index_select(&row_idx, 0)?; // (count, vocab)
    let max = counted.max_keepdim(D::Minus1)?;
    let shifted = counted.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?; // (count, 1)
    let picked = shifted.gather(&tgt_idx, D::Minus1)?;
    let loss = (lse - picked)?.sum_all()?.affine(1.0 / count as f64, 0.0)?;
    let probs_src = shifted; // kept for the backward pass
    let grad_fn = move |g: &Tensor| -> Result<Tensor> {
        // softmax of the counted rows, minus one at the target, scaled by g / count.
        let p = probs_src.exp()?;
        let p = p.broadcast_div(&p.sum_keepdim(D::Minus1)?)?;
        let onehot = Tensor::zeros(p.shape(), p.dtype(), p.device())?.scatter_add(
            &tgt_idx,
            &Tensor::ones((count, 1), p.dtype(), p.device())?,
            D::Minus1,
        )?;
        let d = ((p - onehot)?.broadcast_mul(g)? / count as f64)?;
        Tensor::zeros((n, vocab), d.dtype(), d.device())?.index_add(&row_idx, &d, 0)
    };
    Ok((attach(logits, loss, grad_fn)?, count))
}

/// Differentiable dropout with a mask from our own seeded RNG (`Device::Cpu` cannot be
/// seeded, so candle's dropout is not reproducible). `keep` holds 0/1 per element.
pub fn dropout_with_mask(x: &Tensor, keep: &Tensor, p: f64) -> Result<Tensor> {
    x.broadcast_mul(&(keep.to_dtype(x.dtype())? / (1.0 - p))?)
}

/// The floating dtype named in configs and CLI flags.
pub fn parse_dtype(s: &str) -> Option<DType> {
    match s {
        "f32" => Some(DType::F32),
        "f64" => Some(DType::F64),
        "f16" => Some(DType::F16),
        "bf16" => Some(DType::BF16),
        _ => None,
    }
}
