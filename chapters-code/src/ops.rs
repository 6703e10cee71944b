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
/// the input gradient `g · w`, never the (unused) weight gradient. A `w` that is being
/// trained (a `Var`) gets its gradient too.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    // One (tokens, in) × (in, out) GEMM rather than a batched one.
    let dims = x.dims().to_vec();
    let Some((last, lead)) = dims.split_last() else {
        candle_core::bail!("frozen_linear: scalar input")
    };
    let rows: usize = lead.iter().product();
    let mut out_dims = lead.to_vec();
    out_dims.push(w.dim(0)?);
    if w.track_op() {
        // The weight itself is trained (full fine-tuning): candle's matmul backward
        // gives both gradients.
        return x.reshape((rows, *last))?.matmul(&w.t()?)?.reshape(out_dims);
    }
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

/// Mean causal-LM cross-entropy of `logits` (n, vocab) against `labels` (n), where label
/// -100 is ignored (PyTorch's `ignore_index`). Averaged over the counted labels of the
/// whole batch, as `F.cross_entropy(..., reduction="mean")`. Returns `(loss, n_counted)`.
///
/// Fused, in one pass over each row: the log-sum-exp and the picked logit forward, and
/// `(softmax − onehot) · g / n` backward, without materialising a log-softmax of the whole
/// (49k-wide) vocabulary in the graph.
pub fn cross_entropy(logits: &Tensor, labels: &[i64]) -> Result<(Tensor, usize)> {
    let (n, vocab) = logits.dims2()?;
    if labels.len() != n {
        candle_core::bail!("cross_entropy: {} labels for {n} rows", labels.len())
    }
    if let Some(bad) = labels.iter().find(|&&t| t != -100 && !(0..vocab as i64).contains(&t)) {
        candle_core::bail!("cross_entropy: label {bad} is outside the vocabulary of {vocab}")
    }
    let count = labels.iter().filter(|&&t| t != -100).count();
    if count == 0 {
        return Ok((Tensor::zeros((), logits.dtype(), logits.device())?, 0));
    }
    let dtype = logits.dtype();
    let x = logits.detach();
    // The logits are copied out once; the backward pass reuses the same buffer.
    let rows = if dtype == DType::F64 {
        Rows::F64(x.flatten_all()?.to_vec1::<f64>()?)
    } else {
        Rows::F32(x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let labels = labels.to_vec();
    let (loss, lse) = match &rows {
        Rows::F64(v) => ce_forward(v, vocab, &labels),
        Rows::F32(v) => ce_forward(v, vocab, &labels),
    };
    let dev = logits.device().clone();
    let loss = Tensor::new(loss / count as f64, &dev)?.to_dtype(dtype)?;
    let grad_fn = move |g: &Tensor| -> Result<Tensor> {
        let scale = g.to_dtype(DType::F64)?.to_scalar::<f64>()? / count as f64;
        let grad = match &rows {
            Rows::F64(v) => Tensor::from_vec(ce_backward(v, vocab, &labels, &lse, scale), (n, vocab), &dev)?,
            Rows::F32(v) => Tensor::from_vec(ce_backward(v, vocab, &labels, &lse, scale), (n, vocab), &dev)?,
        };
        grad.to_dtype(dtype)
    };
    Ok((attach(logits, loss, grad_fn)?, count))
}

/// The logits as the cross-entropy works on them: f64 for f64 models, f32 otherwise.
enum Rows {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Sum over counted rows of (logsumexp − logit[target]), and each row's logsumexp.
fn ce_forward<T: Float>(x: &[T], vocab: usize, labels: &[i64]) -> (f64, Vec<f64>) {
    let mut total = 0.0;
    let mut lses = Vec::with_capacity(labels.len());
    for (row, &t) in x.chunks(vocab).zip(labels) {
        if t == -100 {
            lses.push(0.0);
            continue;
        }
        let max = row.iter().fold(T::NEG_INF, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| (v - max).exp().to_f64()).sum();
        let lse = max.to_f64() + sum.ln();
        total += lse - row[t as usize].to_f64();
        lses.push(lse);
    }
    (total, lses)
}

/// `(softmax(row) − onehot(target)) · scale` for counted rows, zero for ignored rows.
fn ce_backward<T: Float>(x: &[T], vocab: usize, labels: &[i64], lse: &[f64], scale: f64) -> Vec<T> {
    let mut out = vec![T::ZERO; x.len()];
    for (((row, o), &t), &l) in x.chunks(vocab).zip(out.chunks_mut(vocab)).zip(labels).zip(lse) {
        if t == -100 {
            continue;
        }
        let (l, s) = (T::from_f64(l), T::from_f64(scale));
        for (o, &v) in o.iter_mut().zip(row) {
            *o = (v - l).exp() * s;
        }
        o[t as usize] = o[t as usize] - s;
    }
    out
}

/// The two float types the fused cross-entropy runs in.
trait Float: Copy + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> {
    const ZERO: Self;
    const NEG_INF: Self;
    fn exp(self) -> Self;
    fn max(self, o: Self) -> Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}
impl_float!(f32);
impl_float!(f64);

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
