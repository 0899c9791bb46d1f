//! Iterable's data centers.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The data center a project lives in. A project's key works only on its own region's host.
///
/// ```
/// use iterable_export::Region;
///
/// let region: Region = "eu".parse()?;
/// assert_eq!(region, Region::Eu);
/// assert_eq!(region.base_url(), "https://api.eu.iterable.com/api");
/// # Ok::<(), iterable_export::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Region {
    /// US data center (USDC): `https://api.iterable.com/api`.
    #[default]
    Us,
    /// European data center (EDC): `https://api.eu.iterable.com/api`.
    Eu,
}

impl Region {
    /// The API base URL of this region.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Us => "https://api.iterable.com/api",
            Region::Eu => "https://api.eu.iterable.com/api",
        }
    }

    /// The short name used on the command line and in `ITERABLE_REGION`: `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "us" | "usdc" => Ok(Region::Us),
            "eu" | "edc" => Ok(Region::Eu),
            other => Err(Error::Config(format!("unknown region {other:?}: use \"us\" or \"eu\""))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_regions_case_insensitively() {
        assert_eq!("US".parse::<Region>().ok(), Some(Region::Us));
        assert_eq!(" eu ".parse::<Region>().ok(), Some(Region::Eu));
        let err = "asia".parse::<Region>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("configuration error: unknown region \"asia\": use \"us\" or \"eu\"")
        );
    }

    #[test]
    fn base_urls() {
        assert_eq!(Region::default().base_url(), "https://api.iterable.com/api");
        assert_eq!(Region::Eu.base_url(), "https://api.eu.iterable.com/api");
    }
}
