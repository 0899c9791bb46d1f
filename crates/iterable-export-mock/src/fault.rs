//! Fault injection.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::MockError;

/// A fault for the next export requests (`/export/data.json` and `/export/data.csv`).
///
/// Faults queue up on a running server ([`MockServer::inject`](crate::MockServer::inject)).
/// For each export request that passes the key check:
/// 1. the first queued *response* fault ([`Fault::Status`], [`Fault::Redirect`]) with a count
///    left answers the request instead of the export (one count used); such a request does not
///    use a rate-limit slot;
/// 2. otherwise, when the request gets a 200, every queued *body* fault (the other variants)
///    applies to its body (one count of each used), so e.g. a stall and a cut can combine.
///
/// The text form (for the binary's `--fault`, via [`FromStr`]/[`Display`](fmt::Display)):
/// `status:500:2`, `truncate:1048576:1`, `stall:65536:5s:1`, `malformed:10:1`, `blank:100:1`,
/// `no-final-newline:1`, `redirect:1` (the last number is always the count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with `status`: 500 `GenericError` JSON ("Please try again later"), 502/504 an HTML
    /// page (as a proxy would), 503 an HTML page, 429 `RateLimitExceeded` JSON (with
    /// `Retry-After: 1` when the rate limit sends `Retry-After`), any other status a JSON error.
    Status {
        /// HTTP status to send.
        status: u16,
        /// Number of requests affected.
        count: u32,
    },
    /// Send the first `after_bytes` bytes of the body, then close the connection without the
    /// terminating chunk (the client sees an incomplete chunked body).
    Truncate {
        /// Body bytes sent before the cut.
        after_bytes: u64,
        /// Number of responses affected.
        count: u32,
    },
    /// Pause for `duration` after `after_bytes` body bytes, then go on.
    Stall {
        /// Body bytes sent before the pause.
        after_bytes: u64,
        /// Length of the pause.
        duration: Duration,
        /// Number of responses affected.
        count: u32,
    },
    /// Insert one malformed line (NDJSON: an unterminated object; CSV: a row with the wrong
    /// number of cells) after `after_records` records (at the end if there are fewer).
    MalformedLine {
        /// Records before the malformed line.
        after_records: u64,
        /// Number of responses affected.
        count: u32,
    },
    /// Insert an empty line after every `every` records.
    BlankLines {
        /// Records between blank lines (at least 1).
        every: u64,
        /// Number of responses affected.
        count: u32,
    },
    /// Omit the final `\n` of the body.
    NoFinalNewline {
        /// Number of responses affected.
        count: u32,
    },
    /// Answer `302 Found` with `Location` pointing at the same path and query on the second
    /// listener ([`MockServer::redirect_base_url`](crate::MockServer::redirect_base_url)),
    /// which serves the export and records whether an `Api-Key` header arrived.
    Redirect {
        /// Number of requests affected.
        count: u32,
    },
}

impl Fault {
    /// The remaining count.
    pub fn count(&self) -> u32 {
        *self.clone().count_mut()
    }

    /// The remaining count, to change (the one place that knows where each variant keeps it).
    pub(crate) fn count_mut(&mut self) -> &mut u32 {
        match self {
            Fault::Status { count, .. }
            | Fault::Truncate { count, .. }
            | Fault::Stall { count, .. }
            | Fault::MalformedLine { count, .. }
            | Fault::BlankLines { count, .. }
            | Fault::NoFinalNewline { count }
            | Fault::Redirect { count } => count,
        }
    }

    /// True for faults that replace the response ([`Fault::Status`], [`Fault::Redirect`]).
    pub fn is_response_fault(&self) -> bool {
        matches!(self, Fault::Status { .. } | Fault::Redirect { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status { status, count } => write!(f, "status:{status}:{count}"),
            Fault::Truncate { after_bytes, count } => write!(f, "truncate:{after_bytes}:{count}"),
            Fault::Stall {
                after_bytes,
                duration,
                count,
            } => write!(
                f,
                "stall:{after_bytes}:{}:{count}",
                humantime::format_duration(*duration)
            ),
            Fault::MalformedLine { after_records, count } => write!(f, "malformed:{after_records}:{count}"),
            Fault::BlankLines { every, count } => write!(f, "blank:{every}:{count}"),
            Fault::NoFinalNewline { count } => write!(f, "no-final-newline:{count}"),
            Fault::Redirect { count } => write!(f, "redirect:{count}"),
        }
    }
}

impl FromStr for Fault {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            MockError::InvalidParam(format!(
                "invalid fault {s:?} (examples: status:500:2, truncate:1048576:1, stall:65536:5s:1, malformed:10:1, blank:100:1, no-final-newline:1, redirect:1)"
            ))
        };
        // `kind:ARGS…:COUNT`: the arguments each kind takes, then the count.
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let mut args: Vec<&str> = rest.split(':').map(str::trim).collect();
        let num = |v: &str| -> Result<u64, MockError> { v.parse().map_err(|_| bad()) };
        let count = args.pop().map(num).transpose()?.ok_or_else(bad)?;
        let count = u32::try_from(count).map_err(|_| bad())?;
        Ok(match (kind.trim(), args.as_slice()) {
            ("status", [status]) => Fault::Status {
                status: u16::try_from(num(status)?)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(bad)?,
                count,
            },
            ("truncate", [after]) => Fault::Truncate {
                after_bytes: num(after)?,
                count,
            },
            ("stall", [after, duration]) => Fault::Stall {
                after_bytes: num(after)?,
                duration: humantime::parse_duration(duration).map_err(|_| bad())?,
                count,
            },
            ("malformed", [after]) => Fault::MalformedLine {
                after_records: num(after)?,
                count,
            },
            ("blank", [every]) => Fault::BlankLines {
                every: num(every)?.max(1),
                count,
            },
            ("no-final-newline", []) => Fault::NoFinalNewline { count },
            ("redirect", []) => Fault::Redirect { count },
            _ => return Err(bad()),
        })
    }
}

/// A fault of the asynchronous export jobs, queued with
/// [`MockServer::inject_job_fault`](crate::MockServer::inject_job_fault) (the binary: `--job-fault`).
///
/// `job` selects the job: the n-th job started on the server (1-based; the n-th job's id is
/// `1_000_000 + n`), or `0` for every job. A job takes the faults meant for it when it starts
/// (`POST /export/start`): inject them before. Faults for one job are used up by it; faults for
/// every job stay queued.
///
/// The text form (`--job-fault`): `fail:JOB:AFTER_FILES`, `restart:JOB:AFTER_FILES:PAUSE`,
/// `cap:JOB:BYTES`, `cut:JOB:FILE:BYTES`, `expired:JOB:LISTINGS`, `files-500:JOB:CALL`,
/// `start-500:JOB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobFault {
    /// The job becomes `failed` once `after_files` files have appeared (at the end if it has
    /// fewer). The files listed stay listed.
    Fail {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// Files that appear before it fails.
        after_files: u32,
    },
    /// The job goes from `running` back to `enqueued` once `after_files` files have appeared (at
    /// the end if it has fewer), frees its slot for `pause`, then queues for a slot again and
    /// goes on with the next file. Files listed before stay valid.
    Restart {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// Files that appear before the restart.
        after_files: u32,
        /// How long it stays out of the running slots.
        pause: Duration,
    },
    /// The job's size cap is `bytes` instead of [`JobsConfig::job_cap_bytes`](crate::JobsConfig):
    /// a bigger window stops there, with `exportTruncated: true`.
    Cap {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// The cap in bytes.
        bytes: u64,
    },
    /// The first download of the job's file number `file` (1-based, in listing order) sends
    /// `after_bytes` bytes (at most the file's length minus one) with the whole file's
    /// `Content-Length`, then closes the connection. Later downloads are whole.
    CutFile {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// The file (1 = the first file).
        file: u32,
        /// Bytes sent before the cut.
        after_bytes: u64,
    },
    /// The first `listings` answers of `GET /export/{jobId}/files` for the job carry URLs that
    /// have already expired (the file host answers 403 "Request has expired"); later listings
    /// carry fresh URLs.
    ExpiredUrls {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// Listings with expired URLs.
        listings: u32,
    },
    /// The `call`-th request (1-based) to `GET /export/{jobId}/files` for the job answers 500
    /// `GenericError` (after the rate limit; it uses a slot).
    FilesError {
        /// The job (n-th started, 0: every job).
        job: u32,
        /// The request that fails (1 = the first).
        call: u32,
    },
    /// The `POST /export/start` that creates the job answers 500 `GenericError` ("Please try
    /// again later"): the job is created and runs, but the client is not told its id.
    StartError {
        /// The job (n-th started, 0: every job).
        job: u32,
    },
}

impl JobFault {
    /// The job it is meant for (n-th started; 0: every job).
    pub fn job(&self) -> u32 {
        match self {
            JobFault::Fail { job, .. }
            | JobFault::Restart { job, .. }
            | JobFault::Cap { job, .. }
            | JobFault::CutFile { job, .. }
            | JobFault::ExpiredUrls { job, .. }
            | JobFault::FilesError { job, .. }
            | JobFault::StartError { job } => *job,
        }
    }
}

impl fmt::Display for JobFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobFault::Fail { job, after_files } => write!(f, "fail:{job}:{after_files}"),
            JobFault::Restart {
                job,
                after_files,
                pause,
            } => write!(f, "restart:{job}:{after_files}:{}", humantime::format_duration(*pause)),
            JobFault::Cap { job, bytes } => write!(f, "cap:{job}:{bytes}"),
            JobFault::CutFile { job, file, after_bytes } => write!(f, "cut:{job}:{file}:{after_bytes}"),
            JobFault::ExpiredUrls { job, listings } => write!(f, "expired:{job}:{listings}"),
            JobFault::FilesError { job, call } => write!(f, "files-500:{job}:{call}"),
            JobFault::StartError { job } => write!(f, "start-500:{job}"),
        }
    }
}

impl FromStr for JobFault {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            MockError::InvalidParam(format!(
                "invalid job fault {s:?} (forms: fail:JOB:AFTER_FILES, restart:JOB:AFTER_FILES:PAUSE, cap:JOB:BYTES, cut:JOB:FILE:BYTES, expired:JOB:LISTINGS, files-500:JOB:CALL, start-500:JOB; JOB 0 = every job)"
            ))
        };
        let parts: Vec<&str> = s.split(':').map(str::trim).collect();
        let n64 = |v: &str| -> Result<u64, MockError> { v.parse().map_err(|_| bad()) };
        let n32 = |v: &str| -> Result<u32, MockError> { v.parse().map_err(|_| bad()) };
        Ok(match parts.as_slice() {
            ["fail", job, after] => JobFault::Fail {
                job: n32(job)?,
                after_files: n32(after)?,
            },
            ["restart", job, after, pause] => JobFault::Restart {
                job: n32(job)?,
                after_files: n32(after)?,
                pause: humantime::parse_duration(pause).map_err(|_| bad())?,
            },
            ["cap", job, bytes] => JobFault::Cap {
                job: n32(job)?,
                bytes: n64(bytes)?,
            },
            ["cut", job, file, after] => JobFault::CutFile {
                job: n32(job)?,
                file: n32(file)?,
                after_bytes: n64(after)?,
            },
            ["expired", job, listings] => JobFault::ExpiredUrls {
                job: n32(job)?,
                listings: n32(listings)?,
            },
            ["files-500", job, call] => JobFault::FilesError {
                job: n32(job)?,
                call: n32(call)?,
            },
            ["start-500", job] => JobFault::StartError { job: n32(job)? },
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_fault_text_form_round_trips() -> Result<(), MockError> {
        for s in [
            "fail:1:3",
            "restart:0:2:5s",
            "cap:2:1048576",
            "cut:1:4:100",
            "expired:3:2",
            "files-500:1:2",
            "start-500:1",
        ] {
            let f: JobFault = s.parse()?;
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            "restart:2:1:250ms".parse::<JobFault>()?,
            JobFault::Restart {
                job: 2,
                after_files: 1,
                pause: Duration::from_millis(250)
            }
        );
        for bad in [
            "",
            "fail:1",
            "fail:x:1",
            "restart:1:1:never",
            "cut:1:1",
            "boom:1:1",
            "cap:-1:5",
        ] {
            assert!(bad.parse::<JobFault>().is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn text_form_round_trips() -> Result<(), MockError> {
        for s in [
            "status:500:2",
            "truncate:1048576:1",
            "stall:65536:5s:1",
            "malformed:10:1",
            "blank:100:3",
            "no-final-newline:1",
            "redirect:1",
        ] {
            let f: Fault = s.parse()?;
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            "stall:1:250ms:2".parse::<Fault>()?,
            Fault::Stall {
                after_bytes: 1,
                duration: Duration::from_millis(250),
                count: 2
            }
        );
        for bad in [
            "",
            "status:500",
            "status:700:1",
            "truncate:x:1",
            "stall:1:forever:1",
            "boom:1",
            "redirect:1:2",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
        // spaces around the parts are accepted; counts beyond u32 are not
        assert_eq!(
            " blank : 0 : 3 ".parse::<Fault>()?,
            Fault::BlankLines { every: 1, count: 3 }
        );
        assert!("redirect:4294967296".parse::<Fault>().is_err());
        Ok(())
    }
}
