//! Training: the masked causal-LM loss, AdamW, the schedule, one step, checkpoints and the loop.
pub mod checkpoint;
pub mod config;
pub mod curve;
pub mod loss;
pub mod optim;
pub mod run_dir;
pub mod schedule;
pub mod step;
pub mod system_prompts;
pub mod trainer;

pub use crate::data::IGNORE;
pub use config::{BaseDtype, Schedule, TrainConfig};
pub use loss::{causal_lm_loss, eval_loss};
pub use optim::{AdamW, AdamWConfig};
pub use run_dir::{CheckpointDir, RunDir};
pub use step::{MicroBatch, StepOutcome, StepSettings, step};
pub use system_prompts::SystemPrompts;
pub use trainer::batch_indices;
pub use trainer::{StepMetrics, TrainObserver, TrainOptions, TrainSummary, train};
