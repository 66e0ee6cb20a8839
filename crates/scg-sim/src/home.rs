//! The adapter between the community step and `scg-home`: types and validates each
//! prosumer's `[prosumers.home]` section, and plugs the home agents into
//! [`Community::step`](crate::community::Community::step) as its [`FlexibleLoad`] stage.
//!
//! Dependency direction: `scg-sim` → `scg-home` → `scg-model`; `scg-home` knows nothing of
//! the simulator (it sees plain slices: [`StepForecast`]), and this module is the only place
//! in `scg-sim` that names its types besides `assets`' field. Never does I/O; never reads an
//! input of a later step except through the [`Forecast`] it is handed.

use crate::SimError;
use crate::community::{FlexibleLoad, Forecast};
use scg_home::HomeError;
use scg_home::agent::{AgentSettings, HomeAgent, StepForecast};
use scg_home::carve::HomeResult;
use scg_home::config::HomeConfig;

/// Problems of a home section as `(field path, message)`: the section's own validation (its
/// message names the prosumer and the device).
pub fn home_problems(cfg: &HomeConfig, path: &str, prosumer: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Err(e) = cfg.validate(prosumer) {
        let field = match &e {
            HomeError::Config { device, field, .. } => {
                // `appliances[1] (dishwasher)` → `appliances[1]`; `home` is the section itself.
                let device = device.split(' ').next().unwrap_or("home");
                if device == "home" {
                    format!("{path}.{field}")
                } else {
                    format!("{path}.{device}.{field}")
                }
            }
            _ => path.to_string(),
        };
        out.push((field, e.to_string()));
    }
    out
}

/// What the home agents leave after the year, per prosumer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HomeYear {
    /// The figures, for prosumers with a home section.
    pub result: Option<HomeResult>,
    /// What the agent changed in the prosumer's load, kW per step (empty without a home
    /// section; all zero when unmanaged).
    pub load_change_kw: Vec<f64>,
}

/// Every prosumer's home agent (module docs).
#[derive(Debug)]
pub struct HomeStage {
    agents: Vec<Option<HomeAgent>>,
    changes: Vec<Vec<f64>>,
    /// Community surplus left for the home agents over the planning horizon, kW.
    surplus_left_kw: Vec<f64>,
    planned_step: Option<usize>,
}

/// Inputs of [`HomeStage::new`] for one prosumer.
#[derive(Debug, Clone, Copy)]
pub struct HomeMember<'a> {
    pub id: &'a str,
    pub home: Option<&'a HomeConfig>,
    /// The prosumer's HOMER load for the year, kW per step.
    pub load_kw: &'a [f64],
    /// Outdoor temperature per step, °C (the weather's, or the solar resource's monthly
    /// means): what heat pumps heat against. `None` only when no prosumer has a heat pump.
    pub outdoor_c: Option<&'a [f64]>,
}

impl HomeStage {
    /// A stage for the community's prosumers; `None` when nobody has a home section.
    pub fn new(
        members: &[HomeMember<'_>],
        settings: AgentSettings,
    ) -> Result<Option<Self>, SimError> {
        if members.iter().all(|m| m.home.is_none()) {
            return Ok(None);
        }
        let agents = members
            .iter()
            .map(|m| {
                m.home
                    .map(|cfg| HomeAgent::new(m.id, cfg, m.load_kw, m.outdoor_c, settings))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SimError::Scenario(e.to_string()))?;
        let changes = agents
            .iter()
            .map(|a| a.as_ref().map_or_else(Vec::new, |a| vec![0.0; a.steps()]))
            .collect();
        Ok(Some(Self {
            agents,
            changes,
            surplus_left_kw: Vec::new(),
            planned_step: None,
        }))
    }

    /// Each prosumer's year.
    pub fn finish(self) -> Vec<HomeYear> {
        self.agents
            .iter()
            .zip(self.changes)
            .map(|(a, load_change_kw)| HomeYear {
                result: a.as_ref().map(HomeAgent::result),
                load_change_kw,
            })
            .collect()
    }
}

impl FlexibleLoad for &mut HomeStage {
    fn adjust_load_kw(
        &mut self,
        prosumer: usize,
        step: usize,
        load_kw: f64,
        _renewable_kw: f64,
        forecast: &Forecast<'_>,
    ) -> Result<f64, String> {
        let Some(agent) = self.agents.get_mut(prosumer).and_then(Option::as_mut) else {
            return Ok(load_kw);
        };
        let fc = StepForecast {
            retail_eur_per_mwh: forecast.retail_eur_per_mwh,
            grid_at_peak: forecast.grid_at_peak,
            community_surplus_kw: forecast.community_surplus_kw,
        };
        if agent.plans_at(step) {
            // The first agent to plan at this step takes a fresh copy of the surplus forecast;
            // the others plan against what it left (prosumer order).
            if self.planned_step != Some(step) {
                self.planned_step = Some(step);
                self.surplus_left_kw.clear();
                self.surplus_left_kw
                    .extend(forecast.community_surplus_kw.iter().take(2 * 1440));
            }
            agent
                .plan_day(step, &fc, &mut self.surplus_left_kw)
                .map_err(|e| e.to_string())?;
        }
        let out = agent.adjust(step, load_kw, &fc);
        if let Some(c) = self.changes[prosumer].get_mut(step) {
            *c = out - load_kw;
        }
        Ok(out)
    }
}
