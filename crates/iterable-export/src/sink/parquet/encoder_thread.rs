//! Parquet encoding (column encodings, compression, writing) of one file on a thread of its own, fed with Arrow
//! batches through a queue of two: decoding records and encoding columns then use two cores, and memory stays
//! bounded by the batches in flight and the writer's row group.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;

use super::files::parquet_error;
use crate::{Error, Result};

/// Batches that may wait for the encoder.
const QUEUE: usize = 2;

/// A Parquet file being written by its own thread.
pub(crate) struct EncoderThread {
    tmp: PathBuf,
    tx: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl EncoderThread {
    /// Starts the thread; it writes every batch it receives, and closes the file (its footer) when the queue is
    /// dropped.
    pub(crate) fn spawn(mut writer: ArrowWriter<File>, tmp: PathBuf) -> Result<Self> {
        let (tx, rx) = sync_channel::<RecordBatch>(QUEUE);
        let path = tmp.clone();
        let thread = std::thread::Builder::new()
            .name("iterable-export parquet encoder".into())
            .spawn(move || {
                while let Ok(batch) = rx.recv() {
                    writer.write(&batch).map_err(|e| parquet_error(&path, e))?;
                }
                writer.close().map(drop).map_err(|e| parquet_error(&path, e))
            })
            .map_err(|e| Error::io("cannot start a Parquet encoder thread", e))?;
        Ok(EncoderThread {
            tmp,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a batch (waits while the queue is full).
    ///
    /// # Errors
    /// The error that stopped the thread.
    pub(crate) fn write(&mut self, batch: RecordBatch) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(batch).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self.join().err().unwrap_or_else(|| stopped(&self.tmp)))
        }
    }

    /// Writes what is queued and closes the file.
    ///
    /// # Errors
    /// The error of a write or of closing the file.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(stopped(&self.tmp)),
            None => Ok(()),
        }
    }
}

impl Drop for EncoderThread {
    /// Waits for the thread, so that the file is closed before it is removed.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

fn stopped(tmp: &std::path::Path) -> Error {
    Error::io(
        format!("the Parquet encoder of {} stopped", tmp.display()),
        std::io::Error::other("encoder thread gone"),
    )
}
