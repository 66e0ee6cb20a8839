//! Battery storage: HOMER's idealized model and the kinetic battery model (KiBaM), behind one
//! [`Storage`] trait the dispatcher uses every step.
//!
//! Conventions (shared by both models):
//! - powers are at the battery's DC terminals and never negative; charging and discharging are
//!   separate calls ([`Storage::charge`], [`Storage::discharge`]);
//! - charging `P` kW for `dt` hours stores `P·dt·η_c`; discharging `P` kW removes `P·dt/η_d`,
//!   with `η_c = η_d = √η_rt` (HOMER glossary "Battery Roundtrip Efficiency");
//! - a request above the step's maximum is clamped to it: the returned [`StorageFlow`] says what
//!   was actually accepted, so energy balance upstream can use the accepted value;
//! - throughput is the stored-energy decrease on discharge (before discharge losses), as HOMER
//!   counts it (homer.md §4.1), and drives the throughput-based lifetime and the wear cost.
//!
//! The kinetic model follows Manwell & McGowan (1993) in HOMER's form (homer.md §4.1): two tanks,
//! available `Q1` and bound `Q2`, capacity ratio `c`, rate constant `k` [1/h]; its maximum
//! discharge power empties `Q1` at the end of the step, its maximum charge power fills `Q1` to
//! `c·Q_max`, further limited by the maximum charge rate `α_c` [A/Ah] and charge current.
//!
//! This module does no I/O and keeps no clock: the caller gives every step's length.

use crate::component_error::{ComponentError, Problems, check_input};
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// What a charge or discharge call actually did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StorageFlow {
    /// Accepted power at the terminals, kW (>= 0; may be below the request when clamped).
    pub power_kw: f64,
    /// Energy through the terminals this step, kWh (`power_kw · dt_h`).
    pub terminal_energy_kwh: f64,
    /// Change of stored energy, kWh (positive on charge, negative on discharge).
    pub stored_change_kwh: f64,
    /// Energy lost in the conversion this step, kWh (>= 0).
    pub loss_kwh: f64,
}

/// The interface the dispatcher uses to ask a storage what it can do over a step and to apply
/// a decision.
pub trait Storage {
    /// Nominal (maximum) stored energy, kWh.
    fn capacity_kwh(&self) -> f64;
    /// Energy stored now, kWh.
    fn stored_kwh(&self) -> f64;
    /// Lowest allowed state of charge, as a fraction of capacity.
    fn min_soc(&self) -> f64;
    /// State of charge, as a fraction of capacity.
    fn soc(&self) -> f64 {
        self.stored_kwh() / self.capacity_kwh()
    }
    /// The largest charging power (terminal kW) that can be held for the next `dt_h` hours.
    /// Zero when `dt_h` is not a positive finite number.
    fn max_charge_kw(&self, dt_h: f64) -> f64;
    /// The largest discharging power (terminal kW) that can be held for the next `dt_h` hours.
    /// Zero when `dt_h` is not a positive finite number.
    fn max_discharge_kw(&self, dt_h: f64) -> f64;
    /// Charges at `power_kw` (clamped to [`Storage::max_charge_kw`]) for `dt_h` hours.
    fn charge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError>;
    /// Discharges at `power_kw` (clamped to [`Storage::max_discharge_kw`]) for `dt_h` hours.
    fn discharge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError>;
    /// Charge efficiency `η_c` (fraction).
    fn charge_efficiency(&self) -> f64;
    /// Discharge efficiency `η_d` (fraction).
    fn discharge_efficiency(&self) -> f64;
    /// Cumulative throughput since creation, kWh.
    fn throughput_kwh(&self) -> f64;
}

#[inline]
fn check_dt(dt_h: f64) -> Result<f64, ComponentError> {
    if dt_h.is_finite() && dt_h > 0.0 {
        Ok(dt_h)
    } else {
        Err(ComponentError::InvalidInput {
            what: "step length dt_h",
            value: dt_h,
        })
    }
}

#[inline]
fn usable_dt(dt_h: f64) -> bool {
    dt_h.is_finite() && dt_h > 0.0
}

/// Parameters shared by both battery models (library form: fractions, not percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryParams {
    /// Nominal capacity, kWh (> 0).
    pub capacity_kwh: f64,
    /// Round-trip efficiency (fraction in (0, 1]); split √η each way.
    pub round_trip_efficiency: f64,
    /// Minimum state of charge (fraction in [0, 1)).
    pub min_soc: f64,
    /// Initial state of charge (fraction in [min_soc, 1]).
    pub initial_soc: f64,
    /// Maximum charging power at the terminals, kW (> 0; `f64::INFINITY` = unlimited).
    pub max_charge_kw: f64,
    /// Maximum discharging power at the terminals, kW (> 0; `f64::INFINITY` = unlimited).
    pub max_discharge_kw: f64,
}

impl BatteryParams {
    fn check(&self) -> Result<(), ComponentError> {
        let p = self;
        if !(p.capacity_kwh.is_finite() && p.capacity_kwh > 0.0) {
            return Err(ComponentError::parameter(
                "capacity_kwh",
                format!("must be > 0, got {}", p.capacity_kwh),
            ));
        }
        if !(p.round_trip_efficiency > 0.0 && p.round_trip_efficiency <= 1.0) {
            return Err(ComponentError::parameter(
                "round_trip_efficiency",
                format!("must be in (0, 1], got {}", p.round_trip_efficiency),
            ));
        }
        if !(p.min_soc >= 0.0 && p.min_soc < 1.0) {
            return Err(ComponentError::parameter(
                "min_soc",
                format!("must be in [0, 1), got {}", p.min_soc),
            ));
        }
        if !(p.initial_soc >= p.min_soc && p.initial_soc <= 1.0) {
            return Err(ComponentError::parameter(
                "initial_soc",
                format!(
                    "must be in [min_soc, 1] = [{}, 1], got {}",
                    p.min_soc, p.initial_soc
                ),
            ));
        }
        for (field, v) in [
            ("max_charge_kw", p.max_charge_kw),
            ("max_discharge_kw", p.max_discharge_kw),
        ] {
            // NaN fails `v > 0`; +inf is allowed and means "no power limit".
            if v.is_nan() || v <= 0.0 {
                return Err(ComponentError::parameter(
                    field,
                    format!("must be > 0, got {v}"),
                ));
            }
        }
        Ok(())
    }

    fn one_way_efficiency(&self) -> f64 {
        self.round_trip_efficiency.sqrt()
    }
}

/// HOMER's idealized storage: a flat capacity curve, √η efficiency each way, a minimum state of
/// charge and power limits.
#[derive(Debug, Clone, PartialEq)]
pub struct IdealBattery {
    params: BatteryParams,
    eta: f64,
    inv_eta: f64,
    stored_kwh: f64,
    throughput_kwh: f64,
}

impl IdealBattery {
    /// Builds the battery at its initial state of charge.
    pub fn new(params: BatteryParams) -> Result<Self, ComponentError> {
        params.check()?;
        Ok(Self {
            eta: params.one_way_efficiency(),
            inv_eta: 1.0 / params.one_way_efficiency(),
            stored_kwh: params.initial_soc * params.capacity_kwh,
            throughput_kwh: 0.0,
            params,
        })
    }

    fn min_stored_kwh(&self) -> f64 {
        self.params.min_soc * self.params.capacity_kwh
    }
}

impl Storage for IdealBattery {
    fn capacity_kwh(&self) -> f64 {
        self.params.capacity_kwh
    }
    fn stored_kwh(&self) -> f64 {
        self.stored_kwh
    }
    fn min_soc(&self) -> f64 {
        self.params.min_soc
    }
    #[inline]
    fn max_charge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        let room = (self.params.capacity_kwh - self.stored_kwh).max(0.0);
        self.params.max_charge_kw.min(room * self.inv_eta / dt_h)
    }
    #[inline]
    fn max_discharge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        let usable = (self.stored_kwh - self.min_stored_kwh()).max(0.0);
        self.params.max_discharge_kw.min(usable * self.eta / dt_h)
    }
    #[inline]
    fn charge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        let dt_h = check_dt(dt_h)?;
        let power_kw = check_input("charge power_kw", power_kw)?.min(self.max_charge_kw(dt_h));
        let before = self.stored_kwh;
        // Clamp only guards against the last ulp of rounding at a full battery.
        self.stored_kwh = (before + power_kw * dt_h * self.eta).min(self.params.capacity_kwh);
        let terminal = power_kw * dt_h;
        let change = self.stored_kwh - before;
        Ok(StorageFlow {
            power_kw,
            terminal_energy_kwh: terminal,
            stored_change_kwh: change,
            loss_kwh: terminal - change,
        })
    }
    #[inline]
    fn discharge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        let dt_h = check_dt(dt_h)?;
        let power_kw =
            check_input("discharge power_kw", power_kw)?.min(self.max_discharge_kw(dt_h));
        let before = self.stored_kwh;
        self.stored_kwh = (before - power_kw * dt_h * self.inv_eta).max(self.min_stored_kwh());
        let terminal = power_kw * dt_h;
        let change = self.stored_kwh - before;
        self.throughput_kwh -= change;
        Ok(StorageFlow {
            power_kw,
            terminal_energy_kwh: terminal,
            stored_change_kwh: change,
            loss_kwh: -change - terminal,
        })
    }
    fn charge_efficiency(&self) -> f64 {
        self.eta
    }
    fn discharge_efficiency(&self) -> f64 {
        self.eta
    }
    fn throughput_kwh(&self) -> f64 {
        self.throughput_kwh
    }
}

/// Parameters specific to the kinetic battery model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KineticParams {
    /// Capacity ratio `c`: the available tank's share of the capacity (fraction in (0, 1)).
    pub capacity_ratio: f64,
    /// Rate constant `k`, 1/h (> 0): how fast energy flows between the tanks.
    pub rate_constant_per_h: f64,
    /// Maximum charge rate `α_c`, A/Ah (= 1/h, > 0; `f64::INFINITY` = unlimited): charging power
    /// is at most `(1 − e^(−α_c·Δt))·(Q_max − Q)/Δt`.
    pub max_charge_rate_per_h: f64,
    /// Maximum charge current times nominal voltage, kW at the tanks (`N·I_max·V_nom/1000`;
    /// `f64::INFINITY` = unlimited).
    pub max_charge_current_kw: f64,
}

/// The kinetic battery model (Manwell & McGowan 1993) as HOMER uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct KineticBattery {
    params: BatteryParams,
    kinetic: KineticParams,
    eta: f64,
    // Reciprocals keep divisions (slow, and serial in the step chain) out of the step path.
    inv_eta: f64,
    /// Available energy, kWh.
    q1_kwh: f64,
    /// Bound energy, kWh.
    q2_kwh: f64,
    throughput_kwh: f64,
    /// The exponential terms of the last step length used: steps rarely change length, and
    /// this keeps `exp` out of the per-step path (the dispatcher asks limits, then applies).
    coefficients: Cell<StepCoefficients>,
}

/// Terms of the KiBaM equations that depend only on the step length.
#[derive(Debug, Clone, Copy, PartialEq)]
struct StepCoefficients {
    dt_h: f64,
    /// `1 / Δt`
    inv_dt: f64,
    /// `e^(−kΔt)`
    e: f64,
    /// `c·(1 − e^(−kΔt))`
    c_one_minus_e: f64,
    /// `A = [(1 − e) + c(kΔt − 1 + e)] / k`: HOMER's denominator over k. With it the tank
    /// equation reads `Q1′ = e·Q1 + c(1 − e)·Q − A·P`.
    a: f64,
    /// `1 / A`
    inv_a: f64,
    /// `(1 − e^(−α_c·Δt)) / Δt` (or `1/Δt` without a charge-rate limit)
    mcr_per_h: f64,
}

impl KineticBattery {
    /// Builds the battery at its initial state of charge, with the two tanks in equilibrium
    /// (equal heads: `Q1 = c·Q`, `Q2 = (1 − c)·Q`).
    pub fn new(params: BatteryParams, kinetic: KineticParams) -> Result<Self, ComponentError> {
        params.check()?;
        let c = kinetic.capacity_ratio;
        if !(c > 0.0 && c < 1.0) {
            return Err(ComponentError::parameter(
                "capacity_ratio",
                format!("must be in (0, 1), got {c}"),
            ));
        }
        for (field, v) in [
            ("rate_constant_per_h", kinetic.rate_constant_per_h),
            ("max_charge_rate_per_h", kinetic.max_charge_rate_per_h),
            ("max_charge_current_kw", kinetic.max_charge_current_kw),
        ] {
            if v.is_nan() || v <= 0.0 {
                return Err(ComponentError::parameter(
                    field,
                    format!("must be > 0, got {v}"),
                ));
            }
        }
        if !kinetic.rate_constant_per_h.is_finite() {
            return Err(ComponentError::parameter(
                "rate_constant_per_h",
                "must be finite",
            ));
        }
        let q = params.initial_soc * params.capacity_kwh;
        Ok(Self {
            eta: params.one_way_efficiency(),
            inv_eta: 1.0 / params.one_way_efficiency(),
            q1_kwh: c * q,
            q2_kwh: (1.0 - c) * q,
            throughput_kwh: 0.0,
            // NaN never equals a step length, so the first use computes the terms.
            coefficients: Cell::new(StepCoefficients {
                dt_h: f64::NAN,
                inv_dt: 0.0,
                e: 0.0,
                c_one_minus_e: 0.0,
                a: 0.0,
                inv_a: 0.0,
                mcr_per_h: 0.0,
            }),
            params,
            kinetic,
        })
    }

    /// Available-tank energy `Q1`, kWh.
    pub fn available_kwh(&self) -> f64 {
        self.q1_kwh
    }

    /// Bound-tank energy `Q2`, kWh.
    pub fn bound_kwh(&self) -> f64 {
        self.q2_kwh
    }

    /// The kinetic parameters.
    pub fn kinetic_params(&self) -> KineticParams {
        self.kinetic
    }

    /// The step-length terms, computed without cancellation (`exp_m1`) and cached.
    fn coefficients(&self, dt_h: f64) -> StepCoefficients {
        let cached = self.coefficients.get();
        if cached.dt_h == dt_h {
            return cached;
        }
        let kdt = self.kinetic.rate_constant_per_h * dt_h;
        let one_minus_e = -(-kdt).exp_m1();
        let ramp = kdt - one_minus_e;
        let alpha = self.kinetic.max_charge_rate_per_h;
        let c = self.kinetic.capacity_ratio;
        let a = (one_minus_e + c * ramp) / self.kinetic.rate_constant_per_h;
        let fresh = StepCoefficients {
            dt_h,
            inv_dt: 1.0 / dt_h,
            e: 1.0 - one_minus_e,
            c_one_minus_e: c * one_minus_e,
            a,
            inv_a: 1.0 / a,
            mcr_per_h: if alpha.is_finite() {
                -(-alpha * dt_h).exp_m1() / dt_h
            } else {
                1.0 / dt_h
            },
        };
        self.coefficients.set(fresh);
        fresh
    }

    /// HOMER's `P_dmax,kbm`: the tank-side power that empties `Q1` exactly at the end of the step,
    /// `[k·Q1·e + Q·k·c·(1 − e)] / [(1 − e) + c(kΔt − 1 + e)]` = `(e·Q1 + c(1 − e)·Q) / A`.
    pub fn kibam_max_discharge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        let t = self.coefficients(dt_h);
        let q = self.q1_kwh + self.q2_kwh;
        ((t.e * self.q1_kwh + t.c_one_minus_e * q) * t.inv_a).max(0.0)
    }

    /// HOMER's `P_cmax,kbm` (as a positive number): the tank-side power that fills `Q1` to
    /// `c·Q_max` exactly at the end of the step,
    /// `[k·c·Q_max − k·Q1·e − Q·k·c·(1 − e)] / [same denominator]` = `(c·Q_max − e·Q1 − c(1 − e)·Q) / A`.
    pub fn kibam_max_charge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        let t = self.coefficients(dt_h);
        let q = self.q1_kwh + self.q2_kwh;
        let full_q1 = self.kinetic.capacity_ratio * self.params.capacity_kwh;
        ((full_q1 - t.e * self.q1_kwh - t.c_one_minus_e * q) * t.inv_a).max(0.0)
    }

    /// Tank-side charge limit: `MIN(P_cmax,kbm, P_cmax,mcr, P_cmax,mcc)`, and never more than
    /// fills the battery.
    fn max_charge_tank_kw(&self, dt_h: f64) -> f64 {
        let q = self.q1_kwh + self.q2_kwh;
        let room = (self.params.capacity_kwh - q).max(0.0);
        let t = self.coefficients(dt_h);
        self.kibam_max_charge_kw(dt_h)
            .min(t.mcr_per_h * room)
            .min(self.kinetic.max_charge_current_kw)
            .min(room * t.inv_dt)
    }

    /// Tank-side discharge limit: `P_dmax,kbm`, and never below the minimum state of charge.
    fn max_discharge_tank_kw(&self, dt_h: f64) -> f64 {
        let q = self.q1_kwh + self.q2_kwh;
        let usable = (q - self.params.min_soc * self.params.capacity_kwh).max(0.0);
        self.kibam_max_discharge_kw(dt_h)
            .min(usable * self.coefficients(dt_h).inv_dt)
    }

    /// Advances both tanks by one step at constant tank-side power `p_kw` (> 0 discharges).
    fn step_tanks(&mut self, p_kw: f64, dt_h: f64) {
        let c = self.kinetic.capacity_ratio;
        let q = self.q1_kwh + self.q2_kwh;
        let t = self.coefficients(dt_h);
        // Q1′ = Q1·e + (Q·k·c − P)(1 − e)/k − P·c(kΔt − 1 + e)/k, regrouped.
        let q1 = t.e * self.q1_kwh + t.c_one_minus_e * q - t.a * p_kw;
        // Q2 from the total keeps Q1 + Q2 = Q − P·Δt exact up to one rounding; it equals
        // Q2·e + Q(1 − c)(1 − e) − P(1 − c)(kΔt − 1 + e)/k analytically.
        let total = q - p_kw * dt_h;
        // Rounding may leave Q1 a few ulps outside its tank at the limits.
        let q1 = q1
            .clamp(0.0, c * self.params.capacity_kwh)
            .min(total.max(0.0));
        self.q1_kwh = q1;
        self.q2_kwh = total - q1;
    }
}

impl Storage for KineticBattery {
    fn capacity_kwh(&self) -> f64 {
        self.params.capacity_kwh
    }
    fn stored_kwh(&self) -> f64 {
        self.q1_kwh + self.q2_kwh
    }
    fn min_soc(&self) -> f64 {
        self.params.min_soc
    }
    fn max_charge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        // Charging losses occur before the energy enters the tanks: P_cmax = MIN(...) / η_c.
        self.params
            .max_charge_kw
            .min(self.max_charge_tank_kw(dt_h) * self.inv_eta)
    }
    fn max_discharge_kw(&self, dt_h: f64) -> f64 {
        if !usable_dt(dt_h) {
            return 0.0;
        }
        // Discharging losses occur after the energy leaves the tanks: P_dmax = η_d·P_dmax,kbm.
        self.params
            .max_discharge_kw
            .min(self.max_discharge_tank_kw(dt_h) * self.eta)
    }
    fn charge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        let dt_h = check_dt(dt_h)?;
        let power_kw = check_input("charge power_kw", power_kw)?.min(self.max_charge_kw(dt_h));
        let before = self.stored_kwh();
        self.step_tanks(-power_kw * self.eta, dt_h);
        let terminal = power_kw * dt_h;
        let change = self.stored_kwh() - before;
        Ok(StorageFlow {
            power_kw,
            terminal_energy_kwh: terminal,
            stored_change_kwh: change,
            loss_kwh: terminal - change,
        })
    }
    fn discharge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        let dt_h = check_dt(dt_h)?;
        let power_kw =
            check_input("discharge power_kw", power_kw)?.min(self.max_discharge_kw(dt_h));
        let before = self.stored_kwh();
        self.step_tanks(power_kw * self.inv_eta, dt_h);
        let terminal = power_kw * dt_h;
        let change = self.stored_kwh() - before;
        self.throughput_kwh -= change;
        Ok(StorageFlow {
            power_kw,
            terminal_energy_kwh: terminal,
            stored_change_kwh: change,
            loss_kwh: -change - terminal,
        })
    }
    fn charge_efficiency(&self) -> f64 {
        self.eta
    }
    fn discharge_efficiency(&self) -> f64 {
        self.eta
    }
    fn throughput_kwh(&self) -> f64 {
        self.throughput_kwh
    }
}

/// A battery of either model, built from a [`BatteryConfig`]; static dispatch keeps the step
/// loop free of virtual calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Battery {
    /// HOMER's idealized model.
    Ideal(IdealBattery),
    /// The kinetic battery model.
    Kinetic(KineticBattery),
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Battery::Ideal($b) => $e,
            Battery::Kinetic($b) => $e,
        }
    };
}

impl Storage for Battery {
    #[inline]
    fn capacity_kwh(&self) -> f64 {
        delegate!(self, b => b.capacity_kwh())
    }
    fn stored_kwh(&self) -> f64 {
        delegate!(self, b => b.stored_kwh())
    }
    fn min_soc(&self) -> f64 {
        delegate!(self, b => b.min_soc())
    }
    #[inline]
    fn max_charge_kw(&self, dt_h: f64) -> f64 {
        delegate!(self, b => b.max_charge_kw(dt_h))
    }
    #[inline]
    fn max_discharge_kw(&self, dt_h: f64) -> f64 {
        delegate!(self, b => b.max_discharge_kw(dt_h))
    }
    #[inline]
    fn charge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        delegate!(self, b => b.charge(power_kw, dt_h))
    }
    #[inline]
    fn discharge(&mut self, power_kw: f64, dt_h: f64) -> Result<StorageFlow, ComponentError> {
        delegate!(self, b => b.discharge(power_kw, dt_h))
    }
    fn charge_efficiency(&self) -> f64 {
        delegate!(self, b => b.charge_efficiency())
    }
    fn discharge_efficiency(&self) -> f64 {
        delegate!(self, b => b.discharge_efficiency())
    }
    fn throughput_kwh(&self) -> f64 {
        delegate!(self, b => b.throughput_kwh())
    }
}

impl Battery {
    /// Builds the configured model at its initial state of charge.
    pub fn from_config(config: &BatteryConfig) -> Result<Self, ComponentError> {
        let params = BatteryParams {
            capacity_kwh: config.capacity_kwh,
            round_trip_efficiency: config.round_trip_efficiency_pct / 100.0,
            min_soc: config.min_soc_pct / 100.0,
            initial_soc: config.initial_soc_pct / 100.0,
            max_charge_kw: config.max_charge_power_kw,
            max_discharge_kw: config.max_discharge_power_kw,
        };
        match config.model {
            BatteryModelKind::Idealized => Ok(Self::Ideal(IdealBattery::new(params)?)),
            BatteryModelKind::Kinetic => {
                let k = &config.kinetic;
                let max_charge_current_kw = match k.max_charge_current_a {
                    Some(amps) => amps * k.nominal_voltage_v / 1000.0,
                    None => f64::INFINITY,
                };
                Ok(Self::Kinetic(KineticBattery::new(
                    params,
                    KineticParams {
                        capacity_ratio: k.capacity_ratio,
                        rate_constant_per_h: k.rate_constant_per_h,
                        max_charge_rate_per_h: k.max_charge_rate_a_per_ah,
                        max_charge_current_kw,
                    },
                )?))
            }
        }
    }
}

/// Battery bank life in years: `MIN(Q_lifetime / Q_thrpt, R_float)` (HOMER glossary "Battery
/// Bank Life"). `lifetime_throughput_kwh = None` means the throughput never wears it out; with
/// no throughput the float life applies.
pub fn battery_life_years(
    lifetime_throughput_kwh: Option<f64>,
    annual_throughput_kwh: f64,
    float_life_years: f64,
) -> f64 {
    match lifetime_throughput_kwh {
        Some(q_life) if annual_throughput_kwh > 0.0 => {
            (q_life / annual_throughput_kwh).min(float_life_years)
        }
        _ => float_life_years,
    }
}

/// Battery wear cost, EUR per kWh cycled through the storage:
/// `C_bw = C_rep / (Q_lifetime · √η_rt)` (Lambert et al. 2006). Zero without a throughput
/// limit.
pub fn wear_cost_eur_per_kwh(
    replacement_cost_eur: f64,
    lifetime_throughput_kwh: Option<f64>,
    round_trip_efficiency: f64,
) -> f64 {
    match lifetime_throughput_kwh {
        Some(q_life) if q_life > 0.0 => {
            replacement_cost_eur / (q_life * round_trip_efficiency.sqrt())
        }
        _ => 0.0,
    }
}

/// HOMER's battery energy cost: the running average cost of the energy in storage
/// (usersupport article 2189053). With the wear cost it gives the battery's dispatch cost: with
/// only grid and battery, HOMER discharges only when that cost is below the grid price.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoredEnergyCost {
    stored_kwh: f64,
    cost_eur: f64,
}

impl StoredEnergyCost {
    /// Starts with `stored_kwh` in storage valued at `eur_per_kwh` (0 for a free initial charge).
    pub fn new(stored_kwh: f64, eur_per_kwh: f64) -> Self {
        Self {
            stored_kwh: stored_kwh.max(0.0),
            cost_eur: stored_kwh.max(0.0) * eur_per_kwh,
        }
    }

    /// Records a charge: the stored energy rose by `stored_increase_kwh` and its input cost
    /// `input_cost_eur` (terminal energy times its price; surplus renewables cost 0).
    pub fn on_charge(&mut self, stored_increase_kwh: f64, input_cost_eur: f64) {
        self.stored_kwh += stored_increase_kwh.max(0.0);
        self.cost_eur += input_cost_eur;
    }

    /// Records a discharge of `stored_decrease_kwh` (> 0): it leaves at the average cost, so the
    /// average does not change.
    pub fn on_discharge(&mut self, stored_decrease_kwh: f64) {
        let avg = self.average_eur_per_kwh();
        self.stored_kwh = (self.stored_kwh - stored_decrease_kwh.max(0.0)).max(0.0);
        self.cost_eur = avg * self.stored_kwh;
    }

    /// Average cost of the stored energy, EUR per stored kWh (0 when empty).
    pub fn average_eur_per_kwh(&self) -> f64 {
        if self.stored_kwh > 0.0 {
            self.cost_eur / self.stored_kwh
        } else {
            0.0
        }
    }

    /// Cost of one kWh delivered at the terminals: the stored energy it takes (`1/η_d` kWh at
    /// the average cost) plus the wear cost.
    pub fn discharge_cost_eur_per_kwh(
        &self,
        wear_eur_per_kwh: f64,
        discharge_efficiency: f64,
    ) -> f64 {
        self.average_eur_per_kwh() / discharge_efficiency + wear_eur_per_kwh
    }
}

/// Which battery model to simulate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatteryModelKind {
    /// HOMER's idealized model (default: the usual choice for Li-ion).
    #[default]
    Idealized,
    /// The kinetic battery model (lead-acid).
    Kinetic,
}

/// A battery bank in the scenario (`[...battery]`). Costs scale with capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatteryConfig {
    /// `"idealized"` (default) or `"kinetic"`.
    #[serde(default)]
    pub model: BatteryModelKind,
    /// Nominal capacity, kWh (> 0).
    pub capacity_kwh: f64,
    /// Maximum charging power at the DC terminals, kW (> 0).
    pub max_charge_power_kw: f64,
    /// Maximum discharging power at the DC terminals, kW (> 0).
    pub max_discharge_power_kw: f64,
    /// Round-trip efficiency, percent (default 90, HOMER's generic Li-ion); split √η each way.
    #[serde(default = "default_round_trip_efficiency_pct")]
    pub round_trip_efficiency_pct: f64,
    /// Minimum state of charge, percent (default 20).
    #[serde(default = "default_min_soc_pct")]
    pub min_soc_pct: f64,
    /// State of charge at the start of the simulation, percent (default 100, as HOMER).
    #[serde(default = "default_initial_soc_pct")]
    pub initial_soc_pct: f64,
    /// Kinetic model parameters (used only when `model = "kinetic"`; defaults of HOMER's
    /// generic 1 kWh lead-acid battery).
    #[serde(default)]
    pub kinetic: KineticConfig,
    /// Lifetime throughput, kWh (default: none, the float life alone limits the life).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_throughput_kwh: Option<f64>,
    /// Float life, years (default 15).
    #[serde(default = "default_battery_lifetime_years")]
    pub lifetime_years: f64,
    /// Capital cost, EUR per kWh of capacity (default 0).
    #[serde(default)]
    pub capital_cost_eur_per_kwh: f64,
    /// Replacement cost, EUR per kWh of capacity (default 0).
    #[serde(default)]
    pub replacement_cost_eur_per_kwh: f64,
    /// Operation and maintenance cost, EUR per kWh of capacity per year (default 0).
    #[serde(default)]
    pub om_cost_eur_per_kwh_year: f64,
}

/// Kinetic battery model parameters of a [`BatteryConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KineticConfig {
    /// Capacity ratio `c` (default 0.403, HOMER's generic 1 kWh lead-acid; [unverified]).
    #[serde(default = "default_capacity_ratio")]
    pub capacity_ratio: f64,
    /// Rate constant `k`, 1/h (default 0.827, same source).
    #[serde(default = "default_rate_constant_per_h")]
    pub rate_constant_per_h: f64,
    /// Maximum charge rate `α_c`, A/Ah (default 1).
    #[serde(default = "default_max_charge_rate_a_per_ah")]
    pub max_charge_rate_a_per_ah: f64,
    /// Maximum charge current of the bank, A (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_charge_current_a: Option<f64>,
    /// Nominal bank voltage, V (default 12; only used with `max_charge_current_a`).
    #[serde(default = "default_nominal_voltage_v")]
    pub nominal_voltage_v: f64,
}

impl Default for KineticConfig {
    fn default() -> Self {
        Self {
            capacity_ratio: default_capacity_ratio(),
            rate_constant_per_h: default_rate_constant_per_h(),
            max_charge_rate_a_per_ah: default_max_charge_rate_a_per_ah(),
            max_charge_current_a: None,
            nominal_voltage_v: default_nominal_voltage_v(),
        }
    }
}

fn default_round_trip_efficiency_pct() -> f64 {
    90.0
}
fn default_min_soc_pct() -> f64 {
    20.0
}
fn default_initial_soc_pct() -> f64 {
    100.0
}
fn default_battery_lifetime_years() -> f64 {
    15.0
}
fn default_capacity_ratio() -> f64 {
    0.403
}
fn default_rate_constant_per_h() -> f64 {
    0.827
}
fn default_max_charge_rate_a_per_ah() -> f64 {
    1.0
}
fn default_nominal_voltage_v() -> f64 {
    12.0
}

impl BatteryConfig {
    /// Every problem of this battery, as `(field path, message)`, with `path` as the prefix.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut p = Problems::default();
        p.positive(path, "capacity_kwh", self.capacity_kwh);
        p.positive(path, "max_charge_power_kw", self.max_charge_power_kw);
        p.positive(path, "max_discharge_power_kw", self.max_discharge_power_kw);
        if !(self.round_trip_efficiency_pct > 0.0 && self.round_trip_efficiency_pct <= 100.0) {
            p.fail(
                path,
                "round_trip_efficiency_pct",
                format!(
                    "must be in (0, 100], got {}",
                    self.round_trip_efficiency_pct
                ),
            );
        }
        if !(self.min_soc_pct >= 0.0 && self.min_soc_pct < 100.0) {
            p.fail(
                path,
                "min_soc_pct",
                format!("must be in [0, 100), got {}", self.min_soc_pct),
            );
        }
        if !(self.initial_soc_pct >= self.min_soc_pct && self.initial_soc_pct <= 100.0) {
            p.fail(
                path,
                "initial_soc_pct",
                format!(
                    "must be between min_soc_pct ({}) and 100, got {}",
                    self.min_soc_pct, self.initial_soc_pct
                ),
            );
        }
        if self.model == BatteryModelKind::Kinetic {
            let kpath = crate::component_error::join(path, "kinetic");
            let k = &self.kinetic;
            if !(k.capacity_ratio > 0.0 && k.capacity_ratio < 1.0) {
                p.fail(
                    &kpath,
                    "capacity_ratio",
                    format!("must be in (0, 1), got {}", k.capacity_ratio),
                );
            }
            p.positive(&kpath, "rate_constant_per_h", k.rate_constant_per_h);
            p.positive(
                &kpath,
                "max_charge_rate_a_per_ah",
                k.max_charge_rate_a_per_ah,
            );
            if let Some(a) = k.max_charge_current_a {
                p.positive(&kpath, "max_charge_current_a", a);
                p.positive(&kpath, "nominal_voltage_v", k.nominal_voltage_v);
            }
        }
        if let Some(q) = self.lifetime_throughput_kwh {
            p.positive(path, "lifetime_throughput_kwh", q);
        }
        p.positive(path, "lifetime_years", self.lifetime_years);
        p.non_negative(
            path,
            "capital_cost_eur_per_kwh",
            self.capital_cost_eur_per_kwh,
        );
        p.non_negative(
            path,
            "replacement_cost_eur_per_kwh",
            self.replacement_cost_eur_per_kwh,
        );
        p.non_negative(
            path,
            "om_cost_eur_per_kwh_year",
            self.om_cost_eur_per_kwh_year,
        );
        p.list
    }

    /// Wear cost of this bank, EUR per kWh cycled (see [`wear_cost_eur_per_kwh`]).
    pub fn wear_cost_eur_per_kwh(&self) -> f64 {
        wear_cost_eur_per_kwh(
            self.replacement_cost_eur_per_kwh * self.capacity_kwh,
            self.lifetime_throughput_kwh,
            self.round_trip_efficiency_pct / 100.0,
        )
    }

    /// The bank's life, years, given the simulated annual throughput (see [`battery_life_years`]).
    pub fn life_years(&self, annual_throughput_kwh: f64) -> f64 {
        battery_life_years(
            self.lifetime_throughput_kwh,
            annual_throughput_kwh,
            self.lifetime_years,
        )
    }

    /// The bank's costs for the economics, given the simulated annual throughput.
    pub fn costs(&self, annual_throughput_kwh: f64) -> crate::economics::ComponentCosts {
        crate::economics::ComponentCosts {
            capital_eur: self.capital_cost_eur_per_kwh * self.capacity_kwh,
            replacement_eur: self.replacement_cost_eur_per_kwh * self.capacity_kwh,
            om_eur_per_year: self.om_cost_eur_per_kwh_year * self.capacity_kwh,
            lifetime_years: self.life_years(annual_throughput_kwh),
        }
    }
}
