//! Shared checks of the settlement tests.
#![allow(clippy::unwrap_used, dead_code)]

use scg_ledger::DeviceType;
use scg_ledger::settlement::IntervalInput;

/// How far (base units) member `i`'s CER payout by the ledger's integer rule may lie from the
/// simulator's float allocation of the same rule, over the year of `intervals`.
///
/// Per hour, each member's injection and withdrawal on the ledger are its rounded step Wh
/// summed, within `δ = steps_per_hour / 2` Wh of the float kWh. A member's allocation is
/// `rate × (s × E × I_i / ΣI + (1 − s) × E × W_i / ΣW)` with `E = min(ΣI, ΣW)`; each term
/// moves by at most `(2N + 1) δ` Wh when every reading moves by `δ` (N members), so the hour's
/// allocation moves by at most `rate_max × (2N + 1) × δ` base units, plus 2 units of the
/// largest-remainder division; the hourly zonal price rounded to the milli-EUR/MWh moves the
/// tariff by at most 0.5 base units per Wh shared, at most the member's Wh of the hour.
pub fn cer_float_bound_base(
    result: &scg_sim::SimResult,
    intervals: &[IntervalInput],
    i: usize,
) -> f64 {
    let Some(p) = &result.community.cer_params else {
        return 0.0;
    };
    let n = result.prosumers.len() as f64;
    let per_hour = result.grid.steps_per_hour() as f64;
    let hours = (intervals.len() as f64 / per_hour).floor();
    let delta_wh = per_hour / 2.0;
    // The largest tariff + valorisation, base units per Wh (= EUR/MWh × 1000).
    let rate_max = (120.0 + p.pv_bonus_eur_per_mwh + p.valorisation_eur_per_mwh) * 1000.0;
    let id = &result.prosumers[i].id;
    let member_wh: f64 = intervals
        .iter()
        .flat_map(|iv| &iv.readings)
        .filter(|r| r.device == DeviceType::SupplyPoint && &r.member == id)
        .map(|r| (r.produced_wh + r.consumed_wh) as f64)
        .sum();
    hours * (rate_max * (2.0 * n + 1.0) * delta_wh + 2.0) + 0.5 * member_wh
}
