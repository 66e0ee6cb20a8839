//! The city generator (`scg_model::city`) scales members against the built-in profiles'
//! averages, which it states as constants (scg-model cannot read scg-resource's tables): they
//! must be the tables' own averages (months by their days, weekdays 5/7, weekends 2/7).
#![allow(clippy::unwrap_used)]

use scg_model::city::MEMBER_KINDS;
use scg_resource::profiles::{DAYS_IN_MONTH, builtin};

#[test]
fn city_profile_averages_are_the_built_in_tables_averages() {
    for kind in MEMBER_KINDS {
        let p = builtin(kind.profile()).unwrap();
        let mut kwh = 0.0;
        for (m, days) in DAYS_IN_MONTH.iter().enumerate() {
            let month = u8::try_from(m + 1).unwrap();
            let weekday: f64 = p.day(month, false).iter().sum();
            let weekend: f64 = p.day(month, true).iter().sum();
            kwh += *days as f64 * (5.0 / 7.0 * weekday + 2.0 / 7.0 * weekend);
        }
        let per_day = kwh / 365.0;
        let stated = kind.profile_kwh_per_day();
        assert!(
            (per_day - stated).abs() < 0.01,
            "{}: tables {per_day}, city.rs {stated}",
            kind.profile()
        );
    }
}
