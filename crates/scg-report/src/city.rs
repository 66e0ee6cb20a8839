//! The city layout of a run's outputs: what replaces the wide `timeseries.csv` /
//! `timeseries.parquet` (one column per member and flow) once a community has
//! [`CITY_LAYOUT_MIN_MEMBERS`] members or more, where the wide files would be hundreds of
//! megabytes that no spreadsheet opens.
//!
//! - [`MEMBERS_PARQUET`] (`members.parquet`): every member's flows in **long format**, one row
//!   per member and step, in row groups of consecutive steps: one row group per
//!   `scg_sim::members::MemberBlock` (every member over `scg_sim::members::block_steps` steps),
//!   inside it rows ordered by member (scenario order) then step. [`MembersParquetWriter`]
//!   encodes a block at a time, whether the blocks come from kept series
//!   ([`write_members_parquet`]) or from a run that streams them while the year runs (`scg
//!   simulate --no-ledger` for a city): the same blocks give the same bytes. Columns, in
//!   order: `member` (id,
//!   text), `timestamp` (UTC instant, `TIMESTAMP(MILLIS)`), `timestamp_local` (local standard
//!   time, not adjusted to UTC), then [`FLOW_COLUMNS`] in kW (0 where a member has no such
//!   flow), then `battery_soc_pct` (null for a member without a battery). Doubles are
//!   full-precision; pages are zstd-compressed (level 1) but those of [`DENSE_FLOW_COLUMNS`]
//!   (`load_kw`, `grid_import_kw`: `BYTE_STREAM_SPLIT`, LZ4-compressed), the ids
//!   dictionary-encoded, the timestamps delta-encoded (`DELTA_BINARY_PACKED`); only the
//!   timestamps carry statistics (min and max per row group and page).
//! - [`COMMUNITY_CSV`] (`community.csv`): one row per step, `timestamp` then the sum over the
//!   members of each of [`FLOW_COLUMNS`] (kW), then the same per-step columns the wide table
//!   ends with (`zonal_price_eur_per_mwh` … `grid_at_peak`, see [`crate::table`]).
//!
//! Every member's energy balance closes from its `members.parquet` row, as from the wide
//! table: `load + ev_charge + swap + battery_charge + p2p_export + grid_export + excess =
//! pv + wind + v2g + battery_discharge + p2p_import + grid_import + unmet`.
//!
//! Never writes a file itself (the caller hands it a writer) and never holds every member's
//! year in a second, wide copy. `community.csv` and the report read the community's per-step
//! sums the run kept (`scg_sim::CommunityResult::flows_kw`), not the members' series.

use crate::ReportError;
use crate::table::{Column, SeriesTable, f64_column, offset_ms, push_step_columns};
use parquet::basic::{
    Compression, Encoding, LogicalType, Repetition, TimeUnit, TimestampType, Type as Physical,
    ZstdLevel,
};
use parquet::column::writer::{
    ColumnCloseResult, ColumnWriter, get_column_writer, get_typed_column_writer_mut,
};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{
    SerializedFileWriter, SerializedPageWriter, SerializedRowGroupWriter, TrackedWrite,
};
use parquet::schema::types::{ColumnDescPtr, ColumnPath, Type};
use scg_model::TimeGrid;
use scg_sim::SimResult;
use scg_sim::members::{MemberBlock, MemberSeries, all_positive_zero, member_major};
use std::io::Write;
use std::sync::Arc;

/// From this many members on, `scg simulate` writes the city layout by default (defined in
/// `scg_sim::members`, whose run estimate depends on it).
pub use scg_sim::members::CITY_LAYOUT_MIN_MEMBERS;
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

/// The flow columns of `members.parquet` and `community.csv`, kW, in file order
/// (`scg_sim::members::Flow` order).
pub use scg_sim::members::FLOW_COLUMNS;

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

/// The flows of `members.parquet` written byte-stream-split and LZ4-compressed (the others
/// plain and zstd-compressed): see `members_properties`.
pub const DENSE_FLOW_COLUMNS: [&str; 2] = ["load_kw", "grid_import_kw"];

fn members_properties() -> Result<Arc<WriterProperties>, ReportError> {
    // Dictionaries pay for ids and timestamps (few distinct values); for the flows they are
    // mostly abandoned after a costly try, and zstd already shrinks the runs of zeros.
    let mut props = WriterProperties::builder()
        .set_created_by(format!("scg {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?));
    for name in FLOW_COLUMNS.iter().chain(&["battery_soc_pct"]) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*name), false);
    }
    // Statistics only where a reader can skip by them: the timestamps. Every row group holds
    // every member (an id's min and max say nothing, and comparing ids byte-wise cost more
    // than encoding them), and no reader filters a flow by its range.
    for name in FLOW_COLUMNS.iter().chain(&["member", "battery_soc_pct"]) {
        props =
            props.set_column_statistics_enabled(ColumnPath::from(*name), EnabledStatistics::None);
    }
    // The load and the grid import are not zero at nearly every member-step, and their
    // mantissas are noise: zstd spends most of the encoder's time on them for 6-14 % (the
    // other flows are mostly zeros, which zstd shrinks tenfold). Split into byte streams (the
    // signs and exponents together) and LZ4-compressed they take a third less time, the
    // load's pages come out 6 % smaller and the grid import's no larger.
    for name in DENSE_FLOW_COLUMNS {
        props = props
            .set_column_encoding(ColumnPath::from(name), Encoding::BYTE_STREAM_SPLIT)
            .set_column_compression(ColumnPath::from(name), Compression::LZ4_RAW);
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

/// Write `members.parquet` (see the module doc) to `out` from a result that kept its
/// members' series, in the blocks a streamed run writes, and return the writer.
pub fn write_members_parquet<W: Write + Send>(
    result: &SimResult,
    out: W,
) -> Result<W, ReportError> {
    let block_steps = scg_sim::members::block_steps(result.prosumers.len(), result.grid.len());
    write_members_parquet_blocks(result, out, block_steps)
}

/// [`write_members_parquet`] in row groups of `block_steps` steps (at least 1).
pub fn write_members_parquet_blocks<W: Write + Send>(
    result: &SimResult,
    out: W,
    block_steps: usize,
) -> Result<W, ReportError> {
    let block_steps = block_steps.max(1);
    let ids: Vec<&str> = result.prosumers.iter().map(|p| p.id.as_str()).collect();
    let mut writer = MembersParquetWriter::new(out, &ids, &result.grid)?;
    let members: Vec<MemberSeries<'_>> = result
        .prosumers
        .iter()
        .map(|p| MemberSeries {
            load_kw: &p.load.load_kw,
            flows: &p.flows,
            ev: &p.ev,
        })
        .collect();
    let steps = result.grid.len();
    let mut block = MemberBlock::default();
    let mut first = 0;
    while first < steps {
        let len = block_steps.min(steps - first);
        block.fill_from_series(&members, first, len);
        writer.write_block(&block)?;
        first += len;
    }
    writer.finish()
}

/// The `members.parquet` encoder: one row group per [`MemberBlock`], handed to it in step order
/// (by [`write_members_parquet`], or by a run that streams its members' series).
pub struct MembersParquetWriter<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    props: Arc<WriterProperties>,
    /// The file's columns, in order.
    descrs: Vec<ColumnDescPtr>,
    ids: Vec<ByteArray>,
    unix_ms: Vec<i64>,
    local_ms: Vec<i64>,
    next_step: usize,
    /// Scratch: a block's column, member-major.
    column: Vec<f64>,
    /// Per column, the last chunk encoded once to be spliced into every row group that has the
    /// same one ([`EncodedChunk`]).
    spliced: Vec<Option<EncodedChunk>>,
}

/// A column chunk encoded once and copied into each row group that has the same chunk: the
/// `member` column of a block of `rows` rows (every full block has the same ids in the same
/// order), a flow no member has in the block (`rows` times +0.0: half a city's columns when it
/// has no wind, batteries or swaps), `battery_soc_pct` when no member has a battery (`rows`
/// nulls). Encoded again each block, the ids' hashing into the dictionary was about 4 % of a
/// 10,000-member city's CPU, and each zero column a year of zstd over megabytes of zeros; the
/// copied bytes are the ones the encoder would write.
struct EncodedChunk {
    rows: usize,
    bytes: bytes::Bytes,
    close: ColumnCloseResult,
}

impl EncodedChunk {
    /// Column `descr`'s chunk of `rows` rows, encoded by `write` with `props`, as
    /// `SerializedRowGroupWriter::next_column` would encode it into the file.
    fn encode(
        descr: ColumnDescPtr,
        props: Arc<WriterProperties>,
        rows: usize,
        write: impl FnOnce(&mut ColumnWriter<'_>) -> Result<(), ParquetError>,
    ) -> Result<Self, ReportError> {
        let mut sink = TrackedWrite::new(Vec::new());
        let close = {
            let mut column =
                get_column_writer(descr, props, Box::new(SerializedPageWriter::new(&mut sink)));
            write(&mut column)?;
            column.close()?
        };
        Ok(Self {
            rows,
            bytes: bytes::Bytes::from(sink.into_inner()?),
            close,
        })
    }
}

/// Column `index`'s chunk of `rows` rows from `cache`, encoded by `write` when the cache holds
/// none of that size, appended to `row_group`.
fn splice_chunk<W: Write + Send>(
    row_group: &mut SerializedRowGroupWriter<'_, W>,
    cache: &mut Option<EncodedChunk>,
    (descr, props): (ColumnDescPtr, Arc<WriterProperties>),
    rows: usize,
    write: impl FnOnce(&mut ColumnWriter<'_>) -> Result<(), ParquetError>,
) -> Result<(), ReportError> {
    if cache.as_ref().is_none_or(|c| c.rows != rows) {
        *cache = Some(EncodedChunk::encode(descr, props, rows, write)?);
    }
    if let Some(chunk) = cache {
        row_group.append_column(&chunk.bytes, chunk.close.clone())?;
    }
    Ok(())
}

impl<W: Write + Send> std::fmt::Debug for MembersParquetWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembersParquetWriter")
            .field("members", &self.ids.len())
            .field("next_step", &self.next_step)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send> MembersParquetWriter<W> {
    /// A writer of the members `ids` (scenario order) on `grid`'s steps.
    pub fn new(out: W, ids: &[&str], grid: &TimeGrid) -> Result<Self, ReportError> {
        let steps = grid.len();
        let unix_ms: Vec<i64> = (0..steps).map(|t| grid.unix_seconds(t) * 1000).collect();
        let offset = if steps == 0 {
            0
        } else {
            offset_ms(&grid.timestamp(0))
        };
        let local_ms = unix_ms.iter().map(|ms| ms + offset).collect();
        let props = members_properties()?;
        let writer = SerializedFileWriter::new(out, members_schema()?, Arc::clone(&props))?;
        let schema = writer.schema_descr();
        let descrs: Vec<ColumnDescPtr> = (0..schema.num_columns())
            .map(|i| schema.column(i))
            .collect();
        Ok(Self {
            spliced: (0..descrs.len()).map(|_| None).collect(),
            descrs,
            writer,
            props,
            ids: ids.iter().map(|id| ByteArray::from(*id)).collect(),
            unix_ms,
            local_ms,
            next_step: 0,
            column: Vec::new(),
        })
    }

    /// Write `block` as one row group: its members in order, each its steps in order (each
    /// column turned member-major first, [`member_major`]). The chunks every such block shares
    /// are spliced from [`EncodedChunk`]s.
    pub fn write_block(&mut self, block: &MemberBlock) -> Result<(), ReportError> {
        let (members, steps) = (block.members(), block.steps);
        let range = block.first_step..block.first_step + steps;
        if members != self.ids.len()
            || block.first_step != self.next_step
            || range.end > self.unix_ms.len()
        {
            return Err(ReportError::Block(format!(
                "steps {range:?} of {members} members after step {} of {} members",
                self.next_step,
                self.ids.len()
            )));
        }
        self.next_step = range.end;
        let rows = members * steps;
        let (descrs, props) = (&self.descrs, &self.props);
        let column_of = |i: usize| (Arc::clone(&descrs[i]), Arc::clone(props));
        let mut row_group = self.writer.next_row_group()?;
        let ids = &self.ids;
        splice_chunk(
            &mut row_group,
            &mut self.spliced[0],
            column_of(0),
            rows,
            |c| {
                let id_rows: Vec<ByteArray> = ids
                    .iter()
                    .flat_map(|id| std::iter::repeat_n(id.clone(), steps))
                    .collect();
                get_typed_column_writer_mut::<ByteArrayType>(c)
                    .write_batch(&id_rows, None, None)?;
                Ok(())
            },
        )?;
        for ms in [&self.unix_ms, &self.local_ms] {
            let ms = &ms[range.clone()];
            let all: Vec<i64> = (0..members).flat_map(|_| ms.iter().copied()).collect();
            let mut column = row_group.next_column()?.ok_or(ReportError::Block(
                "members.parquet: a timestamp column is missing".into(),
            ))?;
            column.typed::<Int64Type>().write_batch(&all, None, None)?;
            column.close()?;
        }
        for (k, values) in block.columns.iter().enumerate() {
            let index = 3 + k;
            if all_positive_zero(values) {
                splice_chunk(
                    &mut row_group,
                    &mut self.spliced[index],
                    column_of(index),
                    rows,
                    |c| {
                        let zeros = vec![0.0; rows];
                        get_typed_column_writer_mut::<DoubleType>(c)
                            .write_batch(&zeros, None, None)?;
                        Ok(())
                    },
                )?;
                continue;
            }
            member_major(values, steps, &mut self.column);
            let mut column = row_group.next_column()?.ok_or(ReportError::Block(
                "members.parquet: a flow column is missing".into(),
            ))?;
            column
                .typed::<DoubleType>()
                .write_batch(&self.column, None, None)?;
            column.close()?;
        }
        let soc = 3 + block.columns.len();
        if block.has_battery.iter().all(|b| !b) {
            splice_chunk(
                &mut row_group,
                &mut self.spliced[soc],
                column_of(soc),
                rows,
                |c| {
                    let nulls = vec![0i16; rows];
                    get_typed_column_writer_mut::<DoubleType>(c).write_batch(
                        &[],
                        Some(&nulls),
                        None,
                    )?;
                    Ok(())
                },
            )?;
        } else {
            let levels: Vec<i16> = block
                .has_battery
                .iter()
                .flat_map(|b| std::iter::repeat_n(i16::from(*b), steps))
                .collect();
            member_major(&block.soc_pct, steps, &mut self.column);
            let mut column = row_group.next_column()?.ok_or(ReportError::Block(
                "members.parquet: the battery_soc_pct column is missing".into(),
            ))?;
            column
                .typed::<DoubleType>()
                .write_batch(&self.column, Some(&levels), None)?;
            column.close()?;
        }
        row_group.close()?;
        Ok(())
    }

    /// Close the file (every step must have been written) and return the writer.
    pub fn finish(self) -> Result<W, ReportError> {
        if self.next_step != self.unix_ms.len() {
            return Err(ReportError::Block(format!(
                "{} of {} steps written",
                self.next_step,
                self.unix_ms.len()
            )));
        }
        Ok(self.writer.into_inner()?)
    }
}

/// The community's per-step table (`community.csv`): the members' flows summed step by step,
/// then the per-step prices, band, clearing price, CER hour and grid-peak flag.
pub fn community_table(result: &SimResult) -> SeriesTable {
    let grid = &result.grid;
    let steps = grid.len();
    let mut columns: Vec<Column> = FLOW_COLUMNS
        .iter()
        .zip(&result.community.flows_kw)
        .map(|(name, values)| f64_column((*name).to_owned(), values))
        .collect();
    push_step_columns(result, &mut columns);
    SeriesTable {
        timestamps: (0..steps).map(|t| grid.timestamp(t)).collect(),
        unix_ms: (0..steps).map(|t| grid.unix_seconds(t) * 1000).collect(),
        columns,
    }
}
