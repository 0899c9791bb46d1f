//! Staging: a Parquet directory written whole beside `DIR/<dataType>` and swapped in once complete, for `convert`
//! and for an `export --format parquet` without a state file (which, like a file export's `.part` file, leaves
//! the earlier export readable and unchanged until the new one is complete, and unchanged if it fails).
//!
//! The run holds `DIR/<dataType>/_lock` from start to swap: no other run writes that data type meanwhile (an export
//! with a state file holds the same lock), so a staging directory of that data type that is not the run's own was
//! left by a run that died (a kill), and is removed.

use std::path::{Path, PathBuf};

use iterable_export::{DataType, Error, ExclusiveLock};

/// The prefix of a data type's staging directories, `DIR/.staging-<dataType>-<pid>` (`name` is the data type's).
fn prefix(name: &str) -> String {
    format!(".staging-{name}-")
}

/// Where [`Staging::swap`] moves the old directory, inside the staging directory.
const OLD: &str = "old";

/// A data type's output being written into `DIR/.staging-<dataType>-<pid>/<dataType>`.
#[derive(Debug)]
pub(crate) struct Staging {
    /// `DIR/<dataType>`.
    target: PathBuf,
    /// `DIR/.staging-<dataType>-<pid>`.
    dir: PathBuf,
    /// `DIR/<dataType>/_lock`, held.
    lock: Option<ExclusiveLock>,
    /// Whether `DIR/<dataType>` was created to hold the lock (removed again when the run fails).
    created: bool,
    /// Swapped in (or left for the person to move back): nothing to clean.
    done: bool,
}

impl Staging {
    /// Takes `DIR/<dataType>/_lock` (creating the directory if needed), removes staging directories that dead
    /// runs left, and creates this run's, empty. A run killed between the two renames of its swap left no
    /// `DIR/<dataType>` and its complete new directory staged: that one is put in place first.
    ///
    /// # Errors
    /// [`Error::Io`] with kind `WouldBlock` when another run holds `DIR/<dataType>`; [`Error::Io`] when a directory
    /// cannot be created or removed.
    pub(crate) fn begin(output: &Path, data_type: DataType) -> iterable_export::Result<Staging> {
        let target = output.join(data_type.to_string());
        recover(&target)?;
        let created = !target.exists();
        std::fs::create_dir_all(&target).map_err(|e| io_error(format!("cannot create {}", target.display()), e))?;
        let mut staging = Staging {
            dir: output.join(format!("{}{}", prefix(&data_type.to_string()), std::process::id())),
            target,
            lock: None,
            created,
            done: false,
        };
        staging.lock = Some(ExclusiveLock::acquire(staging.target.join("_lock"))?);
        remove_stale(output, data_type)?;
        std::fs::create_dir(&staging.dir)
            .map_err(|e| io_error(format!("cannot create {}", staging.dir.display()), e))?;
        Ok(staging)
    }

    /// The directory to write `<dataType>/` into (as the `dir` of a [`ParquetSink`](iterable_export::ParquetSink)).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces `DIR/<dataType>` with the complete staged directory (its writer finished): the old directory is
    /// first renamed aside, so a crash leaves the old directory or the new one under the visible name, never a
    /// half-removed one, or, between the two renames, the new one complete where the next run puts it in place.
    /// Returns `DIR/<dataType>`.
    ///
    /// # Errors
    /// [`Error::Io`] when a rename fails (the old directory is put back, or the error says where it is); when the
    /// directory cannot be synced after the swap, [`Error::Io`] saying that the new directory is complete and in
    /// place, only not confirmed on disk (the old one is then left aside, for the next run to remove).
    pub(crate) fn swap(self) -> iterable_export::Result<PathBuf> {
        self.swap_with(iterable_export::sync_parent_dir)
    }

    /// [`swap`](Self::swap), syncing the directory with `sync`.
    fn swap_with(mut self, sync: fn(&Path) -> iterable_export::Result<()>) -> iterable_export::Result<PathBuf> {
        let new = self.dir.join(self.target.file_name().unwrap_or_default());
        // The new directory's lock, held from before the swap until the staging directory is gone: another run
        // taking the data type then finds no staging directory of this one.
        let _new_lock = ExclusiveLock::acquire(new.join("_lock"))?;
        let aside = self.dir.join(OLD);
        let had_old = match std::fs::rename(&self.target, &aside) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_error(format!("cannot move {} aside", self.target.display()), e)),
        };
        if let Err(e) = std::fs::rename(&new, &self.target) {
            let mut context = format!("cannot rename {} to {}", new.display(), self.target.display());
            if had_old && std::fs::rename(&aside, &self.target).is_err() {
                self.done = true;
                context.push_str(&format!(
                    "; the earlier {} is now {}: move it back",
                    self.target.display(),
                    aside.display()
                ));
            }
            return Err(io_error(context, e));
        }
        self.done = true;
        confirm_durable(&self.target, had_old.then_some(aside.as_path()), sync)?;
        // The old directory: the new one is in place, so a failure here is only disk space to reclaim.
        if let Err(err) = remove_dir_if_present(&self.dir) {
            tracing::warn!("{err}");
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    /// A run that did not swap: its staging directory goes, and `DIR/<dataType>` if the run created it (holding
    /// only `_lock`). Best effort: what remains is removed by the next run as a dead run's.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.created {
            if self.lock.is_some() {
                let _ = std::fs::remove_file(self.target.join("_lock"));
            }
            let _ = std::fs::remove_dir(&self.target);
        }
        drop(self.lock.take());
    }
}

/// The staging directories of the data type named `name` in `output`.
fn staging_dirs(output: &Path, name: &str) -> iterable_export::Result<Vec<PathBuf>> {
    let prefix = prefix(name);
    let entries = match std::fs::read_dir(output) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(format!("cannot read {}", output.display()), e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(format!("cannot read {}", output.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let matches = name
            .strip_prefix(&prefix)
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if matches && entry.path().is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Completes the swap of a run killed between its two renames, which left no `DIR/<dataType>` (`target`) and its
/// complete new directory staged: that one is put in place (see [`recover_swap`]). Every run writing `target` does
/// this first, with a state file or without, so that no run removes that directory as a dead run's staging.
///
/// # Errors
/// [`Error::Io`] when `DIR` cannot be read, or the directory cannot be renamed or synced.
pub(crate) fn recover(target: &Path) -> iterable_export::Result<()> {
    if target.exists() {
        return Ok(());
    }
    let (Some(output), Some(name)) = (target.parent(), target.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    recover_swap(output, name, target)
}

/// With `target` missing: a staged directory that is complete (`_SUCCESS`) and whose run is dead (its `_lock` is
/// free; a live run holds it through its swap) was being swapped in when its run was killed: it is renamed to
/// `target`.
fn recover_swap(output: &Path, name: &str, target: &Path) -> iterable_export::Result<()> {
    for dir in staging_dirs(output, name)? {
        let new = dir.join(name);
        if !new.join("_SUCCESS").is_file() {
            continue;
        }
        let Ok(lock) = ExclusiveLock::acquire(new.join("_lock")) else {
            continue;
        };
        std::fs::rename(&new, target)
            .map_err(|e| io_error(format!("cannot rename {} to {}", new.display(), target.display()), e))?;
        confirm_durable(target, None, iterable_export::sync_parent_dir)?;
        drop(lock);
        tracing::warn!(
            "{} was missing: a run was stopped while putting it in place; its complete export, {}, is back there",
            target.display(),
            new.display()
        );
        return Ok(());
    }
    Ok(())
}

/// Syncs the directory holding `target`, just renamed into place, with `sync`. Its failure does not undo the swap:
/// readers already see the complete new `target`; what is unconfirmed is that the rename would survive a crash of
/// the machine, and the error says so (and where the earlier directory, `aside`, was left).
fn confirm_durable(
    target: &Path,
    aside: Option<&Path>,
    sync: fn(&Path) -> iterable_export::Result<()>,
) -> iterable_export::Result<()> {
    sync(target).map_err(|err| match err {
        Error::Io { context, source } => io_error(
            format!(
                "{} is complete and in place, but whether it would survive a crash of the machine could not be \
                 confirmed ({context}){}; check the disk, and run again if in doubt",
                target.display(),
                aside
                    .map(|old| format!("; the earlier one is left in {} until the next run", old.display()))
                    .unwrap_or_default()
            ),
            source,
        ),
        other => other,
    })
}

/// Removes the staging directories of `data_type` in `output`: the caller holds `DIR/<dataType>/_lock`, so no
/// live run owns one. Says so on stderr, once, naming them.
///
/// # Errors
/// [`Error::Io`] when `output` cannot be read or a directory cannot be removed.
pub(crate) fn remove_stale(output: &Path, data_type: DataType) -> iterable_export::Result<()> {
    let mut removed = Vec::new();
    for dir in staging_dirs(output, &data_type.to_string())? {
        remove_dir_if_present(&dir)?;
        removed.push(dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
    }
    if !removed.is_empty() {
        tracing::warn!(
            "removed what an interrupted run left in {}: {} (the staging director{} of {data_type}, whose run \
             did not finish)",
            output.display(),
            removed.join(", "),
            if removed.len() == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

fn remove_dir_if_present(dir: &Path) -> iterable_export::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// An I/O error naming the file.
fn io_error(context: String, e: std::io::Error) -> Error {
    Error::Io { context, source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_sync_failing_after_the_swap_says_the_new_directory_is_complete_and_in_place() {
        let output = tempfile::tempdir().expect("tempdir");
        let target = output.path().join("emailSend");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("part-all.parquet"), "earlier").expect("write");
        let staging = Staging::begin(output.path(), DataType::EmailSend).expect("begin");
        let dir = staging.dir().to_owned();
        std::fs::create_dir(dir.join("emailSend")).expect("mkdir");
        std::fs::write(dir.join("emailSend/part-all.parquet"), "new").expect("write");
        std::fs::write(dir.join("emailSend/_SUCCESS"), "").expect("write");

        let err = staging
            .swap_with(|_| {
                Err(Error::Io {
                    context: "cannot sync the directory X".into(),
                    source: std::io::Error::other("disk gone"),
                })
            })
            .expect_err("the sync failed");
        assert_eq!(
            err.to_string(),
            format!(
                "{} is complete and in place, but whether it would survive a crash of the machine could not be \
                 confirmed (cannot sync the directory X); the earlier one is left in {} until the next run; check \
                 the disk, and run again if in doubt: disk gone",
                target.display(),
                dir.join(OLD).display()
            )
        );
        // The swap stands: the new directory in place, the earlier one aside.
        assert_eq!(
            std::fs::read_to_string(target.join("part-all.parquet")).expect("read"),
            "new"
        );
        assert_eq!(names(&target), ["_SUCCESS", "_lock", "part-all.parquet"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("old/part-all.parquet")).expect("read"),
            "earlier"
        );
        assert_eq!(names(&dir), [OLD]);
    }
}
