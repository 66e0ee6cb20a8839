//! The bounds scg puts on what a user controls: plausibility ranges of numeric fields, limits on
//! counts, and the memory budget the count limits come from. One table, so that the scenario
//! validation, the component sections and the file parsers agree (docs/scenario.md lists them).
//!
//! Why bounds: a value that is physically absurd is a typo or an attack, never a study — a PV
//! lifetime of 1e-300 years asks for 1e301 replacements, 4e9 swap packs for 32 GB. Rejecting
//! it with the field path beats exhausting the machine. Never does I/O.

/// Default memory budget of one run, bytes (8 GiB): what `scg simulate` may use before it
/// refuses the scenario. The run's estimate (`scg_sim::check::RunEstimate`) is compared to it.
pub const DEFAULT_MEMORY_BUDGET_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Component lifetimes (PV, wind, battery, converter), years: at least 1 (a shorter life would
/// mean replacements more than once a year), at most 100.
pub const LIFETIME_YEARS: (f64, f64) = (1.0, 100.0);

/// Any money amount per unit in a scenario (capital, replacement, O&M), EUR: up to 1e9.
pub const MAX_COST_EUR: f64 = 1.0e9;

/// Prices (flat fields and every value of a price file), EUR/MWh: within ±10,000 (the EU
/// harmonised day-ahead limits are -500 and +4,000; the spare room covers scenario studies).
pub const PRICE_LIMIT_EUR_PER_MWH: f64 = 10_000.0;

/// Capacity of one battery bank, kWh (1 GWh: a grid-scale plant).
pub const MAX_BATTERY_KWH: f64 = 1.0e6;

/// Power of one battery, converter, charge point or grid connection, kW (1 GW).
pub const MAX_POWER_KW: f64 = 1.0e6;

/// A prosumer's load, kW (1 GW), for every value of an imported series and the scaled average
/// (in kWh/day: 24 GWh/day).
pub const MAX_LOAD_KW: f64 = 1.0e6;

/// Wind turbines of one kind at one prosumer. (EV fleet limits live with the fleet:
/// `scg_ev::fleet::MAX_VEHICLES`, `MAX_CHARGE_POINTS`, `MAX_SWAP_PACKS`.)
pub const MAX_TURBINES: u32 = 10_000;

/// Dwellings behind one prosumer's meter (`[prosumers.home] dwellings`): 1 to 100,000 (a
/// district; each dwelling's appliances are scheduled every day).
pub const HOME_DWELLINGS: (u32, u32) = (1, 100_000);

/// How far apart the dwellings' usual start times may be spread
/// (`[prosumers.home] usual_start_spread_minutes`), minutes: at most 12 hours.
pub const HOME_START_SPREAD_MAX_MINUTES: u32 = 720;

/// Calendar years the simulation may follow (`time.model_year`).
pub const MODEL_YEAR: (i32, i32) = (1900, 2100);

/// Ids that name a report column or summary key of the community itself.
pub const RESERVED_IDS: [&str; 3] = ["community", "grid", "total"];

/// At most this many characters of a file's line appear in an error message.
pub const EXCERPT_CHARS: usize = 80;

/// The first [`EXCERPT_CHARS`] characters of `text`, with `…` when cut: what an error may
/// show of a file's content.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// `Some(message)` when `value` is not finite or outside `[min, max]`. The value is shown with
/// `{:?}` so that 1e-300 reads as `1e-300`, not as 300 digits.
pub fn out_of_range(value: f64, min: f64, max: f64) -> Option<String> {
    (!value.is_finite() || value < min || value > max)
        .then(|| format!("must be between {min} and {max}, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_cuts_at_80_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(200);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn ranges_reject_non_finite() {
        assert!(out_of_range(f64::NAN, 0.0, 1.0).is_some());
        assert!(out_of_range(f64::INFINITY, 0.0, f64::MAX).is_some());
        assert!(out_of_range(1e-300, 1.0, 100.0).is_some());
        assert!(out_of_range(25.0, 1.0, 100.0).is_none());
    }
}
