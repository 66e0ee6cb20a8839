//! Headline indicators shown in the report and the console, derived from a result's energy
//! sums: self-consumption and self-sufficiency (the definitions pvlib / HTW Berlin users know),
//! next to HOMER's renewable fraction, which the simulation computes.
//!
//! - self-consumption = 1 − (grid export + P2P export + excess) ÷ own generation (PV + wind):
//!   the share of what a member generated that it used itself (directly or through its battery);
//! - self-sufficiency = 1 − (grid import + P2P import) ÷ demand: the share of its demand it
//!   covered itself. For the community P2P is internal, so only the grid counts.
//!
//! Pure arithmetic on sums the simulation produced; `None` when the denominator is zero.

use scg_sim::year::EnergySums;

/// Self-consumption of own generation, fraction, for a member (`community = false`) or the
/// whole community (P2P is internal).
pub fn self_consumption(e: &EnergySums, community: bool) -> Option<f64> {
    let generation = e.pv_kwh + e.wind_kwh;
    let p2p = if community { 0.0 } else { e.p2p_export_kwh };
    (generation > 0.0).then(|| 1.0 - (e.grid_export_kwh + p2p + e.excess_kwh) / generation)
}

/// Self-sufficiency, fraction, for a member or the whole community.
pub fn self_sufficiency(e: &EnergySums, community: bool) -> Option<f64> {
    let p2p = if community { 0.0 } else { e.p2p_import_kwh };
    (e.load_kwh > 0.0).then(|| 1.0 - (e.grid_import_kwh + p2p) / e.load_kwh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions() {
        let e = EnergySums {
            load_kwh: 100.0,
            pv_kwh: 50.0,
            grid_import_kwh: 40.0,
            grid_export_kwh: 10.0,
            p2p_import_kwh: 5.0,
            p2p_export_kwh: 5.0,
            ..EnergySums::default()
        };
        assert!((self_consumption(&e, false).expect("defined") - 0.7).abs() < 1e-12);
        assert!((self_consumption(&e, true).expect("defined") - 0.8).abs() < 1e-12);
        assert!((self_sufficiency(&e, false).expect("defined") - 0.55).abs() < 1e-12);
        assert!((self_sufficiency(&e, true).expect("defined") - 0.6).abs() < 1e-12);
        assert_eq!(self_consumption(&EnergySums::default(), true), None);
    }
}
