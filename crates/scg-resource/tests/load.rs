//! HOMER synthetic load: variability statistics, scaling, determinism, 15-minute reconstruction,
//! imports and their errors.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::load::{self, Variability};
use scg_resource::profiles::{self, MonthlyProfiles};

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

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[test]
fn day_factor_is_constant_within_a_day_and_has_the_given_std() {
    let g = grid(60);
    let ones = vec![1.0; g.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let v = Variability {
        day_to_day: 0.10,
        timestep: 0.0,
    };
    // Pool several years so the tolerance can be tight: 10 × 365 daily draws, the standard
    // error of the sample std is 0.1/sqrt(2·3650) ≈ 0.0012; allow 4 standard errors.
    let mut daily = Vec::new();
    for _ in 0..10 {
        let f = load::apply_variability(&ones, &g, v, &mut rng);
        for day in f.chunks(24) {
            assert!(
                day.iter().all(|x| *x == day[0]),
                "factor varies within a day"
            );
            daily.push(day[0] - 1.0);
        }
    }
    let (mean, std) = mean_std(&daily);
    assert!(
        mean.abs() < 4.0 * 0.1 / (daily.len() as f64).sqrt(),
        "mean {mean}"
    );
    assert!((std - 0.10).abs() < 0.005, "std {std}");
}

#[test]
fn timestep_factor_has_the_given_std_and_unit_mean() {
    let g = grid(15);
    let ones = vec![1.0; g.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let f = load::apply_variability(
        &ones,
        &g,
        Variability {
            day_to_day: 0.0,
            timestep: 0.08,
        },
        &mut rng,
    );
    let (mean, std) = mean_std(&f);
    // 35040 draws: s.e. of the mean 0.00043, of the std 0.0003.
    assert!((mean - 1.0).abs() < 0.002, "mean {mean}");
    assert!((std - 0.08).abs() < 0.0015, "std {std}");
}

#[test]
fn combined_factor_std_is_the_root_sum_of_squares() {
    let g = grid(15);
    let ones = vec![1.0; g.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let v = Variability {
        day_to_day: 0.07946,
        timestep: 0.07946,
    };
    let f = load::apply_variability(&ones, &g, v, &mut rng);
    let (_, std) = mean_std(&f);
    let expected = (2.0f64).sqrt() * 0.07946;
    // Dominated by 365 daily draws: s.e. ≈ 0.0794/sqrt(730) ≈ 0.003; allow 4 s.e.
    assert!((std - expected).abs() < 0.012, "std {std} vs {expected}");
}

#[test]
fn negative_factors_are_clamped_to_zero() {
    let g = grid(60);
    let ones = vec![1.0; g.len()];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let f = load::apply_variability(
        &ones,
        &g,
        Variability {
            day_to_day: 0.0,
            timestep: 1.0,
        },
        &mut rng,
    );
    assert!(f.iter().all(|x| *x >= 0.0));
    assert!(f.contains(&0.0), "with sigma 1 some factors must clamp");
}

#[test]
fn scaling_hits_the_scaled_average_exactly() {
    let apartment = profiles::builtin("midrise_apartment").unwrap();
    for step in [60, 15] {
        let g = grid(step);
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let v = Variability {
            day_to_day: 0.07946,
            timestep: 0.07946,
        };
        let year =
            load::synthesize(&apartment, &g, v, Some(614.12), &mut rng, "apartment").unwrap();
        let avg = load::average_kwh_per_day(&year.load_kw, g.step_hours());
        assert!((avg - 614.12).abs() < 1e-9, "average {avg}");
        assert_eq!(year.load_kw.len(), g.len());
    }
}

#[test]
fn without_a_scaled_average_the_baseline_average_is_kept() {
    let office = profiles::builtin("small_office").unwrap();
    let g = grid(60);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let v = Variability {
        day_to_day: 0.1,
        timestep: 0.2,
    };
    let year = load::synthesize(&office, &g, v, None, &mut rng, "office").unwrap();
    let base = load::average_kwh_per_day(&year.baseline_kw, 1.0);
    let avg = load::average_kwh_per_day(&year.load_kw, 1.0);
    assert!((avg - base).abs() < 1e-9 * base);
}

#[test]
fn same_seed_same_series_other_seed_other_series() {
    let p = profiles::builtin("supermarket").unwrap();
    let g = grid(60);
    let v = Variability {
        day_to_day: 0.05,
        timestep: 0.05,
    };
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        load::synthesize(&p, &g, v, None, &mut rng, "s")
            .unwrap()
            .load_kw
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn baseline_follows_month_and_day_type() {
    let apartment = profiles::builtin("midrise_apartment").unwrap();
    let g = grid(60);
    let b = load::baseline_from_profiles(&apartment, &g);
    // 1 January 2007 (HOMER) is a Monday: the January weekday profile, hour 0 = 17.92 kW.
    assert_eq!(b[0], 17.92);
    // 6 January is a Saturday: January weekend profile, hour 0 = 18.45 kW (Table II).
    assert_eq!(b[5 * 24], 18.45);
    assert_eq!(b[5 * 24 + 18], apartment.weekend_kw[0][18]);
    // 1 February (day 31) is a Thursday.
    assert_eq!(b[31 * 24 + 7], apartment.weekday_kw[1][7]);
}

#[test]
fn quarter_hour_reconstruction_of_a_ramp_is_linear() {
    let g = grid(15);
    let hourly: Vec<f64> = (0..8760).map(|h| (h % 24) as f64).collect();
    let q = load::hourly_to_grid(&hourly, &g);
    // Inside the ramp 0..23, hour 5 (value 5): slope 1 kW/h, sub-step midpoints at ±0.125, ±0.375 h.
    assert_eq!(&q[20..24], &[4.625, 4.875, 5.125, 5.375]);
    // At the local maximum (hour 23 → next day 0) the slope is limited to zero.
    assert_eq!(&q[23 * 4..24 * 4], &[23.0; 4]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn reconstruction_keeps_each_hours_energy_and_creates_no_new_extrema(
        values in proptest::collection::vec(0.0f64..100.0, 8760)
    ) {
        let g = grid(15);
        let q = load::hourly_to_grid(&values, &g);
        for (h, chunk) in q.chunks(4).enumerate() {
            let mean = chunk.iter().sum::<f64>() / 4.0;
            prop_assert!((mean - values[h]).abs() < 1e-9);
            let lo = values[h.saturating_sub(1)].min(values[h]).min(values[(h + 1).min(8759)]);
            let hi = values[h.saturating_sub(1)].max(values[h]).max(values[(h + 1).min(8759)]);
            for x in chunk {
                prop_assert!(*x >= lo - 1e-9 && *x <= hi + 1e-9);
            }
        }
    }
}

#[test]
fn derivation_averages_by_month_day_type_and_hour() {
    // A year starting on Sunday whose value encodes month, day type and hour, plus a
    // day-of-month wobble that averages out to a known amount.
    let days = profiles::DAYS_IN_MONTH;
    let mut series = Vec::new();
    let mut day = 0usize;
    for (m, &n) in days.iter().enumerate() {
        for _ in 0..n {
            let weekend = matches!(day % 7, 0 | 6); // day 0 Sunday, day 6 Saturday
            for h in 0..24 {
                series.push((m * 100 + h) as f64 + if weekend { 1000.0 } else { 0.0 });
            }
            day += 1;
        }
    }
    let p = profiles::derive_monthly_profiles(&series, scg_model::Weekday::Sunday, "t").unwrap();
    for m in 0..12 {
        for h in 0..24 {
            assert_eq!(p.weekday_kw[m][h], (m * 100 + h) as f64);
            assert_eq!(p.weekend_kw[m][h], (m * 100 + h) as f64 + 1000.0);
        }
    }
    assert!(
        profiles::derive_monthly_profiles(&series[..100], scg_model::Weekday::Sunday, "t").is_err()
    );
}

#[test]
fn derivation_means_are_exact_for_january() {
    // January 2006-like year starting Sunday: weekend days are 1,7,8,14,15,21,22,28,29 (9 days).
    let mut series = vec![0.0; 8760];
    for d in 0..31 {
        series[d * 24] = d as f64; // hour 0 carries the day index
    }
    let p = profiles::derive_monthly_profiles(&series, scg_model::Weekday::Sunday, "t").unwrap();
    let weekend_days = [0.0, 6.0, 7.0, 13.0, 14.0, 20.0, 21.0, 27.0, 28.0];
    let weekend_mean = weekend_days.iter().sum::<f64>() / 9.0;
    let weekday_mean = ((0..31).sum::<usize>() as f64 - weekend_days.iter().sum::<f64>()) / 22.0;
    assert!((p.weekend_kw[0][0] - weekend_mean).abs() < 1e-12);
    assert!((p.weekday_kw[0][0] - weekday_mean).abs() < 1e-12);
}

#[test]
fn builtin_library_covers_the_scenario_names_and_matches_published_stats() {
    for name in scg_model::builtin::PROFILE_NAMES {
        let p = profiles::builtin(name).unwrap();
        assert!(p.weekday_kw.iter().flatten().all(|v| *v > 0.0), "{name}");
    }
    // Derived tables keep the DOE annual energy (Baltimore): average over a Sunday-first year.
    let g = grid(60);
    let expect = [
        ("quick_service_restaurant", 528.3),
        ("small_office", 235.9),
        ("supermarket", 5530.8),
        ("secondary_school", 7394.5),
    ];
    for (name, kwh_per_day) in expect {
        let p = profiles::builtin(name).unwrap();
        let avg = load::average_kwh_per_day(&load::baseline_from_profiles(&p, &g), 1.0);
        // The HOMER year starts on Monday, the DOE year on Sunday: weekend days shift by one,
        // and the tables are rounded to 1 W; allow 1 %.
        assert!(
            (avg / kwh_per_day - 1.0).abs() < 0.01,
            "{name}: {avg} vs {kwh_per_day}"
        );
    }
}

#[test]
fn profile_csv_errors_name_the_line() {
    let good = profiles::builtin_csv("small_office").unwrap();
    let bad_type = good.replacen("1,weekend,0,", "1,holiday,0,", 1);
    let e = profiles::parse_profile_csv(&bad_type, "p.csv")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("p.csv:26: day_type must be"), "{e}");
    let dup = good.replacen("1,weekday,1,", "1,weekday,0,", 1);
    let e = profiles::parse_profile_csv(&dup, "p.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("p.csv:3: duplicate row for month 1, weekday, hour 0"),
        "{e}"
    );
    let e = profiles::parse_profile_csv("month,hour,load_kw\n", "p.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing column `day_type`"), "{e}");
    let neg = good.replacen("1,weekday,0,", "1,weekday,0,-", 1);
    let e = profiles::parse_profile_csv(&neg, "p.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("p.csv:2: load_kw must be >= 0"), "{e}");
    let short: String = good.lines().take(100).collect::<Vec<_>>().join("\n");
    let e = profiles::parse_profile_csv(&short, "p.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs 288 weekday rows"), "{e}");
}

#[test]
fn profiles_round_trip_through_csv() {
    let p = profiles::builtin("supermarket").unwrap();
    let again = profiles::parse_profile_csv(&p.to_csv(), "x").unwrap();
    assert_eq!(p, again);
    let inline = MonthlyProfiles::from_tables(&vec![vec![1.0; 24]; 12], None, "inline").unwrap();
    assert_eq!(inline.weekend_kw, inline.weekday_kw);
}

#[test]
fn one_column_csv_with_and_without_header() {
    let plain: String = (0..8760).map(|i| format!("{}\n", i % 10)).collect();
    let v = load::parse_load_csv(&plain, "a.csv", None).unwrap();
    assert_eq!(v.len(), 8760);
    assert_eq!(v[13], 3.0);
    let with_header = format!("load_kw\n{plain}");
    assert_eq!(
        load::parse_load_csv(&with_header, "a.csv", None).unwrap(),
        v
    );
}

#[test]
fn openei_csv_reads_the_facility_column() {
    let mut text =
        String::from("Date/Time,Electricity:Facility [kW](Hourly),Gas:Facility [kW](Hourly)\n");
    for h in 0..8760 {
        text.push_str(&format!(" 01/01  {:02}:00:00,{}.5,9\n", h % 24 + 1, h % 7));
    }
    let v = load::parse_load_csv(&text, "openei.csv", None).unwrap();
    assert_eq!(v.len(), 8760);
    assert_eq!(v[3], 3.5);
    let g = grid(60);
    let year = load::imported(&v, &g, Some(100.0), "openei.csv").unwrap();
    assert_eq!(year.baseline_kw, v, "imports get no noise");
    assert!((load::average_kwh_per_day(&year.load_kw, 1.0) - 100.0).abs() < 1e-9);
    let gas = load::parse_load_csv(&text, "openei.csv", Some("Gas:Facility [kW](Hourly)")).unwrap();
    assert!(gas.iter().all(|x| *x == 9.0));
}

#[test]
fn bad_load_files_get_clear_errors() {
    let e = load::parse_load_csv("1\n2\nabc\n4\n", "b.csv", None)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "b.csv:3: expected a number (kW), got \"abc\"");
    let e = load::parse_load_csv("1\n-2\n", "b.csv", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("b.csv:2: load must be between 0 and 1000000 kW, got -2.0"),
        "{e}"
    );
    // Prices have the scenario's own bound (±10,000 EUR/MWh), and fields are cut at 80 chars.
    let e = load::parse_price_csv("1\n-1e300\n", "p.csv", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("p.csv:2: price must be between -10000 and 10000"),
        "{e}"
    );
    let long = "x".repeat(10_000);
    let e = load::parse_load_csv(&format!("1\n{long}\n"), "b.csv", None)
        .unwrap_err()
        .to_string();
    assert!(e.len() < 200, "{e}");
    let e = load::parse_load_csv("a,b\n1,2\n", "b.csv", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot tell which column"), "{e}");
    let e = load::parse_load_csv("a,b\n1,2\n", "b.csv", Some("c"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column \"c\"; columns are a, b"), "{e}");
    let e = load::parse_load_csv("", "b.csv", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let e = load::parse_load_csv("1,2\n", "b.csv", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exactly one column"), "{e}");
    let g = grid(60);
    let e = load::series_to_grid(&[1.0; 100], &g, "b.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs 8760 hourly or 35040 15-minute values, got 100"),
        "{e}"
    );
}

#[test]
fn quarter_hour_series_on_an_hourly_grid_is_averaged() {
    let g = grid(60);
    let q: Vec<f64> = (0..35040).map(|i| (i % 4) as f64).collect();
    let h = load::series_to_grid(&q, &g, "q").unwrap();
    assert_eq!(h.len(), 8760);
    assert!(h.iter().all(|x| *x == 1.5));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn load_csv_parser_never_panics(text in "[0-9a-z,.\\-\n\" ]{0,300}") {
        let _ = load::parse_load_csv(&text, "fuzz.csv", None);
        let _ = profiles::parse_profile_csv(&text, "fuzz.csv");
    }
}

proptest! {
    /// A perturbation drawn a run of steps at a time (how a city's year reads its members'
    /// loads) is `apply_variability`'s, bit for bit, whatever the runs.
    #[test]
    fn a_perturbation_drawn_in_runs_is_the_years(
        seed in any::<u64>(),
        runs in proptest::collection::vec(1usize..300, 1..40),
        quarter in any::<bool>(),
    ) {
        let g = grid(if quarter { 15 } else { 60 });
        let baseline: Vec<f64> = (0..g.len()).map(|t| 1.0 + (t % 7) as f64 * 0.25).collect();
        let v = Variability { day_to_day: 0.15, timestep: 0.2 };
        let year = load::apply_variability(&baseline, &g, v, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut p = load::Perturbation::new(v, g.steps_per_day(), ChaCha8Rng::seed_from_u64(seed));
        let mut drawn = Vec::new();
        for run in runs.iter().cycle() {
            let first = drawn.len();
            if first == g.len() {
                break;
            }
            prop_assert_eq!(p.step(), first);
            let len = (*run).min(g.len() - first);
            let mut out = vec![0.0; len];
            p.fill(&baseline[first..first + len], &mut out);
            drawn.extend(out);
        }
        let bits = |x: &[f64]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&drawn), bits(&year));
    }
}
