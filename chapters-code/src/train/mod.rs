//! Training: the masked causal-LM loss and AdamW.
pub mod loss;
pub mod optim;

pub use loss::{IGNORE, causal_lm_loss};
pub use optim::{AdamW, AdamWConfig};
