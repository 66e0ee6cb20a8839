//! The Italian renewable energy community (CER) incentive (D.Lgs. 199/2021, ARERA TIAD
//! 727/2022, MASE DM 414/2023; markets-vpp-climate.md §3.1).
//!
//! - Shared energy, per hour: `E_sh(h) = min(Σ energy injected by the members' plants,
//!   Σ energy withdrawn by the members)`. The rule is hourly: 15-minute series are summed to
//!   hours first ([`to_hourly`]).
//! - Incentive tariff (TIP), EUR/MWh of shared energy, by plant size class:
//!   `min(cap, fixed + max(0, 180 − P_z))` with (fixed, cap) = (80, 120) up to 200 kW,
//!   (70, 110) up to 600 kW, (60, 100) above; PV plants add a regional correction
//!   (+10 EUR/MWh North, +4 Centre) *after* the cap, as GSE applies it.
//! - ARERA valorisation: a further EUR/MWh on the shared energy (about 8, set yearly).
//!
//! Allocation to members (the issue leaves the rule to the community's statute; ours, chosen
//! and documented here): each hour's benefit (incentive + valorisation) is split into a
//! producers' share (default 50 %), divided among members pro rata to their injection in that
//! hour, and a consumers' share, divided pro rata to their withdrawal in that hour. Allocations
//! sum to the community total.
//!
//! Incentivised energy goes to the plants in GSE's order (oldest first, each up to its
//! injection; the members' order stands for their plants' order of entry into service), each
//! paid at its own size class's tariff; members without their own class use the community's.
//!
//! Simplifications: one plant per member; one region (PV or not) for the whole community; all
//! members under the same primary substation and market zone. This module does no I/O.

use crate::component_error::{ComponentError, Problems, check_len};
use serde::{Deserialize, Serialize};

/// The reference price in the TIP's variable part, EUR/MWh.
pub const TIP_REFERENCE_PRICE_EUR_PER_MWH: f64 = 180.0;

/// A plant size class of the TIP (DM 414/2023).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlantSizeClass {
    /// Up to 200 kW: fixed 80, cap 120 EUR/MWh.
    #[default]
    #[serde(rename = "up_to_200_kw")]
    UpTo200Kw,
    /// Above 200 kW and up to 600 kW: fixed 70, cap 110 EUR/MWh.
    #[serde(rename = "200_to_600_kw")]
    From200To600Kw,
    /// Above 600 kW: fixed 60, cap 100 EUR/MWh.
    #[serde(rename = "over_600_kw")]
    Over600Kw,
}

impl PlantSizeClass {
    /// The class of a plant of `power_kw`.
    pub fn from_power_kw(power_kw: f64) -> Self {
        if power_kw <= 200.0 {
            Self::UpTo200Kw
        } else if power_kw <= 600.0 {
            Self::From200To600Kw
        } else {
            Self::Over600Kw
        }
    }

    /// The fixed part, EUR/MWh.
    pub fn fixed_eur_per_mwh(self) -> f64 {
        match self {
            Self::UpTo200Kw => 80.0,
            Self::From200To600Kw => 70.0,
            Self::Over600Kw => 60.0,
        }
    }

    /// The cap on fixed + variable part, EUR/MWh.
    pub fn cap_eur_per_mwh(self) -> f64 {
        match self {
            Self::UpTo200Kw => 120.0,
            Self::From200To600Kw => 110.0,
            Self::Over600Kw => 100.0,
        }
    }
}

/// The region of the PV correction factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Northern regions (incl. Lombardy): +10 EUR/MWh for PV.
    #[default]
    North,
    /// Central regions (Lazio, Marche, Toscana, Umbria, Abruzzo): +4 EUR/MWh for PV.
    Centre,
    /// The rest: no correction.
    South,
}

impl Region {
    /// The PV correction, EUR/MWh.
    pub fn pv_bonus_eur_per_mwh(self) -> f64 {
        match self {
            Self::North => 10.0,
            Self::Centre => 4.0,
            Self::South => 0.0,
        }
    }
}

/// The incentive tariff, EUR/MWh, for an hour with zonal price `zonal_price_eur_per_mwh`.
pub fn incentive_tariff_eur_per_mwh(
    class: PlantSizeClass,
    zonal_price_eur_per_mwh: f64,
    pv_bonus_eur_per_mwh: f64,
) -> f64 {
    let variable = (TIP_REFERENCE_PRICE_EUR_PER_MWH - zonal_price_eur_per_mwh).max(0.0);
    (class.fixed_eur_per_mwh() + variable).min(class.cap_eur_per_mwh()) + pv_bonus_eur_per_mwh
}

/// Hourly shared energy: `min(injected, withdrawn)` hour by hour, kWh.
pub fn shared_energy_kwh(
    injected_kwh: &[f64],
    withdrawn_kwh: &[f64],
) -> Result<Vec<f64>, ComponentError> {
    check_len("withdrawn_kwh", withdrawn_kwh.len(), injected_kwh.len())?;
    injected_kwh
        .iter()
        .zip(withdrawn_kwh)
        .map(|(i, w)| {
            let i = check_energy("injected_kwh", *i)?;
            let w = check_energy("withdrawn_kwh", *w)?;
            Ok(i.min(w))
        })
        .collect()
}

fn check_energy(what: &'static str, v: f64) -> Result<f64, ComponentError> {
    crate::component_error::check_input(what, v)
}

/// Sums a per-step energy series to hours (`steps_per_hour` consecutive values per hour).
pub fn to_hourly(series_kwh: &[f64], steps_per_hour: usize) -> Result<Vec<f64>, ComponentError> {
    if steps_per_hour == 0 || !series_kwh.len().is_multiple_of(steps_per_hour) {
        return Err(ComponentError::parameter(
            "steps_per_hour",
            format!(
                "must be > 0 and divide the series length {}, got {steps_per_hour}",
                series_kwh.len()
            ),
        ));
    }
    Ok(series_kwh
        .chunks_exact(steps_per_hour)
        .map(|c| c.iter().sum())
        .collect())
}

/// CER parameters (library form: fractions, not percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CerParams {
    /// Plant size class of the TIP.
    pub size_class: PlantSizeClass,
    /// PV correction added to the TIP, EUR/MWh (0 for non-PV plants).
    pub pv_bonus_eur_per_mwh: f64,
    /// ARERA valorisation, EUR/MWh of shared energy.
    pub valorisation_eur_per_mwh: f64,
    /// Producers' share of each hour's benefit (fraction in [0, 1]).
    pub producer_share: f64,
}

/// One member's hourly meter data, kWh per hour.
#[derive(Debug, Clone, Copy, Default)]
pub struct CerMember<'a> {
    /// Energy its plants injected into the grid, each hour.
    pub injected_kwh: &'a [f64],
    /// Energy it withdrew from the grid, each hour.
    pub withdrawn_kwh: &'a [f64],
    /// Size class of its plant when it differs from the community's ([`CerParams::size_class`]).
    pub size_class: Option<PlantSizeClass>,
}

impl<'a> CerMember<'a> {
    /// A member whose plant (if any) is of the community's size class.
    pub fn new(injected_kwh: &'a [f64], withdrawn_kwh: &'a [f64]) -> Self {
        Self {
            injected_kwh,
            withdrawn_kwh,
            size_class: None,
        }
    }
}

/// One member's share of the year.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CerMemberResult {
    /// Energy injected, kWh.
    pub injected_kwh: f64,
    /// Energy withdrawn, kWh.
    pub withdrawn_kwh: f64,
    /// Shared energy attributed to it as a producer (pro rata to injection), kWh.
    pub shared_as_producer_kwh: f64,
    /// Shared energy attributed to it as a consumer (pro rata to withdrawal), kWh.
    pub shared_as_consumer_kwh: f64,
    /// Shared energy incentivised on its plant (GSE's order: members' plants in the order
    /// given, taken as their order of entry into service, each up to its injection), kWh.
    pub incentivised_kwh: f64,
    /// Incentive earned by its plant at its size class's tariff, EUR.
    pub plant_incentive_eur: f64,
    /// Its allocation of incentive + valorisation, EUR.
    pub allocated_eur: f64,
}

/// Reusable per-hour buffers of [`CerYear::add_hours_one`] (one per search worker, so that
/// no configuration allocates).
#[derive(Debug, Clone, Default)]
pub struct CerHours {
    shared_kwh: Vec<f64>,
    earned_eur: Vec<f64>,
    valorised_eur: Vec<f64>,
    /// The incentive tariff of every hour, EUR/MWh, for [`CerHours::tariff_for`]'s zonal prices,
    /// class and bonus (the same for every configuration of a search: computed once).
    tariff_eur_per_mwh: Vec<f64>,
    tariff_zonal_eur_per_mwh: Vec<f64>,
    tariff_class_bonus: Option<(PlantSizeClass, u64)>,
}

impl CerHours {
    fn resize(&mut self, hours: usize) {
        for v in [
            &mut self.shared_kwh,
            &mut self.earned_eur,
            &mut self.valorised_eur,
        ] {
            v.resize(hours, 0.0);
        }
    }

    /// The incentive tariff of every hour of `zonal` ([`incentive_tariff_eur_per_mwh`]), from
    /// the last call's when its prices (compared bit for bit), class and bonus are these.
    fn tariff_for(&mut self, zonal: &[f64], class: PlantSizeClass, bonus: f64) -> &[f64] {
        let key = Some((class, bonus.to_bits()));
        if self.tariff_class_bonus != key || !same_bits(&self.tariff_zonal_eur_per_mwh, zonal) {
            self.tariff_eur_per_mwh.clear();
            self.tariff_eur_per_mwh.extend(
                zonal
                    .iter()
                    .map(|z| incentive_tariff_eur_per_mwh(class, *z, bonus)),
            );
            self.tariff_zonal_eur_per_mwh.clear();
            self.tariff_zonal_eur_per_mwh.extend_from_slice(zonal);
            self.tariff_class_bonus = key;
        }
        &self.tariff_eur_per_mwh
    }
}

/// Whether `a` and `b` hold the same values bit for bit. Every pair is compared, without a
/// branch per value, so that the pass vectorises (it runs once per configuration screened).
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(true, |same, (x, y)| same & (x.to_bits() == y.to_bits()))
}

/// The community's CER year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CerResult {
    /// Shared energy of each hour, kWh.
    pub hourly_shared_kwh: Vec<f64>,
    /// Total shared energy, kWh.
    pub shared_energy_kwh: f64,
    /// Incentive (TIP) earned, EUR.
    pub incentive_eur: f64,
    /// ARERA valorisation earned, EUR.
    pub valorisation_eur: f64,
    /// `incentive + valorisation`, EUR.
    pub total_eur: f64,
    /// Per member, in the order given.
    pub members: Vec<CerMemberResult>,
}

/// Computes the year's shared energy, incentive, valorisation and per-member allocation.
/// `zonal_price_eur_per_mwh` and every member series are hourly and of the same length
/// (see [`evaluate_steps`] for sub-hourly member series). The hours go through [`CerYear`],
/// the one implementation of the rule.
pub fn evaluate(
    params: &CerParams,
    zonal_price_eur_per_mwh: &[f64],
    members: &[CerMember<'_>],
) -> Result<CerResult, ComponentError> {
    let hours = zonal_price_eur_per_mwh.len();
    for (m, member) in members.iter().enumerate() {
        check_len(
            &format!("members[{m}].injected_kwh"),
            member.injected_kwh.len(),
            hours,
        )?;
        check_len(
            &format!("members[{m}].withdrawn_kwh"),
            member.withdrawn_kwh.len(),
            hours,
        )?;
    }
    let classes: Vec<Option<PlantSizeClass>> = members.iter().map(|m| m.size_class).collect();
    let mut year = CerYear::new(params, zonal_price_eur_per_mwh, &classes, true)?;
    let mut injected = vec![0.0; members.len()];
    let mut withdrawn = vec![0.0; members.len()];
    for h in 0..hours {
        for ((i, w), member) in injected.iter_mut().zip(&mut withdrawn).zip(members) {
            *i = member.injected_kwh[h];
            *w = member.withdrawn_kwh[h];
        }
        year.add_hour(&injected, &withdrawn)?;
    }
    Ok(year.finish())
}

/// The CER rule fed one hour at a time (the year accumulator's and [`evaluate`]'s one
/// implementation): each hour's shared energy, the incentive in GSE's order, the valorisation
/// and, when `allocate` is set, each member's allocation (module docs).
#[derive(Debug, Clone)]
pub struct CerYear<'a> {
    params: CerParams,
    zonal_price_eur_per_mwh: &'a [f64],
    classes: Vec<Option<PlantSizeClass>>,
    allocate: bool,
    hour: usize,
    hourly_shared_kwh: Vec<f64>,
    shared_energy_kwh: f64,
    incentive_eur: f64,
    valorisation_eur: f64,
    members: Vec<CerMemberResult>,
}

impl<'a> CerYear<'a> {
    /// A year for members whose plants have the size classes `classes` (`None`: the
    /// community's); `zonal_price_eur_per_mwh` is hourly. Without `allocate`, only the
    /// community's totals are kept (no per-member allocation, no hourly series).
    pub fn new(
        params: &CerParams,
        zonal_price_eur_per_mwh: &'a [f64],
        classes: &[Option<PlantSizeClass>],
        allocate: bool,
    ) -> Result<Self, ComponentError> {
        if !(params.producer_share >= 0.0 && params.producer_share <= 1.0) {
            return Err(ComponentError::parameter(
                "producer_share",
                format!("must be in [0, 1], got {}", params.producer_share),
            ));
        }
        for (field, v) in [
            ("pv_bonus_eur_per_mwh", params.pv_bonus_eur_per_mwh),
            ("valorisation_eur_per_mwh", params.valorisation_eur_per_mwh),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ComponentError::parameter(
                    field,
                    format!("must be >= 0, got {v}"),
                ));
            }
        }
        // One pass without an exit per value (it vectorises: the search makes a year per
        // configuration); the first bad value is looked up only when there is one.
        let all_finite = zonal_price_eur_per_mwh
            .iter()
            .fold(true, |ok, v| ok & v.is_finite());
        if !all_finite && let Some(v) = zonal_price_eur_per_mwh.iter().find(|v| !v.is_finite()) {
            return Err(ComponentError::InvalidInput {
                what: "zonal_price_eur_per_mwh",
                value: *v,
            });
        }
        Ok(Self {
            params: *params,
            zonal_price_eur_per_mwh,
            classes: classes.to_vec(),
            allocate,
            hour: 0,
            hourly_shared_kwh: Vec::with_capacity(if allocate {
                zonal_price_eur_per_mwh.len()
            } else {
                0
            }),
            shared_energy_kwh: 0.0,
            incentive_eur: 0.0,
            valorisation_eur: 0.0,
            members: vec![CerMemberResult::default(); classes.len()],
        })
    }

    /// The next hour: each member's injection and withdrawal, kWh (one entry per member).
    pub fn add_hour(&mut self, injected: &[f64], withdrawn: &[f64]) -> Result<(), ComponentError> {
        let n = self.members.len();
        check_len("injected_kwh", injected.len(), n)?;
        check_len("withdrawn_kwh", withdrawn.len(), n)?;
        let Some(&zonal) = self.zonal_price_eur_per_mwh.get(self.hour) else {
            return Err(ComponentError::LengthMismatch {
                what: "CER hours".to_owned(),
                expected: self.zonal_price_eur_per_mwh.len(),
                got: self.hour + 1,
            });
        };
        self.hour += 1;
        let (mut total_injected, mut total_withdrawn) = (0.0, 0.0);
        for ((r, i), w) in self.members.iter_mut().zip(injected).zip(withdrawn) {
            let i = check_energy("injected_kwh", *i)?;
            let w = check_energy("withdrawn_kwh", *w)?;
            total_injected += i;
            total_withdrawn += w;
            r.injected_kwh += i;
            r.withdrawn_kwh += w;
        }
        let shared = total_injected.min(total_withdrawn);
        if self.allocate {
            self.hourly_shared_kwh.push(shared);
        }
        self.shared_energy_kwh += shared;
        if shared <= 0.0 {
            return Ok(());
        }
        // GSE gives the hour's shared energy to the plants oldest first, each up to its
        // injection, and pays each plant's share at its own size class's tariff.
        let mut incentive = 0.0;
        let mut left = shared;
        for ((r, i), class) in self.members.iter_mut().zip(injected).zip(&self.classes) {
            if left <= 0.0 {
                break;
            }
            let take = i.min(left);
            left -= take;
            let tip = incentive_tariff_eur_per_mwh(
                class.unwrap_or(self.params.size_class),
                zonal,
                self.params.pv_bonus_eur_per_mwh,
            );
            let earned = take * tip / 1000.0;
            r.incentivised_kwh += take;
            r.plant_incentive_eur += earned;
            incentive += earned;
        }
        let valorisation = shared * self.params.valorisation_eur_per_mwh / 1000.0;
        self.incentive_eur += incentive;
        self.valorisation_eur += valorisation;
        if !self.allocate {
            return Ok(());
        }
        let benefit = incentive + valorisation;
        // shared > 0 implies both totals are > 0, so the shares are well defined.
        let (per_injected, per_withdrawn) = (1.0 / total_injected, 1.0 / total_withdrawn);
        let producer_share = self.params.producer_share;
        for ((r, i), w) in self.members.iter_mut().zip(injected).zip(withdrawn) {
            let pi = i * per_injected;
            let pw = w * per_withdrawn;
            r.shared_as_producer_kwh += shared * pi;
            r.shared_as_consumer_kwh += shared * pw;
            r.allocated_eur += benefit * (producer_share * pi + (1.0 - producer_share) * pw);
        }
        Ok(())
    }

    /// [`CerYear::add_hour`] for a year of one member without allocation (the sizing search's
    /// community as one meter): the same rule and the same sums, without slices — the search
    /// calls it every hour of every configuration. Other years go through `add_hour`.
    #[inline]
    pub fn add_hour_one(&mut self, injected: f64, withdrawn: f64) -> Result<(), ComponentError> {
        if self.members.len() != 1 || self.allocate {
            return self.add_hour(&[injected], &[withdrawn]);
        }
        let Some(&zonal) = self.zonal_price_eur_per_mwh.get(self.hour) else {
            return self.add_hour(&[injected], &[withdrawn]);
        };
        self.hour += 1;
        let i = check_energy("injected_kwh", injected)?;
        let w = check_energy("withdrawn_kwh", withdrawn)?;
        let member = &mut self.members[0];
        member.injected_kwh += i;
        member.withdrawn_kwh += w;
        let shared = i.min(w);
        self.shared_energy_kwh += shared;
        if shared <= 0.0 {
            return Ok(());
        }
        // One plant: it takes the whole hour's shared energy (shared <= its injection).
        let tip = incentive_tariff_eur_per_mwh(
            self.classes[0].unwrap_or(self.params.size_class),
            zonal,
            self.params.pv_bonus_eur_per_mwh,
        );
        let earned = shared * tip / 1000.0;
        member.incentivised_kwh += shared;
        member.plant_incentive_eur += earned;
        self.incentive_eur += earned;
        self.valorisation_eur += shared * self.params.valorisation_eur_per_mwh / 1000.0;
        Ok(())
    }

    /// [`CerYear::add_hour_one`] for the next `injected.len()` hours at once (the sizing
    /// search's screening): the same operations in the same order, as two passes — each
    /// hour's shared energy, incentive and valorisation (no sum across hours; with the hours'
    /// tariffs computed once per search by [`CerHours`], the release build's disassembly
    /// shows this pass vectorised, `minpd`/`divpd`), then the year's sums hour by hour — with
    /// `scratch` reused. Falls back to one `add_hour_one` per hour (and its errors) for a year with
    /// allocation or several members, series of different lengths, hours beyond the year, or
    /// an invalid value.
    pub fn add_hours_one(
        &mut self,
        injected: &[f64],
        withdrawn: &[f64],
        scratch: &mut CerHours,
    ) -> Result<(), ComponentError> {
        let n = injected.len();
        let zonal = self.zonal_price_eur_per_mwh.get(self.hour..self.hour + n);
        let (Some(zonal), false, 1, true) = (
            zonal,
            self.allocate,
            self.members.len(),
            withdrawn.len() == n,
        ) else {
            return self.add_hours_each(injected, withdrawn);
        };
        let class = self.classes[0].unwrap_or(self.params.size_class);
        let (bonus, valorisation) = (
            self.params.pv_bonus_eur_per_mwh,
            self.params.valorisation_eur_per_mwh,
        );
        scratch.resize(n);
        // Before the borrow below: the tariff is computed once per search, not per year.
        scratch.tariff_for(zonal, class, bonus);
        let CerHours {
            shared_kwh,
            earned_eur,
            valorised_eur,
            tariff_eur_per_mwh,
            ..
        } = scratch;
        // Every slice exactly `n` long, so the loop has no bounds checks.
        let (shared_kwh, earned_eur, valorised_eur) = (
            &mut shared_kwh[..n],
            &mut earned_eur[..n],
            &mut valorised_eur[..n],
        );
        let (injected, withdrawn, tariff) =
            (&injected[..n], &withdrawn[..n], &tariff_eur_per_mwh[..n]);
        // Every value finite and >= 0 (`add_hour_one`'s check), checked in the same pass
        // (`&`, no branch per hour); else nothing is recorded here.
        let mut valid = true;
        for h in 0..n {
            let (i, w) = (injected[h], withdrawn[h]);
            valid &= (i >= 0.0) & i.is_finite() & (w >= 0.0) & w.is_finite();
            let shared = i.min(w);
            shared_kwh[h] = shared;
            // Without a branch: an hour that shares nothing (`shared` is ±0, the tariff
            // positive) adds ±0, which leaves every sum as `add_hour_one` leaves it.
            earned_eur[h] = shared * tariff[h] / 1000.0;
            valorised_eur[h] = shared * valorisation / 1000.0;
        }
        if !valid {
            return self.add_hours_each(injected, withdrawn);
        }
        self.hour += n;
        let m = &mut self.members[0];
        let (mut m_injected, mut m_withdrawn) = (m.injected_kwh, m.withdrawn_kwh);
        let (mut m_incentivised, mut m_plant) = (m.incentivised_kwh, m.plant_incentive_eur);
        let mut shared_total = self.shared_energy_kwh;
        let (mut incentive_total, mut valorisation_total) =
            (self.incentive_eur, self.valorisation_eur);
        let hours = injected.iter().zip(withdrawn).zip(
            shared_kwh
                .iter()
                .zip(earned_eur.iter())
                .zip(valorised_eur.iter()),
        );
        for ((i, w), ((shared, earned), valorised)) in hours {
            m_injected += i;
            m_withdrawn += w;
            shared_total += shared;
            m_incentivised += shared;
            m_plant += earned;
            incentive_total += earned;
            valorisation_total += valorised;
        }
        (m.injected_kwh, m.withdrawn_kwh) = (m_injected, m_withdrawn);
        (m.incentivised_kwh, m.plant_incentive_eur) = (m_incentivised, m_plant);
        self.shared_energy_kwh = shared_total;
        (self.incentive_eur, self.valorisation_eur) = (incentive_total, valorisation_total);
        Ok(())
    }

    /// One [`CerYear::add_hour_one`] per hour (and its errors).
    fn add_hours_each(
        &mut self,
        injected: &[f64],
        withdrawn: &[f64],
    ) -> Result<(), ComponentError> {
        for (i, w) in injected.iter().zip(withdrawn) {
            self.add_hour_one(*i, *w)?;
        }
        check_len("withdrawn_kwh", withdrawn.len(), injected.len())
    }

    /// The community's benefit so far (incentive + valorisation), EUR.
    pub fn total_eur(&self) -> f64 {
        self.incentive_eur + self.valorisation_eur
    }

    /// The year's result (members' allocations are zero without `allocate`).
    pub fn finish(self) -> CerResult {
        CerResult {
            shared_energy_kwh: if self.allocate {
                self.hourly_shared_kwh.iter().sum()
            } else {
                self.shared_energy_kwh
            },
            hourly_shared_kwh: self.hourly_shared_kwh,
            incentive_eur: self.incentive_eur,
            valorisation_eur: self.valorisation_eur,
            total_eur: self.incentive_eur + self.valorisation_eur,
            members: self.members,
        }
    }
}

/// The Italian market zones of GME price files (the ones a CER can be in).
pub const MARKET_ZONES: [&str; 7] = ["NORD", "CNOR", "CSUD", "SUD", "CALA", "SICI", "SARD"];

/// The CER in the scenario (`[cer]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CerConfig {
    /// Whether the community is a CER and earns the incentive (default false).
    #[serde(default)]
    pub enabled: bool,
    /// GME market zone whose hourly price sets the TIP's variable part (default `"NORD"`,
    /// Bergamo's).
    #[serde(default = "default_market_zone")]
    pub market_zone: String,
    /// Region of the PV correction: `"north"` (default, +10 EUR/MWh), `"centre"` (+4),
    /// `"south"` (0).
    #[serde(default)]
    pub region: Region,
    /// Plant size class: `"up_to_200_kw"` (default), `"200_to_600_kw"`, `"over_600_kw"`.
    #[serde(default)]
    pub plant_size_class: PlantSizeClass,
    /// Whether the plants are PV (default true; only PV earns the regional correction).
    #[serde(default = "default_true")]
    pub plants_are_pv: bool,
    /// ARERA valorisation, EUR/MWh of shared energy (default 8).
    #[serde(default = "default_valorisation_eur_per_mwh")]
    pub valorisation_eur_per_mwh: f64,
    /// Producers' share of each hour's benefit in the allocation to members, percent
    /// (default 50; the rest goes to consumers pro rata to withdrawal).
    #[serde(default = "default_producer_share_pct")]
    pub producer_share_pct: f64,
    /// Years the incentive is paid (default 20, DM 414/2023); spread over the project with
    /// `economics::equivalent_annual_over_project`.
    #[serde(default = "default_incentive_years")]
    pub incentive_years: f64,
}

impl Default for CerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            market_zone: default_market_zone(),
            region: Region::default(),
            plant_size_class: PlantSizeClass::default(),
            plants_are_pv: true,
            valorisation_eur_per_mwh: default_valorisation_eur_per_mwh(),
            producer_share_pct: default_producer_share_pct(),
            incentive_years: default_incentive_years(),
        }
    }
}

fn default_market_zone() -> String {
    "NORD".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_valorisation_eur_per_mwh() -> f64 {
    8.0
}
fn default_producer_share_pct() -> f64 {
    50.0
}
fn default_incentive_years() -> f64 {
    20.0
}

impl CerConfig {
    /// Every problem, as `(field path, message)`, with `path` as the prefix.
    pub fn validate(&self, path: &str) -> Vec<(String, String)> {
        let mut p = Problems::default();
        if !MARKET_ZONES.contains(&self.market_zone.as_str()) {
            p.fail(
                path,
                "market_zone",
                format!(
                    "must be one of {}, got {:?}",
                    MARKET_ZONES.join(", "),
                    self.market_zone
                ),
            );
        }
        p.in_range(
            path,
            "valorisation_eur_per_mwh",
            self.valorisation_eur_per_mwh,
            0.0,
            1000.0,
        );
        p.in_range(
            path,
            "producer_share_pct",
            self.producer_share_pct,
            0.0,
            100.0,
        );
        p.in_range(path, "incentive_years", self.incentive_years, 0.0, 100.0);
        p.list
    }

    /// The library form.
    pub fn params(&self) -> CerParams {
        CerParams {
            size_class: self.plant_size_class,
            pv_bonus_eur_per_mwh: if self.plants_are_pv {
                self.region.pv_bonus_eur_per_mwh()
            } else {
                0.0
            },
            valorisation_eur_per_mwh: self.valorisation_eur_per_mwh,
            producer_share: self.producer_share_pct / 100.0,
        }
    }
}

/// [`evaluate`] for member series at `steps_per_hour` steps per hour (e.g. 4 for 15-minute
/// steps): they are summed to hours first, as the shared-energy rule is hourly.
/// `zonal_price_eur_per_mwh` stays hourly.
pub fn evaluate_steps(
    params: &CerParams,
    zonal_price_eur_per_mwh: &[f64],
    members: &[CerMember<'_>],
    steps_per_hour: usize,
) -> Result<CerResult, ComponentError> {
    let hourly: Vec<(Vec<f64>, Vec<f64>)> = members
        .iter()
        .map(|m| {
            Ok((
                to_hourly(m.injected_kwh, steps_per_hour)?,
                to_hourly(m.withdrawn_kwh, steps_per_hour)?,
            ))
        })
        .collect::<Result<_, ComponentError>>()?;
    let hourly_members: Vec<CerMember<'_>> = hourly
        .iter()
        .zip(members)
        .map(|((i, w), m)| CerMember {
            injected_kwh: i,
            withdrawn_kwh: w,
            size_class: m.size_class,
        })
        .collect();
    evaluate(params, zonal_price_eur_per_mwh, &hourly_members)
}
