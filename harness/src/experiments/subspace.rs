//! Subspace similarity (Hu et al. 2021, §7.2): how much of the top-i directions of one
//! adapter's A lie in the span of the top-j directions of another's,
//!
//! φ(A₁, A₂, i, j) = ‖U₁ⁱᵀ U₂ʲ‖²_F / min(i, j) ∈ [0, 1],
//!
//! where U ⁱ holds the i right singular vectors of A (r × in) with the largest singular
//! values. 1 means one subspace contains the other; two random i- and j-dimensional
//! subspaces of ℝⁿ give max(i, j)/n on average.
//!
//! A starts random (B starts at zero), so the same numbers for the *initial* A matrices
//! are recorded beside the trained ones: what is above them is what training did.

use super::{Plan, RunSpec, Runner};
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use lorakit::lora::{LoraAdapter, TARGET_MODULES};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The right singular vectors of `a` (`rows` × `cols`, row-major), largest singular value
/// first, as unit rows, with the singular values.
///
/// One-sided Jacobi (Hestenes): rotate pairs of rows until all are orthogonal. The rows
/// then are Σ Vᵀ (rotations do not change the row space or the singular values), so their
/// norms are the singular values and the normalised rows the right singular vectors.
/// Exact to rounding for the small matrices here (r ≤ 64 rows).
pub fn right_singular_vectors(a: &[f64], rows: usize, cols: usize) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    if a.len() != rows * cols || rows == 0 || cols == 0 {
        bail!("right_singular_vectors: {} values for a {rows} × {cols} matrix", a.len())
    }
    if rows > cols {
        bail!("right_singular_vectors: expects a wide matrix (rows ≤ cols), got {rows} × {cols}")
    }
    let mut w: Vec<Vec<f64>> = a.chunks(cols).map(|r| r.to_vec()).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    for _sweep in 0..60 {
        let mut rotated = false;
        for i in 0..rows {
            for j in i + 1..rows {
                let (alpha, beta, gamma) = (dot(&w[i], &w[i]), dot(&w[j], &w[j]), dot(&w[i], &w[j]));
                if gamma.abs() <= 1e-15 * (alpha * beta).sqrt() || gamma == 0.0 {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (wi, wj) = (w[i].clone(), w[j].clone());
                for k in 0..cols {
                    w[i][k] = c * wi[k] - s * wj[k];
                    w[j][k] = s * wi[k] + c * wj[k];
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut pairs: Vec<(f64, Vec<f64>)> = w.into_iter().map(|r| (dot(&r, &r).sqrt(), r)).collect();
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let largest = pairs[0].0;
    if pairs.iter().any(|(s, _)| s.is_nan() || *s <= 1e-12 * largest) {
        bail!("right_singular_vectors: the matrix is rank-deficient, its subspaces are not defined")
    }
    let sigma = pairs.iter().map(|p| p.0).collect();
    let vecs = pairs.into_iter().map(|(s, r)| r.into_iter().map(|x| x / s).collect()).collect();
    Ok((vecs, sigma))
}

/// φ(A₁, A₂, i, j) for every i ≤ r₁, j ≤ r₂: `phi[i-1][j-1]`. Both are r × n, row-major.
pub fn subspace_similarity(a1: &[f64], r1: usize, a2: &[f64], r2: usize, n: usize) -> Result<Vec<Vec<f64>>> {
    let (u1, _) = right_singular_vectors(a1, r1, n)?;
    let (u2, _) = right_singular_vectors(a2, r2, n)?;
    // prefix[i][j] = Σ_{a<i, b<j} (u1_a · u2_b)² = ‖U₁ⁱᵀ U₂ʲ‖²_F
    let mut prefix = vec![vec![0.0; r2 + 1]; r1 + 1];
    for i in 1..=r1 {
        for j in 1..=r2 {
            let d: f64 = u1[i - 1].iter().zip(&u2[j - 1]).map(|(a, b)| a * b).sum();
            prefix[i][j] = d * d + prefix[i - 1][j] + prefix[i][j - 1] - prefix[i - 1][j - 1];
        }
    }
    Ok((1..=r1).map(|i| (1..=r2).map(|j| (prefix[i][j] / i.min(j) as f64).clamp(0.0, 1.0)).collect()).collect())
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub task: lorakit::data::synth::Task,
    /// The module and layer of the heatmap.
    pub module: String,
    pub layer: usize,
    pub r1: usize,
    pub r2: usize,
    /// `in_features` of the module: the dimension the subspaces live in.
    pub dim: usize,
    /// φ(A_{r1}, A_{r2}, i, j): `phi[i-1][j-1]`, i rows (1..=r1), j columns (1..=r2).
    pub phi: Vec<Vec<f64>>,
    /// The same for the two adapters' initial (random) A matrices.
    pub phi_init: Vec<Vec<f64>>,
    pub per_module: Vec<ModuleSimilarity>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ModuleSimilarity {
    pub name: String,
    pub dim: usize,
    /// φ(1, 1) at `layer`: do the two adapters' top directions agree?
    pub phi_1_1: f64,
    pub phi_1_1_init: f64,
    /// φ(1, 1) averaged over every layer.
    pub phi_1_1_mean_layers: f64,
    pub phi_1_1_init_mean_layers: f64,
    /// φ(r1, r2) at `layer`: how much of the whole r1 subspace lies in the r2 one.
    pub phi_r1_r2: f64,
    pub phi_r1_r2_init: f64,
    /// What two random subspaces give on average: 1/dim for φ(1,1), r2/dim for φ(r1,r2).
    pub random_phi_1_1: f64,
    pub random_phi_r1_r2: f64,
}

pub fn runs(plan: &Plan) -> Vec<RunSpec> {
    let (r1, r2) = plan.subspace_ranks;
    let seed = plan.seeds[0];
    vec![
        RunSpec::ranked(plan.rank_task, r1, 2.0 * r1 as f64, seed),
        RunSpec::ranked(plan.rank_task, r2, 2.0 * r2 as f64, seed),
    ]
}

/// Row-major f64 copy of the A matrix of (layer, module).
fn a_matrix(adapter: &LoraAdapter, layer: usize, module: &str) -> Result<(Vec<f64>, usize, usize)> {
    let ((_, _), pair) = adapter
        .layers()
        .find(|((l, m), _)| *l == layer && m.name() == module)
        .with_context(|| format!("the adapter has no {module} at layer {layer}"))?;
    let a = pair.a.as_tensor().to_dtype(DType::F64)?;
    let (r, n) = a.dims2()?;
    Ok((a.flatten_all()?.to_vec1::<f64>()?, r, n))
}

fn phi_of(x: &LoraAdapter, y: &LoraAdapter, layer: usize, module: &str) -> Result<(Vec<Vec<f64>>, usize)> {
    let (a1, r1, n) = a_matrix(x, layer, module)?;
    let (a2, r2, _) = a_matrix(y, layer, module)?;
    Ok((subspace_similarity(&a1, r1, &a2, r2, n)?, n))
}

pub fn run(runner: &mut Runner) -> Result<Results> {
    let specs = runs(&runner.plan);
    let (run1, run2) = (runner.lora(&specs[0])?, runner.lora(&specs[1])?);
    let config = runner.m.model.config.clone();
    let load = |dir: &Path| LoraAdapter::load_peft(dir, &config, DType::F32, &Device::Cpu);
    let init = |s: &RunSpec| {
        let lora = lorakit::lora::LoraConfig {
            r: s.r,
            alpha: s.alpha,
            dropout: 0.0,
            target_modules: s.targets.clone(),
            use_rslora: s.rslora,
        };
        // The trainer's own initialisation: same config, same seed.
        LoraAdapter::init(lora, &config, s.seed, DType::F32, &Device::Cpu)
    };
    let (t1, t2) = (load(&run1.dir)?, load(&run2.dir)?);
    let (i1, i2) = (init(&specs[0])?, init(&specs[1])?);
    let layer = config.num_hidden_layers / 2;
    let (r1, r2) = (specs[0].r, specs[1].r);
    let mut per_module = Vec::new();
    for module in TARGET_MODULES {
        let (phi, n) = phi_of(&t1, &t2, layer, module)?;
        let (phi0, _) = phi_of(&i1, &i2, layer, module)?;
        let (mut mean, mut mean0) = (0.0, 0.0);
        for l in 0..config.num_hidden_layers {
            mean += phi_of(&t1, &t2, l, module)?.0[0][0];
            mean0 += phi_of(&i1, &i2, l, module)?.0[0][0];
        }
        let layers = config.num_hidden_layers as f64;
        per_module.push(ModuleSimilarity {
            name: module.to_string(),
            dim: n,
            phi_1_1: phi[0][0],
            phi_1_1_init: phi0[0][0],
            phi_1_1_mean_layers: mean / layers,
            phi_1_1_init_mean_layers: mean0 / layers,
            phi_r1_r2: phi[r1 - 1][r2 - 1],
            phi_r1_r2_init: phi0[r1 - 1][r2 - 1],
            random_phi_1_1: 1.0 / n as f64,
            random_phi_r1_r2: r1.max(r2) as f64 / n as f64,
        });
    }
    let module = "q_proj";
    let (phi, dim) = phi_of(&t1, &t2, layer, module)?;
    let (phi_init, _) = phi_of(&i1, &i2, layer, module)?;
    Ok(Results { task: specs[0].task, module: module.into(), layer, r1, r2, dim, phi, phi_init, per_module })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn singular_vectors_of_a_known_matrix() {
        // AᵀA = [[25, 20], [20, 25]]: eigenvalues 45 and 5, eigenvectors (1, ±1)/√2.
        let (v, s) = right_singular_vectors(&[3.0, 0.0, 4.0, 5.0], 2, 2).unwrap();
        assert!(close(s[0], 45f64.sqrt()) && close(s[1], 5f64.sqrt()), "{s:?}");
        let h = 0.5f64.sqrt();
        assert!(close(v[0][0].abs(), h) && close(v[0][0], v[0][1]), "{v:?}");
        assert!(close(v[1][0], -v[1][1]) && close(v[1][0].abs(), h), "{v:?}");
    }

    #[test]
    fn phi_by_hand() {
        // A₁'s right singular vectors are e1 (σ=2) and e2 (σ=1); A₂'s are e2 (σ=3), e3 (σ=1).
        let a1 = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let a2 = [0.0, 3.0, 0.0, 0.0, 0.0, 1.0];
        let phi = subspace_similarity(&a1, 2, &a2, 2, 3).unwrap();
        // φ(1,1) = (e1·e2)² = 0; φ(2,1) = ‖[e1 e2]ᵀ e2‖² / 1 = 1;
        // φ(1,2) = ‖e1ᵀ [e2 e3]‖² = 0; φ(2,2) = (e2·e2)² / 2 = 0.5.
        assert_eq!(phi, vec![vec![0.0, 0.0], vec![1.0, 0.5]]);
        // Symmetry: φ(A₂, A₁, j, i) = φ(A₁, A₂, i, j).
        let back = subspace_similarity(&a2, 2, &a1, 2, 3).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                assert!(close(phi[i][j], back[j][i]));
            }
        }
        // [[3,0],[4,5]] has top direction (1,1)/√2: half of it lies along e1.
        let phi = subspace_similarity(&[3.0, 0.0, 4.0, 5.0], 2, &[1.0, 0.0], 1, 2).unwrap();
        assert!(close(phi[0][0], 0.5) && close(phi[1][0], 1.0), "{phi:?}");
    }

    #[test]
    fn a_matrix_is_similar_to_itself_and_rotations_do_not_matter() {
        // Mixing the rows of A (an invertible r × r factor) keeps its row space.
        let a = [1.0, 2.0, 0.5, -1.0, 0.0, 3.0, 1.0, 1.0];
        let mixed = [1.0 + 0.0, 2.0 + 3.0, 0.5 + 1.0, -1.0 + 1.0, 2.0 * 0.0, 2.0 * 3.0, 2.0 * 1.0, 2.0 * 1.0];
        let phi = subspace_similarity(&a, 2, &mixed, 2, 4).unwrap();
        assert!(close(phi[1][1], 1.0), "{phi:?}");
        let same = subspace_similarity(&a, 2, &a, 2, 4).unwrap();
        assert!(close(same[0][0], 1.0) && close(same[1][1], 1.0) && close(same[0][1], 1.0));
    }

    #[test]
    fn rank_deficient_and_bad_shapes_are_errors() {
        assert!(right_singular_vectors(&[1.0, 2.0, 2.0, 4.0], 2, 2).is_err());
        assert!(right_singular_vectors(&[1.0, 2.0, 3.0], 2, 2).is_err());
    }
}
