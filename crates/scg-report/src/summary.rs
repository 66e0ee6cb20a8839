//! `summary.json`: the run's metadata and every prosumer's and the community's metrics.
//!
//! Schema `scg.summary.v1` (documented in `docs/summary.md`, with an example):
//! ```text
//! {
//!   "schema": "scg.summary.v1", "scg_version": "0.1.0", "seed": 42,
//!   "scenario": { "name", "source", "latitude_deg", "longitude_deg", "time_zone",
//!                 "utc_offset", "model_year", "step_minutes", "steps" },
//!   "prosumers": { "<id>": { "name": "...", "load": LoadReport } , ... },
//!   "community": { "prosumers": 5, "load": LoadReport }
//! }
//! ```
//! A `LoadReport` holds `energy_kwh`, `average_kwh_per_day`, `average_kw`, `peak_kw`, `min_kw`,
//! `rms_kw`, `load_factor`, `crest_factor`, `peak_month` (1–12), `peak_timestamp`, then
//! `baseline` (the same statistics of the unperturbed, unscaled load), `scale_factor`,
//! `seasonal` (12 × {month, min_kw, daily_low_average_kw, average_kw, daily_high_average_kw,
//! max_kw}) and `daily_profile_kw` (12 × 24).

use scg_sim::SimResult;
use scg_sim::engine::{Economics, PvArrayYield};
use scg_sim::metrics::LoadReport;
use scg_sim::year::EnergySums;
use serde::Serialize;
use std::collections::BTreeMap;

/// Facts about the run that the result does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The scg version that produced the outputs.
    pub scg_version: String,
    /// Where the scenario came from (a path, or "built-in").
    pub scenario_source: String,
    /// The RESCoin ledger written beside the outputs, if any.
    pub ledger: Option<LedgerInfo>,
}

/// What the year's settlement put on the RESCoin ledger (amounts in base units, 9 decimals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerInfo {
    /// Directory of the ledger, relative to the output directory.
    pub ledger_dir: String,
    pub ledger_blocks: u64,
    pub ledger_transactions: u64,
    pub ledger_transactions_rejected: u64,
    pub rescoin_decimals: u32,
    /// Renewable minting only (the treasury's genesis endowment is not counted here).
    pub rescoin_minted: u128,
    pub certificates_issued: u64,
    /// Market trades settled on the ledger (each a trade-create + trade-post pair).
    pub p2p_trades_settled: u64,
    /// P2P Wh settled, and the part that carried a renewable-origin certificate.
    pub p2p_wh_settled: u128,
    pub p2p_wh_certified: u128,
    pub cer_distributed: u128,
    /// Final balance of each member, base units.
    pub rescoin_balances: BTreeMap<String, u128>,
    pub ledger_state_root: String,
    /// Per member (written inside each prosumer as `ledger`, not at the top level).
    #[serde(skip)]
    pub members: BTreeMap<String, MemberLedger>,
}

/// One member's year on the ledger: RESCoin amounts as exact decimal strings with 9 decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberLedger {
    /// The member's account: ed25519 public key, 64 hex digits.
    pub account: String,
    pub balance_res: String,
    pub minted_res: String,
    pub p2p_received_res: String,
    /// Paid to sellers, grid fees excluded (`p2p_paid_res + fees_paid_res` is what the member
    /// paid for P2P energy, `p2p_cost_eur_per_year`).
    pub p2p_paid_res: String,
    pub fees_paid_res: String,
    pub cer_received_res: String,
}

impl LedgerInfo {
    /// The figures of a settled year whose ledger is in `ledger_dir` (relative to the outputs).
    pub fn from_settlement(
        s: &scg_ledger::settlement::SettlementSummary,
        ledger_dir: &str,
    ) -> Self {
        let res = |r: scg_units::Rescoin| r.to_decimal_string();
        Self {
            ledger_dir: ledger_dir.to_owned(),
            ledger_blocks: s.blocks,
            ledger_transactions: s.transactions,
            ledger_transactions_rejected: s.transactions_rejected,
            rescoin_decimals: scg_units::Rescoin::DECIMALS,
            rescoin_minted: s.rescoin_minted.0,
            certificates_issued: s.certificates_issued,
            p2p_trades_settled: s.p2p_trades_settled,
            p2p_wh_settled: s.p2p_wh_delivered,
            p2p_wh_certified: s.p2p_wh_certified,
            cer_distributed: s.cer_distributed.0,
            rescoin_balances: s
                .members
                .iter()
                .map(|(k, m)| (k.clone(), m.balance.0))
                .collect(),
            ledger_state_root: s.final_state_root_hex.clone(),
            members: s
                .members
                .iter()
                .map(|(id, m)| {
                    (
                        id.clone(),
                        MemberLedger {
                            account: m.account_hex.clone(),
                            balance_res: res(m.balance),
                            minted_res: res(m.minted),
                            p2p_received_res: res(m.p2p_received),
                            p2p_paid_res: res(m.p2p_paid),
                            fees_paid_res: res(m.fees_paid),
                            cer_received_res: res(m.cer_received),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The top-level object of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub schema: &'static str,
    pub scg_version: String,
    pub seed: u64,
    pub scenario: ScenarioInfo,
    /// Keyed by prosumer id (sorted, so the bytes are stable).
    pub prosumers: BTreeMap<String, ProsumerSummary>,
    pub community: CommunitySummary,
    /// The ledger's figures, at the top level (`ledger_blocks`, `rescoin_minted`, …).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerInfo>,
}

/// What was simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub source: String,
    pub latitude_deg: f64,
    pub longitude_deg: f64,
    pub time_zone: String,
    /// The standard offset the timestamps carry, e.g. `+01:00`.
    pub utc_offset: String,
    pub model_year: i32,
    pub step_minutes: u32,
    pub steps: usize,
    /// Prosumer ids in scenario order.
    pub prosumer_order: Vec<String>,
}

/// One prosumer's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProsumerSummary {
    pub name: String,
    pub load: LoadReport,
    #[serde(flatten)]
    pub energy: EnergySummary,
    #[serde(flatten)]
    pub money: MoneySummary,
    /// This member's part of the community's CER shared energy: the mean of its producer and
    /// consumer attributions (members' values sum to the community's).
    pub cer_shared_energy_kwh: f64,
    pub pv_arrays: Vec<PvArrayYield>,
    /// EV charging + swap-station energy (part of the demand), kWh.
    pub ev_energy_kwh: f64,
    /// Energy given back by V2G, kWh.
    pub v2g_energy_kwh: f64,
    /// Community surplus (PV + wind over load, before storage) its EV charging absorbed, kWh.
    pub ev_surplus_absorbed_kwh: f64,
    /// Highest EV demand of a step, kW.
    pub ev_peak_kw: f64,
    /// EV sessions that departed.
    pub ev_departures: usize,
    /// Mean state of charge of the departing EVs, % of battery capacity (0-100); `None`
    /// without departures.
    pub ev_mean_departure_soc_pct: Option<f64>,
    /// Mean state of charge the departing drivers wanted, % of battery capacity (0-100).
    pub ev_mean_wanted_soc_pct: Option<f64>,
    /// The home agent's figures (only for a prosumer with a `[prosumers.home]` section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<HomeSummary>,
    /// This member on the RESCoin ledger (absent with `--no-ledger`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<MemberLedger>,
}

/// What the home agent did for one prosumer (`docs/summary.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HomeSummary {
    /// Highest step of the prosumer's load as the step saw it before the home agent
    /// (HOMER load with the devices as the occupants run them, plus EVs), kW.
    pub peak_unmanaged_kw: f64,
    /// Highest step of the prosumer's load after the home agent, kW.
    pub peak_managed_kw: f64,
    /// Device energy the agent moved to other steps, kWh.
    pub shifted_energy_kwh: f64,
    /// What the devices' energy costs less managed, against the agent's prices (retail
    /// price plus the grid-peak adder, community surplus at the internal price), EUR/year.
    pub savings_eur_per_year: f64,
}

impl From<&scg_home::carve::HomeResult> for HomeSummary {
    fn from(r: &scg_home::carve::HomeResult) -> Self {
        Self {
            peak_unmanaged_kw: r.peak_unmanaged_kw,
            peak_managed_kw: r.peak_managed_kw,
            shifted_energy_kwh: r.shifted_energy_kwh,
            savings_eur_per_year: r.savings_eur_per_year,
        }
    }
}

/// Yearly energy flows, kWh.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergySummary {
    pub pv_energy_kwh: f64,
    pub wind_energy_kwh: f64,
    pub battery_charge_kwh: f64,
    pub battery_discharge_kwh: f64,
    pub grid_import_kwh: f64,
    pub grid_export_kwh: f64,
    pub p2p_import_kwh: f64,
    pub p2p_export_kwh: f64,
    pub excess_energy_kwh: f64,
    pub unmet_load_kwh: f64,
    pub renewable_fraction: Option<f64>,
}

/// Money: per year and over the project (HOMER's NPC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoneySummary {
    pub npc_eur: f64,
    pub annualized_cost_eur: f64,
    pub coe_eur_per_kwh: Option<f64>,
    pub initial_capital_eur: f64,
    pub grid_energy_cost_eur_per_year: f64,
    pub grid_demand_charge_eur_per_year: f64,
    pub grid_sale_revenue_eur_per_year: f64,
    pub p2p_cost_eur_per_year: f64,
    pub p2p_revenue_eur_per_year: f64,
    pub cer_incentive_eur: f64,
}

/// The community's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommunitySummary {
    pub prosumers: usize,
    pub load: LoadReport,
    #[serde(flatten)]
    pub energy: EnergySummary,
    #[serde(flatten)]
    pub money: MoneySummary,
    pub cer_shared_energy_kwh: f64,
    pub cer_valorisation_eur: f64,
    /// Community surplus absorbed by EV charging, all fleets, kWh.
    pub ev_surplus_absorbed_kwh: f64,
    /// Steps in which the main grid was flagged at peak.
    pub grid_at_peak_steps: usize,
    /// `"pro_rata"` or the market mechanism that shared the surplus.
    pub sharing: String,
    /// Community market figures (`null` under pro-rata sharing).
    pub p2p_trades: Option<u64>,
    pub p2p_volume_kwh: f64,
    pub p2p_average_price_eur_per_mwh: f64,
    pub grid_fees_eur: f64,
}

fn energy_summary(e: &EnergySums, economics: &Economics) -> EnergySummary {
    EnergySummary {
        pv_energy_kwh: e.pv_kwh,
        wind_energy_kwh: e.wind_kwh,
        battery_charge_kwh: e.battery_in_kwh,
        battery_discharge_kwh: e.battery_out_kwh,
        grid_import_kwh: e.grid_import_kwh,
        grid_export_kwh: e.grid_export_kwh,
        p2p_import_kwh: e.p2p_import_kwh,
        p2p_export_kwh: e.p2p_export_kwh,
        excess_energy_kwh: e.excess_kwh,
        unmet_load_kwh: e.unmet_kwh,
        renewable_fraction: economics.renewable_fraction,
    }
}

fn money_summary(m: &Economics) -> MoneySummary {
    MoneySummary {
        npc_eur: m.npc_eur,
        annualized_cost_eur: m.annualized_cost_eur,
        coe_eur_per_kwh: m.coe_eur_per_kwh,
        initial_capital_eur: m.initial_capital_eur,
        grid_energy_cost_eur_per_year: m.grid_bill.energy_cost_eur,
        grid_demand_charge_eur_per_year: m.grid_bill.demand_charge_eur,
        grid_sale_revenue_eur_per_year: m.grid_bill.sale_revenue_eur,
        p2p_cost_eur_per_year: m.p2p_cost_eur_per_year,
        p2p_revenue_eur_per_year: m.p2p_revenue_eur_per_year,
        cer_incentive_eur: m.cer_incentive_eur,
    }
}

impl Summary {
    /// Collect the summary of a result.
    pub fn new(result: &SimResult, scenario: &scg_model::Scenario, run: &RunInfo) -> Self {
        let mut summary = Self::without_ledger(result, scenario, run);
        summary.set_ledger(run.ledger.clone());
        summary
    }

    /// The summary with no ledger figures (`run.ledger` is not read): what is known before
    /// the year is settled; [`Summary::set_ledger`] adds them.
    pub fn without_ledger(
        result: &SimResult,
        scenario: &scg_model::Scenario,
        run: &RunInfo,
    ) -> Self {
        let offset_seconds = result.grid.standard_offset_seconds();
        Self {
            schema: "scg.summary.v1",
            scg_version: run.scg_version.clone(),
            seed: result.seed,
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                source: run.scenario_source.clone(),
                latitude_deg: scenario.location.latitude_deg,
                longitude_deg: scenario.location.longitude_deg,
                time_zone: scenario.location.time_zone.clone(),
                utc_offset: format_offset(offset_seconds),
                model_year: result.grid.year(),
                step_minutes: result.grid.step_minutes(),
                steps: result.grid.len(),
                prosumer_order: result.prosumers.iter().map(|p| p.id.clone()).collect(),
            },
            prosumers: result
                .prosumers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let cer = result.community.cer.members.get(i);
                    (
                        p.id.clone(),
                        ProsumerSummary {
                            name: p.name.clone(),
                            load: p.load_report.clone(),
                            energy: energy_summary(&p.energy, &p.economics),
                            money: money_summary(&p.economics),
                            cer_shared_energy_kwh: cer.map_or(0.0, |m| {
                                (m.shared_as_producer_kwh + m.shared_as_consumer_kwh) / 2.0
                            }),
                            pv_arrays: p.pv_arrays.clone(),
                            ev_energy_kwh: p.energy.ev_kwh,
                            v2g_energy_kwh: p.energy.v2g_kwh,
                            ev_surplus_absorbed_kwh: p.ev.surplus_absorbed_kwh,
                            ev_peak_kw: p.ev.demand_peak_kw,
                            ev_departures: p.ev.departures.len(),
                            ev_mean_departure_soc_pct: mean(
                                p.ev.departures.iter().map(|d| 100.0 * d.soc),
                            ),
                            ev_mean_wanted_soc_pct: mean(
                                p.ev.departures.iter().map(|d| 100.0 * d.wanted_soc),
                            ),
                            home: p.home.as_ref().map(HomeSummary::from),
                            ledger: None,
                        },
                    )
                })
                .collect(),
            community: CommunitySummary {
                prosumers: result.prosumers.len(),
                load: result.community.load_report.clone(),
                energy: energy_summary(&result.community.energy, &result.community.economics),
                money: money_summary(&result.community.economics),
                cer_shared_energy_kwh: result.community.cer.shared_energy_kwh,
                cer_valorisation_eur: result.community.cer.valorisation_eur,
                ev_surplus_absorbed_kwh: result
                    .prosumers
                    .iter()
                    .map(|p| p.ev.surplus_absorbed_kwh)
                    .sum(),
                grid_at_peak_steps: result.community.grid_at_peak_steps,
                sharing: match scenario.community.market.as_ref().map(|m| m.mechanism) {
                    None => "pro_rata",
                    Some(scg_model::MarketMechanism::PayAsClear) => "pay_as_clear",
                    Some(scg_model::MarketMechanism::PayAsBid) => "pay_as_bid",
                    Some(scg_model::MarketMechanism::PayAsOffer) => "pay_as_offer",
                }
                .to_owned(),
                p2p_trades: result.community.market.as_ref().map(|m| m.p2p_trades),
                p2p_volume_kwh: result.community.energy.p2p_import_kwh,
                p2p_average_price_eur_per_mwh: match &result.community.market {
                    Some(m) => m.p2p_average_price_eur_per_mwh,
                    None => scenario.community.internal_price_eur_per_mwh,
                },
                grid_fees_eur: result
                    .community
                    .market
                    .as_ref()
                    .map_or(0.0, |m| m.grid_fees_eur),
            },
            ledger: None,
        }
    }

    /// Put the ledger's figures in: at the top level, and each member's inside its prosumer
    /// (`None` takes them out).
    pub fn set_ledger(&mut self, ledger: Option<LedgerInfo>) {
        for (id, p) in &mut self.prosumers {
            p.ledger = ledger.as_ref().and_then(|l| l.members.get(id).cloned());
        }
        self.ledger = ledger;
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn format_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, (s % 3600) / 60)
}
