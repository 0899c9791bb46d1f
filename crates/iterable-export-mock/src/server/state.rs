//! The state the handlers share with the [`MockServer`](crate::MockServer) handle: configuration,
//! the fault queue, the rate limiter's windows, the request log and the counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::ReqInfo;
use super::jobs::Jobs;
use crate::observe::{LogEntry, RedirectHit, RequestRecord, redact_query};
use crate::{Counters, Fault, MockConfig, RateLimit};

/// Locks `m`, also after a panic elsewhere (the state stays usable for the other requests).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct CounterState {
    requests: u64,
    by_endpoint: BTreeMap<String, u64>,
    by_status: BTreeMap<u16, u64>,
    rate_limited: u64,
    faults_applied: u64,
}

/// State shared by the handlers and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    config: RwLock<MockConfig>,
    /// Queued faults, taken by [`Shared::take_response_fault`] and [`Shared::take_body_faults`].
    pub(super) faults: Mutex<Vec<Fault>>,
    /// Arrival times per limited endpoint, on tokio's clock: the real clock, except in tests that
    /// pause tokio's time (then the rolling window follows the paused clock).
    rate: Mutex<HashMap<&'static str, VecDeque<tokio::time::Instant>>>,
    log: Mutex<VecDeque<Arc<LogEntry>>>,
    counters: Mutex<CounterState>,
    /// Body bytes sent, all responses together.
    pub(super) bytes: AtomicU64,
    redirect_hits: Mutex<Vec<RedirectHit>>,
    /// The base URL of the redirect target, e.g. `http://127.0.0.1:41235`.
    pub(super) redirect_base: String,
    /// The base URL of the file host (pre-signed URLs of job files), e.g. `http://127.0.0.1:41236`.
    pub(crate) file_host_base: String,
    /// The export jobs.
    pub(crate) jobs: Jobs,
}

impl Shared {
    pub(crate) fn new(config: MockConfig, redirect_base: String, file_host_base: String) -> Self {
        Shared {
            jobs: Jobs::new(&config),
            file_host_base,
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

    /// Records a request that reached the redirect target (keeping at most `capacity` hits).
    pub(super) fn record_redirect_hit(&self, req: &ReqInfo, capacity: usize) {
        let mut hits = lock(&self.redirect_hits);
        if hits.len() >= capacity.max(1) {
            hits.remove(0);
        }
        hits.push(RedirectHit {
            path: req.path.clone(),
            query: redact_query(&req.query),
            api_key_present: req.api_key.is_some(),
        });
    }

    /// Checks and records a request against the rate limit; `Err(retry_after_secs)` when limited
    /// (and counted).
    pub(super) fn rate_check(&self, endpoint: &'static str, limit: &RateLimit) -> Result<(), u64> {
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
        drop(rate);
        lock(&self.counters).rate_limited += 1;
        Err(secs.max(1))
    }

    /// Logs and counts a response. `body_len`: the length of a complete body; `None` for a body
    /// still to stream (its entry counts the bytes as they go).
    pub(super) fn log(
        &self,
        req: &ReqInfo,
        status: u16,
        fault: Option<String>,
        body_len: Option<u64>,
    ) -> Arc<LogEntry> {
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
