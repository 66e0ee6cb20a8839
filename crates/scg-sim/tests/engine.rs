//! Load metrics against hand-computed values; the engine's determinism and seeding contract.
#![allow(clippy::unwrap_used)]

use scg_model::{ModelYear, TimeGrid, TimeSettings, builtin};
use scg_sim::metrics::{daily_profile, load_stats, seasonal_profile};
use scg_sim::year::FlowSeries;
use scg_sim::{prosumer_seed, resolve_loads, simulate_scenario};

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

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn stats_of_a_flat_year_with_one_spike() {
    let g = grid(60);
    let mut s = vec![1.0; 8760];
    s[100] = 5.0; // 5 January, 04:00
    let st = load_stats(&s, &g);
    assert!(close(st.energy_kwh, 8764.0));
    assert!(close(st.average_kw, 8764.0 / 8760.0));
    assert!(close(st.average_kwh_per_day, 24.0 * 8764.0 / 8760.0));
    assert_eq!(st.peak_kw, 5.0);
    assert_eq!(st.min_kw, 1.0);
    let rms = ((8759.0 + 25.0) / 8760.0f64).sqrt();
    assert!(close(st.rms_kw, rms));
    assert!(close(st.load_factor, 8764.0 / 8760.0 / 5.0));
    assert!(close(st.crest_factor, 5.0 / rms));
    assert_eq!(st.peak_month, 1);
    assert_eq!(st.peak_timestamp, "2007-01-05T04:00:00+01:00");

    let seasonal = seasonal_profile(&s, &g);
    assert_eq!(seasonal[0].max_kw, 5.0);
    assert_eq!(seasonal[0].min_kw, 1.0);
    assert!(close(seasonal[0].daily_high_average_kw, 35.0 / 31.0));
    assert!(close(seasonal[0].daily_low_average_kw, 1.0));
    assert!(close(seasonal[0].average_kw, (744.0 + 4.0) / 744.0));
    assert_eq!(seasonal[6].max_kw, 1.0);

    let daily = daily_profile(&s, &g);
    assert!(close(daily[0][4], 35.0 / 31.0));
    assert!(close(daily[0][5], 1.0));
    assert!(close(daily[1][4], 1.0));
}

#[test]
fn peak_month_and_quarter_hour_daily_profile() {
    let g = grid(15);
    let mut s = vec![2.0; g.len()];
    let july_20_noon = (181 + 19) * 96 + 12 * 4 + 2; // 20 July 12:30
    s[july_20_noon] = 10.0;
    let st = load_stats(&s, &g);
    assert_eq!(st.peak_month, 7);
    assert_eq!(st.peak_timestamp, "2007-07-20T12:30:00+01:00");
    assert!(close(st.energy_kwh, (g.len() as f64 * 2.0 + 8.0) * 0.25));
    let daily = daily_profile(&s, &g);
    // The hour 12 mean on 20 July is (2+2+10+2)/4 = 4; the July mean of hour 12 is (30·2 + 4)/31.
    assert!(close(daily[6][12], (60.0 + 4.0) / 31.0));
}

#[test]
fn all_zero_series_gives_zero_ratios_not_nan() {
    let g = grid(60);
    let st = load_stats(&vec![0.0; 8760], &g);
    assert_eq!(st.load_factor, 0.0);
    assert_eq!(st.crest_factor, 0.0);
}

fn run(seed: u64) -> scg_sim::SimResult {
    let s = builtin::bergamo().unwrap();
    simulate_scenario(
        &s,
        &mut |p| Err(format!("unexpected read of {}", p.display())),
        seed,
        &mut |_, _| {},
    )
    .unwrap()
}

#[test]
fn same_seed_same_year() {
    assert_eq!(run(2019), run(2019));
    assert_ne!(run(2019).community.load_kw, run(2020).community.load_kw);
}

#[test]
fn community_is_the_sum_and_apartment_hits_the_papers_average() {
    // The paper's average is the HOMER load's: without the apartment's home agent (managed,
    // its water heaters change the year's energy a little; tests/home.rs covers it).
    let mut s = builtin::bergamo().unwrap();
    s.prosumers[0].home = None;
    let r = simulate_scenario(&s, &mut |_| Err("no files".into()), 1, &mut |_, _| {}).unwrap();
    for t in [0, 1234, 8759] {
        let sum: f64 = r.prosumers.iter().map(|p| p.load.load_kw[t]).sum();
        assert!(close(r.community.load_kw[t], sum));
    }
    let apartment = &r.prosumers[0];
    assert_eq!(apartment.id, "apartment");
    assert!((apartment.load_report.scaled.average_kwh_per_day - 614.12).abs() < 1e-9);
    // The noise raises the peak above the baseline's (homer.md §1.1).
    assert!(
        apartment.load_report.scaled.peak_kw
            > apartment.load_report.baseline.peak_kw * 614.12
                / apartment.load_report.baseline.average_kwh_per_day
    );
}

#[test]
fn a_prosumers_stream_does_not_depend_on_the_others() {
    let mut s = builtin::bergamo().unwrap();
    let full = simulate_scenario(&s, &mut |_| Err("no files".into()), 5, &mut |_, _| {}).unwrap();
    s.prosumers.remove(0);
    let fewer = simulate_scenario(&s, &mut |_| Err("no files".into()), 5, &mut |_, _| {}).unwrap();
    assert_eq!(full.prosumers[2].load, fewer.prosumers[1].load);
    assert_ne!(prosumer_seed(5, "office"), prosumer_seed(5, "school"));
}

#[test]
fn missing_files_are_reported_with_their_path() {
    let text = builtin::BERGAMO_TOML.replace(
        "type = \"synthetic\"\nprofile = \"small_office\"\nday_to_day_variability_pct = 7.946\ntimestep_variability_pct = 7.946",
        "type = \"time_series\"\nfile = \"office.csv\"",
    );
    let s = scg_model::Scenario::from_toml_str(&text, "t.toml").unwrap();
    let e = resolve_loads(&s, &mut |p| Err(format!("cannot open {}", p.display()))).unwrap_err();
    assert_eq!(e.to_string(), "office.csv: cannot open office.csv");
}

#[test]
fn the_market_replaces_pro_rata_without_changing_the_physics() {
    let with_fee = builtin::BERGAMO_TOML.replace(
        "market = { mechanism = \"pay_as_clear\", fee_eur_per_mwh = 0.0 }",
        "market = { mechanism = \"pay_as_clear\", fee_eur_per_mwh = 10.0 }",
    );
    let pro_rata = builtin::BERGAMO_TOML.replace(
        "market = { mechanism = \"pay_as_clear\", fee_eur_per_mwh = 0.0 }",
        "",
    );
    let run = |text: &str| {
        let s = scg_model::Scenario::from_toml_str(text, "t.toml").unwrap();
        simulate_scenario(&s, &mut |_| Err("no files".into()), 3, &mut |_, _| {}).unwrap()
    };
    let (m, p) = (run(&with_fee), run(&pro_rata));
    let market = m.community.market.as_ref().unwrap();
    assert!(p.community.market.is_none());
    // Retail - fee stays above feed-in, so the market clears what pro rata shares (to the Wh).
    let steps = m.grid.len() as f64;
    assert!(
        (m.community.energy.p2p_import_kwh - p.community.energy.p2p_import_kwh).abs()
            <= 0.0005 * steps
    );
    assert!((market.p2p_volume_kwh - m.community.energy.p2p_import_kwh).abs() <= 0.0005 * steps);
    // The buyer pays the fee on top of what the seller receives.
    let paid: f64 = market.paid_eur.iter().sum();
    let received: f64 = market.received_eur.iter().sum();
    assert!((paid - received - market.grid_fees_eur).abs() < 1e-6);
    assert!((market.grid_fees_eur - market.p2p_volume_kwh * 10.0 / 1000.0).abs() < 1e-6);
    // Energy balance closes for every prosumer at every step.
    for r in &m.prosumers {
        let f = &r.flows;
        for t in (0..m.grid.len()).step_by(97) {
            // An all-zero flow is kept empty (FlowSeries::at reads it as 0).
            let at = |v: &[f64]| FlowSeries::at(v, t);
            let sources = at(&f.pv_kw)
                + at(&f.wind_kw)
                + at(&f.battery_out_kw)
                + at(&f.p2p_import_kw)
                + at(&f.grid_import_kw)
                + at(&f.unmet_kw)
                + at(&f.v2g_kw);
            let uses = r.load.load_kw[t]
                + at(&f.ev_kw)
                + at(&f.battery_in_kw)
                + at(&f.p2p_export_kw)
                + at(&f.grid_export_kw)
                + at(&f.excess_kw);
            assert!(
                (sources - uses).abs() < 1e-9 * uses.max(1.0),
                "{} step {t}",
                r.id
            );
        }
    }
}

#[test]
fn an_off_grid_community_with_a_market_simulates() {
    // The sizing search may pick an off-grid winner: the market then trades between neighbours
    // and what is left is excess or unmet (this used to be refused).
    let off_grid = builtin::BERGAMO_TOML.replace(
        "[grid]\n",
        "[grid]\nmax_purchase_kw = 0.0\nmax_sale_kw = 0.0\n",
    );
    let s = scg_model::Scenario::from_toml_str(&off_grid, "t.toml").unwrap();
    let r = simulate_scenario(&s, &mut |_| Err("no files".into()), 3, &mut |_, _| {}).unwrap();
    let e = &r.community.energy;
    assert_eq!(e.grid_import_kwh, 0.0);
    assert_eq!(e.grid_export_kwh, 0.0);
    assert!(e.unmet_kwh > 0.0 && e.excess_kwh > 0.0);
    let market = r.community.market.as_ref().unwrap();
    assert!(market.p2p_volume_kwh > 0.0);
    assert!((market.p2p_volume_kwh - e.p2p_import_kwh).abs() <= 0.0005 * r.grid.len() as f64);
}
