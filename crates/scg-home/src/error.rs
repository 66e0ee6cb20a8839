//! The one error type of `scg-home`. Every configuration error names the prosumer and the
//! device, what was found and what was expected; nothing is silently skipped.

/// Everything that can go wrong in `scg-home`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// A home section value is out of range or inconsistent.
    #[error("prosumer `{prosumer}`, {device}: {field}: {message}")]
    Config {
        /// The prosumer id.
        prosumer: String,
        /// The device (`appliances[1] (dishwasher)`, `water_heater`, `heat_pump`, `home`).
        device: String,
        /// The field within the device.
        field: String,
        /// What was found and what was expected.
        message: String,
    },
    /// Series handed to the scheduler disagree in length or step.
    #[error("prosumer `{prosumer}`: {message}")]
    Input {
        /// The prosumer id.
        prosumer: String,
        /// What was wrong.
        message: String,
    },
    /// The convex solver failed (numerical trouble).
    #[error("optimiser failed for prosumer `{prosumer}`, {device}: {message}")]
    Solver {
        /// The prosumer id.
        prosumer: String,
        /// The device.
        device: String,
        /// Solver status.
        message: String,
    },
}
