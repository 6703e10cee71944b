//! A teacher model on an Ollama server that rewrites the user side of synthetic examples.
//!
//! The rewrites give the training data phrasings no template produced. Only the question is
//! rewritten; the answer stays the generator's, so labels stay correct by construction. A
//! rewrite that loses a name or number is discarded.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ollama_rs::error::OllamaError;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::models::ModelOptions;

use super::client::{Client, ServerError};
use super::host::Host;
use crate::chat::Role;
use crate::data::Record;

/// A model on an Ollama server that rewrites questions.
pub struct Teacher {
    client: Client,
    model: String,
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
    /// Connect to `host` (`None`: Ollama's default; see [`Host::resolve`]) and check that it
    /// answers and has `model`.
    pub fn connect(host: Option<&str>, model: &str, timeout: Duration) -> Result<Self> {
        let client = Client::new(&Host::resolve(host)?, timeout)?;
        let teacher = Self { client, model: model.to_string() };
        let shown = teacher.client.shown();
        let models = teacher.client.list_models().map_err(|e| teacher.error(e)).with_context(|| {
            format!("cannot reach Ollama at {shown}: is it running? (start it with `ollama serve`)")
        })?;
        if !models.iter().any(|m| m.name == model || m.name == format!("{model}:latest")) {
            bail!("the Ollama server at {shown} has no model {model:?} (run `ollama pull {model}`)")
        }
        Ok(teacher)
    }

    fn call<T>(&self, what: &str, fut: impl std::future::Future<Output = Result<T, OllamaError>>) -> Result<T> {
        self.client.call(what, fut).map_err(|e| self.error(e))
    }

    /// A failed call in the teacher's own words ([`ServerError`]'s name `lora deploy`'s flags).
    fn error(&self, e: ServerError) -> anyhow::Error {
        let host = self.client.shown();
        match e {
            ServerError::Timeout { .. } => {
                anyhow!("Ollama at {host} did not answer within {:?}", self.client.timeout())
            }
            ServerError::Unreachable { cause, .. } | ServerError::Transport { cause, .. } => {
                anyhow!("Ollama at {host}: {cause}")
            }
            ServerError::Refused { message, .. } => anyhow!("Ollama at {host}: {message}"),
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
        let response = self.call("POST /api/generate", self.client.ollama().generate(request))?;
        Ok(response.response.trim().trim_matches('"').trim().to_string())
    }
}

/// Add up to `per_record` teacher rewrites of each record's last user message (answer
/// unchanged). Rewrites that drop a capitalised word or number of the original, or repeat
/// a prompt already present, are discarded.
pub fn paraphrase_records(
    teacher: &Teacher,
    records: &[Record],
    per_record: usize,
    seed: u64,
) -> Result<(Vec<Record>, ParaphraseStats)> {
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
            if let Some(m) = copy.messages.iter_mut().rev().find(|m| m.role_is(Role::User)) {
                m.content = rewrite;
            }
            out.push(copy);
            stats.kept += 1;
        }
    }
    Ok((out, stats))
}

fn user_text(r: &Record) -> Option<String> {
    r.messages.iter().rev().find(|m| m.role_is(Role::User)).map(|m| m.content.clone())
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
