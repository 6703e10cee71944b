//! Data for Chapter 2's low-rank explorer: a small grayscale picture M (m × n), its singular
//! value decomposition, and how well B·A approximates it for every rank r, written to
//! `book/data/low_rank.json`.
//!
//!     cargo run -p lorakit --example ch02_low_rank [-- OUT.json]
//!
//! With M = Σₖ σₖ uₖ vₖᵀ (σ₁ ≥ σ₂ ≥ …), the best rank-r approximation (Eckart–Young) is
//! B·A with B = [σ₁u₁ … σᵣuᵣ] (m × r) and A = [v₁ … vᵣ]ᵀ (r × n): r·(m + n) numbers
//! instead of m·n. The JSON holds B and A for the largest r; the widget takes their first r
//! columns/rows. The errors ‖M − B·A‖_F stored beside them are computed here with candle
//! from the very numbers written to the file, so the widget's own computation must agree.
use anyhow::{Result, bail};
use lorakit::candle::{Device, Tensor};
use serde_json::json;
use std::path::PathBuf;

const M: usize = 64; // rows
const N: usize = 96; // columns

// ANCHOR: picture
/// 5 × 7 glyphs for the letters of "LoRA", one string per row.
const GLYPHS: [[&str; 7]; 4] = [
    ["10000", "10000", "10000", "10000", "10000", "10000", "11111"],
    ["00000", "00000", "01110", "10001", "10001", "10001", "01110"],
    ["11110", "10001", "10001", "11110", "10100", "10010", "10001"],
    ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
];

/// An 8-bit grayscale picture: a sky that brightens downwards, a sun, rolling hills, the
/// word "LoRA" and a faint film grain. The smooth sky is rank one; the disk, the hills'
/// outline and the letters need more; the grain is full-rank but weak, like the long tail
/// of singular values of real data.
fn picture() -> Vec<u8> {
    let mut px = vec![0u8; M * N];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for y in 0..M {
        for x in 0..N {
            let (fx, fy) = (x as f64, y as f64);
            // xorshift64: a fixed, reproducible grain in [-0.02, 0.02)
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let grain = 0.04 * ((seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
            let mut v = 0.35 + 0.5 * fy / M as f64; // sky
            if (fx - 74.0).powi(2) + (fy - 14.0).powi(2) < 81.0 {
                v = 0.97; // sun
            }
            let hill = 44.0 + 5.0 * (fx / 9.0).sin() + 3.0 * (fx / 4.0 + 1.0).cos();
            if fy > hill {
                v = 0.18 + 0.1 * ((fx * 0.7).sin() * (fy * 0.9).cos()); // hills, textured
            }
            px[y * N + x] = ((v + grain).clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    // The letters, 3 × scaled, dark on the sky.
    for (g, glyph) in GLYPHS.iter().enumerate() {
        for (row, bits) in glyph.iter().enumerate() {
            for (col, bit) in bits.bytes().enumerate() {
                if bit == b'1' {
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let (x, y) = (8 + g * 21 + col * 3 + dx, 20 + row * 3 + dy);
                            px[y * N + x] = 20;
                        }
                    }
                }
            }
        }
    }
    px
}
// ANCHOR_END: picture

/// Singular values and vectors of an m × n matrix (m ≤ n, row-major) by one-sided Jacobi
/// (Hestenes): rotate pairs of rows until they are orthogonal. The rows are then σₖvₖᵀ and
/// the accumulated rotations J give uₖ = row k of J. Returns (σ, U columns, V rows), largest
/// σ first; exact to rounding for matrices this small.
fn svd(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut w: Vec<Vec<f64>> = a.chunks(n).map(|r| r.to_vec()).collect();
    let mut j: Vec<Vec<f64>> = (0..m).map(|i| (0..m).map(|k| f64::from(u8::from(i == k))).collect()).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    let rotate = |rows: &mut Vec<Vec<f64>>, p: usize, q: usize, c: f64, s: f64| {
        for k in 0..rows[p].len() {
            let (x, y) = (rows[p][k], rows[q][k]);
            rows[p][k] = c * x - s * y;
            rows[q][k] = s * x + c * y;
        }
    };
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..m {
            for q in p + 1..m {
                let (alpha, beta, gamma) = (dot(&w[p], &w[p]), dot(&w[q], &w[q]), dot(&w[p], &w[q]));
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                rotate(&mut w, p, q, c, c * t);
                rotate(&mut j, p, q, c, c * t);
            }
        }
        if !rotated {
            break;
        }
    }
    let mut order: Vec<(f64, usize)> = w.iter().enumerate().map(|(k, r)| (dot(r, r).sqrt(), k)).collect();
    order.sort_by(|x, y| y.0.total_cmp(&x.0));
    let sigma = order.iter().map(|o| o.0).collect();
    let u = order.iter().map(|&(_, k)| j[k].clone()).collect();
    let v = order.iter().map(|&(s, k)| w[k].iter().map(|x| if s > 0.0 { x / s } else { 0.0 }).collect()).collect();
    (sigma, u, v)
}

/// The value a reader's browser will see: the shortest decimal of the f32, read as f64.
fn as_written(x: f64) -> f64 {
    (x as f32).to_string().parse().expect("a float's own decimal parses")
}

fn main() -> Result<()> {
    let out = match std::env::args_os().nth(1) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../book/data/low_rank.json"),
    };
    let pixels = picture();
    let mat: Vec<f64> = pixels.iter().map(|&p| p as f64 / 255.0).collect();
    let (sigma, u, v) = svd(&mat, M, N);

    // ANCHOR: factors
    // B = U Σ (m × K), A = Vᵀ (K × n), K = m: B·A is M itself.
    let k = M;
    let b: Vec<f64> = (0..M).flat_map(|i| (0..k).map(|c| as_written(sigma[c] * u[c][i])).collect::<Vec<_>>()).collect();
    let a: Vec<f64> = (0..k).flat_map(|c| v[c].iter().map(|&x| as_written(x)).collect::<Vec<_>>()).collect();
    let dev = Device::Cpu;
    let m_t = Tensor::from_vec(mat.clone(), (M, N), &dev)?;
    let b_t = Tensor::from_vec(b.clone(), (M, k), &dev)?;
    let a_t = Tensor::from_vec(a.clone(), (k, N), &dev)?;
    let norm = m_t.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt();
    let mut errors = vec![norm]; // r = 0: B·A = 0
    for r in 1..=k {
        // The first r columns of B times the first r rows of A.
        let approx = b_t.narrow(1, 0, r)?.matmul(&a_t.narrow(0, 0, r)?)?;
        errors.push((&m_t - approx)?.sqr()?.sum_all()?.to_scalar::<f64>()?.sqrt());
    }
    // ANCHOR_END: factors

    // Eckart–Young: the error of the best rank-r approximation is √(Σ_{k>r} σₖ²).
    for (r, e) in errors.iter().enumerate() {
        let predicted = sigma[r..].iter().map(|s| s * s).sum::<f64>().sqrt();
        if (e - predicted).abs() > 1e-5 * norm {
            bail!("rank {r}: ‖M − B·A‖_F = {e}, but the singular values predict {predicted}: the SVD is wrong")
        }
    }
    for r in [1, 2, 4, 8, 16, 32] {
        println!(
            "r = {r:>2}: {:>5} numbers instead of {} ({:>5.1}%), ‖M − B·A‖_F = {:.4} ({:.1}% of ‖M‖_F = {norm:.4})",
            r * (M + N),
            M * N,
            100.0 * (r * (M + N)) as f64 / (M * N) as f64,
            errors[r],
            100.0 * errors[r] / norm
        );
    }

    let doc = json!({
        "command": "cargo run -p lorakit --example ch02_low_rank",
        "description": "A 64 × 96 grayscale picture M (pixels / 255), its SVD M = Σ σₖ uₖ vₖᵀ, B = [σₖ uₖ] (m × K, row-major), A = [vₖᵀ] (K × n, row-major); errors[r] = ‖M − B[:, :r]·A[:r, :]‖_F computed with candle from the numbers in this file",
        "m": M,
        "n": N,
        "k": k,
        "pixels": pixels,
        "singular_values": sigma.iter().map(|&s| as_written(s)).collect::<Vec<_>>(),
        "b": b,
        "a": a,
        "frobenius_norm": norm,
        "errors": errors,
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    lorakit::io::atomic_write(&out, (serde_json::to_string(&doc)? + "\n").as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
