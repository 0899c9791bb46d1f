//! A small fake of Iterable's asynchronous export API for the faults the mock cannot produce on
//! demand, scripted per test: an API listener (start, files, cancel) and a second listener that
//! stands for the file host (pre-signed URLs), which records every `Api-Key` that reaches it.
//!
//! Each job's records are `{"id":N,"window":"<start>"}` lines, `per_window` of them, split into
//! files of `per_file` lines and listed `page_size` per page. Plain HTTP/1.1, one request per
//! connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

#[path = "jobs_server_http.rs"]
mod http;

use self::http::{Request, query_param, read_request, respond, serve_file};

/// What a test scripts.
#[derive(Debug, Clone)]
pub struct Script {
    /// Records per job.
    pub per_window: usize,
    pub per_file: usize,
    pub page_size: usize,
    /// States a job reports on its first listings, before `completed` (e.g. running, enqueued).
    pub states_before_done: Vec<&'static str>,
    /// How the final state is spelled.
    pub completed: &'static str,
    /// The first this many jobs end `failed` instead.
    pub fail_first_jobs: usize,
    /// Jobs whose window is longer than this many seconds report `exportTruncated`.
    pub truncate_longer_than: Option<i64>,
    /// The first download of each of these files answers 403 "Request has expired".
    pub expire_files: Vec<usize>,
    /// The first download of each of these files stops mid-record (connection closed).
    pub cut_files: Vec<usize>,
    /// The first this many files listings answer 500.
    pub files_500_first: usize,
    /// Files are listed from this listing of a job on (1-based; 0 or 1: from the first).
    pub files_from_listing: usize,
    /// After `states_before_done`, a job reports `running` until the file host saw this many
    /// downloads of its files (at most its file count), then its final state: a client that
    /// downloads only once a job completed never sees it complete.
    pub running_until_downloads: Option<usize>,
    /// The first `.1` downloads of file `.0` (of every job) answer 500.
    pub broken_file: Option<(usize, usize)>,
    /// A state the job reports instead of `completed`.
    pub final_state_override: Option<&'static str>,
    /// Each page lists its files in reverse name order.
    pub reverse_pages: bool,
    /// A page starts with the file named by `startAfter` itself.
    pub inclusive_start_after: bool,
    /// Every listing answers the first page, whatever its `startAfter`.
    pub ignore_start_after: bool,
    /// A completed job reports `exportTruncated` from this listing of it on (1-based).
    pub truncated_from_listing: Option<usize>,
    /// The first this many start requests answer 429.
    pub start_429_first: usize,
    /// Every start request answers this status line and JSON body.
    pub start_refused: Option<(&'static str, &'static str)>,
    /// The first this many starts create their job, then answer 500.
    pub start_500_after_create: usize,
    /// The first this many starts create their job, then close the connection unanswered.
    pub start_dropped_after_create: usize,
    /// The first this many starts create their job, then answer only once the test calls
    /// [`Fake::release_starts`].
    pub start_held: usize,
    /// A start that fails after creating its job also creates a job of another program (same
    /// data type, another window).
    pub foreign_job_on_failed_start: bool,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            per_window: 25,
            per_file: 4,
            page_size: 3,
            states_before_done: vec!["enqueued", "running"],
            completed: "completed",
            fail_first_jobs: 0,
            truncate_longer_than: None,
            expire_files: Vec::new(),
            cut_files: Vec::new(),
            files_500_first: 0,
            files_from_listing: 2,
            running_until_downloads: None,
            broken_file: None,
            final_state_override: None,
            reverse_pages: false,
            inclusive_start_after: false,
            ignore_start_after: false,
            truncated_from_listing: None,
            start_429_first: 0,
            start_refused: None,
            start_500_after_create: 0,
            start_dropped_after_create: 0,
            start_held: 0,
            foreign_job_on_failed_start: false,
        }
    }
}

/// What the fake saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// `(start, end)` of every started job, in order.
    pub starts: Vec<(String, String)>,
    pub start_bodies: Vec<serde_json::Value>,
    /// Start requests, answered or refused.
    pub start_requests: usize,
    pub listings: usize,
    /// When each listing arrived, on tokio's clock (paused in some tests).
    pub listed_at: Vec<tokio::time::Instant>,
    pub deletes: Vec<i64>,
    /// `(job, file index)` of every download attempt.
    pub downloads: Vec<(i64, usize)>,
    /// Download attempts of a job that no listing had yet reported completed or failed.
    pub downloads_while_running: usize,
    /// `Api-Key` headers that reached the file host.
    pub keys_at_file_host: usize,
    /// `Api-Key` headers missing at the API host.
    pub api_requests_without_key: usize,
    /// The most jobs started and not yet seen completed (or failed) at once.
    pub max_active: usize,
    /// Requests to `GET /export/jobs`.
    pub job_lists: usize,
}

struct Job {
    window_start: String,
    data_type: String,
    /// A DELETE arrived.
    cancelled: bool,
    /// A listing reported a final state.
    ended: bool,
    listings: usize,
    failed: bool,
    truncated: bool,
}

#[derive(Default)]
struct State {
    jobs: HashMap<i64, Job>,
    next_id: i64,
    seen: Seen,
    files_500_left: usize,
    expired_once: Vec<(i64, usize)>,
    broken_served: usize,
    cut_once: Vec<(i64, usize)>,
    /// How many downloads the file host saw, for tests that wait for them.
    downloads_seen: tokio::sync::watch::Sender<usize>,
}

/// The running fake.
pub struct Fake {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    /// Permits for held starts to answer.
    release: Arc<tokio::sync::Semaphore>,
}

impl Fake {
    pub fn seen(&self) -> Seen {
        self.state.lock().expect("fake state").seen.clone()
    }

    /// Waits until the file host saw at least `n` downloads (no clock: a test that would wait
    /// for ever is stopped by its hang guard).
    pub async fn downloads_reached(&self, n: usize) {
        let mut seen = self.state.lock().expect("fake state").downloads_seen.subscribe();
        let _ = seen.wait_for(|d| *d >= n).await;
    }

    /// Lets the held starts ([`Script::start_held`]) answer.
    pub fn release_starts(&self) {
        self.release.add_permits(1_000);
    }
}

/// The body of one job: `per_window` lines naming the window's start.
pub fn job_lines(script: &Script, window_start: &str) -> Vec<String> {
    (0..script.per_window)
        .map(|i| format!("{{\"id\":{i},\"window\":\"{window_start}\"}}"))
        .collect()
}

fn file_body(script: &Script, window_start: &str, index: usize) -> Vec<u8> {
    let lines = job_lines(script, window_start);
    let mut body = Vec::new();
    for line in lines.iter().skip(index * script.per_file).take(script.per_file) {
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
    }
    body
}

fn file_count(script: &Script) -> usize {
    script.per_window.div_ceil(script.per_file)
}

pub async fn start(script: Script) -> std::io::Result<Fake> {
    let api = TcpListener::bind("127.0.0.1:0").await?;
    let files = TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api.local_addr()?;
    let files_url = format!("http://{}", files.local_addr()?);
    let state = Arc::new(Mutex::new(State {
        next_id: 100,
        files_500_left: script.files_500_first,
        ..State::default()
    }));
    let script = Arc::new(script);
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    {
        let (state, script, release) = (state.clone(), script.clone(), release.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = api.accept().await {
                let (state, script, files_url) = (state.clone(), script.clone(), files_url.clone());
                let release = release.clone();
                tokio::spawn(async move {
                    let _ = serve_api(socket, &state, &script, &files_url, &release).await;
                });
            }
        });
    }
    {
        let (state, script) = (state.clone(), script.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = files.accept().await {
                let (state, script) = (state.clone(), script.clone());
                tokio::spawn(async move {
                    let _ = serve_file(socket, &state, &script).await;
                });
            }
        });
    }
    Ok(Fake {
        base_url: format!("http://{api_addr}/api"),
        state,
        release,
    })
}
async fn serve_api(
    mut socket: TcpStream,
    state: &Mutex<State>,
    script: &Script,
    files_url: &str,
    release: &tokio::sync::Semaphore,
) -> std::io::Result<()> {
    let request = read_request(&mut socket).await?;
    let path = request.target.split('?').next().unwrap_or_default().to_owned();
    let reply = {
        let mut s = state.lock().expect("fake state");
        if request.header("Api-Key").is_none() {
            s.seen.api_requests_without_key += 1;
        }
        route(&mut s, script, &request, &path, files_url)
    };
    let (status, body) = match reply {
        // The job exists; the answer never comes.
        (DROP, _) => return Ok(()),
        (HOLD, body) => {
            if let Ok(permit) = release.acquire().await {
                permit.forget();
            }
            ("200 OK", body)
        }
        reply => reply,
    };
    respond(&mut socket, status, "application/json", body.as_bytes()).await
}

fn route(s: &mut State, script: &Script, request: &Request, path: &str, files_url: &str) -> (&'static str, String) {
    if request.method == "POST" && path == "/api/export/start" {
        s.seen.start_requests += 1;
        if s.seen.start_requests <= script.start_429_first {
            return (
                "429 Too Many Requests",
                "{\"code\":\"RateLimitExceeded\",\"msg\":\"slow down\"}".into(),
            );
        }
        if let Some((status, body)) = script.start_refused {
            return (status, body.into());
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let text = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let (start, end) = (text("startDateTime"), text("endDateTime"));
        let id = s.next_id;
        s.next_id += 1;
        let n = s.seen.starts.len();
        let failed = n < script.fail_first_jobs;
        let seconds = |t: &str| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                .map(|t| t.and_utc().timestamp())
                .unwrap_or_default()
        };
        let truncated = script
            .truncate_longer_than
            .is_some_and(|limit| seconds(&end) - seconds(&start) > limit);
        s.seen.starts.push((start.clone(), end));
        let active = s.jobs.values().filter(|j| !j.ended).count() + 1;
        s.seen.max_active = s.seen.max_active.max(active);
        let data_type = text("dataTypeName");
        s.seen.start_bodies.push(body);
        s.jobs.insert(
            id,
            Job {
                window_start: start,
                data_type: data_type.clone(),
                cancelled: false,
                ended: false,
                listings: 0,
                failed,
                truncated,
            },
        );
        let fails = n < script.start_500_after_create + script.start_dropped_after_create;
        if fails && script.foreign_job_on_failed_start {
            let foreign = s.next_id;
            s.next_id += 1;
            let job = Job {
                window_start: "2020-01-01 00:00:00".into(),
                data_type,
                cancelled: false,
                ended: false,
                listings: 0,
                failed: false,
                truncated: false,
            };
            s.jobs.insert(foreign, job);
        }
        if n < script.start_500_after_create {
            return (
                "500 Internal Server Error",
                "{\"code\":\"GenericError\",\"msg\":\"Please try again later\"}".into(),
            );
        }
        if n < script.start_500_after_create + script.start_dropped_after_create {
            return (DROP, String::new());
        }
        if n < script.start_held {
            return (HOLD, format!("{{\"jobId\":{id}}}"));
        }
        return ("200 OK", format!("{{\"jobId\":{id}}}"));
    }
    if request.method == "GET" && path == "/api/export/jobs" {
        s.seen.job_lists += 1;
        let mut ids: Vec<&i64> = s.jobs.keys().collect();
        ids.sort_unstable();
        let jobs: Vec<String> = ids
            .into_iter()
            .map(|id| {
                let job = &s.jobs[id];
                let state = match (job.cancelled, job.ended) {
                    (true, _) => "cancelled",
                    (false, true) => "completed",
                    (false, false) => "running",
                };
                format!(
                    "{{\"id\":{id},\"dataTypeName\":\"{}\",\"jobState\":\"{state}\"}}",
                    job.data_type
                )
            })
            .collect();
        return ("200 OK", format!("{{\"jobs\":[{}]}}", jobs.join(",")));
    }
    let mut parts = path.trim_start_matches("/api/export/").split('/');
    let id: i64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
    let rest = parts.next();
    if request.method == "DELETE" && rest.is_none() {
        s.seen.deletes.push(id);
        if let Some(job) = s.jobs.get_mut(&id) {
            job.ended = true;
            job.cancelled = true;
        }
        return ("200 OK", "{\"msg\":\"\",\"code\":\"Success\"}".into());
    }
    if request.method == "GET" && rest == Some("files") {
        s.seen.listings += 1;
        s.seen.listed_at.push(tokio::time::Instant::now());
        if s.files_500_left > 0 {
            s.files_500_left -= 1;
            return (
                "500 Internal Server Error",
                "{\"code\":\"GenericError\",\"msg\":\"boom\"}".into(),
            );
        }
        let downloads_of_job = s.seen.downloads.iter().filter(|(job, _)| *job == id).count();
        let Some(job) = s.jobs.get_mut(&id) else {
            return (
                "404 Not Found",
                "{\"code\":\"NotFound\",\"msg\":\"no such job\"}".into(),
            );
        };
        job.listings += 1;
        let state = if job.listings <= script.states_before_done.len() {
            script.states_before_done[job.listings - 1]
        } else if script
            .running_until_downloads
            .is_some_and(|n| downloads_of_job < n.min(file_count(script)))
        {
            "running"
        } else if job.failed {
            "failed"
        } else {
            script.final_state_override.unwrap_or(script.completed)
        };
        // Files appear once the job runs: all of them from `files_from_listing` on.
        let visible = if job.listings >= script.files_from_listing || script.states_before_done.is_empty() {
            file_count(script)
        } else {
            0
        };
        let after = query_param(&request.target, "startAfter").filter(|_| !script.ignore_start_after);
        let mut names: Vec<usize> = (0..visible)
            .filter(|i| {
                after.as_deref().is_none_or(|a| {
                    let name = file_name(*i);
                    name.as_str() > a || (script.inclusive_start_after && name.as_str() == a)
                })
            })
            .take(script.page_size)
            .collect();
        if script.reverse_pages {
            names.reverse();
        }
        let files: Vec<String> = names
            .iter()
            .map(|i| {
                format!(
                    "{{\"file\":\"{}\",\"url\":\"{files_url}/bucket/{id}/{i}?X-Amz-Signature=secret{}\"}}",
                    file_name(*i),
                    job.listings
                )
            })
            .collect();
        if ["completed", "failed", "paused"]
            .iter()
            .any(|f| state.eq_ignore_ascii_case(f))
        {
            job.ended = true;
        }
        let truncated = (job.truncated || script.truncated_from_listing.is_some_and(|n| job.listings >= n))
            && state.eq_ignore_ascii_case("completed");
        return (
            "200 OK",
            format!(
                "{{\"exportTruncated\":{truncated},\"files\":[{}],\"jobId\":{id},\"jobState\":\"{state}\"}}",
                files.join(",")
            ),
        );
    }
    ("404 Not Found", "{}".into())
}

/// The status of a start that closes its connection unanswered.
const DROP: &str = "drop";
/// The status of a start that answers once released.
const HOLD: &str = "hold";

/// File names sort in file order.
pub fn file_name(index: usize) -> String {
    format!("file-{index:04}.json")
}
