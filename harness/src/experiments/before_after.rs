//! Before/after: the base model and base + LoRA on the held-out test prompts of each task,
//! scored with the task's metric; the adapter is trained with each of the plan's seeds.

use super::{CurvePoint, Plan, RunSpec, Runner, Stat, curve};
use anyhow::Result;
use lorakit::data::synth::Task;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub use_cases: Vec<UseCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UseCase {
    pub task: Task,
    pub metric_name: String,
    /// What the metric checks, in one sentence.
    pub metric_description: String,
    /// Greedy decoding of a fixed model: one value, whatever the seed.
    pub base: Stat,
    /// One value per training seed.
    pub lora: Stat,
    /// Loss of the gold answers (teacher-forced) on the same test examples.
    pub base_test_loss: f64,
    pub lora_test_loss: Stat,
    pub seeds: Vec<u64>,
    /// The first seed's answers beside the base model's.
    pub examples: Vec<Example>,
    /// The first seed's training curve.
    pub curve: Vec<CurvePoint>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Example {
    pub prompt: String,
    pub reference: String,
    pub before: String,
    pub after: String,
    pub score_before: f64,
    pub score_after: f64,
}

pub fn metric_info(task: Task) -> (&'static str, &'static str) {
    match task {
        Task::Extract => (
            "json_field_accuracy",
            "share of the gold JSON's fields the answer gets exactly right (the answer must be JSON and nothing else)",
        ),
        Task::Support => ("facts_match", "1 if every number and name of the gold answer appears in the answer, else 0"),
        Task::Persona => (
            "persona_and_facts",
            "1 if the answer opens with \"Aye!\", closes with \"Fair winds.\" and has the gold answer's numbers, else 0",
        ),
    }
}

pub fn runs(plan: &Plan) -> Vec<RunSpec> {
    Task::ALL.iter().flat_map(|&t| plan.seeds.iter().map(move |&s| RunSpec::main(plan, t, s))).collect()
}

pub fn run(runner: &mut Runner) -> Result<Results> {
    let mut use_cases = Vec::new();
    for task in Task::ALL {
        let base = runner.base_eval(task)?;
        let mut runs = Vec::new();
        for &seed in &runner.plan.seeds.clone() {
            runs.push(runner.lora(&RunSpec::main(&runner.plan, task, seed))?);
        }
        let first = &runs[0];
        let examples = base
            .answers
            .iter()
            .zip(&first.eval.answers)
            .map(|(b, a)| Example {
                prompt: b.prompt.clone(),
                reference: b.gold.clone(),
                before: b.prediction.clone(),
                after: a.prediction.clone(),
                score_before: b.score,
                score_after: a.score,
            })
            .collect();
        let (metric_name, metric_description) = metric_info(task);
        use_cases.push(UseCase {
            task,
            metric_name: metric_name.into(),
            metric_description: metric_description.into(),
            base: Stat::of(vec![base.metric]),
            lora: Stat::of(runs.iter().map(|r| r.eval.metric).collect()),
            base_test_loss: base.loss,
            lora_test_loss: Stat::of(runs.iter().map(|r| r.eval.loss).collect()),
            seeds: runs.iter().map(|r| r.spec.seed).collect(),
            examples,
            curve: curve(&first.history),
        });
    }
    Ok(Results { use_cases })
}
