//! `GET /export/userEvents`: one user's events, one JSON object per line with `_type` (default)
//! or wrapped as `{"events":[…]}` (`MockConfig::user_events_wrapped`).

use super::single;
use crate::MockConfig;
use crate::data::{self, FieldFilter};
use crate::server::response::{CT_JSON, Small};

/// The events of one user (`email`), generated for that address.
pub(in crate::server) fn user_events(config: &MockConfig, params: &[(String, String)]) -> Small {
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
    Small::new(200, CT_JSON, body)
}
