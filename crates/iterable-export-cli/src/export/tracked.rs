//! The sinks of one data type's export: where its records go ([`Target`]), and what counts
//! them, shows progress and writes the checkpoint at each commit ([`Tracked`]).

use std::io::{BufWriter, Stdout};
use std::path::PathBuf;

use indicatif::{HumanCount, ProgressBar};
use iterable_export::{Dedup, Sink, Window, WriterSink};

use crate::checkpoint::Checkpoint;
use crate::state::Entry;
use crate::ui::Ui;

/// Where records go.
pub(crate) enum Target {
    /// A file, or a Parquet directory.
    File(crate::parquet::Output),
    Stdout(WriterSink<BufWriter<Stdout>>),
}

impl Target {
    fn committed_len(&self) -> u64 {
        match self {
            Target::File(sink) => sink.committed_len(),
            Target::Stdout(_) => 0,
        }
    }
}

impl Sink for Target {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.begin(window).await,
            Target::Stdout(s) => s.begin(window).await,
        }
    }
    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.header(header).await,
            Target::Stdout(s) => s.header(header).await,
        }
    }
    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.record(record).await,
            Target::Stdout(s) => s.record(record).await,
        }
    }
    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.commit(window, records).await,
            Target::Stdout(s) => s.commit(window, records).await,
        }
    }
    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        match self {
            Target::File(s) => s.abort(window).await,
            Target::Stdout(s) => s.abort(window).await,
        }
    }
}

/// Counts what is committed, drives the progress bar and writes the checkpoint.
pub(super) struct Tracked {
    pub(super) inner: Dedup<Target>,
    pub(super) bar: ProgressBar,
    pub(super) ui: Ui,
    pub(super) name: String,
    pub(super) attempt_records: u64,
    pub(super) attempt_bytes: u64,
    pub(super) records: u64,
    pub(super) bytes: u64,
    pub(super) checkpoint: Option<Checkpoint>,
    /// `--via jobs`: set by `job_file_done` for the commit of a job's delivered files.
    pub(super) job_mark: Option<iterable_export::JobResume>,
}

impl Tracked {
    fn show(&self, records: u64, bytes: u64) {
        self.bar.set_position(bytes);
        self.bar.set_message(format!("{} records", HumanCount(records)));
    }

    async fn save(&self, update: impl FnOnce(&mut Entry)) -> iterable_export::Result<()> {
        match &self.checkpoint {
            Some(checkpoint) => checkpoint.update(update).await,
            None => Ok(()),
        }
    }
}

impl Sink for Tracked {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.attempt_records = 0;
        self.attempt_bytes = 0;
        self.inner.begin(window).await
    }

    async fn header(&mut self, header: &[u8]) -> iterable_export::Result<()> {
        self.inner.header(header).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.inner.record(record).await?;
        self.attempt_records += 1;
        self.attempt_bytes += record.len() as u64 + 1;
        if self.attempt_records.is_multiple_of(1024) {
            self.show(self.records + self.attempt_records, self.bytes + self.attempt_bytes);
        }
        Ok(())
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        let (skipped, len) = (self.inner.skipped(), self.inner.inner().committed_len());
        self.inner.commit(window, records).await?;
        // Count what reached the output: not the look-back duplicates the dedupe dropped.
        self.records += self.attempt_records - (self.inner.skipped() - skipped);
        self.bytes += match self.inner.inner() {
            Target::File(file) => file.committed_bytes(len, self.attempt_bytes),
            Target::Stdout(_) => self.attempt_bytes,
        };
        self.show(self.records, self.bytes);
        let (len, records_total, tail) = (
            self.inner.inner().committed_len(),
            self.records,
            self.inner.remembered().to_vec(),
        );
        let seen = self.inner.remaining_seen();
        let mark = self.job_mark.take();
        let file_done = mark.is_some();
        let cursor = if file_done { window.start } else { window.end };
        self.save(move |entry| {
            crate::jobs::remember(entry, cursor, mark);
            entry.cursor = cursor;
            entry.seen = seen;
            entry.committed_len = len;
            entry.records = records_total;
            entry.tail = tail;
        })
        .await?;
        if !self.ui.bars && *window != Window::ALL && !file_done {
            tracing::info!("{}: window {window} done, {} records so far", self.name, self.records);
        }
        Ok(())
    }

    /// `--via jobs`: the files delivered so far are committed, the cursor stays at the window's
    /// start and the state remembers the job and its last file, so a resumed run continues the job.
    async fn job_file_done(
        &mut self,
        window: &Window,
        job_id: i64,
        file: &str,
        records: u64,
    ) -> iterable_export::Result<()> {
        self.job_mark = Some(iterable_export::JobResume::new(*window, job_id, Some(file.to_owned())));
        self.commit(window, records).await?;
        self.begin(window).await
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.show(self.records, self.bytes);
        self.inner.abort(window).await
    }
}

/// What a finished export leaves behind.
pub(super) struct Finished {
    pub(super) output: Option<PathBuf>,
    pub(super) records: u64,
    pub(super) bytes: u64,
    pub(super) skipped: u64,
}

/// Completes the output (rename, or flush) and marks the checkpoint done.
pub(super) async fn finish(sink: Tracked) -> iterable_export::Result<Finished> {
    let Tracked {
        inner,
        records,
        bytes,
        checkpoint,
        ..
    } = sink;
    let skipped = inner.skipped();
    let remembered = inner.remembered().to_vec();
    let output = match inner.into_inner() {
        Target::File(file) => Some(file.finish().await?),
        Target::Stdout(out) => {
            out.finish().await?;
            None
        }
    };
    if let Some(checkpoint) = checkpoint {
        checkpoint
            .update(move |entry| {
                entry.done = true;
                entry.cursor = entry.end;
                entry.tail = remembered;
            })
            .await?;
    }
    Ok(Finished {
        output,
        records,
        bytes,
        skipped,
    })
}
