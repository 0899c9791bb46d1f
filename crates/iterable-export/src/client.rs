//! The client: configuration, transport and the one place where responses become errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iterable_export_gen as generated;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::decode::{ByteStream, DEFAULT_MAX_LINE_LENGTH};
use crate::limit::{Counters, Limiter};
use crate::{Error, RateLimit, Region, Result, RetryPolicy, Stats};

/// Name of the header that carries the API key.
const API_KEY_HEADER: &str = "Api-Key";
/// How much of an error body is read to decode it; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an excerpt of a non-JSON error body may be.
const MAX_EXCERPT_CHARS: usize = 200;

/// An Iterable API key. Its `Debug` and `Display` never show the key.
///
/// ```
/// use iterable_export::ApiKey;
///
/// let key = ApiKey::new("0123456789abcdef");
/// assert_eq!(format!("{key:?}"), "ApiKey(***)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the rare code that must send it somewhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey(key)
    }
}

/// Configures and builds a [`Client`]. Created by [`Client::builder`].
///
/// ```
/// use std::time::Duration;
/// use iterable_export::{Client, Region};
///
/// let client = Client::builder()
///     .api_key("my-key")
///     .region(Region::Eu)
///     .read_timeout(Duration::from_secs(120))
///     .build()?;
/// assert_eq!(client.base_url(), "https://api.eu.iterable.com/api");
/// # Ok::<(), iterable_export::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    api_key: Option<ApiKey>,
    region: Region,
    base_url: Option<String>,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_line_length: usize,
    user_agent: Option<String>,
    rate_limit: RateLimit,
    retry: RetryPolicy,
    allow_plaintext_api_key: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            region: Region::Us,
            base_url: None,
            connect_timeout: Client::DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Client::DEFAULT_READ_TIMEOUT,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            user_agent: None,
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            allow_plaintext_api_key: false,
        }
    }
}

impl ClientBuilder {
    /// The API key (required). A server-side key can call every export endpoint.
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The project's region; default [`Region::Us`].
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Overrides the region's base URL (a mock server, a proxy). It must include the `/api`
    /// path stem, e.g. `http://127.0.0.1:8080/api`. Plain `http` is accepted only to a loopback
    /// host (`127.0.0.0/8`, `::1`, `localhost`), as the API key travels in every request; see
    /// [`ClientBuilder::danger_allow_plaintext_api_key`].
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Allows a plain-`http` base URL to a host other than loopback, which sends the API key
    /// **unencrypted**: anyone on the network path (a shared Wi-Fi, a compromised router, a
    /// logging proxy) can read it and export all of the project's data. Default `false`:
    /// [`build`](ClientBuilder::build) refuses such a URL. Only for a trusted network, such as
    /// a TLS-terminating proxy on the same private network.
    ///
    /// ```
    /// use iterable_export::{Client, Error};
    ///
    /// let refused = Client::builder().api_key("k").base_url("http://proxy.internal/api").build();
    /// assert!(matches!(refused, Err(Error::Config(_))));
    /// let client = Client::builder()
    ///     .api_key("k")
    ///     .base_url("http://proxy.internal/api")
    ///     .danger_allow_plaintext_api_key(true)
    ///     .build()?;
    /// assert_eq!(client.base_url(), "http://proxy.internal/api");
    /// # Ok::<(), iterable_export::Error>(())
    /// ```
    pub fn danger_allow_plaintext_api_key(mut self, allow: bool) -> Self {
        self.allow_plaintext_api_key = allow;
        self
    }

    /// How long to wait for a TCP/TLS connection before the attempt fails with
    /// [`Error::ConnectTimeout`]; default 30 s. Zero is refused by
    /// [`build`](ClientBuilder::build); more than [`Client::MAX_TIMEOUT`] counts as that.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a response may go without sending a byte before the attempt fails with
    /// [`Error::Timeout`]; default 5 minutes. There is deliberately no total timeout: an export
    /// body may take hours to arrive. Zero is refused by [`build`](ClientBuilder::build); more
    /// than [`Client::MAX_TIMEOUT`] counts as that.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The longest NDJSON line or CSV record accepted, in bytes; default 16 MiB. Longer records
    /// fail with [`Error::LineTooLong`] instead of growing memory without bound.
    pub fn max_line_length(mut self, bytes: usize) -> Self {
        self.max_line_length = bytes;
        self
    }

    /// The rate limit of `/export/data.json` and `/export/data.csv`; default 4 per minute, as
    /// Iterable enforces per project. Requests wait for a slot instead of provoking 429s; every
    /// clone of the client shares the limiter. Lower it when other programs use the same
    /// project's exports at the same time. A limit of 0 requests is refused by
    /// [`build`](ClientBuilder::build).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// How transient failures are retried; see [`RetryPolicy`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Replaces the default `User-Agent` (`iterable-export/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is missing or empty; the base URL is not an absolute
    /// `http`/`https` URL, or is plain `http` to a host other than loopback without
    /// [`danger_allow_plaintext_api_key`](ClientBuilder::danger_allow_plaintext_api_key); the
    /// rate limit allows 0 requests; or a timeout is zero.
    pub fn build(self) -> Result<Client> {
        let key = match self.api_key {
            Some(key) if !key.0.trim().is_empty() => key,
            _ => {
                return Err(Error::Config(
                    "no API key: pass one with `api_key(...)` or set ITERABLE_API_KEY \
                     (create a server-side key in Iterable under Integrations > API Keys)"
                        .into(),
                ));
            }
        };
        let base_url = match &self.base_url {
            Some(url) => normalize_base_url(url)?,
            None => self.region.base_url().to_owned(),
        };
        let origin = url::Url::parse(&base_url).map_err(|err| Error::Config(format!("bad base URL: {err}")))?;
        if origin.scheme() == "http" && !is_loopback(&origin) && !self.allow_plaintext_api_key {
            return Err(Error::Config(format!(
                "refusing to send the API key unencrypted to {base_url}: plain http is only allowed to a loopback host \
                 (127.0.0.0/8, ::1, localhost), because anyone on the network path could read the key and export \
                 the project's data; use https, or, if the network to that host is trusted, opt in with \
                 `danger_allow_plaintext_api_key(true)` (CLI: --allow-insecure-http)"
            )));
        }
        self.rate_limit.validate()?;
        let connect_timeout = checked_timeout("connect", self.connect_timeout)?;
        let read_timeout = checked_timeout("read", self.read_timeout)?;

        let mut key_value = HeaderValue::from_str(key.expose())
            .map_err(|_| Error::Config("the API key contains characters that cannot be sent in a header".into()))?;
        key_value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(API_KEY_HEADER, key_value);

        let user_agent = self
            .user_agent
            .unwrap_or_else(|| format!("iterable-export/{}", env!("CARGO_PKG_VERSION")));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(user_agent)
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .redirect(same_origin_redirects(origin))
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client: {err}")))?;
        let generated = generated::Client::new_with_client(&base_url, http);
        Ok(Client {
            inner: Arc::new(Inner {
                generated,
                base_url,
                region: self.region,
                connect_timeout,
                read_timeout,
                max_line_length: self.max_line_length,
                limiter: Limiter::new(self.rate_limit),
                retry: self.retry,
                counters: Counters::default(),
            }),
        })
    }
}

/// Whether `url`'s host is a loopback address: `127.0.0.0/8`, `::1` (also as `::ffff:127.x.y.z`)
/// or `localhost`. Plain http to it never leaves the machine.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        None => false,
    }
}

/// A timeout as used: zero is refused (every attempt would fail at once), more than
/// [`Client::MAX_TIMEOUT`] is cut to it (the HTTP stack adds timeouts to instants, which
/// [`Duration::MAX`] would overflow).
fn checked_timeout(which: &str, timeout: Duration) -> Result<Duration> {
    if timeout.is_zero() {
        return Err(Error::Config(format!(
            "the {which} timeout is zero, so every request would time out at once; use a positive duration \
             (up to {} days; longer counts as that)",
            Client::MAX_TIMEOUT.as_secs() / 86_400
        )));
    }
    Ok(timeout.min(Client::MAX_TIMEOUT))
}

/// Follows redirects only to the origin (scheme, host, port) the client was configured for.
/// reqwest strips well-known credentials (`Authorization`, `Cookie`) on a cross-host redirect,
/// but not `Api-Key`: following would hand the key to another host. Such a redirect is not
/// followed and surfaces as an error naming the host.
fn same_origin_redirects(origin: url::Url) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url();
        let same = next.scheme() == origin.scheme()
            && next.host_str() == origin.host_str()
            && next.port_or_known_default() == origin.port_or_known_default();
        if !same {
            attempt.stop()
        } else if attempt.previous().len() >= 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

fn normalize_base_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url.trim()).map_err(|err| {
        Error::Config(format!(
            "bad base URL {url:?}: {err}; expected e.g. http://127.0.0.1:8080/api"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Config(format!(
            "bad base URL {url:?}: expected an http or https URL such as https://api.iterable.com/api"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "bad base URL {url:?}: it must not have a query or fragment"
        )));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

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
    retry: RetryPolicy,
    counters: Counters,
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

    pub(crate) fn count_window_split(&self) {
        Counters::add(&self.inner.counters.windows_split);
    }

    pub(crate) fn count_retry(&self) {
        Counters::add(&self.inner.counters.retries);
    }

    /// Runs `attempt` until it succeeds, fails with a non-transient error, or retries run out.
    /// With `rate_limited`, every attempt first waits for the shared limiter.
    pub(crate) async fn with_retries<T, F, Fut>(&self, rate_limited: bool, mut attempt: F) -> Result<T>
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
        loop {
            if rate_limited {
                self.inner.limiter.acquire().await;
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
                if rate_limited {
                    // The limiter holds the next attempt back.
                    self.inner.limiter.penalize(*retry_after);
                    Duration::ZERO
                } else {
                    retry_after.map_or_else(
                        || policy.backoff(rate_limited_retries),
                        |d| d.min(crate::limit::MAX_RETRY_AFTER),
                    )
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
            Ok(response) => Ok(body_stream(response.into_inner_stream(), timeouts)),
            Err(err) => Err(self.error(err).await),
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.inner.connect_timeout,
            read: self.inner.read_timeout,
        }
    }

    async fn error(&self, err: generated::Error<generated::ByteStream>) -> Error {
        let timeouts = self.timeouts();
        match err {
            generated::Error::InvalidRequest(msg) => Error::InvalidRequest(msg),
            generated::Error::CommunicationError(err) | generated::Error::ResponseBodyError(err) => {
                transport_error(err, timeouts)
            }
            generated::Error::ErrorResponse(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = body_stream(response.into_inner_stream(), timeouts);
                error_from_response(status, &headers, body).await
            }
            generated::Error::UnexpectedResponse(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = body_stream(Box::pin(response.bytes_stream()), timeouts);
                error_from_response(status, &headers, body).await
            }
            other => Error::Transport {
                message: other.to_string(),
                source: None,
            },
        }
    }
}

type ReqwestStream = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// The timeouts in force, to name the one that expired.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    read: Duration,
}

fn body_stream(stream: ReqwestStream, timeouts: Timeouts) -> ByteStream {
    Box::pin(stream.map_err(move |err| transport_error(err, timeouts)))
}

/// A reqwest error as this crate's error. reqwest's message names the URL (never the key,
/// which travels in a header). reqwest's `is_timeout()` is true for connect and read timeouts
/// alike; `is_connect()` tells them apart (true while connecting, timed out or refused).
fn transport_error(err: reqwest::Error, timeouts: Timeouts) -> Error {
    match (err.is_timeout(), err.is_connect()) {
        (true, true) => return Error::ConnectTimeout(timeouts.connect),
        (true, false) => return Error::Timeout(timeouts.read),
        (false, _) => {}
    }
    let message = if err.is_connect() {
        "cannot connect to the server; check the base URL/region and your network".to_owned()
    } else if err.is_body() || err.is_decode() {
        "the response body ended before it was complete".to_owned()
    } else {
        "request failed".to_owned()
    };
    Error::transport(message, err.without_url())
}

/// Decodes an error response — status, headers and (a bounded prefix of) the body — into
/// [`Error`]. This is the only place where HTTP statuses become errors.
pub(crate) async fn error_from_response(status: u16, headers: &HeaderMap, mut body: ByteStream) -> Error {
    let mut buf = Vec::new();
    while buf.len() < MAX_ERROR_BODY {
        match body.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - buf.len())]),
            // A body that fails while we read an error still leaves the status to report.
            Some(Err(_)) | None => break,
        }
    }
    let parsed = serde_json::from_slice::<ErrorBody>(&buf).ok();
    let (code, msg, params) = match parsed {
        Some(body) => (body.code, body.msg, body.params.filter(|p| !p.is_null()).map(Box::new)),
        None => (None, None, None),
    };
    let excerpt = if code.is_none() && msg.is_none() {
        excerpt(&buf)
    } else {
        None
    };
    match status {
        401 | 403 => Error::Unauthorized { status, code, msg },
        429 => Error::RateLimited {
            retry_after: retry_after(headers),
            msg,
        },
        300..=399 => {
            let location = headers
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("?");
            let host = url::Url::parse(location)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            Error::Api {
                status,
                code: None,
                msg: Some(format!(
                    "the server redirected to another host ({}); not followed, so that the API key is not sent there — \
                     check the base URL",
                    host.as_deref().unwrap_or(location)
                )),
                params: None,
                excerpt: None,
            }
        }
        _ => Error::Api {
            status,
            code,
            msg,
            params,
            excerpt,
        },
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    msg: Option<String>,
    code: Option<String>,
    params: Option<serde_json::Value>,
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A short, single-line, printable excerpt of a non-JSON body (an HTML proxy page, text).
fn excerpt(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if in_tag => {}
            c if c.is_whitespace() || c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    let collapsed: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    let mut chars = collapsed.chars();
    let short: String = chars.by_ref().take(MAX_EXCERPT_CHARS).collect();
    Some(if chars.next().is_some() {
        format!("{short}…")
    } else {
        short
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &'static [u8]) -> ByteStream {
        Box::pin(futures::stream::iter([Ok(Bytes::from_static(bytes))]))
    }

    #[tokio::test]
    async fn json_error_bodies_keep_code_msg_and_params() {
        let err = error_from_response(
            400,
            &HeaderMap::new(),
            body(br#"{"msg":"Invalid dataTypeName","code":"BadParams","params":{"dataTypeName":"x"}}"#),
        )
        .await;
        match err {
            Error::Api {
                status: 400,
                code,
                msg,
                params,
                excerpt: None,
            } => {
                assert_eq!(code.as_deref(), Some("BadParams"));
                assert_eq!(msg.as_deref(), Some("Invalid dataTypeName"));
                assert_eq!(params.as_deref(), Some(&serde_json::json!({"dataTypeName": "x"})));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn html_bodies_become_a_short_excerpt() {
        let err = error_from_response(
            502,
            &HeaderMap::new(),
            body(b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad   Gateway</h1></body></html>"),
        )
        .await;
        assert_eq!(
            err.to_string(),
            "Iterable API error: HTTP 502 (body: 502 Bad Gateway Bad Gateway)"
        );
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn empty_401_is_unauthorized() {
        let err = error_from_response(401, &HeaderMap::new(), body(b"")).await;
        assert!(matches!(
            err,
            Error::Unauthorized {
                status: 401,
                code: None,
                msg: None
            }
        ));
        assert!(
            err.to_string()
                .contains("check the key and that its project is in the region")
        );
    }

    #[tokio::test]
    async fn rate_limit_reads_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        let err = error_from_response(
            429,
            &headers,
            body(br#"{"msg":"Exceeded rate limit","code":"RateLimitExceeded"}"#),
        )
        .await;
        assert!(matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)));
    }

    #[test]
    fn long_excerpts_are_cut() {
        let long = "x".repeat(500);
        let cut = excerpt(long.as_bytes()).unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn base_urls_are_validated() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/api/").ok().as_deref(),
            Some("http://127.0.0.1:8080/api")
        );
        for bad in ["127.0.0.1:8080", "ftp://host/api", "http://host/api?x=1", ""] {
            assert!(matches!(normalize_base_url(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn missing_key_is_a_config_error() {
        let err = Client::builder()
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("configuration error: no API key"), "{err}");
        let err = Client::from_env_with(|_| None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("ITERABLE_API_KEY is not set"), "{err}");
    }

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
