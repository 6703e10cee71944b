//! Ollama's Modelfile, the recipe `ollama create` builds a model from, and the translation
//! of a model's Jinja chat template into the Go template Ollama renders prompts with.
//!
//! Reading follows Ollama's own parser (`parser/parser.go`): commands in any case, `#`
//! comments, values in `"…"` or `"""…"""` that may span lines. Writing puts multi-line
//! values in `"""` and refuses what the syntax cannot hold.
//!
//! The template translation is checked, not guessed: the Jinja template is rendered on
//! probe conversations and must give exactly what the Go template gives in Ollama. ChatML
//! (SmolLM2) and the Llama 3 family are recognised; anything else is an error, because a
//! wrong prompt format fails silently with rambling answers.

use std::path::Path;

use anyhow::{Context, Result, bail};
use tokenizers::Tokenizer;

use crate::chat::{ChatTemplate, Message};

/// An Ollama Modelfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modelfile {
    /// A GGUF file (absolute, or relative to the Modelfile's directory) or an Ollama model name.
    pub from: String,
    /// GGUF LoRA adapters. Ollama applies one, at scale 1.0.
    pub adapters: Vec<String>,
    /// The prompt template, in Go text/template syntax over Ollama's variables.
    pub template: Option<String>,
    /// The system message used when a conversation brings none.
    pub system: Option<String>,
    /// `PARAMETER name value` lines in file order; `stop` repeats, once per stop string.
    pub parameters: Vec<(String, String)>,
    pub license: Vec<String>,
    /// A conversation every chat starts with (`MESSAGE role text`).
    pub messages: Vec<Message>,
}

/// One command as written in a Modelfile, with the line it starts on (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Lower case: from, adapter, template, system, parameter, message, license.
    pub name: String,
    /// The parameter's name or the message's role; empty for other commands.
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// The commands this module reads and writes.
const COMMANDS: &[&str] = &["from", "adapter", "template", "system", "parameter", "message", "license"];
/// Commands newer Ollama releases accept that a LoRA export has no use for.
const OTHER_OLLAMA_COMMANDS: &[&str] = &["draft", "renderer", "parser", "requires"];
const MESSAGE_ROLES: &[&str] = &["system", "user", "assistant"];

impl Modelfile {
    /// A Modelfile with only `FROM from`.
    pub fn new(from: impl Into<String>) -> Self {
        Modelfile { from: from.into(), ..Default::default() }
    }

    /// Sets TEMPLATE and adds a `PARAMETER stop` for each of the template's stop strings.
    pub fn with_template(mut self, template: &OllamaTemplate) -> Self {
        self.template = Some(template.template.clone());
        for stop in &template.stops {
            if !self.stops().contains(&stop.as_str()) {
                self.parameters.push(("stop".into(), stop.clone()));
            }
        }
        self
    }

    /// The `PARAMETER stop` values.
    pub fn stops(&self) -> Vec<&str> {
        self.parameters.iter().filter(|(k, _)| k == "stop").map(|(_, v)| v.as_str()).collect()
    }

    /// Reads a Modelfile; `path` only names the file in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Modelfile> {
        Self::from_commands(&parse_commands(text, path)?, path)
    }

    /// Reads the Modelfile at `path`.
    pub fn read(path: &Path) -> Result<Modelfile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the Modelfile {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Builds the Modelfile from parsed commands. Like Ollama, a later TEMPLATE or SYSTEM
    /// replaces an earlier one; a second FROM is an error here (Ollama would merge the files).
    pub fn from_commands(commands: &[Command], path: &Path) -> Result<Modelfile> {
        let mut m = Modelfile::default();
        let mut from_line = None;
        for c in commands {
            match c.name.as_str() {
                "from" => {
                    if let Some(first) = from_line {
                        bail!("{}:{}: a second FROM (the first is on line {first}); a Modelfile for lora has one", path.display(), c.line)
                    }
                    from_line = Some(c.line);
                    m.from = c.value.clone();
                }
                "adapter" => m.adapters.push(c.value.clone()),
                "template" => m.template = Some(c.value.clone()),
                "system" => m.system = Some(c.value.clone()),
                "parameter" => m.parameters.push((c.key.clone(), c.value.clone())),
                "message" => m.messages.push(Message::new(c.key.clone(), c.value.clone())),
                "license" => m.license.push(c.value.clone()),
                other => bail!("{}:{}: unexpected command {other:?}", path.display(), c.line),
            }
        }
        if from_line.is_none() {
            bail!("{}: no FROM line (a Modelfile starts from a GGUF file or a model name)", path.display())
        }
        Ok(m)
    }

    /// The Modelfile's text, in Ollama's syntax. Values with line breaks, leading or
    /// trailing spaces, or a leading quote are written in `"""`; [`check`](Self::check)
    /// says whether every value can be written at all.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |command: &str, value: &str| {
            out.push_str(command);
            out.push(' ');
            out.push_str(&quote(value));
            out.push('\n');
        };
        line("FROM", &self.from);
        for a in &self.adapters {
            line("ADAPTER", a);
        }
        if let Some(t) = &self.template {
            line("TEMPLATE", t);
        }
        if let Some(s) = &self.system {
            line("SYSTEM", s);
        }
        for (k, v) in &self.parameters {
            line(&format!("PARAMETER {k}"), v);
        }
        for m in &self.messages {
            line(&format!("MESSAGE {}", m.role), &m.content);
        }
        for l in &self.license {
            line("LICENSE", l);
        }
        out
    }

    /// Every value can be written so that Ollama reads it back unchanged.
    pub fn check(&self) -> Result<()> {
        if self.from.trim().is_empty() {
            bail!("FROM is empty")
        }
        let values = std::iter::once(("FROM", self.from.as_str()))
            .chain(self.adapters.iter().map(|a| ("ADAPTER", a.as_str())))
            .chain(self.template.iter().map(|t| ("TEMPLATE", t.as_str())))
            .chain(self.system.iter().map(|s| ("SYSTEM", s.as_str())))
            .chain(self.parameters.iter().map(|(_, v)| ("PARAMETER", v.as_str())))
            .chain(self.messages.iter().map(|m| ("MESSAGE", m.content.as_str())))
            .chain(self.license.iter().map(|l| ("LICENSE", l.as_str())));
        for (command, value) in values {
            // Ollama's syntax has no escape: `"""` inside a value would end it early.
            if value.contains("\"\"\"") {
                bail!("the {command} value contains \"\"\", which a Modelfile cannot hold")
            }
        }
        for (k, _) in &self.parameters {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("PARAMETER name {k:?}: Ollama's names are letters, digits and '_'")
            }
        }
        for m in &self.messages {
            if !MESSAGE_ROLES.contains(&m.role.as_str()) {
                bail!("MESSAGE role {:?}: Ollama accepts system, user or assistant", m.role)
            }
        }
        Ok(())
    }

    /// Writes the Modelfile atomically after [`check`](Self::check) and a read-back test.
    pub fn write(&self, path: &Path) -> Result<()> {
        self.check().with_context(|| format!("cannot write the Modelfile {}", path.display()))?;
        let text = self.render();
        let back = Modelfile::parse(&text, path)?;
        if back != *self {
            bail!("the Modelfile {} would not read back as written", path.display())
        }
        crate::io::atomic_write(path, text.as_bytes())
    }
}

/// Where a Modelfile's SYSTEM line comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SystemChoice {
    /// The natural source: for an export, the system prompt the adapter was trained under
    /// (its run's records); for a deploy, the Modelfile's own SYSTEM.
    #[default]
    Inherit,
    /// This text.
    Text(String),
    /// No SYSTEM: the chat template's default system turn applies.
    Omit,
}

impl Modelfile {
    /// The conversation Ollama templates for a chat request's `conversation` (or for
    /// `/api/generate`'s prompt as one user message): the MESSAGE lines first, SYSTEM in front
    /// when the conversation brings no system message of its own, and runs of one role
    /// joined (server/routes.go and `collate` in template/template.go).
    pub fn ollama_messages(&self, conversation: &[Message]) -> Vec<Message> {
        let mut msgs: Vec<Message> = self.messages.iter().chain(conversation).cloned().collect();
        if let Some(system) = &self.system
            && conversation.first().is_some_and(|m| m.role != "system")
        {
            msgs.insert(0, Message::new("system", system.clone()));
        }
        let mut collated: Vec<Message> = Vec::new();
        for m in msgs {
            match collated.last_mut() {
                Some(last) if last.role == m.role => last.content = format!("{}\n\n{}", last.content, m.content),
                _ => collated.push(m),
            }
        }
        collated
    }

    /// The prompt text Ollama hands the model for `conversation`, before tokenization
    /// (llama.cpp adds BOS where the GGUF asks for it).
    pub fn ollama_prompt(&self, conversation: &[Message]) -> Result<String> {
        let messages = self.ollama_messages(conversation);
        match &self.template {
            Some(t) => render_go_template(t, &messages, &chrono::Local::now().format("%Y-%m-%d").to_string()),
            // Ollama's default TEMPLATE is `{{ .Prompt }}`.
            None => Ok(last_user(&messages)),
        }
    }
}

fn last_user(messages: &[Message]) -> String {
    messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()).unwrap_or_default()
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
    let system: Vec<&str> = messages.iter().filter(|m| m.role == "system").map(|m| m.content.as_str()).collect();
    let ctx = object(vec![
        ("Messages", Value::Array(msgs)),
        ("System", system.join("\n\n").into()),
        ("Prompt", last_user(messages).into()),
        ("Response", "".into()),
    ]);
    t.render(&gtmpl::Context::from(ctx)).map_err(|e| anyhow::anyhow!("rendering TEMPLATE: {e}"))
}

/// Quotes a value the way Ollama's parser reads it back unchanged.
fn quote(value: &str) -> String {
    let needs_quotes = value.is_empty()
        || value.contains(['\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || value.starts_with('"');
    if needs_quotes { format!("\"\"\"{value}\"\"\"") } else { value.to_string() }
}

/// Ollama's `unquote`: strips `"""…"""` or `"…"`; `None` while a quote is still open.
fn unquote(s: &str) -> Option<&str> {
    if let Some(inner) = s.strip_prefix("\"\"\"") {
        inner.strip_suffix("\"\"\"")
    } else if let Some(inner) = s.strip_prefix('"') {
        inner.strip_suffix('"')
    } else {
        Some(s)
    }
}

/// A model name Ollama accepts, from a free-form name.
pub fn ollama_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if s.is_empty() { "lora".into() } else { s }
}

/// Splits a Modelfile into commands, as Ollama's parser does. A value ends at the first
/// line break where its quotes are balanced, so `"""` values span lines.
pub fn parse_commands(text: &str, path: &Path) -> Result<Vec<Command>> {
    let at = |line: usize| format!("{}:{line}", path.display());
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n').zip(1..);
    let mut commands = Vec::new();
    while let Some((raw, line)) = lines.next() {
        let l = raw.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let word_end = l.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(l.len());
        let (word, rest) = l.split_at(word_end);
        let name = word.to_ascii_lowercase();
        if !COMMANDS.contains(&name.as_str()) {
            if OTHER_OLLAMA_COMMANDS.contains(&name.as_str()) {
                bail!("{}: {word} is an Ollama command that lora does not use; lora reads FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER, MESSAGE and LICENSE", at(line))
            }
            let shown: String = l.trim_end().chars().take(40).collect();
            bail!("{}: unknown command {shown:?}: a Modelfile line starts with FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER, MESSAGE or LICENSE", at(line))
        }
        let Some(mut rest) = rest.strip_prefix([' ', '\t']) else {
            bail!("{}: {word} needs a value after a space", at(line))
        };
        let mut key = String::new();
        if name == "parameter" || name == "message" {
            rest = rest.trim_start_matches([' ', '\t']);
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            key = rest[..end].to_string();
            let ok_key = match name.as_str() {
                "parameter" => !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                _ => MESSAGE_ROLES.contains(&key.as_str()),
            };
            if !ok_key || end == rest.len() {
                let what = if name == "parameter" { "a name (letters, digits, '_') and a value" } else { "a role (system, user or assistant) and a text" };
                bail!("{}: {word} needs {what}, e.g. {}", at(line), if name == "parameter" { "PARAMETER stop <|im_end|>" } else { "MESSAGE user Hello" })
            }
            rest = &rest[end + 1..];
        }
        let mut value = rest.to_string();
        let text = loop {
            if let Some(v) = unquote(value.trim()) {
                break v.to_string();
            }
            match lines.next() {
                Some((more, _)) => value.push_str(more),
                None => bail!("{}: the quote opening the value of {word} is never closed", at(line)),
            }
        };
        commands.push(Command { name, key, value: text, line });
    }
    Ok(commands)
}

/// The JSON value Ollama's API takes for a `PARAMETER name value` line, typed like
/// Ollama's `api.FormatParams` does; `None` for parameters Ollama ignores (deprecated).
pub fn parameter_json(name: &str, value: &str) -> Result<Option<serde_json::Value>> {
    const INTS: &[&str] = &[
        "num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch", "num_gpu", "main_gpu",
        "num_thread", "draft_num_predict",
    ];
    const FLOATS: &[&str] =
        &["top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty"];
    const DEPRECATED: &[&str] = &[
        "penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat", "mirostat_tau",
        "mirostat_eta",
    ];
    let bad = |kind: &str| anyhow::anyhow!("PARAMETER {name} {value:?}: not {kind}");
    Ok(Some(if name == "stop" {
        serde_json::Value::from(value)
    } else if INTS.contains(&name) {
        serde_json::Value::from(value.parse::<i64>().map_err(|_| bad("an integer"))?)
    } else if FLOATS.contains(&name) {
        let x = value.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad("a number"))?;
        serde_json::Value::from(x)
    } else if name == "use_mmap" {
        serde_json::Value::from(value.parse::<bool>().map_err(|_| bad("true or false"))?)
    } else if DEPRECATED.contains(&name) {
        return Ok(None);
    } else {
        bail!("unknown parameter {name:?} (Ollama's are e.g. stop, temperature, top_k, top_p, min_p, num_ctx, num_predict, seed, repeat_penalty)")
    }))
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
        let llama_tail = format!("{}{PROBE_USER}<|eot_id|>{}", llama_header("user"), llama_header("assistant"));
        let head = user_only.strip_suffix(&llama_tail)?;
        if head.is_empty() {
            return Some(Format::Llama3 { preamble: None });
        }
        let preamble = head.strip_prefix(&llama_header("system"))?.strip_suffix("<|eot_id|>")?;
        Some(Format::Llama3 { preamble: Some(preamble.to_string()) })
    }

    /// What the Go template renders in Ollama for `messages` (ending with the assistant's
    /// header, as `add_generation_prompt` does).
    fn expected(&self, messages: &[Message]) -> String {
        let mut s = String::new();
        match self {
            Format::ChatMl { default_system } => {
                if let (Some(d), Some(first)) = (default_system, messages.first())
                    && first.role != "system"
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
                        Some(m) if m.role == "system" => {
                            turns = &messages[1..];
                            m.content.as_str()
                        }
                        _ => "",
                    };
                    s += &format!("{}{p}{system}<|eot_id|>", llama_header("system"));
                }
                for m in turns {
                    s += &format!("{}{}<|eot_id|>", llama_header(&m.role), m.content);
                }
                s += &llama_header("assistant");
            }
        }
        s
    }

    fn go_template(&self) -> String {
        match self {
            Format::ChatMl { default_system: None } => CHATML.to_string(),
            Format::ChatMl { default_system: Some(d) } => CHATML_DEFAULT_SYSTEM.replace("@DEFAULT_SYSTEM@", &go_text(d)),
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

fn llama_header(role: &str) -> String {
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
        Message::new("system", PROBE_SYSTEM),
        Message::new("user", PROBE_USER),
        Message::new("assistant", PROBE_ASSISTANT),
        Message::new("user", PROBE_USER_2),
    );
    vec![
        vec![u.clone()],
        vec![s.clone(), u.clone()],
        vec![s, u.clone(), a.clone(), u2.clone()],
        vec![u, a, u2],
    ]
}

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

/// Each stop string must be one token of the model's vocabulary. A stop string that is no
/// token still matches as text, but means the template was made for another model family.
pub fn check_stops(stops: &[String], tokenizer: &Tokenizer) -> Result<()> {
    let missing: Vec<&str> =
        stops.iter().filter(|s| tokenizer.token_to_id(s).is_none()).map(String::as_str).collect();
    if !missing.is_empty() {
        bail!(
            "the stop strings {missing:?} are not tokens of this model's vocabulary: the chat template was \
             written for another model family"
        )
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const LLAMA32_JINJA: &str = include_str!("../templates/llama3.2.jinja");

    /// SmolLM2-135M-Instruct's template, as transformers' reference fixture recorded it.
    fn smollm2_jinja() -> String {
        let shared = std::env::var("LORA_SHARED_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
        let path = shared.join("fixtures/smollm2/chat_template.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["chat_template"].as_str().unwrap().to_string()
    }

    fn sample() -> Modelfile {
        let t = ollama_template(&smollm2_jinja()).unwrap();
        let mut m = Modelfile::new("./model.gguf").with_template(&t);
        m.adapters.push("/abs/path with space/adapter.gguf".into());
        m.system = Some("You turn order messages into JSON.\nOnly JSON.".into());
        m.parameters.push(("temperature".into(), "0".into()));
        m.parameters.push(("stop".into(), " padded ".into()));
        m.messages.push(Message::new("user", "Hi \"there\""));
        m.messages.push(Message::new("assistant", "\"quoted\" start"));
        m.license.push("Apache-2.0".into());
        m
    }

    #[test]
    fn render_parse_round_trip() {
        let m = sample();
        m.check().unwrap();
        let text = m.render();
        assert!(text.starts_with("FROM ./model.gguf\nADAPTER /abs/path with space/adapter.gguf\nTEMPLATE \"\"\""), "{text}");
        assert!(text.contains("PARAMETER stop <|im_end|>\nPARAMETER stop <|im_start|>\n"), "{text}");
        assert!(text.contains("PARAMETER stop \"\"\" padded \"\"\"\n"), "{text}");
        assert_eq!(Modelfile::parse(&text, Path::new("Modelfile")).unwrap(), m);

        let dir = tempfile::tempdir().unwrap();
        m.write(&dir.path().join("Modelfile")).unwrap();
        assert_eq!(Modelfile::read(&dir.path().join("Modelfile")).unwrap(), m);
    }

    #[test]
    fn parses_like_ollama() {
        let text = "\u{feff}# exported by lora\n\
                    from ./model.gguf\n\
                    \n\
                    parameter stop \"<|im_end|>\"\n\
                    Parameter num_ctx 4096\n\
                    SYSTEM   You are terse.   \n\
                    template \"\"\"{{ .Prompt }}\n\n# not a comment\n\"\"\"\r\n\
                    MESSAGE user \"two\nlines\"\n";
        let m = Modelfile::parse(text, Path::new("Modelfile")).unwrap();
        assert_eq!(m.from, "./model.gguf");
        assert_eq!(m.parameters, vec![("stop".into(), "<|im_end|>".into()), ("num_ctx".into(), "4096".into())]);
        assert_eq!(m.system.as_deref(), Some("You are terse."));
        assert_eq!(m.template.as_deref(), Some("{{ .Prompt }}\n\n# not a comment\n"));
        assert_eq!(m.messages, vec![Message::new("user", "two\nlines")]);
        let commands = parse_commands(text, Path::new("Modelfile")).unwrap();
        assert_eq!(commands.iter().map(|c| c.line).collect::<Vec<_>>(), vec![2, 4, 5, 6, 7, 11]);
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let err = |text: &str| Modelfile::parse(text, Path::new("out/Modelfile")).unwrap_err().to_string();
        assert!(err("FROM x\nFORM y\n").starts_with("out/Modelfile:2: unknown command"), "{}", err("FROM x\nFORM y\n"));
        let e = err("FROM x\n\nSYSTEM \"\"\"never\nclosed\n");
        assert!(e.starts_with("out/Modelfile:3:") && e.contains("never closed"), "{e}");
        assert!(err("FROM x\nPARAMETER stop\n").starts_with("out/Modelfile:2: PARAMETER needs"));
        assert!(err("FROM x\nMESSAGE robot hi\n").starts_with("out/Modelfile:2: MESSAGE needs a role"));
        assert!(err("FROM\n").starts_with("out/Modelfile:1: FROM needs a value"));
        assert!(err("FROM a\nFROM b\n").starts_with("out/Modelfile:2: a second FROM (the first is on line 1)"));
        assert!(err("# nothing\nSYSTEM hi\n").contains("no FROM line"));
        assert!(err("FROM x\nREQUIRES 0.14\n").contains("REQUIRES is an Ollama command"));
    }

    #[test]
    fn unwritable_values_are_refused() {
        let mut m = Modelfile::new("./m.gguf");
        m.system = Some("say \"\"\" and stop".into());
        assert!(m.check().unwrap_err().to_string().contains("SYSTEM"));
        let mut m = Modelfile::new("./m.gguf");
        m.parameters.push(("bad name".into(), "1".into()));
        assert!(m.check().is_err());
    }

    #[test]
    fn parameters_are_typed_like_ollama() {
        assert_eq!(parameter_json("temperature", "0.7").unwrap(), Some(serde_json::json!(0.7)));
        assert_eq!(parameter_json("num_ctx", "4096").unwrap(), Some(serde_json::json!(4096)));
        assert_eq!(parameter_json("stop", "<|im_end|>").unwrap(), Some(serde_json::json!("<|im_end|>")));
        assert_eq!(parameter_json("mirostat", "1").unwrap(), None);
        assert!(parameter_json("top_k", "many").unwrap_err().to_string().contains("not an integer"));
        assert!(parameter_json("temprature", "1").unwrap_err().to_string().contains("unknown parameter"));
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
        use tokenizers::models::wordlevel::WordLevel;
        use tokenizers::AddedToken;
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
