//! Semantic checks of a parsed scenario. Every problem is collected, each with its field path.

use crate::bounds::{self, PRICE_LIMIT_EUR_PER_MWH as PRICE};
use crate::builtin::PROFILE_NAMES;
use crate::error::ValidationError;
use crate::roof;
use crate::scenario::*;
use crate::time::TimeGrid;
use std::collections::BTreeSet;

/// Upper bound on prosumers in one scenario: a city, with room to spare. The run's memory
/// estimate (`scg_sim::check`) bounds the product of prosumers and steps further.
pub const MAX_PROSUMERS: usize = 100_000;

struct Checker {
    errors: Vec<ValidationError>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn finite_in(&mut self, path: &str, value: f64, min: f64, max: f64) {
        if !value.is_finite() || value < min || value > max {
            self.fail(
                path,
                format!("must be between {min} and {max}, got {value:?}"),
            );
        }
    }

    /// A scaled average load: > 0 and at most [`bounds::MAX_LOAD_KW`] around the clock.
    fn average(&mut self, path: &str, value: f64) {
        let max = bounds::MAX_LOAD_KW * 24.0;
        if !value.is_finite() || value <= 0.0 || value > max {
            self.fail(
                path,
                format!("must be > 0, got {value} (and at most {max} kWh/day)"),
            );
        }
    }
}

pub(crate) fn validate(s: &Scenario) -> Vec<ValidationError> {
    let mut c = Checker { errors: Vec::new() };
    if s.schema_version != SCHEMA_VERSION {
        c.fail(
            "schema_version",
            format!(
                "this scg reads schema version {SCHEMA_VERSION}, got {}",
                s.schema_version
            ),
        );
    }
    if s.name.trim().is_empty() {
        c.fail("name", "must not be empty");
    }
    let l = &s.location;
    c.finite_in("location.latitude_deg", l.latitude_deg, -90.0, 90.0);
    c.finite_in("location.longitude_deg", l.longitude_deg, -180.0, 180.0);
    c.finite_in("location.elevation_m", l.elevation_m, -500.0, 9000.0);
    if l.time_zone.parse::<chrono_tz::Tz>().is_err() {
        c.fail(
            "location.time_zone",
            format!(
                "must be an IANA time zone name such as \"Europe/Rome\", got {:?}",
                l.time_zone
            ),
        );
    }
    if !matches!(s.time.step_minutes, 15 | 60) {
        c.fail(
            "time.step_minutes",
            format!("must be 60 or 15, got {}", s.time.step_minutes),
        );
    } else if let ModelYear::Year(y) = s.time.model_year
        && !(bounds::MODEL_YEAR.0..=bounds::MODEL_YEAR.1).contains(&y)
    {
        let (min, max) = bounds::MODEL_YEAR;
        c.fail(
            "time.model_year",
            format!("must be \"homer\" or a year between {min} and {max}, got {y}"),
        );
    } else if let Err(message) = TimeGrid::new(&s.time, "UTC") {
        c.fail("time.model_year", message);
    }
    validate_community(&mut c, &s.community);
    if let Some(search) = &s.search {
        if search.grid_connected.is_empty() {
            c.fail("search.grid_connected", "must list at least one option");
        }
        c.finite_in(
            "search.max_capacity_shortage_pct",
            search.max_capacity_shortage_pct,
            0.0,
            100.0,
        );
    }
    validate_prosumers(&mut c, &s.prosumers);
    c.errors
}

fn validate_community(c: &mut Checker, community: &CommunitySettings) {
    if let Some(m) = &community.market {
        c.finite_in(
            "community.market.fee_eur_per_mwh",
            m.fee_eur_per_mwh,
            0.0,
            PRICE,
        );
        if let Some(pct) = m.fee_pct {
            c.finite_in("community.market.fee_pct", pct, 0.0, 100.0);
        }
    }
    c.finite_in(
        "community.internal_price_eur_per_mwh",
        community.internal_price_eur_per_mwh,
        -PRICE,
        PRICE,
    );
    c.finite_in(
        "community.zonal_price_eur_per_mwh",
        community.zonal_price_eur_per_mwh,
        -PRICE,
        PRICE,
    );
    if let Some(path) = &community.zonal_price_file
        && path.as_os_str().is_empty()
    {
        c.fail("community.zonal_price_file", "must name a CSV file");
    }
    if let GridPeakSignal::PriceAbove {
        threshold_eur_per_mwh,
    } = community.grid_peak
    {
        c.finite_in(
            "community.grid_peak.threshold_eur_per_mwh",
            threshold_eur_per_mwh,
            -PRICE,
            PRICE,
        );
    }
}

fn validate_search(c: &mut Checker, path: &str, search: &ProsumerSearch) {
    let lists: [(&str, Option<Vec<f64>>); 4] = [
        ("pv_kwp", search.pv_kwp.clone()),
        (
            "wind_turbines",
            search
                .wind_turbines
                .as_ref()
                .map(|v| v.iter().map(|n| f64::from(*n)).collect()),
        ),
        ("battery_kwh", search.battery_kwh.clone()),
        ("converter_kw", search.converter_kw.clone()),
    ];
    // Whether a list needs a component section is the search's business
    // (`scg_sim::sizing`): an optimize-only list never blocks `scg simulate`.
    for (name, values) in lists {
        let Some(values) = values else { continue };
        let field = format!("{path}.search.{name}");
        if values.is_empty() {
            c.fail(&field, "must list at least one candidate");
        }
        let max = match name {
            "wind_turbines" => f64::from(bounds::MAX_TURBINES),
            "battery_kwh" => bounds::MAX_BATTERY_KWH,
            _ => bounds::MAX_POWER_KW,
        };
        for (k, v) in values.iter().enumerate() {
            c.finite_in(&format!("{field}[{k}]"), *v, 0.0, max);
        }
    }
}

fn validate_prosumers(c: &mut Checker, prosumers: &[Prosumer]) {
    if prosumers.is_empty() {
        c.fail("prosumers", "a community needs at least one prosumer");
    }
    if prosumers.len() > MAX_PROSUMERS {
        c.fail(
            "prosumers",
            format!("at most {MAX_PROSUMERS} prosumers, got {}", prosumers.len()),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, p) in prosumers.iter().enumerate() {
        let path = format!("prosumers[{i}]");
        if !is_valid_id(&p.id) {
            c.fail(
                format!("{path}.id"),
                format!(
                    "must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter, got {:?}",
                    bounds::excerpt(&p.id)
                ),
            );
        } else if bounds::RESERVED_IDS.contains(&p.id.as_str()) {
            c.fail(
                format!("{path}.id"),
                format!(
                    "{:?} is reserved (it names the community's own report columns); \
                     reserved ids: {}",
                    p.id,
                    bounds::RESERVED_IDS.join(", ")
                ),
            );
        } else if !seen.insert(p.id.as_str()) {
            c.fail(format!("{path}.id"), format!("duplicate id {:?}", p.id));
        }
        validate_load(c, &format!("{path}.load"), &p.load);
        if let Some(search) = &p.search {
            validate_search(c, &path, search);
        }
        if let Some(roof_m2) = p.roof_area_m2 {
            validate_roof(c, &path, p, roof_m2);
        }
        if p.converter.is_some() && p.battery.is_none() {
            c.fail(
                format!("{path}.converter"),
                "a converter without a battery has nothing to convert",
            );
        }
    }
}

/// The PV arrays and the PV candidates of the search must fit on the declared roof.
fn validate_roof(c: &mut Checker, path: &str, p: &Prosumer, roof_m2: f64) {
    let field = format!("{path}.roof_area_m2");
    if !roof_m2.is_finite() || roof_m2 <= 0.0 || roof_m2 > roof::MAX_ROOF_AREA_M2 {
        c.fail(
            field,
            format!(
                "must be > 0 and at most {} m², got {roof_m2:?}",
                roof::MAX_ROOF_AREA_M2
            ),
        );
        return;
    }
    let limit_kwp = roof::pv_limit_kwp(roof_m2);
    let holds = format!(
        "{roof_m2} m² of roof hold {limit_kwp:.1} kWp ({:.0} % usable, {} m² of modules per kWp)",
        roof::ROOF_USABLE_SHARE * 100.0,
        roof::MODULE_M2_PER_KWP
    );
    // A malformed `capacity_kwp` is the PV parser's error (scg-sim); count only numbers here.
    let installed_kwp: f64 =
        p.pv.iter()
            .filter_map(|a| {
                let v = a.get("capacity_kwp")?;
                v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
            })
            .sum();
    if !roof::fits(installed_kwp, roof_m2) {
        c.fail(
            format!("{path}.pv"),
            format!("{installed_kwp} kWp of PV does not fit on the roof: {holds}"),
        );
    }
    let candidates = p.search.as_ref().and_then(|s| s.pv_kwp.as_deref());
    for (k, &kwp) in candidates.unwrap_or_default().iter().enumerate() {
        if kwp.is_finite() && !roof::fits(kwp, roof_m2) {
            c.fail(
                format!("{path}.search.pv_kwp[{k}]"),
                format!("{kwp} kWp does not fit on the roof: {holds}"),
            );
        }
    }
}

/// Ids name CSV columns and JSON keys, so keep them plain.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && id.len() <= 64
        && chars.all(|ch| matches!(ch, 'a'..='z' | '0'..='9' | '_' | '-'))
}

fn validate_load(c: &mut Checker, path: &str, load: &Load) {
    match load {
        Load::Synthetic(s) => {
            let sources = [
                s.profile.is_some(),
                s.profile_file.is_some(),
                s.profile_kw.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            if sources != 1 {
                c.fail(
                    path,
                    format!(
                        "a synthetic load needs exactly one of `profile`, `profile_file`, `profile_kw`, got {sources}"
                    ),
                );
            }
            if let Some(name) = &s.profile
                && !PROFILE_NAMES.contains(&name.as_str())
            {
                c.fail(
                    format!("{path}.profile"),
                    format!(
                        "unknown built-in profile {name:?}; expected one of {}",
                        PROFILE_NAMES.join(", ")
                    ),
                );
            }
            if let Some(inline) = &s.profile_kw {
                check_profile_table(c, &format!("{path}.profile_kw.weekday"), &inline.weekday);
                if let Some(weekend) = &inline.weekend {
                    check_profile_table(c, &format!("{path}.profile_kw.weekend"), weekend);
                }
            }
            c.finite_in(
                &format!("{path}.day_to_day_variability_pct"),
                s.day_to_day_variability_pct,
                0.0,
                100.0,
            );
            c.finite_in(
                &format!("{path}.timestep_variability_pct"),
                s.timestep_variability_pct,
                0.0,
                100.0,
            );
            if let Some(avg) = s.scaled_average_kwh_per_day {
                c.average(&format!("{path}.scaled_average_kwh_per_day"), avg);
            }
        }
        Load::TimeSeries(t) => {
            if t.file.as_os_str().is_empty() {
                c.fail(format!("{path}.file"), "must name a CSV file");
            }
            if let Some(avg) = t.scaled_average_kwh_per_day {
                c.average(&format!("{path}.scaled_average_kwh_per_day"), avg);
            }
        }
    }
}

fn check_profile_table(c: &mut Checker, path: &str, rows: &[Vec<f64>]) {
    if rows.len() != 12 {
        c.fail(
            path,
            format!("must have 12 rows (one per month), got {}", rows.len()),
        );
    }
    for (m, row) in rows.iter().enumerate() {
        if row.len() != 24 {
            c.fail(
                format!("{path}[{m}]"),
                format!("must have 24 hourly values, got {}", row.len()),
            );
        }
        for (h, v) in row.iter().enumerate() {
            c.finite_in(&format!("{path}[{m}][{h}]"), *v, 0.0, bounds::MAX_LOAD_KW);
        }
    }
}
