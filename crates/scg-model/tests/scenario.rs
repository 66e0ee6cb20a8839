//! Scenario parsing and validation: messages name the file, the field path and what was expected.

use proptest::prelude::*;
use scg_model::{Load, ModelError, ModelYear, Scenario, builtin};

fn err_text(text: &str) -> String {
    match Scenario::from_toml_str(text, "my.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn builtin_scenario_is_valid_and_has_the_five_prosumers() {
    let s = builtin::bergamo().expect("built-in scenario is valid");
    let ids: Vec<_> = s.prosumers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["apartment", "restaurant", "office", "supermarket", "school"]
    );
    assert_eq!(s.time.model_year, ModelYear::Homer);
    let Load::Synthetic(apartment) = &s.prosumers[0].load else {
        panic!("apartment load is synthetic")
    };
    assert_eq!(apartment.scaled_average_kwh_per_day, Some(614.12));
    assert_eq!(apartment.day_to_day_variability_pct, 7.946);
}

#[test]
fn round_trips_through_toml() {
    let s = builtin::bergamo().expect("valid");
    let again = Scenario::from_toml_str(&s.to_toml_string(), "again").expect("round trip");
    assert_eq!(s, again);
}

#[test]
fn negative_scaled_average_names_the_field_path() {
    let text = builtin::BERGAMO_TOML.replace(
        "profile = \"supermarket\"",
        "profile = \"supermarket\"\nscaled_average_kwh_per_day = -3",
    );
    let e = err_text(&text);
    assert!(
        e.contains("my.toml")
            && e.contains("prosumers[3].load.scaled_average_kwh_per_day: must be > 0, got -3"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_errors_with_line_and_path() {
    let text =
        builtin::BERGAMO_TOML.replace("elevation_m = 249.0", "elevation_m = 249.0\nelevatoin = 3");
    let e = err_text(&text);
    assert!(e.contains("my.toml:"), "{e}");
    assert!(e.contains("location"), "{e}");
    assert!(e.contains("unknown field `elevatoin`"), "{e}");
    let line = text
        .lines()
        .position(|l| l.starts_with("elevatoin"))
        .expect("line")
        + 1;
    assert!(e.contains(&format!("my.toml:{line}:")), "{e}");
}

#[test]
fn unknown_field_inside_a_load_is_an_error() {
    let text = builtin::BERGAMO_TOML.replace(
        "profile = \"small_office\"",
        "profile = \"small_office\"\npeak_kw = 4",
    );
    let e = err_text(&text);
    assert!(e.contains("peak_kw"), "{e}");
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = builtin::BERGAMO_TOML
        .replace("latitude_deg = 45.698", "latitude_deg = 145.0")
        .replace("step_minutes = 60", "step_minutes = 30")
        .replace("id = \"office\"", "id = \"apartment\"")
        .replace(
            "profile = \"secondary_school\"",
            "profile = \"secondary_scool\"",
        );
    let e = err_text(&text);
    for needle in [
        "location.latitude_deg: must be between -90 and 90, got 145",
        "time.step_minutes: must be 60 or 15, got 30",
        "prosumers[2].id: duplicate id \"apartment\"",
        "prosumers[4].load.profile: unknown built-in profile \"secondary_scool",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
    }
}

#[test]
fn leap_year_and_bad_zone_are_explained() {
    let text = builtin::BERGAMO_TOML
        .replace("model_year = \"homer\"", "model_year = 2024")
        .replace(
            "time_zone = \"Europe/Rome\"",
            "time_zone = \"Europe/Bergamo\"",
        );
    let e = err_text(&text);
    assert!(
        e.contains("time.model_year: model_year 2024 is a leap year"),
        "{e}"
    );
    assert!(
        e.contains("location.time_zone: must be an IANA time zone"),
        "{e}"
    );
}

#[test]
fn model_year_rejects_other_strings() {
    let text = builtin::BERGAMO_TOML.replace("model_year = \"homer\"", "model_year = \"2025\"");
    let e = err_text(&text);
    assert!(e.contains("\"homer\" or a year"), "{e}");
}

#[test]
fn inline_profiles_are_checked_for_shape() {
    let text = r#"
schema_version = 1
name = "tiny"
[location]
latitude_deg = 45.0
longitude_deg = 9.0
elevation_m = 100.0
time_zone = "Europe/Rome"
[time]
step_minutes = 60
[[prosumers]]
id = "home"
[prosumers.load]
type = "synthetic"
profile_kw = { weekday = [[1.0, 2.0]] }
"#;
    let e = err_text(text);
    assert!(
        e.contains("prosumers[0].load.profile_kw.weekday: must have 12 rows"),
        "{e}"
    );
    assert!(
        e.contains("prosumers[0].load.profile_kw.weekday[0]: must have 24 hourly values, got 2"),
        "{e}"
    );
}

#[test]
fn wrong_type_is_a_parse_error_with_path() {
    let text = builtin::BERGAMO_TOML.replace("step_minutes = 60", "step_minutes = \"sixty\"");
    match Scenario::from_toml_str(&text, "my.toml") {
        Err(ModelError::Parse { path, line, .. }) => {
            assert_eq!(path, "time.step_minutes");
            assert!(line > 0);
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = Scenario::from_toml_str(&text, "fuzz.toml");
    }

    /// The built-in scenario with a random byte range deleted or replaced never panics.
    #[test]
    fn mutated_scenarios_never_panic(
        start in 0usize..4000,
        len in 0usize..40,
        insert in "[ -~\n]{0,12}",
    ) {
        let base = builtin::BERGAMO_TOML;
        let mut bytes = base.as_bytes().to_vec();
        let s = start.min(bytes.len());
        let e = (s + len).min(bytes.len());
        bytes.splice(s..e, insert.bytes());
        if let Ok(text) = String::from_utf8(bytes) {
            let _ = Scenario::from_toml_str(&text, "fuzz.toml");
        }
    }
}

#[test]
fn pv_beyond_the_roof_names_the_field_and_the_limit() {
    // The restaurant's 232 m² roof holds 18.56 kWp.
    let text = builtin::BERGAMO_TOML
        .replace("capacity_kwp = 18.5", "capacity_kwp = 19")
        .replace("pv_kwp = [0.0, 9.0, 18.5]", "pv_kwp = [0.0, 9.0, 30.0]");
    let e = err_text(&text);
    assert!(
        e.contains(
            "prosumers[1].pv: 19 kWp of PV does not fit on the roof: 232 m² of roof hold 18.6 kWp"
        ) && e.contains("prosumers[1].search.pv_kwp[2]: 30 kWp does not fit on the roof"),
        "{e}"
    );
    let e = err_text(&builtin::BERGAMO_TOML.replace("roof_area_m2 = 232.0", "roof_area_m2 = -1.0"));
    assert!(
        e.contains("prosumers[1].roof_area_m2: must be > 0 and at most 1000000 m², got -1.0"),
        "{e}"
    );
}
