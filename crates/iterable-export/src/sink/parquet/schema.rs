//! The Parquet schema of a record type, derived from its table (`typed_record!`): the typed fields' columns, the
//! columns the table gives frequent other fields, and `_extra`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_schema::extension::Json;
use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema, TimeUnit};

use crate::event::record::{ColumnKind, Field, Record};

/// The column of the fields that have no column of their own, and of values that contradict their column's type:
/// a JSON object of those fields, with their original JSON values (`NULL` when there are none).
pub const EXTRA: &str = "_extra";

/// One column: a field's wire name and its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: ColumnKind,
}

/// The columns of a record type, in file order (without `_extra`, which comes last).
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) columns: Vec<Column>,
    /// Column positions by wire name.
    pub(crate) by_name: HashMap<&'static str, usize, BuildHasherDefault<NameHasher>>,
    /// How many typed fields there are: their columns come first, in field order.
    pub(crate) typed: usize,
    /// The column of the field that places a record in time (its day partition).
    pub(crate) time: usize,
    /// What a record is, for the error of a line that is not one.
    pub(crate) expecting: &'static str,
    pub(crate) schema: Arc<Schema>,
}

impl Columns {
    /// The columns of record type `R`: its typed fields in table order, then its other columns.
    pub(crate) fn of<R: Record>() -> Columns {
        // The decoder keeps the typed fields seen in a line as a set of 64 bits.
        const {
            assert!(
                <R::Field as Field>::ALL.len() <= 64,
                "a record has at most 64 typed fields"
            )
        };
        let typed = <R::Field as Field>::INFO.iter().map(|f| Column {
            name: f.wire,
            kind: f.kind.into(),
        });
        let other = R::OTHER_COLUMNS.iter().map(|c| Column {
            name: c.wire,
            kind: c.kind,
        });
        let columns: Vec<Column> = typed.chain(other).collect();
        let by_name = columns.iter().enumerate().map(|(i, c)| (c.name, i)).collect();
        let mut fields: Vec<ArrowField> = columns.iter().map(|c| arrow_field(c.name, c.kind)).collect();
        fields.push(arrow_field(EXTRA, ColumnKind::Json));
        Columns {
            columns,
            by_name,
            typed: <R::Field as Field>::INFO.len(),
            time: R::TIME.index(),
            expecting: R::EXPECTING,
            schema: Arc::new(Schema::new(fields)),
        }
    }
}

/// The hash of the column names: a column is looked up by name for every field of every record, and the names are
/// short and ours (no hash flooding to fear), where SipHash, or a hash of one byte at a time, would cost more than
/// the rest of the lookup. Eight bytes at a time, mixed as rustc's FxHash mixes them.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl NameHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for NameHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // The table picks buckets by the low bits, which the multiplication leaves weakest.
        self.0.rotate_left(26)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.mix(u64::from(b));
    }
}

/// The Arrow type of a column kind: times in microseconds, UTC (Iterable's times have whole seconds, sometimes a
/// fraction); JSON as UTF-8 text marked with the canonical `arrow.json` extension, which the Parquet writer turns
/// into Parquet's `JSON` logical type.
pub(crate) fn arrow_type(kind: ColumnKind) -> ArrowType {
    match kind {
        ColumnKind::Str | ColumnKind::Json => ArrowType::Utf8,
        ColumnKind::Int => ArrowType::Int64,
        ColumnKind::Time => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnKind::Bool => ArrowType::Boolean,
    }
}

fn arrow_field(name: &str, kind: ColumnKind) -> ArrowField {
    let field = ArrowField::new(name, arrow_type(kind), true);
    if kind == ColumnKind::Json {
        field.with_extension_type(Json::default())
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, User};

    #[test]
    fn event_and_user_schemas_come_from_their_tables() {
        let events = Columns::of::<Event>();
        let names: Vec<&str> = events.columns.iter().map(|c| c.name).collect();
        assert_eq!(
            &names[..12],
            [
                "email",
                "userId",
                "createdAt",
                "campaignId",
                "templateId",
                "messageId",
                "eventName",
                "_type",
                "contentId",
                "channelId",
                "messageTypeId",
                "workflowId"
            ]
        );
        assert_eq!(names[12], "messageBusId");
        assert_eq!(<Event as Record>::TIME.wire_name(), "createdAt");
        assert_eq!(events.schema.fields().len(), events.columns.len() + 1);
        assert_eq!(events.schema.fields().last().map(|f| f.name().as_str()), Some(EXTRA));
        let kind = |name: &str| events.columns[events.by_name[name]].kind;
        assert_eq!(kind("createdAt"), ColumnKind::Time);
        assert_eq!(kind("campaignId"), ColumnKind::Int);
        assert_eq!(kind("catalogLookupCount"), ColumnKind::Int);
        assert_eq!(kind("itblInternal"), ColumnKind::Json);
        assert_eq!(kind("isCustomEvent"), ColumnKind::Bool);
        assert!(
            !events.by_name.contains_key("linkId"),
            "a name without a kind has no column"
        );
        assert_eq!(
            events
                .schema
                .field_with_name("createdAt")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))
        );
        let users = Columns::of::<User>();
        assert_eq!(<User as Record>::TIME.wire_name(), "profileUpdatedAt");
        assert_eq!(
            users.columns[users.by_name["itblInternal.documentCreatedAt"]].kind,
            ColumnKind::Time
        );
    }
}
