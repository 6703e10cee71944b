//! A .csv dataset through lorakit::data's loader (the format comes from the extension).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lorakit_fuzz::check_dataset(data, std::path::Path::new("fuzz/train.csv")));
