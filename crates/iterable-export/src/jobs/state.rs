//! [`JobState`]: the state of an export job, parsed case-insensitively.

use std::fmt;
use std::str::FromStr;

/// The state of an export job.
///
/// Iterable's Swagger spells the states `Enqueued`, `Running`, `Completed`, `Failed`; the live
/// API sends them in lowercase and adds `cancelling` and `cancelled`. Parsing ignores case; a
/// state this client does not know is an error naming it ([`UnknownJobState`]), never a panic.
///
/// ```
/// use iterable_export::JobState;
///
/// assert_eq!("Completed".parse::<JobState>()?, JobState::Completed);
/// assert_eq!("running".parse::<JobState>()?, JobState::Running);
/// assert_eq!("CANCELLED".parse::<JobState>()?, JobState::Cancelled);
/// assert!("paused".parse::<JobState>().is_err());
/// # Ok::<(), iterable_export::UnknownJobState>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to run (also after Iterable restarted a running job).
    Enqueued,
    /// Running: files appear as they are written.
    Running,
    /// Done: every file is listed.
    Completed,
    /// Failed: start a new job for the same window.
    Failed,
    /// A cancel was requested.
    Cancelling,
    /// Cancelled.
    Cancelled,
}

impl JobState {
    const NAMES: [(&'static str, JobState); 6] = [
        ("enqueued", JobState::Enqueued),
        ("running", JobState::Running),
        ("completed", JobState::Completed),
        ("failed", JobState::Failed),
        ("cancelling", JobState::Cancelling),
        ("cancelled", JobState::Cancelled),
    ];

    /// The live API's (lowercase) name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, state)| *state == self)
            .map_or("unknown", |(name, _)| name)
    }

    /// Whether the job still works on its files (`enqueued` or `running`).
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Enqueued | JobState::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job state this client does not know; holds the state as Iterable sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown export job state {0:?}: expected enqueued, running, completed, failed, cancelling or cancelled (in any case)"
)]
pub struct UnknownJobState(pub String);

impl FromStr for JobState {
    type Err = UnknownJobState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Self::NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
            .map(|(_, state)| *state)
            .ok_or_else(|| UnknownJobState(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_parses_in_any_case_and_round_trips() -> Result<(), UnknownJobState> {
        for (name, state) in JobState::NAMES {
            assert_eq!(name.parse::<JobState>()?, state);
            assert_eq!(name.to_uppercase().parse::<JobState>()?, state);
            let capitalized = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
            assert_eq!(capitalized.parse::<JobState>()?, state);
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(" Completed ".parse::<JobState>()?, JobState::Completed);
        Ok(())
    }

    #[test]
    fn an_unknown_state_is_an_error_naming_it() {
        assert_eq!("paused".parse::<JobState>(), Err(UnknownJobState("paused".into())));
        assert_eq!("".parse::<JobState>(), Err(UnknownJobState(String::new())));
        let shown = UnknownJobState("Paused".into()).to_string();
        assert!(shown.starts_with("unknown export job state \"Paused\""), "{shown}");
    }

    #[test]
    fn only_enqueued_and_running_are_active() {
        let active: Vec<_> = JobState::NAMES
            .iter()
            .filter(|(_, s)| s.is_active())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(active, ["enqueued", "running"]);
    }
}
