//! `DIR/<dataType>/_committed`: what each commit of [`ParquetSink`](super::ParquetSink) made visible, one JSON line
//! per commit, `{"commit":N,"files":["dt=…/part-….parquet",…]}` (a window without records lists no file).
//!
//! It is the one record of which files make up the export. A commit appends its line before renaming its files, so
//! after any crash the log names every visible file; the caller's checkpoint says how many commits count. A resume
//! therefore removes the files of the commits after its checkpoint (renamed before a crash stopped the checkpoint),
//! and refuses to go on when a file of a counted commit is gone: the export would have a hole.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sink::sync_parent_dir;
use crate::{Error, Result};

/// Missing files named in an error, at most.
const NAMED: usize = 3;

/// `DIR/<dataType>/_committed`.
pub(crate) fn log_path(root: &Path) -> PathBuf {
    root.join("_committed")
}

/// One line of the log.
#[derive(Serialize, Deserialize)]
struct Line {
    commit: u64,
    files: Vec<String>,
}

/// Appends the line of commit `seq`, listing `files` (relative to `root`), and returns the log's length before it,
/// for [`undo`].
pub(crate) fn append(root: &Path, seq: u64, files: Vec<String>, sync: bool) -> Result<u64> {
    let path = log_path(root);
    let context = || format!("cannot write {}", path.display());
    let mut line = serde_json::to_vec(&Line { commit: seq, files })
        .map_err(|e| Error::io(context(), std::io::Error::other(e.to_string())))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Error::io(context(), e))?;
    let before = file.metadata().map_err(|e| Error::io(context(), e))?.len();
    let written = file
        .write_all(&line)
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    if let Err(e) = written {
        let _ = file.set_len(before);
        return Err(Error::io(context(), e));
    }
    if sync && before == 0 {
        sync_parent_dir(&path)?;
    }
    Ok(before)
}

/// Takes back the line [`append`] added (its commit failed), best effort: a resume reads the last line of a commit
/// number anyway.
pub(crate) fn undo(root: &Path, len: u64) {
    if let Ok(file) = OpenOptions::new().write(true).open(log_path(root)) {
        let _ = file.set_len(len);
    }
}

/// The log read against a checkpoint of `commits` commits.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Whether the log exists.
    exists: bool,
    /// Commits up to the checkpoint's that have a line.
    recorded: u64,
    /// Files of those commits that are gone, relative to the root.
    missing: Vec<String>,
    /// Files of later commits (to remove), relative to the root.
    pub(crate) later: Vec<String>,
    /// The length of the log without the later commits' lines (and a line a crash cut short).
    pub(crate) keep: u64,
}

/// Reads `root`'s log: which files the first `commits` commits made, whether they are all there, and what later
/// commits made. Changes nothing.
///
/// # Errors
/// [`Error::Io`] when the log cannot be read or is not what [`append`] writes.
pub(crate) fn read(root: &Path, commits: u64) -> Result<Log> {
    let path = log_path(root);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Log::default()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut reader = BufReader::new(file);
    let mut log = Log {
        exists: true,
        ..Log::default()
    };
    // By commit number: the last line of a number counts (a commit that failed after its line was written is
    // written again by the next attempt).
    let mut counted = std::collections::BTreeMap::<u64, Vec<String>>::new();
    let (mut offset, mut bytes, mut later) = (0u64, Vec::new(), false);
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 || bytes.last() != Some(&b'\n') {
            // The end, or a line a crash cut short: its commit renamed nothing.
            break;
        }
        let line: Line = serde_json::from_slice(&bytes).map_err(|e| {
            Error::io(
                format!(
                    "{} is not what this program writes (line at byte {offset}: {e}); it records which files the \
                     export is made of, so the export cannot be continued: start it over",
                    path.display()
                ),
                std::io::ErrorKind::InvalidData.into(),
            )
        })?;
        if line.commit > commits {
            later = true;
            log.later.extend(line.files);
        } else if later {
            return Err(Error::io(
                format!(
                    "{}: commit {} is listed after a later one; the file was changed by hand, so the export \
                     cannot be continued: start it over",
                    path.display(),
                    line.commit
                ),
                std::io::ErrorKind::InvalidData.into(),
            ));
        } else {
            counted.insert(line.commit, line.files);
        }
        offset += n as u64;
        if !later {
            log.keep = offset;
        }
    }
    log.recorded = counted.keys().filter(|c| (1..=commits).contains(*c)).count() as u64;
    log.missing = counted
        .into_values()
        .flatten()
        .filter(|file| !root.join(file).is_file())
        .collect();
    Ok(log)
}

impl Log {
    /// Checks that the log knows each of the first `commits` commits and that their files are all there.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `NotFound`, naming what is missing and what to do.
    pub(crate) fn verify(&self, root: &Path, commits: u64) -> Result<()> {
        let log = log_path(root);
        let context = if commits == 0 {
            return Ok(());
        } else if !self.exists {
            format!(
                "{} is gone: it lists the files of the {commits} commits to continue from, which cannot be checked \
                 without it",
                log.display()
            )
        } else if self.recorded < commits {
            format!(
                "{} lists {} of the {commits} commits to continue from",
                log.display(),
                self.recorded
            )
        } else if !self.missing.is_empty() {
            let mut named = self.missing[..self.missing.len().min(NAMED)].join(", ");
            if self.missing.len() > NAMED {
                named.push_str(", …");
            }
            let n = self.missing.len();
            let (files, are) = if n == 1 { ("file", "is") } else { ("files", "are") };
            format!(
                "{}: {n} {files} of the {commits} commits to continue from {are} missing ({named})",
                root.display()
            )
        } else {
            return Ok(());
        };
        Err(Error::io(
            format!(
                "{context}; continuing would leave a hole in the export: restore what is missing, or start the \
                 export over from the beginning"
            ),
            std::io::ErrorKind::NotFound.into(),
        ))
    }
}
