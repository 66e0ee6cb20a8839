//! The `[prosumers.home]` section: how many dwellings, which devices they have, each device's
//! physics and the occupant's accepted windows; published defaults per device kind (sources in
//! `docs/home.md`); and validation that names the prosumer and device of every error.
//!
//! Times of day are hours after midnight of the run's day (`deadline_h` may pass 24: a
//! dishwasher started at 21:00 may finish by 07:00 the next morning). Nothing here schedules.

use crate::error::HomeError;
use scg_model::bounds::{
    HOME_DWELLINGS, HOME_START_SPREAD_MAX_MINUTES, PRICE_LIMIT_EUR_PER_MWH, out_of_range,
};
use serde::{Deserialize, Serialize};

/// Resolution of appliance power profiles, minutes.
pub const PROFILE_STEP_MINUTES: u32 = 15;
/// Specific heat of water, kWh per litre and kelvin (4.186 kJ/(kg·K), 1 kg/L).
pub const WATER_KWH_PER_L_K: f64 = 4.186 / 3600.0;
/// Daily hot-water draw of the EN 16147 / Regulation (EU) 814/2013 tapping profile M, kWh.
pub const PROFILE_M_KWH_PER_DAY: f64 = 5.845;

/// A shiftable appliance kind; each has published defaults ([`ApplianceConfig::defaults`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplianceKind {
    /// Washing machine, eco 40-60 programme.
    WashingMachine,
    /// Dishwasher, eco programme.
    Dishwasher,
    /// Tumble dryer (heat-pump type).
    Dryer,
}

impl ApplianceKind {
    /// The snake-case name used in TOML and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::WashingMachine => "washing_machine",
            Self::Dishwasher => "dishwasher",
            Self::Dryer => "dryer",
        }
    }
}

/// One shiftable appliance type present in `count` dwellings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplianceConfig {
    /// The kind (selects the defaults of every field left out).
    pub kind: ApplianceKind,
    /// Number of dwellings that have one (at most `dwellings`).
    pub count: u32,
    /// Power per 15-minute slot of one cycle, kW; its length is the run length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_kw: Option<Vec<f64>>,
    /// Cycles per week (spread evenly over the days, staggered by dwelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_per_week: Option<f64>,
    /// Earliest accepted start, hours after midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_start_h: Option<f64>,
    /// Latest accepted end, hours after midnight of the start day (may exceed 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_h: Option<f64>,
    /// When the occupant starts it unmanaged, hours after midnight (the median dwelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usual_start_h: Option<f64>,
}

/// An appliance with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Appliance {
    /// The kind.
    pub kind: ApplianceKind,
    /// Dwellings that have one.
    pub count: u32,
    /// Power per 15-minute slot, kW.
    pub profile_kw: Vec<f64>,
    /// Cycles per week.
    pub runs_per_week: f64,
    /// Earliest accepted start, h.
    pub earliest_start_h: f64,
    /// Latest accepted end, h.
    pub deadline_h: f64,
    /// Usual (unmanaged) start, h.
    pub usual_start_h: f64,
}

impl Appliance {
    /// Length of one cycle, hours.
    pub fn run_hours(&self) -> f64 {
        self.profile_kw.len() as f64 * f64::from(PROFILE_STEP_MINUTES) / 60.0
    }

    /// Energy of one cycle, kWh.
    pub fn cycle_kwh(&self) -> f64 {
        self.profile_kw.iter().sum::<f64>() * f64::from(PROFILE_STEP_MINUTES) / 60.0
    }
}

impl ApplianceConfig {
    /// Published defaults for a kind (see `docs/home.md` for the sources):
    /// - washing machine: 0.75 kWh per eco 40-60 cycle of 3 h, heating first; 220 cycles a
    ///   year (the assumption of Regulation (EU) 2019/2014) = 4.2 a week;
    /// - dishwasher: 0.85 kWh per eco cycle of 3.5 h with two heating phases; 280 cycles a
    ///   year (Regulation (EU) 2019/2017) = 5.4 a week;
    /// - dryer (heat pump): 1.5 kWh per 2-hour cycle; 160 cycles a year (Regulation (EU)
    ///   392/2012) = 3.1 a week.
    pub fn defaults(kind: ApplianceKind) -> Appliance {
        let (profile_kw, runs_per_week, earliest, deadline, usual) = match kind {
            ApplianceKind::WashingMachine => {
                let mut p = vec![1.6, 0.2];
                p.extend([0.1; 8]);
                p.extend([0.2, 0.2]);
                (p, 220.0 / 52.0, 7.0, 22.0, 19.0)
            }
            ApplianceKind::Dishwasher => {
                let mut p = vec![
                    1.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.2, 0.05, 0.05, 0.05, 0.05,
                ];
                p.extend([0.05; 2]);
                (p, 280.0 / 52.0, 20.0, 31.0, 21.0)
            }
            ApplianceKind::Dryer => (vec![0.75; 8], 160.0 / 52.0, 9.0, 23.0, 20.0),
        };
        Appliance {
            kind,
            count: 0,
            profile_kw,
            runs_per_week,
            earliest_start_h: earliest,
            deadline_h: deadline,
            usual_start_h: usual,
        }
    }

    /// This appliance with the kind's defaults for every field left out.
    pub fn resolve(&self) -> Appliance {
        let d = Self::defaults(self.kind);
        Appliance {
            kind: self.kind,
            count: self.count,
            profile_kw: self.profile_kw.clone().unwrap_or(d.profile_kw),
            runs_per_week: self.runs_per_week.unwrap_or(d.runs_per_week),
            earliest_start_h: self.earliest_start_h.unwrap_or(d.earliest_start_h),
            deadline_h: self.deadline_h.unwrap_or(d.deadline_h),
            usual_start_h: self.usual_start_h.unwrap_or(d.usual_start_h),
        }
    }
}

/// An electric storage water heater present in `count` dwellings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaterHeaterConfig {
    /// Dwellings that have one.
    pub count: u32,
    /// Tank volume, litres.
    #[serde(default = "default_tank_l")]
    pub tank_l: f64,
    /// Heating element, kW.
    #[serde(default = "default_element_kw")]
    pub element_kw: f64,
    /// Lowest tank temperature allowed (hot water still delivered), °C.
    #[serde(default = "default_min_c")]
    pub min_c: f64,
    /// Highest tank temperature (thermostat setting), °C.
    #[serde(default = "default_max_c")]
    pub max_c: f64,
    /// Cold-water inlet temperature, °C.
    #[serde(default = "default_cold_c")]
    pub cold_water_c: f64,
    /// Temperature around the tank, °C.
    #[serde(default = "default_ambient_c")]
    pub ambient_c: f64,
    /// Standing loss, W per kelvin between tank and ambient.
    #[serde(default = "default_loss_w_per_k")]
    pub loss_w_per_k: f64,
    /// Daily draw as (hour of day, kWh) taps; default: EN 16147 profile M (5.845 kWh/day).
    #[serde(default = "profile_m")]
    pub draws: Vec<(f64, f64)>,
}

fn default_tank_l() -> f64 {
    80.0
}
fn default_element_kw() -> f64 {
    1.2
}
fn default_min_c() -> f64 {
    45.0
}
fn default_max_c() -> f64 {
    65.0
}
fn default_cold_c() -> f64 {
    10.0
}
fn default_ambient_c() -> f64 {
    20.0
}
fn default_loss_w_per_k() -> f64 {
    // 1.3 kWh/24 h at a 45 K difference: a typical 80-litre class-C standing loss.
    1300.0 / 24.0 / 45.0
}

/// The tapping profile M of EN 16147 and Regulation (EU) 814/2013, Annex VII, Table 1:
/// 23 taps, 5.845 kWh per day (hour of day, kWh).
pub fn profile_m() -> Vec<(f64, f64)> {
    let small = 0.105;
    let hm = |h: f64, m: f64| h + m / 60.0;
    vec![
        (hm(7.0, 0.0), small),
        (hm(7.0, 5.0), 1.4),
        (hm(7.0, 30.0), small),
        (hm(8.0, 1.0), small),
        (hm(8.0, 15.0), small),
        (hm(8.0, 30.0), small),
        (hm(8.0, 45.0), small),
        (hm(9.0, 0.0), small),
        (hm(9.0, 30.0), small),
        (hm(10.0, 30.0), small),
        (hm(11.0, 30.0), small),
        (hm(11.0, 45.0), small),
        (hm(12.0, 45.0), 0.315),
        (hm(14.0, 30.0), small),
        (hm(15.0, 30.0), small),
        (hm(16.0, 30.0), small),
        (hm(18.0, 0.0), small),
        (hm(18.0, 15.0), small),
        (hm(18.0, 30.0), small),
        (hm(19.0, 0.0), small),
        (hm(20.0, 30.0), 0.735),
        (hm(21.0, 15.0), small),
        (hm(21.0, 30.0), 1.4),
    ]
}

impl WaterHeaterConfig {
    /// Usable energy stored between `min_c` and `max_c`, kWh.
    pub fn usable_kwh(&self) -> f64 {
        self.tank_l * WATER_KWH_PER_L_K * (self.max_c - self.min_c)
    }

    /// Energy above cold water at temperature `t_c`, kWh.
    pub fn energy_at_kwh(&self, t_c: f64) -> f64 {
        self.tank_l * WATER_KWH_PER_L_K * (t_c - self.cold_water_c)
    }

    /// Draw per step of a day with `steps_per_day` steps, kWh.
    pub fn draw_per_step_kwh(&self, steps_per_day: usize) -> Vec<f64> {
        let mut out = vec![0.0; steps_per_day];
        let per_h = steps_per_day as f64 / 24.0;
        for &(h, kwh) in &self.draws {
            let k = ((h.rem_euclid(24.0)) * per_h).floor() as usize;
            if let Some(x) = out.get_mut(k.min(steps_per_day.saturating_sub(1))) {
                *x += kwh;
            }
        }
        out
    }
}

/// A heat pump heating a dwelling modelled as one thermal resistance and one capacitance
/// (1R1C, ISO 52016-1's simplest lumped form), present in `count` dwellings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeatPumpConfig {
    /// Dwellings that have one.
    pub count: u32,
    /// Largest electrical input, kW.
    #[serde(default = "default_hp_kw")]
    pub max_electric_kw: f64,
    /// Coefficient of performance (heat out per electricity in), constant.
    #[serde(default = "default_cop")]
    pub cop: f64,
    /// Thermal resistance between indoor air and outdoors, K per kW.
    #[serde(default = "default_r")]
    pub resistance_k_per_kw: f64,
    /// Thermal capacitance of the dwelling, kWh per K.
    #[serde(default = "default_c")]
    pub capacitance_kwh_per_k: f64,
    /// Lowest comfortable indoor temperature, °C (EN 16798-1 category II, heating: 20).
    #[serde(default = "default_comfort_min")]
    pub comfort_min_c: f64,
    /// Highest comfortable indoor temperature, °C (EN 16798-1 category II, heating: 24).
    #[serde(default = "default_comfort_max")]
    pub comfort_max_c: f64,
    /// Thermostat setpoint when unmanaged, °C.
    #[serde(default = "default_setpoint")]
    pub setpoint_c: f64,
}

fn default_hp_kw() -> f64 {
    2.0
}
fn default_cop() -> f64 {
    3.0
}
fn default_r() -> f64 {
    // A 70 m² flat losing 1.5 kW at 20 K difference.
    20.0 / 1.5
}
fn default_c() -> f64 {
    // About 10 kWh/K: a medium-weight flat (ISO 52016-1 / EN ISO 13790 class "medium").
    10.0
}
fn default_comfort_min() -> f64 {
    20.0
}
fn default_comfort_max() -> f64 {
    24.0
}
fn default_setpoint() -> f64 {
    21.0
}

/// The `[prosumers.home]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeConfig {
    /// Dwellings behind the prosumer's meter (1 for a house; ~30 for the 614 kWh/day midrise).
    pub dwellings: u32,
    /// Whether the agent schedules the devices (false = every device runs as the occupant
    /// would, which reproduces the HOMER load exactly).
    #[serde(default = "yes")]
    pub managed: bool,
    /// Most the appliances of one dwelling may draw together, kW (the 3 kW Italian domestic
    /// contract less a reserve for the rest of the house).
    #[serde(default = "default_cap")]
    pub appliance_power_cap_kw: f64,
    /// Dwellings' usual start times are spread evenly over this many minutes around each
    /// appliance's `usual_start_h` (occupants do not all start at one minute).
    #[serde(default = "default_spread")]
    pub usual_start_spread_minutes: u32,
    /// What the agent adds to the member's price while the main grid is at peak, EUR/MWh: how
    /// much the community wants home load out of the grid's peak hours (our assumption, not
    /// a tariff; 0 ignores the signal).
    #[serde(default = "default_peak_adder")]
    pub grid_peak_adder_eur_per_mwh: f64,
    /// Shiftable appliances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appliances: Vec<ApplianceConfig>,
    /// Electric water heaters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub water_heater: Option<WaterHeaterConfig>,
    /// Heat pumps (need outdoor temperatures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heat_pump: Option<HeatPumpConfig>,
}

fn yes() -> bool {
    true
}
fn default_cap() -> f64 {
    2.5
}
fn default_spread() -> u32 {
    180
}
fn default_peak_adder() -> f64 {
    50.0
}

impl HomeConfig {
    /// The appliances with defaults filled in.
    pub fn appliances(&self) -> Vec<Appliance> {
        self.appliances
            .iter()
            .map(ApplianceConfig::resolve)
            .collect()
    }

    /// Check every device; the first problem is returned, naming prosumer, device and field.
    pub fn validate(&self, prosumer: &str) -> Result<(), HomeError> {
        let err = |device: String, field: &str, message: String| HomeError::Config {
            prosumer: prosumer.to_string(),
            device,
            field: field.to_string(),
            message,
        };
        let (lo, hi) = HOME_DWELLINGS;
        if !(lo..=hi).contains(&self.dwellings) {
            return Err(err(
                "home".into(),
                "dwellings",
                format!("expected {lo} to {hi}, found {}", self.dwellings),
            ));
        }
        if let Some(m) = out_of_range(
            self.grid_peak_adder_eur_per_mwh,
            0.0,
            PRICE_LIMIT_EUR_PER_MWH,
        ) {
            return Err(err("home".into(), "grid_peak_adder_eur_per_mwh", m));
        }
        if !(self.appliance_power_cap_kw > 0.0 && self.appliance_power_cap_kw.is_finite()) {
            return Err(err(
                "home".into(),
                "appliance_power_cap_kw",
                format!(
                    "expected a positive power, found {}",
                    self.appliance_power_cap_kw
                ),
            ));
        }
        if self.usual_start_spread_minutes > HOME_START_SPREAD_MAX_MINUTES {
            return Err(err(
                "home".into(),
                "usual_start_spread_minutes",
                format!(
                    "expected at most {HOME_START_SPREAD_MAX_MINUTES}, found {}",
                    self.usual_start_spread_minutes
                ),
            ));
        }
        for (i, a) in self.appliances().iter().enumerate() {
            let device = format!("appliances[{i}] ({})", a.kind.name());
            self.validate_appliance(a, &|f, m| err(device.clone(), f, m))?;
        }
        if let Some(w) = &self.water_heater {
            validate_water_heater(w, self.dwellings, &|f, m| err("water_heater".into(), f, m))?;
        }
        if let Some(h) = &self.heat_pump {
            validate_heat_pump(h, self.dwellings, &|f, m| err("heat_pump".into(), f, m))?;
        }
        Ok(())
    }

    fn validate_appliance(
        &self,
        a: &Appliance,
        err: &dyn Fn(&str, String) -> HomeError,
    ) -> Result<(), HomeError> {
        if a.count > self.dwellings {
            return Err(err(
                "count",
                format!("{} exceeds the {} dwellings", a.count, self.dwellings),
            ));
        }
        if a.profile_kw.is_empty() || a.profile_kw.len() > 96 {
            return Err(err(
                "profile_kw",
                format!(
                    "expected 1 to 96 slots of 15 minutes, found {}",
                    a.profile_kw.len()
                ),
            ));
        }
        if let Some(p) = a.profile_kw.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
            return Err(err(
                "profile_kw",
                format!("expected powers >= 0 kW, found {p}"),
            ));
        }
        let peak = a.profile_kw.iter().copied().fold(0.0, f64::max);
        if peak > self.appliance_power_cap_kw {
            return Err(err(
                "profile_kw",
                format!(
                    "draws {peak} kW, more than the dwelling's appliance_power_cap_kw {}",
                    self.appliance_power_cap_kw
                ),
            ));
        }
        if !(a.runs_per_week > 0.0 && a.runs_per_week <= 7.0) {
            return Err(err(
                "runs_per_week",
                format!(
                    "expected more than 0 and at most 7, found {}",
                    a.runs_per_week
                ),
            ));
        }
        if !(0.0..24.0).contains(&a.earliest_start_h) {
            return Err(err(
                "earliest_start_h",
                format!("expected 0 to 24 h, found {}", a.earliest_start_h),
            ));
        }
        let window_h = a.deadline_h - a.earliest_start_h;
        if !(a.deadline_h <= a.earliest_start_h + 24.0 && window_h >= a.run_hours()) {
            return Err(err(
                "deadline_h",
                format!(
                    "the appliance cannot fit its window: a run takes {:.2} h but the window \
                     {:.2}-{:.2} h is {:.2} h long (at most 24 h)",
                    a.run_hours(),
                    a.earliest_start_h,
                    a.deadline_h,
                    window_h
                ),
            ));
        }
        if !(a.usual_start_h >= a.earliest_start_h
            && a.usual_start_h + a.run_hours() <= a.deadline_h)
        {
            return Err(err(
                "usual_start_h",
                format!(
                    "a run started at {:.2} h does not end within {:.2}-{:.2} h",
                    a.usual_start_h, a.earliest_start_h, a.deadline_h
                ),
            ));
        }
        Ok(())
    }
}

fn validate_water_heater(
    w: &WaterHeaterConfig,
    dwellings: u32,
    err: &dyn Fn(&str, String) -> HomeError,
) -> Result<(), HomeError> {
    if w.count > dwellings {
        return Err(err(
            "count",
            format!("{} exceeds the {dwellings} dwellings", w.count),
        ));
    }
    for (field, v) in [
        ("tank_l", w.tank_l),
        ("element_kw", w.element_kw),
        ("loss_w_per_k", w.loss_w_per_k + 1.0),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(err(field, format!("expected a positive number, found {v}")));
        }
    }
    if !(w.min_c < w.max_c && w.max_c < 100.0 && w.cold_water_c < w.min_c) {
        return Err(err(
            "min_c",
            format!(
                "expected cold_water_c < min_c < max_c < 100 °C, found {} / {} / {}",
                w.cold_water_c, w.min_c, w.max_c
            ),
        ));
    }
    if let Some((h, kwh)) = w
        .draws
        .iter()
        .find(|(h, kwh)| !(h.is_finite() && (0.0..24.0).contains(h) && *kwh >= 0.0))
    {
        return Err(err(
            "draws",
            format!("expected (hour 0-24, kWh >= 0), found ({h}, {kwh})"),
        ));
    }
    // The largest hour of draws must fit in the tank's usable energy plus one hour of
    // heating, and a day's draws and losses within a day of heating.
    let hourly = w.draw_per_step_kwh(24);
    let worst = hourly.iter().copied().fold(0.0, f64::max);
    if worst > w.usable_kwh() + w.element_kw {
        return Err(err(
            "tank_l",
            format!(
                "the tank cannot meet its draw: {worst:.2} kWh drawn in one hour, but it holds \
                 {:.2} kWh between {} and {} °C plus {} kWh of heating",
                w.usable_kwh(),
                w.min_c,
                w.max_c,
                w.element_kw
            ),
        ));
    }
    let daily =
        hourly.iter().sum::<f64>() + w.loss_w_per_k / 1000.0 * (w.max_c - w.ambient_c) * 24.0;
    if daily > w.element_kw * 24.0 {
        return Err(err(
            "element_kw",
            format!(
                "the tank cannot meet its draw: {daily:.2} kWh a day (draws and losses) but \
                 the element gives at most {:.2} kWh",
                w.element_kw * 24.0
            ),
        ));
    }
    Ok(())
}

fn validate_heat_pump(
    h: &HeatPumpConfig,
    dwellings: u32,
    err: &dyn Fn(&str, String) -> HomeError,
) -> Result<(), HomeError> {
    if h.count > dwellings {
        return Err(err(
            "count",
            format!("{} exceeds the {dwellings} dwellings", h.count),
        ));
    }
    if h.comfort_min_c >= h.comfort_max_c || h.comfort_min_c.is_nan() || h.comfort_max_c.is_nan() {
        return Err(err(
            "comfort_min_c",
            format!(
                "the comfort band is empty: comfort_min_c {} must be below comfort_max_c {}",
                h.comfort_min_c, h.comfort_max_c
            ),
        ));
    }
    if !(h.comfort_min_c..=h.comfort_max_c).contains(&h.setpoint_c) {
        return Err(err(
            "setpoint_c",
            format!(
                "expected within the comfort band {}-{} °C, found {}",
                h.comfort_min_c, h.comfort_max_c, h.setpoint_c
            ),
        ));
    }
    for (field, v) in [
        ("max_electric_kw", h.max_electric_kw),
        ("cop", h.cop),
        ("resistance_k_per_kw", h.resistance_k_per_kw),
        ("capacitance_kwh_per_k", h.capacitance_kwh_per_k),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(err(field, format!("expected a positive number, found {v}")));
        }
    }
    Ok(())
}
