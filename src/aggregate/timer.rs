//! A timer's samples within one interval: exact count, sum and extremes, and
//! a bounded uniform sample of the values for the percentile.

use super::saturate;

/// A timer's samples within one interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimerSamples {
    /// Kept values: all of them up to the limit, then a uniform reservoir.
    pub values: Vec<f64>,
    /// Sum of `1 / rate` over every value seen.
    pub count: f64,
    /// Number of values seen (exact even when `values` is a reservoir).
    pub seen: u64,
    /// Exact sum of every value seen.
    pub sum: f64,
    /// Exact smallest value seen.
    pub lower: f64,
    /// Exact largest value seen.
    pub upper: f64,
}

impl TimerSamples {
    /// Adds one sample taken at `rate`, keeping at most `max_samples` values.
    pub fn add(&mut self, value: f64, rate: f64, max_samples: usize, rng: &mut fastrand::Rng) {
        if self.seen == 0 {
            self.lower = value;
            self.upper = value;
        } else {
            self.lower = self.lower.min(value);
            self.upper = self.upper.max(value);
        }
        self.seen += 1;
        self.sum = saturate(self.sum + value);
        self.count = saturate(self.count + 1.0 / rate);
        if self.values.len() < max_samples.max(1) {
            self.values.push(value);
        } else {
            // Algorithm R: the kept values stay a uniform sample of all seen.
            let slot = rng.u64(..self.seen);
            if let Some(kept) = self.values.get_mut(slot as usize) {
                *kept = value;
            }
        }
    }

    /// Merges another shard's samples of the same timer.
    pub fn merge(&mut self, other: TimerSamples, max_samples: usize, rng: &mut fastrand::Rng) {
        if other.seen == 0 {
            return;
        }
        if self.seen == 0 {
            *self = other;
            return;
        }
        self.lower = self.lower.min(other.lower);
        self.upper = self.upper.max(other.upper);
        self.count = saturate(self.count + other.count);
        self.sum = saturate(self.sum + other.sum);
        let total = self.seen + other.seen;
        if self.values.len() + other.values.len() <= max_samples.max(1) {
            self.values.extend(other.values);
        } else {
            // Keep each side in proportion to how many values it stands for.
            let keep = max_samples.max(1);
            let mine = ((keep as f64) * (self.seen as f64 / total as f64)).round() as usize;
            let mine = mine.min(self.values.len());
            let theirs = (keep - mine).min(other.values.len());
            shuffle_prefix(&mut self.values, mine, rng);
            self.values.truncate(mine);
            let mut other_values = other.values;
            shuffle_prefix(&mut other_values, theirs, rng);
            self.values.extend_from_slice(&other_values[..theirs]);
        }
        self.seen = total;
    }
}

/// Moves a uniform random choice of `n` elements to the front.
fn shuffle_prefix(values: &mut [f64], n: usize, rng: &mut fastrand::Rng) {
    let len = values.len();
    for i in 0..n.min(len) {
        values.swap(i, rng.usize(i..len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservoir_keeps_exact_aggregates() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut t = TimerSamples::default();
        for i in 1..=1000 {
            t.add(f64::from(i), 1.0, 10, &mut rng);
        }
        assert_eq!(t.values.len(), 10);
        assert_eq!(
            (t.seen, t.sum, t.lower, t.upper),
            (1000, 500500.0, 1.0, 1000.0)
        );
    }

    #[test]
    fn merge_beyond_the_bound_keeps_it() {
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut a, mut b) = (TimerSamples::default(), TimerSamples::default());
        for i in 0..30 {
            a.add(f64::from(i), 1.0, 20, &mut rng);
            b.add(f64::from(i + 100), 1.0, 20, &mut rng);
        }
        a.merge(b, 20, &mut rng);
        assert_eq!((a.values.len(), a.seen, a.upper), (20, 60, 129.0));
    }
}
