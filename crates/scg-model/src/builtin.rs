//! The built-in scenario: the seed paper's community in Bergamo (Lazaroiu & Roscia), and the
//! names of the built-in load profiles (the tables themselves live in `scg-resource`).

use crate::Scenario;
use crate::error::ModelError;

/// The built-in scenario as commented TOML: what `scg scenario default` prints.
pub const BERGAMO_TOML: &str = include_str!("../scenarios/bergamo.toml");

/// Names accepted by `load.profile` for synthetic loads.
pub const PROFILE_NAMES: [&str; 5] = [
    "midrise_apartment",
    "quick_service_restaurant",
    "small_office",
    "supermarket",
    "secondary_school",
];

/// The built-in Bergamo scenario, parsed and validated.
pub fn bergamo() -> Result<Scenario, ModelError> {
    Scenario::from_toml_str(BERGAMO_TOML, "<built-in bergamo scenario>")
}
