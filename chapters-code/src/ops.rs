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
use candle_core::quantized::QTensor;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Layout, Result, Shape, Storage, Tensor};
use std::cell::Cell;
use std::sync::{Arc, Mutex};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Run `f` without building a backward graph (evaluation, generation): the adapter's
/// tensors are `Var`s, so without this every forward pass would record a graph, and a KV
/// cache would keep the graph of every earlier decoding step alive.
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// False inside [`no_grad`].
pub fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Whether a graph node is needed for an op on these inputs.
pub fn tracks(inputs: &[&Tensor]) -> bool {
    grad_enabled() && inputs.iter().any(|t| t.track_op())
}

/// `t` as it enters a graph: itself while gradients are recorded, detached inside [`no_grad`].
pub fn graph_input(t: &Tensor) -> Tensor {
    if grad_enabled() { t.clone() } else { t.detach() }
}

type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;
type Grads2 = (Option<Tensor>, Option<Tensor>);
type Grads3 = (Option<Tensor>, Option<Tensor>, Option<Tensor>);
type BackwardFn2 = Box<dyn Fn(&Tensor) -> Result<Grads2> + Send + Sync>;
type BackwardFn3 = Box<dyn Fn(&Tensor) -> Result<Grads3> + Send + Sync>;

/// The forward value of an attached node, handed over once: the graph node owns a copy,
/// so the original is released instead of living as long as the graph (which would hold
/// every activation twice).
fn take_value(slot: &Mutex<Option<Tensor>>) -> Result<(CpuStorage, Shape)> {
    let value = slot
        .lock()
        .map_err(|_| candle_core::Error::Msg("attach: poisoned".into()))?
        .take()
        .ok_or_else(|| candle_core::Error::Msg("attach: the value was already used".into()))?;
    let (storage, layout) = value.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { candle_core::bail!("attach: only CPU tensors are supported") };
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

/// A graph node whose value was computed outside the graph; `bwd` maps the gradient of the
/// value to the gradient of the single input.
struct Attach {
    value: Mutex<Option<Tensor>>,
    bwd: BackwardFn,
}

impl CustomOp1 for Attach {
    fn name(&self) -> &'static str {
        "attach"
    }

    fn cpu_fwd(&self, _s: &CpuStorage, _l: &Layout) -> Result<(CpuStorage, Shape)> {
        take_value(&self.value)
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((self.bwd)(grad_res)?))
    }
}

/// [`Attach`] for a value computed from two inputs.
struct Attach2 {
    value: Mutex<Option<Tensor>>,
    bwd: BackwardFn2,
}

impl CustomOp2 for Attach2 {
    fn name(&self) -> &'static str {
        "attach2"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        take_value(&self.value)
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Grads2> {
        (self.bwd)(grad_res)
    }
}

/// [`Attach`] for a value computed from three inputs.
struct Attach3 {
    value: Mutex<Option<Tensor>>,
    bwd: BackwardFn3,
}

impl CustomOp3 for Attach3 {
    fn name(&self) -> &'static str {
        "attach3"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        take_value(&self.value)
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, _: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Grads3> {
        (self.bwd)(grad_res)
    }
}

/// Put `value` (computed from `x.detach()`) into `x`'s graph with the gradient rule `bwd`.
/// When `x` is not part of a training graph, `value` is returned as is (no copy).
pub fn attach(
    x: &Tensor,
    value: Tensor,
    bwd: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !tracks(&[x]) {
        return Ok(value);
    }
    let value = Mutex::new(Some(value.contiguous()?));
    x.apply_op1(Attach { value, bwd: Box::new(bwd) })
}

/// [`attach`] for a value computed from `x` and `y`; `bwd` returns both gradients (`None`
/// for an input that needs none).
pub fn attach2(
    (x, y): (&Tensor, &Tensor),
    value: Tensor,
    bwd: impl Fn(&Tensor) -> Result<Grads2> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !tracks(&[x, y]) {
        return Ok(value);
    }
    let value = Mutex::new(Some(value.contiguous()?));
    x.apply_op2(y, Attach2 { value, bwd: Box::new(bwd) })
}

/// [`attach`] for a value computed from three inputs.
pub fn attach3(
    (x, y, z): (&Tensor, &Tensor, &Tensor),
    value: Tensor,
    bwd: impl Fn(&Tensor) -> Result<Grads3> + Send + Sync + 'static,
) -> Result<Tensor> {
    if !tracks(&[x, y, z]) {
        return Ok(value);
    }
    let value = Mutex::new(Some(value.contiguous()?));
    x.apply_op3(y, z, Attach3 { value, bwd: Box::new(bwd) })
}

// ANCHOR: frozen_weight
/// A frozen base weight (out, in), as the products below need it. Held in full precision,
/// it is simply the tensor; kept in a quantized file's blocks (`Arc<QTensor>`, QLoRA-style),
/// it is dequantized for each product, forward and backward, and dropped right after: the
/// model then takes about its file's size in memory, and every step pays the dequantizing.
pub trait FrozenWeight: Clone + Send + Sync + 'static {
    /// The weight in full precision, for one product.
    fn full(&self) -> Result<Tensor>;
    /// Whether this weight is itself being trained (full fine-tuning): never for blocks.
    fn trained(&self) -> bool {
        false
    }
}

impl FrozenWeight for Tensor {
    fn full(&self) -> Result<Tensor> {
        Ok(self.clone())
    }
    fn trained(&self) -> bool {
        tracks(&[self])
    }
}

impl FrozenWeight for Arc<QTensor> {
    fn full(&self) -> Result<Tensor> {
        self.dequantize(&self.device())
    }
}
// ANCHOR_END: frozen_weight

/// `x·wᵀ` for `x` (rows, in) and `w` (out, in). A batch of decoding steps (a few rows, one
/// position each, outside training) is computed as `(w·xᵀ)ᵀ`: the gemm crate runs a few rows
/// against a transposed weight much slower than many weight rows against a few columns
/// (16 rows of decoding on SmolLM2 took 1.6× longer the other way). Training and prompts keep
/// the usual product, so their numbers do not change.
fn times_wt(x: &Tensor, w: &Tensor, lead: &[usize], training: bool) -> Result<Tensor> {
    let rows = x.dim(0)?;
    if !training && lead.last() == Some(&1) && (2..=32).contains(&rows) {
        return w.matmul(&x.t()?.contiguous()?)?.t()?.contiguous();
    }
    x.matmul(&w.t()?)
}

/// `x · wᵀ` for a frozen weight `w` of shape (out, in): the backward pass returns only
/// the input gradient `g · w`, never the (unused) weight gradient. A `w` that is being
/// trained (a `Var`) gets its gradient too.
pub fn frozen_linear(x: &Tensor, w: &impl FrozenWeight) -> Result<Tensor> {
    // One (tokens, in) × (in, out) GEMM rather than a batched one.
    let dims = x.dims().to_vec();
    let Some((last, lead)) = dims.split_last() else { candle_core::bail!("frozen_linear: scalar input") };
    let rows: usize = lead.iter().product();
    let full = w.full()?;
    let mut out_dims = lead.to_vec();
    out_dims.push(full.dim(0)?);
    if w.trained() {
        // The weight itself is trained (full fine-tuning): candle's matmul backward
        // gives both gradients.
        return x.reshape((rows, *last))?.matmul(&full.t()?)?.reshape(out_dims);
    }
    let y = times_wt(&x.detach().reshape((rows, *last))?, &full, lead, tracks(&[x]))?.reshape(out_dims)?;
    drop(full);
    let w = w.clone();
    attach(x, y, move |g| {
        let w = w.full()?;
        let (g_rows, out) = (g.elem_count() / w.dim(0)?, w.dim(0)?);
        g.reshape((g_rows, out))?.matmul(&w)?.reshape(dims.clone())
    })
}

/// RMSNorm, `x / sqrt(mean(x²) + eps) · w`, with a frozen weight `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let xd = x.detach().contiguous()?;
    let hidden = xd.dim(D::Minus1)? as f64;
    let inv_rms =
        move |xd: &Tensor| -> Result<Tensor> { ((xd.sqr()?.sum_keepdim(D::Minus1)? / hidden)? + eps)?.sqrt()?.recip() };
    let y = match xd.dtype() {
        // The fused kernel has no f64 version (f64 runs are for checking against references).
        DType::F64 => xd.broadcast_mul(&inv_rms(&xd)?)?.broadcast_mul(w)?,
        _ => candle_nn::ops::rms_norm(&xd, w, eps as f32)?,
    };
    if !tracks(&[x]) {
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

/// Rotary position embedding in the half-split ("rotate half") layout used by Hugging Face
/// checkpoints. `x` is (batch, heads, seq, head_dim); `cos`/`sin` are (seq, head_dim/2).
/// A rotation's transpose is the rotation by the opposite angle, so the backward pass is
/// the same kernel with `-sin`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let y = candle_nn::rotary_emb::rope(&x.detach().contiguous()?, cos, sin)?;
    let (cos, neg_sin) = (cos.clone(), sin.neg()?);
    attach(x, y, move |g| candle_nn::rotary_emb::rope(&g.contiguous()?, &cos, &neg_sin))
}

// ANCHOR: lora_linear_forward
/// A frozen projection with its LoRA branch in one graph node:
/// `y = x·Wᵀ + scale · (drop(x)·Aᵀ)·Bᵀ`, with `W` (out, in), `A` (r, in), `B` (out, r).
///
/// Written as separate candle ops this keeps four full-width tensors per projection alive
/// until the backward pass (`x·Wᵀ`, `(x·Aᵀ)·Bᵀ`, its scaled copy and the sum); here only the
/// (tokens, r) product `x·Aᵀ` is kept, and the backward pass is five GEMMs:
/// `dx = g·W + scale·(g·B)·A`, `dA = scale·(g·B)ᵀ·drop(x)`, `dB = scale·gᵀ·(x·Aᵀ)`.
/// `dropout` is the keep-mask (0/1, the shape of `x`) and the rate `p`: kept inputs are
/// scaled by 1/(1 − p), as PEFT's `lora_dropout` does.
pub fn lora_linear(
    x: &Tensor,
    w: &impl FrozenWeight,
    (a, b, scale): (&Tensor, &Tensor, f64),
    dropout: Option<(&Tensor, f64)>,
) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let Some((&d_in, lead)) = dims.split_last() else { candle_core::bail!("lora_linear: scalar input") };
    let rows: usize = lead.iter().product();
    let full = w.full()?;
    let d_out = full.dim(0)?;
    let mut out_dims = lead.to_vec();
    out_dims.push(d_out);
    let x2 = x.detach().reshape((rows, d_in))?;
    // The keep-mask scaled by 1/(1 − p), which multiplies the branch's input and, in the
    // backward pass, its input gradient.
    let mask = match dropout {
        Some((keep, p)) => Some((keep.reshape((rows, d_in))?.to_dtype(x.dtype())? / (1.0 - p))?),
        None => None,
    };
    let xl = match &mask {
        Some(m) => x2.mul(m)?,
        None => x2.clone(),
    };
    let (ad, bd) = (a.detach(), b.detach());
    let down = (xl.matmul(&ad.t()?)? * scale)?; // (rows, r), scaled once here
    let training = tracks(&[x, a, b]);
    let y = (times_wt(&x2, &full, lead, training)? + down.matmul(&bd.t()?)?)?.reshape(out_dims)?;
    drop(full);
    let (x_tracks, a_tracks, b_tracks) = (tracks(&[x]), tracks(&[a]), tracks(&[b]));
    if !(x_tracks || a_tracks || b_tracks) {
        return Ok(y);
    }
    if w.trained() {
        candle_core::bail!("lora_linear: the base weight must be frozen")
    }
    // ANCHOR_END: lora_linear_forward
    // ANCHOR: lora_linear_backward
    let w = w.clone();
    attach3((x, a, b), y, move |g| {
        let g = g.reshape((rows, d_out))?;
        let gb = (g.matmul(&bd)? * scale)?; // (rows, r)
        let dx = if x_tracks {
            let through_lora = gb.matmul(&ad)?;
            let through_lora = match &mask {
                Some(m) => through_lora.mul(m)?,
                None => through_lora,
            };
            Some((g.matmul(&w.full()?)? + through_lora)?.reshape(dims.clone())?)
        } else {
            None
        };
        let da = if a_tracks { Some(gb.t()?.matmul(&xl)?) } else { None };
        let db = if b_tracks { Some(g.t()?.matmul(&down)?) } else { None };
        Ok((dx, da, db))
    })
}
// ANCHOR_END: lora_linear_backward

/// Key/value heads (b, nkv, T, d) repeated for the query heads they serve: each one for
/// `rep` consecutive query heads, giving (b, nkv·rep, T, d).
fn repeat_kv(y: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(y.clone());
    }
    let (b, nkv, total, d) = y.dims4()?;
    y.unsqueeze(2)?.broadcast_as((b, nkv, rep, total, d))?.reshape((b, nkv * rep, total, d))
}

/// Causal scaled-dot-product attention with grouped-query heads: `q` is (b, nh, t, d),
/// `k` and `v` are (b, nkv, T, d) with nh a multiple of nkv, and the t queries are the last
/// t of the T positions (query i sees keys up to T − t + i). Returns (b, nh, t, d).
///
/// Only q, k and v are kept for the backward pass, which recomputes the probabilities
/// (one extra Q·Kᵀ): storing scores, masked scores, probabilities and the key/value heads
/// repeated for every query head would cost 4·b·nh·t·T + 2·b·nh·T·d values per layer.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let (_, nkv, total, _) = k.dims4()?;
    if nh % nkv != 0 || total < t {
        candle_core::bail!("attention: {nh} query heads, {nkv} key/value heads, {t} queries, {total} keys")
    }
    let rep = nh / nkv;
    let scale = 1.0 / (d as f64).sqrt();
    let expand = move |y: &Tensor| repeat_kv(y, rep);
    // The gradient of `expand`: sum over the query heads that shared a key/value head.
    let reduce = move |y: Tensor| -> Result<Tensor> {
        if rep == 1 {
            return Ok(y);
        }
        y.reshape((b, nkv, rep, total, d))?.sum(2)
    };
    let mask = if t > 1 {
        let past = total - t;
        let m: Vec<f32> =
            (0..t).flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
        Some(Tensor::from_vec(m, (t, total), q.device())?.to_dtype(q.dtype())?)
    } else {
        None
    };
    let probs = move |q: &Tensor, ke: &Tensor| -> Result<Tensor> {
        let scores = (q.matmul(&ke.t()?)? * scale)?;
        let scores = match &mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        candle_nn::ops::softmax_last_dim(&scores)
    };
    let (qd, kd, vd) = (q.detach().contiguous()?, k.detach(), v.detach());
    let (ke, ve) = (expand(&kd)?.contiguous()?, expand(&vd)?.contiguous()?);
    let out = probs(&qd, &ke)?.matmul(&ve)?;
    let (q_tracks, k_tracks, v_tracks) = (tracks(&[q]), tracks(&[k]), tracks(&[v]));
    if !(q_tracks || k_tracks || v_tracks) {
        return Ok(out);
    }
    drop((ke, ve));
    attach3((q, k, v), out, move |g| {
        let g = g.contiguous()?;
        let (ke, ve) = (expand(&kd)?.contiguous()?, expand(&vd)?.contiguous()?);
        let p = probs(&qd, &ke)?;
        let dv = if v_tracks { Some(reduce(p.t()?.matmul(&g)?)?) } else { None };
        // Softmax backward: ds = p · (dp − Σ dp·p), then the scale of the scores.
        let dp = g.matmul(&ve.t()?)?;
        let ds = (p.mul(&dp.broadcast_sub(&(&dp * &p)?.sum_keepdim(D::Minus1)?)?)? * scale)?;
        let dq = if q_tracks { Some(ds.matmul(&ke)?) } else { None };
        let dk = if k_tracks { Some(reduce(ds.t()?.matmul(&qd)?)?) } else { None };
        Ok((dq, dk, dv))
    })
}

/// [`attention`] for a batch of rows with filler, for generation only (no gradient): the
/// keys in `filler[b]` are hidden from row b's real queries. A filler query sees only
/// itself, so its softmax is never over nothing (which would give NaN).
pub fn attention_padded(q: &Tensor, k: &Tensor, v: &Tensor, filler: &[std::ops::Range<usize>]) -> Result<Tensor> {
    let (b, nh, t, d) = q.dims4()?;
    let (_, nkv, total, _) = k.dims4()?;
    if nh % nkv != 0 || total < t || filler.len() != b {
        candle_core::bail!("attention: {nh} query heads, {nkv} key/value heads, {t} queries, {total} keys, {b} rows")
    }
    if tracks(&[q, k, v]) {
        candle_core::bail!("attention_padded is for generation: it has no backward pass")
    }
    let expand = |y: &Tensor| repeat_kv(y, nh / nkv)?.contiguous();
    let past = total - t;
    let mask: Vec<f32> = filler
        .iter()
        .flat_map(|hidden| {
            (0..t).flat_map(move |i| {
                let me = past + i;
                (0..total)
                    .map(move |j| if j > me || (hidden.contains(&j) && j != me) { f32::NEG_INFINITY } else { 0.0 })
            })
        })
        .collect();
    let mask = Tensor::from_vec(mask, (b, 1, t, total), q.device())?.to_dtype(q.dtype())?;
    let scores = (q.contiguous()?.matmul(&expand(k)?.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(&mask)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(&expand(v)?)
}

/// The SwiGLU gate of Llama's MLP, `silu(gate) · up`, keeping only its two inputs for the
/// backward pass: `d gate = g · up · σ(gate)·(1 + gate·(1 − σ(gate)))`, `d up = g · silu(gate)`.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    let (gd, ud) = (gate.detach(), up.detach());
    let y = (gd.silu()? * &ud)?;
    let (gate_tracks, up_tracks) = (tracks(&[gate]), tracks(&[up]));
    attach2((gate, up), y, move |g| {
        let sig = candle_nn::ops::sigmoid(&gd)?;
        let dgate = if gate_tracks {
            // σ·(1 + x·(1 − σ)) = σ + silu·(1 − σ)
            let silu = (&gd * &sig)?;
            let dsilu = (&sig + silu.mul(&sig.affine(-1.0, 1.0)?)?)?;
            Some((g * &ud)?.mul(&dsilu)?)
        } else {
            None
        };
        let dup = if up_tracks { Some(g.mul(&(&gd * &sig)?)?) } else { None };
        Ok((dgate, dup))
    })
}

/// The vocabulary projection and the mean cross-entropy in one step, `rows` rows at a time:
/// `loss = mean over counted rows of CE(h · Wᵀ, label)`, label -100 ignored. Returns
/// `(loss, n_counted)`.
///
/// The (n, vocab) logits are never held whole: for each chunk the logits are formed, their
/// log-sum-exp taken and, when `h` needs a gradient, the gradient `(softmax − onehot)/n · W`
/// computed at once (the loss is a leaf of the graph, so its upstream gradient is a scalar
/// that only rescales it). With SmolLM2's 49k vocabulary that saves ~200 KB per scored token.
pub fn linear_cross_entropy(h: &Tensor, w: &Tensor, labels: &[i64]) -> Result<(Tensor, usize)> {
    const ROWS: usize = 128;
    let (n, _) = h.dims2()?;
    let vocab = w.dim(0)?;
    let count = check_labels(labels, n, vocab)?;
    if count == 0 {
        return Ok((Tensor::zeros((), h.dtype(), h.device())?, 0));
    }
    let need_grad = tracks(&[h]);
    if tracks(&[w]) {
        // A trained vocabulary projection (full fine-tuning) needs its own gradient.
        return cross_entropy(&frozen_linear(h, w)?, labels);
    }
    let hd = h.detach();
    let (mut total, mut dh) = (0.0, Vec::new());
    for start in (0..n).step_by(ROWS) {
        let len = ROWS.min(n - start);
        let targets = &labels[start..start + len];
        if targets.iter().all(|&t| t == -100) {
            if need_grad {
                dh.push(hd.narrow(0, start, len)?.zeros_like()?);
            }
            continue;
        }
        let logits = hd.narrow(0, start, len)?.matmul(&w.t()?)?;
        let grad = with_rows(&logits, |rows| {
            let (loss, lse) = match rows {
                RowsRef::F32(v) => ce_forward(v, vocab, targets),
                RowsRef::F64(v) => ce_forward(v, vocab, targets),
            };
            total += loss;
            if !need_grad {
                return Ok(None);
            }
            let scale = 1.0 / count as f64;
            Ok(Some(match rows {
                RowsRef::F32(v) => {
                    Tensor::from_vec(ce_backward(v, vocab, targets, &lse, scale), (len, vocab), h.device())?
                }
                RowsRef::F64(v) => {
                    Tensor::from_vec(ce_backward(v, vocab, targets, &lse, scale), (len, vocab), h.device())?
                }
            }))
        })?;
        if let Some(grad) = grad {
            dh.push(grad.to_dtype(h.dtype())?.matmul(w)?);
        }
    }
    let loss = Tensor::new(total / count as f64, h.device())?.to_dtype(h.dtype())?;
    if !need_grad {
        return Ok((loss, count));
    }
    let dh = Tensor::cat(&dh, 0)?;
    let loss = attach(h, loss, move |g| dh.broadcast_mul(g))?;
    Ok((loss, count))
}

/// The number of labels that count (not -100), after checking there is one per row and
/// each is inside the vocabulary.
fn check_labels(labels: &[i64], n: usize, vocab: usize) -> Result<usize> {
    if labels.len() != n {
        candle_core::bail!("cross_entropy: {} labels for {n} rows", labels.len())
    }
    if let Some(bad) = labels.iter().find(|&&t| t != -100 && !(0..vocab as i64).contains(&t)) {
        candle_core::bail!("cross_entropy: label {bad} is outside the vocabulary of {vocab}")
    }
    Ok(labels.iter().filter(|&&t| t != -100).count())
}

/// A contiguous f32/f64 tensor's values, borrowed.
enum RowsRef<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Call `f` on the values of `t` without copying them out (f16/bf16 are converted first).
fn with_rows<T>(t: &Tensor, f: impl FnOnce(RowsRef) -> Result<T>) -> Result<T> {
    let t = match t.dtype() {
        DType::F32 | DType::F64 => t.contiguous()?,
        _ => t.to_dtype(DType::F32)?.contiguous()?,
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { candle_core::bail!("cross_entropy: only CPU tensors are supported") };
    let (start, end) =
        layout.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("cross_entropy: not contiguous".into()))?;
    match cpu {
        CpuStorage::F32(v) => f(RowsRef::F32(&v[start..end])),
        CpuStorage::F64(v) => f(RowsRef::F64(&v[start..end])),
        other => candle_core::bail!("cross_entropy: unsupported dtype {:?}", other.dtype()),
    }
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
    let count = check_labels(labels, n, vocab)?;
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

#[cfg(test)]
mod tests {
    //! Each fused op against the same function written as plain candle ops, whose gradients
    //! candle's autograd derives: values and every input's gradient, in f64.
    use super::*;
    use candle_core::{Device, Var};

    fn var(shape: &[usize], seed: u64) -> Var {
        // A fixed, irregular fill (no RNG dependence).
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i as f64 + 1.0) * (seed as f64 + 0.37) * 0.618).sin() * 0.8).collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).unwrap()).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
    }

    /// Compare `fused` with `plain` on the same inputs: the value of `Σ y·c` (c a fixed
    /// weighting, so that every output element's gradient differs) and each input's gradient.
    fn check(inputs: &[&Var], fused: impl Fn() -> Tensor, plain: impl Fn() -> Tensor) {
        let weigh = |y: Tensor| {
            let c = var(y.dims(), 99).as_tensor().clone();
            (y * c).unwrap().sum_all().unwrap()
        };
        let (yf, yp) = (weigh(fused()), weigh(plain()));
        let d = max_diff(&yf, &yp);
        assert!(d < 1e-12, "values differ by {d}");
        let (gf, gp) = (yf.backward().unwrap(), yp.backward().unwrap());
        for (i, v) in inputs.iter().enumerate() {
            let (a, b) =
                (gf.get(v.as_tensor()).expect("fused gradient"), gp.get(v.as_tensor()).expect("plain gradient"));
            let d = max_diff(a, b);
            assert!(d < 1e-12, "gradient of input {i} differs by {d}");
        }
    }

    #[test]
    fn lora_linear_matches_plain_ops() {
        let (x, w, a, b) = (var(&[2, 3, 5], 1), var(&[4, 5], 2), var(&[2, 5], 3), var(&[4, 2], 4));
        let w = w.as_tensor().detach();
        let plain = |x: &Tensor| {
            let base = x.broadcast_matmul(&w.t().unwrap()).unwrap();
            let up = x.broadcast_matmul(&a.t().unwrap()).unwrap().broadcast_matmul(&b.t().unwrap()).unwrap();
            (base + (up * 0.75).unwrap()).unwrap()
        };
        check(&[&x, &a, &b], || lora_linear(&x, &w, (&a, &b, 0.75), None).unwrap(), || plain(&x));
        // With dropout: the branch sees the masked input scaled by 1/(1 − p).
        let keep: Vec<f32> = (0..30).map(|i| f32::from(i % 3 != 0)).collect();
        let keep = Tensor::from_vec(keep, (2, 3, 5), &Device::Cpu).unwrap();
        let dropped = |x: &Tensor| x.mul(&(keep.to_dtype(DType::F64).unwrap() / 0.75).unwrap()).unwrap();
        check(
            &[&x, &a, &b],
            || lora_linear(&x, &w, (&a, &b, 0.75), Some((&keep, 0.25))).unwrap(),
            || {
                let base = x.broadcast_matmul(&w.t().unwrap()).unwrap();
                let up =
                    dropped(&x).broadcast_matmul(&a.t().unwrap()).unwrap().broadcast_matmul(&b.t().unwrap()).unwrap();
                (base + (up * 0.75).unwrap()).unwrap()
            },
        );
    }

    fn plain_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
        let (b, nh, t, d) = q.dims4().unwrap();
        let (_, nkv, total, _) = k.dims4().unwrap();
        let rep = nh / nkv;
        let expand = |y: &Tensor| {
            y.unsqueeze(2).unwrap().broadcast_as((b, nkv, rep, total, d)).unwrap().reshape((b, nh, total, d)).unwrap()
        };
        let scores = (q.matmul(&expand(k).t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let past = total - t;
        let mask: Vec<f64> =
            (0..t).flat_map(|i| (0..total).map(move |j| if j > past + i { f64::NEG_INFINITY } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (t, total), &Device::Cpu).unwrap();
        let probs = candle_nn::ops::softmax(&scores.broadcast_add(&mask).unwrap(), D::Minus1).unwrap();
        probs.matmul(&expand(v).contiguous().unwrap()).unwrap()
    }

    #[test]
    fn attention_matches_plain_ops() {
        // Grouped queries (4 heads over 2), and 3 new queries after 2 cached positions.
        let (q, k, v) = (var(&[2, 4, 3, 6], 5), var(&[2, 2, 5, 6], 6), var(&[2, 2, 5, 6], 7));
        check(&[&q, &k, &v], || attention(&q, &k, &v).unwrap(), || plain_attention(&q, &k, &v));
        let (q, k, v) = (var(&[1, 2, 4, 3], 8), var(&[1, 2, 4, 3], 9), var(&[1, 2, 4, 3], 10));
        check(&[&q, &k, &v], || attention(&q, &k, &v).unwrap(), || plain_attention(&q, &k, &v));
    }

    #[test]
    fn swiglu_matches_plain_ops() {
        let (g, u) = (var(&[3, 7], 11), var(&[3, 7], 12));
        check(&[&g, &u], || swiglu(&g, &u).unwrap(), || (g.silu().unwrap() * u.as_tensor()).unwrap());
    }

    #[test]
    fn linear_cross_entropy_matches_logits_then_loss() {
        // 300 rows: three chunks, the last partial; one chunk has no counted label.
        let (h, w) = (var(&[300, 6], 13), var(&[11, 6], 14));
        let w = w.as_tensor().detach();
        let labels: Vec<i64> =
            (0..300).map(|i| if (128..256).contains(&i) || i % 7 == 0 { -100 } else { i % 11 }).collect();
        check(
            &[&h],
            || linear_cross_entropy(&h, &w, &labels).unwrap().0,
            || cross_entropy(&frozen_linear(&h, &w).unwrap(), &labels).unwrap().0,
        );
        assert_eq!(linear_cross_entropy(&h, &w, &labels).unwrap().1, labels.iter().filter(|&&l| l != -100).count());
    }

    #[test]
    fn no_grad_builds_no_graph() {
        let (x, a, b) = (var(&[2, 5], 15), var(&[2, 5], 16), var(&[4, 2], 17));
        let w = var(&[4, 5], 18).as_tensor().detach();
        assert!(lora_linear(&x, &w, (&a, &b, 1.0), None).unwrap().track_op());
        let y = no_grad(|| lora_linear(&x, &w, (&graph_input(&a), &graph_input(&b), 1.0), None).unwrap());
        assert!(!y.track_op());
        assert!(grad_enabled(), "no_grad restores the mode");
    }
}
