//! Real weather instead of synthetic: EnergyPlus EPW and PVGIS TMY (CSV and JSON) import.
//!
//! Parsers take the file's text and a name for messages; every error names the line (or JSON
//! path) and the field and says what was expected. Formats (markets-vpp-climate.md §4.3):
//!
//! - **EPW**: 8 header lines (`LOCATION,city,state,country,source,WMO,lat,lon,TZ,elev` first),
//!   then one row per hour with fields by position: 1 year, 2 month, 3 day, 4 hour (1–24, the
//!   hour *ending* at that time, local standard time), 7 dry-bulb °C, 14 global horizontal,
//!   15 direct normal, 16 diffuse horizontal (Wh/m² over the hour = average W/m²), 22 wind
//!   speed m/s. Missing-value codes (dry bulb 99.9, irradiance 9999, wind speed 999) are filled by
//!   linear interpolation between the nearest valid hours of the same column and counted in
//!   [`WeatherYear::filled_missing`]; a column with no valid value is an error. Leap-year files
//!   (8784 rows) lose 29 February, as scg's years have 365 days.
//! - **PVGIS TMY CSV** (`outputformat=csv`): `Latitude (decimal degrees): …`, `Longitude …`,
//!   `Elevation (m): …` lines, the `month,year` table, then the header
//!   `time(UTC),T2m,RH,G(h),Gb(n),Gd(h),IR(h),WS10m,WD10m,SP` and 8760 rows (columns found by
//!   name), then a legend. Times are **UTC** (`YYYYMMDD:HHMM`, the hour starting then).
//! - **PVGIS TMY JSON** (`outputformat=json`): `inputs.location.{latitude, longitude,
//!   elevation}` and `outputs.tmy_hourly[]` objects with the same names as the CSV columns.
//!
//! A [`WeatherYear`] holds 8760 hourly rows in the file's order, hour 0 = the first hour of
//! 1 January on the file's clock; [`WeatherYear::to_local_standard`] rotates a UTC file onto the
//! simulation's standard-time clock.
//!
//! Never does I/O.

use crate::ResourceError;
use crate::solar::{self, SolarSite};
use scg_model::TimeGrid;

/// Hours in scg's year.
pub const HOURS_PER_YEAR: usize = 8760;

/// Height of a weather file's wind speeds, m: EPW's field 22 is measured at the standard 10 m
/// (WMO anemometer height); PVGIS names its column `WS10m`.
pub const ANEMOMETER_HEIGHT_M: f64 = 10.0;

/// One year of hourly weather.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherYear {
    /// Where the values came from (for messages).
    pub source_name: String,
    pub latitude_deg: f64,
    pub longitude_deg: f64,
    pub elevation_m: f64,
    /// Hours east of UTC of the file's clock (EPW: its standard time zone; PVGIS: 0, UTC).
    pub clock_offset_h: f64,
    /// Global horizontal irradiance, W/m² (hour averages).
    pub ghi_w_per_m2: Vec<f64>,
    /// Direct normal irradiance, W/m².
    pub dni_w_per_m2: Vec<f64>,
    /// Diffuse horizontal irradiance, W/m².
    pub dhi_w_per_m2: Vec<f64>,
    /// Air temperature, °C.
    pub temperature_c: Vec<f64>,
    /// Wind speed at 10 m, m/s.
    pub wind_speed_m_per_s: Vec<f64>,
    /// How many values were missing in the file and interpolated.
    pub filled_missing: usize,
}

impl WeatherYear {
    /// The same year on a clock `time_zone_h` hours east of UTC: hour i of the result is hour
    /// i − (time_zone_h − clock_offset_h) of the file, wrapping around the year (a TMY is a
    /// typical year, so 31 December evening UTC becomes 1 January morning elsewhere).
    /// Only whole-hour shifts are supported; a fractional shift is rounded.
    pub fn to_local_standard(&self, time_zone_h: f64) -> WeatherYear {
        let shift = (time_zone_h - self.clock_offset_h).round() as i64;
        let n = self.ghi_w_per_m2.len() as i64;
        let rotate = |v: &[f64]| -> Vec<f64> {
            if n == 0 {
                return Vec::new();
            }
            (0..n)
                .map(|i| v[(i - shift).rem_euclid(n) as usize])
                .collect()
        };
        WeatherYear {
            source_name: self.source_name.clone(),
            latitude_deg: self.latitude_deg,
            longitude_deg: self.longitude_deg,
            elevation_m: self.elevation_m,
            clock_offset_h: time_zone_h,
            ghi_w_per_m2: rotate(&self.ghi_w_per_m2),
            dni_w_per_m2: rotate(&self.dni_w_per_m2),
            dhi_w_per_m2: rotate(&self.dhi_w_per_m2),
            temperature_c: rotate(&self.temperature_c),
            wind_speed_m_per_s: rotate(&self.wind_speed_m_per_s),
            filled_missing: self.filled_missing,
        }
    }

    /// Refuse a file from another site: latitude and longitude within
    /// [`LOCATION_TOLERANCE_DEG`] of the scenario's, and (for a file on local time, EPW) the
    /// same standard time zone exactly. The message names both locations.
    pub fn check_site(&self, scenario: &SolarSite) -> Result<(), ResourceError> {
        let far = (self.latitude_deg - scenario.latitude_deg).abs() > LOCATION_TOLERANCE_DEG
            || (self.longitude_deg - scenario.longitude_deg).abs() > LOCATION_TOLERANCE_DEG;
        // A file on UTC (PVGIS; clock offset 0) carries no zone of its own and is rotated onto
        // the scenario's clock; a file on local standard time (EPW) must be on the scenario's.
        let file_on_local_clock = self.clock_offset_h != 0.0;
        let other_zone = file_on_local_clock && self.clock_offset_h != scenario.time_zone_h;
        if far || other_zone {
            return Err(ResourceError::invalid(
                &self.source_name,
                format!(
                    "the weather file is for latitude {:.3}°, longitude {:.3}°{}; the scenario \
                     is at latitude {:.3}°, longitude {:.3}°, UTC{:+} h standard time. Allowed: \
                     {LOCATION_TOLERANCE_DEG}° in latitude and longitude and the same time \
                     zone; or set `location = \"from_weather_file\"` under \
                     [solar.weather_file] to use the file's site",
                    self.latitude_deg,
                    self.longitude_deg,
                    if file_on_local_clock {
                        format!(", UTC{:+} h", self.clock_offset_h)
                    } else {
                        String::new()
                    },
                    scenario.latitude_deg,
                    scenario.longitude_deg,
                    scenario.time_zone_h
                ),
            ));
        }
        Ok(())
    }

    fn require_full_year(&self) -> Result<(), ResourceError> {
        if self.ghi_w_per_m2.len() != HOURS_PER_YEAR {
            return Err(ResourceError::invalid(
                &self.source_name,
                format!(
                    "a weather year needs {HOURS_PER_YEAR} hourly rows, got {}",
                    self.ghi_w_per_m2.len()
                ),
            ));
        }
        Ok(())
    }

    /// GHI on the grid's steps, kW/m², for a site on the grid's standard time (the year is
    /// first rotated from the file's clock onto it; 15-minute steps follow the sun inside each
    /// hour, see [`solar::hourly_to_grid_kw_per_m2`]).
    pub fn ghi_kw_per_m2_on_grid(
        &self,
        site: &SolarSite,
        grid: &TimeGrid,
    ) -> Result<Vec<f64>, ResourceError> {
        self.require_full_year()?;
        let local = self.to_local_standard(site.time_zone_h);
        let hourly: Vec<f64> = local.ghi_w_per_m2.iter().map(|g| g / 1000.0).collect();
        Ok(solar::hourly_to_grid_kw_per_m2(site, &hourly, grid))
    }

    /// Measured or decomposed irradiance on the grid's steps, kW/m², for a site on the grid's
    /// standard time. With [`solar::IrradianceSource::Measured`] the file's DNI and DHI are used
    /// (at 15-minute steps DHI is spread like GHI, following the sun inside the hour, and DNI is
    /// held for the hour's steps, which keeps the hour's beam energy on the horizontal exactly);
    /// with [`solar::IrradianceSource::DecomposeGhi`] only GHI is kept and split with Erbs.
    pub fn irradiance_on_grid(
        &self,
        site: &SolarSite,
        grid: &TimeGrid,
        source: solar::IrradianceSource,
    ) -> Result<solar::Irradiance, ResourceError> {
        let ghi_kw_per_m2 = self.ghi_kw_per_m2_on_grid(site, grid)?;
        let measured = match source {
            solar::IrradianceSource::DecomposeGhi => None,
            solar::IrradianceSource::Measured => {
                let local = self.to_local_standard(site.time_zone_h);
                let kw = |v: &[f64]| v.iter().map(|g| g / 1000.0).collect::<Vec<f64>>();
                let dhi = solar::hourly_to_grid_kw_per_m2(site, &kw(&local.dhi_w_per_m2), grid);
                let n = grid.steps_per_hour();
                let dni = kw(&local.dni_w_per_m2)
                    .into_iter()
                    .flat_map(|v| std::iter::repeat_n(v, n))
                    .collect();
                Some(solar::BeamDiffuse {
                    dni_kw_per_m2: dni,
                    dhi_kw_per_m2: dhi,
                })
            }
        };
        Ok(solar::Irradiance {
            ghi_kw_per_m2,
            measured,
        })
    }

    /// Air temperature on the grid's steps, °C (each hour's value held for its steps).
    pub fn temperature_c_on_grid(
        &self,
        time_zone_h: f64,
        grid: &TimeGrid,
    ) -> Result<Vec<f64>, ResourceError> {
        self.held_on_grid(|w| &w.temperature_c, time_zone_h, grid)
    }

    /// Wind speed at 10 m on the grid's steps, m/s (each hour's value held for its steps).
    pub fn wind_speed_m_per_s_on_grid(
        &self,
        time_zone_h: f64,
        grid: &TimeGrid,
    ) -> Result<Vec<f64>, ResourceError> {
        self.held_on_grid(|w| &w.wind_speed_m_per_s, time_zone_h, grid)
    }

    fn held_on_grid(
        &self,
        column: impl Fn(&WeatherYear) -> &Vec<f64>,
        time_zone_h: f64,
        grid: &TimeGrid,
    ) -> Result<Vec<f64>, ResourceError> {
        self.require_full_year()?;
        let local = self.to_local_standard(time_zone_h);
        let n = grid.steps_per_hour();
        Ok(column(&local)
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, n))
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// EPW.

/// EPW fields used (0-based positions) and their missing-value codes.
const EPW_MONTH: usize = 1;
const EPW_DAY: usize = 2;
const EPW_HOUR: usize = 3;
const EPW_DRY_BULB: usize = 6;
const EPW_GHI: usize = 13;
const EPW_DNI: usize = 14;
const EPW_DHI: usize = 15;
const EPW_WIND_SPEED: usize = 21;

/// Parse a full EPW year (8760 rows, or 8784 with 29 February dropped).
pub fn parse_epw(text: &str, source_name: &str) -> Result<WeatherYear, ResourceError> {
    let year = parse_epw_rows(text, source_name)?;
    year.require_full_year()?;
    Ok(year)
}

/// Parse an EPW file with any number of data rows (for excerpts; [`parse_epw`] wants a year).
pub fn parse_epw_rows(text: &str, source_name: &str) -> Result<WeatherYear, ResourceError> {
    let err = |line: usize, msg: String| ResourceError::parse(source_name, line, msg);
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let Some((_, location)) = lines.next() else {
        return Err(ResourceError::invalid(source_name, "the file is empty"));
    };
    let loc: Vec<&str> = location.split(',').map(str::trim).collect();
    if loc.first() != Some(&"LOCATION") || loc.len() < 10 {
        return Err(err(
            1,
            format!(
                "expected the EPW header `LOCATION,city,state,country,source,WMO,lat,lon,TZ,elev`, \
                 got {:?}",
                truncate(location)
            ),
        ));
    }
    let num = |i: usize, name: &str| -> Result<f64, ResourceError> {
        loc[i]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                err(
                    1,
                    format!(
                        "LOCATION field {} ({name}): expected a number, got {:?}",
                        i + 1,
                        scg_model::bounds::excerpt(loc[i])
                    ),
                )
            })
    };
    let latitude_deg = num(6, "latitude")?;
    let longitude_deg = num(7, "longitude")?;
    let clock_offset_h = num(8, "time zone")?;
    let elevation_m = num(9, "elevation")?;
    check_header_location(latitude_deg, longitude_deg, Some(clock_offset_h))
        .map_err(|m| err(1, format!("LOCATION: {m}")))?;
    for expected in 2..=8 {
        match lines.next() {
            Some((_, l)) if !l.trim().is_empty() && !starts_with_digit(l) => {}
            _ => {
                return Err(err(
                    expected,
                    "expected one of the 8 EPW header lines (DESIGN CONDITIONS … DATA PERIODS)"
                        .into(),
                ));
            }
        }
    }
    let mut cols: [Vec<f64>; 5] = Default::default();
    let mut lines_of_rows = Vec::new();
    let mut last_stamp: Option<((u32, u32, u32), usize)> = None;
    for (line, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = l.split(',').collect();
        if fields.len() <= EPW_WIND_SPEED {
            return Err(err(
                line,
                format!(
                    "expected at least {} comma-separated fields, got {}",
                    EPW_WIND_SPEED + 1,
                    fields.len()
                ),
            ));
        }
        let field = |i: usize, name: &str| -> Result<f64, ResourceError> {
            fields[i]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err(
                        line,
                        format!(
                            "field {} ({name}): expected a number, got {:?}",
                            i + 1,
                            scg_model::bounds::excerpt(fields[i])
                        ),
                    )
                })
        };
        let month = field(EPW_MONTH, "month")?;
        let day = field(EPW_DAY, "day")?;
        let hour = field(EPW_HOUR, "hour")?;
        if !(1.0..=12.0).contains(&month) || !(1.0..=31.0).contains(&day) {
            return Err(err(line, format!("month/day out of range: {month}/{day}")));
        }
        if !(1.0..=24.0).contains(&hour) {
            return Err(err(
                line,
                format!("field 4 (hour): expected 1..24 (hour ending), got {hour}"),
            ));
        }
        if day > f64::from(days_in_month(month as u32)) {
            return Err(err(
                line,
                format!("day {day} does not exist in month {month}"),
            ));
        }
        if month == 2.0 && day == 29.0 {
            continue;
        }
        // Rows must follow the clock: a reversed or shuffled file would move the sun.
        let stamp = (month as u32, day as u32, hour as u32);
        if let Some((prev, prev_line)) = last_stamp
            && stamp <= prev
        {
            return Err(err(
                line,
                format!(
                    "rows out of time order: month/day/hour {}/{}/{} comes after {}/{}/{} \
                     (line {prev_line}); expected increasing hours",
                    stamp.0, stamp.1, stamp.2, prev.0, prev.1, prev.2
                ),
            ));
        }
        last_stamp = Some((stamp, line));
        let values = [
            (EPW_GHI, "global horizontal irradiance", 9999.0, 0.0, 1500.0),
            (EPW_DNI, "direct normal irradiance", 9999.0, 0.0, 1500.0),
            (
                EPW_DHI,
                "diffuse horizontal irradiance",
                9999.0,
                0.0,
                1500.0,
            ),
            (EPW_DRY_BULB, "dry bulb temperature", 99.9, -90.0, 70.0),
            (EPW_WIND_SPEED, "wind speed", 999.0, 0.0, 40.0),
        ];
        for (c, (i, name, missing, lo, hi)) in values.into_iter().enumerate() {
            let v = field(i, name)?;
            let v = if v >= missing {
                f64::NAN
            } else if v < lo || v > hi {
                return Err(err(
                    line,
                    format!("field {} ({name}): {v} is outside [{lo}, {hi}]", i + 1),
                ));
            } else {
                v
            };
            cols[c].push(v);
        }
        lines_of_rows.push(line);
    }
    if lines_of_rows.is_empty() {
        return Err(ResourceError::invalid(
            source_name,
            "no data rows after the header",
        ));
    }
    let names = [
        "global horizontal irradiance",
        "direct normal irradiance",
        "diffuse horizontal irradiance",
        "dry bulb temperature",
        "wind speed",
    ];
    let mut filled_missing = 0;
    for (c, col) in cols.iter_mut().enumerate() {
        let missing = col.iter().filter(|v| v.is_nan()).count();
        check_missing_share(missing, col.len(), names[c])
            .map_err(|m| ResourceError::invalid(source_name, m))?;
        filled_missing += fill_missing(col).ok_or_else(|| {
            ResourceError::invalid(
                source_name,
                format!("column {} has no valid value", names[c]),
            )
        })?;
    }
    let [ghi, dni, dhi, temperature, wind] = cols;
    let site = SolarSite {
        latitude_deg,
        longitude_deg,
        time_zone_h: clock_offset_h,
    };
    let hours_of_rows = epw_hours_of_year(text, &lines_of_rows);
    check_irradiance_plausible(&site, &ghi, |i| hours_of_rows[i])
        .map_err(|(i, m)| err(lines_of_rows[i], m))?;
    if ghi.len() > HOURS_PER_YEAR {
        return Err(err(
            lines_of_rows[HOURS_PER_YEAR],
            format!("more than {HOURS_PER_YEAR} hourly rows (29 February excluded)"),
        ));
    }
    Ok(WeatherYear {
        source_name: source_name.to_owned(),
        latitude_deg,
        longitude_deg,
        elevation_m,
        clock_offset_h,
        ghi_w_per_m2: ghi,
        dni_w_per_m2: dni,
        dhi_w_per_m2: dhi,
        temperature_c: temperature,
        wind_speed_m_per_s: wind,
        filled_missing,
    })
}

/// Largest share of missing values in a column that is filled by interpolation; more is an
/// error (8,759 interpolated hours of 8,760 are not a weather year).
pub const MAX_MISSING_SHARE: f64 = 0.10;

/// Largest distance between the weather file's site and the scenario's, degrees of latitude or
/// of longitude (0.5° ≈ 55 km: the same climate and the same sun to within 2 minutes of time).
pub const LOCATION_TOLERANCE_DEG: f64 = 0.5;

/// GHI above the sun: an hour's GHI may exceed its extraterrestrial horizontal irradiance by
/// this factor (cloud enhancement, timing) plus [`NIGHT_NOISE_W_PER_M2`], no more.
pub const EXTRATERRESTRIAL_FACTOR: f64 = 1.1;

/// GHI allowed in an hour whose sun stays lower than 90.5° zenith throughout (sensor noise,
/// twilight), W/m².
pub const NIGHT_NOISE_W_PER_M2: f64 = 10.0;

fn days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Latitude, longitude and (EPW) time zone in range: [−90, 90], [−180, 180], [−12, +14] h.
fn check_header_location(lat: f64, lon: f64, tz: Option<f64>) -> Result<(), String> {
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} is outside [-90, 90]"));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} is outside [-180, 180]"));
    }
    if let Some(tz) = tz
        && !(-12.0..=14.0).contains(&tz)
    {
        return Err(format!(
            "time zone {tz} h is outside [-12, +14] hours from UTC"
        ));
    }
    Ok(())
}

fn check_missing_share(missing: usize, total: usize, column: &str) -> Result<(), String> {
    if total > 0 && missing as f64 > MAX_MISSING_SHARE * total as f64 {
        return Err(format!(
            "{missing} of {total} {column} values are missing; at most {:.0} % may be \
             interpolated",
            MAX_MISSING_SHARE * 100.0
        ));
    }
    Ok(())
}

/// The hour of the year (0-based, 29 February skipped) of each EPW data row.
fn epw_hours_of_year(text: &str, lines_of_rows: &[usize]) -> Vec<usize> {
    const FIRST_DAY: [usize; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let all: Vec<&str> = text.lines().collect();
    lines_of_rows
        .iter()
        .map(|&line| {
            let f: Vec<&str> = all[line - 1].split(',').collect();
            let num = |i: usize| f[i].trim().parse::<f64>().unwrap_or(1.0) as usize;
            let (m, d, h) = (num(EPW_MONTH), num(EPW_DAY), num(EPW_HOUR));
            (FIRST_DAY[m.clamp(1, 12) - 1] + d.max(1) - 1) * 24 + h.clamp(1, 24) - 1
        })
        .collect()
}

/// Every hour's GHI (W/m²) against the sun over that hour at `site` on the file's clock:
/// at most [`EXTRATERRESTRIAL_FACTOR`] × the hour's extraterrestrial horizontal irradiance +
/// [`NIGHT_NOISE_W_PER_M2`]. `hour_of` maps a row to its hour of the year. Errors carry the row.
fn check_irradiance_plausible(
    site: &SolarSite,
    ghi_w_per_m2: &[f64],
    hour_of: impl Fn(usize) -> usize,
) -> Result<(), (usize, String)> {
    let horizon = (90.5f64).to_radians().cos();
    for (i, &g) in ghi_w_per_m2.iter().enumerate() {
        if g <= NIGHT_NOISE_W_PER_M2 {
            continue;
        }
        let hour = hour_of(i) % HOURS_PER_YEAR;
        let day = (hour / 24) as u32 + 1;
        let sun = solar::StepSun::new(site, day, (hour % 24) as f64, 1.0);
        // The highest sun of the hour: the hour angle nearest to noon within the hour.
        let omega = 0.0f64.clamp(sun.hour_angle_start_deg, sun.hour_angle_end_deg);
        let highest = solar::cos_zenith(site.latitude_deg, sun.declination_deg, omega);
        if highest < horizon {
            return Err((
                i,
                format!(
                    "GHI {g} W/m² while the sun is below the horizon all hour (day {day}, hour \
                     {} on the file's clock); expected at most {NIGHT_NOISE_W_PER_M2} W/m²",
                    hour % 24
                ),
            ));
        }
        let bound = EXTRATERRESTRIAL_FACTOR * sun.extraterrestrial_horizontal_kw_per_m2 * 1000.0
            + NIGHT_NOISE_W_PER_M2;
        if g > bound {
            return Err((
                i,
                format!(
                    "GHI {g} W/m² is above the sun's extraterrestrial bound for that hour \
                     ({bound:.0} W/m² = {EXTRATERRESTRIAL_FACTOR} × G_o + \
                     {NIGHT_NOISE_W_PER_M2}; day {day}, hour {} on the file's clock)",
                    hour % 24
                ),
            ));
        }
    }
    Ok(())
}

/// Replace NaNs by linear interpolation between the nearest valid neighbours (held at the
/// ends); returns how many were filled, or None when nothing is valid.
fn fill_missing(col: &mut [f64]) -> Option<usize> {
    let valid: Vec<usize> = (0..col.len()).filter(|&i| !col[i].is_nan()).collect();
    let (&first, &last) = (valid.first()?, valid.last()?);
    let mut filled = 0;
    for i in 0..first {
        col[i] = col[first];
        filled += 1;
    }
    for i in last + 1..col.len() {
        col[i] = col[last];
        filled += 1;
    }
    for w in valid.windows(2) {
        let (a, b) = (w[0], w[1]);
        for i in a + 1..b {
            let t = (i - a) as f64 / (b - a) as f64;
            col[i] = col[a] + t * (col[b] - col[a]);
            filled += 1;
        }
    }
    Some(filled)
}

fn starts_with_digit(l: &str) -> bool {
    l.trim_start()
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

// ---------------------------------------------------------------------------------------------
// PVGIS.

/// Parse a PVGIS TMY CSV (`outputformat=csv`).
pub fn parse_pvgis_csv(text: &str, source_name: &str) -> Result<WeatherYear, ResourceError> {
    let err = |line: usize, msg: String| ResourceError::parse(source_name, line, msg);
    let mut latitude = None;
    let mut longitude = None;
    let mut elevation = None;
    let mut header: Option<(usize, Vec<String>)> = None;
    let mut rows: Vec<(usize, Vec<&str>)> = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        let t = l.trim();
        if header.is_none() {
            if let Some((key, value)) = t.split_once(':') {
                let parse = || {
                    value.trim().parse::<f64>().map_err(|_| {
                        err(
                            line,
                            format!(
                                "{}: expected a number, got {:?}",
                                scg_model::bounds::excerpt(key),
                                scg_model::bounds::excerpt(value.trim())
                            ),
                        )
                    })
                };
                if key.starts_with("Latitude") {
                    latitude = Some(parse()?);
                } else if key.starts_with("Longitude") {
                    longitude = Some(parse()?);
                } else if key.starts_with("Elevation") {
                    elevation = Some(parse()?);
                }
            }
            if t.starts_with("time(UTC)") {
                header = Some((line, t.split(',').map(|s| s.trim().to_owned()).collect()));
            }
            continue;
        }
        if starts_with_digit(t) && t.len() > 13 && t.as_bytes()[8] == b':' {
            rows.push((line, t.split(',').collect()));
        } else if !rows.is_empty() {
            // The legend after the data.
            break;
        }
    }
    let Some((header_line, names)) = header else {
        return Err(ResourceError::invalid(
            source_name,
            "no `time(UTC),T2m,…` header line: not a PVGIS TMY CSV",
        ));
    };
    let column = |name: &str| {
        names.iter().position(|n| n == name).ok_or_else(|| {
            err(
                header_line,
                format!(
                    "the header has no column {name:?} (got {})",
                    names.join(",")
                ),
            )
        })
    };
    let idx = [
        column("G(h)")?,
        column("Gb(n)")?,
        column("Gd(h)")?,
        column("T2m")?,
        column("WS10m")?,
    ];
    check_pvgis_order(rows.iter().map(|(_, f)| f[0]), |i| {
        format!("line {}", rows[i].0)
    })
    .map_err(|m| ResourceError::invalid(source_name, m))?;
    let mut cols: [Vec<f64>; 5] = Default::default();
    for (line, fields) in &rows {
        if fields.len() != names.len() {
            return Err(err(
                *line,
                format!("expected {} fields, got {}", names.len(), fields.len()),
            ));
        }
        for (c, &i) in idx.iter().enumerate() {
            let v = fields[i]
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    err(
                        *line,
                        format!(
                            "column {}: expected a number, got {:?}",
                            names[i],
                            scg_model::bounds::excerpt(fields[i])
                        ),
                    )
                })?;
            cols[c].push(v);
        }
    }
    build_pvgis(source_name, latitude, longitude, elevation, cols, |i| {
        format!("line {}", rows[i].0)
    })
}

/// Parse a PVGIS TMY JSON (`outputformat=json`).
pub fn parse_pvgis_json(text: &str, source_name: &str) -> Result<WeatherYear, ResourceError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ResourceError::parse(source_name, e.line(), format!("invalid JSON: {e}")))?;
    let invalid = |msg: String| ResourceError::invalid(source_name, msg);
    let location = &value["inputs"]["location"];
    let coord = |name: &str| location[name].as_f64();
    let hourly = value["outputs"]["tmy_hourly"]
        .as_array()
        .ok_or_else(|| invalid("outputs.tmy_hourly: expected an array of hourly records".into()))?;
    check_pvgis_order(
        hourly.iter().map(|r| r["time(UTC)"].as_str().unwrap_or("")),
        |i| format!("outputs.tmy_hourly[{i}]"),
    )
    .map_err(invalid)?;
    let names = ["G(h)", "Gb(n)", "Gd(h)", "T2m", "WS10m"];
    let mut cols: [Vec<f64>; 5] = Default::default();
    for (i, record) in hourly.iter().enumerate() {
        for (c, name) in names.iter().enumerate() {
            let v = record[*name]
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    invalid(format!(
                        "outputs.tmy_hourly[{i}].{name}: expected a number, got {}",
                        scg_model::bounds::excerpt(&record[*name].to_string())
                    ))
                })?;
            cols[c].push(v);
        }
    }
    build_pvgis(
        source_name,
        coord("latitude"),
        coord("longitude"),
        coord("elevation"),
        cols,
        |i| format!("outputs.tmy_hourly[{i}]"),
    )
}

/// PVGIS TMY rows come from different years but in calendar order: month, day and hour of
/// `YYYYMMDD:HHMM` must increase from row to row.
fn check_pvgis_order<'a>(
    stamps: impl Iterator<Item = &'a str>,
    locate: impl Fn(usize) -> String,
) -> Result<(), String> {
    let mut last: Option<&str> = None;
    for (i, stamp) in stamps.enumerate() {
        let key = stamp.get(4..13).filter(|k| k.is_char_boundary(0));
        let Some(key) = key else {
            return Err(format!(
                "{}: time {:?} is not YYYYMMDD:HHMM",
                locate(i),
                stamp.chars().take(20).collect::<String>()
            ));
        };
        if let Some(prev) = last
            && key <= prev
        {
            return Err(format!(
                "{}: rows out of time order: {stamp} after a row of {prev} (MMDD:HHMM); \
                 expected increasing hours",
                locate(i)
            ));
        }
        last = Some(key);
    }
    Ok(())
}

fn build_pvgis(
    source_name: &str,
    latitude: Option<f64>,
    longitude: Option<f64>,
    elevation: Option<f64>,
    cols: [Vec<f64>; 5],
    locate: impl Fn(usize) -> String,
) -> Result<WeatherYear, ResourceError> {
    let invalid = |msg: String| ResourceError::invalid(source_name, msg);
    let (Some(latitude_deg), Some(longitude_deg)) = (latitude, longitude) else {
        return Err(invalid("missing latitude or longitude of the site".into()));
    };
    check_header_location(latitude_deg, longitude_deg, None).map_err(invalid)?;
    let [ghi, dni, dhi, temperature, wind] = cols;
    if ghi.len() != HOURS_PER_YEAR {
        return Err(invalid(format!(
            "a PVGIS TMY has {HOURS_PER_YEAR} hourly records, got {}",
            ghi.len()
        )));
    }
    let ranges = [
        (&ghi, "G(h)", 0.0, 1500.0),
        (&dni, "Gb(n)", 0.0, 1500.0),
        (&dhi, "Gd(h)", 0.0, 1500.0),
        (&temperature, "T2m", -90.0, 70.0),
        (&wind, "WS10m", 0.0, 60.0),
    ];
    for (col, name, lo, hi) in ranges {
        if let Some(i) = col.iter().position(|v| *v < lo || *v > hi) {
            return Err(invalid(format!(
                "{}: {name} = {} is outside [{lo}, {hi}]",
                locate(i),
                col[i]
            )));
        }
    }
    // PVGIS rows are UTC hours of a 365-day year in order (the parsers keep the file's order).
    let site = SolarSite {
        latitude_deg,
        longitude_deg,
        time_zone_h: 0.0,
    };
    check_irradiance_plausible(&site, &ghi, |i| i)
        .map_err(|(i, m)| invalid(format!("{}: {m}", locate(i))))?;
    Ok(WeatherYear {
        source_name: source_name.to_owned(),
        latitude_deg,
        longitude_deg,
        elevation_m: elevation.unwrap_or(0.0),
        clock_offset_h: 0.0,
        ghi_w_per_m2: ghi,
        dni_w_per_m2: dni,
        dhi_w_per_m2: dhi,
        temperature_c: temperature,
        wind_speed_m_per_s: wind,
        filled_missing: 0,
    })
}

/// Parse a weather file in the given format.
pub fn parse(
    text: &str,
    format: solar::WeatherFormat,
    source_name: &str,
) -> Result<WeatherYear, ResourceError> {
    match format {
        solar::WeatherFormat::Epw => parse_epw(text, source_name),
        solar::WeatherFormat::PvgisCsv => parse_pvgis_csv(text, source_name),
        solar::WeatherFormat::PvgisJson => parse_pvgis_json(text, source_name),
    }
}
