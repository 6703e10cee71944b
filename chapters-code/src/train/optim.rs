//! AdamW (Loshchilov & Hutter 2019) with PyTorch's exact update order, so a trajectory
//! can be compared step by step with `torch.optim.AdamW` (see `fixtures/tiny-train`).

use anyhow::{Result, bail};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// The optimizer and its state: one (m, v) pair per parameter.
pub struct AdamW {
    pub config: AdamWConfig,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Number of updates done so far.
    pub step: usize,
}

impl AdamW {
    pub fn new(vars: Vec<Var>, config: AdamWConfig) -> Result<Self> {
        let zeros = |v: &Var| v.as_tensor().zeros_like();
        let m = vars.iter().map(zeros).collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars.iter().map(zeros).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { config, vars, m, v, step: 0 })
    }

    /// Each parameter's gradient from a backward pass, in parameter order.
    pub fn collect_grads(&self, grads: &GradStore) -> Result<Vec<Tensor>> {
        self.vars
            .iter()
            .enumerate()
            .map(|(i, var)| match grads.get(var.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => bail!("parameter {i} received no gradient (is it used in the forward pass?)"),
            })
            .collect()
    }

    /// One update with learning rate `lr` (the schedule's value for this step).
    pub fn step_with_lr(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let grads = self.collect_grads(grads)?;
        self.update(&grads, lr)
    }

    /// One update from explicit gradients (one per parameter, e.g. accumulated over
    /// micro-batches and clipped).
    pub fn update(&mut self, grads: &[Tensor], lr: f64) -> Result<()> {
        if grads.len() != self.vars.len() {
            bail!("{} gradients for {} parameters", grads.len(), self.vars.len())
        }
        // ANCHOR: update
        let c = self.config;
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for (i, var) in self.vars.iter().enumerate() {
            let g = grads[i].to_dtype(var.dtype())?;
            // torch: p *= 1 - lr·wd; m = β1 m + (1-β1) g; v = β2 v + (1-β2) g²;
            //        p -= (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)
            let p = if c.weight_decay != 0.0 {
                (var.as_tensor() * (1.0 - lr * c.weight_decay))?
            } else {
                var.as_tensor().clone()
            };
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let denom = ((v.sqrt()? / bc2.sqrt())? + c.eps)?;
            let update = (m.div(&denom)? * (lr / bc1))?;
            var.set(&(p - update)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        // ANCHOR_END: update
        Ok(())
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step_with_lr(grads, self.config.lr)
    }

    /// (m, v) per parameter, for checkpoints.
    pub fn state(&self) -> (&[Tensor], &[Tensor]) {
        (&self.m, &self.v)
    }

    /// Restore state saved by [`AdamW::state`].
    pub fn set_state(&mut self, m: Vec<Tensor>, v: Vec<Tensor>, step: usize) -> Result<()> {
        if m.len() != self.vars.len() || v.len() != self.vars.len() {
            bail!("optimizer state has {} tensors, expected {}", m.len(), self.vars.len())
        }
        for (i, var) in self.vars.iter().enumerate() {
            if m[i].shape() != var.shape() || v[i].shape() != var.shape() {
                bail!("optimizer state tensor {i} has shape {:?}, expected {:?}", m[i].shape(), var.shape())
            }
        }
        (self.m, self.v, self.step) = (m, v, step);
        Ok(())
    }
}
