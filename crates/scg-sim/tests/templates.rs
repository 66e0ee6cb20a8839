//! `installed = false` sections: the battery and the turbine are not built (no energy, no cost)
//! but stay in `scg optimize`'s search space; a wrong type for the flag names the field.
#![allow(clippy::unwrap_used)]

use scg_sim::Assets;

#[test]
fn not_installed_sections_are_search_templates_only() {
    let s = scg_model::builtin::bergamo().unwrap();
    let a = Assets::from_scenario(&s).unwrap();
    let apartment = &a.prosumers[0];
    assert!(apartment.battery.is_none() && apartment.converter.is_none());
    let (b, c) = apartment.templates.battery.as_ref().unwrap();
    assert!(b.capacity_kwh > 0.0 && c.capacity_kw > 0.0);
    let school = &a.prosumers[4];
    assert!(school.turbines.is_empty());
    assert!(school.templates.turbine.is_some());
    // Built, the same sections are the installed components.
    let built = scg_model::builtin::BERGAMO_TOML.replace("installed = false\n", "");
    let s2 = scg_model::Scenario::from_toml_str(&built, "built.toml").unwrap();
    let a2 = Assets::from_scenario(&s2).unwrap();
    assert_eq!(a2.prosumers[0].battery.as_ref(), Some(b));
    assert_eq!(a2.prosumers[4].turbines.len(), 1);
    assert!(a2.prosumers[4].templates.turbine.is_none());
}

#[test]
fn installed_must_be_a_boolean() {
    let text = scg_model::builtin::BERGAMO_TOML.replacen("installed = false", "installed = 0", 1);
    let s = scg_model::Scenario::from_toml_str(&text, "x.toml").unwrap();
    let errors = Assets::from_scenario(&s).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.path == "prosumers[0].battery.installed"
                && e.message.contains("must be true or false")),
        "{errors:?}"
    );
}
