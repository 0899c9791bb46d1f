//! The `.part` file as the writer thread owns it: writes, background syncs, truncation, and the
//! rewrite that adds CSV columns.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::super::columns;
use super::super::offload;
use super::super::{lock, sync_parent_dir};
use crate::{Error, Result};

/// How much may be written between two background syncs of a [`FileSink`](crate::FileSink).
const BACKGROUND_SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// The `.part` file, owned by the writer thread.
pub(super) struct PartFile {
    pub(super) part: PathBuf,
    pub(super) file: File,
    pub(super) written: u64,
    /// `written` when the last background sync started.
    pub(super) synced_hint: u64,
    pub(super) background_error: Option<std::io::Error>,
    pub(super) background: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    /// The replaced `.part` file, kept open (and locked) until `.part.next` is renamed over it.
    pub(super) stale: Option<File>,
}

impl offload::Target for PartFile {
    fn write_batch(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| self.io_error("cannot write", e))?;
        self.written += bytes.len() as u64;
        if self.written >= self.synced_hint + BACKGROUND_SYNC_EVERY {
            self.sync_in_background();
        }
        Ok(())
    }
}

impl PartFile {
    pub(super) fn io_error(&self, what: &str, err: std::io::Error) -> Error {
        Error::io(format!("{what} {}", self.part.display()), err)
    }

    /// Starts writing what the page cache holds of the file to disk on another thread, so the
    /// `fsync` of a commit or of [`FileSink::finish`] finds little left to do: the disk works
    /// while the download goes on, instead of after it. At most one such sync runs at a time.
    /// It syncs through a duplicate of the written (so writable) descriptor, and its result is
    /// collected, and an error reported, by the next sync.
    pub(super) fn sync_in_background(&mut self) {
        if self.background.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        if let Some(done) = self.background.take()
            && let Ok(Err(err)) = done.join()
        {
            self.background_error.get_or_insert(err);
        }
        self.synced_hint = self.written;
        match self.file.try_clone() {
            Ok(file) => self.background = Some(std::thread::spawn(move || file.sync_data())),
            Err(err) => {
                self.background_error.get_or_insert(err);
            }
        }
    }

    /// Waits for the background sync and reports its error, if it had one.
    pub(super) fn join_background(&mut self) -> Result<()> {
        if let Some(handle) = self.background.take() {
            match handle.join() {
                Ok(Err(err)) => {
                    self.background_error.get_or_insert(err);
                }
                Ok(Ok(())) => {}
                Err(_) => {
                    self.background_error
                        .get_or_insert(std::io::Error::other("the background sync panicked"));
                }
            }
        }
        match self.background_error.take() {
            Some(err) => Err(self.io_error("cannot sync", err)),
            None => Ok(()),
        }
    }

    pub(super) fn sync(&mut self) -> Result<()> {
        self.join_background()?;
        self.file.sync_data().map_err(|e| self.io_error("cannot sync", e))
    }

    /// Writes `<part>.next`: the new header row, the committed records (`..committed`) each
    /// padded with `extra` empty fields, then this attempt's records (`committed..`) as they are;
    /// syncs it and continues in it. Returns its length.
    pub(super) fn grow(&mut self, next: &Path, header: &[u8], extra: usize, committed: u64) -> Result<u64> {
        // Written under a temporary name and renamed when complete and synced, so a file named
        // `.part.next` is always whole: a resume tells it from the checkpoint by its length. A
        // failure removes the temporary file: nothing half-written stays behind.
        let mut tmp_name = next.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let grown = self.grow_into(&tmp, next, header, extra, committed);
        if grown.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        grown
    }

    fn grow_into(&mut self, tmp: &Path, next: &Path, header: &[u8], extra: usize, committed: u64) -> Result<u64> {
        self.join_background()?;
        let context = |what: &str| format!("{what} {} to add CSV columns", next.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(tmp)
            .map_err(|e| Error::io(context("cannot create"), e))?;
        lock(&file, tmp)?;
        file.set_len(0).map_err(|e| Error::io(context("cannot empty"), e))?;
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, &file);
        let io = |e| Error::io(context("cannot write"), e);
        out.write_all(header).and_then(|()| out.write_all(b"\n")).map_err(io)?;
        let reopen = |offset: u64| -> Result<File> {
            let mut f = File::open(&self.part).map_err(|e| self.io_error("cannot read", e))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| self.io_error("cannot read", e))?;
            Ok(f)
        };
        columns::pad_records(
            std::io::BufReader::new(std::io::Read::take(reopen(0)?, committed)),
            extra,
            &mut out,
        )?;
        std::io::copy(
            &mut std::io::Read::take(reopen(committed)?, self.written - committed),
            &mut out,
        )
        .map_err(io)?;
        out.flush().map_err(io)?;
        drop(out);
        file.sync_data().map_err(|e| Error::io(context("cannot sync"), e))?;
        std::fs::rename(tmp, next).map_err(|e| Error::io(context("cannot rename"), e))?;
        sync_parent_dir(next)?;
        let len = file.metadata().map_err(|e| Error::io(context("cannot read"), e))?.len();
        let mut file = file;
        file.seek(SeekFrom::Start(len))
            .map_err(|e| Error::io(context("cannot seek in"), e))?;
        self.stale = Some(std::mem::replace(&mut self.file, file));
        self.written = len;
        self.synced_hint = len;
        Ok(len)
    }

    /// Renames `<part>.next` over `<part>` (or, finishing, over `path`), durably.
    pub(super) fn replace_with_next(&mut self, next: &Path, target: &Path) -> Result<()> {
        // Finishing: the old `.part` goes first, so a process killed between the two steps leaves
        // `.part.next`, which a resume picks by its length, and never a stale `.part` beside a
        // final file.
        if target != self.part && self.part.exists() {
            std::fs::remove_file(&self.part).map_err(|e| self.io_error("cannot remove", e))?;
        }
        std::fs::rename(next, target)
            .map_err(|e| Error::io(format!("cannot rename {} to {}", next.display(), target.display()), e))?;
        sync_parent_dir(target)?;
        self.stale = None;
        Ok(())
    }

    pub(super) fn truncate(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.seek(SeekFrom::Start(len)))
            .map_err(|e| self.io_error("cannot truncate an aborted window of", e))?;
        self.written = len;
        Ok(())
    }
}
