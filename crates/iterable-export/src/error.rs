//! The one error type of this crate, and the one place where responses become errors: error
//! statuses and bodies (JSON, HTML or nothing), `Retry-After`, and transport failures.

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iterable_export_gen as generated;
use reqwest::header::HeaderMap;

use crate::decode::ByteStream;

/// How much of an error body is read to decode it; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an excerpt of a non-JSON error body may be.
const MAX_EXCERPT_CHARS: usize = 200;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring a client, sending a request or decoding a
/// response. No variant ever contains the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be configured (missing key, bad base URL, unknown region, …).
    #[error("configuration error: {0}")]
    Config(String),

    /// The request was refused before anything was sent, because it could not be valid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The server rejected the API key (HTTP 401), or the key is not allowed to call this
    /// endpoint (HTTP 403).
    #[error("{}", unauthorized_message(*.status, .code.as_deref(), .msg.as_deref()))]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Iterable's error code (e.g. `BadApiKey`), when the body was JSON.
        code: Option<String>,
        /// Iterable's message, when the body was JSON.
        msg: Option<String>,
    },

    /// The server's rate limit was hit (HTTP 429).
    #[error("rate limited by Iterable (HTTP 429){}{}", retry_after_text(.retry_after), msg_text(.msg.as_deref()))]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Iterable's message, when the body was JSON.
        msg: Option<String>,
    },

    /// The server answered with an error status.
    #[error("Iterable API error: HTTP {status}{}{}{}", code_text(.code.as_deref()), msg_text(.msg.as_deref()), excerpt_text(.excerpt.as_deref()))]
    Api {
        /// HTTP status code.
        status: u16,
        /// Iterable's error code (`BadParams`, `GenericError`, …), when the body was JSON.
        code: Option<String>,
        /// Iterable's message, when the body was JSON.
        msg: Option<String>,
        /// Iterable's `params` object, when the body was JSON and had one.
        params: Option<Box<serde_json::Value>>,
        /// A short, printable excerpt of a body that was not JSON (an HTML proxy page, text).
        excerpt: Option<String>,
    },

    /// The connection failed, or the server stopped sending before the body was complete.
    #[error("transport error: {message}")]
    Transport {
        /// What failed, without any secret.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// Nothing arrived for longer than the configured read timeout.
    #[error("timed out: no data for {0:?}; the server may have stalled (raise the read timeout if it is slow)")]
    Timeout(Duration),

    /// No connection to the server could be made within the configured connect timeout (the
    /// host did not answer: a wrong base URL or region, a firewall, or a network outage).
    #[error(
        "timed out connecting to the server after {0:?}; check the base URL/region and your network (or raise the connect timeout)"
    )]
    ConnectTimeout(Duration),

    /// A record could not be decoded.
    #[error("cannot decode line {line} (byte offset {offset}): {message}")]
    Decode {
        /// 1-based line number in the response body.
        line: u64,
        /// Byte offset of the start of that line in the response body.
        offset: u64,
        /// What was wrong.
        message: String,
    },

    /// A line was longer than the configured maximum, so it was not buffered.
    #[error(
        "line {line} (byte offset {offset}) is longer than the maximum of {max} bytes; raise `max_line_length` if such records are expected"
    )]
    LineTooLong {
        /// 1-based line number in the response body.
        line: u64,
        /// Byte offset of the start of that line in the response body.
        offset: u64,
        /// The configured maximum line length in bytes.
        max: usize,
    },

    /// A window of a windowed export kept failing, or failed with an error that retrying
    /// cannot fix. Nothing of the window was committed; rerun (with the same state file) to
    /// continue from this window.
    #[error("export of {data_type} window {window} failed after {attempts} attempt(s): {source}")]
    WindowFailed {
        /// The data type being exported.
        data_type: String,
        /// The window, as `[start, end)`.
        window: String,
        /// Failed attempts at the window (retries before the body are not counted).
        attempts: u32,
        /// The last error.
        #[source]
        source: Box<Error>,
    },

    /// A local I/O operation failed (writing an output file, reading a state file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn unauthorized_message(status: u16, code: Option<&str>, msg: Option<&str>) -> String {
    let what = if status == 403 {
        "the API key is not allowed to call this endpoint (HTTP 403); export endpoints need a server-side key"
    } else {
        "the API key was rejected (HTTP 401); check the key and that its project is in the region you chose (us or eu)"
    };
    format!("{what}{}{}", code_text(code), msg_text(msg))
}

fn code_text(code: Option<&str>) -> String {
    code.map(|c| format!(" [{c}]")).unwrap_or_default()
}

fn msg_text(msg: Option<&str>) -> String {
    msg.map(|m| format!(": {}", m.trim())).unwrap_or_default()
}

fn excerpt_text(excerpt: Option<&str>) -> String {
    excerpt.map(|e| format!(" (body: {e})")).unwrap_or_default()
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {}s", d.as_secs()))
        .unwrap_or_default()
}

impl Error {
    /// Whether retrying the same request may succeed: rate limits, server errors (500
    /// `GenericError`, 502, 503, 504), connection failures, timeouts (read and connect) and bodies
    /// cut short.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Transport { .. } | Error::Timeout(_) | Error::ConnectTimeout(_) => true,
            Error::Api { status, code, .. } => {
                matches!(status, 502..=504) || (*status == 500 && code.as_deref().is_none_or(|c| c == "GenericError"))
            }
            _ => false,
        }
    }

    /// The HTTP status of an error response, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unauthorized { status, .. } | Error::Api { status, .. } => Some(*status),
            Error::WindowFailed { source, .. } => source.status(),
            Error::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    pub(crate) fn transport(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Transport {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// For byte-oriented readers ([`Body::into_async_read`](crate::Body::into_async_read)): the
/// error itself is kept inside (`io_error.get_ref()` and `downcast_ref::<Error>()` get it back).
/// The kind is [`TimedOut`](std::io::ErrorKind::TimedOut) for [`Error::Timeout`] and
/// [`Error::ConnectTimeout`], the underlying one for [`Error::Io`], otherwise
/// [`Other`](std::io::ErrorKind::Other).
impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::Timeout(_) | Error::ConnectTimeout(_) => std::io::ErrorKind::TimedOut,
            Error::Io { source, .. } => source.kind(),
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}

// --- Responses and transport failures as errors ------------------------------------------------

/// The generated client's error as this crate's: an error response is decoded (status, headers,
/// a bounded prefix of the body), a transport failure names the timeout that expired.
pub(crate) async fn from_generated(err: generated::Error<generated::ByteStream>, timeouts: Timeouts) -> Error {
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

pub(crate) type ReqwestStream = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// The timeouts in force, to name the one that expired.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) read: Duration,
}

/// A response body whose failures (a connection cut, a read timeout) are this crate's errors.
pub(crate) fn body_stream(stream: ReqwestStream, timeouts: Timeouts) -> ByteStream {
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
    use reqwest::header::HeaderValue;

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
    fn io_errors_keep_the_error_and_name_timeouts() {
        let cases = [
            (Error::Timeout(Duration::from_secs(1)), std::io::ErrorKind::TimedOut),
            (
                Error::ConnectTimeout(Duration::from_secs(1)),
                std::io::ErrorKind::TimedOut,
            ),
            (
                Error::io("reading", std::io::ErrorKind::NotFound.into()),
                std::io::ErrorKind::NotFound,
            ),
            (
                Error::Transport {
                    message: "cut".into(),
                    source: None,
                },
                std::io::ErrorKind::Other,
            ),
        ];
        for (err, kind) in cases {
            let shown = err.to_string();
            let io = std::io::Error::from(err);
            assert_eq!(io.kind(), kind, "{shown}");
            assert_eq!(io.to_string(), shown);
            let inner = io
                .get_ref()
                .and_then(|e| e.downcast_ref::<Error>())
                .map(Error::to_string);
            assert_eq!(inner.as_deref(), Some(shown.as_str()));
        }
    }

    #[test]
    fn long_excerpts_are_cut() {
        let long = "x".repeat(500);
        let cut = excerpt(long.as_bytes()).unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
