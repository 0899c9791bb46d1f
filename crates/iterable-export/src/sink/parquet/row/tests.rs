//! Tests of decoding a line into a row: which column each field's value goes to, and what goes to `_extra`.

use super::*;
use crate::{Event, User};

/// The row of `line` (event columns): its non-`NULL` cells by column name, `_extra`, the day and the values
/// counted as contradicting their column.
struct Decoded<'c> {
    cells: Vec<(&'static str, Cell<'c>)>,
    extra: String,
    day: Option<NaiveDate>,
    mismatched: u64,
}

fn decode_as<'c>(columns: &Columns, line: &'c str) -> Result<Decoded<'c>, LineError> {
    let mut row = Row::new(columns);
    row.decode(columns, line.as_bytes())?;
    Ok(Decoded {
        cells: filled(columns, &row),
        extra: row.extra.clone(),
        day: row.day,
        mismatched: row.mismatched,
    })
}

/// The row's non-`NULL` cells, by column name.
fn filled<'c>(columns: &Columns, row: &Row<'c>) -> Vec<(&'static str, Cell<'c>)> {
    columns
        .columns
        .iter()
        .zip(&row.cells)
        .filter(|(_, cell)| **cell != Cell::Null)
        .map(|(column, cell)| (column.name, cell.clone()))
        .collect()
}

fn decode(line: &str) -> Decoded<'_> {
    decode_as(&Columns::of::<Event>(), line).expect("an object")
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn us(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a time")
        .timestamp_micros()
}

fn s(text: &str) -> Cell<'_> {
    Cell::Str(Cow::Borrowed(text))
}

#[test]
fn fields_go_to_their_typed_columns_and_others_to_extra_as_they_arrived() {
    let d = decode(
        r#"{"createdAt":"2024-01-01 10:00:00 +00:00","email":"zoë@exämple.de","campaignId":9007199254740993,"city":"Kraków","dataFields":{"n":9007199254740993,"f":1.5e300,"z":-0.0,"s":"zoë 🔥 \u00e9"},"huge":1.5e300,"negz":-0.0,"isCustomEvent":false,"itblInternal":null}"#,
    );
    assert_eq!(
        d.cells,
        [
            ("email", s("zoë@exämple.de")),
            ("createdAt", Cell::Time(us("2024-01-01T10:00:00Z"))),
            ("campaignId", Cell::Int(9_007_199_254_740_993)),
            ("itblInternal", Cell::Json("null")),
            ("city", s("Kraków")),
            (
                "dataFields",
                Cell::Json(r#"{"n":9007199254740993,"f":1.5e300,"z":-0.0,"s":"zoë 🔥 \u00e9"}"#)
            ),
            ("isCustomEvent", Cell::Bool(false)),
        ]
    );
    assert_eq!(d.extra, r#"{"huge":1.5e300,"negz":-0.0}"#);
    assert_eq!((d.day, d.mismatched), (date(2024, 1, 1), 0));
}

#[test]
fn contradicting_values_and_nulls_go_to_extra_with_their_original_text() {
    let d = decode(
        r#"{"campaignId":"123","userId":42,"templateId":null,"catalogLookupCount":-0,"isCustomEvent":"yes","contentId":1.50,"channelId":{"b":1,"a":[2]},"hrefIndex":1e2,"messageId":"m"}"#,
    );
    assert_eq!(d.cells, [("messageId", s("m"))]);
    assert_eq!(
        d.extra,
        r#"{"campaignId":"123","userId":42,"templateId":null,"catalogLookupCount":-0,"isCustomEvent":"yes","contentId":1.50,"channelId":{"b":1,"a":[2]},"hrefIndex":1e2}"#
    );
    assert_eq!((d.day, d.mismatched), (None, 7), "a null is no contradiction");
}

#[test]
fn times_fill_their_column_and_keep_a_text_the_column_does_not_rebuild() {
    let d = decode(r#"{"createdAt":"2024-01-01T23:30:00.1234567-01:00"}"#);
    assert_eq!(d.cells, [("createdAt", Cell::Time(us("2024-01-02T00:30:00.123456Z")))]);
    assert_eq!(d.extra, r#"{"createdAt":"2024-01-01T23:30:00.1234567-01:00"}"#);
    assert_eq!((d.day, d.mismatched), (date(2024, 1, 2), 0));
    // Iterable's own form, to the microsecond: the column alone.
    let d = decode(r#"{"createdAt":"2024-01-01 10:00:00.123456 +00:00"}"#);
    assert_eq!(d.cells, [("createdAt", Cell::Time(us("2024-01-01T10:00:00.123456Z")))]);
    assert_eq!((d.extra.as_str(), d.mismatched), ("", 0));
}

/// Epoch milliseconds are no time of the column (its text is a number), but they place the record in its day, as
/// `Event` reads them.
#[test]
fn a_time_as_epoch_milliseconds_is_a_contradiction_that_still_gives_the_day() {
    for (time, day) in [
        ("1704110400000", date(2024, 1, 1)),
        ("1.7041968e12", date(2024, 1, 2)),
        ("-0", date(1970, 1, 1)),
        ("1704110400000.5", None),
        ("9223372036854775808", None),
        ("\"not a time\"", None),
        ("true", None),
    ] {
        let line = format!(r#"{{"createdAt":{time}}}"#);
        let d = decode(&line);
        assert_eq!(d.cells, [], "{line}");
        assert_eq!(d.extra, line, "{line}");
        assert_eq!((d.day, d.mismatched), (day, 1), "{line}");
    }
    let d = decode(r#"{"createdAt":null}"#);
    assert_eq!(
        (d.extra.as_str(), d.day, d.mismatched),
        (r#"{"createdAt":null}"#, None, 0)
    );
}

/// A typed field given twice: the last value only, as `Event` keeps it (the earlier one is neither in `_extra`
/// nor counted); another field given twice fills its column with the first value that fits.
#[test]
fn repeated_fields_keep_what_event_keeps() {
    let d = decode(
        r#"{"campaignId":"x","city":null,"email":"a","city":"A","campaignId":5,"x":1,"email":"b","city":"B","createdAt":"2024-01-02 00:00:00 +00:00","x":2,"createdAt":1704067200000}"#,
    );
    assert_eq!(
        d.cells,
        [("email", s("b")), ("campaignId", Cell::Int(5)), ("city", s("A"))]
    );
    assert_eq!(
        d.extra,
        r#"{"city":null,"x":1,"city":"B","x":2,"createdAt":1704067200000}"#
    );
    assert_eq!((d.day, d.mismatched), (date(2024, 1, 1), 1));
}

#[test]
fn escaped_names_and_strings_are_decoded_and_written_back_escaped() {
    let d = decode(r#"{"ci\u0074y":"Z\u00fcrich","a\"b\u0001":"\ud83d\udd25","email":"\ud83d\udd25","x\/y":"\/"}"#);
    assert_eq!(
        d.cells,
        [
            ("email", Cell::Str(Cow::Owned("🔥".into()))),
            ("city", Cell::Str(Cow::Owned("Zürich".into())))
        ]
    );
    assert_eq!(d.extra, r#"{"a\"b\u0001":"\ud83d\udd25","x/y":"\/"}"#);
}

#[test]
fn a_user_row_has_the_user_columns_and_day() {
    let columns = Columns::of::<User>();
    let line = r#"{"email":"a@b.c","profileUpdatedAt":"2024-01-02 06:00:00 +00:00","itblInternal.documentCreatedAt":"2016-08-02 18:53:45 +00:00","createdAt":"x"}"#;
    let d = decode_as(&columns, line).expect("an object");
    assert_eq!(
        d.cells,
        [
            ("email", s("a@b.c")),
            ("profileUpdatedAt", Cell::Time(us("2024-01-02T06:00:00Z"))),
            ("itblInternal.documentCreatedAt", Cell::Time(us("2016-08-02T18:53:45Z"))),
        ]
    );
    assert_eq!(
        (d.extra.as_str(), d.day, d.mismatched),
        (r#"{"createdAt":"x"}"#, date(2024, 1, 2), 0)
    );
}

#[test]
fn a_line_that_is_not_one_object_is_refused_with_what_is_wrong() {
    let columns = Columns::of::<Event>();
    let refused = |line: &[u8]| Row::new(&columns).decode(&columns, line).expect_err("refused");
    assert_eq!(
        refused(b"[1]"),
        "not a JSON object: invalid type: sequence, expected an Iterable event (a JSON object) at line 1 column 0"
    );
    assert_eq!(
        refused(br#"{"a":1} x"#),
        "not a JSON object: trailing characters at line 1 column 9"
    );
    assert_eq!(
        refused(br#"{"a":tru}"#),
        "not a JSON object: expected ident at line 1 column 9"
    );
    assert_eq!(
        refused(br#"{"campaignId":1,"campaignId":"#),
        "not a JSON object: EOF while parsing a value at line 1 column 29"
    );
    assert_eq!(
        refused(b"{\"a\":\"\xff\"}"),
        "not UTF-8: invalid utf-8 sequence of 1 bytes from index 6"
    );
}

/// A row's buffers are reused: nothing of a line stays in the next one's row.
#[test]
fn each_line_starts_a_clean_row() {
    let columns = Columns::of::<Event>();
    let lines = [
        r#"{"createdAt":"2024-01-01 10:00:00 +00:00","email":"a","x":1,"campaignId":"1"}"#,
        r#"{"messageId":"m"}"#,
    ];
    let mut row = Row::new(&columns);
    row.decode(&columns, lines[0].as_bytes()).expect("an object");
    row.decode(&columns, lines[1].as_bytes()).expect("an object");
    let filled: Vec<&Cell<'_>> = row.cells.iter().filter(|c| **c != Cell::Null).collect();
    assert_eq!(filled, [&s("m")]);
    assert_eq!((row.extra.as_str(), row.day), ("", None));
    assert_eq!(row.mismatched, 1, "counted over the rows");
}

/// Names are compared with the last line's at the same position before they are looked up: lines whose fields
/// come in another order, or other fields, still get each value in its own column.
#[test]
fn field_order_may_change_from_line_to_line() {
    let columns = Columns::of::<Event>();
    let lines = [
        r#"{"email":"a","campaignId":1,"x":"1","city":"P"}"#,
        r#"{"email":"b","campaignId":2,"x":"2","city":"Q"}"#,
        r#"{"campaignId":3,"email":"c","city":"R","x":"3","y":4}"#,
        r#"{"x":"4","email":"d"}"#,
    ];
    let mut row = Row::new(&columns);
    let mut rows = Vec::new();
    for line in lines {
        row.decode(&columns, line.as_bytes()).expect("an object");
        rows.push((filled(&columns, &row), row.extra.clone()));
    }
    assert_eq!(
        rows,
        [
            (
                vec![("email", s("a")), ("campaignId", Cell::Int(1)), ("city", s("P"))],
                r#"{"x":"1"}"#.to_owned()
            ),
            (
                vec![("email", s("b")), ("campaignId", Cell::Int(2)), ("city", s("Q"))],
                r#"{"x":"2"}"#.to_owned()
            ),
            (
                vec![("email", s("c")), ("campaignId", Cell::Int(3)), ("city", s("R"))],
                r#"{"x":"3","y":4}"#.to_owned()
            ),
            (vec![("email", s("d"))], r#"{"x":"4"}"#.to_owned()),
        ]
    );
}
