//! `lora-harness`: the measurement harnesses behind the LoRA book's numbers, built on `lorakit`
//! like any user's program. `bench` times lorakit against the Python peer; `experiments` trains
//! the adapters whose results the book's tables and plots show.
pub mod bench;
pub mod experiments;
