//! Client-side rate limiting and retries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::Mutex;
use tokio::time::Instant;

/// A rate limit: at most `requests` requests in any rolling `per` interval.
///
/// Iterable allows 4 requests per minute per project on `/export/data.json` and
/// `/export/data.csv`, shared by all keys of the project.
///
/// ```
/// use std::time::Duration;
/// use iterable_export::RateLimit;
///
/// assert_eq!(RateLimit::default(), RateLimit::per_minute(4));
/// assert_eq!(RateLimit::per_minute(4).min_interval(), Duration::from_secs(15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one interval (at least 1).
    pub requests: u32,
    /// The rolling interval.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per rolling minute.
    pub const fn per_minute(requests: u32) -> Self {
        RateLimit {
            requests,
            per: Duration::from_secs(60),
        }
    }

    /// The average spacing between requests at this limit.
    pub fn min_interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::per_minute(4)
    }
}

/// The longest `Retry-After` honoured; a larger value (a misconfigured proxy) is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// A rolling-window limiter shared by every clone of a client (the limit is per project).
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    state: Mutex<LimiterState>,
    waited_micros: AtomicU64,
}

#[derive(Debug, Default)]
struct LimiterState {
    /// Start times of the requests inside the current window, oldest first.
    sent: VecDeque<Instant>,
    /// No request before this instant (set after a 429).
    blocked_until: Option<Instant>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Arc<Self> {
        Arc::new(Limiter {
            limit,
            state: Mutex::new(LimiterState::default()),
            waited_micros: AtomicU64::new(0),
        })
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until a request may start, then records it. The lock is never held while
    /// waiting, so a 429's penalty takes effect for every waiter at once.
    pub(crate) async fn acquire(&self) {
        let started = Instant::now();
        let requests = self.limit.requests.max(1) as usize;
        // A margin of 2% of the interval: the server counts arrivals, which come a little
        // after our sends, so waiting exactly `per` could still be a 429.
        let per = self.limit.per + self.limit.per / 50;
        loop {
            let wait_until = {
                let mut state = self.state();
                let now = Instant::now();
                while state.sent.front().is_some_and(|t| now.duration_since(*t) >= per) {
                    state.sent.pop_front();
                }
                let mut wait_until = state.blocked_until.filter(|t| *t > now);
                if state.sent.len() >= requests
                    && let Some(oldest) = state.sent.front()
                {
                    let free = *oldest + per;
                    wait_until = Some(wait_until.map_or(free, |t| t.max(free)));
                }
                match wait_until {
                    Some(until) => until,
                    None => {
                        state.sent.push_back(now);
                        break;
                    }
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
        let waited = started.elapsed();
        self.waited_micros
            .fetch_add(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// After a 429: no request before `retry_after` (when the server said so, at most
    /// [`MAX_RETRY_AFTER`]), otherwise not before one average slot (`per / requests`) from now.
    pub(crate) fn penalize(&self, retry_after: Option<Duration>) {
        let now = Instant::now();
        let wait = retry_after.map_or(self.limit.min_interval(), |d| d.min(MAX_RETRY_AFTER));
        let until = now.checked_add(wait).unwrap_or(now);
        let mut state = self.state();
        state.blocked_until = Some(state.blocked_until.map_or(until, |t| t.max(until)));
    }

    /// Total time requests spent waiting for a slot.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_micros.load(Ordering::Relaxed))
    }
}

/// When and how often to retry transient failures (429, 500 `GenericError`, 502, 503, 504,
/// connection errors, read timeouts, bodies cut short).
///
/// The delay before retry `n` (1-based) is `initial_backoff * 2^(n-1)`, capped at
/// `max_backoff`, with "full jitter" (a random delay between half of that and all of it).
/// A 429's `Retry-After` replaces the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of any single delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based), jittered.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let base = self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff);
        // Jitter between 50% and 100% of the delay keeps clients from retrying in lockstep.
        let fraction = 0.5 + 0.5 * jitter_fraction();
        base.mul_f64(fraction)
    }
}

/// A cheap pseudo-random fraction in [0, 1) for jitter (no need for a cryptographic source).
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fifth_request_waits_for_the_oldest_to_leave_the_window() {
        let limiter = Limiter::new(RateLimit::per_minute(4));
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(61_200),
            "a minute and the 2% margin"
        );
        assert_eq!(limiter.waited(), Duration::from_millis(61_200));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_spread_over_time_do_not_wait() {
        let limiter = Limiter::new(RateLimit::per_minute(4));
        let start = Instant::now();
        for _ in 0..8 {
            limiter.acquire().await;
            // 16 s apart: more than a quarter of the minute plus the margin.
            tokio::time::sleep(Duration::from_secs(16)).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(128));
        assert_eq!(limiter.waited(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn penalty_honours_retry_after_or_the_next_slot() {
        let limiter = Limiter::new(RateLimit::per_minute(4));
        let start = Instant::now();
        limiter.penalize(Some(Duration::from_secs(42)));
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(42));
        limiter.penalize(None);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(57));
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_retry_after_is_capped() {
        let limiter = Limiter::new(RateLimit::per_minute(4));
        let start = Instant::now();
        limiter.penalize(Some(Duration::from_secs(u64::MAX)));
        limiter.acquire().await;
        assert_eq!(start.elapsed(), MAX_RETRY_AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_holds_back_requests_already_waiting() {
        let limiter = Limiter::new(RateLimit::per_minute(4));
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire().await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        limiter.penalize(Some(Duration::from_secs(120)));
        let _ = waiter.await;
        assert_eq!(start.elapsed(), Duration::from_secs(121));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        };
        for (retry, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (20, 10)] {
            let delay = policy.backoff(retry);
            let base = Duration::from_secs(base);
            assert!(
                delay >= base / 2 && delay <= base,
                "retry {retry}: {delay:?} not in [{:?}, {base:?}]",
                base / 2
            );
        }
    }
}
