//! Reading and writing datasets: JSON, JSON Lines and CSV, in the two shapes people share
//! fine-tuning data in.
//!
//! * Instruction records (the Alpaca shape): `{"instruction", "input"?, "output", "system"?}`.
//! * Chat records (the OpenAI/HF shape): `{"messages": [{"role", "content"}, ...]}`.
//!
//! Both become a [`Record`]: a conversation whose last message is the answer to learn.
//!
//! The loader is strict on purpose. A misspelt key (`"ouput"`) or a stray role would
//! otherwise drop data without a word, and the first sign would be a model that trained on
//! the wrong thing. Every error names the file, the line (or the record of a JSON array)
//! and the field, so it can be fixed in an editor in one jump.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chat::{Message, Role};

/// One training example: a conversation whose last message is the assistant's answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub messages: Vec<Message>,
}

impl Record {
    pub fn new(messages: Vec<Message>) -> Self {
        Record { messages }
    }

    /// The Alpaca convention: the input, when there is one, follows the instruction after a
    /// blank line in a single user turn.
    pub fn from_instruction(system: Option<&str>, instruction: &str, input: &str, output: &str) -> Self {
        let mut messages = Vec::with_capacity(3);
        if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
            messages.push(Message::new(Role::System, system));
        }
        let user = if input.trim().is_empty() { instruction.to_string() } else { format!("{instruction}\n\n{input}") };
        messages.push(Message::new(Role::User, user));
        messages.push(Message::new(Role::Assistant, output));
        Record { messages }
    }

    /// The system prompt, if the conversation starts with one.
    pub fn system(&self) -> Option<&str> {
        self.messages.first().filter(|m| m.role_is(Role::System)).map(|m| m.content.as_str())
    }

    /// The last user message: the question this record answers.
    pub fn user(&self) -> Option<&str> {
        self.messages.iter().rev().find(|m| m.role_is(Role::User)).map(|m| m.content.as_str())
    }

    /// The answer to learn (the last message's content).
    pub fn answer(&self) -> Option<&str> {
        self.messages.last().map(|m| m.content.as_str())
    }

    /// Everything before the answer: what the model sees at inference time.
    pub fn prompt(&self) -> &[Message] {
        self.messages.split_last().map_or(&[], |(_, rest)| rest)
    }

    /// Check the conversation can be trained on: known roles, non-empty contents, a system
    /// message only first (templates render it there or not at all), at least one user
    /// turn, and the assistant's answer last.
    pub fn validate(&self) -> Result<(), FieldError> {
        let Some(last) = self.messages.last() else {
            return Err(FieldError::new("messages", "empty; a record needs a user message and the assistant's answer"));
        };
        for (i, m) in self.messages.iter().enumerate() {
            if Role::parse(&m.role).is_none() {
                return Err(FieldError::new(
                    format!("messages[{i}].role"),
                    format!("unknown role {:?} (allowed: {})", m.role, Role::ALL.map(Role::as_str).join(", ")),
                ));
            }
            if m.role_is(Role::System) && i > 0 {
                return Err(FieldError::new(format!("messages[{i}].role"), "a system message may only come first"));
            }
            if m.content.trim().is_empty() {
                return Err(FieldError::new(format!("messages[{i}].content"), "empty"));
            }
        }
        if !self.messages.iter().any(|m| m.role_is(Role::User)) {
            return Err(FieldError::new("messages", "has no user message"));
        }
        if !last.role_is(Role::Assistant) {
            return Err(FieldError::new(
                "messages",
                format!("must end with the assistant's answer, but the last role is {:?}", last.role),
            ));
        }
        Ok(())
    }
}

/// What is wrong with one field of a record, before we know where the record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// A JSON-path-like name: `output`, `messages[2].role` (array indices from 0, as in jq).
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: Some(field.into()), message: message.into() }
    }

    fn whole(message: impl Into<String>) -> Self {
        FieldError { field: None, message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field {field:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Where in a file a problem is. Lines and records count from 1, as editors do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File,
    Line(usize),
    LineColumn(usize, usize),
    /// The `index`-th element of a JSON array, which starts on `line`.
    Record {
        index: usize,
        line: usize,
    },
}

/// A dataset problem, with enough context to find it: `train.jsonl line 3: field "output": missing`.
/// It is the error inside the `anyhow::Error` that [`load_dataset`] returns (downcast to inspect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    pub file: PathBuf,
    pub location: Location,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        match self.location {
            Location::File => {}
            Location::Line(line) => write!(f, " line {line}")?,
            Location::LineColumn(line, column) => write!(f, " line {line} column {column}")?,
            Location::Record { index, line } => write!(f, " record {index} (line {line})")?,
        }
        match &self.field {
            Some(field) => write!(f, ": field {field:?}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

impl std::error::Error for DataError {}

/// The file formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Jsonl,
    Csv,
}

impl Format {
    fn of(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        Ok(match ext.as_str() {
            "json" => Format::Json,
            "jsonl" => Format::Jsonl,
            "csv" => Format::Csv,
            _ => bail!(
                "{}: unknown dataset format {:?}; use .json (an array of records), .jsonl (one record per line) or .csv",
                path.display(),
                ext
            ),
        })
    }
}

/// Load a dataset, in the format its extension names. See the module docs for the shapes;
/// an empty dataset is an error, since training on nothing is never what was meant.
pub fn load_dataset(path: &Path) -> Result<Vec<Record>> {
    Format::of(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read dataset {}", path.display()))?;
    parse_dataset(&bytes, path)
}

/// [`load_dataset`] on the file's bytes: `path` gives the format (its extension) and names
/// the file in errors.
pub fn parse_dataset(bytes: &[u8], path: &Path) -> Result<Vec<Record>> {
    let format = Format::of(path)?;
    let located = |location: Location, e: FieldError| DataError {
        file: path.to_path_buf(),
        location,
        field: e.field,
        message: e.message,
    };
    let text = decode(bytes).map_err(|(line, e)| located(Location::Line(line), e))?;
    if text.trim().is_empty() {
        return Err(located(Location::File, FieldError::whole("the file is empty")).into());
    }
    let records = match format {
        Format::Json => parse_json(text),
        Format::Jsonl => parse_jsonl(text),
        Format::Csv => parse_csv(text),
    }
    .map_err(|(location, e)| located(location, e))?;
    if records.is_empty() {
        return Err(located(Location::File, FieldError::whole("contains no records")).into());
    }
    Ok(records)
}

/// Save records in the chat shape, as `.json` (a pretty array) or `.jsonl`, atomically.
/// Records are validated first, so whatever this writes, [`load_dataset`] reads back.
pub fn save_dataset(path: &Path, records: &[Record]) -> Result<()> {
    for (i, r) in records.iter().enumerate() {
        r.validate().map_err(|e| anyhow::anyhow!("cannot save {}: record {}: {e}", path.display(), i + 1))?;
    }
    let bytes = match Format::of(path)? {
        Format::Json => to_json(records),
        Format::Jsonl => to_jsonl(records),
        Format::Csv => {
            bail!("{}: datasets are saved as .json or .jsonl (CSV cannot hold multi-turn chats)", path.display())
        }
    };
    crate::io::atomic_write(path, &bytes)
}

/// Records as a pretty-printed JSON array (2-space indent), with a final newline.
pub fn to_json(records: &[Record]) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(records).expect("records are plain strings, always serializable");
    out.push(b'\n');
    out
}

/// Records as JSON Lines: one compact record per line.
pub fn to_jsonl(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        serde_json::to_writer(&mut out, r).expect("records are plain strings, always serializable");
        out.push(b'\n');
    }
    out
}

/// Bytes to text: UTF-8 only (the encoding of every JSON and of any CSV worth training on),
/// without the byte-order mark that Windows editors and Excel put in front.
fn decode(file: &[u8]) -> Result<&str, (usize, FieldError)> {
    let bytes = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    std::str::from_utf8(bytes).map_err(|e| {
        // Offsets in the file as a hex editor shows it, byte-order mark included.
        let at = e.valid_up_to() + (file.len() - bytes.len());
        let line = 1 + file[..at].iter().filter(|&&b| b == b'\n').count();
        let msg = format!("invalid UTF-8 at byte {at} (0x{:02X}); re-save the file as UTF-8", file[at]);
        (line, FieldError::whole(msg))
    })
}

type Located<T> = Result<T, (Location, FieldError)>;

fn parse_json(text: &str) -> Located<Vec<Record>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (Location::LineColumn(e.line(), e.column()), FieldError::whole(format!("invalid JSON: {}", json_message(&e))))
    })?;
    let Value::Array(items) = value else {
        let hint = if value.is_object() { " (for one record per line, name the file .jsonl)" } else { "" };
        return Err((
            Location::Line(1),
            FieldError::whole(format!("expected a JSON array of records, found {}{hint}", kind(&value))),
        ));
    };
    let lines = element_lines(text);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let location = Location::Record { index: i + 1, line: lines.get(i).copied().unwrap_or(1) };
            record_from_json(item).map_err(|e| (location, e))
        })
        .collect()
}

fn parse_jsonl(text: &str) -> Located<Vec<Record>> {
    let mut records = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            // serde counts lines within this one line; only its column means anything here.
            let msg = format!("invalid JSON: {}", json_message(&e));
            (Location::LineColumn(line_no, e.column()), FieldError::whole(msg))
        })?;
        records.push(record_from_json(&value).map_err(|e| (Location::Line(line_no), e))?);
    }
    Ok(records)
}

/// serde_json's message without its " at line L column C" tail, which we report ourselves.
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rsplit_once(" at line ") {
        Some((msg, _)) => msg.to_string(),
        None => full,
    }
}

/// The line on which each element of a top-level JSON array starts. Only called on text
/// that has parsed, so a scan that tracks strings and nesting depth is enough.
fn element_lines(text: &str) -> Vec<usize> {
    let (mut lines, mut line, mut depth) = (Vec::new(), 1, 0usize);
    let (mut in_string, mut escaped, mut expecting) = (false, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expecting && !c.is_whitespace() && c != ']' {
            lines.push(line);
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                expecting = depth == 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    lines
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const INSTRUCTION_KEYS: [&str; 4] = ["instruction", "input", "output", "system"];
const CHAT_KEYS: [&str; 1] = ["messages"];
const MESSAGE_KEYS: [&str; 2] = ["role", "content"];

fn record_from_json(value: &Value) -> Result<Record, FieldError> {
    let Value::Object(obj) = value else {
        return Err(FieldError::whole(format!("expected a record (a JSON object), found {}", kind(value))));
    };
    let allowed: Vec<&str> = INSTRUCTION_KEYS.iter().chain(&CHAT_KEYS).copied().collect();
    reject_unknown_keys(obj, &allowed, "", "instruction, input, output, system; or messages")?;
    if obj.contains_key("messages") {
        if let Some(k) = INSTRUCTION_KEYS.iter().find(|k| obj.contains_key(**k)) {
            return Err(FieldError::new(
                *k,
                "a record has either \"messages\" or instruction/input/output/system, not both",
            ));
        }
        return chat_record(&obj["messages"]);
    }
    let field = |key: &str| string_field(obj, key, key);
    instruction_record(field("instruction")?, field("input")?, field("output")?, field("system")?)
}

/// Refuse keys we do not know: silently ignoring `"ouput"` would train on records with
/// their answer missing. The message suggests the key that was probably meant.
fn reject_unknown_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
    listed: &str,
) -> Result<(), FieldError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = suggest(key, allowed).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            return Err(FieldError::new(format!("{prefix}{key}"), format!("unknown key (allowed: {listed}){hint}")));
        }
    }
    Ok(())
}

/// The allowed name closest to a misspelt one: equal but for case, or at most two edits away.
fn suggest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_lowercase();
    allowed.iter().map(|a| (edit_distance(&lower, a), *a)).filter(|&(d, _)| d <= 2).min().map(|(_, a)| a)
}

/// Levenshtein distance, by the usual one-row dynamic programme.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A string field that may be absent. `null` counts as absent: spreadsheets and pandas
/// write missing optional cells that way.
fn string_field<'a>(obj: &'a Map<String, Value>, key: &str, name: &str) -> Result<Option<&'a str>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(name, format!("expected a string, found {}", kind(other)))),
    }
}

fn required<'a>(name: &str, value: Option<&'a str>) -> Result<&'a str, FieldError> {
    match value {
        None => Err(FieldError::new(name, "missing")),
        Some(s) if s.trim().is_empty() => Err(FieldError::new(name, "empty")),
        Some(s) => Ok(s),
    }
}

fn instruction_record(
    instruction: Option<&str>,
    input: Option<&str>,
    output: Option<&str>,
    system: Option<&str>,
) -> Result<Record, FieldError> {
    let instruction = required("instruction", instruction)?;
    let output = required("output", output)?;
    Ok(Record::from_instruction(system, instruction, input.unwrap_or(""), output))
}

fn chat_record(messages: &Value) -> Result<Record, FieldError> {
    let Value::Array(items) = messages else {
        return Err(FieldError::new("messages", format!("expected an array of messages, found {}", kind(messages))));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("messages[{i}]");
        let Value::Object(obj) = item else {
            return Err(FieldError::new(prefix, format!("expected a message object, found {}", kind(item))));
        };
        reject_unknown_keys(obj, &MESSAGE_KEYS, &format!("{prefix}."), "role, content")?;
        let role = format!("{prefix}.role");
        let content = format!("{prefix}.content");
        let role_value = required(&role, string_field(obj, "role", &role)?)?;
        let content_value =
            string_field(obj, "content", &content)?.ok_or_else(|| FieldError::new(&content, "missing"))?;
        out.push(Message::new(role_value, content_value));
    }
    let record = Record::new(out);
    record.validate()?;
    Ok(record)
}

/// The CSV column sets we accept. Columns may come in any order.
const CSV_INSTRUCTION: [&str; 4] = ["instruction", "input", "output", "system"];
/// The chat columns are named after the roles they fill.
const CSV_CHAT: [&str; 3] = [Role::System.as_str(), Role::User.as_str(), Role::Assistant.as_str()];

fn parse_csv(text: &str) -> Located<Vec<Record>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // Ragged rows are checked below, to say which line and how many cells.
        .flexible(true)
        .from_reader(text.as_bytes());
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(1, |p| line_at(text, p.byte()));
        (Location::Line(line), FieldError::whole(format!("invalid CSV: {e}")))
    };
    let header = reader.headers().map_err(csv_error)?.clone();
    let header_line = header.position().map_or(1, |p| line_at(text, p.byte()));
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_string()).collect();
    let schema = csv_schema(&columns).map_err(|e| (Location::Line(header_line), e))?;

    let mut records = Vec::new();
    for row in reader.records() {
        let row = row.map_err(csv_error)?;
        let line = row.position().map_or(0, |p| line_at(text, p.byte()));
        if row.len() != columns.len() {
            let msg = format!(
                "this row has {} cells but the header has {} ({})",
                row.len(),
                columns.len(),
                columns.join(",")
            );
            return Err((Location::Line(line), FieldError::whole(msg)));
        }
        let cell = |name: &str| columns.iter().position(|c| c == name).map(|i| &row[i]);
        let record = match schema {
            CsvSchema::Instruction => {
                instruction_record(cell("instruction"), cell("input"), cell("output"), cell("system"))
            }
            CsvSchema::Chat => chat_from_cells(cell("system"), cell("user"), cell("assistant")),
        };
        records.push(record.map_err(|e| (Location::Line(line), e))?);
    }
    Ok(records)
}

/// The line of a CSV record that starts at `byte`. The csv crate's own line count is off
/// by one after CRLF line ends, and a record's offset may point at the end of the line
/// before it, so we skip line ends and count the newlines before the first cell.
fn line_at(text: &str, byte: u64) -> usize {
    let bytes = text.as_bytes();
    let mut at = (byte as usize).min(bytes.len());
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        at += 1;
    }
    1 + bytes[..at].iter().filter(|&&b| b == b'\n').count()
}

#[derive(Debug, Clone, Copy)]
enum CsvSchema {
    Instruction,
    Chat,
}

fn csv_schema(columns: &[String]) -> Result<CsvSchema, FieldError> {
    let wanted = "instruction,output (optional: input, system) or user,assistant (optional: system)";
    let mut seen = HashSet::new();
    for c in columns {
        if !seen.insert(c.as_str()) {
            return Err(FieldError::new(c, "the header names this column twice"));
        }
        if !CSV_INSTRUCTION.contains(&c.as_str()) && !CSV_CHAT.contains(&c.as_str()) {
            let all: Vec<&str> = CSV_INSTRUCTION.iter().chain(&CSV_CHAT[1..]).copied().collect();
            let hint = suggest(c, &all).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
            return Err(FieldError::new(c, format!("unknown column (the header needs {wanted}){hint}")));
        }
    }
    let has = |c: &str| seen.contains(c);
    let instruction = has("instruction") || has("input") || has("output");
    let chat = has("user") || has("assistant");
    let missing = |needed: &[&str]| needed.iter().find(|c| !has(c)).map(|c| c.to_string());
    match (instruction, chat) {
        (true, true) => {
            Err(FieldError::whole(format!("the header mixes the instruction and chat column sets; it needs {wanted}")))
        }
        (true, false) => match missing(&["instruction", "output"]) {
            Some(c) => Err(FieldError::new(c, format!("missing column (the header needs {wanted})"))),
            None => Ok(CsvSchema::Instruction),
        },
        (false, true) => match missing(&["user", "assistant"]) {
            Some(c) => Err(FieldError::new(c, format!("missing column (the header needs {wanted})"))),
            None => Ok(CsvSchema::Chat),
        },
        (false, false) => Err(FieldError::whole(format!(
            "the header has none of the needed columns; it needs {wanted}, found: {}",
            columns.join(",")
        ))),
    }
}

fn chat_from_cells(system: Option<&str>, user: Option<&str>, assistant: Option<&str>) -> Result<Record, FieldError> {
    let user = required("user", user)?;
    let assistant = required("assistant", assistant)?;
    let mut messages = Vec::with_capacity(3);
    if let Some(system) = system.filter(|s| !s.trim().is_empty()) {
        messages.push(Message::new(Role::System, system));
    }
    messages.push(Message::new(Role::User, user));
    messages.push(Message::new(Role::Assistant, assistant));
    let record = Record::new(messages);
    record.validate()?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_lines_follow_nesting_and_strings() {
        let text = "[\n  {\"a\": \"[,]\"},\n  {\"b\": [1, 2]},\n\n  {\"c\": \"\\\"\"}\n]";
        assert_eq!(element_lines(text), vec![2, 3, 5]);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("ouput", &INSTRUCTION_KEYS), Some("output"));
        assert_eq!(suggest("Instruction", &INSTRUCTION_KEYS), Some("instruction"));
        assert_eq!(suggest("completion", &INSTRUCTION_KEYS), None);
    }
}
