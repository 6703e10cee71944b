//! What the book's listing programs share: the repository's `data/` folder and the `chapters-code/` folder, and
//! seeded random tensors.
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The folders a search starts from: `CARGO_MANIFEST_DIR` if set, then the current directory.
///
/// `cargo run` starts a listing in the repository (or below it) with `CARGO_MANIFEST_DIR` set; the book's tests
/// (skeptic) run it from a scratch folder with the variable set to the root package. It is read when the program
/// runs, not baked in with `env!`, so the search follows the checkout a listing runs in, not the one this crate was
/// compiled in.
fn starts() -> impl Iterator<Item = PathBuf> {
    [std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from), std::env::current_dir().ok()].into_iter().flatten()
}

/// The book's `data/` folder, found from where cargo runs us.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    for start in starts() {
        if let Some(root) = start.ancestors().find(|d| d.join("data/extract/train.jsonl").is_file()) {
            return Ok(root.join("data"));
        }
    }
    anyhow::bail!("the book's data/ folder was not found: run this from the repository")
}

/// The `chapters-code/` folder (the `lorakit` crate), found from where cargo runs us.
pub fn crate_dir() -> anyhow::Result<PathBuf> {
    for start in starts() {
        for dir in start.ancestors() {
            for candidate in [dir.to_path_buf(), dir.join("chapters-code")] {
                if candidate.join("src/templates/llama3.2.jinja").is_file() {
                    return Ok(candidate);
                }
            }
        }
    }
    anyhow::bail!("chapters-code/ was not found: run this from the repository")
}

/// Random matrices from a seed, so a listing prints the same numbers on every run (candle's own
/// random tensors cannot be seeded on the CPU). The same generator `lorakit` initialises adapters with.
pub struct SeededRandom(ChaCha8Rng);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A `rows × cols` f32 matrix, uniform in (−bound, bound).
    pub fn uniform(&mut self, (rows, cols): (usize, usize), bound: f32, dev: &Device) -> anyhow::Result<Tensor> {
        let v: Vec<f32> = (0..rows * cols).map(|_| self.0.random_range(-bound..bound)).collect();
        Ok(Tensor::from_vec(v, (rows, cols), dev)?)
    }
}
