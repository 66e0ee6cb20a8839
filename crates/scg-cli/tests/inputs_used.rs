//! `scg simulate` end to end with a weather file and GME price files named in the scenario
//! (issue 11): the run must use them. The files are generated into a temporary scenario
//! directory (a PVGIS TMY CSV for Bergamo and twelve monthly GME MGP files), each value
//! traceable: PV from the file's irradiance (about half of Bergamo's, so the yield is far from
//! the synthetic sun's), the turbine from the file's wind, and the zonal price column equal to
//! the files' prices in the right hours across daylight saving and 15-minute days.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const LATITUDE_DEG: f64 = 45.698;
const LONGITUDE_DEG: f64 = 9.677;
/// The file's constant wind speed at 10 m, m/s (Bergamo's synthetic wind is far calmer).
const WIND_M_PER_S: f64 = 6.0;

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-inputs-used-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// cos(zenith) at the middle of UTC hour `hour` of day `doy` (Cooper's declination, no
/// equation of time: good to a few degrees, and GHI is only given 5 degrees above the horizon).
fn cos_zenith(doy: u32, hour: u32) -> f64 {
    let decl = 23.45_f64.to_radians() * (360.0 * f64::from(284 + doy) / 365.0).to_radians().sin();
    let solar_h = f64::from(hour) + 0.5 + LONGITUDE_DEG / 15.0;
    let omega = (15.0 * (solar_h - 12.0)).to_radians();
    let lat = LATITUDE_DEG.to_radians();
    lat.sin() * decl.sin() + lat.cos() * decl.cos() * omega.cos()
}

/// A PVGIS TMY CSV for Bergamo: all-diffuse GHI = 300 W/m² × cos(zenith) (about 700 kWh/m² a
/// year, half of Bergamo's), 15 °C, wind 6 m/s.
fn pvgis_tmy() -> String {
    let mut s = format!(
        "Latitude (decimal degrees):\t{LATITUDE_DEG}\nLongitude (decimal degrees):\t{LONGITUDE_DEG}\n\
         Elevation (m):\t249.0\nmonth,year\n"
    );
    for m in 1..=12 {
        s.push_str(&format!("{m},2025\n"));
    }
    s.push_str("time(UTC),T2m,RH,G(h),Gb(n),Gd(h),IR(h),WS10m,WD10m,SP\n");
    let mut doy = 0;
    for (m, &n) in DAYS.iter().enumerate() {
        for d in 1..=n {
            doy += 1;
            for h in 0..24 {
                let cz = cos_zenith(doy, h);
                let ghi = if cz > 0.09 { 300.0 * cz } else { 0.0 };
                s.push_str(&format!(
                    "2025{:02}{d:02}:{h:02}10,15.0,70.0,{ghi:.2},0.0,{ghi:.2},300.0,{WIND_M_PER_S},180.0,98000\n",
                    m + 1
                ));
            }
        }
    }
    s
}

/// Hourly NORD price of `Ora` on day `day` of a month: day + Ora / 100.
fn hourly_price(day: u32, ora: u32) -> f64 {
    f64::from(day) + f64::from(ora) / 100.0
}

/// 15-minute NORD price of `Periodo` on day `day`: day + Periodo / 1000.
fn quarter_price(day: u32, periodo: u32) -> f64 {
    f64::from(day) + f64::from(periodo) / 1000.0
}

/// Twelve monthly GME MGP files of 2025: hourly to September, 15-minute from October (as GME
/// publishes since 1 October 2025). Returns the file names.
fn gme_files(dir: &Path) -> Vec<String> {
    (1..=12u32)
        .map(|month| {
            let mut s = String::from("<NewDataSet>\n");
            for day in 1..=DAYS[month as usize - 1] {
                let hours = scg_resource::gme::GmeDate {
                    year: 2025,
                    month,
                    day,
                }
                .hours_in_italy();
                let head = format!("<Data>2025{month:02}{day:02}</Data><Mercato>MGP</Mercato>");
                if month < 10 {
                    for ora in 1..=hours {
                        s.push_str(&format!(
                            "<Prezzi>{head}<Ora>{ora}</Ora><PUN>1,0</PUN><NORD>{}</NORD></Prezzi>\n",
                            hourly_price(day, ora)
                        ));
                    }
                } else {
                    for p in 1..=4 * hours {
                        s.push_str(&format!(
                            "<Prezzi15>{head}<Granularity>PT15</Granularity><Periodo>{p}</Periodo>\
                             <PUN>1,0</PUN><NORD>{}</NORD></Prezzi15>\n",
                            quarter_price(day, p)
                        ));
                    }
                }
            }
            s.push_str("</NewDataSet>\n");
            let name = format!("2025{month:02}MGPPrezzi.xml");
            std::fs::write(dir.join(&name), s).unwrap();
            name
        })
        .collect()
}

fn scg(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn simulate_uses_the_weather_file_and_the_gme_prices() {
    let dir = tempdir("run");
    std::fs::write(dir.join("tmy.csv"), pvgis_tmy()).unwrap();
    let files = gme_files(&dir);
    let default = String::from_utf8(scg(&["scenario", "default"], &dir).stdout).unwrap();
    let list = files
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ghi_line = default
        .lines()
        .find(|l| l.starts_with("monthly_ghi_kwh_per_m2_day"))
        .unwrap();
    let scenario = default
        .replace(
            ghi_line,
            "weather_file = { path = \"tmy.csv\", format = \"pvgis_csv\" }",
        )
        .replace(
            "zonal_price_eur_per_mwh = 110.0",
            &format!("zonal_price_gme_files = [{list}]"),
        )
        .replace("model_year = \"homer\"", "model_year = 2025")
        // Build the school's turbine (the calm built-in site leaves it a search template).
        .replace(
            "kept for the search.\ninstalled = false\n",
            "kept for the search.\n",
        );
    assert!(scenario.contains("tmy.csv") && scenario.contains("zonal_price_gme_files"));
    std::fs::write(dir.join("scenario.toml"), &scenario).unwrap();

    let out = scg(
        &[
            "simulate",
            "scenario.toml",
            "--out",
            "out",
            "--no-ledger",
            "--quiet",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap())
            .unwrap();

    // PV from the file: about 700 kWh/m² of diffuse light gives a yield far below the
    // synthetic Bergamo sun's 1,050-1,210 kWh/kWp (the simulate test's range).
    for id in ["apartment", "office", "school"] {
        let y = summary["prosumers"][id]["pv_arrays"][0]["specific_yield_kwh_per_kwp"]
            .as_f64()
            .unwrap();
        assert!((350.0..900.0).contains(&y), "{id}: {y} kWh/kWp");
    }
    // Wind from the file: 6 m/s at 10 m all year turns the school's 10 kW turbine (a calm
    // synthetic site gives it some tens of kWh a year).
    let wind = summary["prosumers"]["school"]["wind_energy_kwh"]
        .as_f64()
        .unwrap();
    assert!(wind > 5_000.0, "school wind {wind} kWh");

    // The zonal price column equals the files' prices in the right hours.
    let csv = std::fs::read_to_string(dir.join("out/timeseries.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "zonal_price_eur_per_mwh")
        .unwrap();
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_owned(), f[col].parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 8760);
    let at = |doy: usize, hour: usize| &rows[(doy - 1) * 24 + hour];
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // 1 January 00:00 standard = Ora 1.
    assert!(rows[0].0.starts_with("2025-01-01T00:00"), "{}", rows[0].0);
    assert!(close(rows[0].1, hourly_price(1, 1)));
    // 1 July (day 182) 12:00 standard = 13:00 summer time = Ora 14.
    let (ts, p) = at(182, 12);
    assert!(ts.starts_with("2025-07-01T12:00"), "{ts}");
    assert!(close(*p, hourly_price(1, 14)), "{p}");
    // 30 March (23 hours): 02:00 standard = 03:00 summer time, the third elapsed hour = Ora 3.
    assert!(close(at(89, 2).1, hourly_price(30, 3)), "{}", at(89, 2).1);
    // 26 October (15-minute, 100 quarters): 02:00 standard = the second 02:00 = Periodi 13..16,
    // on hourly steps the mean of the four.
    let (ts, p) = at(299, 2);
    assert!(ts.starts_with("2025-10-26T02:00"), "{ts}");
    let mean = (13..=16).map(|q| quarter_price(26, q)).sum::<f64>() / 4.0;
    assert!(close(*p, mean), "{p} vs {mean}");
    // 31 December 23:00 standard: the year's last four quarters.
    let mean = (93..=96).map(|q| quarter_price(31, q)).sum::<f64>() / 4.0;
    assert!(close(rows[8759].1, mean), "{}", rows[8759].1);
}
