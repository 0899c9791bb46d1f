//! HTTP handling: every request goes through one pipeline (route, method, key, response faults,
//! rate limit), then to its endpoint's handler.
//!
//! | module | holds |
//! | --- | --- |
//! | `routes` | the endpoints and their handlers, one module each |
//! | `faults` | taking queued faults; the responses that replace an export |
//! | `jobs` | the export jobs: registry, states, the task that drives each job |
//! | `file_host` | the third listener: the pre-signed URLs of job files |
//! | `body` | streaming an export body chunk by chunk, with the body faults |
//! | `response` | small complete responses: Iterable's JSON errors, proxy pages |
//! | `state` | what the handlers share with the handle: config, queue, limiter, log, counters |

mod body;
mod faults;
pub(crate) mod file_host;
mod jobs;
mod response;
mod routes;
mod state;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, header};

pub(crate) use state::{Shared, lock};

use self::body::{BodyStream, ExportBody};
use self::faults::fault_response;
use self::response::{Small, json_escape};
use self::routes::Endpoint;
use self::routes::jobs::JobRoute;
use crate::{Fault, MockConfig};

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    /// The second listener, which [`Fault::Redirect`] sends clients to: no key check, no faults,
    /// no rate limit, every request recorded.
    redirect_target: bool,
}

/// The app of one listener.
pub(crate) fn router(shared: Arc<Shared>, redirect_target: bool) -> Router {
    Router::new().fallback(handle).with_state(App {
        shared,
        redirect_target,
    })
}

/// What the handlers need of a request.
struct ReqInfo {
    method: Method,
    path: String,
    query: String,
    api_key: Option<String>,
    started: Instant,
}

impl ReqInfo {
    fn of(req: &Request) -> Self {
        ReqInfo {
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            api_key: req
                .headers()
                .get("Api-Key")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            started: Instant::now(),
        }
    }
}

async fn handle(State(app): State<App>, req: Request) -> Response {
    if !app.redirect_target
        && let Some(route) = JobRoute::from_path(req.uri().path())
    {
        return handle_job_route(&app.shared, route, req).await;
    }
    let info = ReqInfo::of(&req);
    let shared = &app.shared;
    let config = shared.config();
    if app.redirect_target {
        shared.record_redirect_hit(&info, config.request_log_capacity);
    }
    match route(&app, &config, &info) {
        Outcome::Small(s, fault) => {
            shared.log(&info, s.status, fault, Some(s.body.len() as u64));
            s.into_response()
        }
        Outcome::Export(export, faults) => {
            let fault_label = if faults.is_empty() {
                None
            } else {
                Some(faults.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(","))
            };
            let content_type = export.content_type();
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
    /// A complete response, with the fault it applied (text form).
    Small(Small, Option<String>),
    /// An export to stream, with the body faults that apply to it.
    Export(Box<ExportBody>, Vec<Fault>),
}

/// The pipeline: route, method, key, response faults, rate limit, then the endpoint's handler.
fn route(app: &App, config: &MockConfig, req: &ReqInfo) -> Outcome {
    let shared = &app.shared;
    let Some(endpoint) = Endpoint::from_path(&req.path) else {
        return Outcome::Small(Small::error(404, "Route not found", "NotFound"), None);
    };
    if req.method != Method::GET && req.method != Method::HEAD {
        let s = Small::error(405, "Method not allowed", "BadParams").with_header(header::ALLOW, "GET".to_owned());
        return Outcome::Small(s, None);
    }
    let path = endpoint.path();
    if !app.redirect_target {
        if req.api_key.as_deref() != Some(config.api_key.as_str()) {
            return Outcome::Small(unauthorized(config, path), None);
        }
        if endpoint.is_export() {
            if let Some(f) = shared.take_response_fault() {
                let label = Some(f.to_string());
                return Outcome::Small(fault_response(&f, config, req, &shared.redirect_base, path), label);
            }
            if let Err(retry) = shared.rate_check(path, &config.rate_limit) {
                return Outcome::Small(Small::rate_limited(config, path, retry), None);
            }
        }
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes()).into_owned().collect();
    match endpoint {
        Endpoint::DataJson | Endpoint::DataCsv => {
            match routes::export_request(config, &params, endpoint == Endpoint::DataCsv) {
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
        Endpoint::UserEvents => Outcome::Small(routes::user_events(config, &params), None),
        Endpoint::Metrics => Outcome::Small(routes::metrics(config, &params), None),
    }
}

/// 401 for a missing or wrong key: Iterable's body, or none (`MockConfig::unauthorized_body`).
fn unauthorized(config: &MockConfig, path: &str) -> Small {
    if config.unauthorized_body {
        let params = format!("{{\"endpoint\":{}}}", json_escape(path));
        Small::error_with_params(401, "Invalid API key", "BadApiKey", &params)
    } else {
        Small::empty(401)
    }
}

/// The pipeline of the jobs API: method, key, limit, then the handler (which reads the body of
/// `POST /export/start`).
async fn handle_job_route(shared: &Arc<Shared>, route: JobRoute, req: Request) -> Response {
    let config = shared.config();
    let info = ReqInfo::of(&req);
    if info.method == Method::DELETE {
        shared.jobs.count(|c| c.delete_requests += 1);
    }
    let small = if info.method != route.method() {
        routes::jobs::method_not_allowed(route)
    } else if info.api_key.as_deref() != Some(config.api_key.as_str()) {
        unauthorized(&config, &info.path)
    } else {
        match route
            .limit(&config)
            .map(|(window, limit)| (shared.rate_check(window, &limit), limit))
        {
            Some((Err(retry), limit)) => {
                shared.jobs.count(|c| c.rate_limited += 1);
                Small::rate_limited_by(&config, &info.path, retry, limit.retry_after)
            }
            _ => match axum::body::to_bytes(req.into_body(), 1 << 20).await {
                Ok(body) => routes::jobs::handle(shared, &config, route, &info.query, &body, &shared.file_host_base),
                Err(e) => Small::bad_params(&format!("Cannot read the request body: {e}")),
            },
        }
    };
    shared.log(&info, small.status, None, Some(small.body.len() as u64));
    small.into_response()
}
