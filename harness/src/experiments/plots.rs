//! The experiments' SVG plots (plotters' SVG backend), drawn from the JSON files beside
//! them, the same files the book's widgets read.

use super::record::Envelope;
use super::{Experiment, Stat, before_after, efficiency, rank, subspace};
use anyhow::{Context, Result};
use lorakit::io::atomic_write;
use plotters::prelude::*;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Draw the plots of experiment `e` from `dir/<name>.json` into `dir`.
pub fn draw(e: Experiment, dir: &Path) -> Result<()> {
    match e {
        Experiment::BeforeAfter => before_after(&dir.join("before_after.svg"), &results(e, dir)?),
        Experiment::Rank => {
            let r = results(e, dir)?;
            rank_curves(&dir.join("rank_loss.svg"), &r)?;
            rank_metric(&dir.join("rank_metric.svg"), &r)
        }
        Experiment::Subspace => subspace(&dir.join("subspace.svg"), &results(e, dir)?),
        Experiment::Efficiency => efficiency(&dir.join("efficiency.svg"), &results(e, dir)?),
    }
}

fn results<T: DeserializeOwned>(e: Experiment, dir: &Path) -> Result<T> {
    let path = e.json_path(dir);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let env: Envelope<T> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a {} results file", path.display(), e.name()))?;
    Ok(env.results)
}

/// `v` as an integer when it is one (tick labels of integer axes), else nothing.
fn integer_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 { format!("{}", v.round()) } else { String::new() }
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}

/// Colours for a series of runs, dark to light along one hue family.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    atomic_write(path, svg.as_bytes())
}

/// Task metric per use case: base vs base + LoRA (mean over seeds, bar = ± spread).
pub fn before_after(path: &Path, r: &before_after::Results) -> Result<()> {
    // Four bars per use case: the base as the data prompts it, told the task, shown examples,
    // and with the adapter.
    type Pick = fn(&before_after::UseCase) -> &Stat;
    let series: [(&str, RGBColor, Pick); 4] = [
        ("base", PALETTE[7], |u| &u.base),
        ("base, told the task", PALETTE[2], |u| &u.baselines.prompted),
        ("base, shown examples", PALETTE[1], |u| &u.baselines.few_shot),
        ("+ LoRA", PALETTE[0], |u| &u.lora),
    ];
    let (width, gap) = (0.2, 0.1);
    render(path, (760, 440), |root| {
        let n = r.use_cases.len();
        let mut chart = ChartBuilder::on(root)
            .caption("Held-out task metric: base, prompted base, base + LoRA", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..n as f64, 0f64..1.15)
            .map_err(plot_err)?;
        let names: Vec<String> = r.use_cases.iter().map(|u| u.task.name().to_string()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 {
                    names.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("task metric")
            .draw()
            .map_err(plot_err)?;
        for (k, (label, color, pick)) in series.into_iter().enumerate() {
            let left = move |i: usize| i as f64 + gap + k as f64 * width;
            let bars = r.use_cases.iter().enumerate().map(move |(i, u)| {
                Rectangle::new([(left(i), 0.0), (left(i) + width * 0.92, pick(u).mean)], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(plot_err)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
            let whiskers = r.use_cases.iter().enumerate().filter_map(move |(i, u)| {
                let (s, x) = (pick(u), left(i) + width * 0.46);
                (s.spread > 0.0).then(|| {
                    PathElement::new(
                        vec![(x, (s.mean - s.spread).max(0.0)), (x, (s.mean + s.spread).min(1.05))],
                        BLACK.stroke_width(2),
                    )
                })
            });
            chart.draw_series(whiskers).map_err(plot_err)?;
            let values = r.use_cases.iter().enumerate().map(move |(i, u)| {
                let s = pick(u);
                Text::new(format!("{:.2}", s.mean), (left(i), (s.mean + s.spread).min(0.97) + 0.05), ("sans-serif", 12))
            });
            chart.draw_series(values).map_err(plot_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        Ok(())
    })
}

/// Training loss per step for every rank (the "rank" group).
pub fn rank_curves(path: &Path, r: &rank::Results) -> Result<()> {
    let runs: Vec<&rank::Run> = r.groups.get("rank").into_iter().flatten().map(|&i| &r.runs[i]).collect();
    render(path, (720, 420), |root| {
        let max_step = runs.iter().flat_map(|x| x.curve.last()).map(|p| p.step).max().unwrap_or(1) as f64;
        let max_loss =
            runs.iter().flat_map(|x| &x.curve).map(|p| p.loss).filter(|v| v.is_finite()).fold(1e-3, f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption(format!("Training loss by rank ({}, alpha = 2r)", r.task.name()), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(1f64..max_step.max(2.0), 0f64..max_loss * 1.05)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("optimizer step").y_desc("cross-entropy").draw().map_err(plot_err)?;
        for (k, run) in runs.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = run.curve.iter().map(|p| (p.step as f64, p.loss)).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("r = {}", run.r))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(plot_err)?;
        Ok(())
    })
}

/// Against r (log scale): trainable parameters, final validation loss, task metric.
pub fn rank_metric(path: &Path, r: &rank::Results) -> Result<()> {
    let runs: Vec<&rank::Run> = r.groups.get("rank").into_iter().flatten().map(|&i| &r.runs[i]).collect();
    let max_r = runs.iter().map(|x| x.r).max().unwrap_or(2).max(2) as f64;
    let (x_lo, x_hi) = (-0.3, max_r.log2() + 0.3);
    render(path, (1080, 360), |root| {
        let panels = root.split_evenly((1, 3));
        type Getter = fn(&rank::Run) -> f64;
        let specs: [(&str, &str, Getter); 3] = [
            ("Trainable parameters", "parameters (millions)", |x| x.trainable_params as f64 / 1e6),
            ("Validation loss", "cross-entropy", |x| x.val_loss.unwrap_or(f64::NAN)),
            ("Task metric (test)", &r.metric_name, |x| x.metric),
        ];
        for (panel, (title, ylab, get)) in panels.iter().zip(specs) {
            let pts: Vec<(f64, f64)> =
                runs.iter().map(|x| ((x.r as f64).log2(), get(x))).filter(|p| p.1.is_finite()).collect();
            let hi = pts.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            let lo = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min);
            let (lo, hi) = if title.starts_with("Task") {
                (0.0, 1.05)
            } else if title.starts_with("Train") {
                (0.0, hi * 1.05)
            } else {
                let pad = ((hi - lo) * 0.1).max(1e-3);
                (lo - pad, hi + pad)
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(x_lo..x_hi, lo..hi)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_labels(((x_hi - x_lo) * 2.0) as usize + 1)
                .x_label_formatter(&|x| integer_label(2f64.powf(*x)))
                .x_desc("rank r (log scale)")
                .y_desc(ylab)
                .draw()
                .map_err(plot_err)?;
            chart.draw_series(LineSeries::new(pts.clone(), PALETTE[0].stroke_width(2))).map_err(plot_err)?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, PALETTE[0].filled()))).map_err(plot_err)?;
        }
        Ok(())
    })
}

/// Heatmaps of φ(i, j): trained adapters beside their random initialisations.
pub fn subspace(path: &Path, r: &subspace::Results) -> Result<()> {
    render(path, (1080, 330), |root| {
        let panels = root.split_evenly((1, 2));
        for (panel, (title, phi)) in panels.iter().zip([("trained", &r.phi), ("at initialisation", &r.phi_init)]) {
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!(
                        "φ(A_r={}, A_r={}, i, j), {} layer {}, {title} (white 0, blue 1)",
                        r.r1, r.r2, r.module, r.layer
                    ),
                    ("sans-serif", 16),
                )
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(34)
                .build_cartesian_2d(0.5f64..r.r2 as f64 + 0.5, r.r1 as f64 + 0.5..0.5f64)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(r.r2.min(16) + 1)
                .y_labels(r.r1.min(16) + 1)
                .x_label_formatter(&|x| integer_label(*x))
                .y_label_formatter(&|y| integer_label(*y))
                .x_desc("j")
                .y_desc("i")
                .draw()
                .map_err(plot_err)?;
            let cells = phi.iter().enumerate().flat_map(|(i, row)| {
                row.iter().enumerate().map(move |(j, &v)| {
                    // White (0) to dark blue (1).
                    let c =
                        RGBColor((255.0 * (1.0 - v)) as u8, (255.0 * (1.0 - 0.75 * v)) as u8, (255.0 - 80.0 * v) as u8);
                    let (x, y) = (j as f64 + 1.0, i as f64 + 1.0);
                    Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], c.filled())
                })
            });
            chart.draw_series(cells).map_err(plot_err)?;
        }
        Ok(())
    })
}

/// Full fine-tuning vs LoRA, each quantity relative to full fine-tuning (log scale).
pub fn efficiency(path: &Path, r: &efficiency::Results) -> Result<()> {
    let rows: [(&str, f64, f64); 5] = [
        ("trainable parameters", r.lora.trainable_params as f64, r.full.trainable_params as f64),
        ("optimizer state", r.lora.optimizer_state_bytes as f64, r.full.optimizer_state_bytes as f64),
        ("checkpoint size", r.lora.checkpoint_bytes as f64, r.full.checkpoint_bytes as f64),
        ("peak memory", r.lora.peak_rss_mib, r.full.peak_rss_mib),
        ("time per step", r.lora.step_seconds, r.full.step_seconds),
    ];
    render(path, (720, 360), |root| {
        let n = rows.len();
        let mut chart = ChartBuilder::on(root)
            .caption("LoRA as a share of full fine-tuning (log scale)", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(170)
            .build_cartesian_2d((1e-3f64..2.0).log_scale(), 0f64..n as f64)
            .map_err(plot_err)?;
        let labels: Vec<&str> = rows.iter().map(|r| r.0).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = y.floor() as usize;
                if (y - i as f64 - 0.5).abs() < 0.01 {
                    labels.get(i).map(|s| s.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("LoRA / full")
            .draw()
            .map_err(plot_err)?;
        let bars = rows.iter().enumerate().filter(|(_, r)| r.2 > 0.0).map(|(i, r)| {
            let ratio = (r.1 / r.2).clamp(1e-3, 2.0);
            Rectangle::new([(1e-3, i as f64 + 0.2), (ratio, i as f64 + 0.8)], PALETTE[0].filled())
        });
        chart.draw_series(bars).map_err(plot_err)?;
        let values = rows.iter().enumerate().filter(|(_, r)| r.2 > 0.0).map(|(i, r)| {
            let ratio = r.1 / r.2;
            let x = if ratio < 0.5 { ratio.max(1e-3) * 1.15 } else { 1.1e-3 };
            let color = if ratio < 0.5 { BLACK } else { WHITE };
            Text::new(format!("{ratio:.3}"), (x, i as f64 + 0.4), ("sans-serif", 13).into_font().color(&color))
        });
        chart.draw_series(values).map_err(plot_err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(1.0, 0.0), (1.0, n as f64)], BLACK.stroke_width(1))))
            .map_err(plot_err)?;
        Ok(())
    })
}
