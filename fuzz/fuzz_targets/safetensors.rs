//! `adapter_model.safetensors` of a PEFT adapter: header, tensors, and lorakit's checks of
//! every name, dtype and shape against the tiny model of `lorakit_fuzz`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::LoraAdapter;
use lorakit::candle::{DType, Device};
use lorakit_fuzz::{tiny_adapter, tiny_model};

fuzz_target!(|data: &[u8]| {
    let name = "fuzz/adapter_model.safetensors";
    let model = tiny_model();
    if let Err(e) = LoraAdapter::from_peft_weights(tiny_adapter(), data, name, &model, DType::F32, &Device::Cpu) {
        assert!(format!("{e:#}").contains(name), "error does not name the file: {e:#}");
    }
});
