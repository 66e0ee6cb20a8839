//! Solar geometry, transposition and PV output against pvlib golden data (tools/pvlib_golden.py)
//! and Duffie & Beckman's worked examples; the synthetic irradiance's statistics; the Bergamo
//! default's specific yield.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::solar::{self, MonthlySolar, PvArrayConfig, SolarSite, StepSun};

const GOLDEN: &str = include_str!("data/pvlib_golden.csv");

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

struct Row(std::collections::BTreeMap<String, f64>);

impl Row {
    fn get(&self, k: &str) -> f64 {
        *self.0.get(k).unwrap_or_else(|| panic!("column {k}"))
    }
}

fn golden() -> Vec<Row> {
    let mut lines = GOLDEN.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            Row(header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.parse::<f64>().unwrap()))
                .collect())
        })
        .collect()
}

/// |ours − expected| ≤ 1 % of |expected| + `floor` (the floor only matters near zero).
fn assert_close(what: &str, ours: f64, expected: f64, floor: f64, row: usize) {
    let tol = 0.01 * expected.abs() + floor;
    assert!(
        (ours - expected).abs() <= tol,
        "row {row} {what}: ours {ours} vs pvlib {expected} (tolerance {tol})"
    );
}

#[test]
fn golden_has_enough_cases() {
    let rows = golden();
    assert!(rows.len() > 500, "{}", rows.len());
}

#[test]
fn geometry_matches_pvlib() {
    for (i, r) in golden().iter().enumerate() {
        let doy = r.get("doy") as u32;
        let site = SolarSite {
            latitude_deg: r.get("lat_deg"),
            longitude_deg: r.get("lon_deg"),
            time_zone_h: r.get("tz_h"),
        };
        let dec = solar::declination_deg(doy);
        assert_close("declination", dec, r.get("declination_deg"), 1e-9, i);
        // pvlib prints Spencer's series with 1440/2π and 0.0000075; Duffie & Beckman (HOMER)
        // print 229.2 and 0.000075: they differ by at most 0.03 minutes.
        assert_close(
            "eot",
            solar::equation_of_time_min(doy),
            r.get("eot_min"),
            0.03,
            i,
        );
        let omega = solar::hour_angle_deg(&site, doy, r.get("clock_h"));
        // 0.03 min of time = 0.0075°.
        assert_close("hour angle", omega, r.get("hour_angle_deg"), 0.01, i);
        let cz = solar::cos_zenith(site.latitude_deg, dec, omega);
        assert_close(
            "cos zenith",
            cz,
            r.get("zenith_deg").to_radians().cos(),
            1e-4,
            i,
        );
        let ci = solar::cos_incidence(
            site.latitude_deg,
            dec,
            omega,
            r.get("tilt_deg"),
            r.get("azimuth_deg"),
        );
        assert_close("cos aoi", ci, r.get("aoi_deg").to_radians().cos(), 1e-4, i);
        assert_close(
            "G_on",
            solar::extraterrestrial_normal_kw_per_m2(doy) * 1000.0,
            r.get("g_on_w_m2"),
            1e-9,
            i,
        );
    }
}

#[test]
fn erbs_matches_pvlib() {
    for (i, r) in golden().iter().enumerate() {
        let dhi = r.get("ghi_w_m2") * solar::erbs_diffuse_fraction(r.get("erbs_kt"));
        assert_close("erbs dhi", dhi, r.get("erbs_dhi_w_m2"), 1e-6, i);
    }
}

#[test]
fn hdkr_transposition_and_pv_power_match_pvlib() {
    for (i, r) in golden().iter().enumerate() {
        let doy = r.get("doy") as u32;
        let site = SolarSite {
            latitude_deg: r.get("lat_deg"),
            longitude_deg: r.get("lon_deg"),
            time_zone_h: r.get("tz_h"),
        };
        let (tilt, az) = (r.get("tilt_deg"), r.get("azimuth_deg"));
        let dec = solar::declination_deg(doy);
        let omega = solar::hour_angle_deg(&site, doy, r.get("clock_h"));
        let cz = solar::cos_zenith(site.latitude_deg, dec, omega);
        let ci = solar::cos_incidence(site.latitude_deg, dec, omega, tilt, az).max(0.0);
        let g_on = solar::extraterrestrial_normal_kw_per_m2(doy);
        // kW/m² throughout, compared in W/m².
        let ghi = r.get("ghi_w_m2") / 1000.0;
        let dhi = r.get("erbs_dhi_w_m2") / 1000.0;
        let poa = solar::hdkr(ghi, dhi, ci / cz, g_on * cz, tilt, r.get("albedo"));
        let floor = 0.05; // W/m²
        assert_close("beam", poa.beam * 1e3, r.get("poa_beam_w_m2"), floor, i);
        assert_close(
            "sky diffuse",
            poa.sky_diffuse * 1e3,
            r.get("poa_sky_diffuse_w_m2"),
            floor,
            i,
        );
        assert_close(
            "ground",
            poa.ground * 1e3,
            r.get("poa_ground_diffuse_w_m2"),
            floor,
            i,
        );
        assert_close("poa", poa.total() * 1e3, r.get("poa_global_w_m2"), floor, i);
        // HOMER's NOCT model with η = 0 is Ross's model.
        let g_t = r.get("poa_global_w_m2") / 1000.0;
        let t_cell = solar::cell_temperature_c(r.get("temp_air_c"), g_t, 45.0, 0.0, -0.004);
        assert_close("cell temperature", t_cell, r.get("temp_cell_c"), 0.01, i);
        let p = solar::pv_output_kw(5.0, 0.8, g_t, r.get("temp_cell_c"), -0.004);
        assert_close("pv power", p, r.get("pv_power_kw"), 1e-6, i);
    }
}

#[test]
fn duffie_beckman_worked_examples() {
    // D&B Example 1.10.1: φ = 43°, 15 April (n = 105): H_o = 33.8 MJ/m².
    let h0 = solar::daily_extraterrestrial_kwh_per_m2(43.0, 105);
    assert!((h0 * 3.6 - 33.8).abs() < 0.1, "{}", h0 * 3.6);
    // D&B Example 1.10.2: same day, 10–11 h solar time: I_o = 3.79 MJ/m².
    // Solar time = clock time when λ/15 − Z + E/60 = 0.
    let site = SolarSite {
        latitude_deg: 43.0,
        longitude_deg: -solar::equation_of_time_min(105) / 4.0,
        time_zone_h: 0.0,
    };
    let sun = StepSun::new(&site, 105, 10.0, 1.0);
    let io_mj = sun.extraterrestrial_horizontal_kw_per_m2 * 3.6;
    assert!((io_mj - 3.79).abs() < 0.01, "{io_mj}");
    // The day's steps add up to H_o (sunrise and sunset steps included), up to the declination's
    // and G_on's change within the day, which the steps follow and the daily formula does not.
    let sum: f64 = (0..24)
        .map(|h| StepSun::new(&site, 105, f64::from(h), 1.0).extraterrestrial_horizontal_kw_per_m2)
        .sum();
    assert!((sum - h0).abs() < 1e-3 * h0.max(1.0), "{sum} vs {h0}");
    // Sunset hour angle 98.9° in that example.
    let ws = solar::sunset_hour_angle_deg(43.0, solar::declination_deg(105));
    assert!((ws - 98.9).abs() < 0.1, "{ws}");
}

#[test]
fn monthly_clearness_round_trips() {
    let h = solar::BERGAMO_GHI_KWH_PER_M2_DAY;
    let kt = solar::clearness_from_radiation(45.698, &h);
    let back = solar::radiation_from_clearness(45.698, &kt);
    for m in 0..12 {
        assert!((back[m] - h[m]).abs() < 1e-12);
        assert!((0.35..0.65).contains(&kt[m]), "{m}: {}", kt[m]);
    }
}

fn numeric_beam_ratio(sun: &StepSun, lat: f64, tilt: f64, az: f64) -> f64 {
    let n = 20_000;
    let (s1, s2) = (sun.sunlit_start_deg, sun.sunlit_end_deg);
    let (mut a, mut b) = (0.0, 0.0);
    for k in 0..n {
        let w = s1 + (s2 - s1) * (k as f64 + 0.5) / n as f64;
        a += solar::cos_incidence(lat, sun.declination_deg, w, tilt, az).max(0.0);
        b += solar::cos_zenith(lat, sun.declination_deg, w);
    }
    a / b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The closed-form step-averaged R_b equals a fine numerical quadrature.
    #[test]
    fn step_beam_ratio_matches_quadrature(
        lat in -60.0f64..60.0,
        doy in 1u32..=365,
        hour in 0u32..24,
        tilt in 0.0f64..90.0,
        az in -180.0f64..180.0,
    ) {
        let site = SolarSite { latitude_deg: lat, longitude_deg: 15.0, time_zone_h: 1.0 };
        let sun = StepSun::new(&site, doy, f64::from(hour), 1.0);
        prop_assume!(sun.is_sunlit() && sun.extraterrestrial_horizontal_kw_per_m2 > 0.01);
        let ours = sun.beam_ratio(lat, tilt, az);
        let numeric = numeric_beam_ratio(&sun, lat, tilt, az);
        prop_assert!((ours - numeric).abs() <= 1e-4 * numeric.abs() + 1e-6, "{} vs {}", ours, numeric);
    }

    /// A horizontal surface has R_b = 1; POA on it is GHI.
    #[test]
    fn horizontal_surface_sees_ghi(lat in -60.0f64..60.0, doy in 1u32..=365, hour in 0u32..24,
                                   ghi in 0.01f64..1.0, kt in 0.05f64..0.9) {
        let site = SolarSite { latitude_deg: lat, longitude_deg: 0.0, time_zone_h: 0.0 };
        let sun = StepSun::new(&site, doy, f64::from(hour), 1.0);
        prop_assume!(sun.is_sunlit() && sun.extraterrestrial_horizontal_kw_per_m2 > 0.01);
        let rb = sun.beam_ratio(lat, 0.0, 0.0);
        prop_assert!((rb - 1.0).abs() < 1e-9);
        let dhi = ghi * solar::erbs_diffuse_fraction(kt);
        let poa = solar::hdkr(ghi, dhi, rb, sun.extraterrestrial_horizontal_kw_per_m2, 0.0, 0.2);
        prop_assert!((poa.total() - ghi).abs() < 1e-12);
    }
}

#[test]
fn very_short_step_equals_instantaneous_geometry() {
    let site = SolarSite {
        latitude_deg: 45.7,
        longitude_deg: 9.67,
        time_zone_h: 1.0,
    };
    let dt = 1.0 / 3600.0;
    let sun = StepSun::new(&site, 172, 10.0, dt);
    let omega = solar::hour_angle_at_deg(&site, 172, 10.0 + dt / 2.0);
    let dec = solar::declination_at_deg(172, 10.0 + dt / 2.0 - site.time_zone_h);
    let cz = solar::cos_zenith(45.7, dec, omega);
    let ci = solar::cos_incidence(45.7, dec, omega, 35.0, -20.0);
    assert!((sun.beam_ratio(45.7, 35.0, -20.0) - ci / cz).abs() < 1e-6);
    assert!(
        (sun.extraterrestrial_horizontal_kw_per_m2 - sun.extraterrestrial_normal_kw_per_m2 * cz)
            .abs()
            < 1e-6
    );
}

#[test]
fn cell_temperature_solves_the_noct_energy_balance() {
    // τα G = η_c G + U_L (T_c − T_a), η_c = η (1 + α (T_c − 25)), U_L from the NOCT point.
    let (t_a, g, noct, eta, alpha) = (25.0, 0.9, 47.0, 0.2, -0.005);
    let u_l = 0.9 * 0.8 / (noct - 20.0);
    let t_c = solar::cell_temperature_c(t_a, g, noct, eta, alpha);
    let eta_c = eta * (1.0 + alpha * (t_c - 25.0));
    let residual = 0.9 * g - eta_c * g - u_l * (t_c - t_a);
    assert!(residual.abs() < 1e-12, "{residual}");
    // Hotter than the air, cooler than Ross's η = 0 bound.
    assert!(t_c > t_a && t_c < t_a + (noct - 20.0) * g / 0.8);
}

fn bergamo_site(g: &TimeGrid) -> SolarSite {
    SolarSite::new(45.698, 9.677, g)
}

#[test]
fn synthetic_ghi_keeps_monthly_means_exactly_and_is_seeded() {
    let g = grid(60);
    let site = bergamo_site(&g);
    let monthly = MonthlySolar::RadiationKwhPerM2Day(solar::BERGAMO_GHI_KWH_PER_M2_DAY);
    let a = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, 7).unwrap();
    let b = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, 7).unwrap();
    let c = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.len(), 8760);
    let mut start = 0;
    for (m, days) in solar::DAYS_IN_MONTH.iter().enumerate() {
        let month = &a[start * 24..(start + days) * 24];
        let mean = month.iter().sum::<f64>() / *days as f64;
        let want = solar::BERGAMO_GHI_KWH_PER_M2_DAY[m];
        assert!(
            (mean - want).abs() < 1e-9 * want,
            "month {m}: {mean} vs {want}"
        );
        start += days;
    }
    // Physically plausible hours: never negative, dark at night, never above ~1.1 kW/m².
    for (step, &v) in a.iter().enumerate() {
        assert!((0.0..1.15).contains(&v), "step {step}: {v}");
        let sun = StepSun::of_step(&site, &g, step);
        if !sun.is_sunlit() {
            assert_eq!(v, 0.0, "step {step}");
        }
    }
}

#[test]
fn synthetic_days_vary_with_persistence() {
    // Daily clearness from several synthetic years: spread and lag-1 autocorrelation.
    let g = grid(60);
    let site = bergamo_site(&g);
    let monthly = MonthlySolar::ClearnessIndex([0.5; 12]);
    let mut kts = Vec::new();
    for seed in 0..4 {
        let ghi = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, seed).unwrap();
        for day in 0..365 {
            let h: f64 = ghi[day * 24..day * 24 + 24].iter().sum();
            kts.push(h / solar::daily_extraterrestrial_kwh_per_m2(45.698, day as u32 + 1));
        }
    }
    let n = kts.len() as f64;
    let mean = kts.iter().sum::<f64>() / n;
    let var = kts.iter().map(|k| (k - mean).powi(2)).sum::<f64>() / n;
    let cov = kts
        .windows(2)
        .map(|w| (w[0] - mean) * (w[1] - mean))
        .sum::<f64>()
        / (n - 1.0);
    let rho = cov / var;
    assert!((mean - 0.5).abs() < 0.01, "{mean}");
    // A BCR distribution at K̄ = 0.5 has a standard deviation around 0.17-0.2.
    assert!((0.12..0.25).contains(&var.sqrt()), "{}", var.sqrt());
    assert!(
        (solar::DAILY_PERSISTENCE - 0.1..solar::DAILY_PERSISTENCE + 0.1).contains(&rho),
        "{rho}"
    );
}

#[test]
fn hourly_clearness_shows_tag_autocorrelation() {
    // Aguiar & Collares-Pereira report lag-1 correlations of hourly k_t around 0.5-0.6 on
    // detrended data; check the synthetic daylight series is clearly autocorrelated.
    let g = grid(60);
    let site = bergamo_site(&g);
    let monthly = MonthlySolar::ClearnessIndex([0.5; 12]);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let ghi = solar::synthesize_hourly_ghi(&site, &monthly, &mut rng).unwrap();
    let mut pairs = Vec::new();
    for step in 1..ghi.len() {
        let (a, b) = (
            StepSun::of_step(&site, &g, step - 1),
            StepSun::of_step(&site, &g, step),
        );
        let (ga, gb) = (
            a.extraterrestrial_horizontal_kw_per_m2,
            b.extraterrestrial_horizontal_kw_per_m2,
        );
        if a.cos_zenith_mid > 0.3 && b.cos_zenith_mid > 0.3 && step / 24 == (step - 1) / 24 {
            pairs.push((ghi[step - 1] / ga, ghi[step] / gb));
        }
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov = pairs.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>();
    let vx = pairs.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    let vy = pairs.iter().map(|p| (p.1 - my).powi(2)).sum::<f64>();
    let r = cov / (vx * vy).sqrt();
    // Includes the day-to-day variation, so higher than the within-day TAG value.
    assert!((0.5..0.98).contains(&r), "{r}");
}

#[test]
fn fifteen_minute_grid_keeps_each_hours_energy() {
    let g60 = grid(60);
    let g15 = grid(15);
    let site = bergamo_site(&g60);
    let monthly = MonthlySolar::RadiationKwhPerM2Day(solar::BERGAMO_GHI_KWH_PER_M2_DAY);
    let hourly = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g60, 5).unwrap();
    let quarter = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g15, 5).unwrap();
    assert_eq!(quarter.len(), 35040);
    for (h, &v) in hourly.iter().enumerate() {
        let e: f64 = quarter[h * 4..h * 4 + 4].iter().sum::<f64>() / 4.0;
        assert!((e - v).abs() < 1e-12, "hour {h}: {e} vs {v}");
    }
    // The PV output at 15 minutes integrates to almost the hourly result.
    let array = PvArrayConfig::with_capacity(1.0).to_array();
    let t60 = solar::monthly_to_grid(&solar::BERGAMO_TEMPERATURE_C, &g60);
    let t15 = solar::monthly_to_grid(&solar::BERGAMO_TEMPERATURE_C, &g15);
    let e60: f64 = solar::pv_power_kw(&array, &site, &hourly, &t60, &g60)
        .iter()
        .sum();
    let e15: f64 = solar::pv_power_kw(&array, &site, &quarter, &t15, &g15)
        .iter()
        .sum::<f64>()
        * 0.25;
    assert!((e15 - e60).abs() < 0.02 * e60, "{e15} vs {e60}");
}

#[test]
fn bergamo_default_specific_yield_is_in_the_northern_italy_range() {
    // markets-vpp-climate.md §4.2: PV yield in North Italy ≈ 1,100–1,200 kWh/kWp/yr.
    let g = grid(60);
    let site = bergamo_site(&g);
    let config = solar::SolarResourceConfig::default();
    let monthly = config.monthly().unwrap();
    let temperature = solar::monthly_to_grid(&config.monthly_temperature_c, &g);
    let array = PvArrayConfig::with_capacity(1.0).to_array();
    assert_eq!((array.tilt_deg, array.azimuth_deg), (30.0, 0.0));
    for seed in 0..4 {
        let ghi = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, seed).unwrap();
        let annual_ghi: f64 = ghi.iter().sum();
        assert!((1350.0..1450.0).contains(&annual_ghi), "{annual_ghi}");
        let yield_kwh_per_kwp: f64 = solar::pv_power_kw(&array, &site, &ghi, &temperature, &g)
            .iter()
            .sum();
        assert!(
            (1100.0..=1200.0).contains(&yield_kwh_per_kwp),
            "seed {seed}: {yield_kwh_per_kwp} kWh/kWp"
        );
    }
}

#[test]
fn orientation_behaves() {
    // South beats east, west and north at 45° N; a steeper tilt loses summer but gains winter.
    let g = grid(60);
    let site = bergamo_site(&g);
    let monthly = MonthlySolar::RadiationKwhPerM2Day(solar::BERGAMO_GHI_KWH_PER_M2_DAY);
    let ghi = solar::synthesize_ghi_kw_per_m2(&site, &monthly, &g, 1).unwrap();
    let t = solar::monthly_to_grid(&solar::BERGAMO_TEMPERATURE_C, &g);
    let energy = |tilt: f64, az: f64| -> f64 {
        let mut c = PvArrayConfig::with_capacity(1.0);
        c.tilt_deg = tilt;
        c.azimuth_deg = az;
        solar::pv_power_kw(&c.to_array(), &site, &ghi, &t, &g)
            .iter()
            .sum()
    };
    let south = energy(30.0, 0.0);
    assert!(south > energy(30.0, -90.0));
    assert!(south > energy(30.0, 90.0));
    assert!(energy(30.0, -90.0) > energy(30.0, 180.0));
    assert!(south > energy(0.0, 0.0));
    assert!(energy(90.0, 0.0) < south);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let g = grid(60);
    let site = bergamo_site(&g);
    let mut k = [0.5; 12];
    k[3] = 1.2;
    let err = solar::synthesize_ghi_kw_per_m2(&site, &MonthlySolar::ClearnessIndex(k), &g, 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("month 4"), "{err}");
    let mut h = solar::BERGAMO_GHI_KWH_PER_M2_DAY;
    h[0] = f64::NAN;
    assert!(
        solar::synthesize_ghi_kw_per_m2(&site, &MonthlySolar::RadiationKwhPerM2Day(h), &g, 1)
            .is_err()
    );
}

#[test]
fn config_parses_validates_and_rejects_unknown_fields() {
    let c: solar::SolarResourceConfig = serde_json::from_str(
        r#"{"monthly_clearness_index":[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}"#,
    )
    .unwrap();
    assert!(c.validate("site.solar").is_empty());
    assert_eq!(c.monthly_temperature_c, solar::BERGAMO_TEMPERATURE_C);
    assert!(serde_json::from_str::<solar::SolarResourceConfig>(r#"{"ghi":[1]}"#).is_err());
    let both = solar::SolarResourceConfig {
        monthly_clearness_index: Some([0.5; 12]),
        ..Default::default()
    };
    let errs = both.validate("site.solar");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "site.solar");
    let file: solar::SolarResourceConfig =
        serde_json::from_str(r#"{"weather_file":{"path":"bergamo.epw","format":"epw"}}"#).unwrap();
    assert!(file.validate("s").is_empty());
    let array: PvArrayConfig = serde_json::from_str(r#"{"capacity_kwp":6.0}"#).unwrap();
    assert_eq!(array, PvArrayConfig::with_capacity(6.0));
    assert!(array.validate("prosumers[0].pv[0]").is_empty());
    let bad: PvArrayConfig =
        serde_json::from_str(r#"{"capacity_kwp":-1,"tilt_deg":95,"derating_pct":120}"#).unwrap();
    let errs = bad.validate("pv");
    let paths: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(paths, ["pv.capacity_kwp", "pv.tilt_deg", "pv.derating_pct"]);
    assert!(serde_json::from_str::<PvArrayConfig>(r#"{"capacity_kwp":1,"kwp":2}"#).is_err());
}
