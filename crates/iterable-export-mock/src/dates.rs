//! Date parsing and `range` resolution.
//!
//! The mock parses dates with its own code on purpose, although the client library has a parser
//! too: the mock shares no logic with the client (it does not even depend on it), so that a
//! misreading of the API in one cannot cancel itself out in the other. Keep it that way; do not
//! import the client's parser here or move this one into a shared crate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use crate::MockError;

/// Parses a `startDateTime`/`endDateTime` value the way the mock accepts it.
///
/// Accepted forms (UTC unless a zone is given):
/// - Iterable's `2024-01-01 00:00:00`, optionally with fractional seconds and a zone:
///   `2024-01-01 00:00:00 +00:00`, `2024-01-01 00:00:00+02:00`, `2024-01-01 00:00:00 +0000`,
///   `2024-01-01 00:00:00Z`, `2024-01-01 00:00:00 UTC`; a `+` that a client forgot to
///   percent-encode (decoded as a space, `2024-01-01 00:00:00  00:00`) is accepted too;
/// - RFC 3339 / ISO 8601: `2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.5+01:00`,
///   and `2024-01-01T00:00:00` (UTC);
/// - a bare date `2024-01-01` (midnight UTC).
///
/// ```
/// let t = iterable_export_mock::parse_datetime("2024-01-01 00:00:00 +01:00").unwrap();
/// assert_eq!(t.to_rfc3339(), "2023-12-31T23:00:00+00:00");
/// ```
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim_start();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // split date-time from zone
    let (dt_part, zone) = split_zone(s.trim_end());
    let naive = parse_naive(dt_part.trim_end())?;
    let offset = match zone.map(str::trim) {
        None | Some("") | Some("Z") | Some("UTC") | Some("GMT") => FixedOffset::east_opt(0)?,
        Some(z) => parse_offset(z)?,
    };
    offset
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn split_zone(s: &str) -> (&str, Option<&str>) {
    // The time part is `HH:MM:SS[.fff]`; anything after it is the zone.
    let time_start = match s.find(['T', ' ']) {
        Some(p) => p + 1,
        None => return (s, None),
    };
    let rest = &s[time_start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (a, b) = s.split_at(time_start + end);
    if b.is_empty() { (a, None) } else { (a, Some(b)) }
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN))
}

fn parse_offset(z: &str) -> Option<FixedOffset> {
    // `+HH:MM`, `-HH:MM`, `+HHMM`, `HH:MM` (a `+` decoded as space, already trimmed)
    let (sign, digits) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        b'0'..=b'9' => (1, z),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// The `range` parameter's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportRange {
    /// From today's midnight (UTC) to now.
    Today,
    /// Yesterday's whole day (UTC).
    Yesterday,
    /// From the first day with data to today's midnight.
    BeforeToday,
    /// From the first day with data to now.
    All,
}

impl ExportRange {
    /// The parameter value (`"Today"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportRange::Today => "Today",
            ExportRange::Yesterday => "Yesterday",
            ExportRange::BeforeToday => "BeforeToday",
            ExportRange::All => "All",
        }
    }

    /// The window `[start, end)` this range means at instant `now`, given the first day with data.
    pub fn window(self, now: DateTime<Utc>, data_start: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        let first = data_start.and_time(NaiveTime::MIN).and_utc();
        match self {
            ExportRange::Today => (midnight, now),
            ExportRange::Yesterday => (midnight - Duration::days(1), midnight),
            ExportRange::BeforeToday => (first, midnight),
            ExportRange::All => (first, now),
        }
    }
}

impl fmt::Display for ExportRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportRange {
    type Err = MockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Today" => Ok(ExportRange::Today),
            "Yesterday" => Ok(ExportRange::Yesterday),
            "BeforeToday" => Ok(ExportRange::BeforeToday),
            "All" => Ok(ExportRange::All),
            other => Err(MockError::InvalidParam(format!("Invalid range: {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        parse_datetime(s).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    }

    #[test]
    fn forms() {
        let m = Some("2024-01-01T00:00:00.000Z".to_owned());
        for s in [
            "2024-01-01 00:00:00",
            "2024-01-01 00:00:00 +00:00",
            "2024-01-01 00:00:00+00:00",
            "2024-01-01 00:00:00 +0000",
            "2024-01-01 00:00:00  00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01 00:00:00 UTC",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01",
            "2024-01-01T01:00:00+01:00",
            "2024-01-01 01:30:00 +01:30",
            "2023-12-31 19:00:00 -05:00",
        ] {
            assert_eq!(p(s), m, "{s}");
        }
        assert_eq!(
            p("2024-01-01 00:00:00.250"),
            Some("2024-01-01T00:00:00.250Z".to_owned())
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01 00:00:00",
            "2024-01-01 25:00:00",
            "2024-01-01 00:00:00 +99:00",
            "1704067200",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
