//! The simulation clock: a 365-day year of equal steps on local standard time.
//!
//! Why standard time: HOMER and TMY weather files use it, so every day has 24 hours and every
//! hourly profile lines up with the clock; civil (daylight-saving) time is a view computed from
//! it by [`TimeGrid::civil_offset_seconds`] for whoever needs the wall clock (tariff bands).

use crate::scenario::{ModelYear, TimeSettings};
use chrono::{Datelike, FixedOffset, NaiveDate, Offset, TimeZone};

/// The year HOMER's calendar follows: 1 January 2007 was a Monday and 2007 has 365 days.
pub const HOMER_MODEL_YEAR: i32 = 2007;

/// Days of a simulated year.
pub const DAYS_PER_YEAR: usize = 365;

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    /// 0 = Monday .. 6 = Sunday.
    pub fn from_index(i: usize) -> Self {
        const ALL: [Weekday; 7] = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        ALL[i % 7]
    }

    /// 0 = Monday .. 6 = Sunday.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// The steps of one simulated year and their calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGrid {
    year: i32,
    step_minutes: u32,
    first_weekday: Weekday,
    standard_offset: FixedOffset,
    time_zone: chrono_tz::Tz,
    /// Month (1..=12) of each day of the year.
    month_of_day: Vec<u8>,
}

impl TimeGrid {
    /// Build the grid. Inputs are assumed validated (see `validate`); errors here are messages.
    pub fn new(settings: &TimeSettings, time_zone: &str) -> Result<Self, String> {
        let year = match settings.model_year {
            ModelYear::Homer => HOMER_MODEL_YEAR,
            ModelYear::Year(y) => y,
        };
        if !matches!(settings.step_minutes, 15 | 60) {
            return Err(format!(
                "step_minutes must be 60 or 15, got {}",
                settings.step_minutes
            ));
        }
        let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)
            .ok_or_else(|| format!("model_year {year} is outside the supported calendar"))?;
        if NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
            return Err(format!(
                "model_year {year} is a leap year; scg simulates 365-day years as HOMER does: \
                 choose a non-leap year or \"homer\""
            ));
        }
        let tz: chrono_tz::Tz = time_zone
            .parse()
            .map_err(|_| format!("unknown IANA time zone {time_zone:?} (e.g. \"Europe/Rome\")"))?;
        let standard_offset = standard_offset(tz, year);
        let month_of_day = (0..DAYS_PER_YEAR as u64)
            .map(|d| {
                let date = jan1 + chrono::Days::new(d);
                date.month() as u8
            })
            .collect();
        Ok(Self {
            year,
            step_minutes: settings.step_minutes,
            first_weekday: Weekday::from_index(jan1.weekday().num_days_from_monday() as usize),
            standard_offset,
            time_zone: tz,
            month_of_day,
        })
    }

    /// The calendar year the grid follows.
    pub fn year(&self) -> i32 {
        self.year
    }
    /// Minutes per step (60 or 15).
    pub fn step_minutes(&self) -> u32 {
        self.step_minutes
    }
    /// Hours per step (1.0 or 0.25).
    pub fn step_hours(&self) -> f64 {
        f64::from(self.step_minutes) / 60.0
    }
    /// Steps in one hour (1 or 4).
    pub fn steps_per_hour(&self) -> usize {
        (60 / self.step_minutes) as usize
    }
    /// Steps in one day.
    pub fn steps_per_day(&self) -> usize {
        24 * self.steps_per_hour()
    }
    /// Steps in the year (8760 or 35040).
    pub fn len(&self) -> usize {
        DAYS_PER_YEAR * self.steps_per_day()
    }
    /// Never true: a year has steps. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Days in the year (365).
    pub fn days(&self) -> usize {
        DAYS_PER_YEAR
    }
    /// Day of the year (0-based) of a step.
    pub fn day_of_step(&self, step: usize) -> usize {
        step / self.steps_per_day()
    }
    /// Hour of the day (0..24) a step falls in, on standard time.
    pub fn hour_of_step(&self, step: usize) -> usize {
        (step % self.steps_per_day()) / self.steps_per_hour()
    }
    /// Month (1..=12) of a day of the year.
    pub fn month_of_day(&self, day: usize) -> u8 {
        self.month_of_day[day % DAYS_PER_YEAR]
    }
    /// Month (1..=12) of a step.
    pub fn month_of_step(&self, step: usize) -> u8 {
        self.month_of_day(self.day_of_step(step))
    }
    /// Weekday of a day of the year.
    pub fn weekday(&self, day: usize) -> Weekday {
        Weekday::from_index(self.first_weekday.index() + day)
    }
    /// The zone's standard UTC offset, in seconds east.
    pub fn standard_offset_seconds(&self) -> i32 {
        self.standard_offset.local_minus_utc()
    }
    /// Civil (wall-clock, daylight-saving aware) UTC offset at the start of a step, in seconds.
    pub fn civil_offset_seconds(&self, step: usize) -> i32 {
        let utc = self.start_naive(step)
            - chrono::Duration::seconds(i64::from(self.standard_offset_seconds()));
        self.time_zone
            .offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc()
    }
    /// Start of a step as an ISO 8601 timestamp with the standard offset,
    /// e.g. `2007-01-01T00:00:00+01:00`.
    pub fn timestamp(&self, step: usize) -> String {
        let local = self.start_naive(step);
        format!(
            "{}{}",
            local.format("%Y-%m-%dT%H:%M:%S"),
            self.standard_offset
        )
    }

    /// Start of a step as seconds since the Unix epoch (UTC).
    pub fn unix_seconds(&self, step: usize) -> i64 {
        self.start_naive(step).and_utc().timestamp() - i64::from(self.standard_offset_seconds())
    }

    fn start_naive(&self, step: usize) -> chrono::NaiveDateTime {
        let jan1 = NaiveDate::from_ymd_opt(self.year, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        jan1 + chrono::Duration::minutes(step as i64 * i64::from(self.step_minutes))
    }
}

/// The zone's standard (winter) offset: the smaller of its January and July offsets.
fn standard_offset(tz: chrono_tz::Tz, year: i32) -> FixedOffset {
    let at = |month| {
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|dt| tz.offset_from_utc_datetime(&dt).fix())
    };
    match (at(1), at(7)) {
        (Some(jan), Some(jul)) => {
            if jan.local_minus_utc() <= jul.local_minus_utc() {
                jan
            } else {
                jul
            }
        }
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => chrono::Utc.fix(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(step_minutes: u32, year: ModelYear) -> TimeGrid {
        TimeGrid::new(
            &TimeSettings {
                step_minutes,
                model_year: year,
            },
            "Europe/Rome",
        )
        .expect("valid grid")
    }

    #[test]
    fn homer_year_starts_on_monday_and_has_8760_hours() {
        let g = grid(60, ModelYear::Homer);
        assert_eq!(g.year(), 2007);
        assert_eq!(g.weekday(0), Weekday::Monday);
        assert_eq!(g.weekday(5), Weekday::Saturday);
        assert_eq!(g.len(), 8760);
        assert_eq!(g.month_of_day(0), 1);
        assert_eq!(g.month_of_day(31), 2);
        assert_eq!(g.month_of_day(364), 12);
    }

    #[test]
    fn quarter_hour_grid_has_35040_steps() {
        let g = grid(15, ModelYear::Year(2025));
        assert_eq!(g.len(), 35040);
        assert_eq!(g.weekday(0), Weekday::Wednesday); // 1 January 2025
        assert_eq!(g.hour_of_step(4 * 13 + 3), 13);
        assert_eq!(g.timestamp(5), "2025-01-01T01:15:00+01:00");
        // 2025-01-01T00:00:00+01:00 is 2024-12-31T23:00:00Z.
        assert_eq!(g.unix_seconds(0), 1_735_686_000);
        assert_eq!(g.unix_seconds(4), 1_735_686_000 + 3600);
    }

    #[test]
    fn timestamps_use_standard_offset_and_civil_offset_knows_dst() {
        let g = grid(60, ModelYear::Year(2025));
        // 1 July 12:00 standard time is 13:00 civil time in Rome.
        let july_noon = (31 + 28 + 31 + 30 + 31 + 30) * 24 + 12;
        assert_eq!(g.timestamp(july_noon), "2025-07-01T12:00:00+01:00");
        assert_eq!(g.civil_offset_seconds(july_noon), 7200);
        assert_eq!(g.civil_offset_seconds(0), 3600);
    }

    #[test]
    fn leap_years_are_refused_with_a_reason() {
        let err = TimeGrid::new(
            &TimeSettings {
                step_minutes: 60,
                model_year: ModelYear::Year(2024),
            },
            "Europe/Rome",
        )
        .expect_err("leap year");
        assert!(err.contains("leap year"), "{err}");
    }
}
