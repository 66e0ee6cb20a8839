//! Names that changed: the old spelling still parses for one release (a serde alias on the
//! owning type) and [`deprecations`] lists where a scenario text uses one, so the CLI can warn.
//! Pure: it reads the text it is given and never prints.

/// `(old, new)` key names, anywhere in a scenario. Keys are unique enough across sections that
/// the name alone identifies the field.
pub const RENAMED_KEYS: &[(&str, &str)] = &[
    ("derating_percent", "derating_pct"),
    (
        "temperature_coefficient_percent_per_c",
        "temperature_coefficient_pct_per_c",
    ),
    ("efficiency_stc_percent", "efficiency_stc_pct"),
    ("ground_reflectance_percent", "ground_reflectance_pct"),
];

/// One warning per deprecated key in `text` (a TOML scenario), with its field path, e.g.
/// `prosumers[0].pv[1].derating_percent is deprecated: use derating_pct (the old name is
/// accepted until the next release)`. Empty when the text is not TOML (parsing reports that).
pub fn deprecations(text: &str) -> Vec<String> {
    let Ok(value) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk_table(&value, "", &mut out);
    out
}

fn walk_table(table: &toml::Table, path: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if let Some((_, new)) = RENAMED_KEYS.iter().find(|(old, _)| old == key) {
            out.push(format!(
                "{here} is deprecated: use {new} (the old name is accepted until the next release)"
            ));
        }
        walk_value(value, &here, out);
    }
}

fn walk_value(value: &toml::Value, path: &str, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => walk_table(t, path, out),
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_value(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_old_names_with_their_paths() {
        let text = "[[prosumers]]\nid = \"a\"\n[[prosumers.pv]]\ncapacity_kwp = 1.0\nderating_percent = 80.0\n";
        assert_eq!(
            deprecations(text),
            vec![
                "prosumers[0].pv[0].derating_percent is deprecated: use derating_pct (the old name is accepted until the next release)"
            ]
        );
        assert!(deprecations("[[prosumers]]\nid = \"a\"\n").is_empty());
    }
}
