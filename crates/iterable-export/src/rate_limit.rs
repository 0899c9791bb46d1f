//! Client-side rate limiting: the [`RateLimit`] users configure and the rolling-window limiter
//! that every clone of a client shares.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}
