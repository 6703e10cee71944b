//! Training data: loading and checking datasets, the book's synthetic tasks and their
//! metrics, and formatting chat examples with the model's own template into token ids
//! and labels.
pub mod check;
pub mod format;
pub mod load;
pub mod metrics;
pub mod prompting;
pub mod synth;

pub use check::{DatasetReport, check};
pub use format::{IGNORE, TokenizedExample, collate, tokenize_chat};
pub use load::{DataError, Record, load_dataset, save_dataset};
pub use metrics::{exact_match, json_field_accuracy, persona_ok, task_metric};
pub use synth::{SplitSizes, Splits, Task, split, synthesize, task_splits};
