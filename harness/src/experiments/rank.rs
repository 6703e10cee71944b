//! Rank, alpha and target modules, one task, one seed: what each choice costs (parameters,
//! bytes, time, memory) and what it buys (validation loss, task metric).
//!
//! The three alpha rules give the same scale (2) at `plan.alpha_ref_rank` and part ways as
//! r grows: α = 2r keeps 2, a fixed α shrinks as 1/r, rsLoRA's α/√r as 1/√r.

use super::{CurvePoint, Plan, RunSpec, Runner, curve};
use anyhow::Result;
use lorakit::data::synth::Task;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub task: Task,
    pub metric_name: String,
    pub seed: u64,
    pub runs: Vec<Run>,
    /// Indices into `runs` of each comparison (a run can be in several).
    pub groups: BTreeMap<String, Vec<usize>>,
    /// False if the kernel's peak-RSS mark could not be reset between runs (then
    /// `peak_rss_mib` is the process's peak so far, not the run's).
    pub peak_rss_per_run: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub r: usize,
    pub alpha: f64,
    pub rslora: bool,
    /// The factor on B·A.
    pub scale: f64,
    pub targets: Vec<String>,
    pub trainable_params: usize,
    pub adapter_bytes: u64,
    pub step_seconds: f64,
    pub peak_rss_mib: f64,
    pub val_loss: Option<f64>,
    pub metric: f64,
    /// Share of test answers with metric 1.
    pub exact: f64,
    pub test_loss: f64,
    pub train_seconds: f64,
    pub curve: Vec<CurvePoint>,
}

/// (group name, runs) in the order they are reported.
fn grouped(plan: &Plan) -> Vec<(&'static str, Vec<RunSpec>)> {
    let seed = plan.seeds[0];
    let task = plan.rank_task;
    let standard = |r: usize| RunSpec::ranked(task, r, 2.0 * r as f64, seed);
    let rank = plan.ranks.iter().map(|&r| standard(r)).collect();

    let r0 = plan.alpha_ref_rank;
    let mut alpha = vec![standard(r0)];
    for &r in &plan.alpha_ranks {
        alpha.push(standard(r));
        alpha.push(RunSpec::ranked(task, r, 2.0 * r0 as f64, seed));
        alpha.push(RunSpec { rslora: true, ..RunSpec::ranked(task, r, 2.0 * (r0 as f64).sqrt(), seed) });
    }

    let main = RunSpec::main(plan, task, seed);
    let with = |t: &[&str]| RunSpec { targets: t.iter().map(|s| s.to_string()).collect(), ..main.clone() };
    let targets = vec![with(&["q_proj", "v_proj"]), with(&["q_proj", "k_proj", "v_proj", "o_proj"]), main.clone()];
    vec![("rank", rank), ("alpha", alpha), ("targets", targets)]
}

pub fn runs(plan: &Plan) -> Vec<RunSpec> {
    grouped(plan).into_iter().flat_map(|(_, s)| s).collect()
}

pub fn run(runner: &mut Runner) -> Result<Results> {
    let mut specs: Vec<RunSpec> = Vec::new();
    let mut groups = BTreeMap::new();
    for (name, group) in grouped(&runner.plan) {
        let idx = group
            .into_iter()
            .map(|s| match specs.iter().position(|x| x == &s) {
                Some(i) => i,
                None => {
                    specs.push(s);
                    specs.len() - 1
                }
            })
            .collect();
        groups.insert(name.to_string(), idx);
    }
    let mut runs = Vec::new();
    for spec in &specs {
        let run = runner.lora(spec)?;
        runs.push(Run {
            r: spec.r,
            alpha: spec.alpha,
            rslora: spec.rslora,
            scale: spec.scale(),
            targets: spec.targets.clone(),
            trainable_params: run.summary.trainable_parameters,
            adapter_bytes: run.summary.adapter_bytes,
            step_seconds: run.step_seconds,
            peak_rss_mib: run.summary.peak_rss_mib,
            val_loss: run.summary.final_val_loss,
            metric: run.eval.metric,
            exact: run.eval.exact,
            test_loss: run.eval.loss,
            train_seconds: run.summary.wall_time_secs,
            curve: curve(&run.history),
        });
    }
    Ok(Results {
        task: runner.plan.rank_task,
        metric_name: super::before_after::metric_info(runner.plan.rank_task).0.into(),
        seed: runner.plan.seeds[0],
        runs,
        groups,
        peak_rss_per_run: runner.peak_rss_per_run,
    })
}
