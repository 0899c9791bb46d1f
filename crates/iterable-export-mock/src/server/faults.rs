//! Taking faults from the queue, and the responses that replace an export (see [`Fault`] for the
//! order in which they apply). Body faults act in the body stream (`body.rs`).

use http::header;

use super::ReqInfo;
use super::response::Small;
use super::state::{Shared, lock};
use crate::{Fault, MockConfig};

impl Shared {
    /// Takes one count of the first response fault, if any.
    pub(super) fn take_response_fault(&self) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        let pos = faults.iter().position(|f| f.is_response_fault())?;
        Some(take_one(&mut faults, pos))
    }

    /// Takes one count of every body fault.
    pub(super) fn take_body_faults(&self) -> Vec<Fault> {
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
}

/// One count of `faults[pos]` (removed when none is left).
fn take_one(faults: &mut Vec<Fault>, pos: usize) -> Fault {
    let f = faults[pos].clone();
    let c = faults[pos].count_mut();
    *c -= 1;
    if *c == 0 {
        faults.remove(pos);
    }
    f
}

/// The response that a response fault sends instead of the export of `path`.
pub(super) fn fault_response(f: &Fault, config: &MockConfig, req: &ReqInfo, redirect_base: &str, path: &str) -> Small {
    match f {
        Fault::Redirect { .. } => {
            let mut location = format!("{redirect_base}{path}");
            if !req.query.is_empty() {
                location.push('?');
                location.push_str(&req.query);
            }
            Small::empty(302).with_header(header::LOCATION, location)
        }
        Fault::Status { status, .. } => match status {
            500 => Small::generic_error(),
            502 => Small::proxy_page(502, "Bad Gateway"),
            503 => Small::proxy_page(503, "Service Temporarily Unavailable"),
            504 => Small::proxy_page(504, "Gateway Time-out"),
            429 => Small::rate_limited(config, path, 1),
            other => {
                let code = match other {
                    400 => "BadParams",
                    401 => "BadApiKey",
                    403 => "Forbidden",
                    404 => "NotFound",
                    _ => "GenericError",
                };
                Small::error(*other, "Injected error", code)
            }
        },
        // body faults never reach here
        _ => Small::generic_error(),
    }
}
