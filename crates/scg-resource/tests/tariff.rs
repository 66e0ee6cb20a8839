//! F1/F2/F3 bands: hours per week, holidays (incl. Easter Monday), daylight saving, 15 minutes.
#![allow(clippy::unwrap_used)]

use scg_model::{ModelYear, TimeGrid, TimeSettings, Weekday};
use scg_resource::tariff::{self, Band};

fn grid(step_minutes: u32, model_year: ModelYear) -> TimeGrid {
    TimeGrid::new(
        &TimeSettings {
            step_minutes,
            model_year,
        },
        "Europe/Rome",
    )
    .unwrap()
}

fn count(bands: &[Band]) -> [usize; 3] {
    let mut n = [0; 3];
    for b in bands {
        n[b.index()] += 1;
    }
    n
}

#[test]
fn easter_dates_match_published_calendars() {
    for (year, date) in [
        (2007, (4, 8)),
        (2019, (4, 21)),
        (2024, (3, 31)),
        (2025, (4, 20)),
        (2000, (4, 23)),
        (2038, (4, 25)),
        (2285, (3, 22)),
    ] {
        assert_eq!(tariff::easter_sunday(year), date, "{year}");
    }
    // Easter Monday 2024 is 1 April (Easter on 31 March).
    assert!(tariff::is_holiday(2024, 4, 1));
    assert!(tariff::is_holiday(2007, 4, 9));
    assert!(!tariff::is_holiday(2007, 4, 10));
    for (m, d) in [
        (1, 1),
        (1, 6),
        (4, 25),
        (5, 1),
        (6, 2),
        (8, 15),
        (11, 1),
        (12, 8),
        (12, 25),
        (12, 26),
    ] {
        assert!(tariff::is_holiday(2025, m, d), "{m}/{d}");
    }
    assert!(!tariff::is_holiday(2025, 12, 24));
}

#[test]
fn rule_by_hour_and_weekday() {
    use Band::*;
    let monday: Vec<Band> = (0..24)
        .map(|h| tariff::band_of(Weekday::Monday, false, h))
        .collect();
    let mut expect = vec![F3; 7];
    expect.push(F2);
    expect.extend([F1; 11]);
    expect.extend([F2; 4]);
    expect.push(F3);
    assert_eq!(monday, expect);
    let saturday: Vec<Band> = (0..24)
        .map(|h| tariff::band_of(Weekday::Saturday, false, h))
        .collect();
    let mut expect = vec![F3; 7];
    expect.extend([F2; 16]);
    expect.push(F3);
    assert_eq!(saturday, expect);
    for h in 0..24 {
        assert_eq!(tariff::band_of(Weekday::Sunday, false, h), F3);
        assert_eq!(tariff::band_of(Weekday::Wednesday, true, h), F3);
    }
}

#[test]
fn holiday_free_winter_week_has_55_41_72_hours() {
    // HOMER year 2007: Monday 15 January .. Sunday 21 January (no holiday, no daylight saving).
    let g = grid(60, ModelYear::Homer);
    let week: Vec<Band> = (14 * 24..21 * 24).map(|s| tariff::band(&g, s)).collect();
    assert_eq!(g.weekday(14), Weekday::Monday);
    assert_eq!(count(&week), [55, 41, 72]);
}

#[test]
fn holidays_are_f3_all_day() {
    let g = grid(60, ModelYear::Homer);
    // 1 January 2007 (Monday) and Easter Monday 9 April 2007 (day 98).
    for day in [0usize, 98] {
        assert!(g.weekday(day) == Weekday::Monday);
        for h in 0..24 {
            assert_eq!(
                tariff::band(&g, day * 24 + h),
                Band::F3,
                "day {day} hour {h}"
            );
        }
    }
    // Tuesday 10 April 2007 is a working day again.
    assert_eq!(tariff::band(&g, 99 * 24 + 10), Band::F1);
}

#[test]
fn summer_steps_follow_the_civil_clock() {
    let g = grid(60, ModelYear::Homer);
    // Wednesday 11 July 2007 (day 191), summer time: civil = standard + 1 h.
    let day = 191;
    assert_eq!(g.weekday(day), Weekday::Wednesday);
    let at = |h: usize| tariff::band(&g, day * 24 + h);
    assert_eq!(at(6), Band::F2); // 07:00 civil
    assert_eq!(at(7), Band::F1); // 08:00 civil
    assert_eq!(at(17), Band::F1); // 18:00 civil
    assert_eq!(at(18), Band::F2); // 19:00 civil
    assert_eq!(at(21), Band::F2); // 22:00 civil
    assert_eq!(at(22), Band::F3); // 23:00 civil
    assert_eq!(at(5), Band::F3); // 06:00 civil
    // Same weekday in winter (Wednesday 17 January): standard = civil.
    let winter = |h: usize| tariff::band(&g, 16 * 24 + h);
    assert_eq!(winter(7), Band::F2);
    assert_eq!(winter(18), Band::F1);
    assert_eq!(winter(19), Band::F2);
    assert_eq!(winter(22), Band::F2);
    assert_eq!(winter(23), Band::F3);
}

#[test]
fn fifteen_minute_grid_agrees_with_hourly_grid() {
    for year in [ModelYear::Homer, ModelYear::Year(2025)] {
        let hourly = tariff::bands(&grid(60, year));
        let quarter = tariff::bands(&grid(15, year));
        assert_eq!(quarter.len(), hourly.len() * 4);
        for (i, b) in quarter.iter().enumerate() {
            assert_eq!(*b, hourly[i / 4], "{year:?} quarter {i}");
        }
        let n = count(&hourly);
        assert_eq!(n.iter().sum::<usize>(), 8760);
        // A year has about 52 weeks of 55/41/72 hours, less the holidays that fall on workdays.
        assert!((2700..2900).contains(&n[0]), "{n:?}");
        assert!((2000..2200).contains(&n[1]), "{n:?}");
    }
}

#[test]
fn year_2025_band_hours_match_a_day_by_day_count() {
    // Independent count: 2025 has 250 working days Mon-Fri that are not holidays
    // (261 weekdays minus 1 Jan, 6 Jan, 21 Apr, 25 Apr, 1 May, 2 Jun, 15 Aug, 8 Dec, 25 Dec,
    // 26 Dec, i.e. 10 holidays on weekdays -> 251) and 51 non-holiday Saturdays (52 minus 1 Nov).
    let n = count(&tariff::bands(&grid(60, ModelYear::Year(2025))));
    assert_eq!(n[0], 251 * 11);
    assert_eq!(n[1], 251 * 5 + 51 * 16);
    assert_eq!(n[2], 8760 - n[0] - n[1]);
}
