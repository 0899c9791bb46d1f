//! Request log and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One entry of the request log. The API key's value is never recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/export/data.json`.
    pub path: String,
    /// Raw query string (parameters named like a key — `api_key`, `apiKey`, `Api-Key` — have their
    /// value replaced by `REDACTED`).
    pub query: String,
    /// Whether an `Api-Key` header was present.
    pub api_key_present: bool,
    /// Status sent.
    pub status: u16,
    /// Body bytes sent so far.
    pub bytes_sent: u64,
    /// Time from the request's arrival to the end of its body (so far, while streaming).
    pub duration: Duration,
    /// True once the body was sent completely; false while streaming, after a cut
    /// ([`Fault::Truncate`](crate::Fault::Truncate)) or when the client went away.
    pub completed: bool,
    /// The fault(s) applied, in their text form (e.g. `status:500`), if any.
    pub fault: Option<String>,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests received (both listeners).
    pub requests: u64,
    /// Requests per path (e.g. `/api/export/data.json`).
    pub by_endpoint: BTreeMap<String, u64>,
    /// Responses per status.
    pub by_status: BTreeMap<u16, u64>,
    /// 429 responses sent by the rate limiter (injected 429s are not counted here).
    pub rate_limited: u64,
    /// Requests answered or altered by an injected fault.
    pub faults_applied: u64,
    /// Body bytes sent.
    pub bytes_sent: u64,
}

/// A request received by the redirect target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectHit {
    /// Path requested.
    pub path: String,
    /// Query string (key-like parameters redacted).
    pub query: String,
    /// Whether an `Api-Key` header arrived (a leaked key).
    pub api_key_present: bool,
}

/// Counters of the asynchronous export jobs and of the file host
/// ([`MockServer::job_counters`](crate::MockServer::job_counters)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobCounters {
    /// Jobs created (`POST /export/start` answered 200).
    pub starts: u64,
    /// `GET /export/{jobId}/files` requests answered 200.
    pub file_listings: u64,
    /// `GET /export/jobs` requests answered 200.
    pub job_listings: u64,
    /// `DELETE /export/{jobId}` requests that cancelled a job (answered 200).
    pub cancels: u64,
    /// Every `DELETE /export/{jobId}` request received, whatever the answer (401, 429, 400 for a
    /// job that already ended, 404).
    pub delete_requests: u64,
    /// 429s sent by the jobs' limits (start and files share one; cancel has its own).
    pub rate_limited: u64,
    /// 500s sent by [`JobFault::FilesError`](crate::JobFault::FilesError).
    pub files_errors: u64,
    /// Jobs created whose start answered 500 ([`JobFault::StartError`](crate::JobFault::StartError)).
    pub start_errors: u64,
    /// Requests the file host received.
    pub downloads: u64,
    /// Downloads that sent a whole file.
    pub complete_downloads: u64,
    /// Downloads cut by [`JobFault::CutFile`](crate::JobFault::CutFile).
    pub cut_downloads: u64,
    /// 403 "Request has expired" answers of the file host.
    pub expired: u64,
    /// Other 403s and 404s of the file host (a bad signature, an unknown file).
    pub rejected_downloads: u64,
    /// Requests to the file host that carried an `Api-Key` header or the API key's value
    /// anywhere (path, query, any header): a leaked key. A correct client keeps this at 0.
    pub api_key_leaks: u64,
}

/// A request the file host (the pre-signed URLs' host) received
/// ([`MockServer::file_host_hits`](crate::MockServer::file_host_hits)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileHostHit {
    /// Path requested, e.g. `/iterable-exports/1000001/file-1704067200137.json`.
    pub path: String,
    /// Status sent.
    pub status: u16,
    /// Whether an `Api-Key` header arrived.
    pub api_key_header: bool,
    /// Whether the API key's value appeared anywhere in the request (path, query, any header).
    pub api_key_anywhere: bool,
}

#[derive(Debug)]
pub(crate) struct LogEntry {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) api_key_present: bool,
    pub(crate) status: u16,
    pub(crate) fault: Option<String>,
    pub(crate) started: Instant,
    pub(crate) bytes: AtomicU64,
    /// Microseconds; `u64::MAX` while running.
    pub(crate) duration_us: AtomicU64,
    pub(crate) completed: AtomicBool,
}

impl LogEntry {
    pub(crate) fn finish(&self, completed: bool) {
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        let _ = self
            .duration_us
            .compare_exchange(u64::MAX, us, Ordering::AcqRel, Ordering::Acquire);
        if completed {
            self.completed.store(true, Ordering::Release);
        }
    }

    pub(crate) fn snapshot(&self) -> RequestRecord {
        let us = self.duration_us.load(Ordering::Acquire);
        let duration = if us == u64::MAX {
            self.started.elapsed()
        } else {
            Duration::from_micros(us)
        };
        RequestRecord {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            api_key_present: self.api_key_present,
            status: self.status,
            bytes_sent: self.bytes.load(Ordering::Acquire),
            duration,
            completed: self.completed.load(Ordering::Acquire),
            fault: self.fault.clone(),
        }
    }
}

/// Replaces the values of key-like query parameters with `REDACTED`.
pub(crate) fn redact_query(q: &str) -> String {
    q.split('&')
        .map(|kv| {
            let name = kv.split('=').next().unwrap_or("");
            let lower = name.to_ascii_lowercase().replace(['-', '_'], "");
            if lower == "apikey" && kv.contains('=') {
                format!("{name}=REDACTED")
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction() {
        assert_eq!(
            super::redact_query("a=1&api_key=s3cr3t&Api-Key=x&apiKey=y&b"),
            "a=1&api_key=REDACTED&Api-Key=REDACTED&apiKey=REDACTED&b"
        );
    }
}
