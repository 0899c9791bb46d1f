//! Decoding on several threads: chunks of NDJSON lines go round-robin to a few workers, each of which decodes its
//! chunk into Arrow batches (one per partition key); the results are taken back in the order the chunks were sent,
//! so rows keep the order of the records.
//!
//! Every chunk carries the generation of the pipeline it was sent in, and its result the same: a failure (a worker
//! gone, a batch that cannot be assembled) starts a new generation, forgetting what was in flight, and a result of
//! an earlier generation still queued in a worker is dropped when it comes out. The rows of a failed attempt can
//! therefore never reach the next one. A worker that is gone (it panicked) is replaced by a new one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvError, SyncSender, TryRecvError, sync_channel};

use arrow_array::RecordBatch;
use chrono::NaiveDate;

use super::Partition;
use super::encode::Encoder;
use super::row::Row;
use super::schema::Columns;
use crate::{Error, Result};

/// What a worker made of a chunk.
pub(crate) struct Decoded {
    /// Records in the chunk.
    pub(crate) records: u64,
    /// One batch per partition key, in key order.
    pub(crate) parts: Vec<(Option<NaiveDate>, RecordBatch)>,
    /// Values that contradicted their column's type.
    pub(crate) mismatched: u64,
}

/// A chunk's outcome: its batches, or the 0-based index of its first bad record and what was wrong.
type Outcome = std::result::Result<Decoded, (u64, String)>;

/// What a worker does with each chunk (with state of its own kept from one chunk to the next).
type Decode = Box<dyn FnMut(&[u8]) -> Result<Outcome> + Send>;

/// Makes a worker's [`Decode`] (for each worker started, replacements included).
type MakeDecode = Arc<dyn Fn() -> Decode + Send + Sync>;

struct Worker {
    /// Chunks, with their generation.
    tx: SyncSender<(u64, Vec<u8>)>,
    /// Outcomes, with the generation of their chunk.
    rx: Receiver<(u64, Result<Outcome>)>,
}

/// The workers, and the chunks sent to them whose outcome was not taken yet.
pub(crate) struct Decoders {
    workers: Vec<Worker>,
    make: MakeDecode,
    /// The workers of the chunks in flight in this generation, oldest first.
    in_flight: VecDeque<usize>,
    next: usize,
    generation: u64,
}

impl Decoders {
    /// Starts `n` workers (at least one) for the columns of a record type (`_user`: whether it is a user's; the
    /// columns tell already).
    pub(crate) fn spawn(n: usize, _user: bool, columns: Arc<Columns>, partition: Partition) -> Result<Decoders> {
        let make: MakeDecode = Arc::new(move || {
            let columns = columns.clone();
            let mut encoders = BTreeMap::new();
            Box::new(move |chunk: &[u8]| decode_chunk(chunk, &mut encoders, &columns, partition))
        });
        Self::with(n, make)
    }

    /// Starts `n` workers (at least one) doing `make()`'s work.
    fn with(n: usize, make: MakeDecode) -> Result<Decoders> {
        let workers = (0..n.max(1)).map(|_| start(&make)).collect::<Result<Vec<Worker>>>()?;
        Ok(Decoders {
            workers,
            make,
            in_flight: VecDeque::new(),
            next: 0,
            generation: 0,
        })
    }

    /// Sends a chunk to the next worker; when every worker is busy, first takes the oldest outcome back (returned).
    pub(crate) fn send(&mut self, chunk: Vec<u8>) -> Result<Option<Outcome>> {
        let oldest = if self.in_flight.len() == self.workers.len() {
            self.take()?
        } else {
            None
        };
        let i = self.next;
        // The next worker has no chunk of this generation in flight (they are taken in the order sent): if it is
        // gone, nothing of this generation is lost with it, and the chunk goes to its replacement.
        if let Err(std::sync::mpsc::SendError(job)) = self.workers[i].tx.send((self.generation, chunk)) {
            self.workers[i] = start(&self.make)?;
            self.workers[i].tx.send(job).map_err(|_| gone())?;
        }
        self.in_flight.push_back(i);
        self.next = (i + 1) % self.workers.len();
        Ok(oldest)
    }

    /// The oldest outcome if it is ready (`None` when it is not, or nothing is in flight).
    pub(crate) fn try_take(&mut self) -> Result<Option<Outcome>> {
        self.oldest(false)
    }

    /// The oldest outcome not taken yet (`None` when nothing is in flight).
    pub(crate) fn take(&mut self) -> Result<Option<Outcome>> {
        self.oldest(true)
    }

    /// The oldest outcome, waiting for it or not.
    fn oldest(&mut self, wait: bool) -> Result<Option<Outcome>> {
        loop {
            let Some(&i) = self.in_flight.front() else {
                return Ok(None);
            };
            let rx = &self.workers[i].rx;
            let done = if wait {
                rx.recv().map_err(|RecvError| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match done {
                Ok(done) => {
                    if let Some(outcome) = self.ours(done)? {
                        return Ok(Some(outcome));
                    }
                }
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Disconnected) => return Err(self.lost(i)),
            }
        }
    }

    /// A result from the oldest chunk's worker: the outcome when it is of this generation (the oldest chunk's),
    /// `None` when it is of an earlier one (dropped: its attempt failed).
    fn ours(&mut self, (generation, result): (u64, Result<Outcome>)) -> Result<Option<Outcome>> {
        if generation != self.generation {
            return Ok(None);
        }
        self.in_flight.pop_front();
        match result {
            Ok(outcome) => Ok(Some(outcome)),
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// Worker `i` is gone with a chunk of this generation: the generation fails, and the worker is replaced.
    fn lost(&mut self, i: usize) -> Error {
        self.fail();
        match start(&self.make) {
            Ok(worker) => {
                self.workers[i] = worker;
                gone()
            }
            Err(e) => e,
        }
    }

    /// Forgets the chunks in flight: their outcomes, when they come, are of an earlier generation.
    fn fail(&mut self) {
        self.generation += 1;
        self.in_flight.clear();
    }

    /// The generation (for tests).
    #[cfg(test)]
    fn generation(&self) -> u64 {
        self.generation
    }
}

/// Starts a worker thread.
fn start(make: &MakeDecode) -> Result<Worker> {
    let (tx, chunks) = sync_channel::<(u64, Vec<u8>)>(1);
    let (results, rx) = sync_channel::<(u64, Result<Outcome>)>(1);
    let mut decode = make();
    std::thread::Builder::new()
        .name("iterable-export parquet decoder".into())
        .spawn(move || {
            while let Ok((generation, chunk)) = chunks.recv() {
                let outcome = decode(&chunk);
                if results.send((generation, outcome)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| Error::io("cannot start a Parquet decoder thread", e))?;
    Ok(Worker { tx, rx })
}

/// Decodes a chunk's lines into per-key encoders, and hands back their batches.
fn decode_chunk(
    chunk: &[u8],
    encoders: &mut BTreeMap<Option<NaiveDate>, Encoder>,
    columns: &Arc<Columns>,
    partition: Partition,
) -> Result<Outcome> {
    let mut records = 0u64;
    let mut row = Row::new(columns);
    let mut start = 0;
    let lines = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    for end in lines {
        let line = &chunk[start.min(end)..end];
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        if let Err(message) = row.decode(columns, line) {
            // What was gathered belongs to a failed attempt: start clean.
            encoders.clear();
            return Ok(Err((records, message)));
        }
        let key = match partition {
            Partition::Day => row.day,
            Partition::None => None,
        };
        encoders
            .entry(key)
            .or_insert_with(|| Encoder::new(columns.clone()))
            .push(&row);
        records += 1;
    }
    let mut parts = Vec::new();
    for (key, encoder) in encoders.iter_mut() {
        if encoder.rows() > 0 {
            parts.push((*key, encoder.finish()?));
        }
    }
    // The encoders are kept for the next chunk (usually of the same days), but not those of every day ever seen:
    // a multi-year input would hold one per day, per worker.
    if encoders.len() > super::files::MAX_OPEN {
        encoders.clear();
    }
    Ok(Ok(Decoded {
        records,
        parts,
        mismatched: row.mismatched,
    }))
}

fn gone() -> Error {
    Error::io(
        "a Parquet decoder thread stopped",
        std::io::Error::other("decoder thread gone"),
    )
}

#[cfg(test)]
mod tests;
