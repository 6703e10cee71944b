//! A model's Jinja chat template translated into the Go template Ollama renders prompts with, and rendered.
//!
//! The translation is checked, not guessed: the Jinja template is rendered on probe
//! conversations and must give exactly what the Go template gives in Ollama. ChatML
//! (SmolLM2) and the Llama 3 family are recognised; anything else is an error, because a
//! wrong prompt format fails silently with rambling answers.

use anyhow::{Context, Result, bail};
use tokenizers::Tokenizer;

use crate::chat::{ChatTemplate, Message, Role};

/// The last user message's text: Ollama's `.Prompt`.
pub(super) fn last_user(messages: &[Message]) -> String {
    messages.iter().rev().find(|m| m.role_is(Role::User)).map(|m| m.content.clone()).unwrap_or_default()
}

/// Renders an Ollama TEMPLATE over `messages` (already collated) with the variables Ollama
/// gives a `.Messages` template; `today` is what `currentDate` prints.
pub fn render_go_template(template: &str, messages: &[Message], today: &str) -> Result<String> {
    use gtmpl::{FuncError, Value};
    use std::collections::HashMap;
    if !template.contains(".Messages") {
        bail!("TEMPLATE does not range over .Messages; only such templates (the ones lora writes) are rendered here")
    }
    let object = |pairs: Vec<(&str, Value)>| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<HashMap<_, _>>())
    };
    // gtmpl takes plain function pointers, so the date reaches `currentDate` through a
    // thread-local.
    thread_local!(static TODAY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) });
    fn current_date(_: &[Value]) -> Result<Value, FuncError> {
        Ok(TODAY.with(|d| Value::from(d.borrow().as_str())))
    }
    TODAY.with(|d| *d.borrow_mut() = today.to_string());
    let mut t = gtmpl::Template::default();
    t.add_func("currentDate", current_date);
    t.parse(template).map_err(|e| anyhow::anyhow!("TEMPLATE does not parse as a Go template: {e}"))?;
    let msgs = messages
        .iter()
        .map(|m| object(vec![("Role", m.role.as_str().into()), ("Content", m.content.as_str().into())]))
        .collect();
    let system: Vec<&str> = messages.iter().filter(|m| m.role_is(Role::System)).map(|m| m.content.as_str()).collect();
    let ctx = object(vec![
        ("Messages", Value::Array(msgs)),
        ("System", system.join("\n\n").into()),
        ("Prompt", last_user(messages).into()),
        ("Response", "".into()),
    ]);
    t.render(&gtmpl::Context::from(ctx)).map_err(|e| anyhow::anyhow!("rendering TEMPLATE: {e}"))
}

/// A chat template in Ollama's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaTemplate {
    /// Go text/template over Ollama's variables (`.Messages`, each with `.Role` and `.Content`).
    pub template: String,
    /// Every string that ends a turn, for `PARAMETER stop`. Without them Ollama's answers
    /// run on into made-up turns.
    pub stops: Vec<String>,
    /// The format recognised: "ChatML", "Llama 3" or "Llama 3.1/3.2".
    pub format: &'static str,
}

/// The prompt formats we translate, with what distinguishes models of the same format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    /// `<|im_start|>role\ntext<|im_end|>\n`. SmolLM2 inserts a default system turn when
    /// the conversation does not start with one.
    ChatMl { default_system: Option<String> },
    /// `<|start_header_id|>role<|end_header_id|>\n\ntext<|eot_id|>`. Llama 3.1/3.2 always
    /// open with a system turn: `preamble` (knowledge cut-off, today's date) + the system text.
    Llama3 { preamble: Option<String> },
}

/// Stands for today's date in probe renders; becomes Ollama's `{{ currentDate }}`.
const DATE_MARK: &str = "@TODAY@";

// The Go templates. `{{-` trims the line break before it, so the Modelfile stays readable.
// Ollama passes the whole conversation as .Messages (a SYSTEM from the Modelfile is put in
// front when the conversation has none), so the templates read the system turn from there.

/// Ollama's own `chatml.gotmpl`.
const CHATML: &str = r#"{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"#;

/// ChatML whose first turn defaults to a system message, as SmolLM2's Jinja does.
const CHATML_DEFAULT_SYSTEM: &str = r#"{{- range $i, $m := .Messages }}
{{- if and (eq $i 0) (ne $m.Role "system") }}<|im_start|>system
@DEFAULT_SYSTEM@<|im_end|>
{{ end }}<|im_start|>{{ $m.Role }}
{{ $m.Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"#;

/// Ollama's own `llama3-instruct.gotmpl` (Llama 3.0: a system turn only if given).
const LLAMA3: &str = r#"{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"#;

/// Llama 3.1/3.2: the system turn is always there; a leading system message fills it.
const LLAMA31: &str = r#"<|start_header_id|>system<|end_header_id|>

@PREAMBLE@{{ range $i, $m := .Messages }}{{ if and (eq $i 0) (eq $m.Role "system") }}{{ $m.Content }}{{ end }}{{ end }}<|eot_id|>
{{- range $i, $m := .Messages }}{{ if or (ne $i 0) (ne $m.Role "system") }}<|start_header_id|>{{ $m.Role }}<|end_header_id|>

{{ $m.Content }}<|eot_id|>
{{- end }}{{ end }}<|start_header_id|>assistant<|end_header_id|>

"#;

impl Format {
    fn name(&self) -> &'static str {
        match self {
            Format::ChatMl { .. } => "ChatML",
            Format::Llama3 { preamble: None } => "Llama 3",
            Format::Llama3 { preamble: Some(_) } => "Llama 3.1/3.2",
        }
    }

    // ANCHOR: detect
    /// Recognises the format from the render of a single user message.
    fn detect(user_only: &str) -> Option<Format> {
        let chatml_tail = format!("<|im_start|>user\n{PROBE_USER}<|im_end|>\n<|im_start|>assistant\n");
        if let Some(head) = user_only.strip_suffix(&chatml_tail) {
            if head.is_empty() {
                return Some(Format::ChatMl { default_system: None });
            }
            let default = head.strip_prefix("<|im_start|>system\n")?.strip_suffix("<|im_end|>\n")?;
            return Some(Format::ChatMl { default_system: Some(default.to_string()) });
        }
        let llama_tail = format!("{}{PROBE_USER}<|eot_id|>{}", llama_header(Role::User), llama_header(Role::Assistant));
        let head = user_only.strip_suffix(&llama_tail)?;
        if head.is_empty() {
            return Some(Format::Llama3 { preamble: None });
        }
        let preamble = head.strip_prefix(&llama_header(Role::System))?.strip_suffix("<|eot_id|>")?;
        Some(Format::Llama3 { preamble: Some(preamble.to_string()) })
    }
    // ANCHOR_END: detect

    /// What the Go template renders in Ollama for `messages` (ending with the assistant's
    /// header, as `add_generation_prompt` does).
    fn expected(&self, messages: &[Message]) -> String {
        let mut s = String::new();
        match self {
            Format::ChatMl { default_system } => {
                if let (Some(d), Some(first)) = (default_system, messages.first())
                    && !first.role_is(Role::System)
                {
                    s += &format!("<|im_start|>system\n{d}<|im_end|>\n");
                }
                for m in messages {
                    s += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                s += "<|im_start|>assistant\n";
            }
            Format::Llama3 { preamble } => {
                let mut turns = messages;
                if let Some(p) = preamble {
                    let system = match messages.first() {
                        Some(m) if m.role_is(Role::System) => {
                            turns = &messages[1..];
                            m.content.as_str()
                        }
                        _ => "",
                    };
                    s += &format!("{}{p}{system}<|eot_id|>", llama_header(Role::System));
                }
                for m in turns {
                    s += &format!("{}{}<|eot_id|>", llama_header(&m.role), m.content);
                }
                s += &llama_header(Role::Assistant);
            }
        }
        s
    }

    fn go_template(&self) -> String {
        match self {
            Format::ChatMl { default_system: None } => CHATML.to_string(),
            Format::ChatMl { default_system: Some(d) } => {
                CHATML_DEFAULT_SYSTEM.replace("@DEFAULT_SYSTEM@", &go_text(d))
            }
            Format::Llama3 { preamble: None } => LLAMA3.to_string(),
            Format::Llama3 { preamble: Some(p) } => {
                // Ollama's currentDate prints 2026-08-21 where the Jinja's strftime prints
                // 21 Aug 2026: the same date, a different format (Go templates cannot format dates).
                let p = go_text(p).replace(DATE_MARK, "{{ currentDate }}");
                LLAMA31.replace("@PREAMBLE@", &p)
            }
        }
    }

    fn stops(&self) -> Vec<String> {
        let stops: &[&str] = match self {
            // <|im_start|> too: a model that skips <|im_end|> still stops before a new turn.
            Format::ChatMl { .. } => &["<|im_end|>", "<|im_start|>"],
            Format::Llama3 { preamble: None } => &["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
            // <|eom_id|> (end of a tool-call message) exists from Llama 3.1 on.
            Format::Llama3 { preamble: Some(_) } => {
                &["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>"]
            }
        };
        stops.iter().map(|s| s.to_string()).collect()
    }
}

fn llama_header(role: impl std::fmt::Display) -> String {
    format!("<|start_header_id|>{role}<|end_header_id|>\n\n")
}

/// Text placed verbatim in a Go template: only `{{` would start an action.
fn go_text(s: &str) -> String {
    s.replace("{{", "{{ \"{{\" }}")
}

const PROBE_SYSTEM: &str = "Answer in one word.";
const PROBE_USER: &str = "Which colour is the sky?";
const PROBE_ASSISTANT: &str = "Blue.";
const PROBE_USER_2: &str = "And grass?";

/// Conversations the translation must render identically: user only, with a system
/// message, multi-turn with and without one.
fn probe_conversations() -> Vec<Vec<Message>> {
    let (s, u, a, u2) = (
        Message::new(Role::System, PROBE_SYSTEM),
        Message::new(Role::User, PROBE_USER),
        Message::new(Role::Assistant, PROBE_ASSISTANT),
        Message::new(Role::User, PROBE_USER_2),
    );
    vec![vec![u.clone()], vec![s.clone(), u.clone()], vec![s, u.clone(), a.clone(), u2.clone()], vec![u, a, u2]]
}

// ANCHOR: ollama_template
/// Translates a model's Jinja chat template into Ollama's TEMPLATE and stop strings.
///
/// BOS is left out: llama.cpp (inside Ollama) adds it when the GGUF asks for it, as the
/// Jinja's `bos_token` does for transformers. Ollama joins consecutive messages of the
/// same role and does not strip whitespace around message texts, which Llama 3's Jinja
/// does; the probes and the equivalence tests use ordinary conversations.
pub fn ollama_template(chat_template_jinja: &str) -> Result<OllamaTemplate> {
    let jinja = ChatTemplate::new(chat_template_jinja, "", "").context("the chat template does not compile")?;
    let render = |messages: &[Message]| -> Result<String> {
        let text = jinja
            .render_with(messages, true, serde_json::json!({ "date_string": DATE_MARK }))
            .with_context(|| format!("rendering the chat template for {} messages", messages.len()))?;
        // A template that writes BOS literally: llama.cpp adds it in Ollama.
        Ok(text.strip_prefix("<|begin_of_text|>").unwrap_or(&text).to_string())
    };
    let excerpt: String = chat_template_jinja.chars().take(60).collect();
    let unsupported = |why: String| {
        anyhow::anyhow!(
            "cannot translate the chat template starting {excerpt:?} for Ollama: {why}. lora translates ChatML \
             (SmolLM2) and Llama 3/3.1/3.2 templates; write the Modelfile's TEMPLATE by hand for others"
        )
    };
    let probes = probe_conversations();
    let first = render(&probes[0])?;
    let format = Format::detect(&first)
        .ok_or_else(|| unsupported(format!("it renders a user message as {first:?}, which is neither format")))?;
    for messages in &probes {
        let got = render(messages)?;
        let want = format.expected(messages);
        if got != want {
            return Err(unsupported(format!(
                "it looks like {} but renders {} messages as {got:?} where Ollama would get {want:?}",
                format.name(),
                messages.len()
            )));
        }
    }
    Ok(OllamaTemplate { template: format.go_template(), stops: format.stops(), format: format.name() })
}
// ANCHOR_END: ollama_template

// ANCHOR: check_stops
/// Each stop string must be one token of the model's vocabulary. A stop string that is no
/// token still matches as text, but means the template was made for another model family.
pub fn check_stops(stops: &[String], tokenizer: &Tokenizer) -> Result<()> {
    let missing: Vec<&str> = stops.iter().filter(|s| tokenizer.token_to_id(s).is_none()).map(String::as_str).collect();
    if !missing.is_empty() {
        bail!(
            "the stop strings {missing:?} are not tokens of this model's vocabulary: the chat template was \
             written for another model family"
        )
    }
    Ok(())
}
// ANCHOR_END: check_stops

#[cfg(test)]
pub(super) mod tests {
    use super::super::modelfile::Modelfile;
    use super::*;
    use std::path::Path;

    const LLAMA32_JINJA: &str = include_str!("../templates/llama3.2.jinja");

    /// SmolLM2-135M-Instruct's template, as transformers' reference fixture recorded it.
    pub(crate) fn smollm2_jinja() -> String {
        let shared = std::env::var("LORA_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
        let path = shared.join("fixtures/smollm2/chat_template.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["chat_template"].as_str().unwrap().to_string()
    }

    #[test]
    fn smollm2_chatml_with_default_system() {
        let t = ollama_template(&smollm2_jinja()).unwrap();
        assert_eq!(t.format, "ChatML");
        assert_eq!(t.stops, ["<|im_end|>", "<|im_start|>"]);
        assert!(t.template.contains("You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>"));
        assert!(t.template.contains(".Messages") && !t.template.contains(".Prompt"));
    }

    #[test]
    fn llama32_template() {
        let t = ollama_template(LLAMA32_JINJA).unwrap();
        assert_eq!(t.format, "Llama 3.1/3.2");
        assert_eq!(t.stops, ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>"]);
        assert!(t.template.starts_with(
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: {{ currentDate }}\n\n"
        ));
    }

    #[test]
    fn other_templates_are_refused_by_name() {
        let gemma = "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n{{ message['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";
        let e = ollama_template(gemma).unwrap_err().to_string();
        assert!(e.contains("<start_of_turn>") && e.contains("ChatML"), "{e}");
        // ChatML markers, but the assistant header lacks its line break.
        let odd = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant";
        assert!(ollama_template(odd).is_err());
    }

    #[test]
    fn stops_must_be_tokens() {
        use tokenizers::AddedToken;
        use tokenizers::models::wordlevel::WordLevel;
        let vocab = [("[UNK]".to_string(), 0), ("hi".to_string(), 1)].into_iter().collect();
        let model = WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build().unwrap();
        let mut tok = Tokenizer::new(model);
        let _ = tok.add_special_tokens([AddedToken::from("<|im_end|>", true), AddedToken::from("<|im_start|>", true)]);
        let chatml = ollama_template(&smollm2_jinja()).unwrap();
        check_stops(&chatml.stops, &tok).unwrap();
        let llama = ollama_template(LLAMA32_JINJA).unwrap();
        let e = check_stops(&llama.stops, &tok).unwrap_err().to_string();
        assert!(e.contains("<|eot_id|>"), "{e}");
    }

    // ---- Equivalence: the Go template, rendered by a Go-template engine the way Ollama
    // calls it, gives the same prompt as the Jinja template through ChatTemplate.

    /// The date Ollama's `currentDate` would print; the Jinja gets the same string.
    const DATE: &str = "2026-08-21";

    fn ollama_messages(modelfile_system: Option<&str>, messages: &[Message]) -> Vec<Message> {
        let m = Modelfile { system: modelfile_system.map(String::from), ..Modelfile::new("x") };
        m.ollama_messages(messages)
    }

    fn render_go(template: &str, messages: &[Message]) -> String {
        render_go_template(template, messages, DATE).unwrap_or_else(|e| panic!("{e}\n{template}"))
    }

    fn conversations() -> Vec<(&'static str, Vec<Message>)> {
        let sys = Message::new("system", "You are a terse assistant.");
        let u1 = Message::new("user", "Name two colors.");
        let a1 = Message::new("assistant", "Red, blue.");
        let u2 = Message::new("user", "One more?\nJust one.");
        vec![
            ("system+user", vec![sys.clone(), u1.clone()]),
            ("system+user+assistant", vec![sys.clone(), u1.clone(), a1.clone()]),
            ("user only", vec![u1.clone()]),
            ("multi-turn", vec![sys, u1.clone(), a1.clone(), u2.clone()]),
            ("multi-turn without system", vec![u1, a1, u2]),
        ]
    }

    /// `bos` is what llama.cpp puts in front of Ollama's prompt (add_bos_token).
    fn assert_equivalent(jinja: &str, bos: &str, modelfile_system: Option<&str>) {
        let go = ollama_template(jinja).unwrap().template;
        let reference = ChatTemplate::new(jinja, bos, "").unwrap();
        for (name, conversation) in conversations() {
            // Ollama templates what it received plus its SYSTEM; transformers gets the same
            // conversation with that system message written out.
            let sent = ollama_messages(modelfile_system, &conversation);
            let want = reference.render_with(&sent, true, serde_json::json!({ "date_string": DATE })).unwrap();
            let got = format!("{bos}{}", render_go(&go, &ollama_messages(modelfile_system, &conversation)));
            assert_eq!(got, want, "{name}, SYSTEM {modelfile_system:?}\n{go}");
        }
    }

    #[test]
    fn smollm2_go_template_equals_jinja() {
        let jinja = smollm2_jinja();
        assert_equivalent(&jinja, "", None);
        assert_equivalent(&jinja, "", Some("You extract orders as JSON."));
        // And against transformers' own renders in the fixture.
        let go = ollama_template(&jinja).unwrap().template;
        let shared = std::env::var("LORA_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
        let text = std::fs::read_to_string(shared.join("fixtures/smollm2/chat_template.json")).unwrap();
        let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
            assert_eq!(render_go(&go, &messages), case["text"].as_str().unwrap(), "{}", case["name"]);
        }
    }

    #[test]
    fn llama32_go_template_equals_jinja() {
        let go = ollama_template(LLAMA32_JINJA).unwrap().template;
        assert_eq!(
            render_go(&go, &[Message::new("user", "Hi")]),
            "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 2026-08-21\n\n\
             <|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_equivalent(LLAMA32_JINJA, "<|begin_of_text|>", None);
        assert_equivalent(LLAMA32_JINJA, "<|begin_of_text|>", Some("You extract orders as JSON."));
    }

    #[test]
    fn llama3_plain_go_template_equals_jinja() {
        // Meta-Llama-3-8B-Instruct's template (no date preamble).
        let jinja = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
        let t = ollama_template(jinja).unwrap();
        assert_eq!(t.format, "Llama 3");
        assert_equivalent(jinja, "<|begin_of_text|>", None);
        assert_equivalent(jinja, "<|begin_of_text|>", Some("Be brief."));
    }
}
