//! The scenario with numeric extremes in every numeric field (issue 11): NaN, ±inf, ±1e308,
//! 1e-300, 0 and u32::MAX, one field at a time, through the same `check_run` that `simulate`
//! and `scg scenario check` call. Each case must end in an error or in a run whose estimate is
//! bounded (under 1 GiB); none may panic. The `#[ignore]`d version also simulates every
//! accepted case.
#![allow(clippy::unwrap_used)]

use scg_model::Scenario;
use scg_sim::{CheckOptions, check_run};
use std::path::Path;

/// One step into a TOML document.
#[derive(Debug, Clone)]
enum Key {
    Field(String),
    Index(usize),
}

/// The path of every number in `value`.
fn number_paths(value: &toml::Value, prefix: &mut Vec<Key>, out: &mut Vec<Vec<Key>>) {
    match value {
        toml::Value::Integer(_) | toml::Value::Float(_) => out.push(prefix.clone()),
        toml::Value::Table(t) => {
            for (k, v) in t {
                prefix.push(Key::Field(k.clone()));
                number_paths(v, prefix, out);
                prefix.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Key::Index(i));
                number_paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut toml::Value, path: &[Key]) -> &'a mut toml::Value {
    path.iter().fold(value, |v, k| match k {
        Key::Field(f) => v.get_mut(f.as_str()).unwrap(),
        Key::Index(i) => v.get_mut(*i).unwrap(),
    })
}

fn extremes() -> Vec<toml::Value> {
    vec![
        toml::Value::Float(f64::NAN),
        toml::Value::Float(f64::INFINITY),
        toml::Value::Float(f64::NEG_INFINITY),
        toml::Value::Float(1e308),
        toml::Value::Float(-1e308),
        toml::Value::Float(1e-300),
        toml::Value::Integer(0),
        toml::Value::Float(0.0),
        toml::Value::Integer(i64::from(u32::MAX)),
    ]
}

/// Every single-field extreme variant of the built-in scenario, as TOML text, with a label.
fn variants() -> Vec<(String, String)> {
    let base: toml::Value = toml::from_str(scg_model::builtin::BERGAMO_TOML).unwrap();
    let mut paths = Vec::new();
    number_paths(&base, &mut Vec::new(), &mut paths);
    assert!(
        paths.len() > 50,
        "only {} numeric fields found",
        paths.len()
    );
    let mut out = Vec::new();
    for path in &paths {
        for x in extremes() {
            let mut doc = base.clone();
            *at(&mut doc, path) = x.clone();
            out.push((format!("{path:?} = {x}"), toml::to_string(&doc).unwrap()));
        }
    }
    out
}

fn no_files(p: &Path) -> Result<String, String> {
    Err(format!("{}: no files in this test", p.display()))
}

/// Check one variant: an error, or an accepted run with a bounded estimate.
fn check(label: &str, text: &str) -> Option<(Scenario, scg_sim::CheckedRun)> {
    let scenario = Scenario::parse_toml(text, "extreme.toml").ok()?;
    match check_run(&scenario, &mut no_files, CheckOptions::default()) {
        Err(problems) => {
            assert!(!problems.is_empty(), "{label}: an error without a problem");
            None
        }
        Ok(run) => {
            assert!(
                run.estimate.memory_bytes < 1 << 30,
                "{label}: accepted with an estimate of {} bytes",
                run.estimate.memory_bytes
            );
            Some((scenario, run))
        }
    }
}

#[test]
fn every_numeric_field_at_every_extreme_is_an_error_or_a_bounded_run() {
    let mut accepted = 0;
    let mut refused = 0;
    for (label, text) in variants() {
        match check(&label, &text) {
            Some(_) => accepted += 1,
            None => refused += 1,
        }
    }
    // Most extremes are out of range somewhere; some (0 where 0 is allowed) are fine.
    assert!(refused > accepted, "refused {refused}, accepted {accepted}");
}

#[test]
fn the_issue_cases_are_refused_with_their_field_paths() {
    let cases = [
        (
            "lifetime_years = 25.0 }",
            "lifetime_years = 1e-300 }",
            "prosumers[0].pv[0].costs.lifetime_years",
        ),
        (
            "residents = 12",
            "residents = 100000",
            "prosumers[0].ev.residents",
        ),
        (
            "packs = 10",
            "packs = 4000000000",
            "prosumers[3].ev.swap_station.packs",
        ),
        (
            "hub_height_m = 24.0\ncount = 1",
            "hub_height_m = 24.0\ncount = 4294967295",
            "prosumers[4].wind_turbines[0].count",
        ),
        (
            "model_year = \"homer\"",
            "model_year = -1",
            "time.model_year",
        ),
        (
            "id = \"apartment\"",
            "id = \"community\"",
            "prosumers[0].id",
        ),
    ];
    for (from, to, field) in cases {
        let text = scg_model::builtin::BERGAMO_TOML.replacen(from, to, 1);
        let scenario = Scenario::parse_toml(&text, "s.toml").unwrap();
        let problems = check_run(&scenario, &mut no_files, CheckOptions::default()).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "{field} not in {problems:?}"
        );
    }
}

#[test]
#[ignore = "simulates every accepted extreme case for a year (minutes)"]
fn every_accepted_extreme_case_runs_to_the_end() {
    for (label, text) in variants() {
        if let Some((scenario, run)) = check(&label, &text) {
            scg_sim::simulate(&scenario, &run.assets, &run.inputs, 1, &mut |_, _| {})
                .map(|_| ())
                .unwrap_or_else(|e| eprintln!("{label}: refused by simulate: {e}"));
        }
    }
}
