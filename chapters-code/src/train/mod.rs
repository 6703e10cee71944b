//! Training: the masked causal-LM loss, AdamW, the schedule, checkpoints and the loop.
pub mod checkpoint;
pub mod config;
pub mod curve;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod system_prompts;
pub mod trainer;

pub use config::{Schedule, TrainConfig};
pub use crate::data::IGNORE;
pub use loss::{causal_lm_loss, eval_loss};
pub use optim::{AdamW, AdamWConfig};
pub use system_prompts::SystemPrompts;
pub use trainer::{TrainOptions, TrainSummary, train};
