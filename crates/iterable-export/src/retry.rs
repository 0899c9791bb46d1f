//! The retry policy: how many times transient failures are retried and how long to wait in
//! between (exponential backoff with equal jitter).

use std::time::Duration;

/// When and how often to retry transient failures (429, 500 `GenericError`, 502, 503, 504,
/// connection errors, connect and read timeouts, bodies cut short).
///
/// The delay before retry `n` (1-based) is `initial_backoff * 2^(n-1)`, capped at
/// `max_backoff`, with *equal jitter*: half of that delay plus a uniformly random part of the
/// other half, so between 50 % and 100 % of it. The jitter keeps clients that failed together
/// from retrying in lockstep; unlike *full jitter* (anywhere from zero to the delay), a retry
/// never comes sooner than half the backoff. A 429's `Retry-After` replaces the backoff.
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
/// let first = policy.backoff(1);
/// assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
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

    /// The delay before retry number `retry` (1-based), with equal jitter: between half of
    /// `min(initial_backoff * 2^(retry-1), max_backoff)` and all of it, uniformly.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, &mut fastrand::Rng::new())
    }

    /// [`RetryPolicy::backoff`] drawing from `rng` (seeded in tests).
    fn backoff_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        equal_jitter(self.base_backoff(retry), |spread| rng.u128(0..=spread))
    }

    /// The delay before retry `retry` without jitter.
    fn base_backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff)
    }
}

/// Equal jitter: `base / 2` plus `draw(spread)` nanoseconds, where `spread` is the other half of
/// `base` in nanoseconds and `draw` returns a number in `[0, spread]` (uniformly random, except
/// in tests). The result is in `[base / 2, base]`. Integer arithmetic on nanoseconds: exact, and
/// never an overflow or a panic, even for [`Duration::MAX`].
fn equal_jitter(base: Duration, draw: impl FnOnce(u128) -> u128) -> Duration {
    let half = base / 2;
    let spread = base.saturating_sub(half).as_nanos();
    half.saturating_add(duration_from_nanos(draw(spread).min(spread)))
}

/// A `Duration` of `nanos` nanoseconds (`Duration::from_nanos` takes only a `u64`, which holds
/// 584 years; a `Duration` holds 2^64 seconds).
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // Below 10^9, so it fits.
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, subsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_equal_jitter() {
        let policy = RetryPolicy::default()
            .with_max_retries(10)
            .with_initial_backoff(Duration::from_secs(1))
            .with_max_backoff(Duration::from_secs(10));
        for (retry, base) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (20, 10)] {
            let base = Duration::from_secs(base);
            assert_eq!(policy.base_backoff(retry), base, "retry {retry}");
            for _ in 0..100 {
                let delay = policy.backoff(retry);
                assert!(
                    delay >= base / 2 && delay <= base,
                    "retry {retry}: {delay:?} not in [{:?}, {base:?}]",
                    base / 2
                );
            }
        }
    }

    #[test]
    fn equal_jitter_spans_exactly_half_to_all_of_the_base() {
        for (base, spread) in [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_nanos(3), 2),
            (Duration::from_secs(10), 5_000_000_000),
            // Duration::MAX is 2^64 s - 1 ns; its half rounds down, the other half is the larger.
            (Duration::MAX, 9_223_372_036_854_775_808_000_000_000),
        ] {
            let lowest = equal_jitter(base, |s| {
                assert_eq!(s, spread, "{base:?}");
                0
            });
            assert_eq!(lowest, base / 2, "{base:?}");
            assert_eq!(equal_jitter(base, |s| s), base, "{base:?}");
            // A draw out of range (never from `u128(0..=spread)`) is clamped, not an overflow.
            assert_eq!(equal_jitter(base, |_| u128::MAX), base, "{base:?}");
        }
        assert_eq!(equal_jitter(Duration::from_secs(10), |_| 0), Duration::from_secs(5));
        assert_eq!(
            equal_jitter(Duration::from_secs(10), |s| s / 2),
            Duration::from_millis(7_500)
        );
        assert_eq!(
            equal_jitter(Duration::MAX, |_| 0),
            Duration::new(u64::MAX / 2, 999_999_999)
        );
    }

    #[test]
    fn seeded_draws_reach_both_bounds_and_nothing_outside() {
        let mut rng = fastrand::Rng::with_seed(7);
        let base = Duration::from_nanos(3);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(equal_jitter(base, |spread| rng.u128(0..=spread)));
        }
        let seen: Vec<Duration> = seen.into_iter().collect();
        assert_eq!(
            seen,
            [1, 2, 3].map(Duration::from_nanos),
            "half of 3 ns is 1 ns (rounded down)"
        );
    }

    #[test]
    fn seeded_backoffs_are_exact() {
        let policy = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(42);
        let delays: Vec<Duration> = (1..=8).map(|retry| policy.backoff_with(retry, &mut rng)).collect();
        // Bases 1, 2, 4, 8, 16, 32, 60 (capped), 60 s: each delay is in [base / 2, base].
        assert_eq!(
            delays,
            [
                Duration::new(0, 895_399_824),
                Duration::new(1, 804_458_731),
                Duration::new(3, 84_005_088),
                Duration::new(7, 582_001_329),
                Duration::new(13, 764_824_357),
                Duration::new(19, 381_448_880),
                Duration::new(54, 827_740_797),
                Duration::new(57, 265_683_432),
            ]
        );
    }

    #[test]
    fn extreme_backoffs_saturate() {
        let endless = RetryPolicy::default()
            .with_max_retries(u32::MAX)
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX);
        for retry in [0, 1, 2, 31, u32::MAX] {
            assert_eq!(endless.base_backoff(retry), Duration::MAX, "retry {retry}");
            assert!(endless.backoff(retry) >= Duration::MAX / 2, "retry {retry}");
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
}
