//! Learning-rate schedules as pure functions of the optimiser step, so that a resumed run picks up
//! exactly where it stopped: cosine with linear warm-up, one-cycle (warm-up to the peak, cosine down
//! to peak/`final_div`), or constant.

use serde::{Deserialize, Serialize};

/// Which schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warm-up from 0, then cosine decay to 0.
    Cosine,
    /// One-cycle: warm-up from peak/25 to the peak (30% of the run unless warm-up is set), cosine
    /// down to peak/`final_div`.
    OneCycle,
    /// The peak throughout (after warm-up).
    Constant,
}

/// The learning rate at optimiser step `step` (0-based) of `total`, peaking at `peak` after
/// `warmup` steps.
pub fn learning_rate(schedule: Schedule, peak: f64, step: usize, total: usize, warmup: usize) -> f64 {
    let total = total.max(1);
    let step = step.min(total - 1);
    let cosine = |from: f64, to: f64, t: f64| to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos());
    match schedule {
        Schedule::Constant | Schedule::Cosine if step < warmup => peak * (step + 1) as f64 / warmup as f64,
        Schedule::Constant => peak,
        Schedule::Cosine => cosine(peak, 0.0, (step - warmup) as f64 / (total - warmup).max(1) as f64),
        Schedule::OneCycle => {
            let up = if warmup > 0 { warmup } else { (total as f64 * 0.3).round() as usize }.max(1);
            if step < up {
                cosine(peak / 25.0, peak, step as f64 / up as f64)
            } else {
                cosine(peak, peak / 1e4, (step - up) as f64 / (total - up).max(1) as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_warm_up_peak_and_decay() {
        let lr = |s, step| learning_rate(s, 1e-3, step, 100, 10);
        assert!((lr(Schedule::Cosine, 0) - 1e-4).abs() < 1e-12);
        assert!((lr(Schedule::Cosine, 9) - 1e-3).abs() < 1e-12);
        assert!((lr(Schedule::Cosine, 10) - 1e-3).abs() < 1e-9);
        assert!(lr(Schedule::Cosine, 99) < 1e-6);
        assert!((0..99).skip(10).all(|s| lr(Schedule::Cosine, s + 1) <= lr(Schedule::Cosine, s)));
        assert_eq!(lr(Schedule::Constant, 50), 1e-3);
        let one = |step| learning_rate(Schedule::OneCycle, 1e-3, step, 100, 0);
        assert!((one(0) - 4e-5).abs() < 1e-9 && (one(30) - 1e-3).abs() < 1e-9 && one(99) < 1e-6);
        assert!(learning_rate(Schedule::Cosine, 1e-3, 500, 100, 10) >= 0.0);
    }
}
