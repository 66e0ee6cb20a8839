//! Resources: the time series a community simulation consumes.
//!
//! - [`load`]: HOMER synthetic loads (monthly profiles + random variability + scaling) and
//!   imported load series (one-column or OpenEI CSV), on the scenario's [`scg_model::TimeGrid`].
//! - [`profiles`]: monthly weekday/weekend 24-hour profiles — the built-in library (the seed
//!   paper's apartment, four US DOE reference buildings) and their derivation from 8760 data.
//! - [`gme`]: GME day-ahead/intraday price files (hourly `MGPPrezzi` XML and the 15-minute
//!   form), zonal prices and PUN.
//!
//! This crate never does I/O: parsers take the text of a file plus its name (for messages), and
//! every random draw comes from a generator the caller passes in.

pub mod gme;
pub mod load;
pub mod profiles;
pub mod solar;
pub mod tariff;
pub mod weather;
pub mod wind;

/// Errors of the resource crate: bad input data, named by source, line and field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// A value or row of an input file is malformed.
    #[error("{source_name}:{line}: {message}")]
    Parse {
        source_name: String,
        /// 1-based line number (0 when the problem is the file as a whole).
        line: usize,
        message: String,
    },
    /// The data is well formed but cannot be used as asked.
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    /// A GME price file is malformed (see [`gme`]).
    #[error(transparent)]
    Gme(#[from] gme::GmeError),
}

impl ResourceError {
    pub(crate) fn parse(source_name: &str, line: usize, message: impl Into<String>) -> Self {
        Self::Parse {
            source_name: source_name.to_owned(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(source_name: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            source_name: source_name.to_owned(),
            message: message.into(),
        }
    }
}
