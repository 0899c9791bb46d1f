//! Decoded rows into Arrow columns: one builder per column of the schema, and `_extra`.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, RecordBatch};

use super::row::{Cell, Row};
use super::schema::Columns;
use crate::event::record::ColumnKind;
use crate::{Error, Result};

/// The rows a new column builder has room for before it grows (doubling).
const ROWS: usize = 16;

/// One column being filled.
enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    /// A builder with room for `rows` rows (and `bytes` bytes of text).
    fn with_capacity(kind: ColumnKind, rows: usize, bytes: usize) -> Builder {
        match kind {
            ColumnKind::Str | ColumnKind::Json => Builder::Str(StringBuilder::with_capacity(rows, bytes)),
            ColumnKind::Int => Builder::Int(Int64Builder::with_capacity(rows)),
            ColumnKind::Time => Builder::Time(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
        }
    }

    /// Appends a value (a cell of another kind, which `row.rs` never makes for a column, as `NULL`).
    #[inline]
    fn append(&mut self, cell: &Cell<'_>) {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Str(b), Cell::Json(s)) => b.append_value(s),
            (Builder::Int(b), Cell::Int(n)) => b.append_value(*n),
            (Builder::Time(b), Cell::Time(us)) => b.append_value(*us),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (builder, _) => builder.append_nulls(1),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        match self {
            Builder::Str(b) => b.append_nulls(n),
            Builder::Int(b) => b.append_nulls(n),
            Builder::Time(b) => b.append_nulls(n),
            Builder::Bool(b) => b.append_nulls(n),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// Fills the columns of one schema (one day's rows of a chunk) from decoded rows.
pub(crate) struct Encoder {
    columns: Arc<Columns>,
    builders: Vec<Builder>,
    /// `NULL`s not appended to each builder yet: appended at once before its next value (most columns are empty
    /// in most records).
    nulls: Vec<usize>,
    extra: StringBuilder,
    rows: usize,
}

impl Encoder {
    pub(crate) fn new(columns: Arc<Columns>) -> Self {
        // Small at first (the builders' own default is 1,024 rows per column): a chunk of records spread over many
        // days has an encoder per day, most of them with a few rows.
        let builders: Vec<Builder> = columns
            .columns
            .iter()
            .map(|c| Builder::with_capacity(c.kind, ROWS, ROWS * 16))
            .collect();
        Encoder {
            nulls: vec![0; builders.len()],
            columns,
            builders,
            extra: StringBuilder::with_capacity(ROWS, ROWS * 64),
            rows: 0,
        }
    }

    /// Rows since the last [`finish`](Self::finish).
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Adds a decoded row.
    pub(crate) fn push(&mut self, row: &Row<'_>) {
        debug_assert_eq!(row.cells.len(), self.builders.len());
        for ((builder, nulls), cell) in self.builders.iter_mut().zip(&mut self.nulls).zip(&row.cells) {
            if matches!(cell, Cell::Null) {
                *nulls += 1;
            } else {
                if *nulls > 0 {
                    builder.append_nulls(std::mem::take(nulls));
                }
                builder.append(cell);
            }
        }
        if row.extra.is_empty() {
            self.extra.append_null();
        } else {
            self.extra.append_value(&row.extra);
        }
        self.rows += 1;
    }

    /// The rows since the last call, as a batch.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        let rows = self.rows;
        for (builder, nulls) in self.builders.iter_mut().zip(&mut self.nulls) {
            if *nulls > 0 {
                builder.append_nulls(std::mem::take(nulls));
            }
        }
        // Each builder starts again with room for as many rows and as much text (`finish` leaves it none, and it
        // would grow from nothing, copying its values at each doubling): the next chunk's rows for this key are
        // usually about as many.
        let mut arrays = Vec::with_capacity(self.builders.len() + 1);
        for (builder, column) in self.builders.iter_mut().zip(&self.columns.columns) {
            let array = builder.finish();
            *builder = Builder::with_capacity(column.kind, rows, text_bytes(&array));
            arrays.push(array);
        }
        let extra: ArrayRef = Arc::new(self.extra.finish());
        self.extra = StringBuilder::with_capacity(rows, text_bytes(&extra));
        arrays.push(extra);
        self.rows = 0;
        RecordBatch::try_new(self.columns.schema.clone(), arrays).map_err(|e| {
            Error::io(
                "cannot assemble a batch of Parquet rows",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        })
    }
}

/// The bytes of text of a string column (0 for another).
fn text_bytes(array: &ArrayRef) -> usize {
    array.as_string_opt::<i32>().map_or(0, |a| a.values().len())
}
