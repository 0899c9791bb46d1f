//! Configuring a [`Client`]: the API key, where requests go (region, base URL, plain-http
//! refusal, redirects), timeouts, limits, retries and trusted root certificates.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use iterable_export_gen as generated;
use reqwest::header::{HeaderMap, HeaderValue};

use super::{Client, Inner};
use crate::decode::DEFAULT_MAX_LINE_LENGTH;
use crate::rate_limit::Limiter;
use crate::stats::Counters;
use crate::{Error, RateLimit, Region, Result, RetryPolicy};

/// Name of the header that carries the API key.
const API_KEY_HEADER: &str = "Api-Key";

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
    jobs_rate_limit: RateLimit,
    max_running_jobs: usize,
    job_polling: crate::jobs::Polling,
    retry: RetryPolicy,
    allow_plaintext_api_key: bool,
    root_certificates: RootCertificates,
}

/// PEM bundles added with [`ClientBuilder::add_root_certificate`], parsed at build.
#[derive(Clone, Default)]
struct RootCertificates(Vec<Vec<u8>>);

impl fmt::Debug for RootCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} PEM bundle(s)", self.0.len())
    }
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
            jobs_rate_limit: crate::jobs::DEFAULT_JOBS_RATE_LIMIT,
            max_running_jobs: crate::jobs::DEFAULT_MAX_RUNNING_JOBS,
            job_polling: crate::jobs::Polling::default(),
            retry: RetryPolicy::default(),
            allow_plaintext_api_key: false,
            root_certificates: RootCertificates::default(),
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

    /// The rate limit shared by starting export jobs (`POST /export/start`) and listing their
    /// files (`GET /export/{jobId}/files`); default 1 request per second, as Iterable enforces per
    /// organization. Lower it when other programs of the organization start jobs too.
    pub fn jobs_rate_limit(mut self, limit: RateLimit) -> Self {
        self.jobs_rate_limit = limit;
        self
    }

    /// How many export jobs of this client (and its clones) run at once; default 4, Iterable's
    /// limit per organization. More wait here instead of queueing at Iterable. 0 acts as 1.
    pub fn max_running_jobs(mut self, jobs: usize) -> Self {
        self.max_running_jobs = jobs;
        self
    }

    /// How export jobs without new files are polled: first after `initial` (default 1 s),
    /// doubling up to `max` (default 300 s); a job not completed `give_up_after` (default 24
    /// hours) after it was started or resumed fails the export. Zero durations act as 1 ms.
    pub fn job_polling(mut self, initial: Duration, max: Duration, give_up_after: Duration) -> Self {
        let at_least = |d: Duration| d.max(Duration::from_millis(1));
        self.job_polling = crate::jobs::Polling {
            initial: at_least(initial),
            max: at_least(max.max(initial)),
            give_up_after: at_least(give_up_after),
        };
        self
    }

    /// How transient failures are retried; see [`RetryPolicy`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Trusts the certificates in `pem` (one or more PEM `CERTIFICATE` blocks) as roots, besides
    /// the system's: for a TLS-intercepting corporate proxy, or a test server with a self-signed
    /// certificate. May be called more than once. Hostnames are still verified.
    ///
    /// The certificates are read by [`build`](ClientBuilder::build), which fails with
    /// [`Error::Config`] when `pem` holds no certificate or one that cannot be read, or when the
    /// crate was built without a TLS backend (the `rustls` or `native-tls` feature).
    ///
    /// ```no_run
    /// use iterable_export::Client;
    ///
    /// let pem = std::fs::read("/etc/ssl/corporate-proxy-ca.pem")?;
    /// let client = Client::builder().api_key("my-key").add_root_certificate(&pem).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```
    /// use iterable_export::{Client, Error};
    ///
    /// let built = Client::builder().api_key("k").add_root_certificate("not a certificate").build();
    /// assert!(matches!(built, Err(Error::Config(_))));
    /// ```
    pub fn add_root_certificate(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.root_certificates.0.push(pem.as_ref().to_vec());
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
    /// rate limit allows 0 requests; a timeout is zero; or a root certificate cannot be used (see
    /// [`add_root_certificate`](ClientBuilder::add_root_certificate)).
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
        self.jobs_rate_limit.validate()?;
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
            .redirect(same_origin_redirects(origin));
        let http = with_root_certificates(http, &self.root_certificates)?
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client: {err}")))?;
        let generated = generated::Client::new_with_client(&base_url, http);
        // Export job files are pre-signed URLs on another host: a client of its own, which
        // never carries the API key.
        let downloads = reqwest::Client::builder()
            .user_agent(format!("iterable-export/{}", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout);
        let downloads = with_root_certificates(downloads, &self.root_certificates)?
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client of file downloads: {err}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                generated,
                base_url,
                region: self.region,
                connect_timeout,
                read_timeout,
                max_line_length: self.max_line_length,
                limiter: Limiter::new(self.rate_limit),
                jobs: crate::jobs::Shared::new(
                    self.jobs_rate_limit,
                    self.max_running_jobs,
                    self.job_polling,
                    downloads,
                ),
                retry: self.retry,
                counters: Counters::default(),
            }),
        })
    }
}

/// Adds the roots of [`ClientBuilder::add_root_certificate`] to the system's.
#[cfg(any(feature = "rustls", feature = "native-tls"))]
fn with_root_certificates(http: reqwest::ClientBuilder, roots: &RootCertificates) -> Result<reqwest::ClientBuilder> {
    let mut certificates = Vec::new();
    for (index, pem) in roots.0.iter().enumerate() {
        let bundle = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|err| Error::Config(format!("cannot read root certificate bundle #{}: {err}", index + 1)))?;
        if bundle.is_empty() {
            return Err(Error::Config(format!(
                "root certificate bundle #{} holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)",
                index + 1
            )));
        }
        certificates.extend(bundle);
    }
    Ok(if certificates.is_empty() {
        http
    } else {
        http.tls_certs_merge(certificates)
    })
}

/// Without a TLS backend there is nothing to add roots to.
#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
fn with_root_certificates(http: reqwest::ClientBuilder, roots: &RootCertificates) -> Result<reqwest::ClientBuilder> {
    if roots.0.is_empty() {
        Ok(http)
    } else {
        Err(Error::Config(
            "root certificates were added, but this build of iterable-export has no TLS backend: \
             enable its `rustls` or `native-tls` feature"
                .into(),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
