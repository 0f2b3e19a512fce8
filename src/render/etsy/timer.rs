//! A timer's statistics as Etsy's `lib/process_metrics.js` computes them:
//! per percentile `count_`, `mean_`, `upper_` (`lower_top` for negative
//! thresholds), `sum_`, `sum_squares_`; then `std`, `upper`, `lower`,
//! `count`, `count_ps`, `sum`, `sum_squares`, `mean`, `median` and histogram
//! bins; filtered by `calculatedTimerMetrics`.

use super::writer::Writer;
use super::Outputs;
use crate::aggregate::TimerSamples;
use crate::render::write_number;

/// How many of the sorted values a percentile threshold takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    /// Etsy: `round(|pct| / 100 * n)` (a threshold taking none is left out;
    /// a single value is taken whole).
    Etsy,
    /// The original: `max(1, floor(|pct| / 100 * n))`.
    Original,
}

impl Rank {
    /// Values taken of `n` sorted ones; None: write nothing for it.
    fn take(self, pct: f64, n: usize) -> Option<usize> {
        let share = pct.abs() / 100.0 * n as f64;
        match self {
            Rank::Etsy if n <= 1 => Some(n),
            Rank::Etsy => Some(share.round() as usize)
                .filter(|k| *k > 0)
                .map(|k| k.min(n)),
            Rank::Original => Some((share.floor() as usize).clamp(1, n.max(1))),
        }
    }
}

/// One histogram bin's upper bound (exclusive) and its path part.
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    /// Values below it (and at or above the previous bin) count here;
    /// infinity for `inf`.
    pub below: f64,
    /// `.histogram.bin_0_01`, `.histogram.bin_inf`.
    pub suffix: String,
}

impl Bin {
    /// A bin from its config text: a number or `inf`.
    pub fn parse(text: &str) -> Option<Bin> {
        let text = text.trim();
        let (below, name) = if text == "inf" {
            (f64::INFINITY, "inf".to_string())
        } else {
            let value: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
            let mut shown = Vec::new();
            write_number(&mut shown, value);
            // Etsy: `'bin_' + bin.toString().replace('.', '_')`.
            (value, String::from_utf8_lossy(&shown).replacen('.', "_", 1))
        };
        Some(Bin {
            below,
            suffix: format!(".histogram.bin_{name}"),
        })
    }
}

/// Bins for the timers whose name contains `metric` (`""`: every timer).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Substring of the timer's name.
    pub metric: String,
    /// The bins, in the order given.
    pub bins: Vec<Bin>,
}

/// The bins of the first histogram whose pattern the name contains.
pub fn bins_for<'a>(histograms: &'a [Histogram], key: &str) -> &'a [Bin] {
    histograms
        .iter()
        .find(|h| key.contains(h.metric.as_str()))
        .map_or(&[], |h| &h.bins)
}

/// Each threshold's path parts, made once per flush.
pub struct PctSuffixes {
    /// `(pct, [".count_90", ".mean_90", ".upper_90", ".sum_90", ".sum_squares_90"])`.
    each: Vec<(f64, [String; 5])>,
}

impl PctSuffixes {
    /// Etsy's names: `('' + pct).replace('.', '_').replace('-', 'top')`.
    pub fn new(pcts: &[f64]) -> PctSuffixes {
        let each = pcts
            .iter()
            .map(|&pct| {
                let mut text = Vec::new();
                write_number(&mut text, pct);
                let clean = String::from_utf8_lossy(&text)
                    .replacen('.', "_", 1)
                    .replacen('-', "top", 1);
                let bound = if pct > 0.0 { "upper" } else { "lower" };
                let names = ["count", "mean", bound, "sum", "sum_squares"];
                (pct, names.map(|name| format!(".{name}_{clean}")))
            })
            .collect();
        PctSuffixes { each }
    }
}

/// Etsy's `filter_timer_metrics` key cleaning: `key.replace(/_(top)?\d+$/,
/// "_percent")` (so `upper_99_9` becomes `upper_99_percent`, as in Etsy).
pub fn etsy_metric_class(key: &str) -> std::borrow::Cow<'_, str> {
    let digits = key.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return key.into();
    }
    let rest = &key[..key.len() - digits];
    for marker in ["_top", "_"] {
        if let Some(stem) = rest.strip_suffix(marker) {
            return format!("{stem}_percent").into();
        }
    }
    key.into()
}

/// Decides which statistics are written.
struct Filter<'a> {
    /// None: all.
    list: Option<&'a [String]>,
    /// Etsy's key cleaning (else the statistic's own class).
    etsy: bool,
}

impl Filter<'_> {
    /// `suffix` is `.name`; `class` the original's class of it.
    fn allows(&self, suffix: &str, class: &str) -> bool {
        let Some(list) = self.list else {
            return true;
        };
        let wanted = if self.etsy {
            etsy_metric_class(suffix.trim_start_matches('.'))
        } else {
            class.into()
        };
        list.iter().any(|m| *m == wanted)
    }
}

/// Writes one timer's statistics.
#[allow(clippy::too_many_arguments)]
pub fn render(
    w: &mut Writer<'_>,
    prefix: &str,
    key: &str,
    timer: &mut TimerSamples,
    outputs: &Outputs,
    suffixes: &PctSuffixes,
    bins: &[Bin],
    interval: f64,
) {
    let filter = Filter {
        list: outputs.timer_metrics.as_deref(),
        etsy: outputs.internal.is_some(),
    };
    let emit = |w: &mut Writer<'_>, suffix: &str, class: &str, value: f64| {
        if filter.allows(suffix, class) {
            w.line(prefix, key, suffix, "", value);
        }
    };
    let values = &mut timer.values;
    let n = values.len();
    if n == 0 {
        // An idle timer: Etsy writes `count` and `count_ps` only.
        emit(w, ".count", "count", 0.0);
        emit(w, ".count_ps", "count_ps", 0.0);
        return;
    }
    values.sort_unstable_by(f64::total_cmp);
    let mut cumulative = Vec::with_capacity(n);
    let mut squares = Vec::with_capacity(n);
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for v in values.iter() {
        sum += v;
        sum_sq += v * v;
        cumulative.push(sum);
        squares.push(sum_sq);
    }
    // Beyond --max-timer-samples the kept values are a uniform sample:
    // counts and sums of a part stand for `scale` times as many values.
    let sampled = timer.seen > n as u64;
    let scale = if sampled {
        timer.seen as f64 / n as f64
    } else {
        1.0
    };
    for (pct, names) in &suffixes.each {
        let Some(k) = outputs.rank.take(*pct, n) else {
            continue;
        };
        let (bound, part, part_sq) = if *pct > 0.0 {
            (values[k - 1], cumulative[k - 1], squares[k - 1])
        } else {
            // The top k values. (Etsy writes NaN sums when k == n.)
            let below = n - k;
            let (before, before_sq) = match below {
                0 => (0.0, 0.0),
                _ => (cumulative[below - 1], squares[below - 1]),
            };
            (values[below], sum - before, sum_sq - before_sq)
        };
        let bound_class = if *pct > 0.0 {
            "upper_percent"
        } else {
            "lower_percent"
        };
        emit(w, &names[0], "count_percent", k as f64 * scale);
        emit(w, &names[1], "mean_percent", part / k as f64);
        emit(w, &names[2], bound_class, bound);
        emit(w, &names[3], "sum_percent", part * scale);
        emit(w, &names[4], "sum_squares_percent", part_sq * scale);
    }
    let sample_mean = sum / n as f64;
    let diffs: f64 = values
        .iter()
        .map(|v| (v - sample_mean) * (v - sample_mean))
        .sum();
    let mid = n / 2;
    let median = if n % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    let (lower, upper, total, mean) = if sampled {
        let mean = (timer.sum / timer.seen as f64).clamp(timer.lower, timer.upper);
        (timer.lower, timer.upper, timer.sum, mean)
    } else {
        (values[0], values[n - 1], sum, sample_mean)
    };
    emit(w, ".std", "std", (diffs / n as f64).sqrt());
    emit(w, ".upper", "upper", upper);
    emit(w, ".lower", "lower", lower);
    emit(w, ".count", "count", timer.count);
    emit(w, ".count_ps", "count_ps", timer.count / interval);
    emit(w, ".sum", "sum", total);
    emit(w, ".sum_squares", "sum_squares", sum_sq * scale);
    emit(w, ".mean", "mean", mean);
    emit(w, ".median", "median", median);
    if bins.is_empty() || !filter.allows(".histogram", "histogram") {
        return;
    }
    // Values at or past the last bound are left out, as in Etsy.
    let mut i = 0;
    for bin in bins {
        let start = i;
        while i < n && (bin.below == f64::INFINITY || values[i] < bin.below) {
            i += 1;
        }
        w.line(prefix, key, &bin.suffix, "", (i - start) as f64 * scale);
    }
}
