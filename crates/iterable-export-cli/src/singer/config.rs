//! The tap's `config.json`: the keys tap-iterable reads (`api_key`, `start_date`) and ours.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use iterable_export::{Error, Region};
use serde_json::{Map, Value};

/// Every key the tap reads, for the unknown-key warning and the README.
pub(crate) const KEYS: &[&str] = &[
    "api_key",
    "start_date",
    "end_date",
    "region",
    "base_url",
    "requests_per_minute",
    "lookback",
];

/// The default look-back, as `export --lookback`.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(300);

/// A validated configuration. Its `Debug` never shows the key.
pub(crate) struct Config {
    pub(crate) api_key: String,
    /// Where a stream without a bookmark starts.
    pub(crate) start_date: DateTime<Utc>,
    /// Where every sync ends (default: now).
    pub(crate) end_date: Option<DateTime<Utc>>,
    pub(crate) region: Option<Region>,
    pub(crate) base_url: Option<String>,
    pub(crate) requests_per_minute: u32,
    pub(crate) lookback: Duration,
    /// Keys the tap does not know (reported, not fatal).
    pub(crate) unknown: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &"***")
            .field("start_date", &self.start_date)
            .field("end_date", &self.end_date)
            .field("region", &self.region)
            .field("base_url", &self.base_url)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("lookback", &self.lookback)
            .field("unknown", &self.unknown)
            .finish()
    }
}

fn bad(key: &str, what: impl std::fmt::Display) -> Error {
    Error::Config(format!("config key `{key}`: {what}"))
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, or the key that is missing or wrong and what it must be.
    pub(crate) fn load(path: &Path) -> iterable_export::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the config file {}: {e}", path.display())))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("the config file {} is not JSON: {e}", path.display())))?;
        match value {
            Value::Object(map) => Config::from_map(&map),
            _ => Err(Error::Config(format!(
                "the config file {} must hold a JSON object of settings",
                path.display()
            ))),
        }
    }

    fn from_map(map: &Map<String, Value>) -> iterable_export::Result<Config> {
        let string = |key: &str| -> iterable_export::Result<Option<&str>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Err(bad(key, "is empty")),
                Some(Value::String(s)) => Ok(Some(s.trim())),
                // The key's value is never shown, not even a mistyped one.
                Some(_) if key == "api_key" => Err(bad(key, "must be a string")),
                Some(other) => Err(bad(key, format!("must be a string, not {other}"))),
            }
        };
        let date = |key: &str| -> iterable_export::Result<Option<DateTime<Utc>>> {
            string(key)?
                .map(|s| {
                    iterable_export::parse_iterable_time(s).ok_or_else(|| {
                        bad(
                            key,
                            format!("{s:?} is not a date: use RFC 3339 (2024-01-01T00:00:00Z) or YYYY-MM-DD"),
                        )
                    })
                })
                .transpose()
        };
        let api_key = string("api_key")?
            .ok_or_else(|| {
                bad(
                    "api_key",
                    "missing: set it to a server-side key from Iterable's Integrations > API Keys page",
                )
            })?
            .to_owned();
        let start_date = date("start_date")?.ok_or_else(|| {
            bad(
                "start_date",
                "missing: where streams without a bookmark start, e.g. \"2024-01-01T00:00:00Z\"",
            )
        })?;
        let end_date = date("end_date")?;
        if let Some(end) = end_date
            && end <= start_date
        {
            return Err(bad(
                "end_date",
                format!(
                    "{} is not after start_date {}",
                    end.to_rfc3339(),
                    start_date.to_rfc3339()
                ),
            ));
        }
        let region = string("region")?
            .map(|s| {
                s.parse::<Region>()
                    .map_err(|_| bad("region", format!("{s:?} is not a region: use \"us\" or \"eu\"")))
            })
            .transpose()?;
        let base_url = string("base_url")?.map(str::to_owned);
        let requests_per_minute = match map.get("requests_per_minute") {
            None | Some(Value::Null) => 4,
            // A string of digits too: Meltano writes a setting without `kind: integer` as a string.
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    bad(
                        "requests_per_minute",
                        format!("must be a whole number from 1 (Iterable allows 4), not {v}"),
                    )
                })?,
        };
        let lookback = match map.get("lookback") {
            None | Some(Value::Null) => DEFAULT_LOOKBACK,
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Duration::from_secs)
                .ok_or_else(|| bad("lookback", format!("{n} is not a whole number of seconds")))
                .and_then(|d| {
                    crate::args::parse_lookback(&format!("{}s", d.as_secs())).map_err(|e| bad("lookback", e))
                })?,
            Some(Value::String(s)) => crate::args::parse_lookback(s).map_err(|e| bad("lookback", e))?,
            Some(other) => {
                return Err(bad(
                    "lookback",
                    format!("must be seconds or a duration such as \"5m\", not {other}"),
                ));
            }
        };
        let unknown = map.keys().filter(|k| !KEYS.contains(&k.as_str())).cloned().collect();
        Ok(Config {
            api_key,
            start_date,
            end_date,
            region,
            base_url,
            requests_per_minute,
            lookback,
            unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> iterable_export::Result<Config> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Config::from_map(&map),
            other => panic!("test config {json}: {other:?}"),
        }
    }

    fn message(json: &str) -> String {
        match parse(json) {
            Err(Error::Config(message)) => message,
            other => panic!("{json} was accepted: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_unknown_keys_are_listed() {
        let config = parse(
            r#"{"api_key":"k","start_date":"2024-01-01T00:00:00Z","end_date":"2024-02-01","region":"EU",
                "base_url":"http://127.0.0.1:1/api","requests_per_minute":6000,"lookback":"10m","select":[1]}"#,
        )
        .expect("valid");
        assert_eq!(config.api_key, "k");
        assert_eq!(config.start_date.to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(
            config.end_date.map(|d| d.to_rfc3339()).as_deref(),
            Some("2024-02-01T00:00:00+00:00")
        );
        assert_eq!(config.region, Some(Region::Eu));
        assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:1/api"));
        assert_eq!(config.requests_per_minute, 6000);
        assert_eq!(config.lookback, Duration::from_secs(600));
        assert_eq!(config.unknown, ["select"]);
        assert!(!format!("{config:?}").contains("\"k\""));
        let digits = parse(r#"{"api_key":"k","start_date":"2024-01-01","requests_per_minute":" 600"}"#).expect("valid");
        assert_eq!(digits.requests_per_minute, 600);
        let defaults = parse(r#"{"api_key":"k","start_date":"2024-01-01","lookback":0}"#).expect("valid");
        assert_eq!((defaults.requests_per_minute, defaults.lookback), (4, Duration::ZERO));
        assert_eq!(defaults.region, None);
    }

    #[test]
    fn each_bad_key_is_named() {
        assert!(message(r#"{"start_date":"2024-01-01"}"#).starts_with("config key `api_key`: missing"));
        assert!(message(r#"{"api_key":"k"}"#).starts_with("config key `start_date`: missing"));
        assert_eq!(
            message(r#"{"api_key":"k","start_date":"soon"}"#),
            "config key `start_date`: \"soon\" is not a date: use RFC 3339 (2024-01-01T00:00:00Z) or YYYY-MM-DD"
        );
        assert_eq!(
            message(r#"{"api_key":"k","start_date":"2024-01-01","region":"mars"}"#),
            "config key `region`: \"mars\" is not a region: use \"us\" or \"eu\""
        );
        assert!(
            message(r#"{"api_key":"k","start_date":"2024-01-01","requests_per_minute":0}"#)
                .starts_with("config key `requests_per_minute`: must be a whole number")
        );
        assert!(
            message(r#"{"api_key":"k","start_date":"2024-01-01","lookback":"2d"}"#)
                .starts_with("config key `lookback`: \"2d\" is longer than the longest look-back")
        );
        for key in ["7", r#"["secret-key"]"#, r#"{"key":"secret-key"}"#] {
            assert_eq!(
                message(&format!(r#"{{"api_key":{key},"start_date":"2024-01-01"}}"#)),
                "config key `api_key`: must be a string"
            );
        }
        assert!(
            message(r#"{"api_key":"k","start_date":"2024-01-02","end_date":"2024-01-01"}"#)
                .starts_with("config key `end_date`: 2024-01-01T00:00:00+00:00 is not after start_date")
        );
    }
}
