//! Weather import: EPW (a real excerpt and a full-size synthetic year), PVGIS TMY CSV and JSON;
//! errors name the line and the field; clocks are rotated onto local standard time.
#![allow(clippy::unwrap_used)]

use scg_model::{ModelYear, TimeGrid, TimeSettings};
use scg_resource::solar::{self, SolarSite, WeatherFormat};
use scg_resource::weather;

/// The header and two days (1 January, 1 July) of the Chicago O'Hare TMY3 EPW (US DOE, public
/// data; see tests/data/NOTICE.md).
const EXCERPT: &str = include_str!("data/chicago_ohare_tmy3_excerpt.epw");

const DAYS: [usize; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

fn grid(step_minutes: u32, zone: &str) -> TimeGrid {
    TimeGrid::new(
        &TimeSettings {
            step_minutes,
            model_year: ModelYear::Homer,
        },
        zone,
    )
    .unwrap()
}

/// A full-size EPW year built from the excerpt: its header, then for every day the excerpt's
/// January or July day (by season), with the dates rewritten.
fn synthetic_epw(leap: bool) -> String {
    let lines: Vec<&str> = EXCERPT.lines().collect();
    let header = &lines[..8];
    let winter = &lines[8..32];
    let summer = &lines[32..56];
    let mut out: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    let mut days = DAYS;
    if leap {
        days[1] = 29;
    }
    for (m, &n) in days.iter().enumerate() {
        for d in 1..=n {
            let src = if (5..=7).contains(&(m + 1)) {
                summer
            } else {
                winter
            };
            for row in src {
                let mut f: Vec<&str> = row.split(',').collect();
                let (ms, ds) = ((m + 1).to_string(), d.to_string());
                f[1] = &ms;
                f[2] = &ds;
                out.push(f.join(","));
            }
        }
    }
    out.join("\n")
}

#[test]
fn epw_excerpt_fields_by_position() {
    let w = weather::parse_epw_rows(EXCERPT, "chicago.epw").unwrap();
    assert_eq!(
        (
            w.latitude_deg,
            w.longitude_deg,
            w.clock_offset_h,
            w.elevation_m
        ),
        (41.98, -87.92, -6.0, 201.0)
    );
    assert_eq!(w.ghi_w_per_m2.len(), 48);
    // Row "1/1 hour 12": T = -3.3 °C, GHI 364, DNI 521, DHI 144 Wh/m², wind 5.7 m/s.
    assert_eq!(w.temperature_c[11], -3.3);
    assert_eq!(w.ghi_w_per_m2[11], 364.0);
    assert_eq!(w.dni_w_per_m2[11], 521.0);
    assert_eq!(w.dhi_w_per_m2[11], 144.0);
    assert_eq!(w.wind_speed_m_per_s[11], 5.7);
    // "7/1 hour 13": overcast, all diffuse.
    assert_eq!(w.ghi_w_per_m2[24 + 12], 465.0);
    assert_eq!(w.dhi_w_per_m2[24 + 12], 465.0);
    assert_eq!(w.filled_missing, 0);
    // An excerpt is not a year.
    let e = weather::parse_epw(EXCERPT, "chicago.epw")
        .unwrap_err()
        .to_string();
    assert!(e.contains("8760") && e.contains("48"), "{e}");
}

#[test]
fn epw_full_year_parses_and_lands_on_the_grid() {
    let text = synthetic_epw(false);
    let w = weather::parse(&text, WeatherFormat::Epw, "year.epw").unwrap();
    assert_eq!(w.ghi_w_per_m2.len(), 8760);
    // Leap-year files drop 29 February.
    let leap = weather::parse_epw(&synthetic_epw(true), "leap.epw").unwrap();
    assert_eq!(leap.ghi_w_per_m2, w.ghi_w_per_m2);
    // The file is on Chicago standard time, as is this grid: no rotation, identity at 60 min.
    let g = grid(60, "America/Chicago");
    let site = SolarSite::new(w.latitude_deg, w.longitude_deg, &g);
    let ghi = w.ghi_kw_per_m2_on_grid(&site, &g).unwrap();
    assert_eq!(ghi[11], 0.364);
    // At 15 minutes the hour's energy is kept.
    let g15 = grid(15, "America/Chicago");
    let q = w.ghi_kw_per_m2_on_grid(&site, &g15).unwrap();
    for h in 0..8760 {
        let e = q[4 * h..4 * h + 4].iter().sum::<f64>() / 4.0;
        assert!((e - ghi[h]).abs() < 1e-12);
    }
    let t = w.temperature_c_on_grid(site.time_zone_h, &g15).unwrap();
    assert_eq!(&t[44..48], &[-3.3; 4]);
    // PV output from imported weather is finite and non-negative.
    let array = solar::PvArrayConfig::with_capacity(1.0).to_array();
    let t60 = w.temperature_c_on_grid(site.time_zone_h, &g).unwrap();
    let p = solar::pv_power_kw(&array, &site, &ghi, &t60, &g);
    assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(p.iter().sum::<f64>() > 500.0);
}

#[test]
fn epw_missing_codes_are_interpolated() {
    let text = synthetic_epw(false);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Row 12 of 1 January (GHI 364) and its temperature become missing.
    let mut f: Vec<String> = lines[8 + 11].split(',').map(str::to_owned).collect();
    f[13] = "9999".into();
    f[6] = "99.9".into();
    lines[8 + 11] = f.join(",");
    let w = weather::parse_epw(&lines.join("\n"), "gap.epw").unwrap();
    assert_eq!(w.filled_missing, 2);
    // Linear between hours 11 and 13: their mean.
    let (a, b) = (w.ghi_w_per_m2[10], w.ghi_w_per_m2[12]);
    assert!((w.ghi_w_per_m2[11] - (a + b) / 2.0).abs() < 1e-9);
    assert!((w.temperature_c[11] - (w.temperature_c[10] + w.temperature_c[12]) / 2.0).abs() < 1e-9);
}

#[test]
fn epw_errors_name_line_and_field() {
    let text = synthetic_epw(false);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut f: Vec<String> = lines[20].split(',').map(str::to_owned).collect();
    f[21] = "fast".into();
    lines[20] = f.join(",");
    let e = weather::parse_epw(&lines.join("\n"), "bad.epw")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("bad.epw:21:"), "{e}");
    assert!(
        e.contains("field 22 (wind speed)") && e.contains("fast"),
        "{e}"
    );

    let e = weather::parse_epw("hello,world", "x.epw")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.epw:1:") && e.contains("LOCATION"), "{e}");

    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut f: Vec<String> = lines[9].split(',').map(str::to_owned).collect();
    f[3] = "25".into();
    lines[9] = f.join(",");
    let e = weather::parse_epw(&lines.join("\n"), "h.epw")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("h.epw:10:") && e.contains("hour"), "{e}");

    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[30] = "1986,1,1,1,0".into();
    let e = weather::parse_epw(&lines.join("\n"), "s.epw")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("s.epw:31:") && e.contains("fields"), "{e}");

    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut f: Vec<String> = lines[19].split(',').map(str::to_owned).collect();
    f[13] = "-5".into();
    lines[19] = f.join(",");
    let e = weather::parse_epw(&lines.join("\n"), "n.epw")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("n.epw:20:") && e.contains("global horizontal"),
        "{e}"
    );
}

/// A PVGIS 5.x TMY CSV with a synthetic year: G(h) = the hour of day UTC between 08 and 14 UTC
/// (when Bergamo's sun is up all year) and 0 otherwise, so the clock can be traced.
fn pvgis_csv() -> String {
    let mut s = String::from(
        "Latitude (decimal degrees):\t45.698\nLongitude (decimal degrees):\t9.677\n\
         Elevation (m):\t249.0\nIrradiance Time Offset (h):\t0.1617\nmonth,year\n",
    );
    for m in 1..=12 {
        s.push_str(&format!("{m},{}\n", 2005 + m));
    }
    s.push_str("time(UTC),T2m,RH,G(h),Gb(n),Gd(h),IR(h),WS10m,WD10m,SP\n");
    for (m, &n) in DAYS.iter().enumerate() {
        for d in 1..=n {
            for h in 0..24 {
                let year = 2006 + m;
                s.push_str(&format!(
                    "{year}{:02}{d:02}:{h:02}10,{:.2},80.0,{}.0,{}.0,{}.0,300.0,1.5,180.0,99000\n",
                    m + 1,
                    5.0 + m as f64,
                    if (8..=14).contains(&h) { h } else { 0 },
                    5 * h,
                    2 * h
                ));
            }
        }
    }
    s.push_str("T2m: 2-m air temperature (degree Celsius)\nG(h): Global irradiance on the horizontal plane (W/m2)\n\nPVGIS (c) European Union, 2001-2024");
    s
}

#[test]
fn pvgis_csv_parses_by_column_name_and_rotates_from_utc() {
    let w = weather::parse(&pvgis_csv(), WeatherFormat::PvgisCsv, "tmy.csv").unwrap();
    assert_eq!(
        (w.latitude_deg, w.longitude_deg, w.elevation_m),
        (45.698, 9.677, 249.0)
    );
    assert_eq!(w.clock_offset_h, 0.0);
    assert_eq!(w.ghi_w_per_m2.len(), 8760);
    assert_eq!(w.ghi_w_per_m2[13], 13.0);
    assert_eq!(w.dni_w_per_m2[13], 65.0);
    assert_eq!(w.dhi_w_per_m2[13], 26.0);
    assert_eq!(w.temperature_c[0], 5.0);
    assert_eq!(w.wind_speed_m_per_s[0], 1.5);
    // On Italian standard time (UTC+1) hour 13 local is hour 12 UTC; local hour 0 of 1 January
    // is 23:00 UTC of 31 December (the TMY wraps).
    let local = w.to_local_standard(1.0);
    assert_eq!(local.ghi_w_per_m2[13], 12.0);
    assert_eq!(local.ghi_w_per_m2[0], 0.0);
    assert_eq!(local.temperature_c[0], 16.0);
    let g = grid(60, "Europe/Rome");
    let t = w.temperature_c_on_grid(1.0, &g).unwrap();
    assert_eq!(t[0], 16.0);
    assert_eq!(t[1], 5.0);
}

#[test]
fn pvgis_csv_errors_name_line_and_column() {
    let text = pvgis_csv();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 19 is the first data row (4 location lines, month,year + 12, header).
    let mut f: Vec<String> = lines[18].split(',').map(str::to_owned).collect();
    f[3] = "n/a".into();
    lines[18] = f.join(",");
    let e = weather::parse_pvgis_csv(&lines.join("\n"), "tmy.csv")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("tmy.csv:19:") && e.contains("G(h)") && e.contains("n/a"),
        "{e}"
    );
    let e = weather::parse_pvgis_csv(&text.replace("WS10m", "WS"), "tmy.csv")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("tmy.csv:18:") && e.contains("WS10m"), "{e}");
    let e = weather::parse_pvgis_csv("just text", "tmy.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("time(UTC)"), "{e}");
    let short: String = text.lines().take(100).collect::<Vec<_>>().join("\n");
    let e = weather::parse_pvgis_csv(&short, "tmy.csv")
        .unwrap_err()
        .to_string();
    assert!(e.contains("8760"), "{e}");
}

fn pvgis_json(bad_record: Option<usize>) -> String {
    let hourly: Vec<serde_json::Value> = (0..8760)
        .map(|i| {
            let h = i % 24;
            let g = if bad_record == Some(i) {
                serde_json::Value::String("x".into())
            } else {
                serde_json::json!(if (8..=14).contains(&h) { h as f64 } else { 0.0 })
            };
            let (mut month, mut day) = (0, i / 24);
            while day >= DAYS[month] {
                day -= DAYS[month];
                month += 1;
            }
            serde_json::json!({
                "time(UTC)": format!("2007{:02}{:02}:{h:02}10", month + 1, day + 1),
                "T2m": 10.0, "RH": 70.0, "G(h)": g, "Gb(n)": 0.0, "Gd(h)": 50.0,
                "IR(h)": 300.0, "WS10m": 2.0, "WD10m": 90.0, "SP": 99000.0
            })
        })
        .collect();
    serde_json::json!({
        "inputs": {
            "location": {"latitude": 45.0, "longitude": 8.0, "elevation": 250.0},
            "meteo_data": {"radiation_db": "PVGIS-SARAH3", "meteo_db": "ERA5", "year_min": 2005, "year_max": 2023}
        },
        "outputs": {"months_selected": [], "tmy_hourly": hourly},
        "meta": {}
    })
    .to_string()
}

#[test]
fn pvgis_json_parses_and_reports_paths() {
    let w = weather::parse(&pvgis_json(None), WeatherFormat::PvgisJson, "tmy.json").unwrap();
    assert_eq!(
        (w.latitude_deg, w.longitude_deg, w.elevation_m),
        (45.0, 8.0, 250.0)
    );
    assert_eq!(w.ghi_w_per_m2[34], 10.0);
    assert_eq!(w.dhi_w_per_m2[34], 50.0);
    let e = weather::parse_pvgis_json(&pvgis_json(Some(42)), "tmy.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("outputs.tmy_hourly[42].G(h)"), "{e}");
    let e = weather::parse_pvgis_json("{\"inputs\":", "tmy.json")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("tmy.json:1:"), "{e}");
    let e = weather::parse_pvgis_json("{}", "tmy.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("tmy_hourly"), "{e}");
}

fn real_epw() -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&include_bytes!("data/chicago_ohare_tmy3.epw.gz")[..])
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn edit_field(text: &str, line: usize, field: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut f: Vec<String> = lines[line - 1].split(',').map(str::to_owned).collect();
    f[field] = value.into();
    lines[line - 1] = f.join(",");
    lines.join("\n")
}

#[test]
fn epw_reversed_or_shuffled_rows_are_refused_naming_the_line() {
    let text = real_epw();
    let lines: Vec<&str> = text.lines().collect();
    let mut reversed: Vec<&str> = lines[..8].to_vec();
    reversed.extend(lines[8..].iter().rev());
    let e = weather::parse_epw(&reversed.join("\n"), "r.epw")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("r.epw:10:") && e.contains("time order"),
        "{e}"
    );
    let mut swapped: Vec<&str> = lines.clone();
    swapped.swap(1000, 1001);
    let e = weather::parse_epw(&swapped.join("\n"), "s.epw")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("s.epw:1002:") && e.contains("time order"),
        "{e}"
    );
}

#[test]
fn epw_header_time_zone_and_coordinates_must_be_in_range() {
    let text = real_epw();
    for (field, value, what) in [
        (8, "1e300", "time zone"),
        (8, "15", "time zone"),
        (6, "91", "latitude"),
    ] {
        let bad = edit_field(&text, 1, field, value);
        let e = weather::parse_epw(&bad, "z.epw").unwrap_err().to_string();
        assert!(e.starts_with("z.epw:1:") && e.contains(what), "{e}");
    }
}

#[test]
fn epw_mostly_missing_ghi_is_an_error_naming_the_count() {
    let text = real_epw();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for l in lines.iter_mut().skip(8).take(8759) {
        let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
        f[13] = "9999".into();
        *l = f.join(",");
    }
    let e = weather::parse_epw(&lines.join("\n"), "m.epw")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("8759 of 8760") && e.contains("global horizontal"),
        "{e}"
    );
}

#[test]
fn epw_ghi_at_night_or_above_the_sun_is_refused() {
    let text = real_epw();
    // Line 11 is 1 January 02:00–03:00, deep night.
    let night = edit_field(&text, 11, 13, "1500");
    let e = weather::parse_epw(&night, "n.epw").unwrap_err().to_string();
    assert!(
        e.starts_with("n.epw:11:") && e.contains("below the horizon"),
        "{e}"
    );
    // Line 20 is 1 January 11:00–12:00: the sun gives about 500 W/m² on the horizontal.
    let bright = edit_field(&text, 20, 13, "1400");
    let e = weather::parse_epw(&bright, "b.epw")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("b.epw:20:") && e.contains("extraterrestrial"),
        "{e}"
    );
}

#[test]
fn a_weather_file_from_another_site_is_refused_with_both_locations() {
    let w = weather::parse_epw(&real_epw(), "chicago.epw").unwrap();
    let chicago = SolarSite {
        latitude_deg: 41.9,
        longitude_deg: -87.7,
        time_zone_h: -6.0,
    };
    w.check_site(&chicago).unwrap();
    let bergamo = SolarSite {
        latitude_deg: 45.698,
        longitude_deg: 9.677,
        time_zone_h: 1.0,
    };
    let e = w.check_site(&bergamo).unwrap_err().to_string();
    assert!(
        e.contains("41.980") && e.contains("45.698") && e.contains("from_weather_file"),
        "{e}"
    );
    let other_zone = SolarSite {
        time_zone_h: -5.0,
        ..chicago
    };
    let e = w.check_site(&other_zone).unwrap_err().to_string();
    assert!(e.contains("UTC-6") && e.contains("UTC-5"), "{e}");
}
