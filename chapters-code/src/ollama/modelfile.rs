//! Ollama's Modelfile, the recipe `ollama create` builds a model from: read, checked and written as Ollama does.
//!
//! Reading follows Ollama's own parser (`parser/parser.go`): commands in any case, `#`
//! comments, values in `"…"` or `"""…"""` that may span lines. Writing puts multi-line
//! values in `"""` and refuses what the syntax cannot hold.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::template::{OllamaTemplate, last_user, render_go_template};
use crate::chat::{Message, Role};

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
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the Modelfile {}", path.display()))?;
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
                        bail!(
                            "{}:{}: a second FROM (the first is on line {first}); a Modelfile for lora has one",
                            path.display(),
                            c.line
                        )
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

    // ANCHOR: render
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
    // ANCHOR_END: render

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
            if Role::parse(&m.role).is_none() {
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
            && conversation.first().is_some_and(|m| !m.role_is(Role::System))
        {
            msgs.insert(0, Message::new(Role::System, system.clone()));
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

// ANCHOR: quote
/// Quotes a value the way Ollama's parser reads it back unchanged.
fn quote(value: &str) -> String {
    let needs_quotes = value.is_empty()
        || value.contains(['\n', '\r'])
        || value.starts_with(char::is_whitespace)
        || value.ends_with(char::is_whitespace)
        || value.starts_with('"');
    if needs_quotes { format!("\"\"\"{value}\"\"\"") } else { value.to_string() }
}
// ANCHOR_END: quote

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
                bail!(
                    "{}: {word} is an Ollama command that lora does not use; lora reads FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER, MESSAGE and LICENSE",
                    at(line)
                )
            }
            let shown: String = l.trim_end().chars().take(40).collect();
            bail!(
                "{}: unknown command {shown:?}: a Modelfile line starts with FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER, MESSAGE or LICENSE",
                at(line)
            )
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
                _ => Role::parse(&key).is_some(),
            };
            if !ok_key || end == rest.len() {
                let what = if name == "parameter" {
                    "a name (letters, digits, '_') and a value"
                } else {
                    "a role (system, user or assistant) and a text"
                };
                bail!(
                    "{}: {word} needs {what}, e.g. {}",
                    at(line),
                    if name == "parameter" { "PARAMETER stop <|im_end|>" } else { "MESSAGE user Hello" }
                )
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
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "draft_num_predict",
    ];
    const FLOATS: &[&str] =
        &["top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty"];
    const DEPRECATED: &[&str] = &[
        "penalize_newline",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mlock",
        "mirostat",
        "mirostat_tau",
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
        bail!(
            "unknown parameter {name:?} (Ollama's are e.g. stop, temperature, top_k, top_p, min_p, num_ctx, num_predict, seed, repeat_penalty)"
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::super::template::ollama_template;
    use super::super::template::tests::smollm2_jinja;
    use super::*;

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
        assert!(
            text.starts_with("FROM ./model.gguf\nADAPTER /abs/path with space/adapter.gguf\nTEMPLATE \"\"\""),
            "{text}"
        );
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
}
