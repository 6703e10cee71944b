//! SmolLM2-135M-Instruct, fetched through the project's own code, against transformers'
//! f32 forward on the dequantized weights (`fixtures/smollm2/logits.json`).

use lora_book::*;
use lorakit::candle::DType;
use lorakit::generate::{GenerationConfig, StopReason, generate, generate_greedy_batch};
use lorakit::load::{LoadedModel, load};
use lorakit::score::score;
use std::sync::OnceLock;

fn model() -> &'static LoadedModel {
    static M: OnceLock<LoadedModel> = OnceLock::new();
    M.get_or_init(|| load(lorakit::fetch::DEFAULT_MODEL, DType::F32).expect("load the default model"))
}

fn prompts() -> Vec<serde_json::Value> {
    read_json(&fixture("smollm2/logits.json")).unwrap()["prompts"].as_array().unwrap().clone()
}

#[test]
fn config_from_gguf_metadata() {
    let c = &model().model.config;
    assert_eq!((c.num_hidden_layers, c.hidden_size, c.intermediate_size), (30, 576, 1536));
    assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (9, 3, 64));
    assert_eq!((c.vocab_size, c.rope_theta), (49152, 100000.0));
    assert!(c.tie_word_embeddings);
    // The count for r=8 on all seven projections.
    assert_eq!(lorakit::LoraConfig::default().num_parameters(c), 2_442_240);
}

#[test]
fn logits_match_transformers() {
    let m = model();
    for p in prompts() {
        let name = p["name"].as_str().unwrap();
        let ids: Vec<u32> = p["prompt_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        // The tokenizer + template give exactly these ids (also checked in smollm2_tokenizer.rs).
        assert_eq!(m.encode(p["prompt_text"].as_str().unwrap()).unwrap(), ids, "{name}: prompt ids");
        let report = score(&m.model, &ids, 20, true).unwrap();
        let argmax: Vec<f64> = report.positions.iter().map(|q| q.top[0].id as f64).collect();
        assert_eq!(argmax, flat_f64(&p["argmax_per_position"]), "{name}: argmax per position");
        let lse: Vec<f64> = report.positions.iter().map(|q| q.logsumexp).collect();
        assert_close(&format!("{name} logsumexp"), &lse, &flat_f64(&p["logsumexp_per_position"]), 1e-3);
        let last = report.positions.last().unwrap();
        let row = last.logits.as_ref().unwrap();
        for (k, want) in p["last_position_top"].as_array().unwrap().iter().enumerate() {
            let id = want["id"].as_u64().unwrap() as u32;
            // Compare by id: near-ties may swap places within the tolerance.
            let got = row[id as usize];
            let w = want["logit"].as_f64().unwrap();
            assert!((got as f64 - w).abs() <= 1e-3, "{name}: top-{k} id {id}: logit {got} vs {w}");
            if k == 0 {
                assert_eq!(last.top[0].id, id, "{name}: last-position argmax");
            }
        }
    }
}

#[test]
fn greedy_continuations_match_transformers() {
    let m = model();
    for p in prompts() {
        let name = p["name"].as_str().unwrap();
        let g = &p["greedy"];
        let ids: Vec<u32> = p["prompt_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let cfg = GenerationConfig::greedy(g["max_new_tokens"].as_u64().unwrap() as usize);
        let (out, reason) = generate(&m.model, &ids, &m.stop_ids, &cfg, |_| Ok(())).unwrap();
        let want: Vec<u32> = g["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        // transformers' ids include the final <|im_end|> (2); ours stop before it.
        let want_body: Vec<u32> = want.iter().copied().filter(|&i| i != 2).collect();
        assert_eq!(out, want_body, "{name}: greedy ids");
        if g["stopped_on_im_end"].as_bool().unwrap() {
            assert_eq!(reason, StopReason::StopToken(2), "{name}: should stop on <|im_end|>");
        }
        assert_eq!(m.decode(&out).unwrap(), g["text"].as_str().unwrap(), "{name}: greedy text");
    }
}

/// The three prompts (27, 35 and 37 tokens) answered in one left-padded batch, in two
/// batches and one by one: every way gives transformers' greedy ids.
#[test]
fn batched_greedy_matches_transformers() {
    let m = model();
    let ps = prompts();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    let prompt_ids: Vec<Vec<u32>> = ps.iter().map(|p| ids(&p["prompt_ids"])).collect();
    // transformers' ids include the final <|im_end|> (2); ours stop before it.
    let want: Vec<Vec<u32>> =
        ps.iter().map(|p| ids(&p["greedy"]["ids"]).into_iter().filter(|&i| i != 2).collect()).collect();
    let max_new = ps.iter().map(|p| p["greedy"]["max_new_tokens"].as_u64().unwrap() as usize).min().unwrap();
    let lengths: Vec<usize> = prompt_ids.iter().map(|p| p.len()).collect();
    assert!(lengths.iter().any(|&l| l != lengths[0]), "the prompts should need padding: {lengths:?}");
    for batch in [3, 2, 1] {
        let mut seen = 0;
        let got = generate_greedy_batch(&m.model, &prompt_ids, &m.stop_ids, max_new, batch, |n| seen += n).unwrap();
        assert_eq!(seen, ps.len(), "batch {batch}: progress");
        for ((p, got), want) in ps.iter().zip(&got).zip(&want) {
            // transformers ran each prompt for its own max_new_tokens; all ran at least `max_new`.
            assert_eq!(got[..], want[..want.len().min(max_new)], "batch {batch}, {}: greedy ids", p["name"]);
        }
    }
}

/// Few-shot prompts share their system prompt and examples: the batch computes that
/// beginning once and hands it to every row. The answers equal those of each prompt alone.
#[test]
fn batched_greedy_with_a_shared_prefix_equals_one_by_one() {
    use lorakit::data::{Task, load_dataset, prompting::few_shot};
    let m = model();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/extract");
    let test = load_dataset(&data.join("test_unseen.jsonl")).unwrap();
    let pool = load_dataset(&data.join("train.jsonl")).unwrap();
    let shown = few_shot(&test[..6], &pool, 3, 42);
    let prompts: Vec<Vec<u32>> =
        shown.iter().map(|r| m.encode(&m.chat_prompt(&r.messages[..r.messages.len() - 1]).unwrap()).unwrap()).collect();
    let common = (0..).take_while(|&j| prompts.iter().all(|p| p.get(j).is_some() && p[j] == prompts[0][j])).count();
    assert!(common > 100, "the few-shot prompts share their beginning ({common} tokens)");
    let batched = generate_greedy_batch(&m.model, &prompts, &m.stop_ids, 24, 6, |_| {}).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let (alone, _) = generate(&m.model, p, &m.stop_ids, &GenerationConfig::greedy(24), |_| Ok(())).unwrap();
        assert_eq!(batched[i], alone, "{:?}: prompt {i}", Task::Extract);
    }
}
