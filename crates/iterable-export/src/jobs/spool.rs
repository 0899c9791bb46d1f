//! One window's job files on their way to the sink: each is downloaded into a spool file as soon
//! as it is listed, while the job still runs, and the files are handed on in name order only
//! once the job completed without `exportTruncated` (`windows.rs` decides; a truncated or failed
//! job's spool files are deleted undelivered).
//!
//! Disk is bounded by a count of files: every spool file holds one permit of `room`
//! ([`JobOptions::spool_files`](super::JobOptions::spool_files)) from the start of its download
//! until its records were delivered or it was deleted, so at most that many of the window's
//! files are on disk at once (each at most 10 MB at Iterable), whether downloading, waiting, or
//! being delivered; at most `downloads` of them download at once. The file delivered next always
//! downloads first; a spool full of later files (a listing out of name order) gives up its latest
//! file, downloaded again later, so delivery never waits for room that only it could free.
//! After a file whose download failed for good (delivery stops there), no later file starts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::JobCounters;
use super::download::{Spooled, download};
use super::job::JobFile;
use crate::{Client, Format, Result};

/// A download in flight: the file's name and how it ended.
type Download<'a> = BoxFuture<'a, (String, Result<Spooled>)>;

/// The files of one job, from listed to handed on.
pub(crate) struct Spool<'a> {
    client: &'a Client,
    job_id: i64,
    format: Format,
    dir: &'a Path,
    downloads: usize,
    /// One permit per spool file.
    room: Arc<Semaphore>,
    /// Every file listed and not yet handed on, by name (the URL to download it again).
    files: BTreeMap<String, JobFile>,
    /// Listed, not downloading.
    waiting: BTreeSet<String>,
    in_flight: FuturesUnordered<Download<'a>>,
    /// Downloaded (or failed for good), not yet handed on.
    done: BTreeMap<String, Result<Spooled>>,
    /// A permit waited for, for the next download.
    spare: Option<OwnedSemaphorePermit>,
    /// The least file whose download failed for good: delivery stops there, so the files after
    /// it are not downloaded.
    failed: Option<String>,
    /// The job's files will never be delivered: files listed later are ignored.
    discarded: bool,
}

impl<'a> Spool<'a> {
    /// An empty spool for job `job_id`: files in `dir`, at most `downloads` downloading and
    /// `files` on disk at once (0 acts as 1).
    pub(crate) fn new(
        client: &'a Client,
        job_id: i64,
        format: Format,
        dir: &'a Path,
        downloads: usize,
        files: usize,
    ) -> Self {
        Spool {
            client,
            job_id,
            format,
            dir,
            downloads: downloads.max(1),
            room: Arc::new(Semaphore::new(files.max(1))),
            files: BTreeMap::new(),
            waiting: BTreeSet::new(),
            in_flight: FuturesUnordered::new(),
            done: BTreeMap::new(),
            spare: None,
            failed: None,
            discarded: false,
        }
    }

    /// A file just listed: it downloads as soon as there is room.
    pub(crate) fn add(&mut self, file: JobFile) {
        if self.discarded || self.files.contains_key(&file.name) {
            return;
        }
        self.waiting.insert(file.name.clone());
        self.files.insert(file.name.clone(), file);
    }

    /// Deletes every spool file and stops the downloads (the job is truncated or failed: its
    /// files are never delivered); files listed from now on are ignored. Counts the files
    /// deleted or stopped in [`JobStats::files_discarded`](super::JobStats::files_discarded).
    pub(crate) fn discard(&mut self) {
        let dropped = self.in_flight.len() + self.done.values().filter(|f| f.is_ok()).count();
        JobCounters::add(&self.client.jobs_shared().counters.files_discarded, dropped as u64);
        self.discarded = true;
        self.in_flight = FuturesUnordered::new();
        self.done.clear();
        self.waiting.clear();
        self.files.clear();
        self.spare = None;
    }

    /// Waits for `listing` (the job's next file), downloading the files listed so far meanwhile.
    pub(crate) async fn while_listing<T>(&mut self, listing: impl Future<Output = T>) -> T {
        let mut listing = std::pin::pin!(listing);
        loop {
            self.start();
            if self.in_flight.is_empty() {
                return listing.await;
            }
            tokio::select! {
                biased;
                out = listing.as_mut() => return out,
                Some(finished) = self.in_flight.next() => self.settle(finished),
            }
        }
    }

    /// Hands every file on through `to`, in name order (the job completed), downloading the rest
    /// meanwhile; stops after a file that could not be downloaded, or when `to` is closed.
    pub(crate) async fn feed(mut self, to: mpsc::Sender<Result<Spooled>>) {
        while let Some(next) = self.next_name() {
            if let Some(file) = self.done.remove(&next) {
                self.files.remove(&next);
                let failed = file.is_err();
                // Room in the channel, while the downloads go on.
                let sent = loop {
                    self.start();
                    tokio::select! {
                        biased;
                        permit = to.reserve() => break permit.ok(),
                        Some(finished) = self.in_flight.next() => self.settle(finished),
                    }
                };
                match sent {
                    Some(permit) => permit.send(file),
                    None => return,
                }
                if failed {
                    return;
                }
                continue;
            }
            if self.waiting.contains(&next) {
                self.make_room();
            }
            self.start();
            let need_room = self.spare.is_none() && self.waiting.contains(&next);
            tokio::select! {
                Some(finished) = self.in_flight.next() => self.settle(finished),
                permit = self.room.clone().acquire_owned(), if need_room => self.spare = permit.ok(),
            }
        }
    }

    /// The next file to hand on: the least name not handed on.
    fn next_name(&self) -> Option<String> {
        self.files.keys().next().cloned()
    }

    /// Starts downloads, least name first, while fewer than `downloads` run and there is room.
    fn start(&mut self) {
        while self.in_flight.len() < self.downloads
            && let Some(name) = self.waiting.first().cloned()
            && self.failed.as_ref().is_none_or(|failed| name < *failed)
        {
            let permit = match self.spare.take() {
                Some(permit) => permit,
                None => match self.room.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            self.waiting.remove(&name);
            let Some(file) = self.files.get(&name).cloned() else {
                continue;
            };
            let (client, job_id, format, dir) = (self.client, self.job_id, self.format, self.dir);
            self.in_flight.push(Box::pin(async move {
                let spooled = download(client, job_id, file, format, dir).await.map(|mut spooled| {
                    spooled.room = Some(permit);
                    spooled
                });
                (name, spooled)
            }));
        }
    }

    /// When the file to hand on next waits for room that only later files hold, the latest
    /// downloaded file gives its room up (and waits to be downloaded again).
    fn make_room(&mut self) {
        // Not while every download slot is busy: the next file could not start anyway.
        if self.spare.is_some() || self.room.available_permits() > 0 || self.in_flight.len() >= self.downloads {
            return;
        }
        let latest = self
            .done
            .iter()
            .rev()
            .find(|(_, file)| file.is_ok())
            .map(|(name, _)| name.clone());
        if let Some(name) = latest {
            tracing::debug!(job_id = self.job_id, file = %name, "no room for the next file: deleting a later one");
            self.done.remove(&name);
            self.waiting.insert(name);
        }
    }

    /// A download ended.
    fn settle(&mut self, (name, spooled): (String, Result<Spooled>)) {
        if spooled.is_err() && self.failed.as_ref().is_none_or(|failed| name < *failed) {
            self.failed = Some(name.clone());
        }
        self.done.insert(name, spooled);
    }
}
