//! The run's loss curve as an SVG people can open in a browser (plotters' SVG backend, no
//! fonts needed).

use super::trainer::StepMetrics;
use crate::io::atomic_write;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// Training loss per step, and validation loss where it was measured.
pub fn loss_curve(path: &Path, history: &[StepMetrics]) -> Result<()> {
    let train: Vec<(f64, f64)> = history.iter().map(|h| (h.step as f64, h.loss)).collect();
    let val: Vec<(f64, f64)> = history.iter().filter_map(|h| h.val_loss.map(|v| (h.step as f64, v))).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let max_step = train.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
        let max_loss = train.iter().chain(&val).map(|p| p.1).filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .caption("LoRA training loss", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_step, 0f64..max_loss * 1.05)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("optimizer step").y_desc("cross-entropy").draw().map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
            .map_err(plot_err)?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val.clone(), RED.stroke_width(2)))
                .map_err(plot_err)?
                .label("validation")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
            chart.draw_series(val.into_iter().map(|p| Circle::new(p, 3, RED.filled()))).map_err(plot_err)?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    atomic_write(path, svg.as_bytes())
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting: {e}")
}
