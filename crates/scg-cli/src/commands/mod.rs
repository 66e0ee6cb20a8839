//! One module per subcommand.

pub mod scenario;
pub mod simulate;
