//! Learning rate at each optimizer step: linear warmup, then cosine or linear decay to 0.

use super::config::Schedule;

/// The rate for update `step` (0-based) of `total`.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64, schedule: Schedule) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let decay_steps = total.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / decay_steps as f64).min(1.0);
    match schedule {
        Schedule::Constant => peak,
        Schedule::Linear => peak * (1.0 - progress),
        Schedule::Cosine => peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let lr = |s| lr_at(s, 100, 10, 1.0, Schedule::Cosine);
        assert!((lr(0) - 0.1).abs() < 1e-12);
        assert!((lr(9) - 1.0).abs() < 1e-12);
        assert!((lr(10) - 1.0).abs() < 1e-12);
        assert!((lr(55) - 0.5).abs() < 1e-12);
        assert!(lr(99) < 0.01);
        assert!((lr_at(60, 100, 10, 1.0, Schedule::Linear) - 0.4444444444444444).abs() < 1e-12);
        assert_eq!(lr_at(60, 100, 10, 1.0, Schedule::Constant), 1.0);
    }
}
