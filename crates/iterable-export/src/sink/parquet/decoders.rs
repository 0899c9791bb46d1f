//! Decoding on several threads: chunks of NDJSON lines go round-robin to a few workers, each of which decodes its
//! chunk into Arrow batches (one per partition key); the results are taken back in the order the chunks were sent,
//! so rows keep the order of the records.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow_array::RecordBatch;
use chrono::NaiveDate;

use super::Partition;
use super::encode::Encoder;
use super::schema::Columns;
use crate::event::record::Record;
use crate::{Error, Event, Result, User};

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

struct Worker {
    tx: SyncSender<Vec<u8>>,
    rx: Receiver<Result<Outcome>>,
}

/// The workers, and the chunks sent to them whose outcome was not taken yet.
pub(crate) struct Decoders {
    workers: Vec<Worker>,
    in_flight: VecDeque<usize>,
    next: usize,
}

impl Decoders {
    /// Starts `n` workers (at least one) for the record type of `user`.
    pub(crate) fn spawn(n: usize, user: bool, columns: Arc<Columns>, partition: Partition) -> Result<Decoders> {
        let mut workers = Vec::new();
        for _ in 0..n.max(1) {
            let (tx, chunks) = sync_channel::<Vec<u8>>(1);
            let (results, rx) = sync_channel::<Result<Outcome>>(1);
            let columns = columns.clone();
            std::thread::Builder::new()
                .name("iterable-export parquet decoder".into())
                .spawn(move || {
                    if user {
                        work::<User>(&chunks, &results, &columns, partition);
                    } else {
                        work::<Event>(&chunks, &results, &columns, partition);
                    }
                })
                .map_err(|e| Error::io("cannot start a Parquet decoder thread", e))?;
            workers.push(Worker { tx, rx });
        }
        Ok(Decoders {
            workers,
            in_flight: VecDeque::new(),
            next: 0,
        })
    }

    /// Sends a chunk to the next worker; when every worker is busy, first takes the oldest outcome back (returned).
    pub(crate) fn send(&mut self, chunk: Vec<u8>) -> Result<Option<Outcome>> {
        let oldest = if self.in_flight.len() == self.workers.len() {
            Some(self.take()?)
        } else {
            None
        };
        let worker = &self.workers[self.next];
        worker.tx.send(chunk).map_err(|_| gone())?;
        self.in_flight.push_back(self.next);
        self.next = (self.next + 1) % self.workers.len();
        Ok(oldest.flatten())
    }

    /// The oldest outcome if it is ready (`None` when it is not, or nothing is in flight).
    pub(crate) fn try_take(&mut self) -> Result<Option<Outcome>> {
        let Some(&worker) = self.in_flight.front() else {
            return Ok(None);
        };
        match self.workers[worker].rx.try_recv() {
            Ok(outcome) => {
                self.in_flight.pop_front();
                outcome.map(Some)
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => Ok(None),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Err(gone()),
        }
    }

    /// The oldest outcome not taken yet (`None` when nothing is in flight).
    pub(crate) fn take(&mut self) -> Result<Option<Outcome>> {
        let Some(worker) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        self.workers[worker].rx.recv().map_err(|_| gone())?.map(Some)
    }
}

/// A worker: decodes each chunk into per-key encoders, and hands back their batches.
fn work<R: Record + serde::de::DeserializeOwned>(
    chunks: &Receiver<Vec<u8>>,
    results: &SyncSender<Result<Outcome>>,
    columns: &Arc<Columns>,
    partition: Partition,
) {
    let mut encoders: BTreeMap<Option<NaiveDate>, Encoder<R>> = BTreeMap::new();
    while let Ok(chunk) = chunks.recv() {
        let outcome = decode_chunk(&chunk, &mut encoders, columns, partition);
        if results.send(outcome).is_err() {
            return;
        }
    }
}

fn decode_chunk<R: Record + serde::de::DeserializeOwned>(
    chunk: &[u8],
    encoders: &mut BTreeMap<Option<NaiveDate>, Encoder<R>>,
    columns: &Arc<Columns>,
    partition: Partition,
) -> Result<Outcome> {
    let mut records = 0u64;
    let mut start = 0;
    let lines = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    for end in lines {
        let line = &chunk[start.min(end)..end];
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        let (record, day) = match Encoder::<R>::decode(line) {
            Ok(decoded) => decoded,
            Err(message) => {
                // What was gathered belongs to a failed attempt: start clean.
                encoders.clear();
                return Ok(Err((records, message)));
            }
        };
        let key = match partition {
            Partition::Day => day,
            Partition::None => None,
        };
        encoders
            .entry(key)
            .or_insert_with(|| Encoder::new(columns.clone()))
            .push(&record);
        records += 1;
    }
    let mut parts = Vec::new();
    let mut mismatched = 0;
    for (key, encoder) in encoders.iter_mut() {
        if encoder.rows() > 0 {
            mismatched += std::mem::take(&mut encoder.mismatched);
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
        mismatched,
    }))
}

fn gone() -> Error {
    Error::io(
        "a Parquet decoder thread stopped",
        std::io::Error::other("decoder thread gone"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(days: u32) -> Vec<u8> {
        (1..=days)
            .map(|d| format!("{{\"createdAt\":\"2024-01-{d:02} 10:00:00 +00:00\",\"messageId\":\"m{d}\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_worker_keeps_the_encoders_of_a_few_days_only() -> Result<()> {
        let columns = Arc::new(Columns::of::<Event>());
        let mut encoders = BTreeMap::new();
        let outcome = decode_chunk::<Event>(&chunk(3), &mut encoders, &columns, Partition::Day)?;
        let decoded = outcome.map_err(|(_, m)| Error::InvalidRequest(m))?;
        assert_eq!((decoded.records, decoded.parts.len(), encoders.len()), (3, 3, 3));
        let days = u32::try_from(super::super::files::MAX_OPEN).expect("small") + 1;
        let outcome = decode_chunk::<Event>(&chunk(days), &mut encoders, &columns, Partition::Day)?;
        let decoded = outcome.map_err(|(_, m)| Error::InvalidRequest(m))?;
        assert_eq!(decoded.parts.len(), days as usize);
        assert!(decoded.parts.iter().all(|(_, batch)| batch.num_rows() == 1));
        assert_eq!(encoders.len(), 0, "more days than files open: none kept");
        Ok(())
    }
}
