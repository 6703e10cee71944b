//! Listing 2-1: a LoRA layer in plain candle ops — forward, merge, unmerge — trained with
//! candle's autograd on a toy regression whose answer is a known low-rank update.
//!
//!     cargo run -p lorakit --example listing_02_01_lora_layer
use anyhow::{Result, bail};
use book_support::SeededRandom;
use lorakit::candle::{DType, Device, Tensor, Var};

// ANCHOR: layer
/// `h = W x + s · B (A x)` with `W` frozen and `A`, `B` trained. Inputs are rows: `x` is
/// (n, d_in), `h` is (n, d_out).
struct LoraLinear {
    w: Tensor,  // (d_out, d_in): a plain tensor, so no optimizer ever sees it
    a: Var,     // (r, d_in): small random values
    b: Var,     // (d_out, r): zeros, so that B A = 0 and the layer starts out as W
    scale: f64, // s = alpha / r
}

impl LoraLinear {
    fn new(w: Tensor, r: usize, alpha: f64, rng: &mut SeededRandom) -> Result<Self> {
        let (d_out, d_in) = w.dims2()?;
        // PEFT's initialization: A ~ U(-1/√d_in, 1/√d_in), B = 0.
        let a = rng.uniform((r, d_in), 1.0 / (d_in as f32).sqrt(), w.device())?;
        let b = Tensor::zeros((d_out, r), DType::F32, w.device())?;
        Ok(Self { w, a: Var::from_tensor(&a)?, b: Var::from_tensor(&b)?, scale: alpha / r as f64 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let base = x.matmul(&self.w.t()?)?;
        // A first: (n, r), then B: (n, d_out). The d_out × d_in product B A is never built.
        let down = x.matmul(&self.a.t()?)?;
        let up = down.matmul(&self.b.t()?)?;
        Ok((base + (up * self.scale)?)?)
    }

    /// The update s · B A as one (d_out, d_in) matrix: only for merging, never in training.
    fn delta(&self) -> Result<Tensor> {
        Ok((self.b.matmul(&self.a)? * self.scale)?)
    }

    /// `W' = W + s · B A`: an ordinary weight that computes the same function.
    fn merge(&self) -> Result<Tensor> {
        Ok((&self.w + self.delta()?)?)
    }

    /// `W = W' − s · B A`: the base weight back from a merged one.
    fn unmerge(&self, merged: &Tensor) -> Result<Tensor> {
        Ok((merged - self.delta()?)?)
    }
}
// ANCHOR_END: layer

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let mut rng = SeededRandom::new(2024);
    // ANCHOR: train
    // A frozen layer W, and the change ΔW_true that fine-tuning should find: rank 2, so a
    // rank-4 adapter can express it exactly. The targets are y = (W + ΔW_true) x.
    let (d_in, d_out, r, alpha, n) = (32, 24, 4, 8.0, 256);
    let w = rng.uniform((d_out, d_in), 0.2, &dev)?;
    let delta_true = rng.uniform((d_out, 2), 0.5, &dev)?.matmul(&rng.uniform((2, d_in), 0.5, &dev)?)?;
    let x = rng.uniform((n, d_in), 1.0, &dev)?;
    let y = x.matmul(&(&w + &delta_true)?.t()?)?;

    let layer = LoraLinear::new(w.clone(), r, alpha, &mut rng)?;
    println!("W: {d_out} × {d_in} = {} numbers, frozen", d_out * d_in);
    println!("A: {r} × {d_in}, B: {d_out} × {r} = {} numbers, trained; s = {alpha} / {r}", r * (d_in + d_out));
    // Plain gradient descent on the mean squared error. Only A and B are updated.
    let lr = 0.5;
    for step in 0..=300 {
        let loss = (layer.forward(&x)? - &y)?.sqr()?.mean_all()?;
        if step % 30 == 0 {
            println!("step {step:>3}  loss {:.3e}", loss.to_scalar::<f32>()?);
        }
        let grads = loss.backward()?;
        for v in [&layer.a, &layer.b] {
            let Some(g) = grads.get(v.as_tensor()) else { bail!("a LoRA factor received no gradient") };
            v.set(&(v.as_tensor() - (g * lr)?)?)?;
        }
    }
    let err = rel_error(&layer.delta()?, &delta_true)?;
    println!("learned s·BA against ΔW_true: relative error {err:.1e}");
    // ANCHOR_END: train

    // ANCHOR: merge
    // Merged, the layer is one matrix product; it must give the adapter's outputs.
    let merged = layer.merge()?;
    let diff = max_abs_diff(&x.matmul(&merged.t()?)?, &layer.forward(&x)?)?;
    let back = max_abs_diff(&layer.unmerge(&merged)?, &w)?;
    let tol = 1e-5; // f32 rounding of values of size ~1, with room to spare
    println!("merged vs adapter outputs: max |difference| {diff:.1e} (tolerance {tol:.0e})");
    println!("unmerged vs original W:    max |difference| {back:.1e} (tolerance {tol:.0e})");
    if diff > tol || back > tol {
        bail!("merging changed the layer's function beyond f32 rounding");
    }
    // ANCHOR_END: merge
    Ok(())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
}

/// ‖a − b‖ / ‖b‖ (Frobenius norms).
fn rel_error(a: &Tensor, b: &Tensor) -> Result<f32> {
    let norm = |t: &Tensor| -> Result<f32> { Ok(t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?) };
    Ok(norm(&(a - b)?)? / norm(b)?)
}
