//! Configuration that comes from the environment, read in one place. A program reads it once
//! at its edge ([`Settings::from_env`]) and passes it in; the `*_with` functions take it.

use std::path::PathBuf;

/// What the environment says about caches, the Hugging Face Hub and Ollama.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Where the built-in model is cached (`$LORAKIT_CACHE`); `None`: the user's cache
    /// directory + `lorakit`.
    pub cache_dir: Option<PathBuf>,
    /// Use only the local Hugging Face cache, never download (`$HF_HUB_OFFLINE` = `1` or `true`).
    pub hf_hub_offline: bool,
    /// The Hugging Face cache, where Python's `huggingface_hub` keeps it too: `$HF_HUB_CACHE`,
    /// else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`. `None`: no home directory.
    pub hf_hub_cache: Option<PathBuf>,
    /// The Hub's address (`$HF_ENDPOINT`, for mirrors); `None`: `https://huggingface.co`.
    pub hf_endpoint: Option<String>,
    /// `$HF_TOKEN`, for gated models such as Llama 3.2. Without it the token file that
    /// `huggingface-cli login` writes (`$HF_HOME/token`) is used, as Python does.
    pub hf_token: Option<Secret>,
    /// Ollama's address (`$OLLAMA_HOST`); `None`: Ollama's default, `http://127.0.0.1:11434`.
    pub ollama_host: Option<String>,
    /// Ollama's model store (`$OLLAMA_MODELS`), for `--model ollama:NAME`; `None`: where
    /// Ollama keeps it by default (see [`crate::ollama::store::store_roots`]).
    pub ollama_models: Option<PathBuf>,
}

impl Settings {
    /// Read the variables above; unset or empty ones stay at their defaults.
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            cache_dir: std::env::var_os("LORAKIT_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from),
            hf_hub_offline: var("HF_HUB_OFFLINE").is_some_and(|v| v == "1" || v == "true"),
            hf_hub_cache: var("HF_HUB_CACHE").map(PathBuf::from).or_else(|| {
                let cache =
                    var("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| dirs::home_dir().map(|h| h.join(".cache")));
                let home = var("HF_HOME").map(PathBuf::from).or_else(|| cache.map(|c| c.join("huggingface")));
                home.map(|h| h.join("hub"))
            }),
            hf_endpoint: var("HF_ENDPOINT"),
            hf_token: var("HF_TOKEN").map(Secret),
            ollama_host: std::env::var("OLLAMA_HOST").ok(),
            ollama_models: std::env::var_os("OLLAMA_MODELS").filter(|v| !v.is_empty()).map(PathBuf::from),
        }
    }
}

/// A credential: kept out of `Debug` output, so printing [`Settings`] never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}
