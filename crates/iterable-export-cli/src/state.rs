//! The checkpoint file of `export --state`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use iterable_export::{Error, RecordId};
use serde::{Deserialize, Serialize};

/// Version 3: entries may hold the export jobs of unfinished windows (`jobs`, for
/// `--via jobs`). Version 2 (record identities as 16-byte keys, each list one base64 text) is
/// the same without them, and still loads.
const VERSION: u32 = 3;
/// The oldest version this program reads.
const OLDEST_VERSION: u32 = 2;

/// Progress of every export that used this state file, keyed by `<dataType>.<format>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub exports: BTreeMap<String, Entry>,
}

/// One data type's export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Start of this run's span, inclusive.
    pub start: DateTime<Utc>,
    /// End of this run's span, exclusive.
    pub end: DateTime<Utc>,
    /// Everything before this is committed to the output.
    pub cursor: DateTime<Utc>,
    /// Output length at the last commit.
    pub committed_len: u64,
    /// Records committed in this run.
    pub records: u64,
    /// Whether `[start, end)` is complete and the output renamed to its final name.
    pub done: bool,
    /// The output file.
    pub output: PathBuf,
    /// `only:a,b`, `omit:a,b` or empty: a resumed run must ask for the same fields.
    pub fields: String,
    /// Identities of records the previous run committed in its look-back tail (dropped when
    /// read again).
    #[serde(default, with = "id_list")]
    pub seen: Vec<RecordId>,
    /// The previous run's end: seen records are dropped only before it.
    #[serde(default)]
    pub seen_until: Option<DateTime<Utc>>,
    /// Start of this run's look-back tail.
    pub tail_from: DateTime<Utc>,
    /// Identities of records committed in this run's tail so far.
    #[serde(default, with = "id_list")]
    pub tail: Vec<RecordId>,
    /// `--via jobs`: the jobs of windows not yet committed, and the last file of each already in
    /// the output, so a resumed run continues them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<iterable_export::JobResume>,
}

/// A list of record identities as one base64 text (16 bytes, about 21 characters, each).
pub(crate) mod id_list {
    use iterable_export::RecordId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ids: &[RecordId], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&RecordId::encode_list(ids))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<RecordId>, D::Error> {
        let text = String::deserialize(deserializer)?;
        RecordId::decode_list(&text).map_err(serde::de::Error::custom)
    }
}

impl State {
    /// Reads a state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: VERSION,
                    exports: BTreeMap::new(),
                });
            }
            Err(err) => return Err(io_error(format!("cannot read the state file {}", path.display()), err)),
        };
        let mut state: State = serde_json::from_str(&text).map_err(|err| {
            io_error(
                format!(
                    "the state file {} is not valid ({err}); fix or delete it to start over",
                    path.display()
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            )
        })?;
        if !(OLDEST_VERSION..=VERSION).contains(&state.version) {
            return Err(io_error(
                format!(
                    "the state file {} has version {}, this program reads {OLDEST_VERSION} to {VERSION}: finish that export with the \
                     version of iterable-export that wrote it, or delete the state file to start over",
                    path.display(),
                    state.version
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            ));
        }
        state.version = VERSION;
        Ok(state)
    }

    /// Writes the state atomically and durably (a uniquely named temporary file, synced, renamed
    /// over it, directory synced): a crash leaves the old state or the new, and two writers
    /// never share a temporary file.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        // Streamed into the file: a state with a million remembered records is ~20 MiB of JSON.
        iterable_export::write_file_atomically_with(path, |out| {
            serde_json::to_writer_pretty(out, self).map_err(std::io::Error::other)
        })
    }

    /// The lock file of a state file: `.<name>.lock` beside it. A run holds it for its whole
    /// duration, so two runs never share a state file.
    pub fn lock_path(path: &Path) -> PathBuf {
        let mut name = std::ffi::OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(".lock");
        path.with_file_name(name)
    }
}

fn io_error(context: impl Into<String>, source: std::io::Error) -> Error {
    Error::Io {
        context: context.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_and_leave_no_temporary_file() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| io_error("tempdir", e))?;
        let path = dir.path().join("state.json");
        assert_eq!(State::load(&path)?.exports.len(), 0);
        let mut state = State {
            version: VERSION,
            exports: BTreeMap::new(),
        };
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let ids = vec![RecordId::of(b"a"), RecordId::of(b"b"), RecordId::of(b"a")];
        state.exports.insert(
            "emailSend.ndjson".into(),
            Entry {
                start: t,
                end: t,
                cursor: t,
                committed_len: 42,
                records: 1,
                done: false,
                output: "x".into(),
                fields: String::new(),
                seen: vec![],
                seen_until: None,
                tail_from: t,
                tail: ids.clone(),
                jobs: vec![iterable_export::JobResume::new(
                    iterable_export::Window { start: t, end: t },
                    7,
                    Some("file-1.json".into()),
                )],
            },
        );
        state.save(&path)?;
        assert_eq!(State::load(&path)?, state);
        let text = std::fs::read_to_string(&path).map_err(|e| io_error("read", e))?;
        // Three 16-byte identities: one base64 text of 64 characters, no per-record strings.
        let encoded = RecordId::encode_list(&ids);
        assert_eq!(encoded.len(), 64);
        assert!(text.contains(&format!("\"tail\": \"{encoded}\"")), "{text}");
        assert!(text.contains("\"seen\": \"\""), "{text}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .map_err(|e| io_error("read_dir", e))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, ["state.json"], "no temporary file is left");
        Ok(())
    }

    #[test]
    fn a_version_2_state_file_still_loads() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| io_error("tempdir", e))?;
        let path = dir.path().join("state.json");
        let v2 = r#"{"version": 2, "exports": {"emailSend.ndjson": {
            "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "cursor": "2024-01-01T00:00:00Z",
            "committed_len": 0, "records": 0, "done": false, "output": "out/emailSend.ndjson", "fields": "",
            "seen": "", "seen_until": null, "tail_from": "2024-01-01T23:55:00Z", "tail": ""}}}"#;
        std::fs::write(&path, v2).map_err(|e| io_error("write", e))?;
        let state = State::load(&path)?;
        assert_eq!(state.version, VERSION);
        let entry = state.exports.get("emailSend.ndjson").map(|e| (e.jobs.len(), e.done));
        assert_eq!(entry, Some((0, false)));
        std::fs::write(&path, v2.replace("\"version\": 2", "\"version\": 1")).map_err(|e| io_error("write", e))?;
        let err = State::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("has version 1, this program reads 2 to 3"), "{err}");
        Ok(())
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| io_error("tempdir", e))?;
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").map_err(|e| io_error("write", e))?;
        let err = State::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("is not valid") && err.contains("delete it to start over"),
            "{err}"
        );
        Ok(())
    }
}
