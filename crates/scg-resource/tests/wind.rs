//! HOMER synthetic wind: Weibull shape, autocorrelation, diurnal pattern, exact monthly means;
//! hub height, air density, power curves, configuration.
#![allow(clippy::unwrap_used)]

use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::wind::{self, PowerCurve, ShearProfile, Turbine, WindParams};

fn grid(step_minutes: u32) -> TimeGrid {
    TimeGrid::new(
        &TimeSettings {
            step_minutes,
            model_year: ModelYear::Homer,
        },
        "Europe/Rome",
    )
    .unwrap()
}

/// Weibull k from the coefficient of variation (method of moments), by bisection.
fn fit_k(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let cv2 = var / (mean * mean);
    let cv2_of =
        |k: f64| wind::gamma_fn(1.0 + 2.0 / k) / wind::gamma_fn(1.0 + 1.0 / k).powi(2) - 1.0;
    let (mut lo, mut hi) = (0.5, 10.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        // CV falls as k grows.
        if cv2_of(mid) > cv2 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

fn lag1(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var: f64 = xs.iter().map(|x| (x - mean).powi(2)).sum();
    let cov: f64 = xs.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    cov / var
}

fn years(params: &WindParams, seeds: std::ops::Range<u64>) -> Vec<Vec<f64>> {
    let g = grid(60);
    seeds
        .map(|s| wind::synthesize_speed_m_per_s(params, &g, s).unwrap())
        .collect()
}

#[test]
fn special_functions_match_tables() {
    assert!((wind::gamma_fn(1.5) - std::f64::consts::PI.sqrt() / 2.0).abs() < 1e-13);
    assert!((wind::gamma_fn(5.0) - 24.0).abs() < 1e-11);
    assert!((wind::erfc(0.0) - 1.0).abs() < 1e-7);
    assert!((wind::erfc(1.0) - 0.157_299_207_050_285).abs() < 2e-8);
    assert!((wind::erfc(-1.0) - 1.842_700_792_949_715).abs() < 2e-8);
    assert!((wind::inverse_normal_cdf(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
    assert!((wind::inverse_normal_cdf(0.001) + 3.090_232_306_167_813).abs() < 1e-8);
}

#[test]
fn monthly_means_are_exact_and_seeded() {
    let means = [4.0, 4.5, 5.0, 5.5, 6.0, 5.0, 4.0, 3.5, 4.0, 4.5, 5.0, 5.5];
    let p = WindParams::homer_defaults(means);
    let g = grid(60);
    let a = wind::synthesize_speed_m_per_s(&p, &g, 1).unwrap();
    assert_eq!(a, wind::synthesize_speed_m_per_s(&p, &g, 1).unwrap());
    assert_ne!(a, wind::synthesize_speed_m_per_s(&p, &g, 2).unwrap());
    let mut start = 0;
    for (m, days) in [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        .iter()
        .enumerate()
    {
        let month = &a[start..start + days * 24];
        let mean = month.iter().sum::<f64>() / month.len() as f64;
        assert!((mean - means[m]).abs() < 1e-12, "month {m}: {mean}");
        start += days * 24;
    }
    assert!(a.iter().all(|v| v.is_finite() && *v >= 0.0));
    // 15-minute steps hold each hour's speed.
    let q = wind::synthesize_speed_m_per_s(&p, &grid(15), 1).unwrap();
    assert_eq!(q.len(), 35040);
    for (i, v) in q.iter().enumerate() {
        assert_eq!(*v, a[i / 4]);
    }
}

#[test]
fn weibull_shape_and_autocorrelation_within_tolerance() {
    // Flat monthly means so the pooled year is one Weibull distribution. Tolerances: k ± 0.15,
    // lag-1 autocorrelation ± 0.04 (four synthetic years).
    for (k, a, strength) in [
        (2.0, 0.85, 0.0),
        (2.0, 0.85, 0.25),
        (3.0, 0.7, 0.0),
        (1.6, 0.9, 0.3),
    ] {
        let p = WindParams {
            monthly_mean_m_per_s: [6.0; 12],
            weibull_k: k,
            autocorrelation: a,
            diurnal_strength: strength,
            peak_hour: 15.0,
        };
        let ys = years(&p, 0..4);
        let all: Vec<f64> = ys.iter().flatten().copied().collect();
        let fitted = fit_k(&all);
        assert!(
            (fitted - k).abs() < 0.15,
            "k {k} a {a} δ {strength}: fitted k {fitted}"
        );
        let r = ys.iter().map(|y| lag1(y)).sum::<f64>() / ys.len() as f64;
        assert!((r - a).abs() < 0.04, "k {k} a {a} δ {strength}: lag-1 {r}");
    }
}

#[test]
fn diurnal_pattern_has_the_requested_strength_and_peak() {
    for (strength, peak) in [(0.25, 15.0), (0.4, 3.0)] {
        let p = WindParams {
            monthly_mean_m_per_s: [5.0; 12],
            weibull_k: 2.0,
            autocorrelation: 0.85,
            diurnal_strength: strength,
            peak_hour: peak,
        };
        let mut by_hour = [0.0; 24];
        let ys = years(&p, 0..6);
        for y in &ys {
            for (i, v) in y.iter().enumerate() {
                by_hour[i % 24] += v;
            }
        }
        let mean = by_hour.iter().sum::<f64>() / 24.0;
        let (hi_hour, hi) = by_hour
            .iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (h, &v)| if v > b.1 { (h, v) } else { b });
        let lo = by_hour.iter().copied().fold(f64::MAX, f64::min);
        let amplitude = (hi - lo) / 2.0 / mean;
        assert!(
            (amplitude - strength).abs() < 0.05,
            "δ {strength}: {amplitude}"
        );
        let d = (hi_hour as f64 - peak).abs();
        assert!(d.min(24.0 - d) <= 1.0, "peak {peak}: {hi_hour}");
    }
}

#[test]
fn bad_parameters_are_errors() {
    let mut p = WindParams::homer_defaults([5.0; 12]);
    p.weibull_k = 0.0;
    let e = wind::synthesize_speed_m_per_s(&p, &grid(60), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Weibull k"), "{e}");
    let mut p = WindParams::homer_defaults([5.0; 12]);
    p.monthly_mean_m_per_s[2] = -1.0;
    let e = wind::synthesize_speed_m_per_s(&p, &grid(60), 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("month 3"), "{e}");
}

#[test]
fn hub_height_laws() {
    let log = ShearProfile::Logarithmic {
        surface_roughness_m: 0.25,
    };
    assert!((log.factor(10.0, 50.0) - 200f64.ln() / 40f64.ln()).abs() < 1e-12);
    assert!((log.factor(10.0, 10.0) - 1.0).abs() < 1e-12);
    let power = ShearProfile::PowerLaw {
        exponent: 1.0 / 7.0,
    };
    assert!((power.factor(10.0, 50.0) - 1.258_498_6).abs() < 1e-6);
}

#[test]
fn air_density_standard_atmosphere() {
    assert!((wind::density_ratio(0.0, None) - 1.0).abs() < 1e-12);
    // ICAO standard atmosphere: 1.1117 kg/m³ at 1000 m, 1.0066 at 2000 m.
    assert!((wind::density_ratio(1000.0, None) * wind::RHO0_KG_PER_M3 - 1.1117).abs() < 0.002);
    assert!((wind::density_ratio(2000.0, None) * wind::RHO0_KG_PER_M3 - 1.0066).abs() < 0.002);
    // Cold air is denser: −10 °C at sea level, ρ ∝ 1/T.
    assert!((wind::density_ratio(0.0, Some(-10.0)) - 288.16 / 263.15).abs() < 1e-12);
}

#[test]
fn power_curves_validate_and_interpolate() {
    assert!(PowerCurve::new(vec![(3.0, 0.0)]).is_err());
    let e = PowerCurve::new(vec![(3.0, 0.0), (2.0, 1.0)]).unwrap_err();
    assert!(e.contains("point 1"), "{e}");
    assert!(PowerCurve::new(vec![(3.0, 0.0), (4.0, -1.0)]).is_err());
    assert!(PowerCurve::new(vec![(3.0, 0.0), (f64::NAN, 1.0)]).is_err());
    let c = PowerCurve::new(vec![(3.0, 0.0), (5.0, 2.0), (12.0, 10.0), (25.0, 10.0)]).unwrap();
    assert_eq!(c.power_kw(2.9), 0.0);
    assert_eq!(c.power_kw(4.0), 1.0);
    assert_eq!(c.power_kw(12.0), 10.0);
    assert_eq!(c.power_kw(25.0), 10.0);
    assert_eq!(c.power_kw(25.1), 0.0);
    assert_eq!(c.rated_kw(), 10.0);
    for name in wind::BUILTIN_TURBINES {
        let c = wind::builtin_curve(name).unwrap();
        let rated = c.rated_kw();
        let expected: f64 = name
            .trim_start_matches("generic_")
            .trim_end_matches("kw")
            .parse()
            .unwrap();
        assert_eq!(rated, expected, "{name}");
        // Monotone up to rated.
        let pts = c.points();
        let rated_at = pts.iter().position(|p| p.1 == rated).unwrap();
        assert!(
            pts[..=rated_at].windows(2).all(|w| w[1].1 >= w[0].1),
            "{name}"
        );
    }
    assert!(wind::builtin_curve("vestas").is_none());
}

#[test]
fn turbine_output_scales_with_count_and_density() {
    let t = Turbine {
        curve: PowerCurve::new(vec![(3.0, 0.0), (13.0, 10.0), (25.0, 10.0)]).unwrap(),
        count: 3,
        hub_height_m: 10.0,
    };
    let speeds = [2.0, 8.0, 30.0];
    let p = wind::turbine_power_kw(
        &t,
        10.0,
        &ShearProfile::PowerLaw { exponent: 0.0 },
        0.0,
        &speeds,
        None,
    );
    assert_eq!(p, vec![0.0, 15.0, 0.0]);
    let high = wind::turbine_power_kw(
        &t,
        10.0,
        &ShearProfile::PowerLaw { exponent: 0.0 },
        1000.0,
        &speeds,
        None,
    );
    assert!((high[1] - 15.0 * wind::density_ratio(1000.0, None)).abs() < 1e-12);
    // Hub at 40 m with α = 0.5 doubles the speed: 4 m/s at 10 m is 8 m/s at the hub.
    let tall = Turbine {
        hub_height_m: 40.0,
        ..t.clone()
    };
    let p = wind::turbine_power_kw(
        &tall,
        10.0,
        &ShearProfile::PowerLaw { exponent: 0.5 },
        0.0,
        &[4.0],
        None,
    );
    assert!((p[0] - 15.0).abs() < 1e-12);
}

#[test]
fn config_parses_and_validates() {
    let c: wind::WindResourceConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, wind::WindResourceConfig::default());
    assert!(c.validate("wind").is_empty());
    let c: wind::WindResourceConfig =
        serde_json::from_str(r#"{"weibull_k":2.2,"shear":{"law":"power_law","exponent":0.2}}"#)
            .unwrap();
    assert_eq!(c.shear, ShearProfile::PowerLaw { exponent: 0.2 });
    assert!(serde_json::from_str::<wind::WindResourceConfig>(r#"{"k":2}"#).is_err());
    let bad = wind::WindResourceConfig {
        autocorrelation: 1.5,
        ..Default::default()
    };
    assert_eq!(bad.validate("wind")[0].0, "wind.autocorrelation");
    let t: wind::TurbineConfig =
        serde_json::from_str(r#"{"model":"generic_10kw","hub_height_m":24}"#).unwrap();
    assert!(t.validate("p[0].wind[0]").is_empty());
    assert_eq!(t.turbine().unwrap().count, 1);
    let t: wind::TurbineConfig =
        serde_json::from_str(r#"{"power_curve":[[3,0],[2,1]],"hub_height_m":24,"count":2}"#)
            .unwrap();
    let errs = t.validate("p[0].wind[0]");
    assert_eq!(errs[0].0, "p[0].wind[0].power_curve");
    assert!(errs[0].1.contains("increase"), "{}", errs[0].1);
    let t: wind::TurbineConfig =
        serde_json::from_str(r#"{"model":"nope","hub_height_m":0,"count":0}"#).unwrap();
    assert_eq!(t.validate("w").len(), 3);
}
