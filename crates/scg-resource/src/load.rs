//! Electric loads on the simulation grid: HOMER's synthetic load and imported series.
//!
//! **Synthetic** (HOMER "Generating Synthetic Load Data"; homer.md §1.1): the baseline year is
//! the month's weekday or weekend 24-hour profile, day after day; each day draws
//! δ_d ~ N(0, σ_d) and each step δ_ts ~ N(0, σ_ts); the perturbed load is
//! `baseline · max(0, 1 + δ_d + δ_ts)` (clamped at zero: HOMER leaves negative factors
//! undocumented); the result is multiplied by one factor so that its annual average equals the
//! scaled average exactly (profile → noise → scale).
//!
//! **Imported** series get no noise, only the scaling.
//!
//! **15-minute steps** from hourly data: a piecewise-linear reconstruction inside each hour
//! whose slope is the minmod of the differences to the neighbouring hours (the MUSCL limiter).
//! Each hour's energy is kept exactly, no new peaks or troughs appear, and values stay >= 0.
//! A 15-minute series on an hourly grid is averaged per hour.
//!
//! Never does I/O; randomness comes from the caller's generator.

use crate::ResourceError;
use crate::profiles::MonthlyProfiles;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use scg_model::TimeGrid;

/// The column OpenEI/EnergyPlus load files use for the whole-building electric load.
pub const OPENEI_COLUMN: &str = "Electricity:Facility [kW](Hourly)";

/// A synthesized or imported load, before and after variability and scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadYear {
    /// The unperturbed, unscaled series (HOMER's "baseline data"), kW per step.
    pub baseline_kw: Vec<f64>,
    /// The series the simulation sees (perturbed and scaled), kW per step.
    pub load_kw: Vec<f64>,
    /// The factor applied by scaling (scaled average / perturbed average).
    pub scale_factor: f64,
}

/// HOMER's random variability, as fractions (0.07946 for 7.946 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variability {
    pub day_to_day: f64,
    pub timestep: f64,
}

/// The baseline year from monthly profiles: the month's weekday/weekend profile, day after day.
pub fn baseline_from_profiles(profiles: &MonthlyProfiles, grid: &TimeGrid) -> Vec<f64> {
    let mut hourly = Vec::with_capacity(grid.days() * 24);
    for day in 0..grid.days() {
        let profile = profiles.day(grid.month_of_day(day), grid.weekday(day).is_weekend());
        hourly.extend_from_slice(profile);
    }
    hourly_to_grid(&hourly, grid)
}

/// Put an hourly series on the grid (identity at 60 minutes, minmod reconstruction at 15).
pub fn hourly_to_grid(hourly_kw: &[f64], grid: &TimeGrid) -> Vec<f64> {
    let n = grid.steps_per_hour();
    if n == 1 {
        return hourly_kw.to_vec();
    }
    let mut out = Vec::with_capacity(hourly_kw.len() * n);
    for (h, &v) in hourly_kw.iter().enumerate() {
        let prev = if h == 0 { v } else { hourly_kw[h - 1] };
        let next = hourly_kw.get(h + 1).copied().unwrap_or(v);
        let slope_per_hour = minmod(v - prev, next - v);
        for i in 0..n {
            // Offset of the sub-step's midpoint from the hour's midpoint, in hours; these sum
            // to zero over the hour, which is what keeps the hour's energy.
            let offset = (i as f64 + 0.5) / n as f64 - 0.5;
            out.push(v + slope_per_hour * offset);
        }
    }
    out
}

fn minmod(a: f64, b: f64) -> f64 {
    if a * b <= 0.0 {
        0.0
    } else if a.abs() < b.abs() {
        a
    } else {
        b
    }
}

/// Multiply a baseline by HOMER's perturbation factor `max(0, 1 + δ_d + δ_ts)`.
///
/// Draw order (part of the reproducibility contract): for each day, one δ_d, then one δ_ts per
/// step of that day.
pub fn apply_variability<R: Rng + ?Sized>(
    baseline_kw: &[f64],
    grid: &TimeGrid,
    variability: Variability,
    rng: &mut R,
) -> Vec<f64> {
    let mut out = vec![0.0; baseline_kw.len()];
    Perturbation::new(variability, grid.steps_per_day(), rng).fill(baseline_kw, &mut out);
    out
}

/// HOMER's perturbation drawn a run of steps at a time, from the year's first step on: the
/// one rule of [`apply_variability`], so that a caller that cannot hold a year per load (a
/// city's members) draws the same values again, bit for bit, from the same seed as it reads
/// them (the draw order above).
#[derive(Debug, Clone)]
pub struct Perturbation<R> {
    rng: R,
    variability: Variability,
    steps_per_day: usize,
    /// The year's step the next value is for.
    step: usize,
    /// The current day's δ_d × σ_d.
    delta_day: f64,
}

impl<R: Rng> Perturbation<R> {
    /// The perturbation of a year of `steps_per_day` steps a day, drawn from `rng` (at its
    /// first step).
    pub fn new(variability: Variability, steps_per_day: usize, rng: R) -> Self {
        Self {
            rng,
            variability,
            steps_per_day: steps_per_day.max(1),
            step: 0,
            delta_day: 0.0,
        }
    }

    /// The year's step the next [`Perturbation::fill`] starts at.
    pub fn step(&self) -> usize {
        self.step
    }

    /// The next `baseline_kw.len()` steps: `out[k] = baseline_kw[k] · max(0, 1 + δ_d + δ_ts)`
    /// (`baseline_kw` is the baseline at those steps; `out` as long).
    pub fn fill(&mut self, baseline_kw: &[f64], out: &mut [f64]) {
        debug_assert_eq!(baseline_kw.len(), out.len());
        for (o, &v) in out.iter_mut().zip(baseline_kw) {
            if self.step.is_multiple_of(self.steps_per_day) {
                let z_day: f64 = StandardNormal.sample(&mut self.rng);
                self.delta_day = self.variability.day_to_day * z_day;
            }
            let z_step: f64 = StandardNormal.sample(&mut self.rng);
            let alpha = 1.0 + self.delta_day + self.variability.timestep * z_step;
            *o = v * alpha.max(0.0);
            self.step += 1;
        }
    }
}

/// Average load in kWh/day of a series with steps of `step_hours`.
pub fn average_kwh_per_day(series_kw: &[f64], step_hours: f64) -> f64 {
    if series_kw.is_empty() {
        return 0.0;
    }
    let energy_kwh: f64 = series_kw.iter().sum::<f64>() * step_hours;
    let days = series_kw.len() as f64 * step_hours / 24.0;
    energy_kwh / days
}

/// Scale a series in place so its average is exactly `target_kwh_per_day`; returns the factor.
pub fn scale_to_average(
    series_kw: &mut [f64],
    target_kwh_per_day: f64,
    step_hours: f64,
    source_name: &str,
) -> Result<f64, ResourceError> {
    let current = average_kwh_per_day(series_kw, step_hours);
    if current.is_nan() || current <= 0.0 {
        return Err(ResourceError::invalid(
            source_name,
            format!(
                "cannot scale a load whose average is {current} kWh/day to {target_kwh_per_day} kWh/day"
            ),
        ));
    }
    let factor = target_kwh_per_day / current;
    for v in series_kw.iter_mut() {
        *v *= factor;
    }
    Ok(factor)
}

/// HOMER's synthetic load: profiles → baseline → variability → scaling.
///
/// `scaled_average_kwh_per_day = None` scales to the baseline's own average (HOMER's default).
pub fn synthesize<R: Rng + ?Sized>(
    profiles: &MonthlyProfiles,
    grid: &TimeGrid,
    variability: Variability,
    scaled_average_kwh_per_day: Option<f64>,
    rng: &mut R,
    source_name: &str,
) -> Result<LoadYear, ResourceError> {
    let baseline_kw = baseline_from_profiles(profiles, grid);
    let (load_kw, scale_factor) = perturb_and_scale(
        &baseline_kw,
        grid,
        variability,
        scaled_average_kwh_per_day,
        rng,
        source_name,
    )?;
    Ok(LoadYear {
        baseline_kw,
        load_kw,
        scale_factor,
    })
}

/// [`synthesize`] after its baseline: variability, then scaling (to the baseline's own average
/// when `scaled_average_kwh_per_day` is `None`). The load and the scaling factor. Loads of the
/// same profiles share one baseline, so a caller with many (a city's households) makes it once.
pub fn perturb_and_scale<R: Rng + ?Sized>(
    baseline_kw: &[f64],
    grid: &TimeGrid,
    variability: Variability,
    scaled_average_kwh_per_day: Option<f64>,
    rng: &mut R,
    source_name: &str,
) -> Result<(Vec<f64>, f64), ResourceError> {
    let mut load_kw = apply_variability(baseline_kw, grid, variability, rng);
    let target = scaled_average_kwh_per_day
        .unwrap_or_else(|| average_kwh_per_day(baseline_kw, grid.step_hours()));
    let scale_factor = scale_to_average(&mut load_kw, target, grid.step_hours(), source_name)?;
    Ok((load_kw, scale_factor))
}

/// An imported series on the grid, scaled only (no noise).
pub fn imported(
    values_kw: &[f64],
    grid: &TimeGrid,
    scaled_average_kwh_per_day: Option<f64>,
    source_name: &str,
) -> Result<LoadYear, ResourceError> {
    let baseline_kw = series_to_grid(values_kw, grid, source_name)?;
    let mut load_kw = baseline_kw.clone();
    let scale_factor = match scaled_average_kwh_per_day {
        Some(target) => scale_to_average(&mut load_kw, target, grid.step_hours(), source_name)?,
        None => 1.0,
    };
    Ok(LoadYear {
        baseline_kw,
        load_kw,
        scale_factor,
    })
}

/// Put an imported 8760 (hourly) or 35040 (15-minute) series on the grid.
pub fn series_to_grid(
    values_kw: &[f64],
    grid: &TimeGrid,
    source_name: &str,
) -> Result<Vec<f64>, ResourceError> {
    let hours = grid.days() * 24;
    match (values_kw.len(), grid.steps_per_hour()) {
        (n, _) if n == hours => Ok(hourly_to_grid(values_kw, grid)),
        (n, 4) if n == hours * 4 => Ok(values_kw.to_vec()),
        (n, 1) if n == hours * 4 => Ok(values_kw
            .chunks(4)
            .map(|quarter| quarter.iter().sum::<f64>() / 4.0)
            .collect()),
        (n, _) => Err(ResourceError::invalid(
            source_name,
            format!(
                "a load series needs {hours} hourly or {} 15-minute values, got {n}",
                hours * 4
            ),
        )),
    }
}

/// Parse a load CSV: one numeric column (with or without a header), or a CSV with a header
/// from which `column` (default: the OpenEI column [`OPENEI_COLUMN`], or the only column) is read.
/// Values are kW, finite and >= 0.
pub fn parse_load_csv(
    text: &str,
    source_name: &str,
    column: Option<&str>,
) -> Result<Vec<f64>, ResourceError> {
    parse_series_csv(text, source_name, column, SeriesKind::Load)
}

/// What a numeric series holds, for its range check and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesKind {
    /// kW, finite and >= 0.
    Load,
    /// EUR/MWh, finite (negative prices exist on European markets).
    Price,
}

/// Parse an hourly price CSV (EUR/MWh): the same layouts as [`parse_load_csv`].
pub fn parse_price_csv(
    text: &str,
    source_name: &str,
    column: Option<&str>,
) -> Result<Vec<f64>, ResourceError> {
    parse_series_csv(text, source_name, column, SeriesKind::Price)
}

fn parse_series_csv(
    text: &str,
    source_name: &str,
    column: Option<&str>,
    kind: SeriesKind,
) -> Result<Vec<f64>, ResourceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records().enumerate();
    let Some((_, first)) = records.next() else {
        return Err(ResourceError::invalid(source_name, "the file is empty"));
    };
    let first = first.map_err(|e| ResourceError::parse(source_name, 1, e.to_string()))?;
    let has_header = first.iter().any(|f| f.parse::<f64>().is_err());
    let (index, mut values) = if has_header {
        (
            pick_column(&first, column, source_name)?,
            Vec::with_capacity(8760),
        )
    } else {
        if let Some(name) = column {
            return Err(ResourceError::parse(
                source_name,
                1,
                format!(
                    "column {:?} requested but the file has no header row",
                    scg_model::bounds::excerpt(name)
                ),
            ));
        }
        if first.len() != 1 {
            return Err(ResourceError::parse(
                source_name,
                1,
                format!(
                    "a file without a header must have exactly one column, found {}",
                    first.len()
                ),
            ));
        }
        (
            0,
            vec![parse_value(
                first.get(0).unwrap_or(""),
                source_name,
                1,
                kind,
            )?],
        )
    };
    for (i, record) in records {
        let line = i + 1;
        let record = record.map_err(|e| ResourceError::parse(source_name, line, e.to_string()))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let field = record.get(index).ok_or_else(|| {
            ResourceError::parse(
                source_name,
                line,
                format!(
                    "row has {} fields, expected at least {}",
                    record.len(),
                    index + 1
                ),
            )
        })?;
        values.push(parse_value(field, source_name, line, kind)?);
    }
    Ok(values)
}

fn pick_column(
    header: &csv::StringRecord,
    column: Option<&str>,
    source_name: &str,
) -> Result<usize, ResourceError> {
    let find = |name: &str| header.iter().position(|h| h == name);
    match column {
        Some(name) => find(name).ok_or_else(|| {
            ResourceError::parse(
                source_name,
                1,
                format!(
                    "no column {:?}; columns are {}",
                    scg_model::bounds::excerpt(name),
                    scg_model::bounds::excerpt(&header.iter().collect::<Vec<_>>().join(", "))
                ),
            )
        }),
        None => find(OPENEI_COLUMN)
            .or((header.len() == 1).then_some(0))
            .ok_or_else(|| {
                ResourceError::parse(
                    source_name,
                    1,
                    format!(
                        "cannot tell which column holds the load: no {OPENEI_COLUMN:?} column and {} columns; set `column`",
                        header.len()
                    ),
                )
            }),
    }
}

fn parse_value(
    field: &str,
    source_name: &str,
    line: usize,
    kind: SeriesKind,
) -> Result<f64, ResourceError> {
    use scg_model::bounds::{MAX_LOAD_KW, PRICE_LIMIT_EUR_PER_MWH};
    // The same bounds as the scenario's own fields: a file must not smuggle in what the
    // scenario would refuse (a price of -1e300 EUR/MWh).
    let (what, unit, min, max) = match kind {
        SeriesKind::Load => ("load", "kW", 0.0, MAX_LOAD_KW),
        SeriesKind::Price => (
            "price",
            "EUR/MWh",
            -PRICE_LIMIT_EUR_PER_MWH,
            PRICE_LIMIT_EUR_PER_MWH,
        ),
    };
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(ResourceError::parse(
            source_name,
            line,
            format!("{what} must be between {min} and {max} {unit}, got {v:?}"),
        )),
        Err(_) => Err(ResourceError::parse(
            source_name,
            line,
            format!(
                "expected a number ({unit}), got {:?}",
                scg_model::bounds::excerpt(field)
            ),
        )),
    }
}
