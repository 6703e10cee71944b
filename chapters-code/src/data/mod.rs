//! Training data: chat examples, formatted with the model's own template and tokenized
//! with the answer tokens as labels.
pub mod format;

pub use format::{TokenizedExample, collate, tokenize_chat};
