//! One interface: optimize-only settings never block `simulate`, old names keep working with a
//! deprecation warning, `--out` is a directory everywhere.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn scg(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scg-interface-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn default_scenario(dir: &std::path::Path) -> String {
    let o = scg(&["scenario", "default"], dir);
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn removing_the_wind_turbine_keeps_the_scenario_valid_for_simulate() {
    let dir = tempdir("nowind");
    let text = default_scenario(&dir);
    let start = text.find("[[prosumers.wind_turbines]]").unwrap();
    let end = start + text[start..].find("\n[prosumers.ev]").unwrap();
    let edited = format!("{}{}", &text[..start], &text[end + 1..]);
    assert!(
        edited.contains("wind_turbines = [0, 1]"),
        "the search list stays"
    );
    std::fs::write(dir.join("nowind.toml"), edited).unwrap();
    let o = scg(&["scenario", "check", "nowind.toml"], &dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn an_old_field_name_still_works_with_a_deprecation_warning() {
    let dir = tempdir("oldname");
    let text = default_scenario(&dir);
    let at = text.find("[[prosumers.pv]]\n").unwrap() + "[[prosumers.pv]]\n".len();
    let edited = format!("{}derating_percent = 80.0\n{}", &text[..at], &text[at..]);
    std::fs::write(dir.join("old.toml"), edited).unwrap();
    let o = scg(&["scenario", "check", "old.toml"], &dir);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(".pv[0].derating_percent is deprecated: use derating_pct"),
        "{stderr}"
    );
}
