//! Decoded rows into Arrow columns: one builder per column of the schema, and `_extra`.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
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
    /// Starts small (the builders' own default is 1,024 rows per column): a chunk of records spread over many days
    /// has an encoder per day, most of them with a few rows.
    fn new(kind: ColumnKind) -> Builder {
        match kind {
            ColumnKind::Str | ColumnKind::Json => Builder::Str(StringBuilder::with_capacity(ROWS, ROWS * 16)),
            ColumnKind::Int => Builder::Int(Int64Builder::with_capacity(ROWS)),
            ColumnKind::Time => Builder::Time(TimestampMicrosecondBuilder::with_capacity(ROWS).with_timezone("UTC")),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(ROWS)),
        }
    }

    #[inline]
    fn append(&mut self, cell: &Cell<'_>) {
        match (self, cell) {
            (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
            (Builder::Str(b), Cell::Json(s)) => b.append_value(s),
            (Builder::Int(b), Cell::Int(n)) => b.append_value(*n),
            (Builder::Time(b), Cell::Time(us)) => b.append_value(*us),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            // `Null`; a cell of another kind is never made for a column (`row.rs` makes cells by its kind).
            (Builder::Str(b), _) => b.append_null(),
            (Builder::Int(b), _) => b.append_null(),
            (Builder::Time(b), _) => b.append_null(),
            (Builder::Bool(b), _) => b.append_null(),
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
    extra: StringBuilder,
    rows: usize,
}

impl Encoder {
    pub(crate) fn new(columns: Arc<Columns>) -> Self {
        let builders = columns.columns.iter().map(|c| Builder::new(c.kind)).collect();
        Encoder {
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
        for (builder, cell) in self.builders.iter_mut().zip(&row.cells) {
            builder.append(cell);
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
        let mut arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        arrays.push(Arc::new(self.extra.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.columns.schema.clone(), arrays).map_err(|e| {
            Error::io(
                "cannot assemble a batch of Parquet rows",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        })
    }
}
