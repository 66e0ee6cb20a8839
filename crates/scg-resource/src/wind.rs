//! Wind: HOMER's synthetic hourly wind speed, hub-height extrapolation, turbine power curves
//! and the air-density correction (homer.md §3).
//!
//! **Synthesis** ([`synthesize_speed_m_per_s`]), HOMER's five steps (KB "Generating synthetic
//! wind & load data"), made precise where HOMER is silent [ours]:
//! 1. a Gaussian AR(1) sequence z_t = a′ z_{t−1} + √(1 − a′²) ε_t of unit variance;
//! 2. the diurnal sequence cos(2π (h − h_peak)/24), repeated every day;
//! 3. its probability transform to the standard normal (by rank among the 24 hours:
//!    Φ⁻¹((r + ½)/24));
//! 4. the sum s_t = (z_t + c n_h)/√(1 + c²), still N(0, 1); c is solved so that the mean
//!    speed by hour of day, after step 5, swings by ± the diurnal pattern strength δ around
//!    the mean (U_h = Ū (1 + δ cos(2π (h − h_peak)/24)) in amplitude), and a′ is chosen so that
//!    s has the requested 1-hour autocorrelation a: a = (a′ + c² ρ_n)/(1 + c²), ρ_n the lag-1
//!    correlation of the diurnal normal sequence;
//! 5. the transform to the Weibull distribution of shape k and the month's mean,
//!    U = c_m (−ln(1 − Φ(s)))^(1/k), c_m = Ū_m / Γ(1 + 1/k); each month is then scaled so its
//!    mean equals the input **exactly** (HOMER scales its data to the monthly means).
//!
//! At 15-minute steps each hour's speed is held for its four quarters (HOMER assumes a constant
//! speed within a step; homer.md §3.1).
//!
//! **Turbines**: the anemometer-height speed goes to hub height (logarithmic or power law), the
//! power curve is interpolated linearly and is zero outside its speed range, and the output is
//! multiplied by the density ratio ρ/ρ₀ of the standard atmosphere at the site's elevation
//! (homer.md §3.2); an air temperature, when given, replaces the standard-atmosphere
//! temperature in the ideal-gas density [ours; HOMER ignores temperature].
//!
//! Never does I/O; randomness comes only from the seed the caller passes.

use crate::ResourceError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scg_model::TimeGrid;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Days of each month in scg's 365-day year.
const DAYS_IN_MONTH: [usize; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Bergamo's default monthly mean wind speed at 10 m, m/s: ERA5 10-m means of the Po-valley
/// proxy TMY (markets-vpp-climate.md §4.2) — a very weak resource.
pub const BERGAMO_WIND_M_PER_S: [f64; 12] = [
    1.18, 1.11, 1.34, 1.34, 1.33, 1.47, 1.32, 1.20, 1.11, 1.06, 1.16, 0.88,
];

/// Sea-level standard air density ρ₀, kg/m³.
pub const RHO0_KG_PER_M3: f64 = 1.225;

/// HOMER's synthetic-wind parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindParams {
    /// Monthly mean speeds at anemometer height, m/s, January first.
    pub monthly_mean_m_per_s: [f64; 12],
    /// Weibull shape k (HOMER default 2).
    pub weibull_k: f64,
    /// 1-hour autocorrelation factor (HOMER default 0.85).
    pub autocorrelation: f64,
    /// Diurnal pattern strength δ, 0..1 (HOMER default 0.25).
    pub diurnal_strength: f64,
    /// Hour of peak wind speed, 0..24 (HOMER default 15).
    pub peak_hour: f64,
}

impl WindParams {
    /// HOMER's defaults for the four shape parameters with the given monthly means.
    pub fn homer_defaults(monthly_mean_m_per_s: [f64; 12]) -> Self {
        Self {
            monthly_mean_m_per_s,
            weibull_k: 2.0,
            autocorrelation: 0.85,
            diurnal_strength: 0.25,
            peak_hour: 15.0,
        }
    }

    fn check(&self) -> Result<(), ResourceError> {
        let bad = |msg: String| Err(ResourceError::invalid("wind resource", msg));
        for (m, v) in self.monthly_mean_m_per_s.iter().enumerate() {
            if !v.is_finite() || *v < 0.0 || *v > 50.0 {
                return bad(format!(
                    "month {}: mean speed must be in [0, 50] m/s, got {v}",
                    m + 1
                ));
            }
        }
        if !self.weibull_k.is_finite() || !(0.5..=10.0).contains(&self.weibull_k) {
            return bad(format!(
                "Weibull k must be in [0.5, 10], got {}",
                self.weibull_k
            ));
        }
        if !self.autocorrelation.is_finite() || !(0.0..=0.99).contains(&self.autocorrelation) {
            return bad(format!(
                "autocorrelation must be in [0, 0.99], got {}",
                self.autocorrelation
            ));
        }
        if !self.diurnal_strength.is_finite() || !(0.0..=0.9).contains(&self.diurnal_strength) {
            return bad(format!(
                "diurnal strength must be in [0, 0.9], got {}",
                self.diurnal_strength
            ));
        }
        if !self.peak_hour.is_finite() || !(0.0..=24.0).contains(&self.peak_hour) {
            return bad(format!(
                "peak hour must be in [0, 24], got {}",
                self.peak_hour
            ));
        }
        Ok(())
    }
}

/// Synthetic wind speed at anemometer height for each step of the grid, m/s, seeded.
pub fn synthesize_speed_m_per_s(
    params: &WindParams,
    grid: &TimeGrid,
    seed: u64,
) -> Result<Vec<f64>, ResourceError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let hourly = synthesize_hourly_speed(params, &mut rng)?;
    let n = grid.steps_per_hour();
    Ok(hourly
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, n))
        .collect())
}

/// Synthetic hourly speeds for the 8760 hours of the year, m/s, with the caller's generator
/// (draw order: one N(0,1) to start the AR sequence, then one per hour).
pub fn synthesize_hourly_speed<R: Rng + ?Sized>(
    params: &WindParams,
    rng: &mut R,
) -> Result<Vec<f64>, ResourceError> {
    params.check()?;
    let k = params.weibull_k;
    let diurnal = diurnal_normal_scores(params.peak_hour);
    let c = diurnal_weight(params.diurnal_strength, k, &diurnal);
    let rho_n = lag1_circular(&diurnal);
    let c2 = c * c;
    let ar = (params.autocorrelation * (1.0 + c2) - c2 * rho_n).clamp(0.0, 0.999);
    let innovation = (1.0 - ar * ar).sqrt();
    let norm = (1.0 + c2).sqrt();
    let gamma = gamma_fn(1.0 + 1.0 / k);
    let mut z: f64 = StandardNormal.sample(rng);
    let mut out = Vec::with_capacity(8760);
    for (m, days) in DAYS_IN_MONTH.iter().enumerate() {
        let scale = params.monthly_mean_m_per_s[m] / gamma;
        let start = out.len();
        for hour in 0..days * 24 {
            let e: f64 = StandardNormal.sample(rng);
            z = ar * z + innovation * e;
            let s = (z + c * diurnal[hour % 24]) / norm;
            out.push(weibull_from_normal(s, scale, k));
        }
        let month = &mut out[start..];
        let mean = month.iter().sum::<f64>() / month.len() as f64;
        let factor = if mean > 0.0 {
            params.monthly_mean_m_per_s[m] / mean
        } else {
            0.0
        };
        for v in month.iter_mut() {
            *v *= factor;
        }
    }
    Ok(out)
}

/// U = scale (−ln(1 − Φ(s)))^(1/k), with 1 − Φ(s) computed directly in the tail.
fn weibull_from_normal(s: f64, scale: f64, k: f64) -> f64 {
    let upper = (0.5 * erfc(s / std::f64::consts::SQRT_2)).max(1e-300);
    scale * (-upper.ln()).powf(1.0 / k)
}

/// Steps 2–3: the 24-hour cosine's values ranked and mapped to normal scores.
fn diurnal_normal_scores(peak_hour: f64) -> [f64; 24] {
    let raw: [f64; 24] = std::array::from_fn(|h| (2.0 * PI * (h as f64 - peak_hour) / 24.0).cos());
    let mut order: Vec<usize> = (0..24).collect();
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]).then(a.cmp(&b)));
    let mut out = [0.0; 24];
    for (rank, &h) in order.iter().enumerate() {
        out[h] = inverse_normal_cdf((rank as f64 + 0.5) / 24.0);
    }
    out
}

/// Lag-1 correlation of a 24-periodic sequence.
fn lag1_circular(x: &[f64; 24]) -> f64 {
    let mean = x.iter().sum::<f64>() / 24.0;
    let var: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    let cov: f64 = (0..24)
        .map(|h| (x[h] - mean) * (x[(h + 1) % 24] - mean))
        .sum();
    cov / var
}

/// E[U] of the unit-scale Weibull transform of (z + shift)/norm, z ~ N(0,1), by a midpoint
/// rule on the normal quantiles `nodes` (32 nodes: ~1e-3 relative, ample for calibrating c).
fn expected_speed(nodes: &[f64], shift: f64, norm: f64, k: f64) -> f64 {
    nodes
        .iter()
        .map(|&z| weibull_from_normal((z + shift) / norm, 1.0, k))
        .sum::<f64>()
        / nodes.len() as f64
}

/// Solve c (bisection) so the hour-of-day mean speeds swing by ±δ of their mean.
fn diurnal_weight(strength: f64, k: f64, diurnal: &[f64; 24]) -> f64 {
    if strength <= 0.0 {
        return 0.0;
    }
    const NODES: usize = 32;
    let nodes: Vec<f64> = (0..NODES)
        .map(|i| inverse_normal_cdf((i as f64 + 0.5) / NODES as f64))
        .collect();
    let amplitude = |c: f64| {
        let norm = (1.0 + c * c).sqrt();
        let profile: Vec<f64> = diurnal
            .iter()
            .map(|&n| expected_speed(&nodes, c * n, norm, k))
            .collect();
        let mean = profile.iter().sum::<f64>() / 24.0;
        let (lo, hi) = profile
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        (hi - lo) / 2.0 / mean
    };
    // 20 halvings of [0, 20] resolve c to 2e-5, far below the sampling noise of a year.
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..20 {
        let mid = (lo + hi) / 2.0;
        if amplitude(mid) < strength {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

// ---------------------------------------------------------------------------------------------
// Hub height, density, power curves.

/// How speed grows with height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "law", deny_unknown_fields)]
pub enum ShearProfile {
    /// U_hub = U_anem ln(z_hub/z₀) / ln(z_anem/z₀), z₀ the surface roughness length.
    Logarithmic { surface_roughness_m: f64 },
    /// U_hub = U_anem (z_hub/z_anem)^α.
    PowerLaw { exponent: f64 },
}

impl ShearProfile {
    /// The factor U_hub / U_anem.
    pub fn factor(&self, anemometer_height_m: f64, hub_height_m: f64) -> f64 {
        match *self {
            ShearProfile::Logarithmic {
                surface_roughness_m: z0,
            } => (hub_height_m / z0).ln() / (anemometer_height_m / z0).ln(),
            ShearProfile::PowerLaw { exponent } => {
                (hub_height_m / anemometer_height_m).powf(exponent)
            }
        }
    }
}

/// ρ/ρ₀ at `elevation_m` (homer.md §3.2: standard atmosphere, B = 0.0065 K/m, T₀ = 288.16 K,
/// g = 9.81 m/s², R = 287 J/(kg K)). With `air_temperature_c`, the ideal-gas density at the
/// standard-atmosphere pressure and that temperature [ours].
pub fn density_ratio(elevation_m: f64, air_temperature_c: Option<f64>) -> f64 {
    const B: f64 = 0.0065;
    const T0: f64 = 288.16;
    const G: f64 = 9.81;
    const R: f64 = 287.0;
    let pressure_ratio = (1.0 - B * elevation_m / T0).powf(G / (R * B));
    let temperature_k = match air_temperature_c {
        Some(t) => t + 273.15,
        None => T0 - B * elevation_m,
    };
    pressure_ratio * T0 / temperature_k
}

/// A turbine power curve at standard density: (speed m/s, power kW) points with strictly
/// increasing speeds and non-negative power.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerCurve {
    points: Vec<(f64, f64)>,
}

impl PowerCurve {
    /// Validate and build; the message names the offending point.
    pub fn new(points: Vec<(f64, f64)>) -> Result<Self, String> {
        if points.len() < 2 {
            return Err(format!(
                "a power curve needs at least 2 points, got {}",
                points.len()
            ));
        }
        for (i, &(v, p)) in points.iter().enumerate() {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("point {i}: speed must be finite and >= 0, got {v}"));
            }
            if !p.is_finite() || p < 0.0 {
                return Err(format!("point {i}: power must be finite and >= 0, got {p}"));
            }
            if i > 0 && v <= points[i - 1].0 {
                return Err(format!(
                    "point {i}: speeds must increase strictly, {v} follows {}",
                    points[i - 1].0
                ));
            }
        }
        Ok(Self { points })
    }

    /// The points.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    /// Rated (maximum) power, kW.
    pub fn rated_kw(&self) -> f64 {
        self.points.iter().map(|p| p.1).fold(0.0, f64::max)
    }

    /// Power at a hub-height speed, kW: linear interpolation, zero outside the curve.
    pub fn power_kw(&self, speed_m_per_s: f64) -> f64 {
        let pts = &self.points;
        let (first, last) = (pts[0].0, pts[pts.len() - 1].0);
        if !(first..=last).contains(&speed_m_per_s) {
            return 0.0;
        }
        let i = pts.partition_point(|p| p.0 <= speed_m_per_s);
        if i >= pts.len() {
            return pts[pts.len() - 1].1;
        }
        let (v0, p0) = pts[i - 1];
        let (v1, p1) = pts[i];
        p0 + (p1 - p0) * (speed_m_per_s - v0) / (v1 - v0)
    }
}

/// Names of the built-in turbines.
pub const BUILTIN_TURBINES: [&str; 4] = [
    "generic_1kw",
    "generic_3kw",
    "generic_10kw",
    "generic_100kw",
];

/// A built-in curve: generic small/medium turbines [ours, not a manufacturer's data], tabulated
/// every 1 m/s from the cubic law P = P_r (v³ − v_ci³)/(v_r³ − v_ci³) between cut-in v_ci and
/// rated speed v_r, flat to cut-out (25 m/s; 20 m/s for the 1 kW), zero outside.
pub fn builtin_curve(name: &str) -> Option<PowerCurve> {
    let (rated_kw, cut_in, rated, cut_out): (f64, f64, f64, f64) = match name {
        "generic_1kw" => (1.0, 3.0, 11.0, 20.0),
        "generic_3kw" => (3.0, 3.0, 11.0, 25.0),
        "generic_10kw" => (10.0, 3.0, 12.0, 25.0),
        "generic_100kw" => (100.0, 3.5, 12.0, 25.0),
        _ => return None,
    };
    let mut points = vec![(0.0, 0.0)];
    let mut v: f64 = cut_in.ceil();
    if v > cut_in {
        points.push((cut_in, 0.0));
    }
    while v <= cut_out {
        let p = if v < rated {
            rated_kw * (v.powi(3) - cut_in.powi(3)) / (rated.powi(3) - cut_in.powi(3))
        } else {
            rated_kw
        };
        points.push((v, p.max(0.0)));
        v += 1.0;
    }
    PowerCurve::new(points).ok()
}

/// Turbines of one kind: `count` machines with `curve` at `hub_height_m`.
#[derive(Debug, Clone, PartialEq)]
pub struct Turbine {
    pub curve: PowerCurve,
    pub count: u32,
    pub hub_height_m: f64,
}

/// Turbine output for each step, kW, from anemometer-height speeds, corrected for air density
/// at `elevation_m` (and for the per-step air temperature when given).
pub fn turbine_power_kw(
    turbine: &Turbine,
    anemometer_height_m: f64,
    shear: &ShearProfile,
    elevation_m: f64,
    speed_m_per_s: &[f64],
    air_temperature_c: Option<&[f64]>,
) -> Vec<f64> {
    let factor = shear.factor(anemometer_height_m, turbine.hub_height_m);
    let fixed_density = density_ratio(elevation_m, None);
    speed_m_per_s
        .iter()
        .enumerate()
        .map(|(i, &u)| {
            let density = match air_temperature_c.and_then(|t| t.get(i)) {
                Some(&t) => density_ratio(elevation_m, Some(t)),
                None => fixed_density,
            };
            f64::from(turbine.count) * density * turbine.curve.power_kw(u * factor)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Special functions.

/// Complementary error function, Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15).
pub fn gamma_fn(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.5203681218851,
        -1259.1392167224028,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507343278686905,
        -0.13857109526572012,
        9.984_369_578_019_572e-6,
        1.5056327351493116e-7,
    ];
    if x < 0.5 {
        return PI / ((PI * x).sin() * gamma_fn(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    (2.0 * PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

// ---------------------------------------------------------------------------------------------
// Scenario configuration.

/// The site's wind resource (HOMER's synthetic wind inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindResourceConfig {
    /// Monthly mean speed at anemometer height, m/s, January first. Default: Bergamo
    /// ([`BERGAMO_WIND_M_PER_S`]).
    #[serde(default = "bergamo_wind")]
    pub monthly_mean_speed_m_per_s: [f64; 12],
    /// Weibull shape k. Default 2 (HOMER).
    #[serde(default = "default_k")]
    pub weibull_k: f64,
    /// 1-hour autocorrelation factor. Default 0.85 (HOMER).
    #[serde(default = "default_autocorrelation")]
    pub autocorrelation: f64,
    /// Diurnal pattern strength, 0..1. Default 0.25 (HOMER).
    #[serde(default = "default_diurnal")]
    pub diurnal_strength: f64,
    /// Hour of peak wind speed, 0..24. Default 15 (HOMER).
    #[serde(default = "default_peak_hour")]
    pub peak_hour: f64,
    /// Height of the measured speeds, m. Default 10.
    #[serde(default = "default_anemometer")]
    pub anemometer_height_m: f64,
    /// Speed-versus-height law. Default: logarithmic with surface roughness 0.25 m (a rural
    /// area with scattered buildings, the Po plain around Bergamo) [ours].
    #[serde(default = "default_shear")]
    pub shear: ShearProfile,
}

fn bergamo_wind() -> [f64; 12] {
    BERGAMO_WIND_M_PER_S
}
fn default_k() -> f64 {
    2.0
}
fn default_autocorrelation() -> f64 {
    0.85
}
fn default_diurnal() -> f64 {
    0.25
}
fn default_peak_hour() -> f64 {
    15.0
}
fn default_anemometer() -> f64 {
    10.0
}
fn default_shear() -> ShearProfile {
    ShearProfile::Logarithmic {
        surface_roughness_m: 0.25,
    }
}

impl Default for WindResourceConfig {
    fn default() -> Self {
        Self {
            monthly_mean_speed_m_per_s: BERGAMO_WIND_M_PER_S,
            weibull_k: default_k(),
            autocorrelation: default_autocorrelation(),
            diurnal_strength: default_diurnal(),
            peak_hour: default_peak_hour(),
            anemometer_height_m: default_anemometer(),
            shear: default_shear(),
        }
    }
}

impl WindResourceConfig {
    /// The synthesis parameters.
    pub fn params(&self) -> WindParams {
        WindParams {
            monthly_mean_m_per_s: self.monthly_mean_speed_m_per_s,
            weibull_k: self.weibull_k,
            autocorrelation: self.autocorrelation,
            diurnal_strength: self.diurnal_strength,
            peak_hour: self.peak_hour,
        }
    }

    /// Every problem, each with its field path under `path`.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut check = |field: String, v: f64, min: f64, max: f64| {
            if !v.is_finite() || v < min || v > max {
                errors.push((
                    format!("{path}.{field}"),
                    format!("must be between {min} and {max}, got {v}"),
                ));
            }
        };
        for (m, v) in self.monthly_mean_speed_m_per_s.iter().enumerate() {
            check(format!("monthly_mean_speed_m_per_s[{m}]"), *v, 0.0, 50.0);
        }
        check("weibull_k".into(), self.weibull_k, 0.5, 10.0);
        check("autocorrelation".into(), self.autocorrelation, 0.0, 0.99);
        check("diurnal_strength".into(), self.diurnal_strength, 0.0, 0.9);
        check("peak_hour".into(), self.peak_hour, 0.0, 24.0);
        check(
            "anemometer_height_m".into(),
            self.anemometer_height_m,
            0.5,
            300.0,
        );
        match self.shear {
            ShearProfile::Logarithmic {
                surface_roughness_m,
            } => check(
                "shear.surface_roughness_m".into(),
                surface_roughness_m,
                1e-5,
                (self.anemometer_height_m / 2.0).max(1e-5),
            ),
            ShearProfile::PowerLaw { exponent } => {
                check("shear.exponent".into(), exponent, 0.0, 1.0)
            }
        }
        errors
    }
}

/// Wind turbines of one kind at one prosumer. Exactly one of `model` or `power_curve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurbineConfig {
    /// A built-in curve ([`BUILTIN_TURBINES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A user curve: `[speed m/s, power kW]` pairs at standard density, speeds increasing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_curve: Option<Vec<[f64; 2]>>,
    /// Hub height, m.
    pub hub_height_m: f64,
    /// Number of turbines. Default 1.
    #[serde(default = "default_count")]
    pub count: u32,
}

fn default_count() -> u32 {
    1
}

impl TurbineConfig {
    /// The turbines, with their curve, or a message.
    pub fn turbine(&self) -> Result<Turbine, String> {
        Ok(Turbine {
            curve: self.curve()?,
            count: self.count,
            hub_height_m: self.hub_height_m,
        })
    }

    /// The power curve (built-in or user), or a message.
    pub fn curve(&self) -> Result<PowerCurve, String> {
        match (&self.model, &self.power_curve) {
            (Some(name), None) => builtin_curve(name).ok_or_else(|| {
                format!(
                    "unknown turbine model {name:?}; built-in: {}",
                    BUILTIN_TURBINES.join(", ")
                )
            }),
            (None, Some(points)) => PowerCurve::new(points.iter().map(|p| (p[0], p[1])).collect()),
            _ => Err("give exactly one of model or power_curve".into()),
        }
    }

    /// Every problem, each with its field path under `path`.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if let Err(message) = self.curve() {
            let field = match (&self.model, &self.power_curve) {
                (Some(_), None) => "model",
                (None, Some(_)) => "power_curve",
                _ => "",
            };
            let at = if field.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{field}")
            };
            errors.push((at, message));
        }
        if !self.hub_height_m.is_finite() || !(1.0..=300.0).contains(&self.hub_height_m) {
            errors.push((
                format!("{path}.hub_height_m"),
                format!("must be between 1 and 300 m, got {}", self.hub_height_m),
            ));
        }
        if self.count == 0 {
            errors.push((format!("{path}.count"), "must be at least 1".into()));
        }
        errors
    }
}
