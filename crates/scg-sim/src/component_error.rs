//! The one error enum of the component models (battery, converter, grid, economics, CER).
//!
//! The engine wraps it in the crate's own error. Every variant names the parameter or input
//! series at fault and what was expected; component code never panics on bad input.

/// A component was given a parameter or an input series it cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// A parameter is outside its valid range (or not finite).
    #[error("{field}: {message}")]
    InvalidParameter {
        /// The parameter's name, with its unit, e.g. `capacity_kwh`.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A per-step input (a power, a duration) was negative, NaN or infinite.
    #[error("{what} must be a finite number >= 0, got {value}")]
    InvalidInput {
        /// The input's name, with its unit.
        what: &'static str,
        /// The value received.
        value: f64,
    },
    /// An input series does not have the expected number of steps.
    #[error("{what} has {got} values, expected {expected}")]
    LengthMismatch {
        /// The series' name.
        what: String,
        /// The number of values expected (usually the number of steps).
        expected: usize,
        /// The number of values received.
        got: usize,
    },
    /// A flow exceeded a physical or contractual limit (e.g. the grid purchase capacity).
    #[error("step {step}: {what} {value} exceeds its limit {limit}")]
    LimitExceeded {
        /// The flow's name, with its unit.
        what: &'static str,
        /// The step index.
        step: usize,
        /// The value received.
        value: f64,
        /// The limit.
        limit: f64,
    },
    /// A value needed for the requested computation is missing from the inputs.
    #[error("missing input: {0}")]
    MissingInput(String),
}

impl ComponentError {
    /// Shorthand for [`ComponentError::InvalidParameter`].
    pub fn parameter(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidParameter {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks that a per-step input is finite and non-negative.
#[inline]
pub(crate) fn check_input(what: &'static str, value: f64) -> Result<f64, ComponentError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ComponentError::InvalidInput { what, value })
    }
}

/// Checks that a series has `expected` values.
pub(crate) fn check_len(what: &str, got: usize, expected: usize) -> Result<(), ComponentError> {
    if got == expected {
        Ok(())
    } else {
        Err(ComponentError::LengthMismatch {
            what: what.to_owned(),
            expected,
            got,
        })
    }
}

/// Collects `(field path, message)` problems for the scenario validators.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) list: Vec<(String, String)>,
}

impl Problems {
    pub(crate) fn fail(&mut self, path: &str, field: &str, message: impl Into<String>) {
        self.list.push((join(path, field), message.into()));
    }

    /// `value` must be finite and in `[min, max]`.
    pub(crate) fn in_range(&mut self, path: &str, field: &str, value: f64, min: f64, max: f64) {
        if !value.is_finite() || value < min || value > max {
            self.fail(
                path,
                field,
                format!("must be between {min} and {max}, got {value}"),
            );
        }
    }

    /// `value` must be finite and `> 0`.
    pub(crate) fn positive(&mut self, path: &str, field: &str, value: f64) {
        if !value.is_finite() || value <= 0.0 {
            self.fail(path, field, format!("must be > 0, got {value}"));
        }
    }

    /// `value` must be finite and `>= 0`.
    pub(crate) fn non_negative(&mut self, path: &str, field: &str, value: f64) {
        if !value.is_finite() || value < 0.0 {
            self.fail(path, field, format!("must be >= 0, got {value}"));
        }
    }
}

/// `a.b`, or `b` when the prefix is empty.
pub(crate) fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}
