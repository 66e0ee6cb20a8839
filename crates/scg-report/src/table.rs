//! The per-step time series as a table: CSV for spreadsheets, Parquet for pandas/polars.
//!
//! One row per step. Columns: `timestamp` (ISO 8601 with the standard offset in CSV; a UTC
//! instant `TIMESTAMP(MILLIS)` in Parquet); then per prosumer in scenario order its flows in kW
//! (`_load_kw`, `_pv_kw`/`_wind_kw`/`_battery_soc_pct` when non-zero, `_battery_charge_kw` and
//! `_battery_discharge_kw` with a battery, then always `_ev_charge_kw`, `_swap_kw`, `_v2g_kw`,
//! `_p2p_import_kw`, `_p2p_export_kw`, `_grid_import_kw`, `_grid_export_kw`, `_excess_kw`,
//! `_unmet_kw`); then `community_load_kw`, `zonal_price_eur_per_mwh`,
//! `retail_price_eur_per_mwh`, `tariff_band` (text `F1`/`F2`/`F3`),
//! `p2p_clearing_price_eur_per_mwh` (empty / null when the step had no market price),
//! `cer_hour_shared_kwh` (the CER shared energy of the hour the step is in) and `grid_at_peak`
//! (`true`/`false`; Parquet BOOLEAN).
//!
//! Every member's energy balance closes from these columns alone, each step:
//! `load + ev_charge + swap + battery_charge + p2p_export + grid_export + excess =
//! pv + wind + v2g + battery_discharge + p2p_import + grid_import + unmet`. CSV numbers are
//! written in full (the shortest decimal that reads back as the same `f64`), so the balance
//! closes from the CSV as well as from the Parquet file.
//!
//! Parquet also has `timestamp_local` (second column): the same instant as local standard time
//! (a `TIMESTAMP(MILLIS)` not adjusted to UTC, which pandas reads as the naive local time the
//! CSV shows).

use crate::ReportError;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use scg_sim::SimResult;
use std::fmt::Write as _;
use std::sync::Arc;

/// The values of one column, one per step.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Numbers.
    F64(Vec<f64>),
    /// Numbers that may be missing (empty CSV cell, Parquet null).
    OptionalF64(Vec<Option<f64>>),
    /// Flags (`true`/`false`).
    Bool(Vec<bool>),
    /// Short text labels.
    Text(Vec<String>),
}

/// A named column of per-step values.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Values,
}

/// The time series of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTable {
    pub timestamps: Vec<String>,
    pub unix_ms: Vec<i64>,
    pub columns: Vec<Column>,
}

pub(crate) fn f64_column(name: String, values: &[f64]) -> Column {
    Column {
        name,
        values: Values::F64(values.to_vec()),
    }
}

/// `values`, or zeros when a series is absent (empty) for this prosumer.
fn or_zeros(values: &[f64], steps: usize) -> Vec<f64> {
    if values.is_empty() {
        vec![0.0; steps]
    } else {
        values.to_vec()
    }
}

impl SeriesTable {
    /// Build the table of a result.
    pub fn from_result(result: &SimResult) -> Self {
        let grid = &result.grid;
        let steps = grid.len();
        let mut columns: Vec<Column> = Vec::new();
        for p in &result.prosumers {
            let f = &p.flows;
            columns.push(f64_column(format!("{}_load_kw", p.id), &p.load.load_kw));
            let optional: [(&str, &[f64]); 3] = [
                ("pv_kw", &f.pv_kw),
                ("wind_kw", &f.wind_kw),
                ("battery_soc_pct", &f.battery_soc_pct),
            ];
            for (name, values) in optional {
                if !values.is_empty() && values.iter().any(|v| *v != 0.0) {
                    columns.push(f64_column(format!("{}_{name}", p.id), values));
                }
            }
            if !f.battery_soc_pct.is_empty() {
                columns.push(f64_column(
                    format!("{}_battery_charge_kw", p.id),
                    &or_zeros(&f.battery_in_kw, steps),
                ));
                columns.push(f64_column(
                    format!("{}_battery_discharge_kw", p.id),
                    &or_zeros(&f.battery_out_kw, steps),
                ));
            }
            let always: [(&str, &[f64]); 9] = [
                ("ev_charge_kw", &p.ev.charge_kw),
                ("swap_kw", &p.ev.swap_kw),
                ("v2g_kw", &f.v2g_kw),
                ("p2p_import_kw", &f.p2p_import_kw),
                ("p2p_export_kw", &f.p2p_export_kw),
                ("grid_import_kw", &f.grid_import_kw),
                ("grid_export_kw", &f.grid_export_kw),
                ("excess_kw", &f.excess_kw),
                ("unmet_kw", &f.unmet_kw),
            ];
            for (name, values) in always {
                columns.push(f64_column(
                    format!("{}_{name}", p.id),
                    &or_zeros(values, steps),
                ));
            }
        }
        columns.push(f64_column(
            "community_load_kw".into(),
            &result.community.load_kw,
        ));
        push_step_columns(result, &mut columns);
        Self {
            timestamps: (0..steps).map(|t| grid.timestamp(t)).collect(),
            unix_ms: (0..steps).map(|t| grid.unix_seconds(t) * 1000).collect(),
            columns,
        }
    }

    /// CSV with a header row. Numbers in full (shortest round-trip decimal), missing values as
    /// empty cells.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(self.timestamps.len() * (26 + 20 * self.columns.len()));
        out.push_str("timestamp");
        for c in &self.columns {
            out.push(',');
            out.push_str(&c.name);
        }
        out.push('\n');
        for (row, ts) in self.timestamps.iter().enumerate() {
            out.push_str(ts);
            for c in &self.columns {
                out.push(',');
                // Writing to a String cannot fail.
                let _ = match &c.values {
                    Values::F64(v) => write!(out, "{}", v.get(row).copied().unwrap_or(f64::NAN)),
                    Values::OptionalF64(v) => match v.get(row).copied().flatten() {
                        Some(x) => write!(out, "{x}"),
                        None => Ok(()),
                    },
                    Values::Bool(v) => write!(out, "{}", v.get(row).copied().unwrap_or(false)),
                    Values::Text(v) => write!(out, "{}", v.get(row).map_or("", String::as_str)),
                };
            }
            out.push('\n');
        }
        out
    }

    /// Parquet (uncompressed, one row group).
    pub fn to_parquet(&self) -> Result<Vec<u8>, ReportError> {
        use parquet::basic::{LogicalType, Repetition, TimeUnit, TimestampType, Type as Physical};
        let mut fields = vec![Arc::new(
            Type::primitive_type_builder("timestamp", Physical::INT64)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::Timestamp(TimestampType {
                    is_adjusted_to_u_t_c: true,
                    unit: TimeUnit::MILLIS,
                })))
                .build()?,
        )];
        fields.push(Arc::new(
            Type::primitive_type_builder("timestamp_local", Physical::INT64)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::Timestamp(TimestampType {
                    is_adjusted_to_u_t_c: false,
                    unit: TimeUnit::MILLIS,
                })))
                .build()?,
        ));
        let local_ms: Vec<i64> = self
            .timestamps
            .iter()
            .zip(&self.unix_ms)
            .map(|(ts, ms)| ms + offset_ms(ts))
            .collect();
        for c in &self.columns {
            let (physical, repetition, logical) = match c.values {
                Values::F64(_) => (Physical::DOUBLE, Repetition::REQUIRED, None),
                Values::OptionalF64(_) => (Physical::DOUBLE, Repetition::OPTIONAL, None),
                Values::Bool(_) => (Physical::BOOLEAN, Repetition::REQUIRED, None),
                Values::Text(_) => (
                    Physical::BYTE_ARRAY,
                    Repetition::REQUIRED,
                    Some(LogicalType::String),
                ),
            };
            fields.push(Arc::new(
                Type::primitive_type_builder(&c.name, physical)
                    .with_repetition(repetition)
                    .with_logical_type(logical)
                    .build()?,
            ));
        }
        let schema = Arc::new(
            Type::group_type_builder("scg_timeseries")
                .with_fields(fields)
                .build()?,
        );
        let props = Arc::new(
            WriterProperties::builder()
                .set_created_by(format!("scg {}", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let mut writer = SerializedFileWriter::new(Vec::new(), schema, props)?;
        let mut row_group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = row_group.next_column()? {
            if index < 2 {
                let ms = if index == 0 { &self.unix_ms } else { &local_ms };
                column.typed::<Int64Type>().write_batch(ms, None, None)?;
            } else {
                match &self.columns[index - 2].values {
                    Values::F64(v) => {
                        column.typed::<DoubleType>().write_batch(v, None, None)?;
                    }
                    Values::OptionalF64(v) => {
                        let present: Vec<f64> = v.iter().flatten().copied().collect();
                        let levels: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                        column
                            .typed::<DoubleType>()
                            .write_batch(&present, Some(&levels), None)?;
                    }
                    Values::Bool(v) => {
                        column.typed::<BoolType>().write_batch(v, None, None)?;
                    }
                    Values::Text(v) => {
                        let bytes: Vec<ByteArray> =
                            v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                        column
                            .typed::<ByteArrayType>()
                            .write_batch(&bytes, None, None)?;
                    }
                }
            }
            column.close()?;
            index += 1;
        }
        row_group.close()?;
        Ok(writer.into_inner()?)
    }
}

/// The per-step columns that belong to no member, after the flows: zonal and retail price,
/// tariff band, the market's clearing price, the CER hour's shared energy and the grid-peak
/// flag (the wide table and `community.csv` end with the same columns).
pub(crate) fn push_step_columns(result: &SimResult, columns: &mut Vec<Column>) {
    let grid = &result.grid;
    let steps = grid.len();
    columns.push(f64_column(
        "zonal_price_eur_per_mwh".into(),
        &result.zonal_step_eur_per_mwh,
    ));
    columns.push(f64_column(
        "retail_price_eur_per_mwh".into(),
        &result.retail_eur_per_mwh,
    ));
    columns.push(Column {
        name: "tariff_band".into(),
        values: Values::Text(
            result
                .tariff_band
                .iter()
                .map(|b| b.name().to_owned())
                .collect(),
        ),
    });
    let clearing = match &result.community.market {
        Some(m) => (0..steps)
            .map(|t| m.clearing_price_eur_per_mwh.get(t).copied().flatten())
            .collect(),
        None => vec![None; steps],
    };
    columns.push(Column {
        name: "p2p_clearing_price_eur_per_mwh".into(),
        values: Values::OptionalF64(clearing),
    });
    let per_hour = grid.steps_per_hour().max(1);
    let cer_hourly = &result.community.cer.hourly_shared_kwh;
    columns.push(f64_column(
        "cer_hour_shared_kwh".into(),
        &(0..steps)
            .map(|t| cer_hourly.get(t / per_hour).copied().unwrap_or(0.0))
            .collect::<Vec<_>>(),
    ));
    columns.push(Column {
        name: "grid_at_peak".into(),
        values: Values::Bool(result.grid_at_peak.clone()),
    });
}

/// The UTC offset at the end of an ISO 8601 timestamp (`+01:00`, `-05:30`, `Z`), in ms.
pub(crate) fn offset_ms(ts: &str) -> i64 {
    let Some(tail) = ts.len().checked_sub(6).and_then(|i| ts.get(i..)) else {
        return 0;
    };
    let sign = match tail.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return 0,
    };
    let h: i64 = tail.get(1..3).and_then(|x| x.parse().ok()).unwrap_or(0);
    let m: i64 = tail.get(4..6).and_then(|x| x.parse().ok()).unwrap_or(0);
    sign * (h * 3_600_000 + m * 60_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;

    fn table() -> SeriesTable {
        SeriesTable {
            timestamps: vec![
                "2007-01-01T00:00:00+01:00".into(),
                "2007-01-01T01:00:00+01:00".into(),
            ],
            unix_ms: vec![1_167_606_000_000, 1_167_609_600_000],
            columns: vec![
                Column {
                    name: "a_load_kw".into(),
                    values: Values::F64(vec![1.0, 2.123456]),
                },
                Column {
                    name: "p2p_clearing_price_eur_per_mwh".into(),
                    values: Values::OptionalF64(vec![None, Some(101.5)]),
                },
                Column {
                    name: "tariff_band".into(),
                    values: Values::Text(vec!["F3".into(), "F1".into()]),
                },
                Column {
                    name: "grid_at_peak".into(),
                    values: Values::Bool(vec![false, true]),
                },
            ],
        }
    }

    #[test]
    fn csv_has_header_units_full_numbers_empty_missing_and_text() {
        assert_eq!(
            table().to_csv(),
            "timestamp,a_load_kw,p2p_clearing_price_eur_per_mwh,tariff_band,grid_at_peak\n\
             2007-01-01T00:00:00+01:00,1,,F3,false\n\
             2007-01-01T01:00:00+01:00,2.123456,101.5,F1,true\n"
        );
    }

    #[test]
    fn parquet_reads_back_with_full_precision() {
        let bytes = table().to_parquet().unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let schema = reader.metadata().file_metadata().schema_descr();
        assert_eq!(schema.column(1).name(), "timestamp_local");
        assert_eq!(schema.column(2).name(), "a_load_kw");
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows[1].get_double(2).unwrap(), 2.123456);
        assert_eq!(rows[0].get_timestamp_millis(0).unwrap(), 1_167_606_000_000);
        assert!(rows[0].get_double(3).is_err(), "missing price is null");
        assert_eq!(rows[1].get_double(3).unwrap(), 101.5);
        assert_eq!(rows[1].get_string(4).unwrap(), "F1");
        assert!(rows[1].get_bool(5).unwrap());
        assert!(!rows[0].get_bool(5).unwrap());
        // 2006-12-31T23:00Z is 2007-01-01T00:00 local standard time (UTC+01:00).
        assert_eq!(rows[0].get_timestamp_millis(1).unwrap(), 1_167_609_600_000);
    }
}
