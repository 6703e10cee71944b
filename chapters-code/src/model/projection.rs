//! The seven linear projections of a Llama block, the ones LoRA adapts: their names in
//! Hugging Face and GGUF checkpoints, and their shapes.

use super::LlamaConfig;
use std::fmt;

/// One projection of a Llama block. Ordered by its Hugging Face name (`down_proj` <
/// `gate_proj` < … < `v_proj`), the order PEFT files and our adapters list tensors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Projection {
    /// Every projection, in the order of the model's forward pass.
    pub const ALL: [Projection; 7] = [
        Projection::Q,
        Projection::K,
        Projection::V,
        Projection::O,
        Projection::Gate,
        Projection::Up,
        Projection::Down,
    ];
    /// Their Hugging Face names, in the same order.
    pub const NAMES: [&'static str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// The Hugging Face name, `q_proj` … `down_proj` (PEFT's `target_modules`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Projection> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The sub-module holding it: `self_attn` or `mlp`.
    pub fn group(self) -> &'static str {
        match self {
            Projection::Q | Projection::K | Projection::V | Projection::O => "self_attn",
            Projection::Gate | Projection::Up | Projection::Down => "mlp",
        }
    }

    /// Its path in a Hugging Face checkpoint: `model.layers.3.self_attn.q_proj`.
    pub fn hf_path(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}.{}", self.group(), self.name())
    }

    /// Its tensor name in a GGUF file without the `blk.N.` prefix: `attn_q` … `ffn_down`.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Projection::Q => "attn_q",
            Projection::K => "attn_k",
            Projection::V => "attn_v",
            Projection::O => "attn_output",
            Projection::Gate => "ffn_gate",
            Projection::Up => "ffn_up",
            Projection::Down => "ffn_down",
        }
    }

    pub fn from_gguf(name: &str) -> Option<Projection> {
        Self::ALL.into_iter().find(|p| p.gguf_name() == name)
    }

    /// (in, out) features for a model.
    pub fn shape(self, c: &LlamaConfig) -> (usize, usize) {
        let (h, f) = (c.hidden_size, c.intermediate_size);
        // Saturating: configs come from untrusted headers, and a saturated size matches no
        // tensor.
        let q = c.num_attention_heads.saturating_mul(c.head_dim);
        let kv = c.num_key_value_heads.saturating_mul(c.head_dim);
        match self {
            Projection::Q => (h, q),
            Projection::K | Projection::V => (h, kv),
            Projection::O => (q, h),
            Projection::Gate | Projection::Up => (h, f),
            Projection::Down => (f, h),
        }
    }

    /// The number of heads whose rows llama.cpp interleaves for RoPE (see
    /// [`super::weights::permute_qk`]): for Q and K only.
    pub fn qk_heads(self, c: &LlamaConfig) -> Option<usize> {
        match self {
            Projection::Q => Some(c.num_attention_heads),
            Projection::K => Some(c.num_key_value_heads),
            _ => None,
        }
    }
}

impl Ord for Projection {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl PartialOrd for Projection {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl AsRef<str> for Projection {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl fmt::Display for Projection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_by_name() {
        for p in Projection::ALL {
            assert_eq!(Projection::from_name(p.name()), Some(p));
            assert_eq!(Projection::from_gguf(p.gguf_name()), Some(p));
        }
        let mut sorted = Projection::ALL;
        sorted.sort();
        let mut names = Projection::NAMES;
        names.sort();
        assert_eq!(sorted.map(Projection::name), names);
        assert_eq!(Projection::Down.hf_path(3), "model.layers.3.mlp.down_proj");
    }
}
