//! The base model: config, projections, checkpoint loading, RoPE and the Llama decoder.
pub mod config;
pub mod llama;
pub mod projection;
pub mod rope;
pub mod weights;

pub use config::LlamaConfig;
pub use llama::{KvCache, Llama};
pub use projection::Projection;
pub use weights::Checkpoint;
