//! What the benchmarks share.

use std::time::Duration;

/// The `p` quantile (0..=1) of `samples` (sorted in place).
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

/// `12.3 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
