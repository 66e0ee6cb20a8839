//! The per-step time series as a table: CSV for spreadsheets, Parquet for pandas/polars.
//!
//! One row per step. Columns: `timestamp` (ISO 8601 with the standard offset in CSV; a UTC
//! instant `TIMESTAMP(MILLIS)` in Parquet), then one `<prosumer>_load_kw` per prosumer in
//! scenario order, then `community_load_kw`. CSV values are written at full precision (the
//! shortest text that reads back as the same `f64`), as Parquet keeps them. Parquet also has
//! `timestamp_local`: the same instant as local standard time (a `TIMESTAMP(MILLIS)` not
//! adjusted to UTC, which pandas reads as the naive local time the CSV shows).

use crate::ReportError;
use parquet::data_type::{DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use scg_sim::SimResult;
use std::fmt::Write as _;
use std::sync::Arc;

/// A named column of per-step values.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Vec<f64>,
}

/// The time series of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTable {
    pub timestamps: Vec<String>,
    pub unix_ms: Vec<i64>,
    pub columns: Vec<Column>,
}

impl SeriesTable {
    /// Build the table of a result.
    pub fn from_result(result: &SimResult) -> Self {
        let grid = &result.grid;
        let mut columns: Vec<Column> = Vec::new();
        let mut push = |name: String, values: &[f64]| {
            columns.push(Column {
                name,
                values: values.to_vec(),
            })
        };
        for p in &result.prosumers {
            let f = &p.flows;
            push(format!("{}_load_kw", p.id), &p.load.load_kw);
            let optional: [(&str, &[f64]); 3] = [
                ("pv_kw", &f.pv_kw),
                ("wind_kw", &f.wind_kw),
                ("battery_soc_pct", &f.battery_soc_pct),
            ];
            for (name, values) in optional {
                if !values.is_empty() && values.iter().any(|v| *v != 0.0) {
                    push(format!("{}_{name}", p.id), values);
                }
            }
            if !f.battery_soc_pct.is_empty() {
                push(format!("{}_battery_charge_kw", p.id), &f.battery_in_kw);
                push(format!("{}_battery_discharge_kw", p.id), &f.battery_out_kw);
            }
            push(format!("{}_p2p_import_kw", p.id), &f.p2p_import_kw);
            push(format!("{}_p2p_export_kw", p.id), &f.p2p_export_kw);
            push(format!("{}_grid_import_kw", p.id), &f.grid_import_kw);
            push(format!("{}_grid_export_kw", p.id), &f.grid_export_kw);
            push(format!("{}_excess_kw", p.id), &f.excess_kw);
            push(format!("{}_unmet_kw", p.id), &f.unmet_kw);
        }
        push("community_load_kw".into(), &result.community.load_kw);
        push(
            "zonal_price_eur_per_mwh".into(),
            &result.zonal_step_eur_per_mwh,
        );
        let peak: Vec<f64> = result
            .grid_at_peak
            .iter()
            .map(|p| f64::from(u8::from(*p)))
            .collect();
        push("grid_at_peak".into(), &peak);
        Self {
            timestamps: (0..grid.len()).map(|t| grid.timestamp(t)).collect(),
            unix_ms: (0..grid.len())
                .map(|t| grid.unix_seconds(t) * 1000)
                .collect(),
            columns,
        }
    }

    /// CSV with a header row.
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(self.timestamps.len() * (26 + 12 * self.columns.len()));
        out.push_str("timestamp");
        for c in &self.columns {
            out.push(',');
            out.push_str(&c.name);
        }
        out.push('\n');
        for (row, ts) in self.timestamps.iter().enumerate() {
            out.push_str(ts);
            for c in &self.columns {
                // Writing to a String cannot fail.
                let _ = write!(out, ",{}", c.values[row]);
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
            fields.push(Arc::new(
                Type::primitive_type_builder(&c.name, Physical::DOUBLE)
                    .with_repetition(Repetition::REQUIRED)
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
                column.typed::<DoubleType>().write_batch(
                    &self.columns[index - 2].values,
                    None,
                    None,
                )?;
            }
            column.close()?;
            index += 1;
        }
        row_group.close()?;
        Ok(writer.into_inner()?)
    }
}

/// The UTC offset at the end of an ISO 8601 timestamp (`+01:00`, `-05:30`, `Z`), in ms.
fn offset_ms(ts: &str) -> i64 {
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
                    values: vec![1.0, 2.123456],
                },
                Column {
                    name: "community_load_kw".into(),
                    values: vec![1.0, 2.123456],
                },
            ],
        }
    }

    #[test]
    fn csv_has_header_units_and_full_precision() {
        assert_eq!(
            table().to_csv(),
            "timestamp,a_load_kw,community_load_kw\n\
             2007-01-01T00:00:00+01:00,1,1\n\
             2007-01-01T01:00:00+01:00,2.123456,2.123456\n"
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
        // 2006-12-31T23:00Z is 2007-01-01T00:00 local standard time (UTC+01:00).
        assert_eq!(rows[0].get_timestamp_millis(1).unwrap(), 1_167_609_600_000);
    }
}
