//! The GME importer against the real 30 August 2021 MGP file and malformed variants of it.
#![allow(clippy::unwrap_used)]

use scg_resource::gme::{self, GmeDate, GmeError, Granularity, parse_prices};

const REAL: &str = include_str!("data/gme/20210830MGPPrezzi.xml");

#[test]
fn real_file_parses_with_hand_checked_values() {
    let prices = parse_prices(REAL, "20210830MGPPrezzi.xml").unwrap();
    assert_eq!(prices.series.len(), 1);
    let s = &prices.series[0];
    assert_eq!(s.date.to_string(), "2021-08-30");
    assert_eq!(s.market, "MGP");
    assert_eq!(s.granularity, Granularity::Hourly);
    assert_eq!(s.periods.len(), 24);
    // Values read off the file: Ora 1 PUN 114,905680 and NORD 104,510000; Ora 24 PUN
    // 123,941600, NORD 123,050000, SICI 135,800000.
    let pun = s.prices("PUN").unwrap();
    let nord = s.prices("NORD").unwrap();
    assert!((pun[0] - 114.90568).abs() < 1e-9);
    assert!((nord[0] - 104.51).abs() < 1e-9);
    assert!((pun[23] - 123.9416).abs() < 1e-9);
    assert!((nord[23] - 123.05).abs() < 1e-9);
    assert!((s.periods[23].zones_eur_per_mwh["SICI"] - 135.8).abs() < 1e-9);
    // The day's shape (reference notes §1.6): evening maximum at Ora 21 (147.0), morning peak
    // at Ora 9 (143.2).
    let max_hour = pun
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(max_hour + 1, 21);
    assert!((pun[8] - 143.2).abs() < 0.05);
    let q = s.quarter_hour_prices("NORD").unwrap();
    assert_eq!(q.len(), 96);
    assert_eq!(q[4..8], [nord[1]; 4]);
    assert_eq!(prices.finest().unwrap().granularity, Granularity::Hourly);
}

/// The real file with its hourly rows turned into a 15-minute day of `n` periods on `date`.
fn quarter_hour_file(date: &str, n: u32) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<NewDataSet>\n");
    for p in 1..=n {
        out.push_str(&format!(
            "  <Prezzi15>\n    <Data>{date}</Data>\n    <Mercato>MGP</Mercato>\n    \
             <Granularity>PT15</Granularity>\n    <Periodo>{p}</Periodo>\n    \
             <PUN>{},5</PUN>\n    <NORD>1.0{:02},25</NORD>\n    <SARD/>\n  </Prezzi15>\n",
            100 + p,
            p % 100
        ));
    }
    out.push_str("</NewDataSet>\n");
    out
}

#[test]
fn quarter_hour_files_and_daylight_saving_days() {
    let p = parse_prices(&quarter_hour_file("20251001", 96), "q.xml").unwrap();
    let s = p.finest().unwrap();
    assert_eq!(s.granularity, Granularity::QuarterHourly);
    assert_eq!(s.periods.len(), 96);
    assert!((s.prices("PUN").unwrap()[0] - 101.5).abs() < 1e-12);
    // "1.001,25": thousands separator and decimal comma.
    assert!((s.prices("NORD").unwrap()[0] - 1001.25).abs() < 1e-12);
    // An empty zone element is "no price", and asking for it is an error naming the period.
    let e = s.prices("SARD").unwrap_err();
    assert!(e.to_string().contains("no SARD price in period 1"), "{e}");
    // 26 October 2025 had 25 hours → 100 periods; 30 March 2025 had 23 → 92.
    assert_eq!(
        parse_prices(&quarter_hour_file("20251026", 100), "q.xml")
            .unwrap()
            .series[0]
            .periods
            .len(),
        100
    );
    assert!(parse_prices(&quarter_hour_file("20250330", 92), "q.xml").is_ok());
    let e = parse_prices(&quarter_hour_file("20250330", 96), "q.xml").unwrap_err();
    assert!(e.to_string().contains("expected periods 1..=92"), "{e}");
}

#[test]
fn hourly_day_with_23_rows_is_accepted_only_on_the_spring_change() {
    // Build 23 hourly rows for 30 March 2025 (spring forward) and for an ordinary day.
    let rows = |date: &str, n: u32| {
        let mut s = String::from("<NewDataSet>");
        for h in 1..=n {
            s.push_str(&format!(
                "<Prezzi><Data>{date}</Data><Mercato>MGP</Mercato><Ora>{h}</Ora><PUN>90,1</PUN><NORD>88,0</NORD></Prezzi>"
            ));
        }
        s.push_str("</NewDataSet>");
        s
    };
    assert!(parse_prices(&rows("20250330", 23), "x").is_ok());
    assert!(parse_prices(&rows("20251026", 25), "x").is_ok());
    let e = parse_prices(&rows("20250401", 23), "x").unwrap_err();
    assert!(matches!(e, GmeError::Invalid { .. }), "{e}");
}

#[test]
fn malformed_files_name_the_element_and_line() {
    let bad_price = REAL.replacen("<NORD>104,510000</NORD>", "<NORD>104;51</NORD>", 1);
    let e = parse_prices(&bad_price, "bad.xml").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("bad.xml:"), "{msg}");
    assert!(msg.contains("<NORD>"), "{msg}");
    assert!(msg.contains("104;51"), "{msg}");
    match e {
        GmeError::Element { line, element, .. } => {
            assert_eq!(element, "NORD");
            // The first NORD of the real file is on line 45.
            let expected = REAL
                .lines()
                .position(|l| l.contains("<NORD>104,510000</NORD>"))
                .unwrap() as u32
                + 1;
            assert_eq!(line, expected);
        }
        other => panic!("expected an element error, got {other:?}"),
    }

    let bad_date = REAL.replacen("<Data>20210830</Data>", "<Data>2021-13-30</Data>", 1);
    let e = parse_prices(&bad_date, "bad.xml").unwrap_err();
    assert!(e.to_string().contains("<Data>"), "{e}");

    let missing_hour = REAL.replacen("<Ora>5</Ora>", "", 1);
    let e = parse_prices(&missing_hour, "bad.xml").unwrap_err();
    assert!(e.to_string().contains("missing <Ora>"), "{e}");

    let dup_hour = REAL.replacen("<Ora>5</Ora>", "<Ora>4</Ora>", 1);
    let e = parse_prices(&dup_hour, "bad.xml").unwrap_err();
    assert!(e.to_string().contains("period 4"), "{e}");

    let stray = REAL.replacen("</NewDataSet>", "<Quantita/></NewDataSet>", 1);
    let e = parse_prices(&stray, "bad.xml").unwrap_err();
    assert!(e.to_string().contains("<Quantita>"), "{e}");

    let broken = &REAL[..REAL.len() - 20];
    assert!(matches!(
        parse_prices(broken, "bad.xml").unwrap_err(),
        GmeError::Xml { .. }
    ));
    assert!(parse_prices("<NewDataSet/>", "empty.xml").is_err());
    assert!(parse_prices("<Other/>", "other.xml").is_err());
}

#[test]
fn errors_convert_into_the_crate_error() {
    let e = parse_prices("<Other/>", "other.xml").unwrap_err();
    let r: scg_resource::ResourceError = e.into();
    assert!(r.to_string().contains("other.xml"));
}

/// An hourly MGP day whose NORD price is 100 × (day of month) + Ora, so every hour is traceable.
fn hourly_day(date: GmeDate) -> String {
    let mut s = String::new();
    for ora in 1..=date.hours_in_italy() {
        s.push_str(&format!(
            "  <Prezzi>\n    <Data>{:04}{:02}{:02}</Data>\n    <Mercato>MGP</Mercato>\n    \
             <Ora>{ora}</Ora>\n    <PUN>1,0</PUN>\n    <NORD>{}</NORD>\n  </Prezzi>\n",
            date.year,
            date.month,
            date.day,
            100 * date.day + ora
        ));
    }
    s
}

/// A year of 2021 as twelve monthly files.
fn year_2021() -> Vec<gme::NamedPrices> {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12u32)
        .map(|month| {
            let mut text = String::from("<NewDataSet>\n");
            for day in 1..=DAYS[month as usize - 1] {
                text.push_str(&hourly_day(GmeDate {
                    year: 2021,
                    month,
                    day,
                }));
            }
            text.push_str("</NewDataSet>\n");
            let name = format!("2021{month:02}.xml");
            let prices = gme::parse_prices(&text, &name).unwrap();
            (name, prices)
        })
        .collect()
}

#[test]
fn a_year_of_files_maps_onto_standard_hours_across_daylight_saving() {
    let year = gme::zonal_prices_on_standard_hours(&year_2021(), "NORD", 2021).unwrap();
    assert_eq!(year.len(), 8760);
    // 1 January 00:00-01:00 standard = Ora 1 of 1 January.
    assert_eq!(year[0], 101.0);
    // 2021: summer time from 28 March (day 87) 02:00 to 31 October (day 304) 03:00.
    let h = |doy: usize, hour: usize| (doy - 1) * 24 + hour;
    // 28 March, 01:00-02:00 standard = 01:00 civil = Ora 2; 02:00 standard = 03:00 civil, the
    // third elapsed hour of a 23-hour day = Ora 3.
    assert_eq!(year[h(87, 1)], 2800.0 + 2.0);
    assert_eq!(year[h(87, 2)], 2800.0 + 3.0);
    // A summer day: 12:00 standard = 13:00 civil = Ora 14; 23:00 standard = Ora 1 next day.
    assert_eq!(year[h(180, 12)], 2900.0 + 14.0);
    assert_eq!(year[h(180, 23)], 3000.0 + 1.0);
    // 31 October (25 hours): 23:00 standard of 30 October = 00:00 civil = Ora 1; 00:00
    // standard = 01:00 summer time = Ora 2; 01:00 standard = the first 02:00 (summer) = Ora 3;
    // 02:00 standard = the second 02:00 (winter) = Ora 4; 23:00 standard = Ora 25.
    assert_eq!(year[h(303, 23)], 3100.0 + 1.0);
    assert_eq!(year[h(304, 0)], 3100.0 + 2.0);
    assert_eq!(year[h(304, 1)], 3100.0 + 3.0);
    assert_eq!(year[h(304, 2)], 3100.0 + 4.0);
    assert_eq!(year[h(304, 23)], 3100.0 + 25.0);
    // Each of the 25 GME hours is used exactly once, none repeated.
    let used: Vec<f64> = year[h(303, 23)..h(305, 0)].to_vec();
    let expected: Vec<f64> = (1..=25).map(|o| 3100.0 + f64::from(o)).collect();
    assert_eq!(used, expected);
}

#[test]
fn a_year_with_a_gap_or_a_duplicate_is_refused() {
    let mut files = year_2021();
    let march = files.remove(2);
    let e = gme::zonal_prices_on_standard_hours(&files, "NORD", 2021)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("31 of the 365 days") && e.contains("2021-03-01"),
        "{e}"
    );
    files.insert(2, march.clone());
    files.push(("again.xml".into(), march.1));
    let e = gme::zonal_prices_on_standard_hours(&files, "NORD", 2021)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("held twice") && e.contains("again.xml") && e.contains("202103.xml"),
        "{e}"
    );
}

/// A 15-minute MGP day whose NORD price is 1000 × (day of month) + Periodo.
fn quarter_day(date: GmeDate) -> String {
    let mut s = String::new();
    for p in 1..=4 * date.hours_in_italy() {
        s.push_str(&format!(
            "  <Prezzi15><Data>{:04}{:02}{:02}</Data><Mercato>MGP</Mercato>\
             <Granularity>PT15</Granularity><Periodo>{p}</Periodo><PUN>1,0</PUN>\
             <NORD>{}</NORD></Prezzi15>\n",
            date.year,
            date.month,
            date.day,
            1000 * date.day + p
        ));
    }
    s
}

/// A year as twelve monthly files; months from `first_quarter_month` on are 15-minute (as GME
/// publishes since 1 October 2025), the others hourly.
fn year_files(year: i32, first_quarter_month: u32) -> Vec<gme::NamedPrices> {
    (1..=12u32)
        .map(|month| {
            let mut text = String::from("<NewDataSet>\n");
            for day in 1..=31 {
                let Some(date) = GmeDate::parse(&format!("{year:04}{month:02}{day:02}")) else {
                    continue;
                };
                text.push_str(&if month >= first_quarter_month {
                    quarter_day(date)
                } else {
                    hourly_day(date)
                });
            }
            text.push_str("</NewDataSet>\n");
            let name = format!("{year}{month:02}.xml");
            let prices = gme::parse_prices(&text, &name).unwrap();
            (name, prices)
        })
        .collect()
}

#[test]
fn quarter_hour_prices_are_used_as_published_at_15_minute_steps() {
    // 2025: hourly until September, 15-minute from October (26 October has 25 hours).
    let files = year_files(2025, 10);
    let q = gme::zonal_prices_on_standard_steps(&files, "NORD", 2025, 4).unwrap();
    assert_eq!(q.len(), 35_040);
    let step = |doy: usize, hour: usize, quarter: usize| ((doy - 1) * 24 + hour) * 4 + quarter;
    // An hourly January day: each hour's price on its four quarters.
    assert_eq!(q[step(1, 0, 0)..step(1, 1, 0)], [101.0; 4]);
    assert_eq!(q[step(1, 5, 0)..step(1, 6, 0)], [106.0; 4]);
    // 1 October (day 274, summer time): 00:00 standard = 01:00 civil = Periodi 5..8.
    assert_eq!(
        q[step(274, 0, 0)..step(274, 1, 0)],
        [1005.0, 1006.0, 1007.0, 1008.0]
    );
    // 26 October (day 299, 100 quarters): 23:00 standard of the 25th = Periodi 1..4 of the
    // 26th; 01:00 standard = the first 02:00 (summer) = 9..12; 02:00 standard = the second
    // 02:00 (winter) = 13..16; 23:00 standard = 97..100. Every quarter once, none repeated.
    let used = &q[step(298, 23, 0)..step(300, 0, 0)];
    let expected: Vec<f64> = (1..=100).map(|p| 26_000.0 + f64::from(p)).collect();
    assert_eq!(used, &expected[..]);
    // 31 December 23:00 standard = civil 23:00: the last four quarters of the year.
    assert_eq!(q[35_036..], [31_093.0, 31_094.0, 31_095.0, 31_096.0]);

    // The same files on 60-minute steps: a 15-minute day's hour is the mean of its quarters.
    let h = gme::zonal_prices_on_standard_hours(&files, "NORD", 2025).unwrap();
    assert_eq!(h.len(), 8760);
    assert_eq!(h[0], 101.0);
    assert_eq!(h[273 * 24], (1005.0 + 1006.0 + 1007.0 + 1008.0) / 4.0);
    for (hour, quarters) in h.iter().zip(q.chunks(4)) {
        assert_eq!(*hour, quarters.iter().sum::<f64>() / 4.0);
    }
}

#[test]
fn a_23_hour_quarter_hour_day_maps_its_92_quarters() {
    // 2026 all 15-minute; 29 March 2026 (day 88) has 23 hours.
    let files = year_files(2026, 1);
    let q = gme::zonal_prices_on_standard_steps(&files, "NORD", 2026, 4).unwrap();
    let step = |doy: usize, hour: usize| ((doy - 1) * 24 + hour) * 4;
    // Standard hours 00:00..22:00 of 29 March are its 23 elapsed hours (winter until 02:00
    // civil, then summer): 92 quarters in order; standard 23:00 = Periodo 1 of 30 March.
    let used = &q[step(88, 0)..step(88, 23)];
    let expected: Vec<f64> = (1..=92).map(|p| 29_000.0 + f64::from(p)).collect();
    assert_eq!(used, &expected[..]);
    assert_eq!(q[step(88, 23)], 30_001.0);
    let e = gme::zonal_prices_on_standard_steps(&files, "NORD", 2026, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 1 (60-minute steps) or 4"), "{e}");
}
