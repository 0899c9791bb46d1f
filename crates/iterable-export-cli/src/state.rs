//! The checkpoint file of `export --state`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use iterable_export::Error;
use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

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
    #[serde(default)]
    pub seen: Vec<String>,
    /// The previous run's end: seen records are dropped only before it.
    #[serde(default)]
    pub seen_until: Option<DateTime<Utc>>,
    /// Start of this run's look-back tail.
    pub tail_from: DateTime<Utc>,
    /// Identities of records committed in this run's tail so far.
    #[serde(default)]
    pub tail: Vec<String>,
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
        let state: State = serde_json::from_str(&text).map_err(|err| {
            io_error(
                format!(
                    "the state file {} is not valid ({err}); fix or delete it to start over",
                    path.display()
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            )
        })?;
        if state.version != VERSION {
            return Err(io_error(
                format!(
                    "the state file {} has version {}, this program reads {VERSION}",
                    path.display(),
                    state.version
                ),
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            ));
        }
        Ok(state)
    }

    /// Writes the state atomically: a temporary file next to it, synced, then renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| io_error("cannot serialize the state", std::io::Error::other(e)))?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(dir) = std::fs::File::open(dir)
            {
                // Make the rename durable; not every platform can sync a directory.
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| io_error(format!("cannot write the state file {}", path.display()), e))
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
                tail: vec!["ab".into()],
            },
        );
        state.save(&path)?;
        assert_eq!(State::load(&path)?, state);
        assert!(!dir.path().join("state.json.tmp").exists());
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
