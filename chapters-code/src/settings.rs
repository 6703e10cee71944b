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
    /// Whether `$HF_TOKEN` is set. hf-hub reads the token (and `$HF_HOME`) itself; this only
    /// decides the advice given when a gated model is refused.
    pub hf_token_set: bool,
    /// Ollama's address (`$OLLAMA_HOST`); `None`: Ollama's default, `http://127.0.0.1:11434`.
    pub ollama_host: Option<String>,
}

impl Settings {
    /// Read the variables above; unset or empty ones stay at their defaults.
    pub fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            cache_dir: std::env::var_os("LORAKIT_CACHE").filter(|v| !v.is_empty()).map(PathBuf::from),
            hf_hub_offline: var("HF_HUB_OFFLINE").is_some_and(|v| v == "1" || v == "true"),
            hf_token_set: std::env::var("HF_TOKEN").is_ok(),
            ollama_host: std::env::var("OLLAMA_HOST").ok(),
        }
    }
}
