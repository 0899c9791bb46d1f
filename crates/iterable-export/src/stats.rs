//! What a client did: counters shared by every clone, and the [`Stats`] snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::rate_limit::Limiter;

/// Counters of what happened while exporting, shared by every clone of a client.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) windows_split: AtomicU64,
}

/// A snapshot of a client's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Export requests sent (every attempt).
    pub requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// 429 responses received.
    pub rate_limited: u64,
    /// Windows split in half after repeated failures mid-body.
    pub windows_split: u64,
    /// Time spent waiting for the client-side rate limiter.
    pub rate_limit_wait: Duration,
}

impl Counters {
    pub(crate) fn snapshot(&self, limiter: &Limiter) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            windows_split: self.windows_split.load(Ordering::Relaxed),
            rate_limit_wait: limiter.waited(),
        }
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
