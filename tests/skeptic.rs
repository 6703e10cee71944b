//! The book's Rust snippets, as the book shows them: `build.rs` expands the chapters'
//! `{{#rustdoc_include}}` directives and skeptic generates one test per ```` ```rust ````
//! fence. Plain fences compile and run; `no_run` fences (listings that need the real model
//! or minutes of CPU) compile only. The listing programs themselves (`chapters-code/examples/`)
//! are compiled by cargo and run by `tests/book_commands.rs`, which compares their output
//! with the book.
//!
//!     cargo test -p lora-book --test skeptic
//!
//! Listings that run print what the book quotes; `bash scripts/book.sh outputs` refreshes
//! the quoted copies in `book/listings/`.
include!(concat!(env!("OUT_DIR"), "/skeptic-tests.rs"));
