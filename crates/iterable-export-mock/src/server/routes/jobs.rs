//! The asynchronous export endpoints: `POST /export/start`, `GET /export/{jobId}/files`,
//! `GET /export/jobs` and `DELETE /export/{jobId}`.

use chrono::{DateTime, NaiveTime, Utc};
use http::{Method, header};
use serde_json::{Map, Value, json};

use crate::server::file_host::presigned_url;
use crate::server::jobs::{Job, Jobs};
use crate::server::response::{CT_JSON, Small};
use crate::server::state::{Shared, lock};
use crate::{JobFormat, JobSpec, JobState, MockConfig, RateLimit, parse_datetime};

/// A path of the jobs API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum JobRoute {
    /// `/api/export/start`
    Start,
    /// `/api/export/jobs`
    List,
    /// `/api/export/{jobId}/files`
    Files(i64),
    /// `/api/export/{jobId}`
    Job(i64),
}

impl JobRoute {
    /// The route of `path`, if it is one of the jobs API.
    pub(in crate::server) fn from_path(path: &str) -> Option<JobRoute> {
        let rest = path.strip_prefix("/api/export/")?;
        let id = |s: &str| -> Option<i64> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        match rest {
            "start" => Some(JobRoute::Start),
            "jobs" => Some(JobRoute::List),
            _ => match rest.split_once('/') {
                Some((j, "files")) => id(j).map(JobRoute::Files),
                None => id(rest).map(JobRoute::Job),
                Some(_) => None,
            },
        }
    }

    /// The method the route answers.
    pub(in crate::server) fn method(self) -> Method {
        match self {
            JobRoute::Start => Method::POST,
            JobRoute::List | JobRoute::Files(_) => Method::GET,
            JobRoute::Job(_) => Method::DELETE,
        }
    }

    /// The limit the route is under, with the name of its window: start and files share one.
    pub(in crate::server) fn limit(self, config: &MockConfig) -> Option<(&'static str, RateLimit)> {
        match self {
            JobRoute::Start | JobRoute::Files(_) => Some(("export-jobs", config.jobs.rate_limit)),
            JobRoute::Job(_) => Some(("export-cancel", config.jobs.cancel_rate_limit)),
            JobRoute::List => None,
        }
    }
}

fn json_response(value: &Value) -> Small {
    Small::new(200, CT_JSON, serde_json::to_vec(value).unwrap_or_default())
}

fn not_found(id: i64) -> Small {
    Small::error(404, &format!("Export job {id} not found"), "NotFound")
}

/// Handles a request to `route` that passed the key check and the limit.
pub(in crate::server) fn handle(
    shared: &Shared,
    config: &MockConfig,
    route: JobRoute,
    query: &str,
    body: &[u8],
    file_host: &str,
) -> Small {
    let jobs = &shared.jobs;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    match route {
        JobRoute::Start => match start_spec(config, body) {
            Ok(spec) => {
                let job = jobs.create(spec, config);
                if job.start_fails() {
                    jobs.count(|c| c.start_errors += 1);
                    return Small::generic_error();
                }
                jobs.count(|c| c.starts += 1);
                json_response(&json!({ "jobId": job.id }))
            }
            Err(msg) => Small::bad_params(&msg),
        },
        JobRoute::Files(id) => match jobs.get(id) {
            None => not_found(id),
            Some(job) => files(jobs, config, &job, &params, file_host),
        },
        JobRoute::List => list(jobs, &params),
        JobRoute::Job(id) => match jobs.get(id) {
            None => not_found(id),
            Some(job) => match job.request_cancel() {
                Ok(()) => {
                    jobs.count(|c| c.cancels += 1);
                    json_response(
                        &json!({"msg": format!("Cancelling export job {id}"), "code": "Success", "params": {}}),
                    )
                }
                Err(state) => Small::bad_params(&format!("Export job {id} cannot be cancelled: it is {state}")),
            },
        },
    }
}

/// Parses the body of `POST /export/start`.
fn start_spec(config: &MockConfig, body: &[u8]) -> Result<JobSpec, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("Request body is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("Request body must be a JSON object".to_owned());
    };
    const KNOWN: [&str; 8] = [
        "dataTypeName",
        "outputFormat",
        "startDateTime",
        "endDateTime",
        "onlyFields",
        "omitFields",
        "delimiter",
        "campaignId",
    ];
    if let Some(unknown) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("Unknown field: {unknown}"));
    }
    let text = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("{name} must be a string, not {other}")),
        }
    };
    let dt_name = text("dataTypeName")?.ok_or("Missing required field: dataTypeName")?;
    let format: JobFormat = text("outputFormat")?
        .ok_or("Missing required field: outputFormat")?
        .parse()
        .map_err(|e: crate::MockError| e.to_string())?;
    let date = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        text(name)?
            .map(|s| parse_datetime(s).ok_or_else(|| format!("Invalid {name}: {s}")))
            .transpose()
    };
    let start = date("startDateTime")?.unwrap_or_else(|| config.data_start.and_time(NaiveTime::MIN).and_utc());
    let end = date("endDateTime")?.unwrap_or_else(|| config.now());
    if start >= end {
        return Err("startDateTime must be before endDateTime".to_owned());
    }
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let only = text("onlyFields")?.map(list);
    let omit = text("omitFields")?.map(list);
    if only.is_some() && omit.is_some() {
        return Err("Send either onlyFields or omitFields, not both".to_owned());
    }
    if let Some(d) = text("delimiter")?
        && d != ","
    {
        return Err(format!(
            "Unsupported delimiter: {d:?} (this mock writes comma-separated files only)"
        ));
    }
    match obj.get("campaignId") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_i64() => {
            return Err("campaignId is not supported by this mock".to_owned());
        }
        Some(other) => return Err(format!("campaignId must be an integer, not {other}")),
    }
    let mut spec = JobSpec::new(dt_name, format, start, end).map_err(|_| format!("Invalid dataTypeName: {dt_name}"))?;
    spec.only_fields = only;
    spec.omit_fields = omit;
    Ok(spec)
}

/// `GET /export/{jobId}/files?startAfter=`.
fn files(jobs: &Jobs, config: &MockConfig, job: &Job, params: &[(String, String)], file_host: &str) -> Small {
    let start_after = params.iter().find(|(k, _)| k == "startAfter").map(|(_, v)| v.as_str());
    let mut d = lock(&job.data);
    d.file_listings += 1;
    let call = d.file_listings;
    if d.failing_calls.iter().any(|c| u64::from(*c) == call) {
        drop(d);
        jobs.count(|c| c.files_errors += 1);
        return Small::generic_error();
    }
    let clock = jobs.clock(config);
    let expiry = job.config.jobs.url_expiry;
    let deadline = if d.expired_listings > 0 {
        d.expired_listings -= 1;
        clock.millis()
    } else {
        clock
            .millis()
            .saturating_add(u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX))
    };
    let files: Vec<Value> = d
        .files
        .iter()
        .filter(|f| start_after.is_none_or(|a| f.name.as_str() > a))
        .take(job.config.jobs.files_per_page.max(1))
        .map(|f| {
            json!({
                "file": f.name,
                "url": presigned_url(jobs, file_host, job.id, &f.name, deadline, expiry.as_secs()),
            })
        })
        .collect();
    let body = json!({
        "exportTruncated": d.truncated,
        "files": files,
        "jobId": job.id,
        "jobState": d.state.as_str(),
    });
    drop(d);
    jobs.count(|c| c.file_listings += 1);
    json_response(&body)
}

/// Iterable's form of a time: `2024-01-01 00:00:00 +00:00`.
fn iterable_time(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(t.format("%Y-%m-%d %H:%M:%S +00:00").to_string()))
        .unwrap_or(Value::Null)
}

/// `GET /export/jobs?jobState=`.
fn list(jobs: &Jobs, params: &[(String, String)]) -> Small {
    let filter = match params.iter().find(|(k, _)| k == "jobState") {
        None => None,
        Some((_, v)) => match v.parse::<JobState>() {
            Ok(s) => Some(s),
            Err(e) => return Small::bad_params(&e.to_string()),
        },
    };
    let listed: Vec<Value> = jobs
        .all()
        .iter()
        .filter_map(|job| {
            let d = lock(&job.data);
            if filter.is_some_and(|f| f != d.state) {
                return None;
            }
            let mut m = Map::new();
            m.insert("id".into(), json!(job.id));
            m.insert("dataTypeName".into(), json!(job.spec.data_type.as_str()));
            m.insert("jobState".into(), json!(d.state.as_str()));
            m.insert("scheduledStartTime".into(), iterable_time(d.scheduled_start));
            m.insert("endTime".into(), iterable_time(d.end_time));
            m.insert("bytesExported".into(), json!(d.bytes));
            Some(Value::Object(m))
        })
        .collect();
    jobs.count(|c| c.job_listings += 1);
    json_response(&json!({ "jobs": listed }))
}

/// The `Allow` header of a 405 for `route`.
pub(in crate::server) fn method_not_allowed(route: JobRoute) -> Small {
    Small::error(405, "Method not allowed", "BadParams").with_header(header::ALLOW, route.method().to_string())
}
