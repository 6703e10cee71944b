//! Listing 3-1: one LoRA projection the size of SmolLM2's `up_proj`, computed twice — as
//! plain candle ops differentiated by candle's autograd, and with the crate's fused
//! `ops::lora_linear` — with the same outputs and gradients, and what each computes and keeps.
//!
//!     cargo run -p lorakit --example listing_03_01_fused_vs_naive
//!
//! Lines with "time" in them are wall-clock measurements and change from run to run; the
//! other lines do not.
use anyhow::{Result, bail};
use book_support::SeededRandom;
use lorakit::candle::backprop::GradStore;
use lorakit::candle::{Device, Tensor, Var};
use lorakit::ops;
use std::time::Instant;

// SmolLM2-135M's up_proj (576 → 1536), one sequence of 256 tokens, rank 8, alpha 16.
const D_IN: usize = 576;
const D_OUT: usize = 1536;
const TOKENS: usize = 256;
const R: usize = 8;
const SCALE: f64 = 16.0 / R as f64;

// ANCHOR: naive
/// The layer of Chapter 2 in plain candle ops: candle's autograd records five nodes and
/// differentiates each matrix product with respect to both of its operands.
fn naive(x: &Tensor, wt: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let base = x.matmul(wt)?; // wt = Wᵀ, (d_in, d_out)
    let up = x.matmul(&a.t()?)?.matmul(&b.t()?)?;
    Ok((base + (up * SCALE)?)?)
}
// ANCHOR_END: naive

fn main() -> Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    lorakit::runtime::install(run)
}

fn run() -> Result<()> {
    let dev = Device::Cpu;
    let mut rng = SeededRandom::new(17);
    // ANCHOR: setup
    let w = rng.uniform((D_OUT, D_IN), 1.0 / (D_IN as f32).sqrt(), &dev)?; // frozen
    let wt = w.t()?;
    let a = Var::from_tensor(&rng.uniform((R, D_IN), 1.0 / (D_IN as f32).sqrt(), &dev)?)?;
    // B as after some training (not zero), so that every gradient is non-trivial.
    let b = Var::from_tensor(&rng.uniform((D_OUT, R), 0.05, &dev)?)?;
    // The input comes from earlier layers, which have adapters too: its gradient is needed.
    let x = Var::from_tensor(&rng.uniform((TOKENS, D_IN), 1.0, &dev)?)?;
    // The gradient arriving from the layers above: loss = Σ y ⊙ g, so ∂loss/∂y = g.
    let g = rng.uniform((TOKENS, D_OUT), 1.0, &dev)?;
    let (x, a, b) = (x.as_tensor(), a.as_tensor(), b.as_tensor());

    let y_naive = naive(x, &wt, a, b)?;
    let y_fused = ops::lora_linear(x, &w, (a, b, SCALE), None)?;
    let naive_grads = (&y_naive * &g)?.sum_all()?.backward()?;
    let fused_grads = (&y_fused * &g)?.sum_all()?.backward()?;
    // ANCHOR_END: setup

    // ANCHOR: compare
    // Same numbers: relative to the largest value, within f32 rounding of sums of 576 terms.
    let tol = 1e-4;
    println!("{TOKENS} tokens through a {D_IN} → {D_OUT} projection, r = {R}; tolerance {tol:.0e} relative");
    let pairs = [
        ("output y", y_naive.clone(), y_fused.clone()),
        ("dx", grad(&naive_grads, x)?, grad(&fused_grads, x)?),
        ("dA", grad(&naive_grads, a)?, grad(&fused_grads, a)?),
        ("dB", grad(&naive_grads, b)?, grad(&fused_grads, b)?),
    ];
    for (name, n, f) in &pairs {
        let diff = (n - f)?.abs()?.max_all()?.to_scalar::<f32>()?;
        let rel = diff / n.abs()?.max_all()?.to_scalar::<f32>()?;
        println!("  {name:<8} max |naive − fused| {diff:.1e}, relative {rel:.1e}");
        if rel > tol {
            bail!("{name}: the fused op disagrees with candle's autograd beyond {tol:e}");
        }
    }
    // ANCHOR_END: compare

    // ANCHOR: waste
    // candle's backward of x·Wᵀ also computed the frozen weight's gradient, and keeps it in
    // the gradient store under the tensor we multiplied by.
    let bytes = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
    let sizes = |gs: &GradStore| -> Vec<String> {
        [("x", x), ("A", a), ("B", b), ("frozen W", &wt)]
            .iter()
            .map(|(n, t)| match gs.get(t) {
                Some(g) => format!("{n} {:?} {} B", g.dims(), sep(bytes(g))),
                None => format!("{n}: none"),
            })
            .collect()
    };
    println!("gradients computed, naive: {}", sizes(&naive_grads).join(", "));
    println!("gradients computed, fused: {}", sizes(&fused_grads).join(", "));
    // Where the input needs no gradient (a layer with no adapter below it), candle skips it.
    let first_layer = naive(&x.detach(), &wt, a, b)?;
    let skipped = (&first_layer * &g)?.sum_all()?.backward()?.get(&wt).is_none();
    println!("when x needs no gradient, naive skips the frozen weight's gradient: {skipped}");
    // ANCHOR_END: waste

    // ANCHOR: kept
    // What each graph holds until the backward pass: the values of its nodes (a transpose
    // such as A.t() is a view of A's memory, so only contiguous values count).
    let kept = |y: &Tensor| -> (usize, usize) {
        let nodes: Vec<&Tensor> =
            y.sorted_nodes().into_iter().filter(|t| !t.is_variable() && t.is_contiguous()).collect();
        (nodes.len(), nodes.iter().map(|t| bytes(t)).sum())
    };
    let (n_naive, b_naive) = kept(&y_naive);
    let (n_fused, b_fused) = kept(&y_fused);
    println!("graph values kept, naive: {n_naive} tensors, {} B (output included)", sep(b_naive));
    // The fused node also keeps the (tokens × r) product x·Aᵀ for dB (see its source).
    let down = TOKENS * R * 4;
    println!("graph values kept, fused: {n_fused} tensor, {} B (output included) + x·Aᵀ {} B", sep(b_fused), sep(down));
    // ANCHOR_END: kept

    // ANCHOR: time
    // Forward and backward, the median of 9 runs after 2 warm-up runs.
    let time = |f: &dyn Fn() -> Result<GradStore>| -> Result<f64> {
        let mut ms = Vec::new();
        for i in 0..11 {
            let start = Instant::now();
            f()?;
            if i >= 2 {
                ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        ms.sort_by(f64::total_cmp);
        Ok(ms[ms.len() / 2])
    };
    let t_naive = time(&|| Ok((naive(x, &wt, a, b)? * &g)?.sum_all()?.backward()?))?;
    let t_fused = time(&|| Ok((ops::lora_linear(x, &w, (a, b, SCALE), None)? * &g)?.sum_all()?.backward()?))?;
    println!("time per forward + backward (median of 9): naive {t_naive:.2} ms, fused {t_fused:.2} ms");
    // ANCHOR_END: time
    Ok(())
}

fn grad(grads: &GradStore, t: &Tensor) -> Result<Tensor> {
    match grads.get(t) {
        Some(g) => Ok(g.clone()),
        None => bail!("a tensor that should have a gradient has none"),
    }
}

/// 3538944 -> "3,538,944".
fn sep(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
