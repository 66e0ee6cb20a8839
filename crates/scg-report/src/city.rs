//! The city layout of a run's outputs: what replaces the wide `timeseries.csv` /
//! `timeseries.parquet` (one column per member and flow) once a community has
//! [`CITY_LAYOUT_MIN_MEMBERS`] members or more, where the wide files would be hundreds of
//! megabytes that no spreadsheet opens.
//!
//! - [`MEMBERS_PARQUET`] (`members.parquet`): every member's flows in **long format**, one row
//!   per member and step, rows ordered by member (scenario order) then step, written in row
//!   groups of [`MEMBERS_PER_ROW_GROUP`] members ([`write_members_parquet`] streams them to a
//!   writer: at most one group's columns are in memory). Columns, in order: `member` (id,
//!   text), `timestamp` (UTC instant, `TIMESTAMP(MILLIS)`), `timestamp_local` (local standard
//!   time, not adjusted to UTC), then [`FLOW_COLUMNS`] in kW (0 where a member has no such
//!   flow), then `battery_soc_pct` (null for a member without a battery). Doubles are
//!   full-precision; pages are zstd-compressed (level 1), the ids dictionary-encoded, the
//!   timestamps delta-encoded (`DELTA_BINARY_PACKED`).
//! - [`COMMUNITY_CSV`] (`community.csv`): one row per step, `timestamp` then the sum over the
//!   members of each of [`FLOW_COLUMNS`] (kW), then the same per-step columns the wide table
//!   ends with (`zonal_price_eur_per_mwh` … `grid_at_peak`, see [`crate::table`]).
//!
//! Every member's energy balance closes from its `members.parquet` row, as from the wide
//! table: `load + ev_charge + swap + battery_charge + p2p_export + grid_export + excess =
//! pv + wind + v2g + battery_discharge + p2p_import + grid_import + unmet`.
//!
//! Never writes a file itself (the caller hands it a writer) and never holds every member's
//! year in a second, wide copy.

use crate::ReportError;
use crate::table::{Column, SeriesTable, f64_column, offset_ms, push_step_columns};
use parquet::basic::{
    Compression, Encoding, LogicalType, Repetition, TimeUnit, TimestampType, Type as Physical,
    ZstdLevel,
};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnPath, Type};
use scg_sim::{ProsumerResult, SimResult};
use std::io::Write;
use std::sync::Arc;

/// From this many members on, `scg simulate` writes the city layout by default.
pub const CITY_LAYOUT_MIN_MEMBERS: usize = 50;
/// Members per row group of `members.parquet`.
pub const MEMBERS_PER_ROW_GROUP: usize = 32;
/// File name of the members' long-format series.
pub const MEMBERS_PARQUET: &str = "members.parquet";
/// File name of the community's per-step aggregates.
pub const COMMUNITY_CSV: &str = "community.csv";

/// Which files carry the time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `timeseries.csv` + `timeseries.parquet` (one column per member and flow) and a report
    /// with one section per member.
    Wide,
    /// `members.parquet` + `community.csv` and a report of distributions across members.
    City,
}

impl Layout {
    /// [`Layout::City`] from [`CITY_LAYOUT_MIN_MEMBERS`] members on, [`Layout::Wide`] below.
    pub fn for_members(members: usize) -> Self {
        if members >= CITY_LAYOUT_MIN_MEMBERS {
            Self::City
        } else {
            Self::Wide
        }
    }
}

/// The flow columns of `members.parquet` and `community.csv`, kW, in file order.
pub const FLOW_COLUMNS: [&str; 14] = [
    "load_kw",
    "pv_kw",
    "wind_kw",
    "battery_charge_kw",
    "battery_discharge_kw",
    "ev_charge_kw",
    "swap_kw",
    "v2g_kw",
    "p2p_import_kw",
    "p2p_export_kw",
    "grid_import_kw",
    "grid_export_kw",
    "excess_kw",
    "unmet_kw",
];

/// A member's series in [`FLOW_COLUMNS`] order (an empty slice: the member has no such flow).
pub fn member_flows(p: &ProsumerResult) -> [&[f64]; 14] {
    let f = &p.flows;
    [
        &p.load.load_kw,
        &f.pv_kw,
        &f.wind_kw,
        &f.battery_in_kw,
        &f.battery_out_kw,
        &p.ev.charge_kw,
        &p.ev.swap_kw,
        &f.v2g_kw,
        &f.p2p_import_kw,
        &f.p2p_export_kw,
        &f.grid_import_kw,
        &f.grid_export_kw,
        &f.excess_kw,
        &f.unmet_kw,
    ]
}

/// `values`, or zeros for an absent series, into `out` (exactly `steps` values).
fn extend_steps(out: &mut Vec<f64>, values: &[f64], steps: usize) {
    let have = values.len().min(steps);
    out.extend_from_slice(&values[..have]);
    out.resize(out.len() + (steps - have), 0.0);
}

fn timestamp_field(name: &str, utc: bool) -> Result<Arc<Type>, ReportError> {
    Ok(Arc::new(
        Type::primitive_type_builder(name, Physical::INT64)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(Some(LogicalType::Timestamp(TimestampType {
                is_adjusted_to_u_t_c: utc,
                unit: TimeUnit::MILLIS,
            })))
            .build()?,
    ))
}

fn double_field(name: &str, repetition: Repetition) -> Result<Arc<Type>, ReportError> {
    Ok(Arc::new(
        Type::primitive_type_builder(name, Physical::DOUBLE)
            .with_repetition(repetition)
            .build()?,
    ))
}

fn members_schema() -> Result<Arc<Type>, ReportError> {
    let mut fields = vec![
        Arc::new(
            Type::primitive_type_builder("member", Physical::BYTE_ARRAY)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::String))
                .build()?,
        ),
        timestamp_field("timestamp", true)?,
        timestamp_field("timestamp_local", false)?,
    ];
    for name in FLOW_COLUMNS {
        fields.push(double_field(name, Repetition::REQUIRED)?);
    }
    fields.push(double_field("battery_soc_pct", Repetition::OPTIONAL)?);
    Ok(Arc::new(
        Type::group_type_builder("scg_members")
            .with_fields(fields)
            .build()?,
    ))
}

fn members_properties() -> Result<Arc<WriterProperties>, ReportError> {
    // Dictionaries pay for ids and timestamps (few distinct values); for the flows they are
    // mostly abandoned after a costly try, and zstd already shrinks the runs of zeros.
    let mut props = WriterProperties::builder()
        .set_created_by(format!("scg {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?));
    for name in FLOW_COLUMNS.iter().chain(&["battery_soc_pct"]) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    // A member's timestamps advance by one step: delta-encoded they take a few bits a row,
    // where a dictionary hashes every row (each row group repeats the year's steps per member).
    for name in ["timestamp", "timestamp_local"] {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(name), false)
            .set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(Arc::new(props.build()))
}

/// Write `members.parquet` (see the module doc) to `out`, one row group per
/// [`MEMBERS_PER_ROW_GROUP`] members, and return the writer.
pub fn write_members_parquet<W: Write + Send>(
    result: &SimResult,
    out: W,
) -> Result<W, ReportError> {
    let grid = &result.grid;
    let steps = grid.len();
    let unix_ms: Vec<i64> = (0..steps).map(|t| grid.unix_seconds(t) * 1000).collect();
    let offset = if steps == 0 {
        0
    } else {
        offset_ms(&grid.timestamp(0))
    };
    let local_ms: Vec<i64> = unix_ms.iter().map(|ms| ms + offset).collect();
    let mut writer = SerializedFileWriter::new(out, members_schema()?, members_properties()?)?;
    for group in result.prosumers.chunks(MEMBERS_PER_ROW_GROUP) {
        let rows = group.len() * steps;
        let mut row_group = writer.next_row_group()?;
        let mut index = 0;
        let mut values: Vec<f64> = Vec::with_capacity(rows);
        while let Some(mut column) = row_group.next_column()? {
            match index {
                0 => {
                    let ids: Vec<ByteArray> = group
                        .iter()
                        .flat_map(|p| std::iter::repeat_n(ByteArray::from(p.id.as_str()), steps))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&ids, None, None)?;
                }
                1 | 2 => {
                    let ms = if index == 1 { &unix_ms } else { &local_ms };
                    let all: Vec<i64> = group.iter().flat_map(|_| ms.iter().copied()).collect();
                    column.typed::<Int64Type>().write_batch(&all, None, None)?;
                }
                i if i < 3 + FLOW_COLUMNS.len() => {
                    values.clear();
                    for p in group {
                        extend_steps(&mut values, member_flows(p)[i - 3], steps);
                    }
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, None, None)?;
                }
                _ => {
                    values.clear();
                    let mut levels: Vec<i16> = Vec::with_capacity(rows);
                    for p in group {
                        let soc = &p.flows.battery_soc_pct;
                        let present = i16::from(!soc.is_empty());
                        levels.resize(levels.len() + steps, present);
                        if !soc.is_empty() {
                            extend_steps(&mut values, soc, steps);
                        }
                    }
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, Some(&levels), None)?;
                }
            }
            column.close()?;
            index += 1;
        }
        row_group.close()?;
    }
    Ok(writer.into_inner()?)
}

/// The community's per-step table (`community.csv`): the members' flows summed step by step,
/// then the per-step prices, band, clearing price, CER hour and grid-peak flag.
pub fn community_table(result: &SimResult) -> SeriesTable {
    let grid = &result.grid;
    let steps = grid.len();
    let mut sums = vec![vec![0.0; steps]; FLOW_COLUMNS.len()];
    for p in &result.prosumers {
        for (sum, values) in sums.iter_mut().zip(member_flows(p)) {
            for (s, v) in sum.iter_mut().zip(values) {
                *s += v;
            }
        }
    }
    let mut columns: Vec<Column> = FLOW_COLUMNS
        .iter()
        .zip(&sums)
        .map(|(name, values)| f64_column((*name).to_owned(), values))
        .collect();
    push_step_columns(result, &mut columns);
    SeriesTable {
        timestamps: (0..steps).map(|t| grid.timestamp(t)).collect(),
        unix_ms: (0..steps).map(|t| grid.unix_seconds(t) * 1000).collect(),
        columns,
    }
}
