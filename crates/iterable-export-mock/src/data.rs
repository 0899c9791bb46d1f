//! Deterministic synthetic records.
//!
//! Every record is a pure function of `(seed, data type, day, index)`. A day holds
//! [`MockConfig::records_per_day`](crate::MockConfig::records_per_day) records per data type whose
//! timestamps are spread evenly across the day (record `i` of `n` is at second
//! `((2i + 1) * 86400) / (2n)` of the day), so the records of any window can be found without
//! generating other days or other records. The timestamp is `createdAt` for events (and the seed
//! spec's `userNew`/`userUpdate`); the user table (`user`) has no `createdAt` and is windowed by
//! `profileUpdatedAt`, as Iterable windows user exports by profile update time. User records gain
//! custom fields on later days of data (`LATER_FIELDS` in `catalogue`), so their CSV header
//! depends on the window. Within a response, the records of one day are sent in a
//! deterministic pseudo-random order (a stride permutation), days in ascending order.
//!
//! Records are written with a hand-rolled writer into reusable buffers: no `serde_json::Value`.
//!
//! | module | holds |
//! | --- | --- |
//! | `catalogue` | the data types, their families and fields (one table each) |
//! | `stream` | the records of a window in response order: seeking by day and index, record ids |
//! | `generate` | one record's values (and a user's events for `/export/userEvents`) |
//! | `pools` | the values records pick from (names, places, texts with awkward characters) |
//! | `record` | a generated record and its NDJSON and CSV writers; `onlyFields`/`omitFields` |
//! | `split` | cutting a window's body into the files of an export job |
//! | `text` | byte-level writers: numbers, JSON strings, CSV cells |
//! | `random` | the seeded mixer and random source |

mod catalogue;
mod generate;
mod pools;
mod random;
mod record;
mod split;
mod stream;
mod text;

pub use catalogue::DataType;
pub(crate) use generate::user_events;
pub(crate) use random::{Rng, mix};
pub(crate) use record::FieldFilter;
pub(crate) use split::{FilePiece, FileSplitter, Layout};
pub(crate) use stream::{DataParams, RecordStream};
pub(crate) use text::{push_csv_cell, push_csv_header, push_i64, push_json_str, push_u64};
