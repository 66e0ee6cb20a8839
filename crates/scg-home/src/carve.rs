//! The home devices inside a prosumer's load: carve the flexible part out of the HOMER load
//! (so that, unmanaged, the total is the HOMER load to the last bit of every step), then run
//! the agent over the year and report what it changed.
//!
//! Unmanaged, every appliance run starts at its dwelling's usual time and the thermal loads
//! follow their thermostats. Managed, each day is scheduled in turn: the appliances of each
//! dwelling exactly ([`crate::appliance::schedule_dwelling`]), then the water heaters and heat
//! pumps (one LP per device group and day, [`crate::thermal`]); every device sees what the
//! devices scheduled before it left of the community surplus and of the day's peak headroom
//! (the day's unmanaged peak, so management never raises a day's peak where it has a
//! choice). This is a day-ahead schedule on the forecast the caller passes: the caller decides
//! whether that forecast is perfect. Never changes the inflexible part.

use crate::appliance::{DwellingMemo, Run, Signals, resample_kw};
use crate::config::{Appliance, HomeConfig, PROFILE_STEP_MINUTES};
use crate::error::HomeError;
use crate::thermal::{Linear, Share, SolveCounts, StepOffer, solver_error};
use serde::Serialize;

/// What the caller knows about the year.
#[derive(Debug, Clone, PartialEq)]
pub struct HomeInputs<'a> {
    /// Step length, minutes (must divide a day).
    pub step_minutes: u32,
    /// Outdoor temperature per step, °C (needed only with a heat pump).
    pub outdoor_c: Option<&'a [f64]>,
}

/// One appliance run in the year.
#[derive(Debug, Clone, PartialEq)]
pub struct YearRun {
    /// Dwelling index.
    pub dwelling: u32,
    /// Day index.
    pub day: usize,
    /// Index into the configured appliances.
    pub appliance: usize,
    /// The run (absolute steps).
    pub run: Run,
    /// The occupant's own start step.
    pub usual_step: usize,
}

/// The HOMER load split into the part the agent never moves and the home devices as the
/// occupants would run them.
#[derive(Debug, Clone, PartialEq)]
pub struct Carved {
    /// HOMER load minus the devices, kW per step (never negative).
    pub inflexible_kw: Vec<f64>,
    /// The devices unmanaged, kW per step; `inflexible + unmanaged_flex` is the HOMER load.
    pub unmanaged_flex_kw: Vec<f64>,
}

/// Per-prosumer figures of the home agent (`summary.json` `home` object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomeResult {
    /// Highest step of the prosumer's load with the devices unmanaged (the HOMER load), kW.
    pub peak_unmanaged_kw: f64,
    /// Highest step with the devices managed, kW.
    pub peak_managed_kw: f64,
    /// Energy the agent moved to other steps (Σ max(0, managed − unmanaged)·Δt), kWh.
    pub shifted_energy_kwh: f64,
    /// What the devices' energy costs less managed, against the signals, per year, EUR.
    pub savings_eur_per_year: f64,
    /// Appliance runs in the year.
    pub appliance_runs: usize,
    /// Runs that kept the occupant's time because no schedule fitted the caps.
    pub runs_at_usual_time: usize,
}

/// The managed year.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    /// The prosumer's load with the devices managed, kW per step.
    pub load_kw: Vec<f64>,
    /// The devices managed, kW per step.
    pub managed_flex_kw: Vec<f64>,
    /// Power of each thermal device group (`water_heater`, `heat_pump`: all its devices
    /// together), kW per step; part of `managed_flex_kw`.
    pub thermal_kw: Vec<(String, Vec<f64>)>,
    /// The split of the HOMER load.
    pub carved: Carved,
    /// What decided the thermal devices' days (how often `qp` fell back to `clarabel`).
    pub thermal_solves: SolveCounts,
    /// The figures.
    pub result: HomeResult,
}

fn steps_per_day(prosumer: &str, step_minutes: u32) -> Result<usize, HomeError> {
    if step_minutes == 0 || 1440 % step_minutes != 0 {
        return Err(HomeError::Input {
            prosumer: prosumer.to_string(),
            message: format!("step of {step_minutes} minutes does not divide a day"),
        });
    }
    Ok((1440 / step_minutes) as usize)
}

/// Whether dwelling `d` runs an appliance with `per_week` cycles on `day`: cycles are spread
/// evenly (the cumulative count steps up `per_week` times in 7 days), staggered by dwelling.
fn runs_on(day: usize, d: u32, per_week: f64) -> bool {
    let x = (day + d as usize * 3) as f64;
    ((x + 1.0) * per_week / 7.0).floor() > (x * per_week / 7.0).floor()
}

/// Every appliance run of the year, sorted by day then dwelling.
pub fn year_runs(cfg: &HomeConfig, step_minutes: u32, steps: usize) -> Vec<YearRun> {
    let spd = (1440 / step_minutes.max(1)) as usize;
    let step = f64::from(step_minutes.max(1));
    let apps: Vec<(Appliance, Vec<f64>)> = cfg
        .appliances()
        .into_iter()
        .map(|a| {
            let p = resample_kw(&a.profile_kw, PROFILE_STEP_MINUTES, step_minutes);
            (a, p)
        })
        .collect();
    let n = f64::from(cfg.dwellings.max(1));
    let spread = f64::from(cfg.usual_start_spread_minutes);
    let mut out = Vec::new();
    for day in 0..steps / spd.max(1) {
        for d in 0..cfg.dwellings {
            for (ai, (a, power_kw)) in apps.iter().enumerate() {
                if d >= a.count || !runs_on(day, d, a.runs_per_week) {
                    continue;
                }
                let len = power_kw.len();
                let base = day * spd;
                let earliest = base + (a.earliest_start_h * 60.0 / step).ceil() as usize;
                let end = base + (a.deadline_h * 60.0 / step).floor() as usize;
                let latest = end.saturating_sub(len).min(steps.saturating_sub(len));
                if latest < earliest {
                    continue; // does not fit before the end of the year (or the step grid)
                }
                // Dwellings' usual starts spread evenly around the configured one.
                let slot = f64::from((d + 7 * ai as u32) % cfg.dwellings.max(1));
                let offset_min = spread * ((slot + 0.5) / n - 0.5);
                let usual_min = a.usual_start_h * 60.0 + offset_min;
                let usual = (base as f64 + (usual_min / step).round()) as usize;
                out.push(YearRun {
                    dwelling: d,
                    day,
                    appliance: ai,
                    run: Run {
                        power_kw: power_kw.clone(),
                        earliest_step: earliest,
                        latest_step: latest,
                    },
                    usual_step: usual.clamp(earliest, latest),
                });
            }
        }
    }
    out
}

fn add_run(load: &mut [f64], run: &Run, start: usize) {
    for (i, p) in run.power_kw.iter().enumerate() {
        load[start + i] += p;
    }
}

/// Thermal device groups of the config over the year (identical devices in a group share
/// one schedule: the group's LP is the device's LP scaled by the count).
pub(crate) fn thermal_groups(
    cfg: &HomeConfig,
    inputs: &HomeInputs<'_>,
    steps: usize,
    prosumer: &str,
) -> Result<Vec<(String, f64, Linear)>, HomeError> {
    let spd = steps_per_day(prosumer, inputs.step_minutes)?;
    let dt = f64::from(inputs.step_minutes) / 60.0;
    let mut out = Vec::new();
    if let Some(w) = cfg.water_heater.as_ref().filter(|w| w.count > 0) {
        let day = w.draw_per_step_kwh(spd);
        let draws: Vec<f64> = (0..steps).map(|k| day[k % spd]).collect();
        let x0 = w.energy_at_kwh(w.max_c);
        out.push((
            "water_heater".to_string(),
            f64::from(w.count),
            Linear::water_heater(w, &draws, dt, x0),
        ));
    }
    if let Some(h) = cfg.heat_pump.as_ref().filter(|h| h.count > 0) {
        let outdoor = inputs.outdoor_c.ok_or_else(|| HomeError::Config {
            prosumer: prosumer.to_string(),
            device: "heat_pump".into(),
            field: "count".into(),
            message: "a heat pump needs outdoor temperatures (a weather file)".into(),
        })?;
        if outdoor.len() != steps {
            return Err(HomeError::Input {
                prosumer: prosumer.to_string(),
                message: format!(
                    "{} outdoor temperatures for {steps} load steps",
                    outdoor.len()
                ),
            });
        }
        out.push((
            "heat_pump".to_string(),
            f64::from(h.count),
            Linear::heat_pump(h, outdoor, dt, h.setpoint_c),
        ));
    }
    Ok(out)
}

/// Split the HOMER load: the devices as the occupants run them come out of it, the rest is
/// inflexible. Errors when the devices would need more than the HOMER load in some step.
pub fn carve_out(
    prosumer: &str,
    base_load_kw: &[f64],
    cfg: &HomeConfig,
    inputs: &HomeInputs<'_>,
) -> Result<Carved, HomeError> {
    steps_per_day(prosumer, inputs.step_minutes)?;
    let steps = base_load_kw.len();
    let mut flex = vec![0.0; steps];
    for r in year_runs(cfg, inputs.step_minutes, steps) {
        add_run(&mut flex, &r.run, r.usual_step);
    }
    for (_, count, lin) in thermal_groups(cfg, inputs, steps, prosumer)? {
        for (f, p) in flex.iter_mut().zip(lin.thermostat()) {
            *f += count * p;
        }
    }
    if let Some((k, (f, b))) = flex
        .iter()
        .zip(base_load_kw)
        .enumerate()
        .find(|(_, (f, b))| **f > **b + 1e-9)
    {
        return Err(HomeError::Config {
            prosumer: prosumer.to_string(),
            device: "home".into(),
            field: "dwellings".into(),
            message: format!(
                "the home devices draw {f:.3} kW in step {k} but the whole load is {b:.3} kW: \
                 fewer devices or a larger load"
            ),
        });
    }
    // inflexible = base − flex, then flex = base − inflexible: the sum is the base exactly.
    let inflexible_kw: Vec<f64> = base_load_kw
        .iter()
        .zip(&flex)
        .map(|(b, f)| (b - f).max(0.0))
        .collect();
    let unmanaged_flex_kw = base_load_kw
        .iter()
        .zip(&inflexible_kw)
        .map(|(b, i)| b - i)
        .collect();
    Ok(Carved {
        inflexible_kw,
        unmanaged_flex_kw,
    })
}

/// Run the agent over the year against `signals` (its `headroom_kw` is ignored: the agent
/// sets it from each day's unmanaged peak). With `cfg.managed == false` the load is returned
/// unchanged.
pub fn manage(
    prosumer: &str,
    base_load_kw: &[f64],
    cfg: &HomeConfig,
    inputs: &HomeInputs<'_>,
    signals: &Signals,
) -> Result<Managed, HomeError> {
    let steps = base_load_kw.len();
    if signals.steps() != steps
        || [
            signals.surplus_kw.len(),
            signals.surplus_price_eur_per_mwh.len(),
            signals.grid_peak.len(),
        ]
        .iter()
        .any(|&l| l != steps)
    {
        return Err(HomeError::Input {
            prosumer: prosumer.to_string(),
            message: format!("signals of {} steps for a load of {steps}", signals.steps()),
        });
    }
    let carved = carve_out(prosumer, base_load_kw, cfg, inputs)?;
    let runs = year_runs(cfg, inputs.step_minutes, steps);
    let mut flex = vec![0.0; steps];
    let mut at_usual = 0usize;
    let mut thermal_kw = Vec::new();
    let mut thermal_solves = SolveCounts::default();
    if cfg.managed {
        let spd = steps_per_day(prosumer, inputs.step_minutes)?;
        let mut sig = signals.clone();
        for (day, chunk) in base_load_kw.chunks(spd).enumerate() {
            let peak = chunk.iter().copied().fold(0.0, f64::max);
            for k in day * spd..(day * spd + chunk.len()) {
                sig.headroom_kw[k] = peak - carved.inflexible_kw[k];
            }
        }
        // Thermal devices first: their comfort bands leave them less room than appliances.
        for (device, count, lin) in thermal_groups(cfg, inputs, steps, prosumer)? {
            let p = schedule_thermal(&lin, count, spd, &mut sig, &mut thermal_solves)
                .map_err(|m| solver_error(prosumer, &device, m))?;
            for (f, x) in flex.iter_mut().zip(&p) {
                *f += x;
            }
            thermal_kw.push((device, p));
        }
        at_usual = schedule_appliances(&runs, cfg, &mut sig, &mut flex);
    } else {
        flex.clone_from(&carved.unmanaged_flex_kw);
    }
    let load_kw: Vec<f64> = if cfg.managed {
        carved
            .inflexible_kw
            .iter()
            .zip(&flex)
            .map(|(i, f)| i + f)
            .collect()
    } else {
        base_load_kw.to_vec() // bit for bit
    };
    let dt = f64::from(inputs.step_minutes) / 60.0;
    let energy_only = signals.without_headroom();
    let cost = |f: &[f64]| -> f64 {
        f.iter()
            .enumerate()
            .map(|(t, p)| energy_only.step_cost_eur(t, *p))
            .sum()
    };
    let days = (steps as f64 * dt / 24.0).max(1.0 / 24.0);
    let result = HomeResult {
        peak_unmanaged_kw: base_load_kw.iter().copied().fold(0.0, f64::max),
        peak_managed_kw: load_kw.iter().copied().fold(0.0, f64::max),
        shifted_energy_kwh: flex
            .iter()
            .zip(&carved.unmanaged_flex_kw)
            .map(|(m, u)| (m - u).max(0.0) * dt)
            .sum(),
        savings_eur_per_year: (cost(&carved.unmanaged_flex_kw) - cost(&flex)) * 365.0 / days,
        appliance_runs: runs.len(),
        runs_at_usual_time: at_usual,
    };
    Ok(Managed {
        load_kw,
        managed_flex_kw: flex,
        thermal_kw,
        carved,
        thermal_solves,
        result,
    })
}

/// Place every run, dwelling by dwelling in day order (`runs` sorted by day then dwelling, as
/// [`year_runs`] gives them), consuming `sig`'s surplus and headroom and adding the power to
/// `flex`; returns how many runs kept their usual time because nothing else fitted.
/// Dwellings whose runs and prices are identical to the previous dwelling's share its
/// solution ([`DwellingMemo`]: exact, never an approximation).
pub fn schedule_appliances(
    runs: &[YearRun],
    cfg: &HomeConfig,
    sig: &mut Signals,
    flex: &mut [f64],
) -> usize {
    let mut scratch = vec![0.0; sig.steps()];
    let mut memo = DwellingMemo::default();
    let mut group: Vec<Run> = Vec::new();
    let mut at_usual = 0;
    let mut i = 0;
    while i < runs.len() {
        let (day, d) = (runs[i].day, runs[i].dwelling);
        let j = i + runs[i..]
            .iter()
            .take_while(|r| r.day == day && r.dwelling == d)
            .count();
        group.clear();
        group.extend(runs[i..j].iter().map(|r| r.run.clone()));
        let starts: Vec<usize> =
            match memo.schedule(&group, sig, cfg.appliance_power_cap_kw, &mut scratch) {
                Some(p) => p,
                None => {
                    at_usual += group.len();
                    runs[i..j].iter().map(|r| r.usual_step).collect()
                }
            };
        for (r, s) in group.iter().zip(starts) {
            for (k, p) in r.power_kw.iter().enumerate() {
                sig.consume(s + k, *p);
                flex[s + k] += p;
            }
        }
        i = j;
    }
    at_usual
}

/// One LP per day for a group of `count` identical thermal devices; the state carries over.
fn schedule_thermal(
    lin: &Linear,
    count: f64,
    spd: usize,
    sig: &mut Signals,
    counts: &mut SolveCounts,
) -> Result<Vec<f64>, String> {
    let steps = lin.steps();
    let mut out = Vec::with_capacity(steps);
    let mut x = lin.x0;
    let mut t0 = 0;
    while t0 < steps {
        let t1 = (t0 + spd).min(steps);
        let day = thermal_day(lin, count, (t0, t1), x, sig, counts)?;
        x = day.end_state;
        out.extend(day.group_kw);
        t0 = t1;
    }
    Ok(out)
}

/// A group's planned day.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThermalDay {
    /// The group's power per step, kW.
    pub group_kw: Vec<f64>,
    /// The state at the day's end.
    pub end_state: f64,
}

/// Steps `t0..t1` of a group of `count` identical thermal devices starting in state `x`,
/// against the year-long `sig` (absolute steps), which it consumes: the group's power per
/// step and the state at `t1`; `counts` records what decided the day.
pub(crate) fn thermal_day(
    lin: &Linear,
    count: f64,
    (t0, t1): (usize, usize),
    x: f64,
    sig: &mut Signals,
    counts: &mut SolveCounts,
) -> Result<ThermalDay, String> {
    // The group as one device scaled by `count`; surplus and headroom per device.
    let share = Share(count);
    let offers: Vec<StepOffer> = (t0..t1)
        .map(|s| {
            let soft_kw = sig.headroom_kw[s].max(0.0) / count;
            StepOffer::new(sig, s, share, lin.p_max_kw[s], soft_kw)
        })
        .collect();
    let horizon = lin.horizon(t0, x, &offers);
    let plan = horizon.plan()?;
    counts.add(plan.solver);
    // If even full power cannot keep the band, the thermostat does its best.
    let p = match plan.power_kw {
        Some(p) => p,
        None => horizon.thermostat(),
    };
    let end_state = horizon.states(&p).last().copied().unwrap_or(x);
    let group_kw: Vec<f64> = p.iter().map(|pk| count * pk).collect();
    for (k, pk) in group_kw.iter().enumerate() {
        sig.consume(t0 + k, *pk);
    }
    Ok(ThermalDay {
        group_kw,
        end_state,
    })
}
