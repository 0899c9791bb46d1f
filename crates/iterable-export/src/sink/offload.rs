//! Blocking file work on a thread of its own, so that a sink's writes, `fsync`s and copies never
//! stall the async runtime (and with it every other download and every timer, read timeouts
//! included).
//!
//! Records are gathered into batches of [`BATCH`] bytes on the async side; full batches go to
//! the thread through a queue of [`QUEUE`] batches, so memory stays bounded by
//! `(QUEUE + 1) * BATCH` per sink and a slow disk slows the download down instead of growing
//! memory. Operations that need an answer ([`Offload::call`]) wait for every batch before them.

use std::io;

use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Bytes gathered before they are handed to the thread.
pub(crate) const BATCH: usize = 256 * 1024;
/// Batches that may wait for the thread.
pub(crate) const QUEUE: usize = 4;

/// What the thread owns and works on.
pub(crate) trait Target: Send + 'static {
    /// Writes one batch.
    fn write_batch(&mut self, bytes: &[u8]) -> Result<()>;
}

type Job<T> = Box<dyn FnOnce(&mut Slot<T>) + Send>;

/// The thread's state: the target, and the first error of a write nobody waited for.
pub(crate) struct Slot<T> {
    target: T,
    error: Option<Error>,
    broken: bool,
}

impl<T> Slot<T> {
    /// Runs `f` unless an earlier write failed: then that failure is reported (once, and a
    /// generic error after it), since what follows it cannot be trusted.
    fn run<R>(&mut self, f: impl FnOnce(&mut T) -> Result<R>) -> Result<R> {
        if let Some(err) = self.error.take() {
            self.broken = true;
            return Err(err);
        }
        if self.broken {
            return Err(Error::io(
                "an earlier write of this output failed",
                io::Error::other("output unusable after a failed write"),
            ));
        }
        f(&mut self.target)
    }
}

/// A target owned by a writer thread, fed in batches.
pub(crate) struct Offload<T: Target> {
    tx: mpsc::Sender<Job<T>>,
    batch: Vec<u8>,
    /// Answered by the thread once it has dropped the target (closed its files, released
    /// their locks).
    closed: oneshot::Receiver<()>,
    /// Detached outside tests: it ends by itself when the queue is dropped.
    #[cfg(test)]
    thread: std::thread::JoinHandle<()>,
}

impl<T: Target> std::fmt::Debug for Offload<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload")
            .field("batch", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl<T: Target> Offload<T> {
    /// Starts the thread. It ends, dropping the target, when the `Offload` is dropped.
    pub(crate) fn spawn(name: &str, target: T) -> Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job<T>>(QUEUE);
        let (closed_tx, closed) = oneshot::channel();
        #[cfg_attr(not(test), allow(unused_variables))]
        let thread = std::thread::Builder::new()
            .name(format!("iterable-export {name}"))
            .spawn(move || {
                let mut slot = Slot {
                    target,
                    error: None,
                    broken: false,
                };
                while let Some(job) = rx.blocking_recv() {
                    job(&mut slot);
                }
                drop(slot);
                let _ = closed_tx.send(());
            })
            .map_err(|e| Error::io("cannot start a writer thread", e))?;
        Ok(Offload {
            tx,
            batch: Vec::with_capacity(BATCH),
            closed,
            #[cfg(test)]
            thread,
        })
    }

    /// Appends bytes, handing the batch to the thread when it is full.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.batch.extend_from_slice(bytes);
        if self.batch.len() >= BATCH {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Forgets the bytes not yet handed to the thread.
    pub(crate) fn discard(&mut self) {
        self.batch.clear();
    }

    async fn send_batch(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.send(Box::new(move |slot: &mut Slot<T>| {
            if slot.error.is_none()
                && !slot.broken
                && let Err(err) = slot.target.write_batch(&batch)
            {
                slot.error = Some(err);
            }
        }))
        .await
    }

    async fn send(&self, job: Job<T>) -> Result<()> {
        self.tx.send(job).await.map_err(|_| gone())
    }

    /// Hands over the pending batch, then runs `f` on the thread after every earlier write, and
    /// returns its result (or the error of an earlier write).
    pub(crate) async fn call<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut T) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.send_batch().await?;
        let (reply, answer) = oneshot::channel();
        self.send(Box::new(move |slot: &mut Slot<T>| {
            let _ = reply.send(slot.run(f));
        }))
        .await?;
        answer.await.map_err(|_| gone())?
    }
}

impl<T: Target> Offload<T> {
    /// Ends the thread after the work already queued and waits, without blocking the runtime,
    /// until it has dropped the target: its files are closed and their locks released when this
    /// returns, so the same process can open them again at once.
    pub(crate) async fn close(self) {
        let Offload { tx, closed, .. } = self;
        drop(tx);
        let _ = closed.await;
    }

    /// Drops the queue and waits until the thread has ended and dropped the target (closing
    /// its files and releasing their locks), as a process that dies would. For tests.
    #[cfg(test)]
    pub(crate) fn stop(self) {
        let Offload { tx, thread, .. } = self;
        drop(tx);
        let _ = thread.join();
    }
}

fn gone() -> Error {
    Error::io("the writer thread stopped", io::Error::other("writer thread gone"))
}
