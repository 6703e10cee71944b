//! LoRA (Hu et al. 2021): a frozen weight W plus a trainable low-rank update,
//! `h = W x + (alpha / r) · B A x`, with A (r × in) and B (out × r).
//!
//! The adapter lives beside the model as candle `Var`s; [`Llama::apply_adapter`]
//! routes the targeted projections through it. On disk an adapter is a PEFT directory
//! (`adapter_config.json` + `adapter_model.safetensors`), the format PEFT itself loads.

use crate::io::atomic_write_with;
use crate::model::llama::LoraBranch;
use crate::model::projection::Projection;
use crate::model::{Llama, LlamaConfig};
use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// The projections of a Llama block, by their Hugging Face names.
pub const TARGET_MODULES: [&str; 7] = Projection::NAMES;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Hyper-parameters of a LoRA adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    /// Rank of the update. 8 is a common start; the update has r·(in+out) parameters.
    pub r: usize,
    /// Scale numerator: the update is multiplied by alpha/r (alpha/√r with rsLoRA), so
    /// changing r does not change the effective learning rate as much.
    pub alpha: f64,
    /// Dropout on the LoRA input during training (PEFT's `lora_dropout`).
    pub dropout: f64,
    /// Which projections get an adapter (`q_proj`, ..., `down_proj`).
    pub target_modules: Vec<String>,
    /// rsLoRA (Kalajdzievski 2023): scale by alpha/√r, stable for large ranks.
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: TARGET_MODULES.iter().map(|s| s.to_string()).collect(),
            use_rslora: false,
        }
    }
}

impl LoraConfig {
    /// The factor applied to `B A x`.
    pub fn scaling(&self) -> f64 {
        if self.use_rslora { self.alpha / (self.r as f64).sqrt() } else { self.alpha / self.r as f64 }
    }

    /// Reject values that cannot work, naming the field.
    pub fn validate(&self, model: Option<&LlamaConfig>) -> Result<()> {
        if self.r == 0 {
            bail!("lora r must be at least 1 (got 0)")
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            bail!("lora alpha must be a positive number (got {})", self.alpha)
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("lora dropout must be in [0, 1) (got {})", self.dropout)
        }
        if self.target_modules.is_empty() {
            bail!("lora target_modules is empty")
        }
        for p in self.projections()? {
            if let Some(cfg) = model {
                let (i, o) = p.shape(cfg);
                if self.r > i.min(o) {
                    bail!("lora r = {} exceeds the size of {p} ({o} × {i})", self.r)
                }
            }
        }
        Ok(())
    }

    /// The targeted projections, in the order `target_modules` lists them.
    pub fn projections(&self) -> Result<Vec<Projection>> {
        self.target_modules
            .iter()
            .map(|m| match Projection::from_name(m) {
                Some(p) => Ok(p),
                None => bail!("unknown lora target module {m:?} (expected some of {TARGET_MODULES:?})"),
            })
            .collect()
    }

    pub fn targets(&self, p: Projection) -> bool {
        self.target_modules.iter().any(|t| t == p.name())
    }

    /// Trainable parameters for a model: Σ over layers and targets of r·(in + out).
    pub fn num_parameters(&self, model: &LlamaConfig) -> usize {
        let per_layer: usize =
            self.target_modules.iter().filter_map(|m| model.module_shape(m)).map(|(i, o)| self.r * (i + o)).sum();
        per_layer * model.num_hidden_layers
    }
}

/// One adapted projection: A (r, in) and B (out, r).
pub struct LoraPair {
    pub a: Var,
    pub b: Var,
}

/// A LoRA adapter for every targeted projection of every layer.
pub struct LoraAdapter {
    pub config: LoraConfig,
    /// Written to `base_model_name_or_path` (informational, as in PEFT).
    pub base_model: String,
    pairs: BTreeMap<(usize, Projection), LoraPair>,
}

/// Which factor of a LoRA pair: A (r × in) or B (out × r).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Factor {
    A,
    B,
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Factor::A => "A",
            Factor::B => "B",
        })
    }
}

// ANCHOR: peft_key
/// `model.layers.3.self_attn.q_proj` for (3, "q_proj").
pub fn module_path(layer: usize, module: impl AsRef<str>) -> String {
    let module = module.as_ref();
    let group = Projection::from_name(module).map_or("self_attn", Projection::group);
    format!("model.layers.{layer}.{group}.{module}")
}

/// PEFT's key for a LoRA tensor: `base_model.model.<module path>.lora_A.weight`.
pub fn peft_key(layer: usize, module: impl AsRef<str>, which: Factor) -> String {
    format!("base_model.model.{}.lora_{which}.weight", module_path(layer, module))
}
// ANCHOR_END: peft_key

/// Parse a PEFT key into (layer, projection, factor).
pub fn parse_peft_key(key: &str) -> Option<(usize, Projection, Factor)> {
    let rest = key.strip_prefix("base_model.model.model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer = layer.parse().ok()?;
    let (path, which) = if let Some(p) = rest.strip_suffix(".lora_A.weight") {
        (p, Factor::A)
    } else {
        (rest.strip_suffix(".lora_B.weight")?, Factor::B)
    };
    let p = Projection::from_name(path.rsplit_once('.')?.1)?;
    (p.hf_path(layer) == format!("model.layers.{layer}.{path}")).then_some((layer, p, which))
}

impl LoraAdapter {
    /// A fresh adapter as PEFT initialises one: A ~ kaiming-uniform(a=√5), i.e.
    /// U(−1/√in, 1/√in), and B = 0, so training starts exactly at the base model.
    pub fn init(config: LoraConfig, model: &LlamaConfig, seed: u64, dtype: DType, dev: &Device) -> Result<Self> {
        config.validate(Some(model))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut pairs = BTreeMap::new();
        for layer in 0..model.num_hidden_layers {
            // In the forward pass's order, whatever order target_modules has: it decides which
            // draws of the generator each A gets.
            for module in Projection::ALL.into_iter().filter(|&p| config.targets(p)) {
                let (fan_in, fan_out) = module.shape(model);
                let bound = 1.0 / (fan_in as f64).sqrt();
                let a: Vec<f32> = (0..config.r * fan_in).map(|_| rng.random_range(-bound..bound) as f32).collect();
                let a = Tensor::from_vec(a, (config.r, fan_in), dev)?.to_dtype(dtype)?;
                let b = Tensor::zeros((fan_out, config.r), dtype, dev)?;
                pairs.insert((layer, module), LoraPair { a: Var::from_tensor(&a)?, b: Var::from_tensor(&b)? });
            }
        }
        Ok(Self { config, base_model: String::new(), pairs })
    }

    /// The adapted projections, in a stable order (layer, then module name).
    pub fn layers(&self) -> impl Iterator<Item = ((usize, Projection), &LoraPair)> {
        self.pairs.iter().map(|(k, v)| (*k, v))
    }

    /// The trainable tensors with their PEFT names, A before B, in a stable order.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::with_capacity(self.pairs.len() * 2);
        for ((layer, module), pair) in &self.pairs {
            out.push((peft_key(*layer, module, Factor::A), &pair.a));
            out.push((peft_key(*layer, module, Factor::B), &pair.b));
        }
        out
    }

    pub fn num_parameters(&self) -> usize {
        self.pairs.values().map(|p| p.a.elem_count() + p.b.elem_count()).sum()
    }

    /// The tensors by PEFT name (f32), as written to `adapter_model.safetensors`.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        self.named_vars().into_iter().map(|(k, v)| Ok((k, v.as_tensor().to_dtype(DType::F32)?))).collect()
    }

    /// PEFT's `adapter_config.json` for this adapter.
    pub fn peft_config_json(&self) -> serde_json::Value {
        let mut targets = self.config.target_modules.clone();
        targets.sort();
        // PEFT writes lora_alpha as given; an integral alpha stays an integer.
        let alpha = if self.config.alpha.fract() == 0.0 {
            serde_json::json!(self.config.alpha as i64)
        } else {
            serde_json::json!(self.config.alpha)
        };
        serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model,
            "r": self.config.r,
            "lora_alpha": alpha,
            "lora_dropout": self.config.dropout,
            "target_modules": targets,
            "use_rslora": self.config.use_rslora,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "use_dora": false,
            "modules_to_save": null,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "revision": null,
        })
    }

    /// Write a PEFT adapter directory (each file written atomically).
    pub fn save_peft(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tensors = self.tensors()?;
        atomic_write_with(&dir.join(WEIGHTS_FILE), |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(anyhow::Error::from)
        })?;
        let json = serde_json::to_string_pretty(&self.peft_config_json())?;
        atomic_write_with(&dir.join(CONFIG_FILE), |tmp| Ok(std::fs::write(tmp, json.as_bytes())?))?;
        Ok(())
    }

    /// Load a PEFT adapter directory for a model, checking every name and shape.
    pub fn load_peft(dir: &Path, model: &LlamaConfig, dtype: DType, dev: &Device) -> Result<Self> {
        let cfg_path = dir.join(CONFIG_FILE);
        let config = read_peft_config(&cfg_path)?;
        config.validate(Some(model)).with_context(|| format!("{}", cfg_path.display()))?;
        let base_model = std::fs::read_to_string(&cfg_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("base_model_name_or_path").and_then(|s| s.as_str()).map(String::from))
            .unwrap_or_default();
        let w_path = dir.join(WEIGHTS_FILE);
        if !w_path.exists() {
            if dir.join("adapter_model.bin").exists() {
                bail!(
                    "{}: missing, only adapter_model.bin (pickle) is there; {}",
                    w_path.display(),
                    crate::model::weights::ONLY_SAFE_FORMATS
                )
            }
            bail!("{}: missing ({} needs its weights beside it)", w_path.display(), CONFIG_FILE)
        }
        let wname = w_path.display().to_string();
        let tensors = candle_core::safetensors::load(&w_path, dev)
            .map_err(|e| anyhow::anyhow!("{wname}: not a readable safetensors file: {e}"))?;
        Self::from_peft_tensors(config, base_model, tensors, &wname, model, dtype)
    }

    /// The weights of a PEFT adapter from the bytes of an `adapter_model.safetensors`,
    /// checked as [`LoraAdapter::load_peft`] does; `wname` names the file in errors.
    pub fn from_peft_weights(
        config: LoraConfig,
        bytes: &[u8],
        wname: &str,
        model: &LlamaConfig,
        dtype: DType,
        dev: &Device,
    ) -> Result<Self> {
        config.validate(Some(model)).with_context(|| format!("{wname}: adapter config"))?;
        let tensors = candle_core::safetensors::load_buffer(bytes, dev)
            .map_err(|e| anyhow::anyhow!("{wname}: not a readable safetensors file: {e}"))?;
        Self::from_peft_tensors(config, String::new(), tensors, wname, model, dtype)
    }

    /// Every tensor named, typed and shaped for `model`, and none missing.
    fn from_peft_tensors(
        config: LoraConfig,
        base_model: String,
        tensors: HashMap<String, Tensor>,
        wname: &str,
        model: &LlamaConfig,
        dtype: DType,
    ) -> Result<Self> {
        let mut a_parts: BTreeMap<(usize, Projection), Tensor> = BTreeMap::new();
        let mut b_parts: BTreeMap<(usize, Projection), Tensor> = BTreeMap::new();
        let mut keys: Vec<_> = tensors.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let Some((layer, module, which)) = parse_peft_key(&key) else {
                bail!("{wname}: tensor {key} is not a LoRA A/B weight of a Llama projection")
            };
            if layer >= model.num_hidden_layers {
                bail!("{wname}: tensor {key} is for layer {layer}, the model has {}", model.num_hidden_layers)
            }
            if !config.targets(module) {
                bail!("{wname}: tensor {key} is for {module}, which is not in target_modules")
            }
            let (fan_in, fan_out) = module.shape(model);
            let t = &tensors[&key];
            if !t.dtype().is_float() {
                bail!("{wname}: tensor {key} has dtype {:?}; LoRA weights are floating point", t.dtype())
            }
            let want = if which == Factor::A { [config.r, fan_in] } else { [fan_out, config.r] };
            if t.dims() != want {
                bail!(
                    "{wname}: tensor {key} has shape {:?}, expected {want:?} (an adapter for another base model?)",
                    t.dims()
                )
            }
            let t = t.to_dtype(dtype)?;
            if which == Factor::A {
                a_parts.insert((layer, module), t)
            } else {
                b_parts.insert((layer, module), t)
            };
        }
        let mut pairs = BTreeMap::new();
        let projections = config.projections()?;
        for layer in 0..model.num_hidden_layers {
            for &module in &projections {
                let k = (layer, module);
                let (Some(a), Some(b)) = (a_parts.remove(&k), b_parts.remove(&k)) else {
                    bail!("{wname}: tensor {} or its B is missing", peft_key(layer, module, Factor::A))
                };
                pairs.insert(k, LoraPair { a: Var::from_tensor(&a)?, b: Var::from_tensor(&b)? });
            }
        }
        Ok(Self { config, base_model, pairs })
    }
}

/// Read PEFT's `adapter_config.json` into our config, refusing LoRA variants we do not
/// implement rather than silently computing something else.
pub fn read_peft_config(path: &Path) -> Result<LoraConfig> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    peft_config_from_str(&text, &name)
}

/// [`read_peft_config`] on the file's text; `name` names the file in errors.
pub fn peft_config_from_str(text: &str, name: &str) -> Result<LoraConfig> {
    let v: serde_json::Value = serde_json::from_str(text).with_context(|| format!("{name}: invalid JSON"))?;
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    if let Some(t) = field("peft_type").and_then(|t| t.as_str())
        && t != "LORA"
    {
        bail!("{name}: peft_type {t:?} is not supported (only \"LORA\")")
    }
    let r = field("r")
        .and_then(|x| x.as_u64())
        .with_context(|| format!("{name}: field \"r\" is missing or not a positive integer"))?;
    let alpha = field("lora_alpha")
        .and_then(|x| x.as_f64())
        .with_context(|| format!("{name}: field \"lora_alpha\" is missing or not a number"))?;
    let dropout = field("lora_dropout").and_then(|x| x.as_f64()).unwrap_or(0.0);
    let use_rslora = field("use_rslora").and_then(|x| x.as_bool()).unwrap_or(false);
    let target_modules: Vec<String> = match field("target_modules") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|m| m.as_str().map(String::from))
            .collect::<Option<_>>()
            .with_context(|| format!("{name}: field \"target_modules\" must list strings"))?,
        Some(serde_json::Value::String(s)) if s == "all-linear" => {
            TARGET_MODULES.iter().map(|s| s.to_string()).collect()
        }
        Some(other) => bail!("{name}: field \"target_modules\" = {other} is not supported (use a list)"),
        None => bail!("{name}: field \"target_modules\" is missing"),
    };
    let unsupported = [
        ("use_dora", field("use_dora").and_then(|x| x.as_bool()).unwrap_or(false)),
        ("fan_in_fan_out", field("fan_in_fan_out").and_then(|x| x.as_bool()).unwrap_or(false)),
        ("bias", field("bias").and_then(|x| x.as_str()).is_some_and(|b| b != "none")),
        ("modules_to_save", field("modules_to_save").and_then(|x| x.as_array()).is_some_and(|a| !a.is_empty())),
        ("rank_pattern", field("rank_pattern").and_then(|x| x.as_object()).is_some_and(|o| !o.is_empty())),
        ("alpha_pattern", field("alpha_pattern").and_then(|x| x.as_object()).is_some_and(|o| !o.is_empty())),
        ("layers_to_transform", field("layers_to_transform").is_some()),
    ];
    for (key, set) in unsupported {
        if set {
            bail!("{name}: field \"{key}\" is set, which this crate does not support")
        }
    }
    Ok(LoraConfig { r: r as usize, alpha, dropout, target_modules, use_rslora })
}

/// Attaching an adapter to a model (here rather than in `model`, which knows nothing of
/// adapter files).
impl Llama {
    /// Route every targeted projection through the adapter's A and B (shared tensors: an
    /// optimizer step on the adapter is seen by the model at once).
    pub fn apply_adapter(&mut self, adapter: &LoraAdapter) -> Result<()> {
        self.remove_adapter();
        let (scale, dropout, dtype) = (adapter.config.scaling(), adapter.config.dropout, self.dtype());
        for ((layer, module), pair) in adapter.layers() {
            self.projection_mut(layer, module)?.lora = Some(LoraBranch {
                a: pair.a.as_tensor().to_dtype(dtype)?,
                b: pair.b.as_tensor().to_dtype(dtype)?,
                scale,
                dropout,
            });
        }
        Ok(())
    }

    /// Subtract an adapter's update from the weights: undoes [`Llama::merge_adapter`] up to
    /// rounding.
    pub fn unmerge_adapter(&mut self, adapter: &LoraAdapter) -> Result<()> {
        self.refuse_if_quantized("unmerge an adapter from it")?;
        let scale = adapter.config.scaling();
        for ((layer, module), pair) in adapter.layers() {
            let lin = self.projection_mut(layer, module)?;
            let delta = (pair.b.as_tensor().matmul(pair.a.as_tensor())? * scale)?;
            lin.weight = (&lin.weight - delta.to_dtype(lin.weight.dtype())?)?;
        }
        Ok(())
    }
}
