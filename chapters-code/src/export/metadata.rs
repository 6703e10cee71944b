//! The metadata of a merged-model GGUF: llama.cpp reads the architecture, RoPE settings,
//! vocabulary and chat template from here, not from any side file.
//!
//! A GGUF base already has all of it: we copy its keys. An HF base has them spread over
//! `config.json`, `tokenizer.json` and `tokenizer_config.json`; we translate them the way
//! llama.cpp's `convert_hf_to_gguf.py` does for Llama models.

use super::gguf::{ExportDtype, f32v, strv, u32v};
use crate::model::LlamaConfig;
use crate::tokenizer::read_gguf;
use anyhow::{Context, Result, bail};
use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::Value as Json;
use std::path::Path;

/// llama.cpp's token types.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_USER_DEFINED: i32 = 4;

/// The Llama 3 pre-tokenizer regex (Meta's `tokenizer.json`), which llama.cpp calls `llama-bpe`.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Keys that describe the file rather than the model; the exporter sets them itself.
const FILE_KEYS: [&str; 4] = ["general.file_type", "general.quantization_version", "general.alignment", "general.name"];

/// Metadata copied from a GGUF base's header, with this export's name and file type.
pub fn from_gguf_base(content: &Content, name: &str, dtype: ExportDtype) -> Result<Vec<(String, Value)>> {
    let mut keys: Vec<&String> = content.metadata.keys().filter(|k| !FILE_KEYS.contains(&k.as_str())).collect();
    // HashMap order is random; a stable order makes exports reproducible byte for byte.
    keys.sort_by_key(|k| (!k.starts_with("general."), k.starts_with("tokenizer."), k.as_str()));
    let mut md: Vec<(String, Value)> = keys.into_iter().map(|k| (k.clone(), content.metadata[k].clone())).collect();
    md.insert(1.min(md.len()), ("general.name".into(), strv(name)));
    md.extend(file_keys(dtype));
    Ok(md)
}

/// Metadata for an HF base directory: `llama.*` keys from the config, the vocabulary from
/// `tokenizer.json`, the chat template from `tokenizer_config.json`.
pub fn from_hf_dir(
    dir: &Path,
    cfg: &LlamaConfig,
    name: &str,
    dtype: ExportDtype,
    vocab: bool,
) -> Result<Vec<(String, Value)>> {
    let mut md = model_keys(cfg, name);
    if vocab {
        md.extend(hf_vocab(dir, cfg)?);
    }
    md.extend(file_keys(dtype));
    Ok(md)
}

/// Metadata for a model known only by its config (no vocabulary: add one with [`replace_vocab`]).
pub fn from_config(cfg: &LlamaConfig, name: &str, dtype: ExportDtype) -> Vec<(String, Value)> {
    let mut md = model_keys(cfg, name);
    md.extend(file_keys(dtype));
    md
}

/// Replace the `tokenizer.*` keys with those of another GGUF file (for bases shipped
/// without a usable tokenizer, or to reuse a vocabulary llama.cpp already knows).
pub fn replace_vocab(md: &mut Vec<(String, Value)>, vocab_gguf: &Path) -> Result<()> {
    let content = read_gguf(vocab_gguf)?;
    let mut keys: Vec<&String> = content.metadata.keys().filter(|k| k.starts_with("tokenizer.")).collect();
    if keys.is_empty() {
        bail!("{}: no tokenizer.* keys to copy", vocab_gguf.display())
    }
    keys.sort();
    md.retain(|(k, _)| !k.starts_with("tokenizer."));
    md.extend(keys.into_iter().map(|k| (k.clone(), content.metadata[k].clone())));
    Ok(())
}

fn file_keys(dtype: ExportDtype) -> Vec<(String, Value)> {
    vec![
        ("general.file_type".into(), Value::U32(dtype.file_type())),
        ("general.quantization_version".into(), Value::U32(2)),
    ]
}

/// The architecture keys, named and typed as `convert_hf_to_gguf.py` writes them.
fn model_keys(cfg: &LlamaConfig, name: &str) -> Vec<(String, Value)> {
    vec![
        ("general.architecture".into(), strv("llama")),
        ("general.type".into(), strv("model")),
        ("general.name".into(), strv(name)),
        ("llama.block_count".into(), u32v(cfg.num_hidden_layers)),
        ("llama.context_length".into(), u32v(cfg.max_position_embeddings)),
        ("llama.embedding_length".into(), u32v(cfg.hidden_size)),
        ("llama.feed_forward_length".into(), u32v(cfg.intermediate_size)),
        ("llama.attention.head_count".into(), u32v(cfg.num_attention_heads)),
        ("llama.attention.head_count_kv".into(), u32v(cfg.num_key_value_heads)),
        ("llama.rope.freq_base".into(), f32v(cfg.rope_theta)),
        ("llama.attention.layer_norm_rms_epsilon".into(), f32v(cfg.rms_norm_eps)),
        ("llama.attention.key_length".into(), u32v(cfg.head_dim)),
        ("llama.attention.value_length".into(), u32v(cfg.head_dim)),
        ("llama.vocab_size".into(), u32v(cfg.vocab_size)),
        ("llama.rope.dimension_count".into(), u32v(cfg.head_dim)),
    ]
}

fn read_json(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

/// `tokenizer.ggml.*` keys from an HF byte-level BPE `tokenizer.json`.
fn hf_vocab(dir: &Path, cfg: &LlamaConfig) -> Result<Vec<(String, Value)>> {
    let path = dir.join("tokenizer.json");
    if !path.exists() {
        bail!(
            "{}: missing; a merged GGUF needs the vocabulary (give --vocab-from with a GGUF of the same model)",
            path.display()
        )
    }
    let origin = path.display().to_string();
    let tj = read_json(&path)?;
    let model = &tj["model"];
    if model["type"].as_str() != Some("BPE") || tj["decoder"]["type"].as_str() != Some("ByteLevel") {
        bail!("{origin}: only byte-level BPE tokenizers (Llama 3, SmolLM2, GPT-2) can be converted")
    }
    let pre = pre_tokenizer_name(&tj["pre_tokenizer"])
        .with_context(|| format!("{origin}: pre_tokenizer is not one llama.cpp knows by name (give --vocab-from)"))?;

    // Token strings by id: the BPE vocabulary, then the added tokens.
    let vocab = model["vocab"].as_object().with_context(|| format!("{origin}: model.vocab is not an object"))?;
    let mut entries: Vec<(u32, String, i32)> = Vec::with_capacity(vocab.len());
    for (tok, id) in vocab {
        let id = id.as_u64().with_context(|| format!("{origin}: model.vocab[{tok:?}] is not an id"))?;
        entries.push((id as u32, tok.clone(), TOKEN_NORMAL));
    }
    for (i, added) in tj["added_tokens"].as_array().into_iter().flatten().enumerate() {
        let id = added["id"].as_u64().with_context(|| format!("{origin}: added_tokens[{i}].id missing"))?;
        let content =
            added["content"].as_str().with_context(|| format!("{origin}: added_tokens[{i}].content missing"))?;
        let special = added["special"].as_bool().unwrap_or(false) || looks_special(content);
        let ty = if special { TOKEN_CONTROL } else { TOKEN_USER_DEFINED };
        entries.retain(|(e, _, _)| *e != id as u32);
        entries.push((id as u32, content.to_string(), ty));
    }
    let n = entries.iter().map(|(id, _, _)| *id as usize + 1).max().unwrap_or(0).max(cfg.vocab_size);
    if n > cfg.vocab_size {
        bail!("{origin}: {n} tokens, but the model's embedding has {} rows", cfg.vocab_size)
    }
    // Ids no token claims become [PADn], as the converter does.
    let mut tokens: Vec<Value> = (0..n).map(|i| strv(format!("[PAD{i}]"))).collect();
    let mut types: Vec<Value> = vec![Value::I32(TOKEN_USER_DEFINED); n];
    for (id, tok, ty) in entries {
        tokens[id as usize] = strv(tok);
        types[id as usize] = Value::I32(ty);
    }
    let merges: Vec<Value> = model["merges"]
        .as_array()
        .with_context(|| format!("{origin}: model.merges is missing"))?
        .iter()
        .enumerate()
        .map(|(i, m)| match m {
            Json::String(s) => Ok(strv(s.clone())),
            Json::Array(p) if p.len() == 2 => {
                Ok(strv(format!("{} {}", p[0].as_str().unwrap_or(""), p[1].as_str().unwrap_or(""))))
            }
            _ => bail!("{origin}: model.merges[{i}] is neither \"a b\" nor [a, b]"),
        })
        .collect::<Result<_>>()?;

    let mut md = vec![
        ("tokenizer.ggml.model".to_string(), strv("gpt2")),
        ("tokenizer.ggml.pre".into(), strv(pre)),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.clone())),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
    ];
    let id_of = |text: &str| tokens.iter().position(|t| matches!(t, Value::String(s) if s == text));
    let tc_path = dir.join("tokenizer_config.json");
    let tc = if tc_path.exists() { read_json(&tc_path)? } else { Json::Null };
    let token_text = |key: &str| match &tc[key] {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    };
    let bos = token_text("bos_token").and_then(|t| id_of(&t)).map(|i| i as u32).or(cfg.bos_token_id);
    let eos = token_text("eos_token").and_then(|t| id_of(&t)).map(|i| i as u32).or(cfg.eos_token_ids.first().copied());
    let pad = token_text("pad_token").and_then(|t| id_of(&t)).map(|i| i as u32);
    for (key, id) in [("bos_token_id", bos), ("eos_token_id", eos), ("padding_token_id", pad)] {
        if let Some(id) = id {
            md.push((format!("tokenizer.ggml.{key}"), Value::U32(id)));
        }
    }
    // Whether the tokenizer puts BOS in front of every text: said in tokenizer_config.json,
    // or implied by a post-processor template that starts with it (Llama 3).
    let add_bos = tc["add_bos_token"].as_bool().or_else(|| {
        let single = tj["post_processor"]["single"]
            .as_array()
            .or_else(|| tj["post_processor"]["processors"].as_array()?.iter().find_map(|p| p["single"].as_array()))?;
        Some(single.first()?.get("SpecialToken").is_some())
    });
    if let Some(add) = add_bos {
        md.push(("tokenizer.ggml.add_bos_token".into(), Value::Bool(add)));
    }
    if let Some(t) = chat_template(dir, &tc)? {
        md.push(("tokenizer.chat_template".into(), strv(t)));
    }
    Ok(md)
}

/// transformers ≥ 4.43 may save the template as `chat_template.jinja` beside the config.
fn chat_template(dir: &Path, tc: &Json) -> Result<Option<String>> {
    if let Some(t) = tc["chat_template"].as_str() {
        return Ok(Some(t.to_string()));
    }
    let file = dir.join("chat_template.jinja");
    if file.exists() {
        return Ok(Some(std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?));
    }
    Ok(None)
}

/// `<|eot_id|>`, `<s>`: the converter treats tokens written like this as control tokens.
fn looks_special(t: &str) -> bool {
    (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with('<') && t.ends_with('>') && !t.contains(' ') && t.len() > 2)
}

/// The name llama.cpp gives a pre-tokenizer (`tokenizer.ggml.pre`), recognised by its parts.
fn pre_tokenizer_name(pre: &Json) -> Option<&'static str> {
    let is_byte_level =
        |p: &Json, regex: bool| p["type"] == "ByteLevel" && p["use_regex"].as_bool().unwrap_or(true) == regex;
    if is_byte_level(pre, true) {
        return Some("gpt2");
    }
    let parts = pre["pretokenizers"].as_array()?;
    match parts.as_slice() {
        [d, b] if d["type"] == "Digits" && d["individual_digits"] == true && is_byte_level(b, true) => Some("smollm"),
        [s, b] if s["type"] == "Split" && s["pattern"]["Regex"] == LLAMA3_SPLIT && is_byte_level(b, false) => {
            Some("llama-bpe")
        }
        _ => None,
    }
}
