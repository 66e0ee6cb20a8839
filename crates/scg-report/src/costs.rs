//! The money views of the report: each member's net present cost split into capital,
//! replacement, O&M, grid, other (P2P and CER) and salvage, and the community's yearly cash
//! flows. Both are recomputed from the scenario's priced components with `scg-sim`'s own
//! economics (`engine::components`, `economics::system_npc`, `economics::cash_flows`), never
//! by a formula of this crate; a test checks that the parts add up to the NPC of the result.

use scg_model::Scenario;
use scg_sim::SimResult;
use scg_sim::economics::{ComponentCosts, YearCashFlow, cash_flows, system_npc};

/// One member's NPC by kind, present values in EUR (salvage ≤ 0).
#[derive(Debug, Clone, PartialEq)]
pub struct NpcBreakdown {
    pub id: String,
    pub capital_eur: f64,
    pub replacement_eur: f64,
    pub om_eur: f64,
    pub grid_eur: f64,
    pub other_eur: f64,
    pub salvage_eur: f64,
    pub total_eur: f64,
}

/// The report's cost views.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    pub members: Vec<NpcBreakdown>,
    /// The community's yearly cash flows (sum of the members'), year 0..=N.
    pub cash_flows: Vec<YearCashFlow>,
}

/// Breakdown and cash flows, or `None` when the scenario's components cannot be typed (they
/// could, or the simulation would not have run).
pub fn costs(result: &SimResult, scenario: &Scenario) -> Option<Costs> {
    let assets = scg_sim::Assets::from_scenario(scenario).ok()?;
    let params = assets.economics.params();
    let cer_factor = scg_sim::sizing::cer_npc_factor(&assets);
    let mut members = Vec::new();
    let mut flows: Vec<YearCashFlow> = Vec::new();
    for (p, a) in result.prosumers.iter().zip(&assets.prosumers) {
        let comps = scg_sim::engine::components(a, p.battery_throughput_kwh);
        let refs: Vec<(&str, ComponentCosts)> =
            comps.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let e = &p.economics;
        let grid = e.grid_bill.net_cost_eur;
        let other =
            e.p2p_cost_eur_per_year - e.p2p_revenue_eur_per_year - e.cer_incentive_eur * cer_factor;
        let npc = system_npc(&params, &refs, grid, other).ok()?;
        let sum = |f: fn(&scg_sim::economics::ComponentNpc) -> f64| {
            npc.components.iter().map(|(_, c)| f(c)).sum::<f64>()
        };
        members.push(NpcBreakdown {
            id: p.id.clone(),
            capital_eur: sum(|c| c.capital_eur),
            replacement_eur: sum(|c| c.replacement_eur),
            om_eur: sum(|c| c.om_eur),
            grid_eur: npc.grid_eur,
            other_eur: npc.other_eur,
            salvage_eur: -sum(|c| c.salvage_eur),
            total_eur: npc.total_npc_eur,
        });
        let own = cash_flows(&params, &refs, grid, other).ok()?;
        if flows.is_empty() {
            flows = own;
        } else {
            for (f, o) in flows.iter_mut().zip(own) {
                f.capital_eur += o.capital_eur;
                f.replacement_eur += o.replacement_eur;
                f.om_eur += o.om_eur;
                f.grid_eur += o.grid_eur;
                f.other_eur += o.other_eur;
                f.salvage_eur += o.salvage_eur;
            }
        }
    }
    Some(Costs {
        members,
        cash_flows: flows,
    })
}
