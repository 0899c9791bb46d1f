//! Singer state: `{"bookmarks": {"<stream>": {…}}}`, one bookmark per stream, holding what an
//! export needs to continue exactly once — the same facts as `export --state` keeps per data
//! type (see `crate::state::Entry`), without the output file.
//!
//! tap-iterable's state, `{"currently_syncing": …, "bookmarks": {"<stream>": {"<replication
//! key>": "<time>"}}}`, is read too: each of its bookmarks of a stream this tap syncs is migrated
//! (see [`from_tap_iterable`]), so a user switching taps continues where tap-iterable stopped.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use iterable_export::{Error, RecordId, Window};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalog::Stream;
use crate::plan::spans;
use crate::state::id_list;

/// One stream's bookmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Bookmark {
    /// The time field (Singer's convention; informative).
    pub(crate) replication_key: String,
    /// Every record before this time was emitted (the completed-up-to time).
    pub(crate) replication_key_value: DateTime<Utc>,
    /// Start of the sync that wrote this bookmark.
    pub(crate) start: DateTime<Utc>,
    /// End of that sync: while `replication_key_value` is before it, the sync was interrupted
    /// and the next one finishes it first.
    pub(crate) end: DateTime<Utc>,
    /// Identities of the previous sync's look-back records still to drop when read again.
    #[serde(default, with = "id_list")]
    pub(crate) seen: Vec<RecordId>,
    /// Seen records are dropped only in windows before this time (the previous sync's end).
    #[serde(default)]
    pub(crate) seen_until: Option<DateTime<Utc>>,
    /// Start of this sync's look-back tail.
    pub(crate) tail_from: DateTime<Utc>,
    /// Identities of the records emitted in the tail so far.
    #[serde(default, with = "id_list")]
    pub(crate) tail: Vec<RecordId>,
}

/// One pass over a stream: the spans to export and how to de-duplicate them. A span is not cut
/// at the look-back's instants: its records carry their replication key, by which the pass's
/// `Dedup` drops and remembers them one by one (one request where three were).
#[derive(Debug, PartialEq)]
pub(crate) struct Pass {
    pub(crate) spans: Vec<Window>,
    pub(crate) seen: Vec<RecordId>,
    pub(crate) seen_until: Option<DateTime<Utc>>,
    pub(crate) tail_from: DateTime<Utc>,
    /// Identities already remembered from the tail by the interrupted sync being finished.
    pub(crate) remembered: Vec<RecordId>,
    /// The bookmark before the first window commits.
    pub(crate) bookmark: Bookmark,
}

/// The next pass of a stream, or `None` when it is complete up to `end`. An interrupted sync is
/// finished first (to the end it had, resuming at its bookmark); a complete one continues from
/// its end, re-reading its look-back tail and dropping the records it had emitted there.
pub(crate) fn next_pass(
    bookmark: Option<&Bookmark>,
    replication_key: &str,
    start_date: DateTime<Utc>,
    end: DateTime<Utc>,
    lookback: TimeDelta,
) -> Option<Pass> {
    let end = end.trunc_subsecs(0);
    if let Some(b) = bookmark.filter(|b| b.replication_key_value < b.end) {
        return Some(Pass {
            spans: spans(b.replication_key_value, b.end, &[]),
            seen: b.seen.clone(),
            seen_until: b.seen_until,
            tail_from: b.tail_from,
            remembered: b.tail.clone(),
            bookmark: b.clone(),
        });
    }
    let (start, seen, seen_until) = match bookmark {
        Some(b) => (b.tail_from, b.tail.clone(), Some(b.end)),
        None => (start_date.trunc_subsecs(0), Vec::new(), None),
    };
    if end <= seen_until.unwrap_or(start) || start >= end {
        return None;
    }
    let tail_from = end.checked_sub_signed(lookback).unwrap_or(start).max(start);
    Some(Pass {
        spans: spans(start, end, &[]),
        seen: seen.clone(),
        seen_until,
        tail_from,
        remembered: Vec::new(),
        bookmark: Bookmark {
            replication_key: replication_key.to_owned(),
            replication_key_value: start,
            start,
            end,
            seen,
            seen_until,
            tail_from,
            tail: Vec::new(),
        },
    })
}

/// The whole state: this tap's bookmarks, and whatever else the state held (other streams'
/// bookmarks, other keys), passed on unchanged.
#[derive(Debug, Default)]
pub(crate) struct State {
    other: Map<String, Value>,
    other_bookmarks: Map<String, Value>,
    bookmarks: BTreeMap<String, Bookmark>,
}

fn invalid(path: &Path, what: String) -> Error {
    Error::Io {
        context: format!(
            "the state file {} {what}; fix it, or delete it to sync from start_date",
            path.display()
        ),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    }
}

impl State {
    /// Reads a state file (Singer's `--state`); a bookmark of a stream in `streams` must be one
    /// this tap wrote, or tap-iterable's (migrated, saying so on standard error).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file and what is wrong.
    pub(crate) fn load(path: &Path, streams: &[String]) -> iterable_export::Result<State> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("cannot read the state file {}", path.display()),
            source: e,
        })?;
        if text.trim().is_empty() {
            return Ok(State::default());
        }
        let mut other = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(invalid(path, "is not a JSON object".into())),
            Err(e) => return Err(invalid(path, format!("is not JSON ({e})"))),
        };
        let mut other_bookmarks = match other.remove("bookmarks") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(invalid(path, "has \"bookmarks\" that are not an object".into())),
        };
        let mut bookmarks = BTreeMap::new();
        for name in streams {
            if let Some(value) = other_bookmarks.remove(name) {
                let bookmark = match from_tap_iterable(name, &value) {
                    Some(Ok(bookmark)) => {
                        tracing::warn!(
                            "the state file {}: the bookmark of {name} is tap-iterable's ({value}): migrated, \
                             {name} continues from {} (records of that second may be sent again, as \
                             tap-iterable would send them)",
                            path.display(),
                            bookmark
                                .replication_key_value
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        );
                        bookmark
                    }
                    Some(Err(what)) => return Err(invalid(path, what)),
                    None => serde_json::from_value(value)
                        .map_err(|e| invalid(path, format!("has a bookmark of {name} this tap did not write ({e})")))?,
                };
                bookmarks.insert(name.clone(), bookmark);
            }
        }
        Ok(State {
            other,
            other_bookmarks,
            bookmarks,
        })
    }

    /// A stream's bookmark.
    pub(crate) fn get(&self, stream: &str) -> Option<&Bookmark> {
        self.bookmarks.get(stream)
    }

    /// Sets a stream's bookmark.
    pub(crate) fn set(&mut self, stream: &str, bookmark: Bookmark) {
        self.bookmarks.insert(stream.to_owned(), bookmark);
    }

    /// The state as JSON: `{"bookmarks": {...}, ...}`.
    pub(crate) fn to_value(&self) -> Value {
        let mut bookmarks = self.other_bookmarks.clone();
        for (name, bookmark) in &self.bookmarks {
            // A bookmark is plain data: serializing it cannot fail.
            bookmarks.insert(name.clone(), serde_json::to_value(bookmark).unwrap_or(Value::Null));
        }
        let mut state = self.other.clone();
        state.insert("bookmarks".into(), Value::Object(bookmarks));
        Value::Object(state)
    }
}

/// A bookmark tap-iterable wrote, `{"<replication key>": "<time>"}` (`"createdAt"`,
/// `"profileUpdatedAt"` for `users`; the time as singer-python writes it,
/// `2025-02-22T07:43:31.000000Z`), as ours; `None` when `value` is not one. tap-iterable's time
/// is the latest replication key of the records it emitted, saved after each complete window:
/// every record before it was emitted, so it becomes the completed-up-to time (to the second,
/// rounded down), with no look-back identities. The next sync starts there, as tap-iterable's
/// would have: records of that very second may be emitted again, none is missed.
fn from_tap_iterable(stream: &str, value: &Value) -> Option<Result<Bookmark, String>> {
    let key = Stream::by_name(stream)?.replication_key();
    let map = value.as_object()?;
    if map.contains_key("replication_key_value") {
        return None;
    }
    let time = map.get(key)?;
    let Some(time) = time
        .as_str()
        .and_then(iterable_export::parse_iterable_time)
        .map(|t| t.trunc_subsecs(0))
    else {
        return Some(Err(format!(
            "has tap-iterable's bookmark of {stream} with a {key} that is not a time ({time})"
        )));
    };
    Some(Ok(Bookmark {
        replication_key: key.to_owned(),
        replication_key_value: time,
        start: time,
        end: time,
        seen: Vec::new(),
        seen_until: None,
        tail_from: time,
        tail: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default() + TimeDelta::hours(hours)
    }

    fn io(context: &str, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    fn window(a: i64, b: i64) -> Window {
        Window { start: t(a), end: t(b) }
    }

    #[test]
    fn first_incremental_and_resumed_passes() {
        let hour = TimeDelta::hours(1);
        let first = next_pass(None, "createdAt", t(0), t(10), hour).expect("a first pass");
        assert_eq!(first.spans, [window(0, 10)]);
        assert_eq!((first.tail_from, first.seen_until), (t(9), None));
        assert_eq!(first.bookmark.replication_key_value, t(0));

        // Complete up to 10: the next pass re-reads 9..10 (dropping its records) and goes on.
        let ids = vec![RecordId::of(b"a")];
        let done = Bookmark {
            replication_key_value: t(10),
            tail: ids.clone(),
            ..first.bookmark.clone()
        };
        assert_eq!(next_pass(Some(&done), "createdAt", t(0), t(10), hour), None);
        let next = next_pass(Some(&done), "createdAt", t(0), t(20), hour).expect("an incremental pass");
        assert_eq!(next.spans, [window(9, 20)]);
        assert_eq!(
            (next.seen.clone(), next.seen_until, next.tail_from),
            (ids.clone(), Some(t(10)), t(19))
        );

        // Interrupted at 12: finish to 20 first, whatever the time now.
        let interrupted = Bookmark {
            replication_key_value: t(12),
            seen: Vec::new(),
            tail: Vec::new(),
            ..next.bookmark.clone()
        };
        let resumed = next_pass(Some(&interrupted), "createdAt", t(0), t(30), hour).expect("a resumed pass");
        assert_eq!(resumed.spans, [window(12, 20)]);
        assert_eq!(resumed.seen_until, Some(t(10)));
    }

    #[test]
    fn state_keeps_what_it_does_not_own() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| io("tempdir", e))?;
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"currently_syncing":null,"bookmarks":{"other":{"x":1},"email_send":{"replication_key":"createdAt",
               "replication_key_value":"2024-01-01T10:00:00Z","start":"2024-01-01T00:00:00Z",
               "end":"2024-01-01T10:00:00Z","seen":"","tail_from":"2024-01-01T09:00:00Z","tail":""}}}"#,
        )
        .map_err(|e| io("write", e))?;
        let state = State::load(&path, &["email_send".into()])?;
        assert_eq!(state.get("email_send").map(|b| b.end), Some(t(10)));
        let value = state.to_value();
        assert_eq!(value["bookmarks"]["other"], serde_json::json!({"x": 1}));
        assert_eq!(value["currently_syncing"], Value::Null);
        assert_eq!(
            value["bookmarks"]["email_send"]["replication_key_value"],
            "2024-01-01T10:00:00Z"
        );

        std::fs::write(&path, r#"{"bookmarks":{"email_send":{"replication_key_value":3}}}"#)
            .map_err(|e| io("write", e))?;
        match State::load(&path, &["email_send".into()]) {
            Err(Error::Io { context, .. }) => {
                assert!(
                    context.contains("has a bookmark of email_send this tap did not write"),
                    "{context}"
                )
            }
            other => panic!("a foreign bookmark was accepted: {other:?}"),
        }
        Ok(())
    }

    /// Proves: tap-iterable's state (as its interrupted-sync test writes it) is migrated for the
    /// streams this tap syncs — complete up to its time (rounded down to the second), no
    /// look-back identities, the next pass starting there — and its other keys and bookmarks
    /// are passed on.
    #[test]
    fn tap_iterables_bookmarks_are_migrated() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| io("tempdir", e))?;
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"currently_syncing": "email_open", "bookmarks": {
                "campaigns": {"updatedAt": "2025-03-02T10:18:55.000000Z"},
                "email_bounce": {"createdAt": "2025-03-01T10:58:00.000000Z"},
                "email_open": {"createdAt": "2024-01-01T07:43:31.250000Z"},
                "users": {"profileUpdatedAt": "2024-01-01T02:00:00.000000Z"}}}"#,
        )
        .map_err(|e| io("write", e))?;
        let names = ["email_open".into(), "users".into(), "email_send".into()];
        let state = State::load(&path, &names)?;
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).ok();
        let open = state.get("email_open").expect("migrated");
        let from = at("2024-01-01T07:43:31Z").expect("a time");
        assert_eq!(
            open,
            &Bookmark {
                replication_key: "createdAt".into(),
                replication_key_value: from,
                start: from,
                end: from,
                seen: Vec::new(),
                seen_until: None,
                tail_from: from,
                tail: Vec::new(),
            }
        );
        let users = state.get("users").expect("migrated");
        assert_eq!(
            (users.replication_key.as_str(), Some(users.end)),
            ("profileUpdatedAt", at("2024-01-01T02:00:00Z"))
        );
        assert_eq!(state.get("email_send"), None);
        let pass = next_pass(Some(open), "createdAt", t(0), t(10), TimeDelta::minutes(5)).expect("a pass");
        assert_eq!(pass.spans.first().map(|w| w.start), Some(from));
        assert_eq!((pass.seen, pass.seen_until), (Vec::new(), Some(from)));
        let value = state.to_value();
        assert_eq!(value["currently_syncing"], "email_open");
        assert_eq!(
            value["bookmarks"]["campaigns"],
            serde_json::json!({"updatedAt": "2025-03-02T10:18:55.000000Z"})
        );
        // Not a stream this run syncs: passed on as it is.
        assert_eq!(
            value["bookmarks"]["email_bounce"],
            serde_json::json!({"createdAt": "2025-03-01T10:58:00.000000Z"})
        );
        assert_eq!(
            value["bookmarks"]["email_open"]["replication_key_value"],
            "2024-01-01T07:43:31Z"
        );

        std::fs::write(&path, r#"{"bookmarks":{"email_open":{"createdAt":"yesterday"}}}"#)
            .map_err(|e| io("write", e))?;
        match State::load(&path, &names) {
            Err(Error::Io { context, .. }) => assert_eq!(
                context,
                format!(
                    "the state file {} has tap-iterable's bookmark of email_open with a createdAt that is not a time \
                     (\"yesterday\"); fix it, or delete it to sync from start_date",
                    path.display()
                )
            ),
            other => panic!("a bad time was accepted: {other:?}"),
        }
        Ok(())
    }
}
