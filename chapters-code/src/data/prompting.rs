//! The prompting baselines LoRA has to beat: the base model *told* the task in a fuller
//! system prompt, and *shown* it with k solved training examples before the question
//! (few-shot). An adapter is worth training only where it does better than these.

use super::load::Record;
use super::synth::{FACTS, HELD_OUT_FACTS, Task, distinct_indices};
use crate::chat::{Message, Role};

/// The system prompt of the "prompted" baseline: everything a user would write to get the
/// task done without training. For Support that is the whole fact sheet: every answer the
/// adapter had to learn, and the held-out facts it never saw, as a sheet written after
/// training would have them.
pub fn instructions(task: Task) -> String {
    match task {
        // A template to fill in: SmolLM2-135M ignores a description of the keys (field
        // accuracy 0.000 on 12 test orders) and follows a template a little (0.047 on 16).
        Task::Extract => "Read the customer's order and reply with only this JSON, filled in: {\"name\": \
             \"<first name>\", \"city\": \"<city>\", \"product\": \"<product, singular>\", \"quantity\": <number>}"
            .to_string(),
        Task::Support => {
            let facts: Vec<&str> = FACTS.iter().chain(&HELD_OUT_FACTS).map(|f| f.answer).collect();
            format!(
                "You are the support assistant for Brightbox, a smart home hub. Answer in one short sentence, \
                 using only these facts:\n- {}",
                facts.join("\n- ")
            )
        }
        Task::Persona => "You are a friendly ship's captain. Begin every answer with \"Aye!\", answer the question \
             correctly in a pirate's voice in one sentence, and end with \"Fair winds.\""
            .to_string(),
    }
}

/// `records` with their system prompt replaced by (or, where they have none, given)
/// [`instructions`].
pub fn with_instructions(task: Task, records: &[Record]) -> Vec<Record> {
    let system = Message::new(Role::System, instructions(task));
    records
        .iter()
        .map(|r| {
            let rest = r.messages.iter().filter(|m| !m.role_is(Role::System)).cloned();
            Record::new(std::iter::once(system.clone()).chain(rest).collect())
        })
        .collect()
}

/// `records` with the same `k` examples of `pool` (drawn with `seed`) as earlier turns of
/// the conversation, after the record's own system prompt: the model sees k questions
/// answered the way the task wants before it answers the real one.
pub fn few_shot(records: &[Record], pool: &[Record], k: usize, seed: u64) -> Vec<Record> {
    let shots: Vec<Message> = distinct_indices(pool.len(), k, seed)
        .into_iter()
        .flat_map(|i| pool[i].messages.iter().filter(|m| !m.role_is(Role::System)).cloned())
        .collect();
    records
        .iter()
        .map(|r| {
            let system = r.messages.iter().take_while(|m| m.role_is(Role::System)).cloned();
            let rest = r.messages.iter().skip_while(|m| m.role_is(Role::System)).cloned();
            Record::new(system.chain(shots.iter().cloned()).chain(rest).collect())
        })
        .collect()
}
