//! One module per subcommand.

pub mod chain;
pub mod ev;
pub mod ledger;
pub mod market;
pub mod optimize;
pub mod scenario;
pub mod simulate;
pub mod testnet;
pub mod vpp;
