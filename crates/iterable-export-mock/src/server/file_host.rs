//! The file host: the third listener, standing for the storage host (S3) that the pre-signed
//! URLs of job files point at. It checks the URL's signature and expiry, never an API key, and
//! records whether a key arrived anyway (a client that leaks it across hosts).
//!
//! A URL is `{base}/iterable-exports/{jobId}/{file}?X-Amz-Expires={secs}&Expires={ms}&Signature={hex}`:
//! `Expires` is the deadline in milliseconds of the mock's clock (tokio's, from the server's
//! start), and the signature covers the path and the deadline.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, header};
use std::sync::Arc;

use super::ReqInfo;
use super::body::{BodyStream, ExportBody};
use super::jobs::{Job, Jobs};
use super::response::Small;
use super::state::{Shared, lock};
use crate::data::mix;
use crate::observe::FileHostHit;
use crate::{Fault, MockConfig};

const BUCKET: &str = "/iterable-exports/";
const CT_XML: &str = "application/xml";

/// The router of the file host.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// The signature of `path` valid until `deadline_ms`.
fn signature(secret: u64, path: &str, deadline_ms: u64) -> u64 {
    // FNV-1a over the path, then the mixer with the key and the deadline.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(secret ^ mix(h ^ mix(deadline_ms)))
}

/// The pre-signed URL of `file` of job `job_id`, valid until `deadline_ms`.
pub(crate) fn presigned_url(
    jobs: &Jobs,
    base: &str,
    job_id: i64,
    file: &str,
    deadline_ms: u64,
    expiry_secs: u64,
) -> String {
    let path = format!("{BUCKET}{job_id}/{file}");
    let sig = signature(jobs.secret, &path, deadline_ms);
    format!("{base}{path}?X-Amz-Expires={expiry_secs}&Expires={deadline_ms}&Signature={sig:016x}")
}

/// An S3-style XML error.
fn s3_error(status: u16, code: &str, message: &str, extra: &str) -> Small {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>4442587FB7D0A2F9</RequestId><HostId>mock</HostId></Error>"
    );
    Small::new(status, CT_XML, body.into_bytes())
}

/// True when the key's value appears in the path, the query or any header.
fn key_anywhere(req: &Request, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    let uri = req.uri().to_string();
    let decoded: String = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect::<Vec<_>>()
        .join("&");
    uri.contains(key)
        || decoded.contains(key)
        || req
            .headers()
            .values()
            .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(key))
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let config = shared.config();
    let info = ReqInfo::of(&req);
    let leaked = key_anywhere(&req, &config.api_key);
    let jobs = &shared.jobs;
    jobs.count(|c| {
        c.downloads += 1;
        if info.api_key.is_some() || leaked {
            c.api_key_leaks += 1;
        }
    });
    let outcome = serve(&shared, &config, &info);
    let status = match &outcome {
        Ok(_) => 200,
        Err(s) => s.status,
    };
    {
        let mut hits = lock(&jobs.hits);
        if hits.len() >= config.request_log_capacity.max(1) {
            hits.remove(0);
        }
        hits.push(FileHostHit {
            path: info.path.clone(),
            status,
            api_key_header: info.api_key.is_some(),
            api_key_anywhere: info.api_key.is_some() || leaked,
        });
    }
    match outcome {
        Err(small) => {
            shared.log(&info, small.status, None, Some(small.body.len() as u64));
            small.into_response()
        }
        Ok(download) => download.respond(&shared, &config, &info),
    }
}

/// A file to send.
struct Download {
    job: Arc<Job>,
    index: usize,
    cut: Option<u64>,
}

impl Download {
    fn respond(self, shared: &Arc<Shared>, config: &MockConfig, info: &ReqInfo) -> Response {
        let file = lock(&self.job.data).files[self.index].clone();
        let (mut records, layout) = self.job.spec.records(&self.job.config);
        records.seek(file.piece.start);
        let body = ExportBody::file(records, layout, file.piece.records);
        let faults: Vec<Fault> = self
            .cut
            .map(|after| Fault::Truncate {
                after_bytes: after.min(file.piece.bytes.saturating_sub(1)),
                count: 1,
            })
            .into_iter()
            .collect();
        let label = faults.first().map(|f| format!("job-cut:{f}"));
        let entry = shared.log(info, 200, label, None);
        let job = self.job.clone();
        let jobs = shared.clone();
        let cut = self.cut.is_some();
        let stream = BodyStream::new(body, &faults, config.chunk_size.max(1024), entry, shared.clone())
            .with_declared_len(file.piece.bytes)
            .on_finish(move |complete| {
                if complete {
                    let mut d = lock(&job.data);
                    d.complete_downloads += 1;
                    if matches!(d.state, crate::JobState::Enqueued | crate::JobState::Running) {
                        d.downloads_while_running += 1;
                    }
                    drop(d);
                    job.downloaded.send_modify(|n| *n += 1);
                }
                jobs.jobs.count(|c| {
                    if complete {
                        c.complete_downloads += 1;
                    }
                    if cut {
                        c.cut_downloads += 1;
                    }
                });
            });
        let mut resp = Response::new(Body::from_stream(stream.into_stream()));
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.job.spec.format.as_str()),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.piece.bytes));
        resp
    }
}

/// Checks the request: method, signature, expiry, the file; takes a cut fault.
fn serve(shared: &Shared, config: &MockConfig, req: &ReqInfo) -> Result<Download, Small> {
    let jobs = &shared.jobs;
    let reject = |s: Small| {
        jobs.count(|c| c.rejected_downloads += 1);
        s
    };
    if req.method != Method::GET {
        return Err(reject(
            s3_error(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                "",
            )
            .with_header(header::ALLOW, "GET".to_owned()),
        ));
    }
    let no_key = || reject(s3_error(404, "NoSuchKey", "The specified key does not exist.", ""));
    let rest = req.path.strip_prefix(BUCKET).ok_or_else(no_key)?;
    let (job_id, name) = rest.split_once('/').ok_or_else(no_key)?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes()).into_owned().collect();
    let param = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let deadline = param("Expires").and_then(|v| v.parse::<u64>().ok());
    let sig = param("Signature").and_then(|v| u64::from_str_radix(v, 16).ok());
    let (Some(deadline), Some(sig)) = (deadline, sig) else {
        return Err(reject(s3_error(
            403,
            "AccessDenied",
            "Query-string authentication requires the Signature and Expires parameters",
            "",
        )));
    };
    if signature(jobs.secret, &req.path, deadline) != sig {
        return Err(reject(s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            "",
        )));
    }
    let clock = jobs.clock(config);
    let now = clock.millis();
    if now >= deadline {
        jobs.count(|c| c.expired += 1);
        let expires = clock.wall() - std::time::Duration::from_millis(now - deadline);
        let extra = format!(
            "<Expires>{}</Expires><ServerTime>{}</ServerTime>",
            expires.format("%Y-%m-%dT%H:%M:%SZ"),
            clock.wall().format("%Y-%m-%dT%H:%M:%SZ")
        );
        return Err(s3_error(403, "AccessDenied", "Request has expired", &extra));
    }
    let job = job_id
        .parse::<i64>()
        .ok()
        .and_then(|id| jobs.get(id))
        .ok_or_else(no_key)?;
    let mut d = lock(&job.data);
    let index = d.files.iter().position(|f| f.name == name).ok_or_else(no_key)?;
    let number = index as u32 + 1;
    let cut = d
        .cuts
        .iter()
        .position(|(f, _)| *f == number)
        .map(|i| d.cuts.remove(i).1);
    drop(d);
    Ok(Download { job, index, cut })
}
