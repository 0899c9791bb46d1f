//! Tests of `windows`.

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn windows_cover_the_range_exactly(start in 0i64..4_000_000_000, len in 0i64..10_000_000, size in 1u64..5_000_000) {
        let start = Utc.timestamp_opt(start, 0).single().unwrap_or_default();
        let end = start + TimeDelta::seconds(len);
        let windows = plan_windows(start, end, Duration::from_secs(size));
        if len == 0 {
            prop_assert!(windows.is_empty());
        } else {
            prop_assert_eq!(windows.first().map(|w| w.start), Some(start));
            prop_assert_eq!(windows.last().map(|w| w.end), Some(end));
        }
        for pair in windows.windows(2) {
            prop_assert_eq!(pair[0].end, pair[1].start);
        }
        for (i, w) in windows.iter().enumerate() {
            prop_assert!(!w.is_empty());
            if i + 1 < windows.len() {
                prop_assert_eq!(w.len(), TimeDelta::seconds(size as i64));
            } else {
                prop_assert!(w.len() <= TimeDelta::seconds(size as i64));
            }
        }
        let expected = (len as u64).div_ceil(size);
        prop_assert_eq!(windows.len() as u64, expected);
    }

    #[test]
    fn halves_cover_the_window(start in 0i64..4_000_000_000, len in 2i64..10_000_000) {
        let start = Utc.timestamp_opt(start, 0).single().unwrap_or_default();
        let window = Window { start, end: start + TimeDelta::seconds(len) };
        let halves = window.halves();
        prop_assert!(halves.is_some());
        if let Some((a, b)) = halves {
            prop_assert_eq!(a.start, window.start);
            prop_assert_eq!(a.end, b.start);
            prop_assert_eq!(b.end, window.end);
            prop_assert!(!a.is_empty() && !b.is_empty());
        }
    }
}

#[test]
fn subsecond_bounds_are_truncated_consistently() {
    let start = Utc.timestamp_opt(100, 900_000_000).single().unwrap_or_default();
    let end = Utc.timestamp_opt(200, 100_000_000).single().unwrap_or_default();
    let windows = plan_windows(start, end, Duration::from_secs(60));
    let secs: Vec<(i64, i64)> = windows
        .iter()
        .map(|w| (w.start.timestamp(), w.end.timestamp()))
        .collect();
    assert_eq!(secs, vec![(100, 160), (160, 200)]);
}

#[test]
fn one_second_windows_do_not_split() {
    let start = Utc.timestamp_opt(100, 0).single().unwrap_or_default();
    assert_eq!(
        Window {
            start,
            end: start + TimeDelta::seconds(1)
        }
        .halves(),
        None
    );
}
