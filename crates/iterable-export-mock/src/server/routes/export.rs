//! `GET /export/data.json` and `GET /export/data.csv`: the parameters (data type, window,
//! field filters) become an [`ExportBody`] to stream.

use chrono::{DateTime, Utc};

use super::single;
use crate::data::{DataType, FieldFilter, RecordStream};
use crate::server::body::ExportBody;
use crate::{ExportRange, MockConfig, parse_datetime};

/// Validates the parameters of `data.json`/`data.csv` and prepares the body.
pub(in crate::server) fn export_request(
    config: &MockConfig,
    params: &[(String, String)],
    csv: bool,
) -> Result<ExportBody, String> {
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
    let records = RecordStream::new(config.data_params(), dt, start, end);
    let csv_columns = csv.then(|| {
        records
            .columns()
            .into_iter()
            .filter(|f| filter.keeps(f))
            .collect::<Vec<_>>()
    });
    Ok(ExportBody::new(records, filter, csv_columns))
}
