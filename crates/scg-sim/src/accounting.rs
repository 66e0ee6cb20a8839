//! One year's money, fed one interval at a time: the grid bills (every member's meter and the
//! community's), the CER incentive hour by hour, P2P money (the internal price, or what the
//! market settled) and, at the end, HOMER's net present cost, annualized cost, COE and
//! renewable fraction. `scg simulate` ([`crate::engine`]) and every configuration of the
//! sizing search ([`crate::optimize`]) account through this one type, so each rule has one
//! implementation: the bill is [`GridMeter`], the CER is [`CerYear`], the NPC is
//! [`system_npc`], the COE and renewable fraction are [`EnergyTotals`].
//!
//! Two levels of detail ([`Detail`]):
//! - [`Detail::Members`]: every member's bill, CER allocation and NPC, and the community's own
//!   meter (what `simulate` reports);
//! - [`Detail::Totals`]: only the community's totals (what a search configuration needs). The
//!   same rules are applied to sums where they are additive: the members' grid bills are
//!   summed by [`MetersTotal`] (prices of a step are common to every member, so it prices the
//!   summed flows and keeps per member only the Ritiro Dedicato floor and the demand charge's
//!   peaks, when the tariff has them); the CER rule runs on the
//!   community's hourly injection and withdrawal (every member has the community's plant size
//!   class in scg-sim, so GSE's order pays the same); the NPC is the sum of the members'
//!   component NPCs plus [`system_npc`] of the summed yearly costs (it is linear in them).
//!   The tests check both levels give the same community NPC.
//!
//! Never does I/O.

use crate::ComponentError;
use crate::cer::{CerHours, CerParams, CerResult, CerYear};
use crate::dispatch::{Allocation, CommunityShares, ResidualParts, StepContext, StepFlows};
use crate::economics::{ComponentCosts, EconomicParams, EnergyTotals, system_npc};
use crate::grid::{GridBill, GridMeter, GridTariff, MetersTotal, ProRataYear};
use crate::year::EnergySums;
use serde::Serialize;

/// Money of one prosumer (or the community), per year and over the project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Economics {
    pub grid_bill: GridBill,
    pub p2p_cost_eur_per_year: f64,
    pub p2p_revenue_eur_per_year: f64,
    /// CER incentive + valorisation allocated to it, EUR/year.
    pub cer_incentive_eur: f64,
    pub initial_capital_eur: f64,
    /// Net present cost, EUR: components, grid bill, P2P money, CER, and V2G battery wear.
    pub npc_eur: f64,
    pub annualized_cost_eur: f64,
    /// Annualized cost per kWh served (HOMER: load served + sales; for a member the sales
    /// include its P2P exports). `None` when nothing is served.
    pub coe_eur_per_kwh: Option<f64>,
    /// 1 − grid purchases ÷ energy served (HOMER, the same served energy as the COE); P2P
    /// energy counts as renewable.
    pub renewable_fraction: Option<f64>,
}

/// The metered part of a prosumer's interval: what crosses its meter, kW.
pub trait MeteredFlows {
    fn grid_import_kw(&self) -> f64;
    fn grid_export_kw(&self) -> f64;
    fn p2p_import_kw(&self) -> f64;
    fn p2p_export_kw(&self) -> f64;
    fn unmet_kw(&self) -> f64;
    fn excess_kw(&self) -> f64;
}

macro_rules! metered {
    ($t:ty) => {
        impl MeteredFlows for $t {
            #[inline]
            fn grid_import_kw(&self) -> f64 {
                self.grid_import_kw
            }
            #[inline]
            fn grid_export_kw(&self) -> f64 {
                self.grid_export_kw
            }
            #[inline]
            fn p2p_import_kw(&self) -> f64 {
                self.p2p_import_kw
            }
            #[inline]
            fn p2p_export_kw(&self) -> f64 {
                self.p2p_export_kw
            }
            #[inline]
            fn unmet_kw(&self) -> f64 {
                self.unmet_kw
            }
            #[inline]
            fn excess_kw(&self) -> f64 {
                self.excess_kw
            }
        }
    };
}
metered!(StepFlows);
metered!(Allocation);

/// How much the accounts keep (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Members,
    Totals,
}

/// The CER rule and its hourly zonal prices.
#[derive(Debug, Clone, Copy)]
pub struct CerSetup<'a> {
    /// Whether the community is a CER (without, nobody shares and the incentive is 0).
    pub enabled: bool,
    pub params: CerParams,
    pub zonal_hourly_eur_per_mwh: &'a [f64],
}

/// What the accounts need before the first interval.
#[derive(Debug, Clone, Copy)]
pub struct AccountsSetup<'a> {
    pub tariff: &'a GridTariff,
    pub steps_per_hour: usize,
    pub members: usize,
    pub cer: CerSetup<'a>,
    pub detail: Detail,
}

/// The community's summed flows over the year, kWh (kept at [`Detail::Totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowTotals {
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub p2p_import_kwh: f64,
    pub p2p_export_kwh: f64,
    pub unmet_kwh: f64,
    pub excess_kwh: f64,
}

/// The year's accounts (module docs).
#[derive(Debug, Clone)]
pub struct YearAccounts<'a> {
    tariff: &'a GridTariff,
    detail: Detail,
    dt_h: f64,
    steps_per_hour: usize,
    /// One per member (members' detail).
    meters: Vec<GridMeter<'a>>,
    /// The community's own meter on the summed flows (members' detail).
    community_meter: Option<GridMeter<'a>>,
    /// The members' bills summed (totals level).
    total_meter: Option<MetersTotal<'a>>,
    cer: Option<CerYear<'a>>,
    hour_injected_kwh: Vec<f64>,
    hour_withdrawn_kwh: Vec<f64>,
    step_in_hour: usize,
    /// Steps recorded so far.
    steps_recorded: usize,
    totals: FlowTotals,
}

/// −0.0 is the neutral element of float addition (x + −0.0 = x for every x, −0.0 included),
/// so sums started from it are those of `Iterator::sum`.
const ZERO: f64 = -0.0;

impl<'a> YearAccounts<'a> {
    /// Empty accounts for a year.
    pub fn new(setup: &AccountsSetup<'a>) -> Result<Self, ComponentError> {
        let n = setup.members;
        let members_detail = setup.detail == Detail::Members;
        // At the totals level the CER rule sees the community as one meter; without a CER
        // nobody shares (members' detail still reports the year's zero hours).
        let c = &setup.cer;
        let cer_members = match (setup.detail, c.enabled) {
            (Detail::Members, true) => n,
            (Detail::Members, false) => 0,
            (Detail::Totals, _) => 1,
        };
        let cer = if c.enabled || setup.detail == Detail::Members {
            Some(CerYear::new(
                &c.params,
                c.zonal_hourly_eur_per_mwh,
                &vec![None; cer_members],
                setup.detail == Detail::Members,
            )?)
        } else {
            None
        };
        if setup.steps_per_hour == 0 {
            return Err(ComponentError::parameter("steps_per_hour", "must be > 0"));
        }
        Ok(Self {
            tariff: setup.tariff,
            detail: setup.detail,
            dt_h: setup.tariff.step_hours(),
            steps_per_hour: setup.steps_per_hour,
            meters: if members_detail {
                (0..n).map(|_| GridMeter::new(setup.tariff)).collect()
            } else {
                Vec::new()
            },
            community_meter: members_detail.then(|| GridMeter::new(setup.tariff)),
            total_meter: (!members_detail).then(|| MetersTotal::new(setup.tariff, n)),
            hour_injected_kwh: vec![ZERO; cer_members],
            hour_withdrawn_kwh: vec![ZERO; cer_members],
            cer,
            step_in_hour: 0,
            steps_recorded: 0,
            totals: FlowTotals::default(),
        })
    }

    /// Account for interval `step`: `flows[i]` is member `i`'s.
    #[inline]
    pub fn record<F: MeteredFlows>(
        &mut self,
        step: usize,
        flows: &[F],
    ) -> Result<(), ComponentError> {
        match self.detail {
            Detail::Members => self.record_members(step, flows)?,
            Detail::Totals => self.record_totals(step, flows)?,
        }
        self.close_step()
    }

    /// Account for interval `step` of pro-rata sharing at the totals level, from the step's
    /// split and the members' residuals: the sums over the members of what
    /// [`CommunityShares::allocate`] gives each, without allocating each (what the search
    /// screens every configuration with). Each member's grid purchase and sale (its meter:
    /// the Ritiro Dedicato floor, demand-charge peaks, checks) is its residual times the
    /// step's grid power per kW of deficit or surplus; the P2P, excess and unmet totals are
    /// the split's own. Equal to [`YearAccounts::record`] of the allocations up to the order
    /// of float operations (the tests check the search against the full year loop).
    #[inline]
    pub fn record_shares(
        &mut self,
        step: usize,
        residual_kw: &[f64],
        shares: &CommunityShares,
    ) -> Result<(), ComponentError> {
        if self.detail != Detail::Totals {
            return Err(ComponentError::parameter(
                "detail",
                "record_shares accounts at the totals level only",
            ));
        }
        let dt = self.dt_h;
        let sold_kw = shares.first_to_grid_kw + shares.to_grid_kw;
        let per_kw = |grid_kw: f64, of_kw: f64| if of_kw > 0.0 { grid_kw / of_kw } else { 0.0 };
        let sale_per_kw = per_kw(sold_kw, shares.surplus_kw);
        let purchase_per_kw = per_kw(shares.from_grid_kw, shares.deficit_kw);
        let (imp, exp) = match &mut self.total_meter {
            Some(m) => m.record(
                step,
                residual_kw
                    .iter()
                    .map(|r| ((-r).max(0.0) * purchase_per_kw, r.max(0.0) * sale_per_kw)),
            )?,
            None => (ZERO, ZERO),
        };
        let shared = shares.shared_kw;
        let t = &mut self.totals;
        t.grid_import_kwh += imp * dt;
        t.grid_export_kwh += exp * dt;
        t.p2p_import_kwh += shared * dt;
        t.p2p_export_kwh += shared * dt;
        t.unmet_kwh += (shares.deficit_kw - shared - shares.from_grid_kw).max(0.0) * dt;
        t.excess_kwh += (shares.surplus_kw - sold_kw - shared).max(0.0) * dt;
        self.hour_injected_kwh[0] += (exp + shared) * dt;
        self.hour_withdrawn_kwh[0] += (imp + shared) * dt;
        self.close_step()
    }

    /// [`YearAccounts::record_shares`] for every step of a year at once (the sizing search's
    /// screening): the members' residuals as [`ResidualParts`], the community's conditions of
    /// each step from `year`. The same float operations in the same order as one
    /// `record_shares` per step (so the same accounts, bit for bit), arranged as passes over
    /// the year — the members' sums vectorised over the steps, the per-member parts of the
    /// bill in [`MetersTotal::record_pro_rata_year`] — with `scratch` reused, nothing allocated.
    ///
    /// Returns `Ok(false)` and records nothing when the meter cannot take the year at once
    /// (see [`MetersTotal::record_pro_rata_year`]); the caller then records the steps with
    /// `record_shares`. Must start on a fresh year (no step recorded).
    pub fn record_pro_rata_year(
        &mut self,
        year: &ShareYear<'_>,
        scratch: &mut ShareScratch,
    ) -> Result<bool, ComponentError> {
        if self.detail != Detail::Totals || self.steps_recorded != 0 {
            return Err(ComponentError::parameter(
                "detail",
                "record_pro_rata_year accounts a fresh year at the totals level only",
            ));
        }
        let Some(meter) = &mut self.total_meter else {
            return Ok(false);
        };
        let n = year.steps;
        scratch.resize(n);
        let ShareScratch {
            surplus_kw,
            deficit_kw,
            purchase_per_kw,
            sale_per_kw,
            shared_kw,
            purchase_kw,
            sale_kw,
            hour_injected_kwh,
            hour_withdrawn_kwh,
            cer_hours,
            peak,
        } = scratch;
        // The first members' sums when the caller has them (the same fold from −0.0 in
        // member order, so the same values), else from −0.0.
        let rest = match year.prefix {
            // The prefix plus the next member in one pass (the same `prefix + r` as copying
            // the prefix and adding), when there is a next member.
            Some(p)
                if p.surplus_kw.len() == n
                    && p.is_prefix_of(year.members)
                    && p.members.len() < year.members.len() =>
            {
                let next = year.members[p.members.len()];
                crate::component_error::check_len("member residual steps", next.len(), n)?;
                let sums = surplus_kw.iter_mut().zip(&p.surplus_kw);
                for ((s, ps), r) in sums.zip(next.surplus_kw()) {
                    *s = ps + r;
                }
                let sums = deficit_kw.iter_mut().zip(&p.deficit_kw);
                for ((d, pd), r) in sums.zip(next.deficit_kw()) {
                    *d = pd + r;
                }
                &year.members[p.members.len() + 1..]
            }
            Some(p) if p.surplus_kw.len() == n && p.is_prefix_of(year.members) => {
                surplus_kw.copy_from_slice(&p.surplus_kw);
                deficit_kw.copy_from_slice(&p.deficit_kw);
                &year.members[p.members.len()..]
            }
            _ => {
                surplus_kw.fill(ZERO);
                deficit_kw.fill(ZERO);
                year.members
            }
        };
        for m in rest {
            crate::component_error::check_len("member residual steps", m.len(), n)?;
            for (s, r) in surplus_kw.iter_mut().zip(m.surplus_kw()) {
                *s += r;
            }
            for (d, r) in deficit_kw.iter_mut().zip(m.deficit_kw()) {
                *d += r;
            }
        }
        // The split of every step, as `record_shares` derives it from `ProRata::shares`, in
        // two passes: every step's split (no sum across steps, so the compiler vectorises it
        // and its divisions), then the year's sums in step order. The step's unmet and excess
        // power replace its (no longer needed) deficit and surplus.
        let dt = self.dt_h;
        let peaks: &[bool] = match year.grid_at_peak.get(..n) {
            Some(p) => p,
            None => {
                // Steps beyond the signal are not at peak.
                peak.clear();
                peak.extend_from_slice(year.grid_at_peak);
                peak.resize(n, false);
                peak
            }
        };
        let per_kw = |grid_kw: f64, of_kw: f64| if of_kw > 0.0 { grid_kw / of_kw } else { 0.0 };
        // Every slice exactly `n` long, so the loop has no bounds checks (and vectorises).
        let (excess_kw, unmet_kw) = (&mut surplus_kw[..n], &mut deficit_kw[..n]);
        let (sale_per_kw, purchase_per_kw) = (&mut sale_per_kw[..n], &mut purchase_per_kw[..n]);
        let shared_kw = &mut shared_kw[..n];
        let peaks = &peaks[..n];
        for t in 0..n {
            let ctx = StepContext {
                dt_h: dt,
                grid_at_peak: peaks[t],
                max_purchase_kw: year.max_purchase_kw,
                max_sale_kw: year.max_sale_kw,
            };
            let shares = CommunityShares::new(excess_kw[t], unmet_kw[t], &ctx);
            let sold_kw = shares.first_to_grid_kw + shares.to_grid_kw;
            sale_per_kw[t] = per_kw(sold_kw, shares.surplus_kw);
            purchase_per_kw[t] = per_kw(shares.from_grid_kw, shares.deficit_kw);
            let shared = shares.shared_kw;
            shared_kw[t] = shared;
            unmet_kw[t] = (shares.deficit_kw - shared - shares.from_grid_kw).max(0.0);
            excess_kw[t] = (shares.surplus_kw - sold_kw - shared).max(0.0);
        }
        let mut t_acc = FlowTotals::default();
        for ((shared, unmet), excess) in shared_kw.iter().zip(unmet_kw.iter()).zip(excess_kw.iter())
        {
            t_acc.p2p_import_kwh += shared * dt;
            t_acc.p2p_export_kwh += shared * dt;
            t_acc.unmet_kwh += unmet * dt;
            t_acc.excess_kwh += excess * dt;
        }
        let recorded = meter.record_pro_rata_year(
            &ProRataYear {
                members: year.members,
                purchase_per_kw,
                sale_per_kw,
            },
            purchase_kw,
            sale_kw,
        )?;
        if !recorded {
            return Ok(false);
        }
        // `record_shares` adds `imp * dt` and `exp * dt` from 0 every step: the sums the
        // meter of a fresh year keeps (`bought = purchase · dt`, `sale · dt`, step order).
        (t_acc.grid_import_kwh, t_acc.grid_export_kwh) = meter.energy_kwh();
        self.totals = t_acc;
        // The CER's hours, as `close_step` closes them (each hour's sums start from −0.0).
        let per_hour = self.steps_per_hour;
        let hours = n / per_hour;
        if let Some(cer) = &mut self.cer {
            hour_injected_kwh.resize(hours, 0.0);
            hour_withdrawn_kwh.resize(hours, 0.0);
            if per_hour == 1 {
                // One step an hour: each hour's sum is −0.0 + its step's, which is its step's
                // (−0.0 is neutral), in one pass without a sum across hours.
                let steps = sale_kw.iter().zip(purchase_kw.iter()).zip(shared_kw.iter());
                let hour_sums = hour_injected_kwh
                    .iter_mut()
                    .zip(hour_withdrawn_kwh.iter_mut());
                for ((injected, withdrawn), ((sale, purchase), shared)) in hour_sums.zip(steps) {
                    *injected = (sale + shared) * dt;
                    *withdrawn = (purchase + shared) * dt;
                }
            } else {
                for (h, (injected, withdrawn)) in hour_injected_kwh
                    .iter_mut()
                    .zip(hour_withdrawn_kwh.iter_mut())
                    .enumerate()
                {
                    (*injected, *withdrawn) = (ZERO, ZERO);
                    for t in h * per_hour..(h + 1) * per_hour {
                        *injected += (sale_kw[t] + shared_kw[t]) * dt;
                        *withdrawn += (purchase_kw[t] + shared_kw[t]) * dt;
                    }
                }
            }
            cer.add_hours_one(hour_injected_kwh, hour_withdrawn_kwh, cer_hours)?;
        }
        // A last partial hour stays open, as step by step.
        for t in hours * per_hour..n {
            self.hour_injected_kwh[0] += (sale_kw[t] + shared_kw[t]) * dt;
            self.hour_withdrawn_kwh[0] += (purchase_kw[t] + shared_kw[t]) * dt;
        }
        self.step_in_hour = n - hours * per_hour;
        self.steps_recorded = n;
        Ok(true)
    }

    /// After a step: close the hour when it is complete (the CER rule is hourly).
    #[inline]
    fn close_step(&mut self) -> Result<(), ComponentError> {
        self.steps_recorded += 1;
        self.step_in_hour += 1;
        if self.step_in_hour == self.steps_per_hour {
            self.step_in_hour = 0;
            if let Some(cer) = &mut self.cer {
                match self.detail {
                    Detail::Members => {
                        cer.add_hour(&self.hour_injected_kwh, &self.hour_withdrawn_kwh)?;
                    }
                    Detail::Totals => {
                        cer.add_hour_one(self.hour_injected_kwh[0], self.hour_withdrawn_kwh[0])?;
                    }
                }
            }
            self.hour_injected_kwh.fill(ZERO);
            self.hour_withdrawn_kwh.fill(ZERO);
        }
        Ok(())
    }

    fn record_members<F: MeteredFlows>(
        &mut self,
        step: usize,
        flows: &[F],
    ) -> Result<(), ComponentError> {
        let dt = self.dt_h;
        if let Some(first) = self.meters.first() {
            // Every member's meter is on the community's tariff: its step looked up once.
            let at = first.tariff().step(step)?;
            for (m, f) in self.meters.iter_mut().zip(flows) {
                m.record_at(&at, f.grid_import_kw(), f.grid_export_kw())?;
            }
        }
        let (mut imp, mut exp) = (ZERO, ZERO);
        for f in flows {
            imp += f.grid_import_kw();
            exp += f.grid_export_kw();
        }
        if let Some(m) = &mut self.community_meter {
            m.record(step, imp, exp)?;
        }
        if self.cer.is_some() {
            // CER: each member's injection and withdrawal at its own meter (P2P crosses the
            // public grid).
            for ((i, w), f) in self
                .hour_injected_kwh
                .iter_mut()
                .zip(&mut self.hour_withdrawn_kwh)
                .zip(flows)
            {
                *i += (f.grid_export_kw() + f.p2p_export_kw()) * dt;
                *w += (f.grid_import_kw() + f.p2p_import_kw()) * dt;
            }
        }
        Ok(())
    }

    #[inline]
    fn record_totals<F: MeteredFlows>(
        &mut self,
        step: usize,
        flows: &[F],
    ) -> Result<(), ComponentError> {
        let dt = self.dt_h;
        let (imp, exp) = match &mut self.total_meter {
            Some(m) => m.record(
                step,
                flows
                    .iter()
                    .map(|f| (f.grid_import_kw(), f.grid_export_kw())),
            )?,
            None => (ZERO, ZERO),
        };
        let (mut p2p_in, mut p2p_out, mut unmet, mut excess) = (ZERO, ZERO, ZERO, ZERO);
        for f in flows {
            p2p_in += f.p2p_import_kw();
            p2p_out += f.p2p_export_kw();
            unmet += f.unmet_kw();
            excess += f.excess_kw();
        }
        let t = &mut self.totals;
        t.grid_import_kwh += imp * dt;
        t.grid_export_kwh += exp * dt;
        t.p2p_import_kwh += p2p_in * dt;
        t.p2p_export_kwh += p2p_out * dt;
        t.unmet_kwh += unmet * dt;
        t.excess_kwh += excess * dt;
        self.hour_injected_kwh[0] += (exp + p2p_out) * dt;
        self.hour_withdrawn_kwh[0] += (imp + p2p_in) * dt;
        Ok(())
    }

    /// The community's summed flows so far ([`Detail::Totals`]; zeros at members' detail).
    pub fn totals(&self) -> FlowTotals {
        self.totals
    }

    fn cer_result(self_cer: Option<CerYear<'a>>, members: usize) -> CerResult {
        match self_cer {
            Some(c) => c.finish(),
            // Without a CER nobody shares: zeros for every member.
            None => CerResult {
                hourly_shared_kwh: Vec::new(),
                shared_energy_kwh: 0.0,
                incentive_eur: 0.0,
                valorisation_eur: 0.0,
                total_eur: 0.0,
                members: vec![Default::default(); members],
            },
        }
    }

    fn check_whole_hours(&self) -> Result<(), ComponentError> {
        if self.step_in_hour != 0 {
            return Err(ComponentError::parameter(
                "steps_per_hour",
                format!(
                    "the year ends {} steps into an hour of {} steps",
                    self.step_in_hour, self.steps_per_hour
                ),
            ));
        }
        Ok(())
    }

    /// Close the year at members' detail: every member's economics, the community's, and
    /// the CER's year.
    pub fn finish_members(self, closing: &MembersClosing<'_>) -> Result<YearMoney, ComponentError> {
        self.check_whole_hours()?;
        let n = closing.members.len();
        let cer = Self::cer_result(self.cer, n);
        let community_meter = self.community_meter;
        let mut members = Vec::with_capacity(n);
        for (i, (m, meter)) in closing.members.iter().zip(&self.meters).enumerate() {
            let grid_bill = meter.finish();
            let (p2p_cost, p2p_revenue) = match closing.market {
                Some(mk) => (mk.paid_eur[i], mk.received_eur[i]),
                None => (
                    m.energy.p2p_import_kwh * closing.internal_eur_per_kwh,
                    m.energy.p2p_export_kwh * closing.internal_eur_per_kwh,
                ),
            };
            let cer_eur = cer.members.get(i).map_or(0.0, |c| c.allocated_eur);
            let refs: Vec<(&str, ComponentCosts)> =
                m.components.iter().map(|(n, c)| (n.as_str(), *c)).collect();
            let npc = system_npc(
                &closing.economics,
                &refs,
                grid_bill.net_cost_eur,
                // V2G wears the vehicles' batteries: a yearly cost like P2P money (HOMER's
                // "other O&M"), so V2G must pay for itself in the NPC.
                p2p_cost - p2p_revenue - cer_eur * closing.cer_npc_factor + m.ev_wear_eur,
            )?;
            let totals = energy_totals(&m.energy, SalesCounted::GridAndP2p);
            members.push(Economics {
                grid_bill,
                p2p_cost_eur_per_year: p2p_cost,
                p2p_revenue_eur_per_year: p2p_revenue,
                cer_incentive_eur: cer_eur,
                initial_capital_eur: m.components.iter().map(|(_, c)| c.capital_eur).sum(),
                npc_eur: npc.total_npc_eur,
                annualized_cost_eur: npc.annualized_cost_eur,
                coe_eur_per_kwh: totals.cost_of_energy_eur_per_kwh(npc.annualized_cost_eur),
                renewable_fraction: totals.renewable_fraction(),
            });
        }
        let sum = |f: fn(&Economics) -> f64| members.iter().map(f).sum::<f64>();
        let annualized = sum(|e| e.annualized_cost_eur);
        let totals = energy_totals(&closing.community_energy, SalesCounted::GridOnly);
        let community_bill = community_meter
            .unwrap_or_else(|| GridMeter::new(self.tariff))
            .finish();
        let community = Economics {
            grid_bill: community_bill,
            p2p_cost_eur_per_year: sum(|e| e.p2p_cost_eur_per_year),
            p2p_revenue_eur_per_year: sum(|e| e.p2p_revenue_eur_per_year),
            cer_incentive_eur: cer.total_eur,
            initial_capital_eur: sum(|e| e.initial_capital_eur),
            npc_eur: sum(|e| e.npc_eur),
            annualized_cost_eur: annualized,
            coe_eur_per_kwh: totals.cost_of_energy_eur_per_kwh(annualized),
            renewable_fraction: totals.renewable_fraction(),
        };
        Ok(YearMoney {
            members,
            community,
            cer,
        })
    }

    /// Close the year at the totals level: the community's NPC and what ranks it.
    pub fn finish_totals(self, closing: &TotalsClosing) -> Result<CommunityMoney, ComponentError> {
        self.check_whole_hours()?;
        let grid_net_eur = self
            .total_meter
            .as_ref()
            .map_or(0.0, |m| m.finish().net_cost_eur);
        let cer_eur = self.cer.as_ref().map_or(0.0, CerYear::total_eur);
        let cer_shared_kwh = match self.cer {
            Some(c) => c.finish().shared_energy_kwh,
            None => 0.0,
        };
        let t = self.totals;
        let (p2p_cost, p2p_revenue) = closing.market_eur.unwrap_or((
            t.p2p_import_kwh * closing.internal_eur_per_kwh,
            t.p2p_export_kwh * closing.internal_eur_per_kwh,
        ));
        // The NPC is linear in the yearly costs: the members' component NPCs plus the NPC of
        // the summed yearly costs equal the sum of the members' NPCs.
        let yearly = system_npc(
            &closing.economics,
            &[],
            grid_net_eur,
            p2p_cost - p2p_revenue - cer_eur * closing.cer_npc_factor + closing.ev_wear_eur,
        )?;
        let npc_eur = closing.components_npc_eur + yearly.total_npc_eur;
        let annualized_cost_eur = npc_eur
            * crate::economics::capital_recovery_factor(
                closing.economics.real_discount_rate,
                closing.economics.project_lifetime_years,
            );
        let energy = EnergySums {
            load_kwh: closing.load_kwh,
            pv_kwh: closing.pv_kwh,
            wind_kwh: closing.wind_kwh,
            p2p_import_kwh: t.p2p_import_kwh,
            p2p_export_kwh: t.p2p_export_kwh,
            grid_import_kwh: t.grid_import_kwh,
            grid_export_kwh: t.grid_export_kwh,
            excess_kwh: t.excess_kwh,
            unmet_kwh: t.unmet_kwh,
            ..EnergySums::default()
        };
        let totals = energy_totals(&energy, SalesCounted::GridOnly);
        Ok(CommunityMoney {
            npc_eur,
            annualized_cost_eur,
            coe_eur_per_kwh: totals.cost_of_energy_eur_per_kwh(annualized_cost_eur),
            renewable_fraction: totals.renewable_fraction(),
            cer_shared_energy_kwh: cer_shared_kwh,
            cer_incentive_eur: cer_eur,
            flows: t,
        })
    }
}

/// A year of pro-rata sharing for [`YearAccounts::record_pro_rata_year`]: the members'
/// residuals and the community's conditions of every step.
#[derive(Debug, Clone, Copy)]
pub struct ShareYear<'a> {
    /// Steps of the year; every member has this many.
    pub steps: usize,
    pub members: &'a [&'a ResidualParts],
    /// The main grid is at peak (steps beyond the slice: not at peak).
    pub grid_at_peak: &'a [bool],
    /// The community connection's limits, kW (0 off-grid).
    pub max_purchase_kw: f64,
    pub max_sale_kw: f64,
    /// The summed surplus and deficit of the first members, when the caller already has them
    /// (used only if they are the sums of exactly `members`' first entries over `steps`).
    pub prefix: Option<&'a MemberSums<'a>>,
}

/// The summed surplus and deficit of a community's first members at every step, as
/// [`YearAccounts::record_pro_rata_year`] sums them (from −0.0, in member order): the sizing
/// search sums them once for every configuration that differs only in its last member's
/// design, and hands them over in [`ShareYear::prefix`].
#[derive(Debug, Clone, Default)]
pub struct MemberSums<'p> {
    /// The members summed, in order (a year checks they are its first members).
    members: Vec<&'p ResidualParts>,
    surplus_kw: Vec<f64>,
    deficit_kw: Vec<f64>,
}

impl<'p> MemberSums<'p> {
    /// Sum `members` over `steps` steps (buffers reused).
    pub fn sum(
        &mut self,
        members: &[&'p ResidualParts],
        steps: usize,
    ) -> Result<(), ComponentError> {
        self.members.clear();
        self.surplus_kw.clear();
        self.deficit_kw.clear();
        self.surplus_kw.resize(steps, ZERO);
        self.deficit_kw.resize(steps, ZERO);
        for m in members {
            crate::component_error::check_len("member residual steps", m.len(), steps)?;
            for (s, r) in self.surplus_kw.iter_mut().zip(m.surplus_kw()) {
                *s += r;
            }
            for (d, r) in self.deficit_kw.iter_mut().zip(m.deficit_kw()) {
                *d += r;
            }
            self.members.push(m);
        }
        Ok(())
    }

    /// Whether these are the sums of the first members of `members` (the same parts, by
    /// address).
    fn is_prefix_of(&self, members: &[&ResidualParts]) -> bool {
        self.members.len() <= members.len()
            && self
                .members
                .iter()
                .zip(members)
                .all(|(a, b)| std::ptr::eq(*a, *b))
    }
}

/// Reusable buffers of [`YearAccounts::record_pro_rata_year`] (one per worker, so that no
/// configuration allocates).
#[derive(Debug, Clone, Default)]
pub struct ShareScratch {
    surplus_kw: Vec<f64>,
    deficit_kw: Vec<f64>,
    purchase_per_kw: Vec<f64>,
    sale_per_kw: Vec<f64>,
    shared_kw: Vec<f64>,
    purchase_kw: Vec<f64>,
    sale_kw: Vec<f64>,
    hour_injected_kwh: Vec<f64>,
    hour_withdrawn_kwh: Vec<f64>,
    cer_hours: CerHours,
    /// The grid-peak signal of every step, when the caller's is shorter than the year.
    peak: Vec<bool>,
}

impl ShareScratch {
    fn resize(&mut self, steps: usize) {
        for v in [
            &mut self.surplus_kw,
            &mut self.deficit_kw,
            &mut self.purchase_per_kw,
            &mut self.sale_per_kw,
            &mut self.shared_kw,
            &mut self.purchase_kw,
            &mut self.sale_kw,
        ] {
            v.resize(steps, 0.0);
        }
    }
}

/// One member's inputs to the year's close.
#[derive(Debug, Clone)]
pub struct MemberClosing<'c> {
    /// Its components, priced (with the battery's throughput of the year).
    pub components: &'c [(String, ComponentCosts)],
    /// Its energy sums of the year (COE and renewable fraction; P2P at the internal price).
    pub energy: EnergySums,
    /// V2G battery wear of its fleet, EUR/year.
    pub ev_wear_eur: f64,
}

/// The close at members' detail.
#[derive(Debug, Clone)]
pub struct MembersClosing<'c> {
    pub economics: EconomicParams,
    /// The pro-rata P2P price, EUR/kWh (unused when a market settled).
    pub internal_eur_per_kwh: f64,
    /// The share of the yearly CER incentive counted every project year.
    pub cer_npc_factor: f64,
    pub members: Vec<MemberClosing<'c>>,
    /// The community's energy sums (its COE and renewable fraction).
    pub community_energy: EnergySums,
    /// The market's year, when a market settled P2P money.
    pub market: Option<&'c crate::market_stage::MarketYear>,
}

/// The close at the totals level.
#[derive(Debug, Clone, Copy)]
pub struct TotalsClosing {
    pub economics: EconomicParams,
    pub internal_eur_per_kwh: f64,
    pub cer_npc_factor: f64,
    /// Sum of the members' component NPCs, EUR.
    pub components_npc_eur: f64,
    pub load_kwh: f64,
    pub pv_kwh: f64,
    pub wind_kwh: f64,
    /// Summed V2G wear, EUR/year (0 when it is priced as a component).
    pub ev_wear_eur: f64,
    /// P2P paid and received over the community (fees included), EUR/year, when a market
    /// settled them.
    pub market_eur: Option<(f64, f64)>,
}

/// The year at members' detail.
#[derive(Debug, Clone)]
pub struct YearMoney {
    pub members: Vec<Economics>,
    pub community: Economics,
    pub cer: CerResult,
}

/// The community's year at the totals level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommunityMoney {
    pub npc_eur: f64,
    pub annualized_cost_eur: f64,
    pub coe_eur_per_kwh: Option<f64>,
    pub renewable_fraction: Option<f64>,
    pub cer_shared_energy_kwh: f64,
    pub cer_incentive_eur: f64,
    pub flows: FlowTotals,
}

/// Which sales count as energy served (HOMER: load served + sales).
#[derive(Clone, Copy)]
enum SalesCounted {
    /// The community as a whole: P2P is internal (already in the buyers' load served).
    GridOnly,
    /// A member: what it sold to neighbours is load it served, like a grid sale.
    GridAndP2p,
}

fn energy_totals(e: &EnergySums, sales: SalesCounted) -> EnergyTotals {
    let p2p_sales_kwh = match sales {
        SalesCounted::GridOnly => 0.0,
        SalesCounted::GridAndP2p => e.p2p_export_kwh,
    };
    EnergyTotals {
        load_kwh: e.load_kwh,
        served_load_kwh: (e.load_kwh - e.unmet_kwh).max(0.0),
        grid_sales_kwh: e.grid_export_kwh + p2p_sales_kwh,
        grid_purchases_kwh: e.grid_import_kwh,
        renewable_production_kwh: e.pv_kwh + e.wind_kwh,
        nonrenewable_generation_kwh: 0.0,
        excess_energy_kwh: e.excess_kwh,
    }
}
