//! Before/after: the base model and base + LoRA on the held-out test prompts of each task,
//! scored with the task's metric; the adapter is trained with each of the plan's seeds.
//! A task with an unseen test (`test_unseen.jsonl`: new values, facts or questions) is scored
//! on it too. Beside the base model as the data prompts it, two baselines: the base model
//! told the task in a fuller system prompt, and shown a few solved examples (a different
//! draw per seed).

use super::{CurvePoint, Plan, RunSpec, Runner, Stat, curve};
use anyhow::Result;
use lorakit::data::prompting;
use lorakit::data::synth::Task;
use lorakit::eval::EvalReport;
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
    /// The base model prompted instead of trained.
    pub baselines: Baselines,
    /// One value per training seed.
    pub lora: Stat,
    /// Loss of the gold answers (teacher-forced) on the same test examples.
    pub base_test_loss: f64,
    pub lora_test_loss: Stat,
    pub seeds: Vec<u64>,
    /// The same base model and adapters on `test_unseen.jsonl`, for a task that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<Unseen>,
    /// The first seed's answers beside the base model's.
    pub examples: Vec<Example>,
    /// The first seed's training curve.
    pub curve: Vec<CurvePoint>,
}

/// Scores on the test of what training never showed (Chapter 6: new names, cities and
/// products; held-out facts; new questions): the gap to [`UseCase::lora`] is how much of
/// that score was recall.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unseen {
    pub examples: usize,
    pub base: Stat,
    pub baselines: Baselines,
    pub lora: Stat,
    pub base_test_loss: f64,
    pub lora_test_loss: Stat,
    /// The first seed's answers beside the base model's.
    pub answers: Vec<Example>,
}

/// The prompting baselines (see `lorakit::data::prompting`) on the same test examples.
#[derive(Debug, Serialize, Deserialize)]
pub struct Baselines {
    /// The system prompt of the instructed base model.
    pub instructions: String,
    /// The base model with [`Baselines::instructions`] as its system prompt (greedy: one value).
    pub prompted: Stat,
    pub prompted_test_loss: f64,
    /// Solved training examples before each question.
    pub shots: usize,
    /// The base model shown `shots` examples, one draw of them per seed.
    pub few_shot: Stat,
    pub few_shot_test_loss: Stat,
    /// The first seed's few-shot answers beside the instructed model's.
    pub answers: Vec<BaselineAnswer>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BaselineAnswer {
    pub prompt: String,
    pub reference: String,
    pub prompted: String,
    pub few_shot: String,
    pub score_prompted: f64,
    pub score_few_shot: f64,
}

impl Baselines {
    fn of(runner: &Runner, task: Task, prompted: EvalReport, few_shot: Vec<EvalReport>) -> Self {
        let answers = prompted
            .answers
            .iter()
            .zip(&few_shot[0].answers)
            .map(|(p, f)| BaselineAnswer {
                prompt: p.prompt.clone(),
                reference: p.gold.clone(),
                prompted: p.prediction.clone(),
                few_shot: f.prediction.clone(),
                score_prompted: p.score,
                score_few_shot: f.score,
            })
            .collect();
        Self {
            instructions: prompting::instructions(task),
            prompted: Stat::of(vec![prompted.metric]),
            prompted_test_loss: prompted.loss,
            shots: runner.plan.shots,
            few_shot: Stat::of(few_shot.iter().map(|r| r.metric).collect()),
            few_shot_test_loss: Stat::of(few_shot.iter().map(|r| r.loss).collect()),
            answers,
        }
    }
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
        let test = runner.test_set(task)?;
        let (prompted, few_shot) = runner.baselines(task, &test, "test")?;
        let baselines = Baselines::of(runner, task, prompted, few_shot);
        let mut runs = Vec::new();
        for &seed in &runner.plan.seeds.clone() {
            runs.push(runner.lora(&RunSpec::main(&runner.plan, task, seed))?);
        }
        let unseen = match runner.base_eval_unseen(task)? {
            Some(base) => {
                let test = runner.unseen_set(task)?.unwrap_or_default();
                let (prompted, few_shot) = runner.baselines(task, &test, task.unseen_label())?;
                let baselines = Baselines::of(runner, task, prompted, few_shot);
                let mut lora = Vec::new();
                for run in &runs {
                    lora.extend(runner.lora_eval_unseen(run)?);
                }
                let answers = examples_of(&base, &lora[0]);
                Some(Unseen {
                    answers,
                    examples: base.examples,
                    base: Stat::of(vec![base.metric]),
                    baselines,
                    lora: Stat::of(lora.iter().map(|r| r.metric).collect()),
                    base_test_loss: base.loss,
                    lora_test_loss: Stat::of(lora.iter().map(|r| r.loss).collect()),
                })
            }
            None => None,
        };
        let first = &runs[0];
        let examples = examples_of(&base, &first.eval);
        let (metric_name, metric_description) = metric_info(task);
        use_cases.push(UseCase {
            task,
            metric_name: metric_name.into(),
            metric_description: metric_description.into(),
            base: Stat::of(vec![base.metric]),
            baselines,
            lora: Stat::of(runs.iter().map(|r| r.eval.metric).collect()),
            base_test_loss: base.loss,
            lora_test_loss: Stat::of(runs.iter().map(|r| r.eval.loss).collect()),
            seeds: runs.iter().map(|r| r.spec.seed).collect(),
            unseen,
            examples,
            curve: curve(&first.history),
        });
    }
    Ok(Results { use_cases })
}

/// Each answer of `after` beside the same prompt's answer of `before`.
fn examples_of(before: &EvalReport, after: &EvalReport) -> Vec<Example> {
    before
        .answers
        .iter()
        .zip(&after.answers)
        .map(|(b, a)| Example {
            prompt: b.prompt.clone(),
            reference: b.gold.clone(),
            before: b.prediction.clone(),
            after: a.prediction.clone(),
            score_before: b.score,
            score_after: a.score,
        })
        .collect()
}
