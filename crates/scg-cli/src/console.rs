//! What `scg simulate` prints when it is done: one compact table of the year (energy,
//! renewable fraction, self-sufficiency, P2P, NPC, COE, CER) per member and for the community,
//! then the CER, the ledger (height and state root) and where the outputs went.
//!
//! It goes to stdout: it is the command's result (pipe it, diff it, keep it in a log), while
//! progress bars, warnings and errors go to stderr. `--quiet` silences it. The numbers come from
//! the result and `scg_report::indicators`; this module only formats.

use scg_report::indicators::{self_consumption, self_sufficiency};
use scg_report::summary::LedgerInfo;
use scg_sim::SimResult;
use scg_sim::year::EnergySums;
use std::fmt::Write as _;

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| format!("{:.1}", x * 100.0))
}

/// One row: id, energy in MWh, fractions in %, money.
fn row(
    out: &mut String,
    id: &str,
    e: &EnergySums,
    m: &scg_sim::engine::Economics,
    community: bool,
) {
    let _ = writeln!(
        out,
        "{:<14} {:>8.1} {:>7.1} {:>7.1} {:>8.1} {:>8.1} {:>7.1} {:>6} {:>6} {:>6} {:>9.0} {:>7} {:>8.0}",
        id,
        e.load_kwh / 1000.0,
        e.pv_kwh / 1000.0,
        e.wind_kwh / 1000.0,
        e.grid_import_kwh / 1000.0,
        e.grid_export_kwh / 1000.0,
        e.p2p_import_kwh / 1000.0,
        pct(m.renewable_fraction),
        pct(self_consumption(e, community)),
        pct(self_sufficiency(e, community)),
        m.npc_eur / 1000.0,
        m.coe_eur_per_kwh
            .map_or("–".to_owned(), |c| format!("{c:.3}")),
        m.cer_incentive_eur,
    );
}

/// Where the run's outputs went and how long it took.
pub struct RunFooter<'a> {
    pub seed: u64,
    pub out: &'a std::path::Path,
    pub elapsed_s: f64,
}

/// The summary text (ends with a newline).
pub fn summary(result: &SimResult, ledger: Option<&LedgerInfo>, footer: &RunFooter<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>6} {:>6} {:>6} {:>9} {:>7} {:>8}",
        "",
        "demand",
        "PV",
        "wind",
        "grid in",
        "grid out",
        "P2P in",
        "RF",
        "self-",
        "self-",
        "NPC",
        "COE",
        "CER"
    );
    let _ = writeln!(
        out,
        "{:<14} {:>8} {:>7} {:>7} {:>8} {:>8} {:>7} {:>6} {:>6} {:>6} {:>9} {:>7} {:>8}",
        "",
        "MWh",
        "MWh",
        "MWh",
        "MWh",
        "MWh",
        "MWh",
        "%",
        "cons %",
        "suff %",
        "kEUR",
        "EUR/kWh",
        "EUR/yr"
    );
    for p in &result.prosumers {
        row(&mut out, &p.id, &p.energy, &p.economics, false);
    }
    let c = &result.community;
    row(&mut out, "community", &c.energy, &c.economics, true);
    let _ = writeln!(
        out,
        "CER: {:.1} MWh shared, {:.0} EUR/yr (incentive + valorisation) · P2P {:.1} MWh{}",
        c.cer.shared_energy_kwh / 1000.0,
        c.cer.total_eur,
        c.energy.p2p_import_kwh / 1000.0,
        c.market.as_ref().map_or(String::new(), |m| format!(
            " in {} trades at {:.1} EUR/MWh",
            m.p2p_trades, m.p2p_average_price_eur_per_mwh
        )),
    );
    if let Some(l) = ledger {
        let _ = writeln!(
            out,
            "ledger: height {} ({} blocks), {} transactions, state root {}",
            l.ledger_blocks.saturating_sub(1),
            l.ledger_blocks,
            l.ledger_transactions,
            l.ledger_state_root
        );
    }
    let _ = writeln!(
        out,
        "seed {} · {} steps of {} min · wrote {} in {:.2} s",
        footer.seed,
        result.grid.len(),
        result.grid.step_minutes(),
        footer.out.display(),
        footer.elapsed_s
    );
    out
}
