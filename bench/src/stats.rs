//! Latency samples and their summary (count, p50, p99, max, ops/s).

use std::time::Duration;

/// Latencies of one operation, in the order they were measured.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<f64>,
}

impl Samples {
    /// Room for `count` samples.
    pub fn with_capacity(count: usize) -> Self {
        Self {
            micros: Vec::with_capacity(count),
        }
    }

    /// Records one call's latency.
    pub fn push(&mut self, elapsed: Duration) {
        self.micros.push(elapsed.as_secs_f64() * 1e6);
    }

    /// How many calls were recorded.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    /// The summary; ops/s is calls per second of time spent inside the calls, unless
    /// `wall` says how long the phase ran (concurrent phases).
    pub fn summary(&self, wall: Option<Duration>) -> Summary {
        let mut sorted = self.micros.clone();
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len();
        let busy: f64 = sorted.iter().sum();
        let ops_per_s = match wall {
            Some(wall) if wall > Duration::ZERO => count as f64 / wall.as_secs_f64(),
            _ if busy > 0.0 => count as f64 / (busy / 1e6),
            _ => 0.0,
        };
        Summary {
            count,
            p50_us: percentile(&sorted, 0.50),
            p99_us: percentile(&sorted, 0.99),
            max_us: sorted.last().copied().unwrap_or(0.0),
            mean_us: if count > 0 { busy / count as f64 } else { 0.0 },
            ops_per_s,
        }
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the mean of the two middle ones for an even count); 0 when
/// there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => 0.0,
        len if len % 2 == 1 => sorted[middle],
        _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
    }
}

/// What a run of one operation measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Calls measured.
    pub count: usize,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Slowest call, µs.
    pub max_us: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// Calls per second.
    pub ops_per_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for micros in 1..=100 {
            samples.push(Duration::from_micros(micros));
        }
        let summary = samples.summary(None);
        assert_eq!(summary.count, 100);
        assert!((summary.p50_us - 50.0).abs() < 1e-6);
        assert!((summary.p99_us - 99.0).abs() < 1e-6);
        assert!((summary.max_us - 100.0).abs() < 1e-6);
        let wall = samples.summary(Some(Duration::from_secs(2)));
        assert!((wall.ops_per_s - 50.0).abs() < 1e-6);
    }

    #[test]
    fn the_median_ignores_outliers() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[5.0, 1.0, 1_000_000.0]), 5.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 900.0]), 3.0);
    }
}
