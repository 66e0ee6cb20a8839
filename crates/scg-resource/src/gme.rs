//! GME day-ahead (MGP) and intraday price files: the `yyyyMMddMGPPrezzi.xml` form.
//!
//! The file is a Microsoft ADO.NET DataSet: `<NewDataSet>` holding an inline XML schema
//! (`<xs:schema>`, skipped: every field is declared `xs:string`, so it says nothing the rows do
//! not) and one row element per price interval:
//! - **hourly** `<Prezzi>` rows: `Data` (YYYYMMDD), `Mercato` (MGP, MI-A1, …), `Ora` (1..24;
//!   23 on the spring daylight-saving day, 25 in autumn; `Ora 1` = 00:00–01:00 local time),
//!   `PUN` and one element per zone (`NORD`, `CNOR`, …, `NAT`, foreign/virtual nodes);
//! - **quarter-hourly** `<Prezzi15>` rows (GME since 1 October 2025): the same plus
//!   `Granularity` = `PT15` and `Periodo` (1..96; 92/100 on daylight-saving days).
//!
//! Prices are EUR/MWh with a **decimal comma** (`104,510000`). A value with a comma may also use
//! `.` as a thousands separator (`1.234,5`); a value without a comma is read as a plain number.
//! An empty element (`<SARD/>`) means "no price for that zone in that interval".
//!
//! Checks: well-formed XML; known row elements; `Data`, `Mercato`, `Ora`/`Periodo` present and
//! valid; no duplicate or missing periods; the number of periods matches the day's length in
//! Italy (EU daylight-saving rule: 23 hours on the last Sunday of March, 25 on the last Sunday
//! of October). Errors name the file, the line and the element. Never does I/O: it parses the
//! text it is given.

use std::collections::BTreeMap;

/// Errors of the GME importer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GmeError {
    /// The text is not well-formed XML.
    #[error("{source_name}: not well-formed XML: {message}")]
    Xml {
        source_name: String,
        message: String,
    },
    /// An element is missing, unexpected or has a bad value.
    #[error("{source_name}:{line}: <{element}>: {message}")]
    Element {
        source_name: String,
        /// 1-based line of the element.
        line: u32,
        element: String,
        message: String,
    },
    /// The rows are individually fine but do not form a valid day.
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

/// A calendar date as GME writes it (YYYYMMDD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GmeDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl GmeDate {
    /// Parse `YYYYMMDD` (or `YYYY-MM-DD`), checking the day exists.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: String = text.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = digits[0..4].parse().ok()?;
        let month: u32 = digits[4..6].parse().ok()?;
        let day: u32 = digits[6..8].parse().ok()?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self { year, month, day })
    }

    /// Day of the week, 0 = Monday .. 6 = Sunday (Sakamoto's method, proleptic Gregorian).
    pub fn weekday(self) -> u32 {
        const T: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
        let y = if self.month < 3 {
            self.year - 1
        } else {
            self.year
        };
        let sunday_first =
            (y + y / 4 - y / 100 + y / 400 + T[self.month as usize - 1] + self.day as i32) % 7;
        ((sunday_first + 6) % 7) as u32
    }

    /// Hours of this day in Italy (Europe/Rome under the EU rule in force since 1996):
    /// 23 on the last Sunday of March, 25 on the last Sunday of October, else 24.
    pub fn hours_in_italy(self) -> u32 {
        let last_sunday = |month: u32| {
            let last = GmeDate {
                year: self.year,
                month,
                day: 31,
            };
            31 - (last.weekday() + 1) % 7
        };
        match self.month {
            3 if self.day == last_sunday(3) => 23,
            10 if self.day == last_sunday(10) => 25,
            _ => 24,
        }
    }
}

impl std::fmt::Display for GmeDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// The length of a price interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Granularity {
    /// One hour (`<Prezzi>`/`Ora`).
    Hourly,
    /// Fifteen minutes (`<Prezzi15>`/`Periodo`, `PT15`).
    QuarterHourly,
}

impl Granularity {
    /// Intervals per hour.
    pub fn per_hour(self) -> u32 {
        match self {
            Granularity::Hourly => 1,
            Granularity::QuarterHourly => 4,
        }
    }
}

/// The prices of one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct GmePeriod {
    /// 1-based `Ora` or `Periodo`.
    pub period: u32,
    /// The national single price (PUN, or PUN Index GME), EUR/MWh, when published.
    pub pun_eur_per_mwh: Option<f64>,
    /// Zonal prices, EUR/MWh, by GME zone code (`NORD`, `CNOR`, …; `NAT` included).
    pub zones_eur_per_mwh: BTreeMap<String, f64>,
}

/// One day of one market at one granularity, periods 1..=n in order.
#[derive(Debug, Clone, PartialEq)]
pub struct GmeSeries {
    pub date: GmeDate,
    /// `Mercato` (e.g. `MGP`).
    pub market: String,
    pub granularity: Granularity,
    pub periods: Vec<GmePeriod>,
}

impl GmeSeries {
    /// The prices of `zone` (a zone code or `PUN`) for every period, EUR/MWh; an error names
    /// the first period without a price.
    pub fn prices(&self, zone: &str) -> Result<Vec<f64>, GmeError> {
        self.periods
            .iter()
            .map(|p| {
                let v = if zone.eq_ignore_ascii_case("PUN") {
                    p.pun_eur_per_mwh
                } else {
                    p.zones_eur_per_mwh.get(zone).copied()
                };
                v.ok_or_else(|| GmeError::Invalid {
                    source_name: format!("{} {} {:?}", self.market, self.date, self.granularity),
                    message: format!("no {zone} price in period {}", p.period),
                })
            })
            .collect()
    }

    /// Prices of `zone` on quarter hours: as published for 15-minute series, each hour's
    /// price repeated four times for hourly series.
    pub fn quarter_hour_prices(&self, zone: &str) -> Result<Vec<f64>, GmeError> {
        let prices = self.prices(zone)?;
        Ok(match self.granularity {
            Granularity::QuarterHourly => prices,
            Granularity::Hourly => prices.iter().flat_map(|&p| [p; 4]).collect(),
        })
    }
}

/// Everything in one price file: one series per (date, market, granularity), sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct GmePrices {
    pub series: Vec<GmeSeries>,
}

impl GmePrices {
    /// The finest series of `date`, if the file holds that day.
    pub fn finest_for(&self, date: GmeDate) -> Option<&GmeSeries> {
        self.series
            .iter()
            .filter(|s| s.date == date)
            .max_by_key(|s| s.granularity)
    }

    /// The dates the file holds, in order.
    pub fn dates(&self) -> Vec<GmeDate> {
        let mut d: Vec<GmeDate> = self.series.iter().map(|s| s.date).collect();
        d.dedup();
        d
    }

    /// The finest series of the first day in the file: quarter-hourly when present.
    pub fn finest(&self) -> Option<&GmeSeries> {
        let first = self.series.first()?.date;
        self.series
            .iter()
            .filter(|s| s.date == first)
            .max_by_key(|s| s.granularity)
    }
}

const XS_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema";

/// The XML parser's message with every quoted part (a tag or attribute name taken from the
/// file) cut to the excerpt length, so that an error never echoes a long run of the file.
fn clip_quoted(message: &str) -> String {
    message
        .split('\'')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                scg_model::bounds::excerpt(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("'")
}

/// Parse a GME `…MGPPrezzi.xml` (or MI) price file. `source_name` names the file in errors.
pub fn parse_prices(text: &str, source_name: &str) -> Result<GmePrices, GmeError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| GmeError::Xml {
        source_name: source_name.to_owned(),
        message: clip_quoted(&e.to_string()),
    })?;
    let line_of = |node: roxmltree::Node<'_, '_>| doc.text_pos_at(node.range().start).row;
    let element_error = |node: roxmltree::Node<'_, '_>, message: String| GmeError::Element {
        source_name: source_name.to_owned(),
        line: line_of(node),
        element: scg_model::bounds::excerpt(node.tag_name().name()),
        message,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "NewDataSet" {
        return Err(element_error(
            root,
            "expected the root element <NewDataSet> of a GME price file".into(),
        ));
    }
    type Key = (GmeDate, String, Granularity);
    let mut rows: BTreeMap<Key, BTreeMap<u32, GmePeriod>> = BTreeMap::new();
    for row in root.children().filter(|n| n.is_element()) {
        let name = row.tag_name().name();
        if name == "schema" && row.tag_name().namespace() == Some(XS_NAMESPACE) {
            continue;
        }
        let granularity = match name {
            "Prezzi" => Granularity::Hourly,
            "Prezzi15" => Granularity::QuarterHourly,
            _ => {
                return Err(element_error(
                    row,
                    "unexpected element: a GME price file holds <Prezzi> (hourly) or \
                     <Prezzi15> (15-minute) rows"
                        .into(),
                ));
            }
        };
        let mut date = None;
        let mut market = None;
        let mut period = None;
        let mut pun = None;
        let mut zones = BTreeMap::new();
        for field in row.children().filter(|n| n.is_element()) {
            let text = field.text().unwrap_or("").trim();
            let bad = |message: String| element_error(field, message);
            match field.tag_name().name() {
                "Data" => {
                    date = Some(GmeDate::parse(text).ok_or_else(|| {
                        bad(format!(
                            "expected a date YYYYMMDD, got {:?}",
                            scg_model::bounds::excerpt(text)
                        ))
                    })?);
                }
                "Mercato" => market = Some(text.to_owned()),
                "Ora" | "Periodo" => {
                    let expected_tag = match granularity {
                        Granularity::Hourly => "Ora",
                        Granularity::QuarterHourly => "Periodo",
                    };
                    if field.tag_name().name() != expected_tag {
                        return Err(bad(format!(
                            "a <{name}> row numbers its interval with <{expected_tag}>"
                        )));
                    }
                    let p: u32 = text.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        bad(format!(
                            "expected a period number >= 1, got {:?}",
                            scg_model::bounds::excerpt(text)
                        ))
                    })?;
                    period = Some(p);
                }
                "Granularity" => {
                    let ok = match granularity {
                        Granularity::QuarterHourly => text == "PT15",
                        Granularity::Hourly => text == "PT60" || text.is_empty(),
                    };
                    if !ok {
                        return Err(bad(format!(
                            "granularity {text:?} does not match a <{name}> row"
                        )));
                    }
                }
                zone => {
                    if text.is_empty() {
                        continue;
                    }
                    let v = parse_decimal(text).ok_or_else(|| {
                        bad(format!(
                            "expected a price in EUR/MWh with a decimal comma (e.g. 104,51), got {text:?}"
                        ))
                    })?;
                    if zone == "PUN" {
                        pun = Some(v);
                    } else {
                        zones.insert(zone.to_owned(), v);
                    }
                }
            }
        }
        let missing = |what: &str| element_error(row, format!("missing <{what}>"));
        let date = date.ok_or_else(|| missing("Data"))?;
        let market = market.ok_or_else(|| missing("Mercato"))?;
        let period = period.ok_or_else(|| {
            missing(match granularity {
                Granularity::Hourly => "Ora",
                Granularity::QuarterHourly => "Periodo",
            })
        })?;
        let slot = rows.entry((date, market, granularity)).or_default();
        if slot.contains_key(&period) {
            return Err(element_error(
                row,
                format!("period {period} of {date} appears twice"),
            ));
        }
        slot.insert(
            period,
            GmePeriod {
                period,
                pun_eur_per_mwh: pun,
                zones_eur_per_mwh: zones,
            },
        );
    }
    if rows.is_empty() {
        return Err(GmeError::Invalid {
            source_name: source_name.to_owned(),
            message: "no <Prezzi> or <Prezzi15> rows".into(),
        });
    }
    let mut series = Vec::with_capacity(rows.len());
    for ((date, market, granularity), periods) in rows {
        let expected = date.hours_in_italy() * granularity.per_hour();
        let n = periods.len() as u32;
        let contiguous = periods.keys().copied().eq(1..=n);
        if n != expected || !contiguous {
            let last = periods.keys().next_back().copied().unwrap_or(0);
            return Err(GmeError::Invalid {
                source_name: source_name.to_owned(),
                message: format!(
                    "{market} {date} ({granularity:?}): expected periods 1..={expected} \
                     ({} hours in Italy that day), found {n} rows numbered up to {last}",
                    date.hours_in_italy()
                ),
            });
        }
        series.push(GmeSeries {
            date,
            market,
            granularity,
            periods: periods.into_values().collect(),
        });
    }
    Ok(GmePrices { series })
}

/// `104,510000` → 104.51; `1.234,5` → 1234.5; `-3,2` → -3.2; `12.5` → 12.5.
fn parse_decimal(text: &str) -> Option<f64> {
    let normalised = if text.contains(',') {
        text.replace('.', "").replace(',', ".")
    } else {
        text.to_owned()
    };
    normalised.parse::<f64>().ok().filter(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------------
// A year of zonal prices on the simulation's clock.

/// Day of year (1-based) of a date.
fn day_of_year(d: GmeDate) -> u32 {
    (1..d.month).map(|m| days_in_month(d.year, m)).sum::<u32>() + d.day
}

/// The date of 0-based day `index` of `year` (None past the year's end).
fn date_of_index(year: i32, index: u32) -> Option<GmeDate> {
    let mut left = index;
    for month in 1..=12 {
        let n = days_in_month(year, month);
        if left < n {
            return Some(GmeDate {
                year,
                month,
                day: left + 1,
            });
        }
        left -= n;
    }
    None
}

/// 1-based day of year of the last Sunday of `month`.
fn last_sunday_doy(year: i32, month: u32) -> u32 {
    let last = GmeDate {
        year,
        month,
        day: days_in_month(year, month),
    };
    day_of_year(last) - (last.weekday() + 1) % 7
}

/// The GME day and the 0-based elapsed hour of that day (GME's `Ora` − 1) of standard hour `h`
/// (0-based, Italian standard time UTC+1) of `year`. EU rule: summer time (UTC+2) from the last
/// Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC; GME counts each day's
/// intervals in elapsed time from local midnight (23 on the spring day, 25 in autumn).
pub fn gme_hour_of_standard_hour(year: i32, h: u32) -> Option<(GmeDate, u32)> {
    let spring = last_sunday_doy(year, 3);
    let autumn = last_sunday_doy(year, 10);
    // Hours since 1 January 00:00 UTC.
    let utc = i64::from(h) - 1;
    let switch = |doy: u32| i64::from(doy - 1) * 24 + 1;
    let summer = utc >= switch(spring) && utc < switch(autumn);
    let offset = 1 + i64::from(summer);
    let local = utc + offset;
    let civil_index = u32::try_from(local.div_euclid(24)).ok()?;
    let clock = local.rem_euclid(24);
    let date = date_of_index(year, civil_index)?;
    let doy = civil_index + 1;
    let midnight_offset = 1 + i64::from(doy > spring && doy <= autumn);
    let elapsed = u32::try_from(clock + midnight_offset - offset).ok()?;
    Some((date, elapsed))
}

/// A GME price file's name and its parsed prices.
pub type NamedPrices = (String, GmePrices);

/// Hourly MGP prices of `zone` for the standard-time hours of the first 365 days of `year`
/// (8,760 values, EUR/MWh): [`zonal_prices_on_standard_steps`] with one step per hour.
pub fn zonal_prices_on_standard_hours(
    files: &[NamedPrices],
    zone: &str,
    year: i32,
) -> Result<Vec<f64>, GmeError> {
    zonal_prices_on_standard_steps(files, zone, year, 1)
}

/// MGP prices of `zone` (a zone code or `PUN`) for every standard-time step of the first 365
/// days of `year` at `steps_per_hour` steps per hour (1 or 4: 8,760 or 35,040 values, EUR/MWh)
/// from several GME files, as `scg simulate` uses them. Each standard hour is placed in the
/// GME day and elapsed hour it falls in by [`gme_hour_of_standard_hour`] (the clock shifts
/// are whole hours, so the four quarters of a standard hour are the four quarters of that
/// elapsed hour, and 23/25-hour days give 92/100 quarters). Then, per day:
/// - the day's resolution equals the step (hourly file, 60-minute steps; 15-minute file,
///   15-minute steps): the prices are used as published, one per step;
/// - a 15-minute day on 60-minute steps: each hour takes the mean of its four quarters. With
///   one power level per hour (all an hourly simulation has) the energy bought at the four
///   quarter prices costs exactly that mean, so the mean is the right hourly price, not an
///   approximation;
/// - an hourly day on 15-minute steps: the hour's price holds for its four quarters (as GME's
///   hourly market settled them).
///
/// A day held by files at both resolutions uses the finer one. Errors: a step count other than
/// 1 or 4, a day held twice at the same granularity (both files named), and the days of the
/// year that no file holds (counted, the first ones named).
pub fn zonal_prices_on_standard_steps(
    files: &[NamedPrices],
    zone: &str,
    year: i32,
    steps_per_hour: u32,
) -> Result<Vec<f64>, GmeError> {
    let all_names = files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let invalid = |message: String| GmeError::Invalid {
        source_name: all_names.clone(),
        message,
    };
    if steps_per_hour != 1 && steps_per_hour != 4 {
        return Err(invalid(format!(
            "{steps_per_hour} steps per hour: expected 1 (60-minute steps) or 4 (15-minute steps)"
        )));
    }
    // date -> (granularity, file, series)
    let mut days: BTreeMap<GmeDate, (Granularity, &str, &GmeSeries)> = BTreeMap::new();
    for (name, prices) in files {
        for s in prices.series.iter().filter(|s| s.market == "MGP") {
            match days.get(&s.date) {
                Some((g, other, _)) if *g == s.granularity => {
                    return Err(invalid(format!(
                        "{} ({:?}) is held twice: in {other} and in {name}",
                        s.date, s.granularity
                    )));
                }
                Some((g, _, _)) if *g > s.granularity => {}
                _ => {
                    days.insert(s.date, (s.granularity, name.as_str(), s));
                }
            }
        }
    }
    let missing: Vec<GmeDate> = (0..365)
        .filter_map(|i| date_of_index(year, i))
        .filter(|d| !days.contains_key(d))
        .collect();
    if !missing.is_empty() {
        let first: Vec<String> = missing.iter().take(5).map(|d| d.to_string()).collect();
        return Err(invalid(format!(
            "{} of the 365 days of {year} have no MGP prices (first: {}); give files that \
             together hold every day of the year",
            missing.len(),
            first.join(", ")
        )));
    }
    let mut zone_prices: BTreeMap<GmeDate, Vec<f64>> = BTreeMap::new();
    for (date, (_, name, series)) in &days {
        let p = series.prices(zone).map_err(|e| GmeError::Invalid {
            source_name: (*name).to_owned(),
            message: e.to_string(),
        })?;
        zone_prices.insert(*date, p);
    }
    let steps = steps_per_hour as usize;
    let mut out = Vec::with_capacity(8760 * steps);
    for h in 0..8760u32 {
        let (date, elapsed) = gme_hour_of_standard_hour(year, h)
            .ok_or_else(|| invalid(format!("standard hour {h} falls outside {year}")))?;
        let per_hour = days.get(&date).map_or(1, |(g, _, _)| g.per_hour() as usize);
        let prices = zone_prices
            .get(&date)
            .ok_or_else(|| invalid(format!("no MGP prices for {date}")))?;
        let start = elapsed as usize * per_hour;
        let hour = prices.get(start..start + per_hour).ok_or_else(|| {
            invalid(format!(
                "{date} has {} intervals, hour {} is not among them",
                prices.len(),
                elapsed + 1
            ))
        })?;
        if per_hour >= steps {
            // As published, or the mean of each step's intervals (see above).
            let group = per_hour / steps;
            out.extend(
                hour.chunks(group)
                    .map(|c| c.iter().sum::<f64>() / group as f64),
            );
        } else {
            // An hourly price holds for each of the hour's steps.
            out.extend(
                hour.iter()
                    .flat_map(|&p| std::iter::repeat_n(p, steps / per_hour)),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_with_comma_and_thousands() {
        assert_eq!(parse_decimal("104,510000"), Some(104.51));
        assert_eq!(parse_decimal("1.234,5"), Some(1234.5));
        assert_eq!(parse_decimal("-3,25"), Some(-3.25));
        assert_eq!(parse_decimal("12.5"), Some(12.5));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal("1,2,3"), None);
    }

    #[test]
    fn italian_day_lengths_follow_the_eu_rule() {
        let d = |s: &str| GmeDate::parse(s).expect("valid date");
        assert_eq!(d("20210830").weekday(), 0, "30 Aug 2021 was a Monday");
        assert_eq!(d("20250330").hours_in_italy(), 23);
        assert_eq!(d("20251026").hours_in_italy(), 25);
        assert_eq!(d("20240331").hours_in_italy(), 23);
        assert_eq!(d("20241027").hours_in_italy(), 25);
        assert_eq!(d("20250329").hours_in_italy(), 24);
        assert_eq!(d("20210830").hours_in_italy(), 24);
        assert!(GmeDate::parse("20230229").is_none());
        assert!(GmeDate::parse("2021083").is_none());
    }
}
