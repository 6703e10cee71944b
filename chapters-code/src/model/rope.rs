//! Rotary position embeddings (Su et al. 2021), with Llama 3's frequency scaling.
//!
//! Follows transformers' `LlamaRotaryEmbedding` numerically: inverse frequencies are f32,
//! and the angle `position · inv_freq` is formed in f32 before taking cos and sin, so long
//! positions drift exactly as the reference does.

use super::config::{LlamaConfig, RopeScaling};
use candle_core::{DType, Device, Result, Tensor};

/// The `head_dim / 2` inverse frequencies for a config.
pub fn inv_freq(cfg: &LlamaConfig) -> Vec<f32> {
    let d = cfg.head_dim;
    // transformers computes `1 / base^(arange(0, d, 2) / d)` in f32 tensors; doing the same
    // f32 operations keeps every frequency bit-identical (a 1-ulp difference in a frequency
    // moves the angle at position 131071 by 5e-3).
    let plain: Vec<f32> =
        (0..d / 2).map(|i| 1.0f32 / (cfg.rope_theta as f32).powf((2 * i) as f32 / d as f32)).collect();
    match &cfg.rope_scaling {
        RopeScaling::None => plain,
        RopeScaling::Factors(factors) => {
            plain.iter().zip(factors.iter().chain(std::iter::repeat(&1.0))).map(|(&f, &k)| f / k).collect()
        }
        RopeScaling::Llama3(s) => {
            // Llama 3: keep high frequencies, divide low ones by `factor`, blend in between
            // (f32 throughout, as transformers' `_compute_llama3_parameters`).
            let factor = s.factor as f32;
            let (low, high) = (s.low_freq_factor as f32, s.high_freq_factor as f32);
            let old = s.original_max_position_embeddings as f32;
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            plain
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    let scaled = if wavelen > low_wavelen { f / factor } else { f };
                    // Written as transformers writes it (`~(w < high) & ~(w > low)`), NaN included.
                    #[allow(clippy::neg_cmp_op_on_partial_ord)]
                    let medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
                    if medium {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * scaled / factor + smooth * scaled
                    } else {
                        scaled
                    }
                })
                .collect()
        }
    }
}

/// The GGUF `rope_freqs.weight` divisors equivalent to a llama3 config, as llama.cpp writes.
pub fn llama3_factors(cfg: &LlamaConfig) -> Option<Vec<f32>> {
    let RopeScaling::Llama3(_) = &cfg.rope_scaling else { return None };
    let plain = inv_freq(&LlamaConfig { rope_scaling: RopeScaling::None, ..cfg.clone() });
    let scaled = inv_freq(cfg);
    Some(plain.iter().zip(&scaled).map(|(p, s)| p / s).collect())
}

/// Precomputed inverse frequencies; produces cos/sin tables for any positions.
#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(cfg: &LlamaConfig) -> Self {
        Self { inv_freq: inv_freq(cfg) }
    }

    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// (cos, sin), each (positions.len(), head_dim/2), in `dtype`.
    pub fn cos_sin(&self, positions: &[usize], dtype: DType, dev: &Device) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let angle = (p as f32 * f) as f64;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let shape = (positions.len(), half);
        // Round through f32 like the reference (cos/sin are f32 there, then cast).
        let cos = Tensor::from_vec(cos, shape, dev)?.to_dtype(DType::F32)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, shape, dev)?.to_dtype(DType::F32)?.to_dtype(dtype)?;
        Ok((cos, sin))
    }
}
