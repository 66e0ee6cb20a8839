//! The crate's one error type.

use std::fmt;

/// One problem with one field of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Field path, e.g. `prosumers[2].load.scaled_average_kwh_per_day`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Everything that can be wrong with a scenario.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The text is not valid TOML or does not fit the schema (unknown field, wrong type).
    #[error("{source_name}:{line}:{column}: {path}{message}", path = path_prefix(path))]
    Parse {
        source_name: String,
        line: usize,
        column: usize,
        path: String,
        message: String,
    },
    /// The scenario parsed but some values are out of range or inconsistent.
    #[error("{source_name}: invalid scenario:\n{}", list(errors))]
    Invalid {
        source_name: String,
        errors: Vec<ValidationError>,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    }
}

fn list(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}
