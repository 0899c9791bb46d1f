//! The client: what it holds, the retry loop every request goes through, and the transport of
//! bodies. Its configuration is in `client/builder.rs`; responses become errors in
//! [`crate::error`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use iterable_export_gen as generated;

use crate::decode::ByteStream;
use crate::error::{self, Timeouts};
use crate::rate_limit::{Limiter, MAX_RETRY_AFTER};
use crate::stats::Counters;
use crate::{Error, RateLimit, Region, Result, RetryPolicy, Stats};

mod builder;

pub use builder::{ApiKey, ClientBuilder};

/// A client of Iterable's Export API. Cheap to clone; clones share the connection pool.
///
/// ```no_run
/// use futures::TryStreamExt;
/// use iterable_export::{Client, DataType, Range};
///
/// # async fn demo() -> iterable_export::Result<()> {
/// let client = Client::from_env()?;
/// let mut events = client.export(DataType::EmailSend).range(Range::Yesterday).ndjson().await?;
/// while let Some(event) = events.try_next().await? {
///     println!("{:?} {:?}", event.email, event.created_at);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    generated: generated::Client,
    base_url: String,
    region: Region,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_line_length: usize,
    limiter: Arc<Limiter>,
    jobs: crate::jobs::Shared,
    retry: RetryPolicy,
    counters: Counters,
}

/// Whether the attempts of a request wait for the client's shared export rate limiter
/// ([`Client::with_retries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    /// `/export/data.json` and `/export/data.csv`: every attempt waits for a slot of the shared
    /// limiter, and a 429 holds the limiter (so every waiting request) back.
    ExportLimit,
    /// Starting export jobs and listing their files: every attempt waits for a slot of the
    /// jobs limiter (1 per second per organization), and a 429 holds it back.
    JobsLimit,
    /// The other endpoints, which have no client-side limit: attempts are sent at once, and a
    /// 429 waits its `Retry-After` (or the backoff) before the next attempt.
    Unlimited,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("region", &self.inner.region)
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Default connect timeout.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default read (idle) timeout: no byte for this long fails the attempt.
    pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(300);
    /// The longest connect or read timeout (a year, in effect none); a longer one, up to
    /// [`Duration::MAX`], counts as this.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 86_400);

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `ITERABLE_API_KEY` (required), `ITERABLE_REGION` (`us` or
    /// `eu`, default `us`) and `ITERABLE_BASE_URL` (optional override).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable that is missing or wrong.
    pub fn from_env() -> Result<Client> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`Client::from_env`], reading variables through `lookup` (tests, other sources).
    ///
    /// ```
    /// use iterable_export::{Client, Region};
    ///
    /// let client = Client::from_env_with(|name| match name {
    ///     "ITERABLE_API_KEY" => Some("key".into()),
    ///     "ITERABLE_REGION" => Some("eu".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(client.region(), Region::Eu);
    /// # Ok::<(), iterable_export::Error>(())
    /// ```
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Client> {
        let key = lookup("ITERABLE_API_KEY")
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "ITERABLE_API_KEY is not set: export a server-side API key, e.g. `export ITERABLE_API_KEY=...`"
                        .into(),
                )
            })?;
        let mut builder = Client::builder().api_key(key);
        if let Some(region) = lookup("ITERABLE_REGION").filter(|r| !r.trim().is_empty()) {
            let region = region.parse().map_err(|_| {
                Error::Config(format!(
                    "ITERABLE_REGION={region:?} is not a region: use \"us\" or \"eu\""
                ))
            })?;
            builder = builder.region(region);
        }
        if let Some(url) = lookup("ITERABLE_BASE_URL").filter(|u| !u.trim().is_empty()) {
            builder = builder.base_url(url);
        }
        builder.build()
    }

    /// The base URL requests go to (the region's, or the override).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The configured region (informational when a base URL override is set).
    pub fn region(&self) -> Region {
        self.inner.region
    }

    /// The generated low-level client, for operations the facade does not wrap.
    pub fn generated(&self) -> &generated::Client {
        &self.inner.generated
    }

    pub(crate) fn max_line_length(&self) -> usize {
        self.inner.max_line_length
    }

    /// What this client (and its clones) did so far: requests, retries, 429s, rate-limit waits.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot(&self.inner.limiter)
    }

    /// The export rate limit in force.
    pub fn rate_limit(&self) -> RateLimit {
        self.inner.limiter.limit()
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// A client like this one (same key, base URL, timeouts, export limiter and connection pool)
    /// whose export jobs use `limit` for starting jobs and listing files, and at most
    /// `max_running` jobs at once; see [`ClientBuilder::jobs_rate_limit`]. Its statistics start
    /// at zero.
    ///
    /// # Errors
    /// [`Error::Config`] when `limit` allows 0 requests.
    pub fn with_job_limits(&self, limit: RateLimit, max_running: usize) -> Result<Client> {
        limit.validate()?;
        let inner = &self.inner;
        Ok(Client {
            inner: Arc::new(Inner {
                generated: inner.generated.clone(),
                base_url: inner.base_url.clone(),
                region: inner.region,
                connect_timeout: inner.connect_timeout,
                read_timeout: inner.read_timeout,
                max_line_length: inner.max_line_length,
                limiter: inner.limiter.clone(),
                jobs: crate::jobs::Shared::new(limit, max_running, inner.jobs.polling, inner.jobs.downloads.clone()),
                retry: inner.retry,
                counters: Counters::default(),
            }),
        })
    }

    pub(crate) fn jobs_shared(&self) -> &crate::jobs::Shared {
        &self.inner.jobs
    }

    pub(crate) fn count_window_split(&self) {
        Counters::add(&self.inner.counters.windows_split);
    }

    pub(crate) fn count_retry(&self) {
        Counters::add(&self.inner.counters.retries);
    }

    /// Runs `attempt` until it succeeds, fails with a non-transient error, or retries run out.
    /// `throttle` says whether every attempt first waits for the shared export limiter.
    pub(crate) async fn with_retries<T, F, Fut>(&self, throttle: Throttle, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let policy = self.inner.retry;
        // 429s get a budget of their own: the limiter already spaces them, and a storm caused by
        // another tool sharing the project's quota should not use up the retries meant for errors.
        let rate_limit_budget = if policy.max_retries == 0 {
            0
        } else {
            policy.max_retries.saturating_mul(4).max(8)
        };
        let (mut retry, mut rate_limited_retries) = (0, 0);
        let limiter = match throttle {
            Throttle::ExportLimit => Some(&self.inner.limiter),
            Throttle::JobsLimit => Some(&self.inner.jobs.limiter),
            Throttle::Unlimited => None,
        };
        loop {
            if let Some(limiter) = limiter {
                limiter.acquire().await;
            }
            Counters::add(&self.inner.counters.requests);
            let err = match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            let delay = if let Error::RateLimited { retry_after, .. } = &err {
                Counters::add(&self.inner.counters.rate_limited);
                if rate_limited_retries >= rate_limit_budget {
                    return Err(err);
                }
                rate_limited_retries += 1;
                if let Some(limiter) = limiter {
                    // The limiter holds the next attempt back.
                    limiter.penalize(*retry_after);
                    Duration::ZERO
                } else {
                    retry_after.map_or_else(|| policy.backoff(rate_limited_retries), |d| d.min(MAX_RETRY_AFTER))
                }
            } else {
                if !err.is_transient() || retry >= policy.max_retries {
                    return Err(err);
                }
                retry += 1;
                policy.backoff(retry)
            };
            self.count_retry();
            tracing::warn!(
                retry = retry.saturating_add(rate_limited_retries),
                max_retries = policy.max_retries,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Turns the generated client's result into a body stream, or into this crate's error.
    pub(crate) async fn body(
        &self,
        result: std::result::Result<
            generated::ResponseValue<generated::ByteStream>,
            generated::Error<generated::ByteStream>,
        >,
    ) -> Result<ByteStream> {
        let timeouts = self.timeouts();
        match result {
            Ok(response) => Ok(error::body_stream(response.into_inner_stream(), timeouts)),
            Err(err) => Err(error::from_generated(err, timeouts).await),
        }
    }

    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.inner.connect_timeout,
            read: self.inner.read_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() -> Result<()> {
        let client = Client::builder().api_key("super-secret-key").build()?;
        let shown = format!("{client:?}");
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(shown.contains("api_key: \"***\""), "{shown}");
        Ok(())
    }
}

#[cfg(test)]
mod config_tests;
