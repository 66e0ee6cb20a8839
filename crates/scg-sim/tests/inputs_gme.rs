//! `community.zonal_price_gme_files`: GME XML files become the simulation's hourly zonal prices.
#![allow(clippy::unwrap_used)]

use scg_sim::assets::Assets;
use scg_sim::inputs::resolve_inputs;
use std::path::{Path, PathBuf};

/// One MGP hourly file per month of 2007 (the "homer" year); NORD = 100 × day of month + Ora.
fn month_file(month: u32) -> String {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut s = String::from("<NewDataSet>\n");
    for day in 1..=DAYS[month as usize - 1] {
        let hours = scg_resource::gme::GmeDate {
            year: 2007,
            month,
            day,
        }
        .hours_in_italy();
        for ora in 1..=hours {
            s.push_str(&format!(
                "<Prezzi><Data>2007{month:02}{day:02}</Data><Mercato>MGP</Mercato><Ora>{ora}</Ora>\
                 <PUN>1,0</PUN><NORD>{}</NORD></Prezzi>\n",
                100 * day + ora
            ));
        }
    }
    s.push_str("</NewDataSet>\n");
    s
}

#[test]
fn gme_files_give_the_hourly_zonal_prices_and_gaps_are_refused() {
    let mut scenario = scg_model::builtin::bergamo().unwrap();
    scenario.community.zonal_price_gme_files = (1..=12)
        .map(|m| PathBuf::from(format!("{m}.xml")))
        .collect();
    let assets = Assets::from_scenario(&scenario).unwrap();
    let mut read = |p: &Path| -> Result<String, String> {
        let m: u32 = p
            .to_str()
            .unwrap()
            .trim_end_matches(".xml")
            .parse()
            .unwrap();
        Ok(month_file(m))
    };
    let inputs = resolve_inputs(&scenario, &assets, &mut read).unwrap();
    let prices = inputs.zonal_prices_eur_per_mwh.unwrap();
    assert_eq!(prices.len(), 8760);
    assert_eq!(prices[0], 101.0);
    // 1 July 2007 (day 182) 12:00 standard = 13:00 summer time = Ora 14.
    assert_eq!(prices[181 * 24 + 12], 114.0);

    scenario.community.zonal_price_gme_files.pop();
    let e = resolve_inputs(&scenario, &assets, &mut read)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("31 of the 365 days") && e.contains("2007-12-01"),
        "{e}"
    );
}

/// One 15-minute MGP file per month of 2007; NORD = 1000 × day of month + Periodo.
fn quarter_month_file(month: u32) -> String {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut s = String::from("<NewDataSet>\n");
    for day in 1..=DAYS[month as usize - 1] {
        let date = scg_resource::gme::GmeDate {
            year: 2007,
            month,
            day,
        };
        for p in 1..=4 * date.hours_in_italy() {
            s.push_str(&format!(
                "<Prezzi15><Data>2007{month:02}{day:02}</Data><Mercato>MGP</Mercato>\
                 <Granularity>PT15</Granularity><Periodo>{p}</Periodo><PUN>1,0</PUN>\
                 <NORD>{}</NORD></Prezzi15>\n",
                1000 * day + p
            ));
        }
    }
    s.push_str("</NewDataSet>\n");
    s
}

#[test]
fn quarter_hour_files_give_the_15_minute_prices_as_published() {
    let mut scenario = scg_model::builtin::bergamo().unwrap();
    scenario.time.step_minutes = 15;
    scenario.community.zonal_price_gme_files = (1..=12)
        .map(|m| PathBuf::from(format!("{m}.xml")))
        .collect();
    let assets = Assets::from_scenario(&scenario).unwrap();
    let mut read = |p: &Path| -> Result<String, String> {
        let m: u32 = p
            .to_str()
            .unwrap()
            .trim_end_matches(".xml")
            .parse()
            .unwrap();
        Ok(quarter_month_file(m))
    };
    let inputs = resolve_inputs(&scenario, &assets, &mut read).unwrap();
    let prices = inputs.zonal_prices_eur_per_mwh.unwrap();
    assert_eq!(prices.len(), 35_040);
    assert_eq!(prices[..4], [1001.0, 1002.0, 1003.0, 1004.0]);
    // 1 July 2007 12:00 standard = 13:00 summer time = Periodi 53..56.
    let at = (181 * 24 + 12) * 4;
    assert_eq!(prices[at..at + 4], [1053.0, 1054.0, 1055.0, 1056.0]);

    // At 60-minute steps the same files give each hour the mean of its quarters.
    scenario.time.step_minutes = 60;
    let hourly = resolve_inputs(&scenario, &assets, &mut read)
        .unwrap()
        .zonal_prices_eur_per_mwh
        .unwrap();
    assert_eq!(hourly.len(), 8760);
    assert_eq!(hourly[181 * 24 + 12], 1054.5);
}
