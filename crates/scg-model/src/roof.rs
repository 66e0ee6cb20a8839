//! How much PV a roof holds: the one rule shared by the scenario check (`roof_area_m2` bounds a
//! prosumer's PV and its `search.pv_kwp` candidates), the sizing search's edge warnings and the
//! city generator. Pure arithmetic, no I/O.

/// Usable share of a roof for modules (orientation, obstructions, setbacks, row spacing)
/// [our assumption, the usual 30-50 % of roof-potential studies].
pub const ROOF_USABLE_SHARE: f64 = 0.4;

/// Module area per kWp, m² (a 400 Wp module of 1.95 m² at 20.5 % efficiency: 4.9 m²).
pub const MODULE_M2_PER_KWP: f64 = 5.0;

/// Largest roof a prosumer may declare, m² (a very large logistics warehouse).
pub const MAX_ROOF_AREA_M2: f64 = 1_000_000.0;

/// The PV capacity, kWp, that `roof_area_m2` of roof holds: its usable share covered with
/// modules.
pub fn pv_limit_kwp(roof_area_m2: f64) -> f64 {
    roof_area_m2 * ROOF_USABLE_SHARE / MODULE_M2_PER_KWP
}

/// Whether `kwp` fits on the roof. The limit is rounded down to 0.1 kWp by scenario authors
/// (784 m² hold 62.72 kWp; `62.7` fits), so a relative slack of 1e-9 absorbs only float noise.
pub fn fits(kwp: f64, roof_area_m2: f64) -> bool {
    kwp <= pv_limit_kwp(roof_area_m2) * (1.0 + 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_midrise_roof_holds_62_7_kwp() {
        // DOE midrise apartment: 3,135 m² on four floors.
        let roof = 3_135.0 / 4.0;
        assert!((pv_limit_kwp(roof) - 62.7).abs() < 1e-9);
        assert!(fits(62.7, roof));
        assert!(!fits(62.8, roof));
    }
}
