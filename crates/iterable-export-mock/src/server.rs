//! HTTP handling.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderValue, Method, StatusCode, header};

use crate::data::{self, DataType, FieldFilter, RecordStream, push_csv_cell, push_i64, push_u64};
use crate::observe::{LogEntry, RedirectHit, RequestRecord, redact_query};
use crate::{Counters, ExportRange, Fault, MockConfig, parse_datetime};

const DATA_JSON: &str = "/api/export/data.json";
const DATA_CSV: &str = "/api/export/data.csv";
const USER_EVENTS: &str = "/api/export/userEvents";
const METRICS: &str = "/api/experiments/metrics";

const CT_NDJSON: &str = "application/x-ndjson";
const CT_CSV: &str = "text/csv";
const CT_JSON: &str = "application/json";
const CT_HTML: &str = "text/html; charset=utf-8";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct CounterState {
    requests: u64,
    by_endpoint: std::collections::BTreeMap<String, u64>,
    by_status: std::collections::BTreeMap<u16, u64>,
    rate_limited: u64,
    faults_applied: u64,
}

/// State shared by the handlers and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    config: RwLock<MockConfig>,
    faults: Mutex<Vec<Fault>>,
    /// Arrival times per limited endpoint, on tokio's clock: the real clock, except in tests that
    /// pause tokio's time (then the rolling window follows the paused clock).
    rate: Mutex<HashMap<&'static str, VecDeque<tokio::time::Instant>>>,
    log: Mutex<VecDeque<Arc<LogEntry>>>,
    counters: Mutex<CounterState>,
    bytes: AtomicU64,
    redirect_hits: Mutex<Vec<RedirectHit>>,
    redirect_base: String,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, redirect_base: String) -> Self {
        Shared {
            config: RwLock::new(config),
            faults: Mutex::new(Vec::new()),
            rate: Mutex::new(HashMap::new()),
            log: Mutex::new(VecDeque::new()),
            counters: Mutex::new(CounterState::default()),
            bytes: AtomicU64::new(0),
            redirect_hits: Mutex::new(Vec::new()),
            redirect_base,
        }
    }

    pub(crate) fn config(&self) -> MockConfig {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn update_config(&self, f: impl FnOnce(&mut MockConfig)) {
        let mut c = self.config.write().unwrap_or_else(PoisonError::into_inner);
        let bind = c.bind;
        f(&mut c);
        c.bind = bind;
    }

    pub(crate) fn inject(&self, fault: Fault) {
        if fault.count() > 0 {
            lock(&self.faults).push(fault);
        }
    }

    pub(crate) fn pending_faults(&self) -> Vec<Fault> {
        lock(&self.faults).clone()
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn reset_rate_limit(&self) {
        lock(&self.rate).clear();
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.log).iter().map(|e| e.snapshot()).collect()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub(crate) fn counters(&self) -> Counters {
        let c = lock(&self.counters);
        Counters {
            requests: c.requests,
            by_endpoint: c.by_endpoint.clone(),
            by_status: c.by_status.clone(),
            rate_limited: c.rate_limited,
            faults_applied: c.faults_applied,
            bytes_sent: self.bytes.load(Ordering::Acquire),
        }
    }

    pub(crate) fn redirect_hits(&self) -> Vec<RedirectHit> {
        lock(&self.redirect_hits).clone()
    }

    /// Takes one count of the first response fault, if any.
    fn take_response_fault(&self) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let pos = faults.iter().position(|f| f.is_response_fault())?;
        let f = take_one(&mut faults, pos);
        Some(f)
    }

    /// Takes one count of every body fault.
    fn take_body_faults(&self) -> Vec<Fault> {
        let mut faults = lock(&self.faults);
        let mut taken = Vec::new();
        let mut i = 0;
        while i < faults.len() {
            if faults[i].is_response_fault() {
                i += 1;
                continue;
            }
            let before = faults.len();
            taken.push(take_one(&mut faults, i));
            if faults.len() == before {
                i += 1;
            }
        }
        taken
    }

    /// Checks and records a request against the rate limit; `Err(retry_after_secs)` when limited.
    fn rate_check(&self, endpoint: &'static str, limit: &crate::RateLimit) -> Result<(), u64> {
        if limit.requests == 0 {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let mut rate = lock(&self.rate);
        let q = rate.entry(endpoint).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= limit.window) {
            q.pop_front();
        }
        if q.len() < limit.requests as usize {
            q.push_back(now);
            return Ok(());
        }
        let oldest = q.front().copied().unwrap_or(now);
        let wait = (oldest + limit.window).saturating_duration_since(now);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(secs.max(1))
    }

    #[allow(clippy::too_many_arguments)]
    fn log(&self, req: &ReqInfo, status: u16, fault: Option<String>, body_len: Option<u64>) -> Arc<LogEntry> {
        let entry = Arc::new(LogEntry {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: redact_query(&req.query),
            api_key_present: req.api_key.is_some(),
            status,
            fault: fault.clone(),
            started: req.started,
            bytes: AtomicU64::new(body_len.unwrap_or(0)),
            duration_us: AtomicU64::new(u64::MAX),
            completed: AtomicBool::new(false),
        });
        if let Some(n) = body_len {
            entry.finish(true);
            self.bytes.fetch_add(n, Ordering::AcqRel);
        }
        {
            let mut c = lock(&self.counters);
            c.requests += 1;
            *c.by_endpoint.entry(req.path.clone()).or_default() += 1;
            *c.by_status.entry(status).or_default() += 1;
            if fault.is_some() {
                c.faults_applied += 1;
            }
        }
        let cap = self
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .request_log_capacity;
        let mut log = lock(&self.log);
        if cap > 0 {
            while log.len() >= cap {
                log.pop_front();
            }
            log.push_back(entry.clone());
        }
        tracing::debug!(
            method = %req.method,
            path = %req.path,
            query = %entry.query,
            status,
            "request"
        );
        entry
    }
}

fn take_one(faults: &mut Vec<Fault>, pos: usize) -> Fault {
    let f = faults[pos].clone();
    let c = faults[pos].count_mut();
    *c -= 1;
    if *c == 0 {
        faults.remove(pos);
    }
    f
}

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    redirect_target: bool,
}

pub(crate) fn router(shared: Arc<Shared>, redirect_target: bool) -> Router {
    Router::new().fallback(handle).with_state(App {
        shared,
        redirect_target,
    })
}

struct ReqInfo {
    method: Method,
    path: String,
    query: String,
    api_key: Option<String>,
    started: Instant,
}

fn json_escape(s: &str) -> String {
    let mut b = Vec::new();
    data::push_json_str(&mut b, s.as_bytes());
    String::from_utf8_lossy(&b).into_owned()
}

fn error_json(msg: &str, code: &str, params: &str) -> String {
    format!(
        "{{\"msg\":{},\"code\":\"{code}\",\"params\":{params}}}",
        json_escape(msg)
    )
}

/// A small, complete response.
struct Small {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(header::HeaderName, String)>,
}

impl Small {
    fn json(status: u16, body: String) -> Self {
        Small {
            status,
            content_type: CT_JSON,
            body: body.into_bytes(),
            headers: Vec::new(),
        }
    }

    fn bad_params(msg: &str) -> Self {
        Small::json(400, error_json(msg, "BadParams", "{}"))
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    let info = ReqInfo {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        query: req.uri().query().unwrap_or("").to_owned(),
        api_key: req
            .headers()
            .get("Api-Key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        started: Instant::now(),
    };
    let shared = &app.shared;
    let config = shared.config();
    if app.redirect_target {
        let mut hits = lock(&shared.redirect_hits);
        if hits.len() >= config.request_log_capacity.max(1) {
            hits.remove(0);
        }
        hits.push(RedirectHit {
            path: info.path.clone(),
            query: redact_query(&info.query),
            api_key_present: info.api_key.is_some(),
        });
    }
    match route(&app, &config, &info) {
        Outcome::Small(s, fault) => {
            let len = s.body.len() as u64;
            shared.log(&info, s.status, fault, Some(len));
            let mut resp = Response::new(Body::from(s.body));
            *resp.status_mut() = StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let h = resp.headers_mut();
            if !s.content_type.is_empty() {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(s.content_type));
            }
            for (name, v) in s.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(name, v);
                }
            }
            resp
        }
        Outcome::Export(export, faults) => {
            let fault_label = if faults.is_empty() {
                None
            } else {
                Some(faults.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(","))
            };
            let content_type = if export.csv_columns.is_some() {
                CT_CSV
            } else {
                CT_NDJSON
            };
            let entry = shared.log(&info, 200, fault_label, None);
            let stream = BodyStream::new(*export, &faults, config.chunk_size.max(1024), entry, shared.clone());
            let mut resp = Response::new(Body::from_stream(stream.into_stream()));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp
        }
    }
}

enum Outcome {
    Small(Small, Option<String>),
    Export(Box<ExportBody>, Vec<Fault>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    DataJson,
    DataCsv,
    UserEvents,
    Metrics,
}

fn route(app: &App, config: &MockConfig, req: &ReqInfo) -> Outcome {
    let shared = &app.shared;
    let (endpoint, path_const) = match req.path.as_str() {
        DATA_JSON => (Endpoint::DataJson, DATA_JSON),
        DATA_CSV => (Endpoint::DataCsv, DATA_CSV),
        USER_EVENTS => (Endpoint::UserEvents, USER_EVENTS),
        METRICS => (Endpoint::Metrics, METRICS),
        _ => {
            return Outcome::Small(Small::json(404, error_json("Route not found", "NotFound", "{}")), None);
        }
    };
    if req.method != Method::GET && req.method != Method::HEAD {
        let mut s = Small::json(405, error_json("Method not allowed", "BadParams", "{}"));
        s.headers.push((header::ALLOW, "GET".to_owned()));
        return Outcome::Small(s, None);
    }
    let is_export = matches!(endpoint, Endpoint::DataJson | Endpoint::DataCsv);
    if !app.redirect_target {
        if req.api_key.as_deref() != Some(config.api_key.as_str()) {
            let body = if config.unauthorized_body {
                Small::json(
                    401,
                    error_json(
                        "Invalid API key",
                        "BadApiKey",
                        &format!("{{\"endpoint\":{}}}", json_escape(path_const)),
                    ),
                )
            } else {
                Small {
                    status: 401,
                    content_type: "",
                    body: Vec::new(),
                    headers: Vec::new(),
                }
            };
            return Outcome::Small(body, None);
        }
        if is_export {
            if let Some(f) = shared.take_response_fault() {
                let label = Some(f.to_string());
                return Outcome::Small(
                    fault_response(&f, config, req, &shared.redirect_base, path_const),
                    label,
                );
            }
            if let Err(retry) = shared.rate_check(path_const, &config.rate_limit) {
                lock(&shared.counters).rate_limited += 1;
                let mut s = Small::json(
                    429,
                    error_json(
                        &format!(
                            "Exceeded rate limit for endpoint: {path_const}, project: {} ",
                            config.project_id
                        ),
                        "RateLimitExceeded",
                        "{}",
                    ),
                );
                if config.rate_limit.retry_after {
                    s.headers.push((header::RETRY_AFTER, retry.to_string()));
                }
                return Outcome::Small(s, None);
            }
        }
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes()).into_owned().collect();
    match endpoint {
        Endpoint::DataJson | Endpoint::DataCsv => {
            match export_request(config, &params, endpoint == Endpoint::DataCsv) {
                Ok(export) => {
                    let faults = if app.redirect_target {
                        Vec::new()
                    } else {
                        shared.take_body_faults()
                    };
                    Outcome::Export(Box::new(export), faults)
                }
                Err(msg) => Outcome::Small(Small::bad_params(&msg), None),
            }
        }
        Endpoint::UserEvents => Outcome::Small(user_events(config, &params), None),
        Endpoint::Metrics => Outcome::Small(metrics(config, &params), None),
    }
}

fn fault_response(f: &Fault, config: &MockConfig, req: &ReqInfo, redirect_base: &str, path: &str) -> Small {
    let html = |status: u16, title: &str| {
        Small {
        status,
        content_type: CT_HTML,
        body: format!(
            "<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n<center><h1>{status} {title}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes(),
        headers: Vec::new(),
    }
    };
    match f {
        Fault::Redirect { .. } => {
            let mut location = format!("{redirect_base}{path}");
            if !req.query.is_empty() {
                location.push('?');
                location.push_str(&req.query);
            }
            Small {
                status: 302,
                content_type: "",
                body: Vec::new(),
                headers: vec![(header::LOCATION, location)],
            }
        }
        Fault::Status { status, .. } => match status {
            500 => Small::json(
                500,
                error_json("Something went wrong. Please try again later.", "GenericError", "{}"),
            ),
            502 => html(502, "Bad Gateway"),
            503 => html(503, "Service Temporarily Unavailable"),
            504 => html(504, "Gateway Time-out"),
            429 => {
                let mut s = Small::json(
                    429,
                    error_json(
                        &format!(
                            "Exceeded rate limit for endpoint: {path}, project: {} ",
                            config.project_id
                        ),
                        "RateLimitExceeded",
                        "{}",
                    ),
                );
                if config.rate_limit.retry_after {
                    s.headers.push((header::RETRY_AFTER, "1".to_owned()));
                }
                s
            }
            other => {
                let code = match other {
                    400 => "BadParams",
                    401 => "BadApiKey",
                    403 => "Forbidden",
                    404 => "NotFound",
                    _ => "GenericError",
                };
                Small::json(*other, error_json("Injected error", code, "{}"))
            }
        },
        // body faults never reach here
        _ => Small::json(
            500,
            error_json("Something went wrong. Please try again later.", "GenericError", "{}"),
        ),
    }
}

fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut it = params.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(format!("Parameter {name} given more than once"));
    }
    Ok(first)
}

/// Validates the parameters of `data.json`/`data.csv` and prepares the body.
fn export_request(config: &MockConfig, params: &[(String, String)], csv: bool) -> Result<ExportBody, String> {
    let dt_name = single(params, "dataTypeName")?.ok_or("Missing required parameter: dataTypeName")?;
    let dt: DataType = dt_name
        .parse()
        .map_err(|_| format!("Invalid dataTypeName: {dt_name}"))?;
    let range = single(params, "range")?;
    let start = single(params, "startDateTime")?;
    let end = single(params, "endDateTime")?;
    let only = single(params, "onlyFields")?;
    let omit = single(params, "omitFields")?;
    let (start, end): (DateTime<Utc>, DateTime<Utc>) = match (range, start, end) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err("Send either range or startDateTime and endDateTime, not both".to_owned());
        }
        (Some(r), None, None) => {
            let r: ExportRange = r.parse().map_err(|_| format!("Invalid range: {r}"))?;
            config.range_window(r)
        }
        (None, Some(s), Some(e)) => {
            let s = parse_datetime(s).ok_or_else(|| format!("Invalid startDateTime: {s}"))?;
            let e = parse_datetime(e).ok_or_else(|| format!("Invalid endDateTime: {e}"))?;
            if s >= e {
                return Err("startDateTime must be before endDateTime".to_owned());
            }
            (s, e)
        }
        (None, Some(_), None) => return Err("endDateTime is required with startDateTime".to_owned()),
        (None, None, Some(_)) => return Err("startDateTime is required with endDateTime".to_owned()),
        (None, None, None) => config.range_window(ExportRange::Today),
    };
    let filter = match (only, omit) {
        (Some(_), Some(_)) => return Err("Send either onlyFields or omitFields, not both".to_owned()),
        (Some(o), None) => FieldFilter::Only(FieldFilter::parse_list(o)),
        (None, Some(o)) => FieldFilter::Omit(FieldFilter::parse_list(o)),
        (None, None) => FieldFilter::All,
    };
    let csv_columns = csv.then(|| dt.fields().into_iter().filter(|f| filter.keeps(f)).collect::<Vec<_>>());
    Ok(ExportBody {
        records: RecordStream::new(config.data_params(), dt, start, end),
        filter,
        csv_columns,
        header_done: false,
        emitted: 0,
        malformed_after: None,
        blank_every: None,
        no_final_newline: false,
        carry: false,
    })
}

/// Generates an export body chunk by chunk.
pub(crate) struct ExportBody {
    records: RecordStream,
    filter: FieldFilter,
    csv_columns: Option<Vec<&'static str>>,
    header_done: bool,
    emitted: u64,
    malformed_after: Option<u64>,
    blank_every: Option<u64>,
    no_final_newline: bool,
    carry: bool,
}

impl ExportBody {
    /// Appends to `out` until it holds at least `target` bytes; returns false when the body ended.
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> bool {
        if self.carry {
            out.push(b'\n');
            self.carry = false;
        }
        if !self.header_done {
            self.header_done = true;
            if let Some(cols) = &self.csv_columns {
                for (i, c) in cols.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_csv_cell(out, c.as_bytes());
                }
                out.push(b'\n');
            }
        }
        while out.len() < target {
            if self.malformed_after == Some(self.emitted) {
                self.write_malformed(out);
            }
            if !self.records.advance() {
                if self.malformed_after.is_some() {
                    self.write_malformed(out);
                }
                if self.no_final_newline && out.last() == Some(&b'\n') {
                    out.pop();
                }
                return false;
            }
            match &self.csv_columns {
                Some(cols) => self.records.rec.write_csv(out, cols),
                None => self.records.rec.write_ndjson(out, &self.filter, None),
            }
            self.emitted += 1;
            if let Some(e) = self.blank_every
                && self.emitted.is_multiple_of(e)
            {
                out.push(b'\n');
            }
        }
        if self.no_final_newline && out.last() == Some(&b'\n') {
            out.pop();
            self.carry = true;
        }
        true
    }

    fn write_malformed(&mut self, out: &mut Vec<u8>) {
        self.malformed_after = None;
        if self.csv_columns.is_some() {
            out.extend_from_slice(b"malformed row\n");
        } else {
            out.extend_from_slice(b"{\"createdAt\":\"2024-01-01 00:00:00 +00:00\",\"email\":\n");
        }
    }
}

/// The body of an export response, with the byte-level faults.
struct BodyStream {
    export: ExportBody,
    buf: Vec<u8>,
    chunk: usize,
    more: bool,
    pending: Option<Bytes>,
    sent: u64,
    truncate_at: Option<u64>,
    stall: Option<(u64, Duration)>,
    stall_next: Option<Duration>,
    error_next: bool,
    completed: bool,
    entry: Arc<LogEntry>,
    shared: Arc<Shared>,
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        self.entry.finish(self.completed);
    }
}

impl BodyStream {
    fn new(mut export: ExportBody, faults: &[Fault], chunk: usize, entry: Arc<LogEntry>, shared: Arc<Shared>) -> Self {
        let mut truncate_at = None;
        let mut stall = None;
        for f in faults {
            match f {
                Fault::Truncate { after_bytes, .. } => truncate_at = Some(*after_bytes),
                Fault::Stall {
                    after_bytes, duration, ..
                } => stall = Some((*after_bytes, *duration)),
                Fault::MalformedLine { after_records, .. } => export.malformed_after = Some(*after_records),
                Fault::BlankLines { every, .. } => export.blank_every = Some((*every).max(1)),
                Fault::NoFinalNewline { .. } => export.no_final_newline = true,
                Fault::Status { .. } | Fault::Redirect { .. } => {}
            }
        }
        BodyStream {
            export,
            buf: Vec::with_capacity(chunk + 4096),
            chunk,
            more: true,
            pending: None,
            sent: 0,
            truncate_at,
            stall,
            stall_next: None,
            error_next: false,
            completed: false,
            entry,
            shared,
        }
    }

    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures::stream::unfold(self, |mut st| async move {
            let item = st.next_item().await?;
            Some((item, st))
        })
    }

    fn generate(&mut self) -> Option<Bytes> {
        if !self.more {
            return None;
        }
        self.buf.clear();
        self.more = self.export.fill(&mut self.buf, self.chunk);
        if self.buf.is_empty() {
            return if self.more { Some(Bytes::new()) } else { None };
        }
        Some(Bytes::copy_from_slice(&self.buf))
    }

    async fn next_item(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if self.error_next {
                // let the bytes already sent reach the socket, then abort the body
                tokio::time::sleep(Duration::from_millis(50)).await;
                self.error_next = false;
                self.more = false;
                self.pending = None;
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "injected fault: body cut",
                )));
            }
            if let Some(d) = self.stall_next.take() {
                tokio::time::sleep(d).await;
            }
            let mut chunk = match self.pending.take() {
                Some(c) => c,
                None => match self.generate() {
                    Some(c) => c,
                    None => {
                        if self.truncate_at.is_some_and(|t| t <= self.sent) {
                            self.error_next = true;
                            self.truncate_at = None;
                            continue;
                        }
                        self.completed = true;
                        return None;
                    }
                },
            };
            if let Some((at, d)) = self.stall
                && at < self.sent + chunk.len() as u64
            {
                self.stall = None;
                let split = at.saturating_sub(self.sent) as usize;
                if split == 0 {
                    self.pending = Some(chunk);
                    self.stall_next = Some(d);
                    continue;
                }
                self.pending = Some(chunk.split_off(split));
                self.stall_next = Some(d);
            }
            if let Some(t) = self.truncate_at
                && t <= self.sent + chunk.len() as u64
            {
                self.truncate_at = None;
                chunk.truncate((t - self.sent) as usize);
                self.pending = None;
                self.stall_next = None;
                self.error_next = true;
            }
            if chunk.is_empty() {
                continue;
            }
            let n = chunk.len() as u64;
            self.sent += n;
            self.entry.bytes.fetch_add(n, Ordering::AcqRel);
            self.shared.bytes.fetch_add(n, Ordering::AcqRel);
            return Some(Ok(chunk));
        }
    }
}

fn user_events(config: &MockConfig, params: &[(String, String)]) -> Small {
    let email = match single(params, "email") {
        Ok(Some(e)) if e.contains('@') => e.to_owned(),
        Ok(Some(e)) => return Small::bad_params(&format!("Invalid email: {e}")),
        Ok(None) => return Small::bad_params("Missing required parameter: email"),
        Err(m) => return Small::bad_params(&m),
    };
    let include_custom = match single(params, "includeCustomEvents") {
        Ok(None) => true,
        Ok(Some("true")) => true,
        Ok(Some("false")) => false,
        Ok(Some(v)) => return Small::bad_params(&format!("Invalid includeCustomEvents: {v}")),
        Err(m) => return Small::bad_params(&m),
    };
    let mut body = Vec::new();
    let wrapped = config.user_events_wrapped;
    if wrapped {
        body.extend_from_slice(b"{\"events\":[");
    }
    let mut first = true;
    data::user_events(&config.data_params(), &email, include_custom, |dt, rec| {
        if wrapped && !first {
            body.push(b',');
        }
        first = false;
        rec.write_ndjson(&mut body, &FieldFilter::All, Some(dt.as_str()));
        if wrapped {
            body.pop();
        }
    });
    if wrapped {
        body.extend_from_slice(b"]}");
    }
    Small {
        status: 200,
        content_type: CT_JSON,
        body,
        headers: Vec::new(),
    }
}

/// The columns of `/experiments/metrics`.
pub(crate) const METRICS_COLUMNS: &[&str] = &[
    "experimentId",
    "campaignId",
    "templateId",
    "variantName",
    "isControl",
    "totalSends",
    "uniqueOpens",
    "uniqueClicks",
    "purchases",
    "revenue",
    "unsubscribes",
    "openRate",
];

const VARIANT_NAMES: &[&str] = &[
    "Subject: \"Hola, amigo\" 🎉",
    "Variant B\n(short copy)",
    "Émoji test ✨",
    "Plain",
];

fn metrics(config: &MockConfig, params: &[(String, String)]) -> Small {
    let mut experiments = Vec::new();
    let mut campaigns = Vec::new();
    for (k, v) in params {
        let target = match k.as_str() {
            "experimentId" => &mut experiments,
            "campaignId" => &mut campaigns,
            _ => continue,
        };
        match v.trim().parse::<i64>() {
            Ok(id) => target.push(id),
            Err(_) => return Small::bad_params(&format!("Invalid {k}: {v}")),
        }
    }
    let total = experiments.len() + campaigns.len();
    if total > 200 {
        return Small::bad_params(&format!(
            "Too many ids: {total} (at most 200 experimentId and campaignId values per request)"
        ));
    }
    let mut out = Vec::new();
    for (i, c) in METRICS_COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(c.as_bytes());
    }
    out.push(b'\n');
    let rows = experiments
        .iter()
        .map(|&e| (e, 100_000 + e.rem_euclid(500)))
        .chain(campaigns.iter().map(|&c| (c.saturating_mul(10).saturating_add(1), c)));
    for (exp, campaign) in rows {
        let h = data::mix(config.seed ^ data::mix(exp as u64));
        let variants = 2 + h % 3;
        for v in 0..variants {
            let mut rng = data::Rng::new(h ^ v);
            let sends = 1000 + rng.below(100_000);
            let opens = rng.below(sends / 2 + 1);
            let clicks = rng.below(opens / 3 + 1);
            let purchases = rng.below(clicks / 2 + 1);
            let revenue = purchases * (1000 + rng.below(9000));
            let unsubs = rng.below(sends / 100 + 1);
            push_i64(&mut out, exp);
            out.push(b',');
            push_i64(&mut out, campaign);
            out.push(b',');
            push_i64(&mut out, campaign.saturating_mul(3).saturating_add(7));
            out.push(b',');
            let name = if v == 0 { "Control" } else { rng.pick(VARIANT_NAMES) };
            push_csv_cell(&mut out, name.as_bytes());
            out.push(b',');
            out.extend_from_slice(if v == 0 { b"true" } else { b"false" });
            for n in [sends, opens, clicks, purchases] {
                out.push(b',');
                push_u64(&mut out, n);
            }
            out.push(b',');
            push_u64(&mut out, revenue / 100);
            out.push(b'.');
            push_u64(&mut out, revenue % 100 / 10);
            push_u64(&mut out, revenue % 10);
            out.push(b',');
            push_u64(&mut out, unsubs);
            out.push(b',');
            let rate = opens * 10_000 / sends;
            push_u64(&mut out, rate / 10_000);
            out.push(b'.');
            let frac = rate % 10_000 + 10_000;
            let s = out.len();
            push_u64(&mut out, frac);
            out.remove(s);
            out.push(b'\n');
        }
    }
    Small {
        status: 200,
        content_type: CT_CSV,
        body: out,
        headers: Vec::new(),
    }
}
