//! The one error type of `scg-ev`. Bad input is a value naming the line or field and what was
//! expected; it is never a panic and never a silent default.

/// Everything that can go wrong in `scg-ev`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvError {
    /// A session file (ACN CSV) line could not be used.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number in the input text (the header is line 1).
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A configuration value is out of range or inconsistent.
    #[error("invalid {field}: {message}")]
    Config {
        /// The field path, e.g. `ev.commuters` or `--site-limit-kw`.
        field: String,
        /// What was expected.
        message: String,
    },
    /// A policy name that is not known.
    #[error("unknown policy `{0}` (expected one of: {list})", list = crate::policy::POLICY_NAMES.join(", "))]
    UnknownPolicy(String),
    /// The convex solver failed (numerical trouble, not infeasibility: every problem we build
    /// is feasible by construction because energy targets are soft).
    #[error("optimizer failed: {0}")]
    Solver(String),
}
