//! PEFT's `adapter_config.json`: parsing, then validation against the tiny model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::lora::peft_config_from_str;
use lorakit_fuzz::tiny_model;

fuzz_target!(|data: &[u8]| {
    // read_to_string refuses invalid UTF-8 before the parser sees it.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let name = "fuzz/adapter_config.json";
    match peft_config_from_str(text, name) {
        Ok(config) => {
            let _ = config.validate(Some(&tiny_model()));
            let _ = config.scaling();
        }
        Err(e) => assert!(format!("{e:#}").contains(name), "error does not name the file: {e:#}"),
    }
});
