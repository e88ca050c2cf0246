//! Order statistics over samples (milliseconds, KiB): nearest-rank, no interpolation, so every
//! figure printed is one that was actually measured.

/// The `q`-quantile (0.0..=1.0) by nearest rank; `None` for no samples.
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn median(samples: &[f64]) -> f64 {
    quantile(samples, 0.5).unwrap_or(f64::NAN)
}

pub fn p90(samples: &[f64]) -> f64 {
    quantile(samples, 0.9).unwrap_or(f64::NAN)
}

pub fn max(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::NAN, f64::max)
}

pub fn min(samples: &[f64]) -> f64 {
    samples.iter().copied().fold(f64::NAN, f64::min)
}

/// median, p90, max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        Summary {
            median: median(samples),
            p90: p90(samples),
            max: max(samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        assert_eq!(median(&v), 5.0);
        assert_eq!(p90(&v), 9.0);
        assert_eq!(max(&v), 10.0);
        assert_eq!(min(&v), 1.0);
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[3.0], 0.5), Some(3.0));
        assert!(median(&[]).is_nan());
    }
}
