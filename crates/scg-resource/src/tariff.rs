//! Italian retail time-of-use bands F1/F2/F3 (ARERA 181/06) on the simulation grid.
//!
//! The bands follow the wall clock (civil time, daylight saving included), while the simulation
//! runs on local standard time; each step is placed on the civil clock with
//! [`TimeGrid::civil_offset_seconds`] before the rule is applied
//! (reference: markets-vpp-climate.md §3.2):
//!
//! - **F1**: Monday–Friday 08:00–19:00, not on national holidays;
//! - **F2**: Monday–Friday 07:00–08:00 and 19:00–23:00, Saturday 07:00–23:00, not on holidays;
//! - **F3**: Monday–Saturday 00:00–07:00 and 23:00–24:00, Sundays and national holidays all day.
//!
//! National holidays: 1 and 6 January, Easter Monday, 25 April, 1 May, 2 June, 15 August,
//! 1 November, 8, 25 and 26 December. Easter is computed with the Gregorian computus
//! (Meeus/Jones/Butcher), so any model year works; HOMER's model year 2007 has Easter Monday on
//! 9 April.
//!
//! A step is banded by its start: every band boundary is on the hour and civil offsets are whole
//! hours, so a 60- or 15-minute step never straddles two bands.
//!
//! Never does I/O.

use scg_model::{TimeGrid, Weekday};

/// A time-of-use band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Band {
    /// Peak: weekday working hours.
    F1,
    /// Shoulder: weekday mornings and evenings, Saturday daytime.
    F2,
    /// Off-peak: nights, Sundays and holidays.
    F3,
}

impl Band {
    /// `"F1"`, `"F2"` or `"F3"`.
    pub fn name(self) -> &'static str {
        match self {
            Band::F1 => "F1",
            Band::F2 => "F2",
            Band::F3 => "F3",
        }
    }

    /// 0 for F1, 1 for F2, 2 for F3 (an index into per-band price arrays).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The band of a civil hour (0..24) on a day with this weekday and holiday status.
pub fn band_of(weekday: Weekday, holiday: bool, civil_hour: u32) -> Band {
    if holiday || weekday == Weekday::Sunday {
        return Band::F3;
    }
    match civil_hour {
        0..7 | 23.. => Band::F3,
        _ if weekday == Weekday::Saturday => Band::F2,
        7 | 19..23 => Band::F2,
        _ => Band::F1,
    }
}

/// The band of one step of the grid (its start, on civil time).
pub fn band(grid: &TimeGrid, step: usize) -> Band {
    let (day_offset, minute_of_day) = civil_minute(grid, step);
    let day = grid.day_of_step(step) as i64 + day_offset;
    let (year, day_of_year) = wrap_day(grid.year(), day);
    let (month, day_of_month) = month_day(year, day_of_year);
    // `TimeGrid::weekday` counts modulo 7; shift by whole weeks so the index is never negative.
    let weekday = grid.weekday((day + 7 * 53) as usize);
    band_of(
        weekday,
        is_holiday(year, month, day_of_month),
        (minute_of_day / 60) as u32,
    )
}

/// The band of every step of the grid.
pub fn bands(grid: &TimeGrid) -> Vec<Band> {
    (0..grid.len()).map(|step| band(grid, step)).collect()
}

/// Whether a date is an Italian national holiday (fixed dates and Easter Monday).
pub fn is_holiday(year: i32, month: u32, day: u32) -> bool {
    const FIXED: [(u32, u32); 10] = [
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
    ];
    if FIXED.contains(&(month, day)) {
        return true;
    }
    let (easter_month, easter_day) = easter_sunday(year);
    // Easter Monday: Easter is between 22 March and 25 April, so the day after never leaves
    // the month except 31 March -> 1 April.
    let (m, d) = if easter_month == 3 && easter_day == 31 {
        (4, 1)
    } else {
        (easter_month, easter_day + 1)
    };
    (month, day) == (m, d)
}

/// Gregorian Easter Sunday as (month, day) — the anonymous Gregorian algorithm
/// (Meeus, *Astronomical Algorithms*, ch. 8).
pub fn easter_sunday(year: i32) -> (u32, u32) {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    (month as u32, day as u32)
}

/// (days to add to the standard-time day, civil minute of the day) of a step's start.
fn civil_minute(grid: &TimeGrid, step: usize) -> (i64, i64) {
    let shift_min =
        i64::from(grid.civil_offset_seconds(step) - grid.standard_offset_seconds()) / 60;
    let standard_min = (step % grid.steps_per_day()) as i64 * i64::from(grid.step_minutes());
    let civil = standard_min + shift_min;
    (civil.div_euclid(1440), civil.rem_euclid(1440))
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i32) -> i64 {
    if is_leap(year) { 366 } else { 365 }
}

/// A 0-based day counted from 1 January of `year` (possibly outside the year) as (year, day).
fn wrap_day(mut year: i32, mut day: i64) -> (i32, i64) {
    while day < 0 {
        year -= 1;
        day += days_in_year(year);
    }
    while day >= days_in_year(year) {
        day -= days_in_year(year);
        year += 1;
    }
    (year, day)
}

/// (month 1..=12, day 1..=31) of a 0-based day of the year.
fn month_day(year: i32, day_of_year: i64) -> (u32, u32) {
    let lengths = [
        31,
        if is_leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut rest = day_of_year;
    for (i, len) in lengths.into_iter().enumerate() {
        if rest < len {
            return (i as u32 + 1, rest as u32 + 1);
        }
        rest -= len;
    }
    (12, 31)
}
