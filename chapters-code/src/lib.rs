//! `lorakit`: LoRA fine-tuning for Llama-family models with candle, the companion crate of
//! the book *LoRA Fine-Tuning by Doing*.
//!
//! candle is re-exported so that book listings can `use lorakit::candle::...` without
//! naming candle's own crates.
pub use candle_core as candle;
pub use candle_nn;
pub use candle_transformers;

pub mod chat;
pub mod data;
pub mod eval;
pub mod export;
pub mod fetch;
pub mod generate;
pub mod hub;
pub mod io;
pub mod load;
pub mod lora;
pub mod model;
pub mod ollama;
pub mod ops;
pub mod progress;
pub mod runtime;
pub mod score;
pub mod settings;
pub mod tokenizer;
pub mod train;

/// lorakit's version, recorded in benchmark reports and exported files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use lora::{LoraAdapter, LoraConfig};
pub use model::{Checkpoint, Llama, LlamaConfig};
