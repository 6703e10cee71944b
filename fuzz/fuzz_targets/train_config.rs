//! A TOML training config (`lora train --config`): parsing, then validate().
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::train::config::TrainConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let name = "fuzz/run.toml";
    match TrainConfig::from_toml_str(text, name) {
        Ok(cfg) => {
            let _ = cfg.validate();
            // What loads, saves: the config is written into every run's output.
            let toml = cfg.to_toml().expect("a loaded config serializes");
            assert_eq!(TrainConfig::from_toml_str(&toml, "again.toml").expect("and loads back"), cfg);
        }
        Err(e) => assert!(format!("{e:#}").contains(name), "error does not name the file: {e:#}"),
    }
});
