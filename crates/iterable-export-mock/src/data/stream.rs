//! The records of a window in response order: which days and indexes fall in `[start, end)`
//! (found by binary search, without generating anything), the per-day permutation, and the day
//! prefix of timestamps.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::catalogue::DataType;
use super::generate::generate;
use super::random::mix;
use super::record::Rec;
use super::text::push_2;

const SECS_PER_DAY: i64 = 86_400;

/// What the generator needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataParams {
    pub(crate) seed: u64,
    pub(crate) records_per_day: u64,
    /// First day (days since the Unix epoch) with data.
    pub(crate) first_day: i64,
}

/// Per-day constants.
#[derive(Debug, Clone)]
pub(super) struct DayInfo {
    pub(super) day: i64,
    /// `YYYY-MM-DD ` of the day.
    prefix: [u8; 11],
}

impl DayInfo {
    pub(super) fn new(day: i64) -> Self {
        let date = DateTime::<Utc>::from_timestamp(day * SECS_PER_DAY, 0)
            .map(|d| d.date_naive())
            .unwrap_or(NaiveDate::MIN);
        let mut v = Vec::with_capacity(11);
        let y = date.year().clamp(0, 9999) as u64;
        push_2(&mut v, (y / 100) as u32);
        push_2(&mut v, (y % 100) as u32);
        v.push(b'-');
        push_2(&mut v, date.month());
        v.push(b'-');
        push_2(&mut v, date.day());
        v.push(b' ');
        let mut prefix = [0u8; 11];
        prefix.copy_from_slice(&v);
        DayInfo { day, prefix }
    }

    /// Writes `YYYY-MM-DD HH:MM:SS +00:00` for second `sod` of the day.
    pub(super) fn push_time(&self, buf: &mut Vec<u8>, sod: u32) {
        buf.extend_from_slice(&self.prefix);
        push_2(buf, sod / 3600);
        buf.push(b':');
        push_2(buf, (sod / 60) % 60);
        buf.push(b':');
        push_2(buf, sod % 60);
        buf.extend_from_slice(b" +00:00");
    }
}

/// Second of the day of record `i` of `n`.
pub(super) fn second_of_day(i: u64, n: u64) -> u32 {
    ((u128::from(2 * i + 1) * SECS_PER_DAY as u128) / (2 * u128::from(n))) as u32
}

/// Smallest `i` in `0..=n` with `second_of_day(i) >= sod` (monotone).
fn first_index_at_or_after(sod: i64, n: u64) -> u64 {
    if sod <= 0 {
        return 0;
    }
    if sod >= SECS_PER_DAY {
        return n;
    }
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if i64::from(second_of_day(mid, n)) < sod {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A stride that is coprime with `len`.
fn stride_for(len: u64) -> u64 {
    const PRIMES: [u64; 6] = [1_000_003, 999_983, 104_729, 7_919, 613, 31];
    PRIMES.iter().copied().find(|p| !len.is_multiple_of(*p)).unwrap_or(1)
}

struct DayCursor {
    info: DayInfo,
    lo: u64,
    len: u64,
    k: u64,
    stride: u64,
    offset: u64,
}

/// Produces the records of `[start, end)` for one data type, in response order.
pub(crate) struct RecordStream {
    params: DataParams,
    dt: DataType,
    start: i64,
    end: i64,
    next_day: i64,
    last_day: i64,
    cur: Option<DayCursor>,
    pub(crate) rec: Rec,
}

impl fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordStream")
            .field("dt", &self.dt)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Rounds a timestamp up to whole seconds (records have whole-second timestamps, so
/// `t >= start` ⇔ `t >= ceil(start)` and `t < end` ⇔ `t < ceil(end)`).
fn ceil_secs(t: DateTime<Utc>) -> i64 {
    let s = t.timestamp();
    if t.timestamp_subsec_nanos() > 0 { s + 1 } else { s }
}

impl RecordStream {
    pub(crate) fn new(params: DataParams, dt: DataType, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        let start = ceil_secs(start).max(params.first_day.saturating_mul(SECS_PER_DAY));
        let end = ceil_secs(end);
        let (next_day, last_day) = if params.records_per_day == 0 || end <= start {
            (1, 0)
        } else {
            (start.div_euclid(SECS_PER_DAY), (end - 1).div_euclid(SECS_PER_DAY))
        };
        RecordStream {
            params,
            dt,
            start,
            end,
            next_day,
            last_day,
            cur: None,
            rec: Rec::default(),
        }
    }

    /// Number of records the stream yields in total (cheap: no generation).
    pub(crate) fn total(&self) -> u64 {
        let mut n = 0;
        let mut d = self.next_day;
        while d <= self.last_day {
            let (_, len) = self.day_range(d);
            n += len;
            d += 1;
        }
        n
    }

    /// The CSV columns of the window: the fields that records of the days up to its last one
    /// can carry (a data type whose records gain fields over time has more columns in later
    /// windows), whether or not the window holds records of that day.
    pub(crate) fn columns(&self) -> Vec<&'static str> {
        let last_day = self.end.saturating_sub(1).div_euclid(SECS_PER_DAY);
        let last_day_of_data = last_day.saturating_sub(self.params.first_day);
        self.dt.field_ids_on(last_day_of_data).map(|f| f.name()).collect()
    }

    fn day_range(&self, day: i64) -> (u64, u64) {
        let n = self.params.records_per_day;
        let base = day * SECS_PER_DAY;
        let lo = first_index_at_or_after(self.start - base, n);
        let hi = first_index_at_or_after(self.end - base, n);
        (lo, hi.saturating_sub(lo))
    }

    /// Generates the next record into `self.rec`; false at the end.
    pub(crate) fn advance(&mut self) -> bool {
        loop {
            if let Some(c) = &mut self.cur {
                if c.k < c.len {
                    let j =
                        ((u128::from(c.k) * u128::from(c.stride) + u128::from(c.offset)) % u128::from(c.len)) as u64;
                    let i = c.lo + j;
                    c.k += 1;
                    let info = c.info.clone();
                    generate(&self.params, self.dt, &info, i, None, &mut self.rec);
                    return true;
                }
                self.cur = None;
            }
            if self.next_day > self.last_day {
                return false;
            }
            let day = self.next_day;
            self.next_day += 1;
            self.cur = self.open_day(day);
        }
    }

    /// The cursor over the records of `day` in the window (`None`: the day has none).
    fn open_day(&self, day: i64) -> Option<DayCursor> {
        let (lo, len) = self.day_range(day);
        if len == 0 {
            return None;
        }
        let offset = mix(self.params.seed ^ mix(day as u64 ^ (self.dt.index() << 56))) % len;
        Some(DayCursor {
            info: DayInfo::new(day),
            lo,
            len,
            k: 0,
            stride: stride_for(len),
            offset,
        })
    }

    /// Where the stream is: the next [`RecordStream::advance`] generates the record at this
    /// position. A stream made for the same window and moved there with [`RecordStream::seek`]
    /// goes on with the same records.
    pub(crate) fn position(&self) -> Position {
        match &self.cur {
            Some(c) if c.k < c.len => Position {
                day: c.info.day,
                k: c.k,
            },
            _ => Position {
                day: self.next_day,
                k: 0,
            },
        }
    }

    /// Moves to `pos` (from [`RecordStream::position`] of a stream over the same window).
    pub(crate) fn seek(&mut self, pos: Position) {
        self.cur = None;
        self.next_day = pos.day;
        if pos.day > self.last_day {
            return;
        }
        self.next_day = pos.day + 1;
        self.cur = self.open_day(pos.day).map(|mut c| {
            c.k = pos.k.min(c.len);
            c
        });
    }
}

/// A place in a [`RecordStream`]: step `k` of day `day`'s permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    day: i64,
    k: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_search_matches_timestamps() {
        for n in [1u64, 2, 3, 7, 100, 86_400, 200_000] {
            for sod in [0i64, 1, 59, 3600, 43_200, 86_399] {
                let i = first_index_at_or_after(sod, n);
                if i < n {
                    assert!(i64::from(second_of_day(i, n)) >= sod);
                }
                if i > 0 {
                    assert!(i64::from(second_of_day(i - 1, n)) < sod);
                }
            }
        }
    }

    #[test]
    fn seek_resumes_at_a_position() {
        let params = DataParams {
            seed: 3,
            records_per_day: 7,
            first_day: 19_723,
        };
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
        let window = (t(19_723 * SECS_PER_DAY + 4000), t(19_726 * SECS_PER_DAY + 9000));
        let ids = |s: &mut RecordStream, n: usize| {
            let mut v = Vec::new();
            while v.len() < n && s.advance() {
                let mut line = Vec::new();
                s.rec.write_ndjson(&mut line, &super::super::FieldFilter::All, None);
                v.push(line);
            }
            v
        };
        let mut all = RecordStream::new(params, DataType::EmailSend, window.0, window.1);
        let total = all.total();
        let every = ids(&mut all, usize::MAX);
        assert_eq!(every.len() as u64, total);
        // day 1 from 01:06:40 (all 7, the first at 01:42:51), days 2 and 3, day 4 until 02:30 (one)
        assert_eq!(total, 7 + 7 + 7 + 1);
        for cut in 0..=every.len() {
            let mut a = RecordStream::new(params, DataType::EmailSend, window.0, window.1);
            assert_eq!(ids(&mut a, cut), every[..cut]);
            let pos = a.position();
            let mut b = RecordStream::new(params, DataType::EmailSend, window.0, window.1);
            b.seek(pos);
            assert_eq!(ids(&mut b, usize::MAX), every[cut..], "cut at {cut}");
        }
    }

    #[test]
    fn stride_is_a_permutation() {
        for len in [1u64, 2, 31, 613, 1000, 7919 * 31] {
            let s = stride_for(len);
            let mut seen = vec![false; len as usize];
            for k in 0..len {
                let j = ((u128::from(k) * u128::from(s) + 5) % u128::from(len)) as usize;
                assert!(!seen[j]);
                seen[j] = true;
            }
        }
    }
}
