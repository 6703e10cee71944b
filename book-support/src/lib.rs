//! Paths the book's listing programs share: the repository's `data/` folder and the `chapters-code/` folder.
use std::path::PathBuf;

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
