//! The one place where responses become errors: error statuses and bodies (JSON, HTML or
//! nothing), `Retry-After`, and transport failures (naming the timeout that expired).

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use iterable_export_gen as generated;
use reqwest::header::HeaderMap;

use crate::Error;
use crate::decode::ByteStream;

/// How much of an error body is read to decode it; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an excerpt of a non-JSON error body may be.
const MAX_EXCERPT_CHARS: usize = 200;

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
pub(crate) fn transport_error(err: reqwest::Error, timeouts: Timeouts) -> Error {
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
pub(crate) fn excerpt(body: &[u8]) -> Option<String> {
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
    fn long_excerpts_are_cut() {
        let long = "x".repeat(500);
        let cut = excerpt(long.as_bytes()).unwrap_or_default();
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
