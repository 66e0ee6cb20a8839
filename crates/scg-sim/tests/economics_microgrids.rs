//! Component NPCs against the `microgrids` package (Haessig et al., MIT licence; the closest
//! open HOMER clone, homer.md §6). The golden values in `tests/data/economics_microgrids.csv`
//! were produced by `tests/data/economics_microgrids.py` with microgrids 0.3.1.

#![allow(clippy::unwrap_used)]

use scg_sim::economics::{ComponentCosts, component_npc};

const GOLDEN: &str = include_str!("data/economics_microgrids.csv");

#[test]
fn component_npc_matches_microgrids() {
    let mut rows = 0;
    for line in GOLDEN.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.parse().expect("a number"))
            .collect();
        assert_eq!(v.len(), 11, "{line}");
        let costs = ComponentCosts {
            capital_eur: v[3],
            replacement_eur: v[4],
            om_eur_per_year: v[5],
            lifetime_years: v[2],
        };
        let npc = component_npc(&costs, v[1], v[0]).unwrap();
        let close = |ours: f64, theirs: f64, what: &str| {
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{what}: ours {ours}, microgrids {theirs} ({line})"
            );
        };
        close(npc.capital_eur, v[6], "capital");
        close(npc.replacement_eur, v[7], "replacement");
        close(npc.om_eur, v[8], "O&M");
        close(npc.salvage_eur, v[9], "salvage");
        close(npc.total_eur, v[10], "total");
        rows += 1;
    }
    assert_eq!(rows, 8);
}
