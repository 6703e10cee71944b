//! SmolLM2's and Llama 3.2's chat templates rendered (lorakit::chat) with hostile messages:
//! any role, any content, Jinja-looking text. Content is data, never template code: it must
//! come out verbatim and the output can only grow linearly with the input.
//!
//! Input: messages separated by U+001E; `role U+001F content`, or just content (roles then
//! alternate user/assistant). An odd first byte asks for the generation prompt.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::chat::{ChatTemplate, Message};
use std::sync::LazyLock;

/// The template of the project's default model, as the reference fixture recorded it.
static SMOLLM2: LazyLock<ChatTemplate> = LazyLock::new(|| {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../shared/fixtures/smollm2/chat_template.json")).unwrap();
    ChatTemplate::new(fixture["chat_template"].as_str().unwrap(), "<|im_start|>", "<|im_end|>").unwrap()
});
static LLAMA32: LazyLock<ChatTemplate> = LazyLock::new(|| {
    ChatTemplate::new(include_str!("../../chapters-code/src/templates/llama3.2.jinja"), "<|begin_of_text|>", "<|eot_id|>")
        .unwrap()
});

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let messages: Vec<Message> = text
        .split('\u{1e}')
        .enumerate()
        .map(|(i, m)| match m.split_once('\u{1f}') {
            Some((role, content)) => Message::new(role, content),
            None => Message::new(if i % 2 == 0 { "user" } else { "assistant" }, m),
        })
        .collect();
    let generation_prompt = flags & 1 == 1;
    // Templates add a fixed frame per message; content may be JSON-escaped (≤ 6 bytes a byte).
    let bound = 4096 + 512 * messages.len() + 6 * rest.len();

    if let Ok(out) = SMOLLM2.render(&messages, generation_prompt) {
        assert!(out.len() <= bound, "output of {} bytes from {} bytes of input", out.len(), rest.len());
        for m in &messages {
            assert!(out.contains(&m.content), "content not verbatim: {:?}", m.content);
        }
    }
    if let Ok(out) = LLAMA32.render(&messages, generation_prompt) {
        assert!(out.len() <= bound, "output of {} bytes from {} bytes of input", out.len(), rest.len());
        // Llama 3.2 trims content and JSON-encodes tool results; plain turns come out verbatim.
        for m in messages.iter().filter(|m| m.role == "user" || m.role == "assistant") {
            assert!(out.contains(m.content.trim()), "content not verbatim: {:?}", m.content);
        }
    }
});
