//! The one error type of this crate. Responses become errors in `error/response.rs`.

use std::time::Duration;

mod response;

pub(crate) use response::{Timeouts, body_stream, excerpt, from_generated, transport_error};

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

    /// An export job (`POST /export/start`) ended without delivering its files: it failed, was
    /// cancelled, hit the 100 GB cap in a window that cannot be split further, is in a state this
    /// client does not know, or did not finish in time.
    #[error("export job {job_id}: {message}")]
    Job {
        /// The job's id.
        job_id: i64,
        /// What happened, and what to do.
        message: String,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
