//! Training-step throughput on the default model, with the forward/backward split:
//! `cargo run --example bench_train_step -- [batch] [seq] [steps]`.
//! (The benchmark proper, side by side with PyTorch + PEFT, is `lora bench`: scripts/bench.sh.)
use lorakit::candle::DType;
use lorakit::train::{AdamW, AdamWConfig, causal_lm_loss};
use lorakit::{LoraAdapter, LoraConfig};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    lorakit::runtime::configure(); // process-wide CPU settings: faster, same numbers (see lorakit::runtime)
    // On the compute pool, as `lora` runs (see lorakit::runtime).
    lorakit::runtime::install(run)
}

fn run() -> anyhow::Result<()> {
    let args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().map_err(|_| anyhow::anyhow!("{a:?} is not a count (usage: [batch] [seq] [steps])")))
        .collect::<anyhow::Result<Vec<usize>>>()?;
    let (batch, seq, steps) = (*args.first().unwrap_or(&4), *args.get(1).unwrap_or(&128), *args.get(2).unwrap_or(&6));
    if steps < 2 || batch == 0 || seq < 2 {
        anyhow::bail!("need at least 2 steps (the first is a warm-up), a batch of 1 and a sequence of 2")
    }
    let mut m = lorakit::load::load(lorakit::fetch::DEFAULT_MODEL, DType::F32)?;
    let adapter = LoraAdapter::init(LoraConfig::default(), &m.model.config, 0, DType::F32, m.model.device())?;
    m.model.apply_adapter(&adapter)?;
    println!("trainable parameters: {}", adapter.num_parameters());
    let rows: Vec<Vec<u32>> =
        (0..batch).map(|b| (0..seq).map(|t| ((b * 7919 + t * 104729) % 49000) as u32 + 100).collect()).collect();
    let labels: Vec<Vec<i64>> = rows.iter().map(|r| r.iter().map(|&x| x as i64).collect()).collect();
    let ids = m.model.ids_tensor(&rows)?;
    let vars = adapter.named_vars().into_iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, AdamWConfig { lr: 1e-4, ..Default::default() })?;
    let mut times = vec![];
    for s in 0..steps {
        let t0 = Instant::now();
        let (loss, _) = causal_lm_loss(&m.model, &ids, &labels, None)?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        opt.step(&grads)?;
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "step {s}: loss {:.4} fwd {:.2}s bwd {:.2}s total {:.2}s = {:.0} tok/s",
            loss.to_scalar::<f32>()?,
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            dt,
            (batch * seq) as f64 / dt
        );
        if s > 0 {
            times.push(dt);
        }
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    let rss = lorakit::runtime::peak_rss_mib();
    println!("median {:.2}s/step = {:.0} tokens/s; peak RSS {rss:.0} MiB", med, (batch * seq) as f64 / med);
    Ok(())
}
