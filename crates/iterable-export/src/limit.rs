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
/// `/export/data.csv`, shared by all keys of the project. Build one with [`RateLimit::new`] or
/// [`RateLimit::per_minute`]; fields may be added in later versions.
///
/// ```
/// use std::time::Duration;
/// use iterable_export::RateLimit;
///
/// assert_eq!(RateLimit::default(), RateLimit::per_minute(4));
/// assert_eq!(RateLimit::per_minute(4).min_interval(), Duration::from_secs(15));
/// assert_eq!(RateLimit::new(2, Duration::from_secs(10)).min_interval(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed in one interval (at least 1: [`ClientBuilder::build`](crate::ClientBuilder::build)
    /// refuses 0).
    pub requests: u32,
    /// The rolling interval. Zero means no limit; a very long one (up to [`Duration::MAX`])
    /// means that once `requests` requests were sent, the next one waits for ever.
    pub per: Duration,
}

impl RateLimit {
    /// `requests` per rolling `per`.
    pub const fn new(requests: u32, per: Duration) -> Self {
        RateLimit { requests, per }
    }

    /// `requests` per rolling minute.
    pub const fn per_minute(requests: u32) -> Self {
        RateLimit::new(requests, Duration::from_secs(60))
    }

    /// The average spacing between requests at this limit.
    pub fn min_interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }

    /// Refuses a limit that could never let a request through.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.requests == 0 {
            return Err(crate::Error::Config(format!(
                "the rate limit allows 0 requests per {:?}, so no export request could ever be sent; allow at least 1",
                self.per
            )));
        }
        Ok(())
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
        // Saturating: a period near `Duration::MAX` means "for ever", not an overflow.
        let per = self.limit.per.saturating_add(self.limit.per / 50);
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
                    let free = saturating_add(*oldest, per, now);
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
        let until = saturating_add(now, wait, now);
        let mut state = self.state();
        state.blocked_until = Some(state.blocked_until.map_or(until, |t| t.max(until)));
    }

    /// Total time requests spent waiting for a slot.
    pub(crate) fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_micros.load(Ordering::Relaxed))
    }
}

/// How far ahead a wait "for ever" is scheduled (it is re-checked then): 30 years, as tokio does
/// for a sleep too long to represent.
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 86_400);

/// `t + d`, or [`FAR_FUTURE`] from `now` when that is not representable (the caller re-checks
/// then, so a wait "for ever" stays one).
fn saturating_add(t: Instant, d: Duration, now: Instant) -> Instant {
    t.checked_add(d).or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now)
}

/// When and how often to retry transient failures (429, 500 `GenericError`, 502, 503, 504,
/// connection errors, connect and read timeouts, bodies cut short).
///
/// The delay before retry `n` (1-based) is `initial_backoff * 2^(n-1)`, capped at
/// `max_backoff`, with "full jitter" (a random delay between half of that and all of it).
/// A 429's `Retry-After` replaces the backoff.
///
/// Start from [`RetryPolicy::default`] (8 retries, 1 s doubling up to 60 s) or
/// [`RetryPolicy::none`] and adjust with the `with_*` methods; fields may be added in later
/// versions. Every value is accepted: the arithmetic saturates, so [`Duration::MAX`] backoffs
/// or `u32::MAX` retries mean "very long" and "practically for ever", never an overflow.
///
/// ```
/// use std::time::Duration;
/// use iterable_export::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_retries(3)
///     .with_initial_backoff(Duration::from_millis(500))
///     .with_max_backoff(Duration::from_secs(10));
/// assert_eq!(policy.max_retries, 3);
/// assert!(policy.backoff(1) <= Duration::from_millis(500));
/// assert_eq!(RetryPolicy::none().max_retries, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
    /// No retries at all (the default backoffs, which then never apply).
    pub fn none() -> Self {
        RetryPolicy::default().with_max_retries(0)
    }

    /// Sets the number of retries after the first attempt; 0 disables retrying.
    pub const fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets the delay before the first retry.
    pub const fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the upper bound of any single delay.
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// The delay before retry number `retry` (1-based), jittered: between half of
    /// `min(initial_backoff * 2^(retry-1), max_backoff)` and all of it.
    pub fn backoff(&self, retry: u32) -> Duration {
        jittered(self.base_backoff(retry), jitter_fraction())
    }

    /// The delay before retry `retry` without jitter.
    fn base_backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff)
    }
}

/// `base` scaled to between 50% and 100% by `fraction` in [0, 1]: jitter keeps clients from
/// retrying in lockstep. Never more than `base` and never a panic, even for [`Duration::MAX`]
/// (whose seconds round up to 2^64 as an `f64`, one more than a `Duration` holds).
fn jittered(base: Duration, fraction: f64) -> Duration {
    let scaled = Duration::try_from_secs_f64(base.as_secs_f64() * (0.5 + 0.5 * fraction)).unwrap_or(base);
    scaled.min(base)
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
        let policy = RetryPolicy::default()
            .with_max_retries(10)
            .with_initial_backoff(Duration::from_secs(1))
            .with_max_backoff(Duration::from_secs(10));
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

    /// How long "for ever" is checked for in the tests below: a century of paused time.
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

    #[tokio::test(start_paused = true)]
    async fn an_endless_period_lets_the_first_requests_through_then_waits_for_ever() {
        let limiter = Limiter::new(RateLimit::new(2, Duration::MAX));
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        let third = tokio::time::timeout(CENTURY, limiter.acquire()).await;
        assert!(
            third.is_err(),
            "the third request must still be waiting after a century"
        );
        assert_eq!(start.elapsed(), CENTURY);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_requests_per_endless_period_does_not_panic_in_the_limiter() {
        // `ClientBuilder::build` refuses 0 requests; the limiter itself treats it as 1.
        let limiter = Limiter::new(RateLimit::new(0, Duration::MAX));
        assert_eq!(limiter.limit().min_interval(), Duration::MAX);
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(tokio::time::timeout(CENTURY, limiter.acquire()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_penalty_of_an_endless_slot_blocks_for_decades_instead_of_not_at_all() {
        let limiter = Limiter::new(RateLimit::new(1, Duration::MAX));
        // The slot (`Duration::MAX`) is not representable as an instant: the penalty lasts until
        // the far future, re-checked then.
        limiter.penalize(None);
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), FAR_FUTURE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_period_never_waits() {
        let limiter = Limiter::new(RateLimit::new(1, Duration::ZERO));
        let start = Instant::now();
        for _ in 0..100 {
            limiter.acquire().await;
        }
        limiter.penalize(None);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(limiter.waited(), Duration::ZERO);
    }

    #[test]
    fn zero_requests_is_refused_with_a_config_error() {
        let err = RateLimit::new(0, Duration::MAX).validate().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "configuration error: the rate limit allows 0 requests per 18446744073709551615.999999999s, \
                 so no export request could ever be sent; allow at least 1"
            )
        );
        assert!(RateLimit::new(1, Duration::MAX).validate().is_ok());
        assert!(RateLimit::new(u32::MAX, Duration::ZERO).validate().is_ok());
    }

    #[test]
    fn extreme_backoffs_saturate() {
        let endless = RetryPolicy::default()
            .with_max_retries(u32::MAX)
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX);
        for retry in [0, 1, 2, 31, u32::MAX] {
            assert_eq!(endless.base_backoff(retry), Duration::MAX, "retry {retry}");
            assert!(endless.backoff(retry) >= Duration::from_secs(1 << 63), "retry {retry}");
        }
        let uncapped = RetryPolicy::default()
            .with_initial_backoff(Duration::from_secs(1))
            .with_max_backoff(Duration::MAX);
        // The exponent stops at 2^30.
        assert_eq!(uncapped.base_backoff(u32::MAX), Duration::from_secs(1 << 30));
        let zero = RetryPolicy::default()
            .with_initial_backoff(Duration::ZERO)
            .with_max_backoff(Duration::ZERO);
        assert_eq!(zero.backoff(u32::MAX), Duration::ZERO);
        // `initial_backoff` above `max_backoff`: the cap wins.
        let inverted = RetryPolicy::default()
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::from_secs(3));
        assert_eq!(inverted.base_backoff(1), Duration::from_secs(3));
    }

    #[test]
    fn jitter_of_the_longest_duration_does_not_overflow() {
        // `Duration::MAX` is 2^64 s as f64: scaling it by 1.0 would overflow `Duration`.
        assert_eq!(jittered(Duration::MAX, 1.0), Duration::MAX);
        assert_eq!(
            jittered(Duration::MAX, 1.0 - f64::EPSILON),
            Duration::from_secs(u64::MAX - 2047)
        );
        assert_eq!(jittered(Duration::MAX, 0.0), Duration::from_secs(1 << 63));
        assert_eq!(jittered(Duration::from_secs(10), 1.0), Duration::from_secs(10));
        assert_eq!(jittered(Duration::from_secs(10), 0.0), Duration::from_secs(5));
        assert_eq!(jittered(Duration::ZERO, 0.5), Duration::ZERO);
    }
}
