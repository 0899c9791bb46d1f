//! The endpoints: which path is which, and the handlers that turn a request's parameters into a
//! response, one module per endpoint (`data.json` and `data.csv` share `export`: they differ only
//! in the body's format). The export jobs' endpoints (`jobs`) have their own paths and methods.

mod export;
pub(super) mod jobs;
mod metrics;
mod user_events;

pub(super) use export::export_request;
pub(super) use metrics::metrics;
pub(super) use user_events::user_events;

/// An endpoint of the API.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    DataJson,
    DataCsv,
    UserEvents,
    Metrics,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::DataJson,
        Endpoint::DataCsv,
        Endpoint::UserEvents,
        Endpoint::Metrics,
    ];

    /// The endpoint served at `path`, if any.
    pub(super) fn from_path(path: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.path() == path)
    }

    /// The full path, e.g. `/api/export/data.json`.
    pub(super) fn path(self) -> &'static str {
        match self {
            Endpoint::DataJson => "/api/export/data.json",
            Endpoint::DataCsv => "/api/export/data.csv",
            Endpoint::UserEvents => "/api/export/userEvents",
            Endpoint::Metrics => "/api/experiments/metrics",
        }
    }

    /// The export endpoints: rate-limited, and where faults apply.
    pub(super) fn is_export(self) -> bool {
        matches!(self, Endpoint::DataJson | Endpoint::DataCsv)
    }
}

/// The value of the parameter `name`, if given; an error if given more than once.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut it = params.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.as_str());
    if it.next().is_some() {
        return Err(format!("Parameter {name} given more than once"));
    }
    Ok(first)
}
