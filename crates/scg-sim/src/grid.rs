//! The connection to the main grid: per-step purchase and sell-back prices from a tariff
//! description, purchase/sale capacity limits, and the annual bill (energy charges, sales,
//! demand charges) as HOMER computes it without net metering (homer.md §4.3).
//!
//! Tariffs: a flat price; Italian time-of-use bands F1/F2/F3 (ARERA 181/06; the band of each
//! step is an input here: `scg_resource::tariff::bands` computes it from the time grid); or the hourly
//! zonal price plus a fixed adder for network charges and taxes. Sell-back: none, flat, the
//! zonal price, or the Ritiro Dedicato (GSE buys at the hourly zonal price with a minimum
//! guaranteed price on the first 1,500 MWh of the year, trued up at year end to the zonal value
//! when that is higher; markets-vpp-climate.md §3.3).
//!
//! This module reads no price file: price and band series come in as slices. It does no I/O.

use crate::component_error::{ComponentError, Problems, check_len};
use crate::dispatch::ResidualParts;
use serde::{Deserialize, Serialize};

/// An Italian retail time-of-use band (ARERA 181/06), as `scg_resource::tariff` computes it
/// from the calendar (holidays included).
pub use scg_resource::tariff::Band as TouBand;

/// How energy bought from the grid is priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PurchaseTariff {
    /// One price at every step.
    Flat {
        /// EUR/kWh.
        price_eur_per_kwh: f64,
    },
    /// A price per time-of-use band.
    Bands {
        /// EUR/kWh in F1.
        f1_eur_per_kwh: f64,
        /// EUR/kWh in F2.
        f2_eur_per_kwh: f64,
        /// EUR/kWh in F3.
        f3_eur_per_kwh: f64,
    },
    /// The hourly zonal price plus a fixed adder (network charges, system charges, taxes).
    Zonal {
        /// EUR/kWh added to the zonal price (default 0).
        #[serde(default)]
        adder_eur_per_kwh: f64,
    },
}

/// How energy sold to the grid is paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SellBack {
    /// Exports earn nothing.
    None,
    /// One price at every step.
    Flat {
        /// EUR/kWh.
        price_eur_per_kwh: f64,
    },
    /// The hourly zonal price.
    Zonal,
    /// GSE's Ritiro Dedicato: the hourly zonal price, with a minimum guaranteed price on the
    /// first `minimum_price_limit_mwh` of the year (year-end true-up: whichever is higher).
    RitiroDedicato {
        /// Minimum guaranteed price, EUR/MWh (default 47.5, GSE's PV value for 2026; 0 turns
        /// the floor off).
        #[serde(default = "default_minimum_price_eur_per_mwh")]
        minimum_price_eur_per_mwh: f64,
        /// Energy per year the minimum price applies to, MWh (default 1,500).
        #[serde(default = "default_minimum_price_limit_mwh")]
        minimum_price_limit_mwh: f64,
    },
}

fn default_minimum_price_eur_per_mwh() -> f64 {
    47.5
}
fn default_minimum_price_limit_mwh() -> f64 {
    1500.0
}

/// The grid connection in the scenario (`[grid]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// The purchase tariff.
    pub purchase: PurchaseTariff,
    /// Sell-back (default: Ritiro Dedicato with its defaults).
    #[serde(default = "default_sell_back")]
    pub sell_back: SellBack,
    /// Demand charge on each month's peak purchase power, EUR per kW per month (default 0).
    #[serde(default)]
    pub demand_charge_eur_per_kw_month: f64,
    /// Purchase capacity, kW (default: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_purchase_kw: Option<f64>,
    /// Sale capacity, kW (default: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sale_kw: Option<f64>,
}

fn default_sell_back() -> SellBack {
    SellBack::RitiroDedicato {
        minimum_price_eur_per_mwh: default_minimum_price_eur_per_mwh(),
        minimum_price_limit_mwh: default_minimum_price_limit_mwh(),
    }
}

impl GridConfig {
    /// Every problem, as `(field path, message)`, with `path` as the prefix.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut p = Problems::default();
        let pp = crate::component_error::join(path, "purchase");
        match &self.purchase {
            PurchaseTariff::Flat { price_eur_per_kwh } => {
                p.in_range(&pp, "price_eur_per_kwh", *price_eur_per_kwh, -10.0, 10.0);
            }
            PurchaseTariff::Bands {
                f1_eur_per_kwh,
                f2_eur_per_kwh,
                f3_eur_per_kwh,
            } => {
                p.in_range(&pp, "f1_eur_per_kwh", *f1_eur_per_kwh, -10.0, 10.0);
                p.in_range(&pp, "f2_eur_per_kwh", *f2_eur_per_kwh, -10.0, 10.0);
                p.in_range(&pp, "f3_eur_per_kwh", *f3_eur_per_kwh, -10.0, 10.0);
            }
            PurchaseTariff::Zonal { adder_eur_per_kwh } => {
                p.in_range(&pp, "adder_eur_per_kwh", *adder_eur_per_kwh, -10.0, 10.0);
            }
        }
        let sp = crate::component_error::join(path, "sell_back");
        match &self.sell_back {
            SellBack::None | SellBack::Zonal => {}
            SellBack::Flat { price_eur_per_kwh } => {
                p.in_range(&sp, "price_eur_per_kwh", *price_eur_per_kwh, -10.0, 10.0);
            }
            SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh,
                minimum_price_limit_mwh,
            } => {
                p.in_range(
                    &sp,
                    "minimum_price_eur_per_mwh",
                    *minimum_price_eur_per_mwh,
                    0.0,
                    4000.0,
                );
                p.non_negative(&sp, "minimum_price_limit_mwh", *minimum_price_limit_mwh);
            }
        }
        p.non_negative(
            path,
            "demand_charge_eur_per_kw_month",
            self.demand_charge_eur_per_kw_month,
        );
        if let Some(v) = self.max_purchase_kw {
            p.non_negative(path, "max_purchase_kw", v);
        }
        if let Some(v) = self.max_sale_kw {
            p.non_negative(path, "max_sale_kw", v);
        }
        p.list
    }

    /// Whether this tariff needs the hourly zonal price series.
    pub fn needs_zonal_prices(&self) -> bool {
        matches!(self.purchase, PurchaseTariff::Zonal { .. })
            || matches!(
                self.sell_back,
                SellBack::Zonal | SellBack::RitiroDedicato { .. }
            )
    }

    /// Whether this tariff needs the F1/F2/F3 band of every step.
    pub fn needs_bands(&self) -> bool {
        matches!(self.purchase, PurchaseTariff::Bands { .. })
    }
}

/// Repeats each hourly value `steps_per_hour` times: hourly zonal prices on 15-minute steps
/// (GME's hourly price holds for every quarter of its hour).
pub fn hourly_to_steps(hourly: &[f64], steps_per_hour: usize) -> Vec<f64> {
    hourly
        .iter()
        .flat_map(|v| std::iter::repeat_n(*v, steps_per_hour))
        .collect()
}

/// The per-step series a tariff is evaluated on. All slices have one value per step.
#[derive(Debug, Clone, Copy)]
pub struct GridInputs<'a> {
    /// Length of one step, hours (1 or 0.25).
    pub step_hours: f64,
    /// Calendar month of each step, 1..=12 (for the monthly demand charge).
    pub month: &'a [u8],
    /// F1/F2/F3 band of each step (needed by the `bands` tariff).
    pub band: Option<&'a [TouBand]>,
    /// Zonal day-ahead price of each step, EUR/MWh (needed by `zonal` purchase, `zonal` and
    /// `ritiro_dedicato` sell-back).
    pub zonal_price_eur_per_mwh: Option<&'a [f64]>,
}

/// Explicit per-step prices for [`GridTariff::from_series`].
#[derive(Debug, Clone, Copy)]
pub struct TariffSeries<'a> {
    pub step_hours: f64,
    pub month: &'a [u8],
    pub purchase_eur_per_kwh: &'a [f64],
    pub sell_eur_per_kwh: &'a [f64],
    pub demand_charge_eur_per_kw_month: f64,
    pub max_purchase_kw: f64,
    pub max_sale_kw: f64,
}

/// A tariff evaluated on a year of steps: the dispatcher reads prices and limits from it.
#[derive(Debug, Clone, PartialEq)]
pub struct GridTariff {
    step_hours: f64,
    month: Vec<u8>,
    purchase_eur_per_kwh: Vec<f64>,
    sell_eur_per_kwh: Vec<f64>,
    demand_charge_eur_per_kw_month: f64,
    max_purchase_kw: f64,
    max_sale_kw: f64,
    /// `(minimum price EUR/kWh, limit kWh)` of the Ritiro Dedicato, if that is the sell-back.
    rid_floor: Option<(f64, f64)>,
}

impl GridTariff {
    /// Evaluates `config` on the given series.
    pub fn new(config: &GridConfig, inputs: &GridInputs<'_>) -> Result<Self, ComponentError> {
        let problems = config.validate("grid");
        if let Some((field, message)) = problems.into_iter().next() {
            return Err(ComponentError::InvalidParameter { field, message });
        }
        if !(inputs.step_hours.is_finite() && inputs.step_hours > 0.0) {
            return Err(ComponentError::InvalidInput {
                what: "step_hours",
                value: inputs.step_hours,
            });
        }
        let n = inputs.month.len();
        if let Some(m) = inputs.month.iter().find(|m| !(1..=12).contains(*m)) {
            return Err(ComponentError::InvalidInput {
                what: "month (1..=12)",
                value: f64::from(*m),
            });
        }
        let zonal = match inputs.zonal_price_eur_per_mwh {
            Some(z) => {
                check_len("zonal_price_eur_per_mwh", z.len(), n)?;
                if let Some(v) = z.iter().find(|v| !v.is_finite()) {
                    return Err(ComponentError::InvalidInput {
                        what: "zonal_price_eur_per_mwh",
                        value: *v,
                    });
                }
                Some(z)
            }
            None => None,
        };
        let need_zonal = || {
            zonal.ok_or_else(|| {
                ComponentError::MissingInput(
                    "the grid tariff needs the hourly zonal price series".to_owned(),
                )
            })
        };
        let purchase_eur_per_kwh = match &config.purchase {
            PurchaseTariff::Flat { price_eur_per_kwh } => vec![*price_eur_per_kwh; n],
            PurchaseTariff::Bands {
                f1_eur_per_kwh,
                f2_eur_per_kwh,
                f3_eur_per_kwh,
            } => {
                let band = inputs.band.ok_or_else(|| {
                    ComponentError::MissingInput(
                        "the bands tariff needs the F1/F2/F3 band of every step".to_owned(),
                    )
                })?;
                check_len("band", band.len(), n)?;
                band.iter()
                    .map(|b| match b {
                        TouBand::F1 => *f1_eur_per_kwh,
                        TouBand::F2 => *f2_eur_per_kwh,
                        TouBand::F3 => *f3_eur_per_kwh,
                    })
                    .collect()
            }
            PurchaseTariff::Zonal { adder_eur_per_kwh } => need_zonal()?
                .iter()
                .map(|z| z / 1000.0 + adder_eur_per_kwh)
                .collect(),
        };
        let (sell_eur_per_kwh, rid_floor) = match &config.sell_back {
            SellBack::None => (vec![0.0; n], None),
            SellBack::Flat { price_eur_per_kwh } => (vec![*price_eur_per_kwh; n], None),
            SellBack::Zonal => (need_zonal()?.iter().map(|z| z / 1000.0).collect(), None),
            SellBack::RitiroDedicato {
                minimum_price_eur_per_mwh,
                minimum_price_limit_mwh,
            } => (
                need_zonal()?.iter().map(|z| z / 1000.0).collect(),
                Some((
                    minimum_price_eur_per_mwh / 1000.0,
                    minimum_price_limit_mwh * 1000.0,
                )),
            ),
        };
        Ok(Self {
            step_hours: inputs.step_hours,
            month: inputs.month.to_vec(),
            purchase_eur_per_kwh,
            sell_eur_per_kwh,
            demand_charge_eur_per_kw_month: config.demand_charge_eur_per_kw_month,
            max_purchase_kw: config.max_purchase_kw.unwrap_or(f64::INFINITY),
            max_sale_kw: config.max_sale_kw.unwrap_or(f64::INFINITY),
            rid_floor,
        })
    }

    /// A tariff from explicit per-step prices (EUR/kWh), months (1..=12), a demand charge and
    /// the connection's limits: no Ritiro Dedicato floor. For tests and benches that need
    /// price shapes no scenario tariff gives.
    pub fn from_series(series: &TariffSeries<'_>) -> Result<Self, ComponentError> {
        let n = series.month.len();
        check_len("purchase_eur_per_kwh", series.purchase_eur_per_kwh.len(), n)?;
        check_len("sell_eur_per_kwh", series.sell_eur_per_kwh.len(), n)?;
        if let Some(m) = series.month.iter().find(|m| !(1..=12).contains(*m)) {
            return Err(ComponentError::InvalidInput {
                what: "month (1..=12)",
                value: f64::from(*m),
            });
        }
        Ok(Self {
            step_hours: series.step_hours,
            month: series.month.to_vec(),
            purchase_eur_per_kwh: series.purchase_eur_per_kwh.to_vec(),
            sell_eur_per_kwh: series.sell_eur_per_kwh.to_vec(),
            demand_charge_eur_per_kw_month: series.demand_charge_eur_per_kw_month,
            max_purchase_kw: series.max_purchase_kw,
            max_sale_kw: series.max_sale_kw,
            rid_floor: None,
        })
    }

    /// Demand charge, EUR per kW of monthly peak purchase.
    pub fn demand_charge_eur_per_kw_month(&self) -> f64 {
        self.demand_charge_eur_per_kw_month
    }

    /// Month (1..=12) of every step.
    pub fn months(&self) -> &[u8] {
        &self.month
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.month.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.month.is_empty()
    }

    /// Purchase price of every step, EUR/kWh.
    pub fn purchase_eur_per_kwh(&self) -> &[f64] {
        &self.purchase_eur_per_kwh
    }

    /// Marginal sell-back price of every step, EUR/kWh (for the Ritiro Dedicato: the zonal
    /// price; the minimum-price true-up is settled once a year in [`GridMeter::finish`]).
    pub fn sell_eur_per_kwh(&self) -> &[f64] {
        &self.sell_eur_per_kwh
    }

    /// Purchase capacity, kW (`f64::INFINITY` when unlimited).
    pub fn max_purchase_kw(&self) -> f64 {
        self.max_purchase_kw
    }

    /// Sale capacity, kW (`f64::INFINITY` when unlimited).
    pub fn max_sale_kw(&self) -> f64 {
        self.max_sale_kw
    }

    /// Step length, hours.
    pub fn step_hours(&self) -> f64 {
        self.step_hours
    }

    /// The annual bill of given purchase and sale power series (kW, one value per step).
    pub fn bill(&self, purchase_kw: &[f64], sale_kw: &[f64]) -> Result<GridBill, ComponentError> {
        check_len("purchase_kw", purchase_kw.len(), self.len())?;
        check_len("sale_kw", sale_kw.len(), self.len())?;
        let mut meter = GridMeter::new(self);
        for (t, (p, s)) in purchase_kw.iter().zip(sale_kw).enumerate() {
            meter.record(t, *p, *s)?;
        }
        Ok(meter.finish())
    }
}

impl GridTariff {
    /// Step `t` as a meter records it: checked against the tariff's length, its prices and
    /// month looked up.
    pub fn step(&self, t: usize) -> Result<TariffStep<'_>, ComponentError> {
        self.check_step(t)?;
        Ok(TariffStep {
            tariff: self,
            t,
            purchase_eur_per_kwh: self.purchase_eur_per_kwh[t],
            sell_eur_per_kwh: self.sell_eur_per_kwh[t],
            // 1..=12, checked when the tariff was made.
            month: usize::from(self.month[t] - 1),
        })
    }

    /// Step `t` is within the tariff's year.
    #[inline]
    fn check_step(&self, t: usize) -> Result<(), ComponentError> {
        if t >= self.len() {
            return Err(ComponentError::LengthMismatch {
                what: "grid step index".to_owned(),
                expected: self.len(),
                got: t + 1,
            });
        }
        Ok(())
    }

    /// What one meter may record at step `t`: both powers finite, >= 0 and within the
    /// capacities (relative tolerance 1e-9).
    fn check_flows(&self, t: usize, purchase_kw: f64, sale_kw: f64) -> Result<(), ComponentError> {
        for (what, v, limit) in [
            ("grid purchase_kw", purchase_kw, self.max_purchase_kw),
            ("grid sale_kw", sale_kw, self.max_sale_kw),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ComponentError::InvalidInput { what, value: v });
            }
            if v > capacity_threshold_kw(limit) {
                return Err(ComponentError::LimitExceeded {
                    what,
                    step: t,
                    value: v,
                    limit,
                });
            }
        }
        Ok(())
    }

    /// The Ritiro Dedicato's year-end true-up of one meter: the energy sold within the limit
    /// earns whichever is higher, the minimum guaranteed price or its zonal value (0 without
    /// the floor).
    #[inline]
    fn floor_revenue_eur(&self, floor_kwh: f64, floor_zonal_eur: f64) -> f64 {
        match self.rid_floor {
            Some((min_eur_per_kwh, _)) => (floor_kwh * min_eur_per_kwh).max(floor_zonal_eur),
            None => 0.0,
        }
    }
}

/// The largest power a meter accepts under a capacity of `limit_kw` (rounding tolerance).
#[inline]
fn capacity_threshold_kw(limit_kw: f64) -> f64 {
    limit_kw * (1.0 + 1e-9) + 1e-12
}

/// The part of `sold_kwh` that still falls within the Ritiro Dedicato's minimum-price limit
/// of `limit_kwh` a year, when `floor_kwh` of the year is already counted.
#[inline]
fn within_floor_kwh(limit_kwh: f64, floor_kwh: f64, sold_kwh: f64) -> f64 {
    sold_kwh.min((limit_kwh - floor_kwh).max(0.0))
}

/// A year's grid bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridBill {
    /// Energy bought, kWh.
    pub purchase_kwh: f64,
    /// Energy sold, kWh.
    pub sale_kwh: f64,
    /// Energy charges, EUR.
    pub energy_cost_eur: f64,
    /// Sales revenue (with the Ritiro Dedicato true-up), EUR.
    pub sale_revenue_eur: f64,
    /// Demand charges, EUR.
    pub demand_charge_eur: f64,
    /// Peak purchase power of each month, kW.
    pub monthly_peak_purchase_kw: [f64; 12],
    /// `energy_cost + demand_charge − sale_revenue`, EUR (negative = net income).
    pub net_cost_eur: f64,
}

/// One step of a [`GridTariff`], checked and looked up once for every meter that records it
/// ([`GridMeter::record_at`]).
#[derive(Debug, Clone, Copy)]
pub struct TariffStep<'a> {
    tariff: &'a GridTariff,
    t: usize,
    purchase_eur_per_kwh: f64,
    sell_eur_per_kwh: f64,
    /// 0 for January.
    month: usize,
}

/// Accumulates a year of grid flows step by step, for the engine's loop.
#[derive(Debug, Clone)]
pub struct GridMeter<'a> {
    tariff: &'a GridTariff,
    purchase_kwh: f64,
    sale_kwh: f64,
    energy_cost_eur: f64,
    sale_zonal_eur: f64,
    /// Sales within the Ritiro Dedicato minimum-price limit: energy and zonal value.
    floor_kwh: f64,
    floor_zonal_eur: f64,
    monthly_peak_purchase_kw: [f64; 12],
}

impl<'a> GridMeter<'a> {
    /// An empty meter for one year of `tariff`.
    pub fn new(tariff: &'a GridTariff) -> Self {
        Self {
            tariff,
            purchase_kwh: 0.0,
            sale_kwh: 0.0,
            energy_cost_eur: 0.0,
            sale_zonal_eur: 0.0,
            floor_kwh: 0.0,
            floor_zonal_eur: 0.0,
            monthly_peak_purchase_kw: [0.0; 12],
        }
    }

    /// The tariff this meter records on.
    pub fn tariff(&self) -> &'a GridTariff {
        self.tariff
    }

    /// Records step `t`: `purchase_kw` bought and `sale_kw` sold (both >= 0, within the
    /// capacities; a small relative tolerance of 1e-9 absorbs rounding).
    pub fn record(
        &mut self,
        t: usize,
        purchase_kw: f64,
        sale_kw: f64,
    ) -> Result<(), ComponentError> {
        let at = self.tariff.step(t)?;
        self.record_at(&at, purchase_kw, sale_kw)
    }

    /// [`GridMeter::record`] at a step of this meter's tariff looked up once
    /// ([`GridTariff::step`]) for every meter on it: a city's members share one.
    #[inline]
    pub fn record_at(
        &mut self,
        at: &TariffStep<'_>,
        purchase_kw: f64,
        sale_kw: f64,
    ) -> Result<(), ComponentError> {
        let tariff = self.tariff;
        assert!(
            std::ptr::eq(tariff, at.tariff),
            "a meter records a step of its own tariff"
        );
        tariff.check_flows(at.t, purchase_kw, sale_kw)?;
        let dt = tariff.step_hours;
        let bought = purchase_kw * dt;
        let sold = sale_kw * dt;
        self.purchase_kwh += bought;
        self.sale_kwh += sold;
        self.energy_cost_eur += bought * at.purchase_eur_per_kwh;
        let price = at.sell_eur_per_kwh;
        match tariff.rid_floor {
            Some((_, limit_kwh)) => {
                let within = within_floor_kwh(limit_kwh, self.floor_kwh, sold);
                self.floor_kwh += within;
                self.floor_zonal_eur += within * price;
                self.sale_zonal_eur += (sold - within) * price;
            }
            None => self.sale_zonal_eur += sold * price,
        }
        let m = at.month;
        self.monthly_peak_purchase_kw[m] = self.monthly_peak_purchase_kw[m].max(purchase_kw);
        Ok(())
    }

    /// The year's bill.
    pub fn finish(&self) -> GridBill {
        let sale_revenue_eur = self.sale_zonal_eur
            + self
                .tariff
                .floor_revenue_eur(self.floor_kwh, self.floor_zonal_eur);
        let demand_charge_eur = self.monthly_peak_purchase_kw.iter().sum::<f64>()
            * self.tariff.demand_charge_eur_per_kw_month;
        GridBill {
            purchase_kwh: self.purchase_kwh,
            sale_kwh: self.sale_kwh,
            energy_cost_eur: self.energy_cost_eur,
            sale_revenue_eur,
            demand_charge_eur,
            monthly_peak_purchase_kw: self.monthly_peak_purchase_kw,
            net_cost_eur: self.energy_cost_eur + demand_charge_eur - sale_revenue_eur,
        }
    }
}

/// The summed bill of several meters on one tariff — a community's members — without each
/// member's bill: what the sizing search needs, fed one step at a time, and fast.
///
/// Exact reformulation of the sum of one [`GridMeter`] per member (same rules, only the order
/// of float additions differs): the purchase and sale prices of a step are common to every
/// member, so the energy charges and the sales beyond the Ritiro Dedicato limit are priced on
/// the summed flows; what does not add up across members is kept per member, and only when
/// the tariff has it — the Ritiro Dedicato floor (each meter's energy within its yearly limit
/// and the zonal value of it, trued up per meter at year end) and the demand charge (each
/// meter's monthly peaks). Every member's flows are checked as [`GridMeter::record`] checks
/// them (the same errors), with one branch per step when they are fine.
#[derive(Debug, Clone)]
pub struct MetersTotal<'a> {
    tariff: &'a GridTariff,
    purchase_kwh: f64,
    sale_kwh: f64,
    energy_cost_eur: f64,
    /// Sales priced at the step's sell-back price (beyond the floor's limit, or no floor).
    sale_zonal_eur: f64,
    /// Ritiro Dedicato, per member: energy within the limit and its zonal value (empty
    /// without the floor).
    floor_kwh: Vec<f64>,
    floor_zonal_eur: Vec<f64>,
    /// Per member monthly peak purchase, kW (empty without a demand charge).
    monthly_peak_purchase_kw: Vec<[f64; 12]>,
    max_purchase_kw: f64,
    max_sale_kw: f64,
    members: usize,
}

/// A year of pro-rata flows for [`MetersTotal::record_pro_rata_year`]: member `i`'s purchase
/// at step `t` is `members[i].deficit_kw()[t] * purchase_per_kw[t]`, its sale
/// `members[i].surplus_kw()[t] * sale_per_kw[t]` — what `YearAccounts::record_shares` hands
/// [`MetersTotal::record`] one step at a time.
#[derive(Debug, Clone, Copy)]
pub struct ProRataYear<'a> {
    pub members: &'a [&'a ResidualParts],
    /// Grid purchase per kW of deficit, every step.
    pub purchase_per_kw: &'a [f64],
    /// Grid sale per kW of surplus, every step.
    pub sale_per_kw: &'a [f64],
}

/// Relative margin kept below the Ritiro Dedicato limit before [`MetersTotal::record_pro_rata_year`]
/// takes the floor as never binding (it covers the float error of the year's sums, ~1e-12).
const FLOOR_MARGIN: f64 = 1e-9;

/// −0.0 is the neutral element of float addition, so sums started from it are those of
/// `Iterator::sum`.
const NEG_ZERO: f64 = -0.0;

impl<'a> MetersTotal<'a> {
    /// Empty meters for `members` members over one year of `tariff`.
    pub fn new(tariff: &'a GridTariff, members: usize) -> Self {
        let floor = if tariff.rid_floor.is_some() {
            members
        } else {
            0
        };
        let peaks = if tariff.demand_charge_eur_per_kw_month != 0.0 {
            members
        } else {
            0
        };
        Self {
            tariff,
            purchase_kwh: 0.0,
            sale_kwh: 0.0,
            energy_cost_eur: 0.0,
            sale_zonal_eur: 0.0,
            floor_kwh: vec![0.0; floor],
            floor_zonal_eur: vec![0.0; floor],
            monthly_peak_purchase_kw: vec![[0.0; 12]; peaks],
            max_purchase_kw: capacity_threshold_kw(tariff.max_purchase_kw),
            max_sale_kw: capacity_threshold_kw(tariff.max_sale_kw),
            members,
        }
    }

    /// Records step `t`: `flows` yields every member's `(purchase_kw, sale_kw)`, members in
    /// the same order at every step. Returns the summed `(purchase_kw, sale_kw)`.
    #[inline]
    pub fn record<I>(&mut self, t: usize, flows: I) -> Result<(f64, f64), ComponentError>
    where
        I: Iterator<Item = (f64, f64)> + Clone,
    {
        let tariff = self.tariff;
        tariff.check_step(t)?;
        let dt = tariff.step_hours;
        let price = tariff.sell_eur_per_kwh[t];
        let (mut purchase_kw, mut sale_kw) = (NEG_ZERO, NEG_ZERO);
        let (mut top_purchase_kw, mut top_sale_kw) = (0.0f64, 0.0f64);
        let mut non_negative = true;
        match tariff.rid_floor {
            Some((_, limit_kwh)) => {
                let mut beyond_kwh = NEG_ZERO;
                for (((p, s), floor), zonal) in flows
                    .clone()
                    .zip(&mut self.floor_kwh)
                    .zip(&mut self.floor_zonal_eur)
                {
                    purchase_kw += p;
                    sale_kw += s;
                    non_negative &= p >= 0.0 && s >= 0.0;
                    top_purchase_kw = top_purchase_kw.max(p);
                    top_sale_kw = top_sale_kw.max(s);
                    let sold = s * dt;
                    let within = within_floor_kwh(limit_kwh, *floor, sold);
                    *floor += within;
                    *zonal += within * price;
                    beyond_kwh += sold - within;
                }
                self.sale_zonal_eur += beyond_kwh * price;
            }
            None => {
                for (p, s) in flows.clone() {
                    purchase_kw += p;
                    sale_kw += s;
                    non_negative &= p >= 0.0 && s >= 0.0;
                    top_purchase_kw = top_purchase_kw.max(p);
                    top_sale_kw = top_sale_kw.max(s);
                }
                self.sale_zonal_eur += sale_kw * dt * price;
            }
        }
        // `f64::max` skips NaN, but a NaN also fails `>= 0`.
        let fine = non_negative
            && top_purchase_kw <= self.max_purchase_kw
            && top_sale_kw <= self.max_sale_kw
            && top_purchase_kw.is_finite()
            && top_sale_kw.is_finite();
        if !fine {
            // The member at fault, with GridMeter's error.
            for (p, s) in flows.clone() {
                tariff.check_flows(t, p, s)?;
            }
        }
        if !self.monthly_peak_purchase_kw.is_empty() {
            let m = usize::from(tariff.month[t] - 1);
            for ((p, _), peaks) in flows.zip(&mut self.monthly_peak_purchase_kw) {
                peaks[m] = peaks[m].max(p);
            }
        }
        let bought = purchase_kw * dt;
        self.purchase_kwh += bought;
        self.sale_kwh += sale_kw * dt;
        self.energy_cost_eur += bought * tariff.purchase_eur_per_kwh[t];
        Ok((purchase_kw, sale_kw))
    }

    /// Records steps `0..n` of pro-rata flows at once (`n` = the length of
    /// `year.purchase_per_kw`), with the same float operations in the same order as `n` calls
    /// of [`MetersTotal::record`] (bit for bit the same meter), member loops vectorised over the
    /// steps. `purchase_kw` and `sale_kw` (length `n`) receive the summed flows of every step.
    ///
    /// Returns `Ok(false)` and records nothing when the fast form cannot be exact or a check
    /// could fail — a step with a negative or non-finite factor or a summed flow beyond the
    /// connection's capacity, or a member whose sales could reach the Ritiro Dedicato limit
    /// within [`FLOOR_MARGIN`] (the floor would then bind) — so that the caller records the
    /// steps one by one (which reports the member at fault). The checks are on the sums: with
    /// every member's surplus and deficit >= 0 ([`ResidualParts`]) and factors >= 0, a member's
    /// flow is at most the summed one.
    pub fn record_pro_rata_year(
        &mut self,
        year: &ProRataYear<'_>,
        purchase_kw: &mut [f64],
        sale_kw: &mut [f64],
    ) -> Result<bool, ComponentError> {
        let tariff = self.tariff;
        let n = year.purchase_per_kw.len();
        check_len("sale_per_kw", year.sale_per_kw.len(), n)?;
        check_len("purchase_kw", purchase_kw.len(), n)?;
        check_len("sale_kw", sale_kw.len(), n)?;
        check_len("members", year.members.len(), self.members)?;
        for m in year.members {
            check_len("member residual steps", m.len(), n)?;
        }
        if n == 0 {
            return Ok(true);
        }
        tariff.check_step(n - 1)?;
        let (kp, ks) = (year.purchase_per_kw, year.sale_per_kw);
        purchase_kw.fill(NEG_ZERO);
        sale_kw.fill(NEG_ZERO);
        add_products(purchase_kw, year.members, ResidualParts::deficit_kw, kp);
        add_products(sale_kw, year.members, ResidualParts::surplus_kw, ks);
        // Every check of every step with `&`, not `&&`: no branch per step, so the pass
        // vectorises (a false anywhere is the same false).
        let mut fine = true;
        for (((p_kw, s_kw), p_per_kw), s_per_kw) in
            purchase_kw.iter().zip(sale_kw.iter()).zip(kp).zip(ks)
        {
            // `!(x >= 0)` also catches NaN.
            fine &= (*p_per_kw >= 0.0)
                & (*s_per_kw >= 0.0)
                & (*p_kw <= self.max_purchase_kw)
                & (*s_kw <= self.max_sale_kw)
                & p_kw.is_finite()
                & s_kw.is_finite();
        }
        if !fine {
            return Ok(false);
        }
        let top_sale_per_kw = largest(ks);
        let dt = tariff.step_hours;
        if let Some((_, limit_kwh)) = tariff.rid_floor {
            // A member's year of sales is at most its surplus times the largest factor.
            let binds = year.members.iter().zip(&self.floor_kwh).any(|(m, floor)| {
                (floor + m.surplus_total_kw() * dt * top_sale_per_kw) * (1.0 + FLOOR_MARGIN)
                    > limit_kwh * (1.0 - FLOOR_MARGIN)
            });
            if binds {
                return Ok(false);
            }
            // Never binding: every step's energy within the limit is all it sold, and nothing
            // is beyond (what `record` adds to `sale_zonal_eur` is 0). Members four at a time,
            // so that their sums stay in registers (each member's sums in step order).
            let floors = self
                .floor_kwh
                .chunks_mut(4)
                .zip(self.floor_zonal_eur.chunks_mut(4));
            for (members, (floor, zonal)) in year.members.chunks(4).zip(floors) {
                let sales = FloorSales {
                    sale_per_kw: ks,
                    price_eur_per_kwh: &tariff.sell_eur_per_kwh[..n],
                    dt_h: dt,
                };
                match members {
                    [a, b, c, d] => sales.add::<4>([a, b, c, d], floor, zonal),
                    [a, b, c] => sales.add::<3>([a, b, c], floor, zonal),
                    [a, b] => sales.add::<2>([a, b], floor, zonal),
                    [a] => sales.add::<1>([a], floor, zonal),
                    _ => {}
                }
            }
        } else {
            for (s, price) in sale_kw.iter().zip(&tariff.sell_eur_per_kwh) {
                self.sale_zonal_eur += s * dt * price;
            }
        }
        if !self.monthly_peak_purchase_kw.is_empty() {
            for (m, peaks) in year.members.iter().zip(&mut self.monthly_peak_purchase_kw) {
                for ((d, k), month) in m.deficit_kw().iter().zip(kp).zip(&tariff.month) {
                    let i = usize::from(month - 1);
                    peaks[i] = peaks[i].max(d * k);
                }
            }
        }
        for ((p, s), price) in purchase_kw
            .iter()
            .zip(sale_kw.iter())
            .zip(&tariff.purchase_eur_per_kwh)
        {
            let bought = p * dt;
            self.purchase_kwh += bought;
            self.sale_kwh += s * dt;
            self.energy_cost_eur += bought * price;
        }
        Ok(true)
    }

    /// Energy bought and sold so far, kWh (summed from 0 in step order).
    pub(crate) fn energy_kwh(&self) -> (f64, f64) {
        (self.purchase_kwh, self.sale_kwh)
    }

    /// The members' bills summed: energy bought and sold, kWh, and the net cost, EUR.
    pub fn finish(&self) -> MetersTotalBill {
        let floor_revenue_eur: f64 = self
            .floor_kwh
            .iter()
            .zip(&self.floor_zonal_eur)
            .map(|(kwh, eur)| self.tariff.floor_revenue_eur(*kwh, *eur))
            .sum();
        let sale_revenue_eur = self.sale_zonal_eur + floor_revenue_eur;
        let demand_charge_eur = self
            .monthly_peak_purchase_kw
            .iter()
            .map(|p| p.iter().sum::<f64>() * self.tariff.demand_charge_eur_per_kw_month)
            .sum::<f64>();
        MetersTotalBill {
            purchase_kwh: self.purchase_kwh,
            sale_kwh: self.sale_kwh,
            energy_cost_eur: self.energy_cost_eur,
            sale_revenue_eur,
            demand_charge_eur,
            net_cost_eur: self.energy_cost_eur + demand_charge_eur - sale_revenue_eur,
        }
    }
}

/// The largest of `values`, all finite and >= 0 (0 when empty): four running maxima, so that
/// the pass is not one chain of dependent comparisons (the maximum of a set does not depend
/// on the order it is taken in).
fn largest(values: &[f64]) -> f64 {
    let mut top = [0.0f64; 4];
    let fours = values.chunks_exact(4);
    let rest = fours.remainder();
    for four in fours {
        for (t, v) in top.iter_mut().zip(four) {
            *t = t.max(*v);
        }
    }
    rest.iter().chain(&top).fold(0.0, |a, v| a.max(*v))
}

/// `sums[t] += series(m)[t] · factor[t]` for every member `m` in order (each step's sum in
/// member order, as [`MetersTotal::record`] sums a step): members four at a time, so that a
/// pass over the steps reads four members' series and writes the sums once.
fn add_products(
    sums: &mut [f64],
    members: &[&ResidualParts],
    series: fn(&ResidualParts) -> &[f64],
    factor: &[f64],
) {
    for four in members.chunks(4) {
        match four {
            [a, b, c, d] => {
                add_products_k(sums, [series(a), series(b), series(c), series(d)], factor)
            }
            [a, b, c] => add_products_k(sums, [series(a), series(b), series(c)], factor),
            [a, b] => add_products_k(sums, [series(a), series(b)], factor),
            [a] => add_products_k(sums, [series(a)], factor),
            _ => {}
        }
    }
}

/// [`add_products`] of `K` members.
#[inline]
fn add_products_k<const K: usize>(sums: &mut [f64], series: [&[f64]; K], factor: &[f64]) {
    // Every slice exactly `n` long, so the loop has no bounds checks (and vectorises).
    let n = sums.len().min(factor.len());
    let n = series.iter().fold(n, |n, s| n.min(s.len()));
    let (sums, factor) = (&mut sums[..n], &factor[..n]);
    let series = series.map(|s| &s[..n]);
    for t in 0..n {
        let k = factor[t];
        let mut sum = sums[t];
        for s in &series {
            sum += s[t] * k;
        }
        sums[t] = sum;
    }
}

/// The Ritiro Dedicato sums of members whose floor never binds, over a year of pro-rata
/// sales ([`MetersTotal::record_pro_rata_year`]).
struct FloorSales<'a> {
    sale_per_kw: &'a [f64],
    price_eur_per_kwh: &'a [f64],
    dt_h: f64,
}

impl FloorSales<'_> {
    /// Adds the year's sales of `K` members to their floor energy and zonal value, as
    /// [`MetersTotal::record`] does step by step (`sold = surplus · factor · dt`).
    #[inline]
    fn add<const K: usize>(
        &self,
        members: [&&ResidualParts; K],
        floor_kwh: &mut [f64],
        floor_zonal_eur: &mut [f64],
    ) {
        let n = self.sale_per_kw.len().min(self.price_eur_per_kwh.len());
        // `record_pro_rata_year` checked every member has `n` steps.
        let surplus: [&[f64]; K] = members.map(|m| &m.surplus_kw()[..n]);
        let mut kwh = [0.0; K];
        let mut eur = [0.0; K];
        kwh.copy_from_slice(&floor_kwh[..K]);
        eur.copy_from_slice(&floor_zonal_eur[..K]);
        let factors = self.sale_per_kw.iter().zip(self.price_eur_per_kwh);
        for (t, (&k, &price)) in factors.enumerate().take(n) {
            for j in 0..K {
                let sold = (surplus[j][t] * k) * self.dt_h;
                kwh[j] += sold;
                eur[j] += sold * price;
            }
        }
        floor_kwh[..K].copy_from_slice(&kwh);
        floor_zonal_eur[..K].copy_from_slice(&eur);
    }
}

/// The summed bill of [`MetersTotal`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetersTotalBill {
    pub purchase_kwh: f64,
    pub sale_kwh: f64,
    pub energy_cost_eur: f64,
    /// Sales revenue, every member's Ritiro Dedicato true-up included, EUR.
    pub sale_revenue_eur: f64,
    pub demand_charge_eur: f64,
    /// `energy_cost + demand_charge − sale_revenue`, EUR.
    pub net_cost_eur: f64,
}

#[cfg(test)]
mod tests {
    use super::largest;
    use proptest::prelude::*;

    proptest! {
        /// Four running maxima give the maximum one running maximum gives.
        #[test]
        fn largest_is_the_maximum(values in proptest::collection::vec(0.0f64..1e6, 0..40)) {
            let one = values.iter().fold(0.0f64, |a, v| a.max(*v));
            prop_assert_eq!(largest(&values).to_bits(), one.to_bits());
        }
    }
}
