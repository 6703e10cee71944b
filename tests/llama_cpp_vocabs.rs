//! The tokenizer rebuilt from a GGUF gives llama.cpp's own reference tokenizations: every
//! `models/ggml-vocab-*.gguf` with `.inp`/`.out` cases in the llama.cpp source that
//! node-llama-cpp ships (`tests/test-tokenizer-0.cpp`'s check: no BOS, special tokens not
//! parsed). Vocabularies whose tokenizer the crate supports must match case for case; the
//! others must be refused with an error naming what is unsupported.

use lora_book::llama_cpp;
use lorakit::chat::{ChatTemplate, Message};
use lorakit::tokenizer::{read_gguf, tokenizer_from_gguf};

/// Vocabularies the crate rebuilds: Llama 3 (the design's model) and the other byte-level BPE
/// splits it knows. Each must be found and match.
const MUST_SUPPORT: &[&str] = &["llama-bpe", "gpt-2", "mpt", "qwen2", "qwen35", "refact", "starcoder"];

#[test]
fn gguf_tokenizers_match_llama_cpp_reference_cases() {
    let Some(llama) = llama_cpp::required() else { return };
    let vocabs = llama.reference_vocabs().unwrap();
    assert!(vocabs.len() >= 10, "only {} reference vocabularies found", vocabs.len());
    let (mut supported, mut failures) = (Vec::new(), Vec::new());
    for v in &vocabs {
        let content = read_gguf(&v.gguf).unwrap();
        let tokenizer = match tokenizer_from_gguf(&content) {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("refused  {:<18} {msg}", v.name);
                assert!(
                    msg.contains("unsupported") && msg.contains("tokenizer.ggml."),
                    "{}: unclear error: {msg}",
                    v.name
                );
                continue;
            }
        };
        let mut wrong = 0;
        for (text, want) in &v.cases {
            let got = tokenizer.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            if &got != want {
                wrong += 1;
                failures.push(format!("{}: {text:?}\n   got  {got:?}\n   want {want:?}", v.name));
            }
            let decoded = tokenizer.decode(want, false).unwrap();
            if &decoded != text {
                failures.push(format!("{}: decoding llama.cpp's ids of {text:?} gives {decoded:?}", v.name));
            }
        }
        eprintln!("checked  {:<18} {} of {} cases equal llama.cpp's ids", v.name, v.cases.len() - wrong, v.cases.len());
        supported.push(v.name.as_str());
    }
    for name in MUST_SUPPORT {
        assert!(supported.contains(name), "{name} is not among the supported vocabularies: {supported:?}");
    }
    assert!(failures.is_empty(), "{} difference(s):\n{}", failures.len(), failures.join("\n"));
}

/// Llama 3.2's chat template, rendered by the crate and tokenized by the crate's Llama 3
/// tokenizer, gives the ids llama.cpp gives the same text (control tokens parsed).
#[test]
fn llama32_chat_prompts_tokenize_as_in_llama_cpp() {
    let Some(llama) = llama_cpp::required() else { return };
    let vocabs = llama.reference_vocabs().unwrap();
    let vocab = vocabs.iter().find(|v| v.name == "llama-bpe").expect("llama.cpp's llama-bpe vocabulary");
    let tokenizer = tokenizer_from_gguf(&read_gguf(&vocab.gguf).unwrap()).unwrap();
    let source = include_str!("../chapters-code/src/templates/llama3.2.jinja");
    let template = ChatTemplate::new(source, "<|begin_of_text|>", "<|eot_id|>").unwrap();
    let conversations = [
        vec![Message::new("user", "Extract the name and city: Ana moved to Porto in 2021.")],
        vec![
            Message::new("system", "You answer in JSON only."),
            Message::new("user", "  Zoë (34) lives in Köln.\n\nWho?  "),
            Message::new("assistant", "{\"name\": \"Zoë\", \"age\": 34}"),
            Message::new("user", "and 12345 + 678 = ?"),
        ],
    ];
    for messages in &conversations {
        let date = serde_json::json!({"date_string": "07 Dec 2026"});
        let text = template.render_with(messages, true, date).unwrap();
        let ours = tokenizer.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        let theirs = llama.tokenize_vocab_only(&vocab.gguf, &text).unwrap();
        assert_eq!(ours, theirs, "the tokens of {text:?}");
        assert_eq!(ours[0], 128000, "<|begin_of_text|> is one control token");
    }
}
