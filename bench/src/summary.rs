//! Median and spread of a handful of samples (one per round).

use serde::Serialize;

/// Median, minimum and maximum of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// The median (upper median for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// (max - min) / median, in percent.
    pub spread_pct: f64,
    /// Number of samples.
    pub n: usize,
}

impl Summary {
    /// Summarises `samples` (NaN-free); None when empty.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = samples.to_vec();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        let (min, max) = (v[0], v[v.len() - 1]);
        Some(Summary {
            median,
            min,
            max,
            spread_pct: if median > 0.0 {
                (max - min) / median * 100.0
            } else {
                0.0
            },
            n: v.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).expect("samples");
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 10.0, 4));
        assert!((s.spread_pct - 300.0).abs() < 1e-9);
        assert_eq!(Summary::of(&[]), None);
    }
}
