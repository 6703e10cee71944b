//! The system prompts a run trained under, kept in its output directory: an adapter learns
//! its task *given* that prompt, so whatever serves the adapter must send the same one.

use crate::data::{Record, load_dataset};
use crate::io::atomic_write;
use crate::train::{RunDir, TrainConfig};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How often each system prompt occurs in the training data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPrompts {
    /// Training examples in all, with or without a system prompt.
    pub examples: usize,
    /// Every distinct prompt, most frequent first (ties in order of first appearance).
    pub prompts: Vec<PromptCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptCount {
    pub text: String,
    pub examples: usize,
}

impl SystemPrompts {
    pub fn count(records: &[Record]) -> Self {
        let mut prompts: Vec<PromptCount> = Vec::new();
        for system in records.iter().filter_map(Record::system) {
            match prompts.iter_mut().find(|p| p.text == system) {
                Some(p) => p.examples += 1,
                None => prompts.push(PromptCount { text: system.to_string(), examples: 1 }),
            }
        }
        // A stable sort keeps first appearance as the tie-break.
        prompts.sort_by_key(|p| std::cmp::Reverse(p.examples));
        SystemPrompts { examples: records.len(), prompts }
    }

    pub fn most_frequent(&self) -> Option<&PromptCount> {
        self.prompts.first()
    }

    /// Examples that carry a system prompt.
    pub fn with_prompt(&self) -> usize {
        self.prompts.iter().map(|p| p.examples).sum()
    }

    pub fn write(&self, run_dir: &Path) -> Result<()> {
        atomic_write(&RunDir::new(run_dir).system_prompts(), serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// The record of the run in `run_dir` and the file it came from: `system_prompts.json`,
    /// or for a run from before that file existed, the training data its `train_config.toml`
    /// names (when that file is still there). `None` for an adapter with neither, such as a
    /// PEFT adapter trained elsewhere.
    pub fn of_run(run_dir: &Path) -> Result<Option<(SystemPrompts, PathBuf)>> {
        let run = RunDir::new(run_dir);
        let file = run.system_prompts();
        if file.is_file() {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let record = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a system prompt record", file.display()))?;
            return Ok(Some((record, file)));
        }
        let config = run.train_config();
        if !config.is_file() {
            return Ok(None);
        }
        let cfg = TrainConfig::from_toml_file(&config)?;
        if !cfg.train_data.is_file() {
            return Ok(None);
        }
        let records = load_dataset(&cfg.train_data)?;
        Ok(Some((SystemPrompts::count(&records), cfg.train_data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Message;

    fn record(system: Option<&str>) -> Record {
        let mut m: Vec<Message> = system.map(|s| vec![Message::new("system", s)]).unwrap_or_default();
        m.push(Message::new("user", "q"));
        m.push(Message::new("assistant", "a"));
        Record::new(m)
    }

    #[test]
    fn most_frequent_first_ties_by_first_appearance() {
        let rs = [
            record(Some("b")),
            record(Some("a")),
            record(None),
            record(Some("a")),
            record(Some("c")),
            record(Some("b")),
        ];
        let s = SystemPrompts::count(&rs);
        let got: Vec<(&str, usize)> = s.prompts.iter().map(|p| (p.text.as_str(), p.examples)).collect();
        assert_eq!(got, [("b", 2), ("a", 2), ("c", 1)]);
        assert_eq!((s.examples, s.with_prompt()), (6, 5));
        assert!(SystemPrompts::count(&[record(None)]).most_frequent().is_none());
    }
}
