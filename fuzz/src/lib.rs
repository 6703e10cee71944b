//! What the fuzz targets share: the tiny base model adapters are checked against.
use lorakit::model::config::RopeScaling;
use lorakit::{LlamaConfig, LoraConfig};

/// A two-layer Llama small enough that any tensor a seed holds stays a few hundred bytes.
pub fn tiny_model() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 4,
        vocab_size: 16,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: RopeScaling::None,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        bos_token_id: None,
        eos_token_ids: vec![],
    }
}

/// The adapter the safetensors seeds were written for (fuzz/make_seeds.py): r = 2 on q and v.
pub fn tiny_adapter() -> LoraConfig {
    LoraConfig {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
        target_modules: vec!["q_proj".into(), "v_proj".into()],
        use_rslora: false,
    }
}

/// A dataset file through lorakit's loader (`path`'s extension picks the format): an error
/// names the file; whatever loads is valid and survives a save and a reload unchanged.
pub fn check_dataset(data: &[u8], path: &std::path::Path) {
    use lorakit::data::load::{parse_dataset, to_jsonl};
    match parse_dataset(data, path) {
        Ok(records) => {
            for r in &records {
                r.validate().expect("loaded records are valid");
            }
            let again = parse_dataset(&to_jsonl(&records), std::path::Path::new("again.jsonl"));
            assert_eq!(again.expect("saved records load back"), records);
        }
        Err(e) => {
            let name = path.display().to_string();
            assert!(format!("{e:#}").contains(&name), "error does not name the file: {e:#}")
        }
    }
}
