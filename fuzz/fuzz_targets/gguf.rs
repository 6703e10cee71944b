//! A GGUF model file as `lora` loads it: candle's header reader, then lorakit's checks
//! (architecture, `llama.*` keys, tensor names, dequantization, shapes), the tokenizer built
//! from `tokenizer.ggml.*` and the chat template from `tokenizer.chat_template`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::candle::quantized::gguf_file::Content;
use lorakit::candle::{DType, Device};
use lorakit::chat::ChatTemplate;
use lorakit::model::Checkpoint;
use std::io::Cursor;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.gguf");
    if let Err(e) = Checkpoint::read_gguf(&mut Cursor::new(data), path, DType::F32, &Device::Cpu) {
        assert!(format!("{e:#}").contains("fuzz.gguf"), "error does not name the file: {e:#}");
    }
    // The metadata half of loading (lorakit::load::load_path): tokenizer and template.
    if let Ok(content) = Content::read(&mut Cursor::new(data)) {
        let _ = lorakit::tokenizer::tokenizer_from_gguf(&content);
        let _ = ChatTemplate::from_gguf(&content);
    }
});
