//! Tokenizers, built from a GGUF file's metadata or loaded from an HF `tokenizer.json`.
//!
//! A GGUF model carries its whole vocabulary under `tokenizer.ggml.*`, so no separate
//! tokenizer file is needed. We rebuild the same `tokenizers::Tokenizer` that Hugging Face
//! would use, because candle's own GGUF helper gets the `smollm` pre-tokenizer wrong.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Merges, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::processors::sequence::Sequence as PostSequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// llama.cpp's token type for control tokens (`<|im_start|>`, `<|eot_id|>`, ...).
const TOKEN_TYPE_CONTROL: i32 = 3;
/// llama.cpp's token type for tokens a model's author added as plain text (MPT's runs of
/// spaces): stored unencoded, and matched in the text before the BPE merges see it.
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The Llama 3 pre-tokenizer regex, as in Meta's `tokenizer.json`.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: Llama 3's with every digit on its own.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen3.5's: Qwen2's with combining marks kept inside words.
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The `tokenizer.ggml.pre` names llama.cpp gives each way of splitting text into words
/// (`llama-vocab.cpp`), for the splits this crate rebuilds.
const GPT2_NAMES: &[&str] = &["default", "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jina-es", "jina-de", "roberta-bpe"];
const DIGITS_THEN_GPT2_NAMES: &[&str] = &["smollm", "starcoder", "refact", "codeshell"];
const LLAMA3_NAMES: &[&str] = &["llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral"];
const QWEN2_NAMES: &[&str] = &["qwen2", "deepseek-r1-qwen", "stablelm2"];
const QWEN35_NAMES: &[&str] = &["qwen35"];

/// Reads the metadata (not the tensors) of a GGUF file.
pub fn read_gguf(path: &Path) -> Result<Content> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Content::read(&mut file).with_context(|| format!("{} is not a valid GGUF file", path.display()))
}

/// Builds the tokenizer described by the `tokenizer.ggml.*` keys of a GGUF file.
///
/// Only byte-level BPE vocabularies (`tokenizer.ggml.model = "gpt2"`) are supported; that is
/// what SmolLM2 and Llama 3 use. SentencePiece (`"llama"`) vocabularies are refused.
pub fn tokenizer_from_gguf(content: &Content) -> Result<Tokenizer> {
    let model = gguf_str(content, "tokenizer.ggml.model")?;
    if model != "gpt2" {
        bail!(
            "unsupported tokenizer model {model:?} in GGUF key tokenizer.ggml.model of model {} \
             (only \"gpt2\" byte-level BPE is supported)",
            model_name(content)
        );
    }
    let tokens = gguf_strings(content, "tokenizer.ggml.tokens")?;
    let merges = gguf_strings(content, "tokenizer.ggml.merges")?;
    // The pre-tokenizer is not stored, only named: llama.cpp knows each name by its regex.
    let pre = match content.metadata.get("tokenizer.ggml.pre") {
        Some(v) => v.to_string().context("GGUF key tokenizer.ggml.pre is not a string")?.as_str(),
        None => "default",
    };

    let vocab: Vocab = tokens.iter().enumerate().map(|(id, t)| (t.to_string(), id as u32)).collect();
    let merges: Merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| anyhow!("GGUF key tokenizer.ggml.merges[{i}] = {m:?} is not \"a b\""))
        })
        .collect::<Result<_>>()?;

    let (pre_tokenizer, ignore_merges) = pre_tokenizer(pre, content)?;

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| anyhow!("cannot build the BPE model from tokenizer.ggml.tokens/merges: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    // Control and user-defined tokens written in the text must become their single id, never
    // be split; only control tokens are special (left out when decoding skips specials).
    let (control, user_defined) = whole_tokens(content, &tokens)?;
    tokenizer
        .add_special_tokens(control)
        .map_err(|e| anyhow!("cannot add the control tokens of tokenizer.ggml.token_type: {e}"))?;
    tokenizer
        .add_tokens(user_defined)
        .map_err(|e| anyhow!("cannot add the user-defined tokens of tokenizer.ggml.token_type: {e}"))?;

    // `encode(text, true)` adds BOS only where the model asks for it (Llama 3 does).
    let post = post_processor(content, &tokens)?;
    tokenizer.with_post_processor(Some(post));
    Ok(tokenizer)
}

/// The pre-tokenizer llama.cpp knows by the name in `tokenizer.ggml.pre`, and whether whole
/// words found in the vocabulary skip the merges.
fn pre_tokenizer(pre: &str, content: &Content) -> Result<(PreTokenizerWrapper, bool)> {
    // Byte-level BPE maps every byte to a printable character first, so the regex of the
    // plain ByteLevel pre-tokenizer is the GPT-2 one; models that split differently put
    // their own split in front of it and switch the built-in regex off.
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(SplitPattern::Regex(regex.into()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| anyhow!("the {pre} pre-tokenizer regex: {e}"))?;
        Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into())
    };
    Ok(if GPT2_NAMES.contains(&pre) {
        (ByteLevel::new(false, true, true).into(), false)
    } else if DIGITS_THEN_GPT2_NAMES.contains(&pre) {
        // SmolLM2 and StarCoder: every digit is its own word, then GPT-2 splitting.
        (Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(), false)
    } else if LLAMA3_NAMES.contains(&pre) {
        // Llama 3: its own regex, and whole words found in the vocabulary skip the merges.
        (split(LLAMA3_SPLIT)?, true)
    } else if QWEN2_NAMES.contains(&pre) {
        (split(QWEN2_SPLIT)?, false)
    } else if QWEN35_NAMES.contains(&pre) {
        (split(QWEN35_SPLIT)?, false)
    } else {
        let known = [GPT2_NAMES, DIGITS_THEN_GPT2_NAMES, LLAMA3_NAMES, QWEN2_NAMES, QWEN35_NAMES].concat();
        bail!(
            "unsupported pre-tokenizer {pre:?} in GGUF key tokenizer.ggml.pre of model {} (supported: {})",
            model_name(content),
            known.join(", ")
        )
    })
}

/// The vocabulary's control and user-defined tokens (`tokenizer.ggml.token_type`), kept whole.
fn whole_tokens(content: &Content, tokens: &[&str]) -> Result<(Vec<AddedToken>, Vec<AddedToken>)> {
    let types = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec().context("GGUF key tokenizer.ggml.token_type is not an array")?.clone(),
        None => Vec::new(),
    };
    let (mut control, mut user_defined) = (Vec::new(), Vec::new());
    for (id, ty) in types.iter().enumerate() {
        let ty = ty.to_i32().with_context(|| format!("GGUF key tokenizer.ggml.token_type[{id}]"))?;
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            let token = tokens.get(id).with_context(|| {
                format!("GGUF key tokenizer.ggml.token_type has an entry {id} beyond the vocabulary")
            })?;
            let whole = AddedToken::from(token.to_string(), ty == TOKEN_TYPE_CONTROL);
            if ty == TOKEN_TYPE_CONTROL { control.push(whole) } else { user_defined.push(whole) }
        }
    }
    Ok((control, user_defined))
}

/// Byte-level post-processing, with BOS in front when `tokenizer.ggml.add_bos_token` says so.
fn post_processor(content: &Content, tokens: &[&str]) -> Result<PostProcessorWrapper> {
    let byte_level = PostProcessorWrapper::from(ByteLevel::new(false, true, true));
    let add_bos = match content.metadata.get("tokenizer.ggml.add_bos_token") {
        Some(v) => v.to_bool().context("GGUF key tokenizer.ggml.add_bos_token is not a bool")?,
        None => false,
    };
    Ok(match (add_bos, gguf_u32(content, "tokenizer.ggml.bos_token_id")?) {
        (true, Some(bos_id)) => {
            let bos = tokens
                .get(bos_id as usize)
                .with_context(|| format!("GGUF key tokenizer.ggml.bos_token_id = {bos_id} is out of the vocabulary"))?
                .to_string();
            let template = TemplateProcessing::builder()
                .try_single(format!("{bos}:0 $A:0"))
                .and_then(|b| b.try_pair(format!("{bos}:0 $A:0 {bos}:1 $B:1")))
                .map_err(|e| anyhow!("BOS template: {e}"))?
                .special_tokens(vec![(bos, bos_id)])
                .build()
                .map_err(|e| anyhow!("BOS template: {e}"))?;
            PostSequence::new(vec![byte_level, template.into()]).into()
        }
        _ => byte_level,
    })
}

/// Loads a Hugging Face `tokenizer.json`.
pub fn tokenizer_from_file(path: &Path) -> Result<Tokenizer> {
    if !path.is_file() {
        bail!("tokenizer file {} does not exist", path.display());
    }
    Tokenizer::from_file(path).map_err(|e| anyhow!("cannot load the tokenizer {}: {e}", path.display()))
}

/// A string-valued GGUF key, which must be present.
pub(crate) fn gguf_str<'a>(content: &'a Content, key: &str) -> Result<&'a str> {
    let value = content.metadata.get(key).with_context(|| format!("GGUF key {key} is missing"))?;
    Ok(value.to_string().with_context(|| format!("GGUF key {key} is not a string"))?.as_str())
}

/// An optional integer-valued GGUF key (token ids are u32, but some writers use other widths).
pub(crate) fn gguf_u32(content: &Content, key: &str) -> Result<Option<u32>> {
    let Some(value) = content.metadata.get(key) else {
        return Ok(None);
    };
    let id = match value {
        Value::U8(v) => *v as u64,
        Value::U16(v) => *v as u64,
        Value::U32(v) => *v as u64,
        Value::U64(v) => *v,
        Value::I8(v) if *v >= 0 => *v as u64,
        Value::I16(v) if *v >= 0 => *v as u64,
        Value::I32(v) if *v >= 0 => *v as u64,
        Value::I64(v) if *v >= 0 => *v as u64,
        other => bail!("GGUF key {key} is not a token id: {other:?}"),
    };
    u32::try_from(id).map(Some).with_context(|| format!("GGUF key {key} = {id} is too large"))
}

/// A string-array GGUF key, which must be present.
fn gguf_strings<'a>(content: &'a Content, key: &str) -> Result<Vec<&'a str>> {
    let value = content.metadata.get(key).with_context(|| format!("GGUF key {key} is missing"))?;
    let items = value.to_vec().with_context(|| format!("GGUF key {key} is not an array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| v.to_string().map(|s| s.as_str()).with_context(|| format!("GGUF key {key}[{i}] is not a string")))
        .collect()
}

/// The model's name for error messages (the GGUF reader does not keep the file name).
fn model_name(content: &Content) -> String {
    match content.metadata.get("general.name").and_then(|v| v.to_string().ok()) {
        Some(name) => format!("{name:?}"),
        None => "(no general.name)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn content(metadata: Vec<(&str, Value)>) -> Content {
        Content {
            magic: candle_core::quantized::gguf_file::VersionedMagic::GgufV3,
            metadata: metadata.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    fn strings(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
    }

    #[test]
    fn sentencepiece_is_refused_by_name() {
        let c = content(vec![("tokenizer.ggml.model", Value::String("llama".into()))]);
        let err = tokenizer_from_gguf(&c).unwrap_err().to_string();
        assert!(err.contains("unsupported tokenizer model \"llama\""), "{err}");
    }

    #[test]
    fn missing_key_is_named() {
        let c = content(vec![("tokenizer.ggml.model", Value::String("gpt2".into()))]);
        let err = tokenizer_from_gguf(&c).unwrap_err().to_string();
        assert!(err.contains("tokenizer.ggml.tokens"), "{err}");
    }

    #[test]
    fn llama3_split_and_bos() {
        // A toy vocabulary: the Llama 3 regex splits "it's" into "it" + "'s".
        let c = content(vec![
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("llama-bpe".into())),
            ("tokenizer.ggml.tokens", strings(&["<s>", "i", "t", "'", "s", "it", "'s"])),
            ("tokenizer.ggml.merges", strings(&["i t", "' s"])),
            ("tokenizer.ggml.token_type", Value::Array([3, 1, 1, 1, 1, 1, 1].map(Value::I32).to_vec())),
            ("tokenizer.ggml.bos_token_id", Value::U32(0)),
            ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        ]);
        let tok = tokenizer_from_gguf(&c).unwrap();
        assert_eq!(tok.encode("it's", false).unwrap().get_ids(), &[5, 6]);
        assert_eq!(tok.encode("it's", true).unwrap().get_ids(), &[0, 5, 6]);
        assert_eq!(tok.decode(&[0, 5, 6], false).unwrap(), "<s>it's");
    }
}
