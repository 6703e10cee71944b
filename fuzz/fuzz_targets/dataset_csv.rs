//! A .csv dataset through lorakit::data's loader (the format comes from the extension).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lorakit::data::load::parse_dataset;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz/train.csv");
    match parse_dataset(data, path) {
        // Whatever loads is a valid record that saves and loads back unchanged.
        Ok(records) => {
            for r in &records {
                r.validate().expect("loaded records are valid");
            }
            let again = parse_dataset(&lorakit::data::load::to_jsonl(&records), Path::new("again.jsonl"));
            assert_eq!(again.expect("saved records load back"), records);
        }
        Err(e) => assert!(format!("{e:#}").contains("fuzz/train.csv"), "error does not name the file: {e:#}"),
    }
});
