//! The power converter between the DC bus (battery, DC PV) and the AC bus: an inverter
//! (DC → AC) and a rectifier (AC → DC), each with a capacity and an efficiency (homer.md §4.2).
//!
//! Capacities are *output* ratings, as in HOMER: the inverter's capacity is AC kW out, the
//! rectifier's is DC kW out, given as a share of the inverter's. A rectifier-only converter has
//! an inverter efficiency near 0; an inverter-only converter a rectifier capacity of 0 %.
//! This module does no I/O.

use crate::component_error::{ComponentError, Problems, check_input};
use crate::economics::ComponentCosts;
use serde::{Deserialize, Serialize};

/// What one conversion did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Conversion {
    /// Power taken at the input side, kW.
    pub input_kw: f64,
    /// Power delivered at the output side, kW (`input_kw · η`).
    pub output_kw: f64,
    /// Conversion loss, kW (`input_kw − output_kw`).
    pub loss_kw: f64,
}

/// A bidirectional converter (library form: fractions, not percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Converter {
    /// Inverter capacity, AC kW out (>= 0).
    pub inverter_capacity_kw: f64,
    /// Inverter efficiency (fraction in (0, 1]).
    pub inverter_efficiency: f64,
    /// Rectifier capacity, DC kW out (>= 0).
    pub rectifier_capacity_kw: f64,
    /// Rectifier efficiency (fraction in (0, 1]).
    pub rectifier_efficiency: f64,
}

impl Converter {
    /// Checks the parameters.
    pub fn new(
        inverter_capacity_kw: f64,
        inverter_efficiency: f64,
        rectifier_capacity_kw: f64,
        rectifier_efficiency: f64,
    ) -> Result<Self, ComponentError> {
        for (field, v) in [
            ("inverter_capacity_kw", inverter_capacity_kw),
            ("rectifier_capacity_kw", rectifier_capacity_kw),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ComponentError::parameter(
                    field,
                    format!("must be >= 0, got {v}"),
                ));
            }
        }
        for (field, v) in [
            ("inverter_efficiency", inverter_efficiency),
            ("rectifier_efficiency", rectifier_efficiency),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(ComponentError::parameter(
                    field,
                    format!("must be in (0, 1], got {v}"),
                ));
            }
        }
        Ok(Self {
            inverter_capacity_kw,
            inverter_efficiency,
            rectifier_capacity_kw,
            rectifier_efficiency,
        })
    }

    /// Builds the converter of a scenario entry.
    pub fn from_config(config: &ConverterConfig) -> Result<Self, ComponentError> {
        Self::new(
            config.capacity_kw,
            config.inverter_efficiency_pct / 100.0,
            config.capacity_kw * config.rectifier_capacity_pct / 100.0,
            config.rectifier_efficiency_pct / 100.0,
        )
    }

    /// The most DC power the inverter can take in (kW) without exceeding its AC rating.
    pub fn max_inverter_input_kw(&self) -> f64 {
        self.inverter_capacity_kw / self.inverter_efficiency
    }

    /// The most AC power the rectifier can take in (kW) without exceeding its DC rating.
    pub fn max_rectifier_input_kw(&self) -> f64 {
        self.rectifier_capacity_kw / self.rectifier_efficiency
    }

    /// Inverts `dc_in_kw` (clamped to [`Converter::max_inverter_input_kw`]) to AC.
    pub fn invert(&self, dc_in_kw: f64) -> Result<Conversion, ComponentError> {
        let input_kw =
            check_input("inverter dc_in_kw", dc_in_kw)?.min(self.max_inverter_input_kw());
        Ok(convert(input_kw, self.inverter_efficiency))
    }

    /// Rectifies `ac_in_kw` (clamped to [`Converter::max_rectifier_input_kw`]) to DC.
    pub fn rectify(&self, ac_in_kw: f64) -> Result<Conversion, ComponentError> {
        let input_kw =
            check_input("rectifier ac_in_kw", ac_in_kw)?.min(self.max_rectifier_input_kw());
        Ok(convert(input_kw, self.rectifier_efficiency))
    }

    /// The DC input needed to deliver `ac_out_kw` from the inverter (clamped to its capacity).
    pub fn inverter_input_for(&self, ac_out_kw: f64) -> Result<Conversion, ComponentError> {
        let out = check_input("inverter ac_out_kw", ac_out_kw)?.min(self.inverter_capacity_kw);
        self.invert(out / self.inverter_efficiency)
    }

    /// The AC input needed to deliver `dc_out_kw` from the rectifier (clamped to its capacity).
    pub fn rectifier_input_for(&self, dc_out_kw: f64) -> Result<Conversion, ComponentError> {
        let out = check_input("rectifier dc_out_kw", dc_out_kw)?.min(self.rectifier_capacity_kw);
        self.rectify(out / self.rectifier_efficiency)
    }
}

fn convert(input_kw: f64, efficiency: f64) -> Conversion {
    let output_kw = input_kw * efficiency;
    Conversion {
        input_kw,
        output_kw,
        loss_kw: input_kw - output_kw,
    }
}

/// A converter in the scenario. Costs scale with the inverter capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConverterConfig {
    /// Inverter capacity, AC kW out (>= 0).
    pub capacity_kw: f64,
    /// Inverter efficiency, percent (default 95).
    #[serde(default = "default_inverter_efficiency_pct")]
    pub inverter_efficiency_pct: f64,
    /// Rectifier capacity relative to the inverter's, percent (default 100; 0 = inverter only).
    #[serde(default = "default_rectifier_capacity_pct")]
    pub rectifier_capacity_pct: f64,
    /// Rectifier efficiency, percent (default 90).
    #[serde(default = "default_rectifier_efficiency_pct")]
    pub rectifier_efficiency_pct: f64,
    /// Lifetime, years (default 15).
    #[serde(default = "default_converter_lifetime_years")]
    pub lifetime_years: f64,
    /// Capital cost, EUR per kW (default 0).
    #[serde(default)]
    pub capital_cost_eur_per_kw: f64,
    /// Replacement cost, EUR per kW (default 0).
    #[serde(default)]
    pub replacement_cost_eur_per_kw: f64,
    /// Operation and maintenance cost, EUR per kW per year (default 0).
    #[serde(default)]
    pub om_cost_eur_per_kw_year: f64,
}

fn default_inverter_efficiency_pct() -> f64 {
    95.0
}
fn default_rectifier_capacity_pct() -> f64 {
    100.0
}
fn default_rectifier_efficiency_pct() -> f64 {
    90.0
}
fn default_converter_lifetime_years() -> f64 {
    15.0
}

impl ConverterConfig {
    /// Every problem of this converter, as `(field path, message)`, with `path` as the prefix.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut p = Problems::default();
        p.non_negative(path, "capacity_kw", self.capacity_kw);
        for (field, v) in [
            ("inverter_efficiency_pct", self.inverter_efficiency_pct),
            ("rectifier_efficiency_pct", self.rectifier_efficiency_pct),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                p.fail(path, field, format!("must be in (0, 100], got {v}"));
            }
        }
        p.in_range(
            path,
            "rectifier_capacity_pct",
            self.rectifier_capacity_pct,
            0.0,
            1000.0,
        );
        p.positive(path, "lifetime_years", self.lifetime_years);
        p.non_negative(
            path,
            "capital_cost_eur_per_kw",
            self.capital_cost_eur_per_kw,
        );
        p.non_negative(
            path,
            "replacement_cost_eur_per_kw",
            self.replacement_cost_eur_per_kw,
        );
        p.non_negative(
            path,
            "om_cost_eur_per_kw_year",
            self.om_cost_eur_per_kw_year,
        );
        p.list
    }

    /// The converter's costs for the economics.
    pub fn costs(&self) -> ComponentCosts {
        ComponentCosts {
            capital_eur: self.capital_cost_eur_per_kw * self.capacity_kw,
            replacement_eur: self.replacement_cost_eur_per_kw * self.capacity_kw,
            om_eur_per_year: self.om_cost_eur_per_kw_year * self.capacity_kw,
            lifetime_years: self.lifetime_years,
        }
    }
}
