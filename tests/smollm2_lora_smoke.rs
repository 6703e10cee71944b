//! Smoke test on the real default model: 30 LoRA steps on a small structured-extraction
//! task lower the loss on held-out examples the adapter never saw.

use lorakit::candle::DType;
use lorakit::chat::Message;
use lorakit::data::{TokenizedExample, collate, tokenize_chat};
use lorakit::load::{LoadedModel, load};
use lorakit::train::{AdamW, AdamWConfig, causal_lm_loss};
use lorakit::{LoraAdapter, LoraConfig};

const NAMES: [&str; 16] = [
    "Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kofi", "Lena", "Marco",
    "Nadia", "Oskar", "Priya",
];
const CITIES: [&str; 8] = ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Cairo", "Quito", "Perth"];

/// "Bruno, 34, lives in Lima." → {"name":"Bruno","age":34,"city":"Lima"}
fn example(i: usize) -> Vec<Message> {
    let (name, city, age) = (NAMES[i % 16], CITIES[(i * 5 + i / 16) % 8], 20 + (i * 7) % 50);
    vec![
        Message::new("system", "Reply with JSON only."),
        Message::new("user", format!("{name} is {age} and lives in {city}.")),
        Message::new("assistant", format!("{{\"name\":\"{name}\",\"age\":{age},\"city\":\"{city}\"}}")),
    ]
}

fn mean_loss(m: &LoadedModel, set: &[TokenizedExample]) -> f32 {
    let pad = m.stop_ids[0];
    let mut total = 0.0;
    let mut count = 0;
    for chunk in set.chunks(8) {
        let refs: Vec<&TokenizedExample> = chunk.iter().collect();
        let (ids, labels) = collate(&refs, pad);
        let (loss, n) = causal_lm_loss(&m.model, &m.model.ids_tensor(&ids).unwrap(), &labels, None).unwrap();
        total += loss.to_scalar::<f32>().unwrap() * n as f32;
        count += n;
    }
    total / count as f32
}

#[test]
fn thirty_lora_steps_lower_held_out_loss() {
    lorakit::runtime::configure(); // the allocator settings `lora` uses (see lorakit::runtime)
    let mut m = load(lorakit::fetch::DEFAULT_MODEL, DType::F32).unwrap();
    let tok = |i| tokenize_chat(&m, &example(i), 128, false).unwrap();
    let train: Vec<TokenizedExample> = (0..40).map(tok).collect();
    let held_out: Vec<TokenizedExample> = (40..56).map(tok).collect();
    assert!(train[0].n_targets() > 10, "the answer is scored, the prompt is not");

    let before = mean_loss(&m, &held_out);
    let adapter = LoraAdapter::init(LoraConfig::default(), &m.model.config, 7, DType::F32, m.model.device()).unwrap();
    m.model.apply_adapter(&adapter).unwrap();
    assert!((mean_loss(&m, &held_out) - before).abs() < 1e-4, "B = 0: the fresh adapter changes nothing");

    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, AdamWConfig { lr: 2e-3, weight_decay: 0.0, ..Default::default() }).unwrap();
    let pad = m.stop_ids[0];
    for step in 0..30 {
        let batch: Vec<&TokenizedExample> = (0..4).map(|k| &train[(step * 4 + k) % train.len()]).collect();
        let (ids, labels) = collate(&batch, pad);
        let (loss, _) = causal_lm_loss(&m.model, &m.model.ids_tensor(&ids).unwrap(), &labels, None).unwrap();
        let grads = loss.backward().unwrap();
        if step == 0 {
            for (name, var) in adapter.named_vars() {
                let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
                let sq = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(sq.is_finite(), "{name}: non-finite gradient");
                // B starts at zero, so A's gradient (∝ B) is zero at step 0; B's is not.
                if name.contains("lora_B") {
                    assert!(sq > 0.0, "{name}: zero gradient");
                }
            }
        }
        opt.step(&grads).unwrap();
        eprintln!("step {step}: loss {:.4}", loss.to_scalar::<f32>().unwrap());
    }
    let after = mean_loss(&m, &held_out);
    eprintln!("held-out loss: {before:.4} before, {after:.4} after 30 steps");
    assert!(after < 0.5 * before, "held-out loss {before} → {after}: LoRA did not learn");
}
