//! Iterable's time formats: `2021-04-14 16:25:55 +00:00` read by a fast parser for the exact form Iterable writes,
//! every other accepted form (other offsets, RFC 3339, no zone) by chrono, and times written back in Iterable's form.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A time in Iterable's form: `2021-04-14 16:25:55 +00:00` (with `.fff`, `.ffffff` or `.fffffffff` when the time
/// has a fraction of a second).
pub(crate) struct IterableTime(pub(crate) DateTime<Utc>);

impl fmt::Display for IterableTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} +00:00", self.0.format("%Y-%m-%d %H:%M:%S%.f"))
    }
}

#[inline]
fn digits<const N: usize>(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b.get(..N)? {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Iterable's exact form `YYYY-MM-DD HH:MM:SS ±hh:mm`, without chrono's general parser. It accepts
/// a subset of what chrono's `%Y-%m-%d %H:%M:%S%.f %:z` accepts, with the same result (a property
/// test checks it); anything else is left to [`parse_time`]'s chrono fallback.
#[inline]
fn parse_iterable_fast(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let b = s.as_bytes();
    if b.len() != 26 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b' ' || b[23] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits::<4>(b)? as i32, digits::<2>(&b[5..])?, digits::<2>(&b[8..])?)?;
    let time = date.and_hms_opt(digits::<2>(&b[11..])?, digits::<2>(&b[14..])?, digits::<2>(&b[17..])?)?;
    // As chrono: minutes up to 59, and an offset of less than a day (hours up to 23).
    let (offset_hours, offset_minutes) = (digits::<2>(&b[21..])?, digits::<2>(&b[24..])?);
    if offset_hours > 23 || offset_minutes > 59 {
        return None;
    }
    let offset = i64::from(offset_hours * 60 + offset_minutes) * 60;
    let offset = match b[20] {
        b'+' => offset,
        b'-' => -offset,
        _ => return None,
    };
    let utc = time.and_utc() - chrono::TimeDelta::seconds(offset);
    Some((utc, offset == 0 && b[20] == b'+'))
}

/// Iterable's time format for chrono, the first one [`parse_time`] tries.
const ITERABLE_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f %:z";

/// Parses a time in any accepted text form; `true` when `s` is exactly how [`IterableTime`] writes it.
pub(crate) fn parse_time(s: &str) -> Option<(DateTime<Utc>, bool)> {
    parse_iterable_fast(s).or_else(|| parse_time_chrono(s))
}

/// Parses a time as Iterable writes it or as a person types one, in UTC: Iterable's
/// `2021-04-14 16:25:55 +00:00` (any offset, optional fraction), RFC 3339
/// (`2021-04-14T16:25:55Z`), `2021-04-14 16:25:55` (UTC), or a date, `2021-04-14` (midnight
/// UTC). The one parser of the client side: records' times, and the CLI's `--start`/`--end`.
/// (The mock server keeps its own on purpose: it shares no logic with the client.)
///
/// ```
/// use iterable_export::parse_iterable_time;
///
/// let t = parse_iterable_time("2021-04-14 16:25:55 +02:00").unwrap();
/// assert_eq!(t.to_rfc3339(), "2021-04-14T14:25:55+00:00");
/// assert_eq!(parse_iterable_time("2021-04-14").map(|t| t.to_rfc3339()), Some("2021-04-14T00:00:00+00:00".into()));
/// assert_eq!(parse_iterable_time("yesterday"), None);
/// ```
pub fn parse_iterable_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    parse_time(s).map(|(t, _)| t).or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    })
}

/// [`parse_time`] with chrono's parsers only: what the fast path must agree with.
fn parse_time_chrono(s: &str) -> Option<(DateTime<Utc>, bool)> {
    let t = DateTime::parse_from_str(s, ITERABLE_TIME_FORMAT)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z"))
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .ok()?;
    Some((t, IterableTime(t).to_string() == s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = |s: &str| parse_time(s).map(|(t, c)| (t.to_rfc3339(), c));
        assert_eq!(
            t("2021-04-14 16:25:55 +00:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), true))
        );
        assert_eq!(
            t("2021-04-14 18:25:55 +02:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 -00:00"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55.250 +00:00"),
            Some(("2021-04-14T16:25:55.250+00:00".into(), true))
        );
        assert_eq!(
            t("2021-04-14T16:25:55Z"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55"),
            Some(("2021-04-14T16:25:55+00:00".into(), false))
        );
        assert_eq!(t("2021-02-30 16:25:55 +00:00"), None);
        assert_eq!(t("yesterday"), None);
    }

    #[test]
    fn offsets_out_of_chrono_range_are_refused() {
        let t = |s: &str| parse_time(s).map(|(t, c)| (t.to_rfc3339(), c));
        for bad in [
            "2021-04-14 16:25:55 +99:99",
            "2021-04-14 16:25:55 +24:00",
            "2021-04-14 16:25:55 -24:00",
            "2021-04-14 16:25:55 +00:60",
            "2021-04-14 16:25:55 +23:60",
        ] {
            assert_eq!(parse_iterable_fast(bad), None, "{bad}");
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(
            t("2021-04-14 16:25:55 +23:59"),
            Some(("2021-04-13T16:26:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 -23:59"),
            Some(("2021-04-15T16:24:55+00:00".into(), false))
        );
        assert_eq!(
            t("2021-04-14 16:25:55 +14:00"),
            Some(("2021-04-14T02:25:55+00:00".into(), false))
        );
    }

    /// Two digits: mostly in `range`, sometimes anything (out of range, `00`, `99`).
    fn two_digits(range: std::ops::RangeInclusive<u32>) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            12 => range.prop_map(|n| format!("{n:02}")),
            2 => "[0-9]{2}",
            1 => prop_oneof![Just("00".to_owned()), Just("99".to_owned()), Just("60".to_owned()), Just("24".to_owned())],
            1 => "[0-9]{1,3}",
        ]
    }

    /// A separator: mostly `expected`, sometimes another one or none.
    fn separator(expected: &'static str) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            24 => Just(expected.to_owned()),
            1 => prop::sample::select(vec!["-", ":", " ", "T", "/", "", "  ", "\t", "+", "."]).prop_map(str::to_owned),
        ]
    }

    /// Strings near `YYYY-MM-DD HH:MM:SS ±hh:mm`: random digits and out-of-range fields, other
    /// separators and signs, offsets from -99:99 to +99:99, a fraction now and then.
    fn near_iterable_time() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let date = (
            prop_oneof![8 => (1970u32..=2100).prop_map(|y| y.to_string()), 1 => "[0-9]{4}", 1 => "[0-9]{1,5}"],
            separator("-"),
            two_digits(1..=12),
            separator("-"),
            two_digits(1..=31),
        );
        let time = (
            separator(" "),
            two_digits(0..=23),
            separator(":"),
            two_digits(0..=59),
            separator(":"),
            two_digits(0..=59),
            prop_oneof![9 => Just(String::new()), 1 => "\\.[0-9]{0,10}"],
        );
        let offset = (
            separator(" "),
            prop::sample::select(vec!["+", "+", "+", "+", "-", "-", "-", "\u{2212}", "", "Z", " "]),
            two_digits(0..=23),
            separator(":"),
            two_digits(0..=59),
        );
        (
            date,
            time,
            offset,
            prop_oneof![28 => Just(""), 1 => Just(" "), 1 => Just("x")],
        )
            .prop_map(
                |((y, s1, mo, s2, d), (s3, h, s4, mi, s5, sec, frac), (s6, sign, oh, s7, om), tail)| {
                    format!("{y}{s1}{mo}{s2}{d}{s3}{h}{s4}{mi}{s5}{sec}{frac}{s6}{sign}{oh}{s7}{om}{tail}")
                },
            )
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]

        /// The fast path only ever answers what chrono's parser of the same format answers, and
        /// with it `parse_time` as a whole is exactly the chrono parsers. On the exact fixed layout
        /// the fast path also accepts everything chrono does (but leap seconds, which it leaves to
        /// chrono).
        #[test]
        fn fast_path_agrees_with_chrono(s in near_iterable_time()) {
            let chrono = DateTime::parse_from_str(&s, ITERABLE_TIME_FORMAT).ok().map(|t| t.with_timezone(&Utc));
            let fast = parse_iterable_fast(&s);
            if let Some((t, canonical)) = fast {
                proptest::prop_assert_eq!(Some(t), chrono, "{:?}", s);
                proptest::prop_assert_eq!(canonical, IterableTime(t).to_string() == s, "{:?}", s);
            }
            proptest::prop_assert_eq!(parse_time(&s), parse_time_chrono(&s), "{:?}", s);
            let b = s.as_bytes();
            let fixed_layout = b.len() == 26
                && b.iter().enumerate().all(|(i, c)| match i {
                    4 | 7 => *c == b'-',
                    10 | 19 => *c == b' ',
                    13 | 16 | 23 => *c == b':',
                    20 => *c == b'+' || *c == b'-',
                    _ => c.is_ascii_digit(),
                });
            if fixed_layout && &s[17..19] != "60" {
                proptest::prop_assert_eq!(fast.map(|(t, _)| t), chrono, "{:?}", s);
            }
        }
    }
}
