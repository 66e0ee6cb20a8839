//! Progress bars on a terminal, nothing when stderr is not a TTY (pipes, CI, logs).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A bar of `total` units with a message, hidden unless stderr is a terminal.
pub fn bar(total: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// A bar over every phase of a run (`total` units: one per prosumer prepared, the year, the
/// ledger's settlement and storage, the outputs), the current phase as its message, ticking
/// on its own so a long phase without steps (storing the ledger) still shows it is alive.
/// Hidden unless stderr is a terminal, like [`bar`].
pub fn phases(total: u64) -> ProgressBar {
    let bar = bar(total, "preparing");
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:>18} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
