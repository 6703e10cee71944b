//! The base model: config, checkpoint loading, RoPE and the Llama decoder.
pub mod config;
pub mod llama;
pub mod rope;
pub mod weights;

pub use config::LlamaConfig;
pub use llama::{KvCache, Llama};
pub use weights::Checkpoint;
