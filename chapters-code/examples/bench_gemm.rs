//! Peak of candle's f32 GEMM on this machine: `cargo run -p lorakit --example bench_gemm`.
//! (`lora bench` measures the same, and reports training MFU against it.)
use lorakit::candle::{Device, Tensor};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    for &(m, k, n) in &[(512usize, 576usize, 1536usize), (512, 1536, 576), (512, 576, 49152), (2048, 2048, 2048)] {
        let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
        let b = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu)?;
        let bt = b.t()?;
        let _ = a.matmul(&bt)?;
        let reps = 10;
        let t = Instant::now();
        for _ in 0..reps {
            let _ = a.matmul(&bt)?;
        }
        let dt = t.elapsed().as_secs_f64() / reps as f64;
        println!("{m}x{k} · {k}x{n}: {:.1} GFLOP/s", 2.0 * (m * k * n) as f64 / dt / 1e9);
    }
    Ok(())
}
