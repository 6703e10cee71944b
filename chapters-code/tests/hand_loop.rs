//! Listing 8-3's hand-written loop and `lorakit::train::train` take the same steps: on the
//! same config, from the same model, their losses are equal update for update.
use std::sync::{Arc, Mutex};

use lorakit::candle::DType;
use lorakit::load::load;
use lorakit::train::{StepMetrics, TrainConfig, TrainObserver, TrainOptions, train};

// The listing itself, so the test runs exactly the code the book shows (its `main` unused).
#[allow(dead_code)]
#[path = "../examples/listing_08_03_hand_loop.rs"]
mod listing;

/// Collects the loss `train` reports at each update.
#[derive(Default)]
struct Losses(Mutex<Vec<f64>>);

impl TrainObserver for Losses {
    fn step(&self, metrics: &StepMetrics, _total: usize, _tokens_per_s: f64) {
        self.0.lock().unwrap().push(metrics.loss);
    }
}

#[test]
fn hand_loop_losses_equal_train() {
    let out = tempfile::tempdir().unwrap();
    let data = book_support::data_dir().unwrap();
    // Listing 8-2's config, shortened to 3 updates (1 of warmup, so both parts of the schedule
    // are used; the first update's gradient is clipped).
    let cfg = TrainConfig {
        max_steps: Some(3),
        warmup_steps: 1,
        output_dir: out.path().to_path_buf(),
        ..listing::config(&data)
    };

    let mut m = load(&cfg.model, DType::F32).unwrap();
    let by_hand = listing::hand_loop(&cfg, &mut m, |line| eprintln!("hand:  {line}")).unwrap();

    let losses = Arc::new(Losses::default());
    let opts = TrainOptions { observer: Some(losses.clone()), ..TrainOptions::default() };
    // The same base model: `train` replaces the hand loop's adapter with a fresh one.
    train(&cfg, &mut m, &opts).unwrap();
    let by_train = losses.0.lock().unwrap().clone();
    eprintln!("train: {by_train:?}");

    assert_eq!(by_hand.len(), 3);
    // The same operations in the same order: equal to the last bit, not just close.
    assert_eq!(by_hand, by_train);
}
