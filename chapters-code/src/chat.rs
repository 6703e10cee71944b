//! Chat templates: the model's own Jinja template, rendered the way HF transformers does.
//!
//! Each model ships its prompt format as a Jinja template (`tokenizer.chat_template` in a
//! GGUF, `chat_template` in `tokenizer_config.json`). Rendering that template, instead of
//! hard-coding a format, is what keeps training prompts identical to inference prompts.

use std::fmt::Write as _;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file::Content;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, Value, ValueKind, merge_maps};
use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::tokenizer::{gguf_str, gguf_u32};

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message { role: role.into(), content: content.into() }
    }

    /// Whether this message has `role`; `role` stays a string because templates render any role.
    pub fn role_is(&self, role: Role) -> bool {
        self.role == role.as_str()
    }
}

/// The roles lorakit writes and accepts: tool calls and other roles are left out, because
/// chat templates disagree on how to render them and none of the book's tasks need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// Every role, in the order a conversation uses them (and error messages list them).
    pub const ALL: [Role; 3] = [Role::System, Role::User, Role::Assistant];

    /// The name chat templates and data files use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// The role named exactly `name` (lower case, as data files and Modelfiles write it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so widths such as `{:<10}` line roles up in tables.
        f.pad(self.as_str())
    }
}

impl From<Role> for String {
    fn from(role: Role) -> String {
        role.as_str().to_string()
    }
}

/// Tokens that end a turn in the common chat formats (ChatML, Llama 3).
const END_OF_TURN_TOKENS: &[&str] = &["<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"];

/// The name the template is stored under; it shows in error messages ("in chat_template:3").
const TEMPLATE_NAME: &str = "chat_template";

/// A compiled chat template plus the special-token strings it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compiles `source`; `bos`/`eos` are exposed to it as `bos_token`/`eos_token`.
    pub fn new(source: impl Into<String>, bos: impl Into<String>, eos: impl Into<String>) -> Result<Self> {
        let mut env = Environment::new();
        // transformers' settings: a block tag eats its newline and the indentation before it.
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?;
        env.set_syntax(syntax);
        // Python's str/dict methods (.strip(), .split(), .items(), ...) that templates call.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // minijinja's own tojson escapes < > & ' for HTML; transformers' does not.
        env.add_filter("tojson", tojson);
        let source = source.into();
        env.add_template_owned(TEMPLATE_NAME, source.clone()).map_err(|e| anyhow!("invalid chat template: {e}"))?;
        Ok(ChatTemplate { env, source, bos: bos.into(), eos: eos.into() })
    }

    /// The template of a GGUF model (`tokenizer.chat_template`), with its BOS/EOS strings.
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let source = gguf_str(content, "tokenizer.chat_template")?;
        let token = |key: &str| -> Result<String> {
            let Some(id) = gguf_u32(content, key)? else {
                return Ok(String::new());
            };
            let tokens = content
                .metadata
                .get("tokenizer.ggml.tokens")
                .context("GGUF key tokenizer.ggml.tokens is missing")?
                .to_vec()
                .context("GGUF key tokenizer.ggml.tokens is not an array")?;
            let token =
                tokens.get(id as usize).with_context(|| format!("GGUF key {key} = {id} is out of the vocabulary"))?;
            Ok(token.to_string().with_context(|| format!("GGUF token {id} is not a string"))?.clone())
        };
        let bos = token("tokenizer.ggml.bos_token_id")?;
        let eos = token("tokenizer.ggml.eos_token_id")?;
        Self::new(source, bos, eos).context("in GGUF key tokenizer.chat_template")
    }

    /// Renders a conversation; `add_generation_prompt` appends the assistant's turn header.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_with(messages, add_generation_prompt, ())
    }

    /// Like [`render`](Self::render), with extra template variables: a serializable map such
    /// as `json!({"date_string": "26 Jul 2024"})`, whose entries override the defaults.
    pub fn render_with(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        extra: impl Serialize,
    ) -> Result<String> {
        let extra = Value::from(Serde(extra));
        if !matches!(extra.kind(), ValueKind::Map | ValueKind::None | ValueKind::Undefined) {
            bail!("extra chat template variables must be a map, got {}", extra.kind());
        }
        // The variables transformers passes; tools/documents are None when unused.
        let defaults = context! {
            messages => Value::from(Serde(messages)),
            add_generation_prompt,
            bos_token => &self.bos,
            eos_token => &self.eos,
            tools => (),
            documents => (),
        };
        let template = self.env.get_template(TEMPLATE_NAME)?;
        // merge_maps: the first map that has a key wins.
        template.render(merge_maps([extra, defaults])).map_err(|e| anyhow!("chat template failed to render: {e}"))
    }

    /// The Jinja source, e.g. to translate it for Ollama.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn bos_token(&self) -> &str {
        &self.bos
    }

    pub fn eos_token(&self) -> &str {
        &self.eos
    }
}

/// The ids that end an assistant turn: `eos_id` plus the usual end-of-turn tokens that
/// exist in this vocabulary. Generation should stop at any of them.
pub fn end_of_turn_ids(tokenizer: &Tokenizer, eos_id: Option<u32>) -> Vec<u32> {
    let mut ids: Vec<u32> = eos_id.into_iter().collect();
    ids.extend(END_OF_TURN_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// [`end_of_turn_ids`] for a GGUF model: its EOS, plus llama.cpp's EOT/EOM ids if set.
pub fn end_of_turn_ids_gguf(content: &Content, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    let mut ids = end_of_turn_ids(tokenizer, gguf_u32(content, "tokenizer.ggml.eos_token_id")?);
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        ids.extend(gguf_u32(content, key)?);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Templates call `raise_exception("...")` to reject conversations they cannot format.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, format!("chat template raised: {msg}")))
}

/// Python's `datetime.now().strftime(fmt)`, which Llama 3 templates use for today's date.
fn strftime_now(fmt: String) -> Result<String, Error> {
    let mut out = String::new();
    // write! reports a bad format as an error; to_string() would panic.
    write!(out, "{}", chrono::Local::now().format(&fmt))
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, format!("strftime_now: bad format {fmt:?}")))?;
    Ok(out)
}

/// Python's `json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys)`, as
/// transformers defines the `tojson` filter.
fn tojson(value: &Value, indent: Option<usize>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(n) => Some(n),
        None => kwargs.get::<Option<usize>>("indent")?,
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, value, indent, sort_keys, 0)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(out: &mut String, v: &Value, indent: Option<usize>, sort: bool, depth: usize) -> Result<(), Error> {
    // Python separates items with ", " on one line, or "," plus a newline when indenting.
    let newline = |out: &mut String, depth: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    let quoted = |s: &str| serde_json::to_string(s).expect("strings always serialize");
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
        ValueKind::Number => {
            let f = f64::try_from(v.clone())?;
            out.push_str(
                &serde_json::to_string(&f).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?,
            );
        }
        ValueKind::String | ValueKind::Plain => out.push_str(&quoted(&v.to_string())),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Bytes => {
            let items: Vec<Value> = v.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(out, item, indent, sort, depth + 1)?;
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort {
                keys.sort_by_key(|k| k.to_string());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                out.push_str(&quoted(&key.to_string()));
                out.push_str(": ");
                write_json(out, &v.get_item(key)?, indent, sort, depth + 1)?;
            }
            if !keys.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
        _ => {
            return Err(Error::new(ErrorKind::InvalidOperation, format!("tojson: cannot serialize {}", v.kind())));
        }
    }
    Ok(())
}

/// Llama 3.2 Instruct's chat template (`tokenizer_config.json` of meta-llama/Llama-3.2-1B-Instruct).
pub const LLAMA_3_2_TEMPLATE: &str = include_str!("templates/llama3.2.jinja");

#[cfg(test)]
mod tests {
    use super::*;

    const LLAMA32: &str = LLAMA_3_2_TEMPLATE;

    fn llama32() -> ChatTemplate {
        ChatTemplate::new(LLAMA32, "<|begin_of_text|>", "<|eot_id|>").unwrap()
    }

    #[test]
    fn llama32_exchange() {
        let messages = [
            Message::new("system", "You are terse."),
            Message::new("user", "  Hi!  "),
            Message::new("assistant", "Hello."),
            Message::new("user", "2+2?"),
        ];
        let text = llama32().render_with(&messages, true, serde_json::json!({"date_string": "26 Jul 2024"})).unwrap();
        let expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
            Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
            You are terse.<|eot_id|>\
            <|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>\
            <|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
            <|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>\
            <|start_header_id|>assistant<|end_header_id|>\n\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn llama32_uses_todays_date_without_system() {
        let text = llama32().render(&[Message::new("user", "Hi")], false).unwrap();
        let today = chrono::Local::now().format("%d %b %Y").to_string();
        assert!(text.starts_with("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"));
        assert!(text.contains(&format!("Today Date: {today}\n\n<|eot_id|>")), "{text}");
        assert!(text.ends_with("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"), "{text}");
    }

    #[test]
    fn tojson_matches_python() {
        let t = ChatTemplate::new(
            "{% set x = {'b': [1, 2.5], 'a': {}, 'c': []} %}\
             {{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ \"it's <b>\" | tojson }}",
            "",
            "",
        )
        .unwrap();
        let text = t.render(&[], false).unwrap();
        assert_eq!(
            text,
            "{\"b\": [1, 2.5], \"a\": {}, \"c\": []}|{\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"a\": {},\n  \"c\": []\n}|\"it's <b>\""
        );
    }

    #[test]
    fn roles_round_trip_and_pad() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert!(Message::new(r, "x").role_is(r));
        }
        assert_eq!(Role::parse("User"), None);
        assert_eq!(format!("[{:<10}]", Role::User), "[user      ]");
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        assert!(ChatTemplate::new("{% if %}", "", "").is_err());
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t.render(&[], false).unwrap_err().to_string();
        assert!(err.contains("no system role"), "{err}");
        let t = ChatTemplate::new("{{ strftime_now('%Q') }}", "", "").unwrap();
        assert!(t.render(&[], false).is_err());
        let t = ChatTemplate::new("{{ '  a  '.strip() }}", "", "").unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "a");
    }
}
