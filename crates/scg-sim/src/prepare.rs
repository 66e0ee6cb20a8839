//! Everything a year needs before the first step, computed once: the clock, every prosumer's
//! load, PV and wind series, the tariff's prices, the zonal prices and the grid-peak signal.
//! `simulate` and the sizing search both start from a [`Prepared`] community.
//!
//! Generation is kept per unit of size (per kWp of PV, per wind turbine), so the search can
//! rescale without recomputing the sun. A streamed run keeps neither its members' loads nor
//! their PV ([`PrepareOptions::draw_loads`], [`PrepareOptions::draw_pv`]): the year draws and
//! computes them again, bit for bit, as it reads them. Never does I/O.

use crate::SimError;
use crate::assets::Assets;
use crate::grid::{GridInputs, GridTariff};
use crate::inputs::ResolvedInputs;
use crate::inputs::ResolvedLoad;
use crate::metrics::LoadStats;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scg_model::{GridPeakSignal, Scenario, TimeGrid};
use scg_resource::load;
use scg_resource::load::LoadYear;
use scg_resource::solar::{self, SolarSite};
use scg_resource::tariff::{self, Band};
use scg_resource::wind;

/// One prosumer's prepared series.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedProsumer {
    /// The load; with [`PrepareOptions::lean`] its `baseline_kw` is empty (its statistics are
    /// in `baseline_stats`), and with `load_draw` its `load_kw` too.
    pub load: LoadYear,
    /// Statistics of the load's baseline (HOMER's load page), taken before a lean prepare
    /// drops the baseline series.
    pub baseline_stats: LoadStats,
    /// Output of each PV array at its configured size, kW per step (empty with
    /// [`PrepareOptions::lean`]: the year reads `pv_kw_per_kwp`).
    pub pv_array_kw: Vec<Vec<f64>>,
    /// Each PV array's energy over the year, kWh (the sum of its `pv_array_kw` × step hours).
    pub pv_array_kwh: Vec<f64>,
    /// All arrays together per kWp installed (empty without PV, or with `pv_draw`), kW per
    /// step.
    pub pv_kw_per_kwp: Vec<f64>,
    /// With [`PrepareOptions::draw_pv`], how the year computes `pv_kw_per_kwp` at each step
    /// instead of keeping it.
    pub pv_draw: Option<PvDraw>,
    pub pv_kwp: f64,
    /// All turbines together per turbine installed (empty without wind), kW per step.
    pub wind_kw_per_turbine: Vec<f64>,
    pub turbines: f64,
    /// With [`PrepareOptions::draw_loads`], a synthetic load of a shared baseline is not kept
    /// (`load.load_kw` is empty): the year draws it again from this as it reads it.
    pub load_draw: Option<LoadDraw>,
    /// The report of a drawn load, taken while it was drawn here (the run cannot take it from
    /// a series after the year).
    pub load_report: Option<crate::metrics::LoadReport>,
    /// The EV fleet's year run on its own (empty until [`add_ev_years`]; `simulate` runs the
    /// fleets inside the community step instead).
    pub ev: EvYear,
}

/// A prosumer's EV fleet over the year: per-step powers (kW) and every departure.
///
/// `charge_kw` and `demand_series` have one value per step (none without a fleet). **`v2g_kw`
/// and `swap_kw` are empty while all zero** (most fleets have no V2G and no swap station), as
/// the flows of [`crate::year::FlowSeries`]: read them with [`crate::year::FlowSeries::at`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvYear {
    pub charge_kw: Vec<f64>,
    /// Empty while every value is +0.0 (see above).
    pub v2g_kw: Vec<f64>,
    /// Empty while every value is +0.0 (see above).
    pub swap_kw: Vec<f64>,
    /// `charge_kw + swap_kw`: the fleet's demand on the prosumer's meter.
    pub demand_series: Vec<f64>,
    /// The largest step of `demand_series` (0 for none), kW: kept also when the series are
    /// not ([`EvYear::push_totals`]).
    pub demand_peak_kw: f64,
    pub degradation_cost_eur: f64,
    pub departures: Vec<scg_ev::fleet::DepartureRecord>,
    /// Community surplus absorbed by this fleet's charging over the year, kWh (set by
    /// `simulate`, `engine::add_surplus_absorbed`; 0 elsewhere).
    pub surplus_absorbed_kwh: f64,
}

/// How to draw a member's synthetic load again, bit for bit: its shared baseline, its
/// perturbation's stream and its scale factor (HOMER's noise, then the scaling:
/// `scg_resource::load::perturb_and_scale`); read by [`crate::year::LoadReplay`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadDraw {
    /// Its baseline: `Prepared::baselines[baseline]`.
    pub baseline: usize,
    pub variability: load::Variability,
    /// The seed of its perturbation's stream (the member's [`prosumer_seed`]).
    pub seed: u64,
    pub scale_factor: f64,
    /// Steps in a day of the year's grid (a day's noise is drawn at each day's first step).
    pub steps_per_day: usize,
}

/// A member's PV per kWp computed at each step from its orientations' shared responses
/// ([`crate::year::DrawnPv`]): `(0 + Σ array power) / kwp`, as [`per_unit`] sums its arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct PvDraw {
    pub arrays: Vec<PvDrawArray>,
    /// The arrays' kWp together (what the sum is divided by; > 0).
    pub kwp: f64,
}

/// One array of a [`PvDraw`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PvDrawArray {
    /// Its orientation's response: `Prepared::responses[response]`.
    pub response: usize,
    pub capacity_kwp: f64,
    pub derating: f64,
}

/// The community's per-step sums over the members' loads, taken while a prepare that draws
/// the loads ([`PrepareOptions::draw_loads`]) still held them: each step's sum adds the members
/// in order, as [`crate::year::step_sums`] over the kept series does, so the same bits.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSums {
    /// The members' load, kW per step (from 0.0).
    pub load_kw: Vec<f64>,
    /// The community's surplus before storage and EVs, kW per step
    /// ([`crate::year::community_surplus_kw`]).
    pub surplus_kw: Vec<f64>,
}

/// A community ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub grid: TimeGrid,
    pub prosumers: Vec<PreparedProsumer>,
    /// The sum of the prosumers' baselines, kW per step (prosumer by prosumer, in order).
    pub baseline_sum_kw: Vec<f64>,
    /// The baselines the drawn loads share ([`LoadDraw::baseline`]; empty when none is drawn).
    pub baselines: Vec<Vec<f64>>,
    /// The PV orientations' responses the drawn PV reads ([`PvDrawArray::response`]; empty
    /// when no member's PV is drawn).
    pub responses: Vec<solar::ArrayResponse>,
    /// With [`PrepareOptions::draw_loads`], the sums the year cannot take from the loads.
    pub load_sums: Option<LoadSums>,
    pub months: Vec<u8>,
    pub bands: Vec<Band>,
    /// Zonal price per hour (8760), EUR/MWh.
    pub zonal_hourly_eur_per_mwh: Vec<f64>,
    /// Zonal price per step, EUR/MWh.
    pub zonal_step_eur_per_mwh: Vec<f64>,
    pub tariff: GridTariff,
    pub grid_at_peak: Vec<bool>,
    /// Outdoor temperature per step, °C (the weather file's, or the solar resource's monthly
    /// means); empty when neither PV nor a heat pump needs it.
    pub temperature_c: Vec<f64>,
}

impl Prepared {
    /// Each prosumer's series as the year loop reads them (no EV series: the community's EV
    /// sites add theirs as they step).
    pub fn series(&self) -> Vec<crate::year::ProsumerSeries<'_>> {
        self.prosumers
            .iter()
            .map(|p| {
                let mut series = p.series();
                series.pv_draw = p.pv_draw.as_ref().map(|draw| crate::year::DrawnPv {
                    draw,
                    responses: &self.responses,
                });
                series.load_draw = p.load_draw.as_ref().and_then(|draw| {
                    self.baselines
                        .get(draw.baseline)
                        .map(|b| crate::year::DrawnLoad {
                            draw,
                            baseline_kw: b,
                        })
                });
                series
            })
            .collect()
    }

    /// The retail (purchase) and feed-in (sale) prices per step, EUR/MWh: what the EV agents
    /// and the market see.
    pub fn prices_eur_per_mwh(&self) -> (Vec<f64>, Vec<f64>) {
        let per_mwh = |v: &[f64]| v.iter().map(|p| p * 1000.0).collect();
        (
            per_mwh(self.tariff.purchase_eur_per_kwh()),
            per_mwh(self.tariff.sell_eur_per_kwh()),
        )
    }
}

impl PreparedProsumer {
    /// Its series as the year reads them, its load from `load.load_kw` (not drawn).
    fn series(&self) -> crate::year::ProsumerSeries<'_> {
        crate::year::ProsumerSeries {
            load_kw: &self.load.load_kw,
            load_draw: None,
            pv_kw_per_kwp: &self.pv_kw_per_kwp,
            pv_draw: None,
            pv_kwp: self.pv_kwp,
            wind_kw_per_turbine: &self.wind_kw_per_turbine,
            turbines: self.turbines,
            ev_kw: &[],
            v2g_kw: &[],
        }
    }
}

/// Seed of a site-wide stream (solar, wind), derived like a prosumer's from its name.
fn site_seed(seed: u64, what: &str) -> u64 {
    prosumer_seed(seed, &format!("#site/{what}"))
}

/// What [`prepare_with`] keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareOptions {
    /// Drop each prosumer's baseline and per-array PV series once their figures are taken
    /// (`baseline_stats`, `pv_array_kwh`, `baseline_sum_kw`): the year never reads them, and
    /// a city holding them all year pays 8 B per member-step for each.
    pub lean: bool,
    /// Keep no synthetic load of a shared baseline (a city's households, shops, ...): each
    /// is drawn here, its report and the community's sums ([`Prepared::load_sums`]) taken,
    /// and dropped; the year draws it again as it reads it ([`PreparedProsumer::load_draw`]).
    /// 8 B per member-step less (2.8 GB for 10,000 members at 15 minutes), for a second draw
    /// of the noise. Only a run that streams its members' series can use it (it keeps no
    /// load series for its outputs).
    pub draw_loads: bool,
    /// Keep no member's PV per kWp whose every array's orientation has a shared response:
    /// the year computes it at each step from the responses ([`PreparedProsumer::pv_draw`]);
    /// 8 B per step of a member with PV less. The same bits.
    pub draw_pv: bool,
}

/// Prosumers prepared at once: their series are summed (and, lean, dropped) in order before
/// the next batch is made, so a lean prepare never holds every member's baseline.
const PREPARE_BATCH: usize = 256;

/// Prepare a scenario, keeping every series. `progress(done, total)` is called after the
/// prosumers' loads.
pub fn prepare(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Prepared, SimError> {
    prepare_with(
        scenario,
        assets,
        inputs,
        seed,
        PrepareOptions::default(),
        progress,
    )
}

/// [`prepare`] keeping what `options` say.
pub fn prepare_with(
    scenario: &Scenario,
    assets: &Assets,
    inputs: &ResolvedInputs,
    seed: u64,
    options: PrepareOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Prepared, SimError> {
    let grid =
        TimeGrid::new(&scenario.time, &scenario.location.time_zone).map_err(SimError::Scenario)?;
    if inputs.loads.len() != scenario.prosumers.len() {
        return Err(SimError::Scenario(format!(
            "{} loads resolved for {} prosumers",
            inputs.loads.len(),
            scenario.prosumers.len()
        )));
    }
    let site = crate::inputs::solar_site(scenario, assets, inputs, &grid);
    let any_pv = assets.prosumers.iter().any(|p| !p.pv.is_empty());
    let any_wind = assets
        .prosumers
        .iter()
        .any(|p| !p.turbines.is_empty() || p.templates.turbine.is_some());
    // Heat pumps (`[prosumers.home]`) heat against the same outdoor temperature PV sees.
    let any_heat_pump = assets.prosumers.iter().any(|p| {
        p.home
            .as_ref()
            .and_then(|h| h.heat_pump.as_ref())
            .is_some_and(|h| h.count > 0)
    });
    let (ghi, temperature) = if any_pv || any_heat_pump {
        solar_series(assets, inputs, &site, &grid, seed)?
    } else {
        (solar::Irradiance::default(), Vec::new())
    };
    let wind_speed = match (&assets.wind, any_wind) {
        (Some(w), true) => {
            crate::inputs::wind_speed(w, inputs, &grid, site.time_zone_h, site_seed(seed, "wind"))?
        }
        _ => crate::inputs::WindSpeed::default(),
    };
    let months: Vec<u8> = (0..grid.len()).map(|t| grid.month_of_step(t)).collect();
    let bands = tariff::bands(&grid);
    let zonal_step_eur_per_mwh = inputs
        .zonal_prices_eur_per_mwh
        .clone()
        .unwrap_or_else(|| vec![scenario.community.zonal_price_eur_per_mwh; grid.len()]);
    // The CER incentive is hourly: each hour's price is the mean of its steps (the same price
    // for an hourly file; the energy-weighted price at constant power for quarter hours).
    let per_hour = grid.steps_per_hour();
    let zonal_hourly_eur_per_mwh: Vec<f64> = zonal_step_eur_per_mwh
        .chunks(per_hour)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let tariff = GridTariff::new(
        &assets.grid,
        &GridInputs {
            step_hours: grid.step_hours(),
            month: &months,
            band: Some(&bands),
            zonal_price_eur_per_mwh: Some(&zonal_step_eur_per_mwh),
        },
    )?;
    let grid_at_peak = match &scenario.community.grid_peak {
        GridPeakSignal::None => vec![false; grid.len()],
        GridPeakSignal::F1Band => bands.iter().map(|b| *b == Band::F1).collect(),
        GridPeakSignal::PriceAbove {
            threshold_eur_per_mwh,
        } => zonal_step_eur_per_mwh
            .iter()
            .map(|p| p >= threshold_eur_per_mwh)
            .collect(),
    };
    let total = scenario.prosumers.len();
    // Prosumers are independent (each has its own seed streams): prepare them in parallel.
    use rayon::prelude::*;
    // One sun per orientation: arrays that differ only in size share their response (a
    // city's thousands of roofs have a few dozen orientations).
    let mut orientations: Vec<(solar::ResponseKey, solar::PvArray)> = assets
        .prosumers
        .iter()
        .flat_map(|a| a.pv.iter().map(|pv| pv.array.to_array()))
        .map(|array| (array.response_key(), array))
        .collect();
    orientations.sort_unstable_by_key(|(key, _)| *key);
    orientations.dedup_by_key(|(key, _)| *key);
    let responses: Vec<solar::ArrayResponse> = orientations
        .par_iter()
        .map(|(_, array)| solar::array_response(array, &site, &ghi, &temperature, &grid))
        .collect();
    let array_kw = |array: &solar::PvArray| -> Vec<f64> {
        match orientations.binary_search_by_key(&array.response_key(), |(key, _)| *key) {
            Ok(i) => responses[i].power_kw(array.capacity_kwp, array.derating),
            // Every array's orientation is in the table; computed alone otherwise.
            Err(_) => solar::array_power_kw(array, &site, &ghi, &temperature, &grid),
        }
    };
    let baselines = SharedBaselines::of(&inputs.loads, &grid);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let prepare_one = |i: usize| -> Result<PreparedProsumer, SimError> {
        let (p, spec) = (&scenario.prosumers[i], &inputs.loads[i]);
        let source = format!("prosumers[{i}] ({})", p.id);
        let shared = baselines.of_member(i);
        let load_seed = prosumer_seed(seed, &p.id);
        let mut load =
            synthesize_load_on(spec, shared.map(|b| &b.kw[..]), &grid, load_seed, &source)?;
        let baseline_stats = match shared {
            Some(b) => b.stats.clone(),
            None => crate::metrics::load_stats(&load.baseline_kw, &grid),
        };
        // A drawn load's report is the one the run takes of a kept load after the year.
        let (load_draw, load_report) = match (spec, baselines.index_of(i)) {
            (ResolvedLoad::Synthetic { variability, .. }, Some(baseline)) if options.draw_loads => {
                (
                    Some(LoadDraw {
                        baseline,
                        variability: *variability,
                        seed: load_seed,
                        scale_factor: load.scale_factor,
                        steps_per_day: grid.steps_per_day(),
                    }),
                    Some(crate::metrics::load_report_with_baseline(
                        &load.load_kw,
                        baseline_stats.clone(),
                        load.scale_factor,
                        &grid,
                    )),
                )
            }
            _ => (None, None),
        };
        if let Some(b) = shared
            && !options.lean
        {
            // A run that keeps its series keeps each member's baseline, as before.
            load.baseline_kw = b.kw.clone();
        }
        let a = &assets.prosumers[i];
        let pv_array_kw: Vec<Vec<f64>> =
            a.pv.iter()
                .map(|pv| array_kw(&pv.array.to_array()))
                .collect();
        let pv_kwp = a.pv_kwp();
        let pv_kw_per_kwp = per_unit(&pv_array_kw, pv_kwp, grid.len());
        let pv_draw = if options.draw_pv && !pv_kw_per_kwp.is_empty() {
            pv_draw(&a.pv, pv_kwp, |array| {
                orientations
                    .binary_search_by_key(&array.response_key(), |(key, _)| *key)
                    .ok()
            })
        } else {
            None
        };
        let mut wind_kw = Vec::new();
        let mut turbines = 0.0;
        let mut per_turbine_units = 0.0;
        if let Some(resource) = &assets.wind {
            // Installed turbines; without any, a not-installed template gives the per-turbine
            // series the sizing search scales (its `turbines` stays 0: no wind is produced).
            let installed = a.turbines.iter().map(|t| (t, true));
            let template = a.templates.turbine.iter().map(|t| (t, false));
            let sections: Vec<_> = if a.turbines.is_empty() {
                template.collect()
            } else {
                installed.collect()
            };
            for (k, (t, built)) in sections.into_iter().enumerate() {
                let turbine = t.turbine.turbine().map_err(|m| {
                    SimError::Scenario(format!("prosumers[{i}].wind_turbines[{k}]: {m}"))
                })?;
                per_turbine_units += f64::from(turbine.count);
                if built {
                    turbines += f64::from(turbine.count);
                }
                wind_kw.push(wind::turbine_power_kw(
                    &turbine,
                    wind_speed.anemometer_height_m,
                    &resource.shear,
                    scenario.location.elevation_m,
                    &wind_speed.speed_m_per_s,
                    None,
                ));
            }
        }
        let wind_kw_per_turbine = per_unit(&wind_kw, per_turbine_units, grid.len());
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let step_hours = grid.step_hours();
        Ok(PreparedProsumer {
            baseline_stats,
            load,
            pv_array_kwh: pv_array_kw
                .iter()
                .map(|kw| kw.iter().sum::<f64>() * step_hours)
                .collect(),
            pv_array_kw,
            pv_kw_per_kwp,
            pv_draw,
            pv_kwp,
            wind_kw_per_turbine,
            turbines,
            load_draw,
            load_report,
            ev: EvYear::default(),
        })
    };
    let mut prosumers = Vec::with_capacity(total);
    let mut baseline_sum_kw = vec![0.0; grid.len()];
    let mut load_sums = options.draw_loads.then(|| LoadSums {
        load_kw: vec![0.0; grid.len()],
        surplus_kw: vec![-0.0; grid.len()],
    });
    for first in (0..total).step_by(PREPARE_BATCH) {
        let batch = (first..total.min(first + PREPARE_BATCH))
            .into_par_iter()
            .map(prepare_one)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(sums) = load_sums.as_mut() {
            let series: Vec<_> = batch.iter().map(PreparedProsumer::series).collect();
            crate::year::add_step_sums(&mut sums.load_kw, &series, |p, t| {
                p.load_kw.get(t).copied().unwrap_or(0.0)
            });
            crate::year::add_step_sums(&mut sums.surplus_kw, &series, crate::year::surplus_kw_at);
        }
        for (i, mut p) in (first..).zip(batch) {
            let baseline = baselines
                .of_member(i)
                .map_or(&p.load.baseline_kw[..], |b| &b.kw[..]);
            for (sum, v) in baseline_sum_kw.iter_mut().zip(baseline) {
                *sum += v;
            }
            if options.lean {
                p.load.baseline_kw = Vec::new();
                p.pv_array_kw = Vec::new();
            }
            if p.load_draw.is_some() {
                p.load.load_kw = Vec::new();
            }
            if p.pv_draw.is_some() {
                p.pv_kw_per_kwp = Vec::new();
            }
            prosumers.push(p);
        }
    }
    progress(done.into_inner(), total);
    let baselines = if prosumers.iter().any(|p| p.load_draw.is_some()) {
        baselines.baselines.into_iter().map(|b| b.kw).collect()
    } else {
        Vec::new()
    };
    let responses = if prosumers.iter().any(|p| p.pv_draw.is_some()) {
        responses
    } else {
        Vec::new()
    };
    Ok(Prepared {
        grid,
        prosumers,
        baseline_sum_kw,
        baselines,
        responses,
        load_sums,
        months,
        bands,
        zonal_hourly_eur_per_mwh,
        zonal_step_eur_per_mwh,
        tariff,
        grid_at_peak,
        temperature_c: temperature,
    })
}

/// The seed of a prosumer's private stream: SplitMix64 of the run seed mixed with the FNV-1a
/// hash of its id (stable across platforms and releases; part of the reproducibility contract).
pub fn prosumer_seed(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(seed ^ h)
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The baselines of the synthetic loads, one per distinct profile set: a city's households
/// name a handful of sets, so each baseline is made, and its statistics taken, once (and a lean
/// prepare holds none per member).
struct SharedBaselines {
    baselines: Vec<SharedBaseline>,
    /// Per member: its baseline's index (`None`: an imported load).
    of: Vec<Option<usize>>,
}

struct SharedBaseline {
    kw: Vec<f64>,
    stats: LoadStats,
}

impl SharedBaselines {
    fn of(loads: &[ResolvedLoad], grid: &TimeGrid) -> Self {
        let mut sets: Vec<&scg_resource::profiles::MonthlyProfiles> = Vec::new();
        let of = loads
            .iter()
            .map(|spec| match spec {
                ResolvedLoad::Synthetic { profiles, .. } => {
                    Some(match sets.iter().position(|s| **s == **profiles) {
                        Some(k) => k,
                        None => {
                            sets.push(profiles);
                            sets.len() - 1
                        }
                    })
                }
                ResolvedLoad::Imported { .. } => None,
            })
            .collect();
        let baselines = sets
            .iter()
            .map(|profiles| {
                let kw = load::baseline_from_profiles(profiles, grid);
                let stats = crate::metrics::load_stats(&kw, grid);
                SharedBaseline { kw, stats }
            })
            .collect();
        Self { baselines, of }
    }

    fn of_member(&self, i: usize) -> Option<&SharedBaseline> {
        self.index_of(i).and_then(|k| self.baselines.get(k))
    }

    /// Member `i`'s baseline's index (`None`: an imported load).
    fn index_of(&self, i: usize) -> Option<usize> {
        self.of.get(i).copied().flatten()
    }
}

/// One prosumer's load year from its resolved inputs and its own seed.
pub fn synthesize_load(
    spec: &ResolvedLoad,
    grid: &TimeGrid,
    seed: u64,
    source_name: &str,
) -> Result<LoadYear, SimError> {
    synthesize_load_on(spec, None, grid, seed, source_name)
}

/// [`synthesize_load`] on a synthetic load's `baseline` when it is already made (it is then
/// not copied: the year's `baseline_kw` is empty).
fn synthesize_load_on(
    spec: &ResolvedLoad,
    baseline: Option<&[f64]>,
    grid: &TimeGrid,
    seed: u64,
    source_name: &str,
) -> Result<LoadYear, SimError> {
    Ok(match spec {
        ResolvedLoad::Synthetic {
            profiles,
            variability,
            scaled_average_kwh_per_day,
        } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let own = baseline
                .is_none()
                .then(|| load::baseline_from_profiles(profiles, grid));
            let (load_kw, scale_factor) = load::perturb_and_scale(
                baseline.or(own.as_deref()).unwrap_or_default(),
                grid,
                *variability,
                *scaled_average_kwh_per_day,
                &mut rng,
                source_name,
            )?;
            LoadYear {
                baseline_kw: own.unwrap_or_default(),
                load_kw,
                scale_factor,
            }
        }
        ResolvedLoad::Imported {
            values_kw,
            scaled_average_kwh_per_day,
        } => load::imported(values_kw, grid, *scaled_average_kwh_per_day, source_name)?,
    })
}

/// Prosumer `i`'s EV site with its agent (`None` without `ev`), on its own seed stream.
pub fn fleet(
    i: usize,
    p: &scg_model::Prosumer,
    a: &crate::assets::ProsumerAssets,
    grid: &TimeGrid,
    seed: u64,
) -> Result<Option<scg_ev::fleet::Fleet>, SimError> {
    let Some(cfg) = &a.ev else {
        return Ok(None);
    };
    let time = scg_ev::fleet::FleetTime {
        step_minutes: grid.step_minutes(),
        steps: grid.len(),
        start_weekday: grid.weekday(0).index() as u8,
    };
    scg_ev::fleet::Fleet::new(cfg, time, prosumer_seed(seed, &format!("{}#ev", p.id)))
        .map(Some)
        .map_err(|e| SimError::Scenario(format!("prosumers[{i}].ev: {e}")))
}

impl EvYear {
    /// A fleet's year with no step yet, room for `steps` of them: [`EvYear::push_step`] adds
    /// them one at a time as the community step produces them, so that a city's year is never
    /// held as per-step records (an `EvStepPower` is about 70 bytes, the four series 32).
    pub fn started(steps: usize) -> Self {
        let series = || Vec::with_capacity(steps);
        Self {
            charge_kw: series(),
            v2g_kw: Vec::new(),
            swap_kw: Vec::new(),
            demand_series: series(),
            demand_peak_kw: 0.0,
            // What an empty `Iterator::sum` of f64 gives, so that pushing every step is bit
            // for bit the sum over the steps.
            degradation_cost_eur: -0.0,
            departures: Vec::new(),
            surplus_absorbed_kwh: 0.0,
        }
    }

    /// Add the fleet's next step.
    #[inline]
    pub fn push_step(&mut self, s: &scg_ev::fleet::EvStepPower) {
        // `started` reserved the year's length for the full series.
        let (step, steps) = (self.charge_kw.len(), self.charge_kw.capacity());
        crate::year::push_flow(&mut self.v2g_kw, step, steps, s.v2g_kw);
        crate::year::push_flow(&mut self.swap_kw, step, steps, s.swap_kw);
        self.demand_series.push(s.charge_kw + s.swap_kw);
        self.charge_kw.push(s.charge_kw);
        self.push_totals(s);
    }

    /// Add the fleet's next step to the year's figures only (wear, peak demand), not to the
    /// series: a run that streams the members' series ([`crate::members::BlockSink`]).
    #[inline]
    pub fn push_totals(&mut self, s: &scg_ev::fleet::EvStepPower) {
        self.demand_peak_kw = self.demand_peak_kw.max(s.charge_kw + s.swap_kw);
        self.degradation_cost_eur += s.degradation_cost_eur;
    }

    /// Whether a fleet's steps were pushed (a prosumer with EVs, over a year of at least one
    /// step).
    pub fn has_steps(&self) -> bool {
        !self.charge_kw.is_empty()
    }

    /// A fleet's year from its per-step powers and its departures.
    pub fn from_steps(
        steps: &[scg_ev::fleet::EvStepPower],
        departures: &[scg_ev::fleet::DepartureRecord],
    ) -> Self {
        let mut year = Self::started(steps.len());
        for s in steps {
            year.push_step(s);
        }
        year.departures = departures.to_vec();
        year
    }
}

/// Fill every prepared prosumer's `ev` with its fleet's year run on its own, against the
/// signals [`crate::community::Community`] gives the fleet in the step for the scenario's
/// configured sizes: the effective price ([`crate::community::effective_price`]: feed-in
/// where the configured community is forecast to have surplus, retail elsewhere) and the
/// grid-peak signal. The sizing search replays these EV powers for every design; a design
/// with other PV or wind sizes changes the community's surplus, so its EVs would plan
/// differently in `simulate` (the bound `scg optimize` reports for the winner).
pub fn add_ev_years(
    prepared: &mut Prepared,
    scenario: &Scenario,
    assets: &Assets,
    seed: u64,
) -> Result<(), SimError> {
    use rayon::prelude::*;
    let (retail, feed_in) = prepared.prices_eur_per_mwh();
    let series = prepared.series();
    let surplus = crate::year::community_surplus_kw(&series, prepared.grid.len());
    let price: Vec<f64> = retail
        .iter()
        .zip(&surplus)
        .zip(&feed_in)
        .map(|((r, s), f)| crate::community::effective_price(*r, *s, *f))
        .collect();
    let (grid, peak) = (&prepared.grid, &prepared.grid_at_peak);
    let years = (0..scenario.prosumers.len())
        .into_par_iter()
        .map(|i| {
            let Some(mut f) = fleet(i, &scenario.prosumers[i], &assets.prosumers[i], grid, seed)?
            else {
                return Ok(EvYear::default());
            };
            let steps = f
                .run(&price, peak)
                .map_err(|e| SimError::Scenario(format!("prosumers[{i}].ev: {e}")))?;
            Ok(EvYear::from_steps(&steps, f.departures()))
        })
        .collect::<Result<Vec<_>, SimError>>()?;
    for (p, y) in prepared.prosumers.iter_mut().zip(years) {
        p.ev = y;
    }
    Ok(())
}

/// Sum of `parts` divided by `units` (empty when there is nothing).
/// A member's [`PvDraw`]: each array's orientation (`response_of`; `None` if one has no shared
/// response: the member's PV is then kept as a series).
fn pv_draw(
    arrays: &[crate::assets::PvSpec],
    kwp: f64,
    response_of: impl Fn(&solar::PvArray) -> Option<usize>,
) -> Option<PvDraw> {
    let arrays = arrays
        .iter()
        .map(|pv| {
            let array = pv.array.to_array();
            response_of(&array).map(|response| PvDrawArray {
                response,
                capacity_kwp: array.capacity_kwp,
                derating: array.derating,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    (kwp > 0.0).then_some(PvDraw { arrays, kwp })
}

fn per_unit(parts: &[Vec<f64>], units: f64, steps: usize) -> Vec<f64> {
    if parts.is_empty() || units <= 0.0 {
        return Vec::new();
    }
    let mut out = vec![0.0; steps];
    for part in parts {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    for o in &mut out {
        *o /= units;
    }
    out
}

fn solar_series(
    assets: &Assets,
    inputs: &ResolvedInputs,
    site: &SolarSite,
    grid: &TimeGrid,
    seed: u64,
) -> Result<(solar::Irradiance, Vec<f64>), SimError> {
    if let Some(weather) = &inputs.weather {
        return Ok((
            crate::inputs::weather_irradiance(weather, assets, site, grid)?,
            weather.temperature_c_on_grid(site.time_zone_h, grid)?,
        ));
    }
    let monthly = assets.solar.monthly().ok_or_else(|| {
        SimError::Scenario("solar: a weather file is named but was not read".into())
    })?;
    Ok((
        solar::Irradiance::ghi_only(solar::synthesize_ghi_kw_per_m2(
            site,
            &monthly,
            grid,
            site_seed(seed, "solar"),
        )?),
        solar::monthly_to_grid(&assets.solar.monthly_temperature_c, grid),
    ))
}
