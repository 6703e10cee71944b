//! Listing 10-4: block quantization on one matrix — the bytes each format spends per weight,
//! the error it makes, and how that error compares with a small LoRA update merged into the
//! matrix. Deterministic stand-in values, no model needed; runs in a second.
//!
//!     cargo run -p lorakit --example listing_10_04_blocks
use lorakit::candle::quantized::{GgmlDType, QTensor};
use lorakit::candle::{Device, Tensor};

fn main() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    // ANCHOR: blocks
    // A 576 × 576 matrix (SmolLM2's q_proj shape) of values spread like trained weights,
    // and a rank-8 update about 1% of its size: what a merged adapter adds.
    let wave = |n: usize, f: f64, phase: f64| Tensor::arange(0f32, n as f32, &dev)?.affine(f, phase)?.sin();
    let w = ((wave(576 * 576, 0.731, 0.0)? * wave(576 * 576, 0.0123, 1.0)?)? * 0.05)?.reshape((576, 576))?;
    let b = (wave(576 * 8, 0.37, 0.2)? * 0.01)?.reshape((576, 8))?;
    let a = (wave(8 * 576, 0.53, 0.9)? * 0.05)?.reshape((8, 576))?;
    let delta = b.matmul(&a)?;
    let merged = (&w + &delta)?;
    let norm = |t: &Tensor| -> anyhow::Result<f32> { Ok(t.sqr()?.sum_all()?.sqrt()?.to_scalar()?) };
    println!("|update| / |W| = {:.4}", norm(&delta)? / norm(&w)?);
    println!("{:<5} {:>14} {:>16} {:>22}", "type", "bytes/weight", "error / |W|", "error / |update|");
    for ty in [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q8_0, GgmlDType::Q4_0] {
        // Merge first, then quantize: the file holds quantize(W + B·A).
        let q = QTensor::quantize(&merged, ty)?;
        let bytes = q.storage_size_in_bytes() as f64 / (576.0 * 576.0);
        let error = norm(&(q.dequantize(&dev)? - &merged)?)?;
        println!("{:<5} {bytes:>14.4} {:>16.2e} {:>22.3}", format!("{ty:?}"), error / norm(&w)?, error / norm(&delta)?);
    }
    // ANCHOR_END: blocks

    // ANCHOR: one_block
    // One Q8_0 block: 32 weights become one f16 scale (the largest |w| / 127) and 32 int8.
    let block: Vec<f32> = w.flatten_all()?.narrow(0, 0, 32)?.to_vec1()?;
    let scale = block.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
    let ints: Vec<i8> = block.iter().map(|x| (x / scale).round() as i8).collect();
    println!("scale {scale:.3e}; first weights {:?}", &block[..4]);
    println!("stored as {:?} -> {:?}", &ints[..4], ints[..4].iter().map(|&i| i as f32 * scale).collect::<Vec<_>>());
    // ANCHOR_END: one_block
    Ok(())
}
