//! A teacher model on an Ollama server (through ollama-rs) that rewrites the user side of
//! synthetic examples, so the training data has phrasings no template produced.
//!
//! Only the question is rewritten; the answer stays the generator's, so labels stay
//! correct by construction. A rewrite that loses a name or number is discarded.

use crate::data::Record;
use anyhow::{Context, Result, bail};
use ollama_rs::Ollama;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::models::ModelOptions;
use std::collections::HashSet;
use std::time::Duration;

/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";

pub struct Teacher {
    ollama: Ollama,
    host: String,
    model: String,
    timeout: Duration,
    rt: tokio::runtime::Runtime,
}

/// What a paraphrasing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParaphraseStats {
    pub asked: usize,
    pub kept: usize,
    /// Rewrites that dropped a name or number, or repeated an existing prompt.
    pub discarded: usize,
}

impl Teacher {
    /// Connect to `host` (or `$OLLAMA_HOST`, or the default) and check that it answers.
    pub fn connect(host: Option<&str>, model: &str, timeout: Duration) -> Result<Self> {
        let host = host
            .map(String::from)
            .or_else(|| std::env::var("OLLAMA_HOST").ok())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let url = if host.contains("://") { host.clone() } else { format!("http://{host}") };
        let ollama = Ollama::try_new(url.as_str()).with_context(|| format!("OLLAMA_HOST {host:?} is not a URL"))?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let teacher = Self { ollama, host: url, model: model.to_string(), timeout, rt };
        let models = teacher
            .call(teacher.ollama.list_local_models())
            .with_context(|| format!("cannot reach Ollama at {}: is it running? (start it with `ollama serve`)", teacher.host))?;
        if !models.iter().any(|m| m.name == model || m.name == format!("{model}:latest")) {
            bail!("the Ollama server at {} has no model {model:?} (run `ollama pull {model}`)", teacher.host)
        }
        Ok(teacher)
    }

    fn call<T, E: std::fmt::Display>(&self, fut: impl std::future::Future<Output = Result<T, E>>) -> Result<T> {
        match self.rt.block_on(async { tokio::time::timeout(self.timeout, fut).await }) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => bail!("Ollama at {}: {e}", self.host),
            Err(_) => bail!("Ollama at {} did not answer within {:?}", self.host, self.timeout),
        }
    }

    /// One rewrite of `text`, seeded so reruns give the same data.
    pub fn paraphrase(&self, text: &str, seed: i32) -> Result<String> {
        let prompt = format!(
            "Rewrite this message in different words. Keep every name, number, place and product \
             exactly as written. Reply with the rewritten message only.\n\n{text}"
        );
        let request = GenerationRequest::new(self.model.clone(), prompt)
            .options(ModelOptions::default().temperature(0.8).seed(seed));
        let response = self.call(self.ollama.generate(request))?;
        Ok(response.response.trim().trim_matches('"').trim().to_string())
    }
}

/// Add up to `per_record` teacher rewrites of each record's last user message (answer
/// unchanged). Rewrites that drop a capitalised word or number of the original, or repeat
/// a prompt already present, are discarded.
pub fn paraphrase_records(teacher: &Teacher, records: &[Record], per_record: usize, seed: u64) -> Result<(Vec<Record>, ParaphraseStats)> {
    let mut seen: HashSet<String> = records.iter().filter_map(user_text).collect();
    let mut out = records.to_vec();
    let mut stats = ParaphraseStats::default();
    for (i, r) in records.iter().enumerate() {
        let Some(original) = user_text(r) else { continue };
        for k in 0..per_record {
            stats.asked += 1;
            let s = (seed as i32).wrapping_add((i * per_record + k) as i32);
            let rewrite = teacher.paraphrase(&original, s).with_context(|| format!("record {}", i + 1))?;
            if rewrite.is_empty() || !keeps_key_terms(&original, &rewrite) || !seen.insert(rewrite.clone()) {
                stats.discarded += 1;
                continue;
            }
            let mut copy = r.clone();
            if let Some(m) = copy.messages.iter_mut().rev().find(|m| m.role == "user") {
                m.content = rewrite;
            }
            out.push(copy);
            stats.kept += 1;
        }
    }
    Ok((out, stats))
}

fn user_text(r: &Record) -> Option<String> {
    r.messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone())
}

/// Every number and every capitalised word after the first of `original` is in `rewrite`.
fn keeps_key_terms(original: &str, rewrite: &str) -> bool {
    original
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .skip(1)
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit() || c.is_uppercase()))
        .filter(|w| *w != "I")
        .all(|w| rewrite.contains(w))
}

#[cfg(test)]
mod tests {
    use super::keeps_key_terms;

    #[test]
    fn key_terms_must_survive() {
        let o = "Hi, I'm Mei from Lisbon and I'd like 6 Solar Lanterns.";
        assert!(keeps_key_terms(o, "Mei in Lisbon wants 6 Solar Lanterns."));
        assert!(!keeps_key_terms(o, "Mei in Lisbon wants six Solar Lanterns."));
        assert!(!keeps_key_terms(o, "Someone in Lisbon wants 6 Solar Lanterns."));
    }
}
