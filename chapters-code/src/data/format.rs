//! From a conversation to token ids and labels.
//!
//! The prompt is rendered by the model's chat template exactly as at inference time, and
//! only the assistant's answer is scored by default: the model learns to answer, not to
//! predict the user's question.

use crate::chat::{Message, Role};
use crate::load::LoadedModel;
use anyhow::{Context, Result, bail};

/// Label value that is not scored (PyTorch's `ignore_index`), used for prompt tokens and
/// padding.
pub const IGNORE: i64 = -100;

/// One training sequence: `labels[t]` is the token the model should predict at `t`
/// (after the causal shift in the loss), or `IGNORE`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizedExample {
    pub ids: Vec<u32>,
    pub labels: Vec<i64>,
}

impl TokenizedExample {
    /// How many labels are scored.
    pub fn n_targets(&self) -> usize {
        self.labels.iter().skip(1).filter(|&&l| l != IGNORE).count()
    }
}

/// Tokenize a conversation whose last message is the assistant's answer. With
/// `train_on_prompt` every token is a label; otherwise only the answer's tokens (including
/// the template's end-of-turn token, so the model learns to stop).
pub fn tokenize_chat(
    m: &LoadedModel,
    messages: &[Message],
    max_len: usize,
    train_on_prompt: bool,
) -> Result<TokenizedExample> {
    let Some((answer, context)) = messages.split_last() else { bail!("the conversation is empty") };
    if !answer.role_is(Role::Assistant) {
        bail!("the last message must be the assistant's answer (got role {:?})", answer.role)
    }
    let template = m.template.as_ref().with_context(|| format!("{} has no chat template", m.path.display()))?;
    let prompt = template.render(context, true)?;
    let full = template.render(messages, false)?;
    let Some(rest) = full.strip_prefix(prompt.as_str()) else {
        bail!("the chat template does not render the answer after the prompt; cannot mask the prompt")
    };
    let prompt_ids = m.encode(&prompt)?;
    let answer_ids = m.encode(rest)?;
    let n = prompt_ids.len() + answer_ids.len();
    if n > max_len {
        bail!("the example is {n} tokens long, more than max_len = {max_len}")
    }
    let labels = prompt_ids
        .iter()
        .map(|&t| if train_on_prompt { t as i64 } else { IGNORE })
        .chain(answer_ids.iter().map(|&t| t as i64))
        .collect();
    let ids = prompt_ids.into_iter().chain(answer_ids).collect();
    Ok(TokenizedExample { ids, labels })
}

/// Right-pad a batch to its longest sequence with `pad_id` (labels `IGNORE`). With a causal
/// mask, padding at the end cannot influence the real tokens, so no attention mask is needed.
pub fn collate(batch: &[&TokenizedExample], pad_id: u32) -> (Vec<Vec<u32>>, Vec<Vec<i64>>) {
    let len = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    batch
        .iter()
        .map(|e| {
            let pad = len - e.ids.len();
            let ids = e.ids.iter().copied().chain(std::iter::repeat_n(pad_id, pad)).collect();
            let labels = e.labels.iter().copied().chain(std::iter::repeat_n(IGNORE, pad)).collect();
            (ids, labels)
        })
        .unzip()
}
