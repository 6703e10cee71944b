//! Stop strings of the Modelfiles lora writes. A missing stop is the first cause of endless
//! answers in Ollama (the model writes the end-of-turn token and goes on with a made-up
//! turn), so the stops are checked against what each chat template itself writes, not
//! against a list kept beside the code. (The Go TEMPLATE's equivalence with the Jinja
//! template is tested in src/ollama/template.rs, rendered with gtmpl.)

use std::path::{Path, PathBuf};

use lorakit::chat::{ChatTemplate, Message};
use lorakit::ollama::modelfile::Modelfile;
use lorakit::ollama::template::ollama_template;

const LLAMA32_JINJA: &str = include_str!("../src/templates/llama3.2.jinja");

fn smollm2_jinja() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/smollm2/chat_template.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["chat_template"].as_str().unwrap().to_string()
}

/// Meta-Llama-3-8B-Instruct's template (Llama 3.0, no date preamble).
const LLAMA3_JINJA: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

fn conversations() -> Vec<Vec<Message>> {
    let (s, u, a, u2) = (
        Message::new("system", "Be brief."),
        Message::new("user", "Name a color."),
        Message::new("assistant", "Teal."),
        Message::new("user", "Another?"),
    );
    vec![
        vec![u.clone()],
        vec![s.clone(), u.clone(), a.clone()],
        vec![s, u.clone(), a.clone(), u2.clone()],
        vec![u, a, u2],
    ]
}

/// The special tokens (`<|…|>`) a text contains.
fn special_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<|") {
        let Some(j) = rest[i..].find("|>") else { break };
        let token = &rest[i..i + j + 2];
        if token[2..token.len() - 2].chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !out.iter().any(|t| t == token)
        {
            out.push(token.to_string());
        }
        rest = &rest[i + 2..];
    }
    out
}

/// The token the template writes right after an assistant's answer: what ends a turn.
fn end_of_turn(jinja: &str) -> String {
    let answer = "Teal.";
    let text = ChatTemplate::new(jinja, "<|begin_of_text|>", "")
        .unwrap()
        .render(&[Message::new("user", "Name a color."), Message::new("assistant", answer)], false)
        .unwrap();
    let after = &text[text.rfind(answer).unwrap() + answer.len()..];
    special_tokens(after).into_iter().next().unwrap_or_else(|| panic!("nothing ends the turn in {text:?}"))
}

fn check(jinja: &str, family_end_tokens: &[&str]) {
    let t = ollama_template(jinja).unwrap();
    // The end of an assistant turn, as the template writes it, is a stop.
    let eot = end_of_turn(jinja);
    assert!(t.stops.contains(&eot), "{}: the end-of-turn token {eot} is not a stop: {:?}", t.format, t.stops);
    // So is every other special token the template writes (a model that skips the end of its
    // turn and opens a new one stops too), except the BOS that only starts the text.
    let template = ChatTemplate::new(jinja, "<|begin_of_text|>", "").unwrap();
    for c in conversations() {
        let text = template.render(&c, true).unwrap();
        for token in special_tokens(&text).into_iter().filter(|t| t != "<|begin_of_text|>") {
            assert!(
                t.stops.contains(&token),
                "{}: {token} (written by the template) is not a stop: {:?}",
                t.format,
                t.stops
            );
        }
    }
    // And the family's end tokens the template may not write here (Llama 3.1+ ends tool
    // calls with <|eom_id|>).
    for token in family_end_tokens {
        assert!(t.stops.iter().any(|s| s == token), "{}: {token} is not a stop: {:?}", t.format, t.stops);
    }
    // The Modelfile carries one PARAMETER stop line per stop, and Ollama's syntax reads them back.
    let m = Modelfile::new("./model.gguf").with_template(&t);
    let text = m.render();
    for stop in &t.stops {
        assert!(text.lines().any(|l| l == format!("PARAMETER stop {stop}")), "no `PARAMETER stop {stop}` in\n{text}");
    }
    let back = Modelfile::parse(&text, Path::new("Modelfile")).unwrap();
    assert_eq!(back.stops(), t.stops.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn chatml_smollm2_stops_at_im_end() {
    check(&smollm2_jinja(), &["<|im_end|>"]);
    assert_eq!(end_of_turn(&smollm2_jinja()), "<|im_end|>");
}

#[test]
fn llama32_stops_at_eot_and_eom() {
    check(LLAMA32_JINJA, &["<|eot_id|>", "<|eom_id|>"]);
    assert_eq!(end_of_turn(LLAMA32_JINJA), "<|eot_id|>");
}

#[test]
fn llama3_stops_at_eot() {
    check(LLAMA3_JINJA, &["<|eot_id|>"]);
}
