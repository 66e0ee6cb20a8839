//! HOMER's load statistics (homer.md §1.2) and its seasonal and daily profiles.
//!
//! - average kW = kWh/day ÷ 24; load factor = average ÷ peak; crest factor = peak ÷ RMS
//!   (HOMER has no crest factor: this is the standard definition);
//! - peak month = the month holding the annual peak step (the first, on ties);
//! - seasonal profile (HOMER's box plot): per month the minimum, the average of daily minima,
//!   the mean, the average of daily maxima and the maximum;
//! - daily profile: per month, the mean of each hour of the day.
//!
//! Pure arithmetic over slices; never fails on an all-zero series (ratios become 0).

use scg_model::TimeGrid;
use serde::Serialize;

/// Summary statistics of one load series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadStats {
    pub energy_kwh: f64,
    pub average_kwh_per_day: f64,
    pub average_kw: f64,
    pub peak_kw: f64,
    pub min_kw: f64,
    pub rms_kw: f64,
    /// average ÷ peak.
    pub load_factor: f64,
    /// peak ÷ RMS.
    pub crest_factor: f64,
    /// Month (1–12) of the annual peak.
    pub peak_month: u8,
    /// Start of the peak step, ISO 8601 with offset.
    pub peak_timestamp: String,
}

/// One month of HOMER's seasonal profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthStats {
    /// 1–12.
    pub month: u8,
    pub min_kw: f64,
    pub daily_low_average_kw: f64,
    pub average_kw: f64,
    pub daily_high_average_kw: f64,
    pub max_kw: f64,
}

/// Everything reported about a load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// Statistics of the series the simulation sees (after variability and scaling).
    #[serde(flatten)]
    pub scaled: LoadStats,
    /// Statistics of the unperturbed, unscaled baseline (HOMER's load page).
    pub baseline: LoadStats,
    /// The factor scaling applied.
    pub scale_factor: f64,
    /// HOMER's seasonal profile, January to December.
    pub seasonal: Vec<MonthStats>,
    /// HOMER's daily profile: `daily_profile_kw[month0][hour]`.
    pub daily_profile_kw: Vec<[f64; 24]>,
}

/// Statistics of a series on the grid.
pub fn load_stats(series_kw: &[f64], grid: &TimeGrid) -> LoadStats {
    let step_hours = grid.step_hours();
    let n = series_kw.len().max(1) as f64;
    let sum: f64 = series_kw.iter().sum();
    let sum_sq: f64 = series_kw.iter().map(|x| x * x).sum();
    let (peak_step, peak_kw) =
        series_kw
            .iter()
            .copied()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, x)| {
                if x > best.1 { (i, x) } else { best }
            });
    let peak_kw = if peak_kw.is_finite() { peak_kw } else { 0.0 };
    let min_kw = series_kw.iter().copied().fold(f64::INFINITY, f64::min);
    let average_kw = sum / n;
    let rms_kw = (sum_sq / n).sqrt();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    LoadStats {
        energy_kwh: sum * step_hours,
        average_kwh_per_day: average_kw * 24.0,
        average_kw,
        peak_kw,
        min_kw: if min_kw.is_finite() { min_kw } else { 0.0 },
        rms_kw,
        load_factor: ratio(average_kw, peak_kw),
        crest_factor: ratio(peak_kw, rms_kw),
        peak_month: grid.month_of_step(peak_step),
        peak_timestamp: grid.timestamp(peak_step),
    }
}

/// HOMER's seasonal profile: per month min, mean of daily minima, mean, mean of daily maxima, max.
pub fn seasonal_profile(series_kw: &[f64], grid: &TimeGrid) -> Vec<MonthStats> {
    #[derive(Clone, Copy)]
    struct Acc {
        min: f64,
        max: f64,
        sum: f64,
        steps: usize,
        low_sum: f64,
        high_sum: f64,
        days: usize,
    }
    let mut acc = [Acc {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        steps: 0,
        low_sum: 0.0,
        high_sum: 0.0,
        days: 0,
    }; 12];
    for (day, values) in series_kw.chunks(grid.steps_per_day()).enumerate() {
        let a = &mut acc[usize::from(grid.month_of_day(day)) - 1];
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        a.min = a.min.min(low);
        a.max = a.max.max(high);
        a.low_sum += low;
        a.high_sum += high;
        a.days += 1;
        a.sum += values.iter().sum::<f64>();
        a.steps += values.len();
    }
    acc.iter()
        .enumerate()
        .map(|(m, a)| {
            let days = a.days.max(1) as f64;
            let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
            MonthStats {
                month: m as u8 + 1,
                min_kw: finite(a.min),
                daily_low_average_kw: a.low_sum / days,
                average_kw: a.sum / a.steps.max(1) as f64,
                daily_high_average_kw: a.high_sum / days,
                max_kw: finite(a.max),
            }
        })
        .collect()
}

/// HOMER's daily profile: per month, the mean load in each hour of the day.
pub fn daily_profile(series_kw: &[f64], grid: &TimeGrid) -> Vec<[f64; 24]> {
    let mut sums = vec![[0.0f64; 24]; 12];
    let mut counts = [0usize; 12];
    let per_hour = grid.steps_per_hour();
    for (day, values) in series_kw.chunks(grid.steps_per_day()).enumerate() {
        let m = usize::from(grid.month_of_day(day)) - 1;
        counts[m] += 1;
        for (h, hour) in values.chunks(per_hour).enumerate().take(24) {
            sums[m][h] += hour.iter().sum::<f64>() / per_hour as f64;
        }
    }
    for (m, row) in sums.iter_mut().enumerate() {
        let n = counts[m].max(1) as f64;
        for v in row.iter_mut() {
            *v /= n;
        }
    }
    sums
}

/// The full report of a load: scaled and baseline statistics and both profiles.
pub fn load_report(
    load_kw: &[f64],
    baseline_kw: &[f64],
    scale_factor: f64,
    grid: &TimeGrid,
) -> LoadReport {
    load_report_with_baseline(load_kw, load_stats(baseline_kw, grid), scale_factor, grid)
}

/// [`load_report`] with the baseline's statistics already taken (a run that does not keep the
/// baseline series, `crate::prepare::PrepareOptions::lean`).
pub fn load_report_with_baseline(
    load_kw: &[f64],
    baseline: LoadStats,
    scale_factor: f64,
    grid: &TimeGrid,
) -> LoadReport {
    LoadReport {
        scaled: load_stats(load_kw, grid),
        baseline,
        scale_factor,
        seasonal: seasonal_profile(load_kw, grid),
        daily_profile_kw: daily_profile(load_kw, grid),
    }
}
