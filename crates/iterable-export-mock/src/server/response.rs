//! Small, complete responses: Iterable's JSON error bodies, the HTML pages a proxy sends, and
//! the content types.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::MockConfig;
use crate::data::push_json_str;

pub(super) const CT_NDJSON: &str = "application/x-ndjson";
pub(super) const CT_CSV: &str = "text/csv";
pub(super) const CT_JSON: &str = "application/json";
const CT_HTML: &str = "text/html; charset=utf-8";

/// `s` as a JSON string literal.
pub(super) fn json_escape(s: &str) -> String {
    let mut b = Vec::new();
    push_json_str(&mut b, s.as_bytes());
    String::from_utf8_lossy(&b).into_owned()
}

/// Iterable's error body: `{"msg":…,"code":…,"params":…}` (`params` is JSON text).
fn error_json(msg: &str, code: &str, params: &str) -> String {
    format!(
        "{{\"msg\":{},\"code\":\"{code}\",\"params\":{params}}}",
        json_escape(msg)
    )
}

/// A small, complete response.
pub(super) struct Small {
    pub(super) status: u16,
    /// Empty: no `Content-Type`.
    pub(super) content_type: &'static str,
    pub(super) body: Vec<u8>,
    pub(super) headers: Vec<(header::HeaderName, String)>,
}

impl Small {
    pub(super) fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Self {
        Small {
            status,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// A response without a body (and without `Content-Type`).
    pub(super) fn empty(status: u16) -> Self {
        Small::new(status, "", Vec::new())
    }

    pub(super) fn with_header(mut self, name: header::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// An Iterable JSON error with empty `params`.
    pub(super) fn error(status: u16, msg: &str, code: &str) -> Self {
        Small::error_with_params(status, msg, code, "{}")
    }

    /// An Iterable JSON error; `params` is JSON text.
    pub(super) fn error_with_params(status: u16, msg: &str, code: &str, params: &str) -> Self {
        Small::new(status, CT_JSON, error_json(msg, code, params).into_bytes())
    }

    pub(super) fn bad_params(msg: &str) -> Self {
        Small::error(400, msg, "BadParams")
    }

    /// 500 with Iterable's generic error.
    pub(super) fn generic_error() -> Self {
        Small::error(500, "Something went wrong. Please try again later.", "GenericError")
    }

    /// 429 for `path`, with `Retry-After: retry_after_secs` when the configured limit sends it.
    pub(super) fn rate_limited(config: &MockConfig, path: &str, retry_after_secs: u64) -> Self {
        Small::rate_limited_by(config, path, retry_after_secs, config.rate_limit.retry_after)
    }

    /// 429 for `path`, with `Retry-After: retry_after_secs` when `retry_after`.
    pub(super) fn rate_limited_by(config: &MockConfig, path: &str, retry_after_secs: u64, retry_after: bool) -> Self {
        let msg = format!(
            "Exceeded rate limit for endpoint: {path}, project: {} ",
            config.project_id
        );
        let s = Small::error(429, &msg, "RateLimitExceeded");
        if retry_after {
            s.with_header(header::RETRY_AFTER, retry_after_secs.to_string())
        } else {
            s
        }
    }

    /// The HTML page a proxy (nginx) sends for `status`.
    pub(super) fn proxy_page(status: u16, title: &str) -> Self {
        let body = format!(
            "<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n<center><h1>{status} {title}</h1></center>\r\n</body>\r\n</html>\r\n"
        );
        Small::new(status, CT_HTML, body.into_bytes())
    }
}

impl Small {
    /// The HTTP response (a header value that is not valid is left out).
    pub(super) fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        if !self.content_type.is_empty() {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        }
        for (name, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
        resp
    }
}
