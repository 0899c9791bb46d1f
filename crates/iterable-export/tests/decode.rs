//! Streaming decoders: any chunking gives the same result, limits, error positions, bodies cut
//! off inside a record.
//!
//! Over 500 lines on purpose: one corpus (the constants below) drives every decoder's tests, and
//! the chunking property tests, the limits and the cut-off tests all compare against it.

use bytes::Bytes;
use futures::executor::block_on;
use futures::{Stream, StreamExt, stream};
use iterable_export::{CsvRecords, Error, Event, Lines, Records, Result, UserEvents};
use proptest::prelude::*;

/// A realistic NDJSON body: CRLF and LF, blank lines, 2-, 3- and 4-byte UTF-8, escapes, no final newline.
const NDJSON: &str = concat!(
    r#"{"email":"zoë@example.com","userId":"u1","createdAt":"2021-04-14 16:25:55 +00:00","campaignId":123,"templateId":456,"messageId":"0a1b","transactionalData":{"items":[{"name":"水筒 750ml","price":12.5}]},"itblInternal":{"documentCreatedAt":"2021-04-14 16:25:55 +00:00"}}"#,
    "\r\n\r\n",
    r#"{"email":"b@example.com","createdAt":"2021-04-14T16:25:55Z","eventName":"見た 🔦","dataFields":{"emoji":"😀🎉","quote":"say \"hi\"\\","list":[1,2,{"a":null}]}}"#,
    "\n\n\n",
    r#"{"_type":"emailUnSubscribe","email":"c@example.com","createdAt":1618417555000,"itblInternal.emailDomain":"example.com","profile.tier":"gold"}"#,
    "\n",
    r#"{"email":"d@example.com","campaignId":"789","transactionalData":"{\"orderId\":\"A-1\"}","userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"}"#,
);

const CSV: &str = concat!(
    "email,createdAt,note,city\r\n",
    "zoë@example.com,2021-04-14 16:25:55 +00:00,\"hello, \"\"world\"\"\",Zürich\r\n",
    "\r\n",
    "b@example.com,2021-04-14 16:25:56 +00:00,\"two\r\nlines 😀\",東京\n",
    "c@example.com,,,\n",
    "d@example.com,2021-04-14 16:25:57 +00:00,\"🎉\",\"\"",
);

/// `body` cut at `cuts` (positions, any order), each piece in its own allocation.
fn chunked(body: &[u8], cuts: &[usize]) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.push(0);
    cuts.push(body.len());
    cuts.sort_unstable();
    cuts.dedup();
    let pieces: Vec<Result<Bytes>> = cuts
        .windows(2)
        .map(|w| Ok(Bytes::copy_from_slice(&body[w[0]..w[1]])))
        .collect();
    stream::iter(pieces)
}

fn one_chunk(body: &[u8]) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    chunked(body, &[])
}

fn lines(body: impl Stream<Item = Result<Bytes>> + Send + 'static, max: usize) -> Vec<Result<Bytes>> {
    block_on(Lines::from_stream(body, max).collect())
}

fn ok_lines(body: impl Stream<Item = Result<Bytes>> + Send + 'static) -> Vec<Bytes> {
    lines(body, 1 << 20).into_iter().map(|l| l.expect("line")).collect()
}

fn events(body: impl Stream<Item = Result<Bytes>> + Send + 'static) -> Vec<Event> {
    block_on(
        Records::<Event>::from_stream(body, 1 << 20)
            .map(|e| e.expect("event"))
            .collect(),
    )
}

type CsvOut = (Vec<String>, Vec<(Vec<String>, Bytes, u64, u64)>);

fn csv(body: impl Stream<Item = Result<Bytes>> + Send + 'static) -> CsvOut {
    block_on(async {
        let records = CsvRecords::from_stream(body, 1 << 20).await.expect("header");
        let headers = records.headers().to_vec();
        let rows = records
            .map(|r| {
                let r = r.expect("record");
                (
                    r.iter().map(str::to_owned).collect(),
                    r.raw().clone(),
                    r.line(),
                    r.offset(),
                )
            })
            .collect()
            .await;
        (headers, rows)
    })
}

fn user_events(body: impl Stream<Item = Result<Bytes>> + Send + 'static) -> Vec<Event> {
    block_on(
        UserEvents::from_stream(body, 1 << 20)
            .map(|e| e.expect("event"))
            .collect(),
    )
}

fn wrapped() -> String {
    let events: Vec<&str> = NDJSON.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    format!("{{\r\n  \"events\" : [\r\n    {}\n  ]\n}}\n", events.join(" ,\n    "))
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn lines_do_not_depend_on_chunking(cuts in cuts()) {
        prop_assert_eq!(ok_lines(chunked(NDJSON.as_bytes(), &cuts)), ok_lines(one_chunk(NDJSON.as_bytes())));
    }

    #[test]
    fn records_do_not_depend_on_chunking(cuts in cuts()) {
        prop_assert_eq!(events(chunked(NDJSON.as_bytes(), &cuts)), events(one_chunk(NDJSON.as_bytes())));
    }

    #[test]
    fn csv_does_not_depend_on_chunking(cuts in cuts()) {
        prop_assert_eq!(csv(chunked(CSV.as_bytes(), &cuts)), csv(one_chunk(CSV.as_bytes())));
    }

    #[test]
    fn user_events_do_not_depend_on_chunking(cuts in cuts()) {
        let ndjson = user_events(chunked(NDJSON.as_bytes(), &cuts));
        prop_assert_eq!(&ndjson, &user_events(one_chunk(NDJSON.as_bytes())));
        let body = wrapped();
        prop_assert_eq!(&user_events(chunked(body.as_bytes(), &cuts)), &ndjson);
    }
}

#[test]
fn lines_strip_terminators_and_skip_blank_lines() {
    let got = ok_lines(one_chunk(NDJSON.as_bytes()));
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|l| l.first() == Some(&b'{') && l.last() == Some(&b'}')));
    let mut lines = Lines::from_stream(one_chunk(NDJSON.as_bytes()), 1 << 20);
    let mut numbers = vec![];
    while let Some(l) = block_on(lines.next()) {
        l.expect("line");
        numbers.push(lines.line_number());
    }
    assert_eq!(numbers, [1, 3, 6, 7]);
    assert_eq!(lines.bytes_read(), NDJSON.len() as u64);
}

#[test]
fn the_corpus_decodes_as_expected() {
    let e = events(one_chunk(NDJSON.as_bytes()));
    assert_eq!(e[0].email.as_deref(), Some("zoë@example.com"));
    assert_eq!(e[1].event_name.as_deref(), Some("見た 🔦"));
    assert_eq!(e[2].event_type.as_deref(), Some("emailUnSubscribe"));
    assert_eq!(e[3].campaign_id, Some(789));
    let c = csv(one_chunk(CSV.as_bytes()));
    assert_eq!(c.0, ["email", "createdAt", "note", "city"]);
    assert_eq!(c.1[0].0[2], "hello, \"world\"");
    assert_eq!(c.1[1].0[2], "two\r\nlines 😀");
    assert_eq!(
        &c.1[1].1[..],
        "b@example.com,2021-04-14 16:25:56 +00:00,\"two\r\nlines 😀\",東京".as_bytes()
    );
    assert_eq!(c.1[2].0, ["c@example.com", "", "", ""]);
    assert_eq!(c.1[3].0[3], "");
    // Line numbers and offsets of each record's start.
    let lines: Vec<u64> = c.1.iter().map(|r| r.2).collect();
    assert_eq!(lines, [2, 4, 6, 7]);
    for row in &c.1 {
        assert_eq!(&CSV.as_bytes()[row.3 as usize..][..row.1.len()], &row.1[..]);
    }
}

#[test]
fn line_too_long_at_the_exact_boundary() {
    let max = 10;
    for terminator in ["\n", "\r\n", ""] {
        // Exactly `max` bytes (a JSON value: a last line without a terminator must be one): fine, whatever the
        // chunking.
        let body = format!("\"01234567\"{terminator}");
        for cuts in [vec![], (0..body.len()).collect::<Vec<_>>()] {
            let got: Vec<_> = lines(chunked(body.as_bytes(), &cuts), max)
                .into_iter()
                .map(|l| l.expect("ok"))
                .collect();
            assert_eq!(got, [Bytes::from_static(b"\"01234567\"")]);
        }
        // `max + 1` bytes, after a short line and a blank one: LineTooLong with its number and offset, then the end.
        let body = format!("ab\n\n\"01234567\"X{terminator}");
        for cuts in [vec![], (0..body.len()).collect::<Vec<_>>()] {
            let got = lines(chunked(body.as_bytes(), &cuts), max);
            assert_eq!(got.len(), 2, "{terminator:?} {cuts:?}");
            assert_eq!(got[0].as_ref().expect("first line"), &Bytes::from_static(b"ab"));
            assert!(
                matches!(
                    got[1],
                    Err(Error::LineTooLong {
                        line: 3,
                        offset: 4,
                        max: 10
                    })
                ),
                "{terminator:?}: {:?}",
                got[1]
            );
        }
    }
}

#[test]
fn a_long_line_is_not_buffered_past_the_maximum() {
    // An endless line: the decoder must give up after max + 1 bytes, not read forever.
    let endless = stream::repeat_with(|| Ok(Bytes::from_static(b"xxxxxxxx"))).take(1_000_000);
    let mut lines = Lines::from_stream(endless, 100);
    assert!(matches!(
        block_on(lines.next()),
        Some(Err(Error::LineTooLong {
            line: 1,
            offset: 0,
            max: 100
        }))
    ));
    assert!(lines.bytes_read() <= 120, "{}", lines.bytes_read());
    assert!(block_on(lines.next()).is_none());
}

#[test]
fn decode_errors_carry_line_and_offset_and_end_the_stream() {
    let body = "{\"email\":\"a\"}\r\n\n{\"email\":}\n{\"email\":\"b\"}\n";
    for cuts in [vec![], (0..body.len()).collect::<Vec<_>>()] {
        let got: Vec<_> = block_on(Records::<Event>::from_stream(chunked(body.as_bytes(), &cuts), 1024).collect());
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        match &got[1] {
            Err(Error::Decode { line, offset, message }) => {
                assert_eq!((*line, *offset), (3, 16));
                assert!(message.contains("expected value"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Invalid UTF-8 is a decode error too.
    let got: Vec<_> = block_on(Records::<Event>::from_stream(one_chunk(b"{\"a\":\"\xff\"}\n"), 1024).collect());
    assert!(
        matches!(&got[..], [Err(Error::Decode { line: 1, offset: 0, .. })]),
        "{got:?}"
    );
}

fn transport_error() -> Error {
    Error::Transport {
        message: "connection reset".into(),
        source: None,
    }
}

#[test]
fn body_errors_pass_through_and_end_the_stream() {
    let body = || {
        stream::iter(vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n{\"a\"")),
            Err(transport_error()),
            Ok(Bytes::from_static(b":2}\n")),
        ])
    };
    let got = lines(body(), 1024);
    assert_eq!(got.len(), 2);
    assert!(matches!(&got[1], Err(Error::Transport { message, .. }) if message == "connection reset"));
    let got: Vec<_> = block_on(Records::<Event>::from_stream(body(), 1024).collect());
    assert!(matches!(&got[..], [Ok(_), Err(Error::Transport { .. })]));
    let got: Vec<_> = block_on(UserEvents::from_stream(body(), 1024).collect());
    assert!(matches!(&got[..], [Ok(_), Err(Error::Transport { .. })]));
    let got: Vec<_> = block_on(async {
        let records = CsvRecords::from_stream(
            stream::iter(vec![Ok(Bytes::from_static(b"a,b\n1,2\n3,")), Err(transport_error())]),
            1024,
        )
        .await
        .expect("header");
        records.collect::<Vec<_>>().await
    });
    assert!(matches!(&got[..], [Ok(_), Err(Error::Transport { .. })]), "{got:?}");
}

#[test]
fn records_decode_into_any_type() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Small {
        email: String,
    }
    let body = "{\"email\":\"a\",\"x\":1}\n{\"email\":\"b\"}";
    let got: Vec<Small> = block_on(
        Records::from_stream(one_chunk(body.as_bytes()), 1024)
            .map(|r| r.expect("ok"))
            .collect(),
    );
    assert_eq!(got, [Small { email: "a".into() }, Small { email: "b".into() }]);
}

#[test]
fn csv_header_deserialize_and_limits() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Metric {
        #[serde(rename = "experimentId")]
        experiment_id: i64,
        #[serde(rename = "templateName")]
        template_name: String,
        sends: Option<u64>,
        rate: f64,
        control: bool,
    }
    let body = "\u{feff}experimentId,templateName,sends,rate,control\n12,\"A, B\",100,0.25,true\n13,C,,1,false\n";
    let got: Vec<Metric> = block_on(async {
        let records = CsvRecords::from_stream(chunked(body.as_bytes(), &[1, 2, 5, 30]), 1024)
            .await
            .expect("header");
        assert_eq!(records.headers()[0], "experimentId");
        records.deserialize().map(|m| m.expect("metric")).collect().await
    });
    assert_eq!(
        got[0],
        Metric {
            experiment_id: 12,
            template_name: "A, B".into(),
            sends: Some(100),
            rate: 0.25,
            control: true
        }
    );
    assert_eq!(got[1].sends, None);

    // A bad field is a decode error at that record's line.
    let got: Vec<_> = block_on(async {
        let records = CsvRecords::from_stream(one_chunk(b"experimentId\n1\nx\n"), 1024)
            .await
            .expect("header");
        records.deserialize::<(i64,)>().collect::<Vec<_>>().await
    });
    assert!(
        matches!(
            &got[..],
            [
                Ok((1,)),
                Err(Error::Decode {
                    line: 3,
                    offset: 15,
                    ..
                })
            ]
        ),
        "{got:?}"
    );

    // Record length: max is fine, max + 1 is too long.
    let ok: Vec<_> = block_on(async {
        let records = CsvRecords::from_stream(one_chunk(b"h\r\n0123456789\r\n"), 10)
            .await
            .expect("header");
        records.collect::<Vec<_>>().await
    });
    assert!(matches!(&ok[..], [Ok(r)] if r.get(0) == Some("0123456789")));
    let too_long: Vec<_> = block_on(async {
        let records = CsvRecords::from_stream(chunked(b"h\r\n0123456789X\r\n", &[4, 8]), 10)
            .await
            .expect("header");
        records.collect::<Vec<_>>().await
    });
    assert!(
        matches!(
            &too_long[..],
            [Err(Error::LineTooLong {
                line: 2,
                offset: 3,
                max: 10
            })]
        ),
        "{too_long:?}"
    );

    // An empty body has no header and no records.
    let empty = block_on(CsvRecords::from_stream(one_chunk(b""), 10)).expect("empty");
    assert!(empty.headers().is_empty());
}

#[test]
fn user_events_in_both_forms() {
    let ndjson = user_events(one_chunk(NDJSON.as_bytes()));
    assert_eq!(ndjson.len(), 4);
    assert_eq!(user_events(one_chunk(wrapped().as_bytes())), ndjson);
    assert_eq!(user_events(one_chunk(b"{\"events\":[]}")), []);
    assert_eq!(user_events(one_chunk(b"")), []);
    assert_eq!(user_events(one_chunk(b" \n")), []);

    // A wrapped body cut short is an error, not a silent end.
    let body = wrapped();
    let cut = &body.as_bytes()[..body.rfind("}\n  ]").expect("end of the last event") - 5];
    let got: Vec<_> = block_on(UserEvents::from_stream(one_chunk(cut), 1 << 20).collect());
    assert_eq!(got.len(), 4);
    assert!(matches!(got[3], Err(Error::Decode { .. })), "{:?}", got[3]);

    // Errors in the wrapped form point at the event's line and offset.
    let body = "{\"events\":[\n{\"email\":\"a\"},\n{\"email\":tru}\n]}";
    let got: Vec<_> = block_on(UserEvents::from_stream(one_chunk(body.as_bytes()), 1 << 20).collect());
    assert!(
        matches!(
            &got[..],
            [
                Ok(_),
                Err(Error::Decode {
                    line: 3,
                    offset: 27,
                    ..
                })
            ]
        ),
        "{got:?}"
    );

    // Events longer than the maximum.
    let body = "{\"events\":[{\"email\":\"0123456789\"}]}";
    let got: Vec<_> = block_on(UserEvents::from_stream(one_chunk(body.as_bytes()), 10).collect());
    assert!(
        matches!(
            &got[..],
            [Err(Error::LineTooLong {
                line: 1,
                offset: 11,
                max: 10
            })]
        ),
        "{got:?}"
    );
}

#[test]
fn the_csv_header_is_kept_as_received_across_chunks() -> Result<()> {
    let body = b"\"email, primary\",\"say \"\"hi\"\"\",plain\r\na@x.com,1,2\r\n";
    for cut in 1..body.len() {
        let records = block_on(CsvRecords::from_stream(chunked(body, &[cut]), 1 << 20))?;
        assert_eq!(
            records.header_raw(),
            b"\"email, primary\",\"say \"\"hi\"\"\",plain",
            "cut at {cut}"
        );
        assert_eq!(records.headers(), ["email, primary", "say \"hi\"", "plain"]);
    }
    let empty = block_on(CsvRecords::from_stream(one_chunk(b""), 1 << 20))?;
    assert_eq!(empty.header_raw(), b"");
    assert!(empty.headers().is_empty());
    Ok(())
}

/// Whether an error is the decoders' report of a body that ended inside a record.
fn is_cut_off(err: &Error) -> bool {
    matches!(err, Error::Transport { message, .. } if message.starts_with("the response body ended in the middle of a record"))
        && err.is_transient()
}

/// A connection-delimited body closed early (no length, no error, just the end) at every byte of
/// the corpus: the lines yielded are exactly the complete lines of the prefix, and a prefix that
/// ends inside a record ends the stream with the transient cut-off error instead of yielding it.
#[test]
fn ndjson_cut_at_any_byte_never_yields_a_partial_record() {
    let full = ok_lines(one_chunk(NDJSON.as_bytes()));
    let body = NDJSON.as_bytes();
    let mut cut_reports = 0;
    for cut in 0..=body.len() {
        let prefix = &body[..cut];
        let got = lines(chunked(prefix, &[cut / 2]), 1 << 20);
        // What the prefix holds: its terminated lines, and the unterminated rest.
        let rest_start = prefix.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let rest = prefix[rest_start..]
            .strip_suffix(b"\r")
            .unwrap_or(&prefix[rest_start..]);
        let complete = ok_lines(one_chunk(&prefix[..rest_start]));
        let rest_is_record = !rest.iter().all(u8::is_ascii_whitespace);
        let rest_is_whole = rest_is_record && full.get(complete.len()).is_some_and(|l| &l[..] == rest);
        let (ok, err): (Vec<_>, Vec<_>) = got.into_iter().partition(Result::is_ok);
        let ok: Vec<Bytes> = ok.into_iter().map(|l| l.expect("ok")).collect();
        if rest_is_record && !rest_is_whole {
            cut_reports += 1;
            assert_eq!(ok, complete, "cut at {cut}");
            assert_eq!(err.len(), 1, "cut at {cut}");
            assert!(
                err.iter().all(|e| e.as_ref().err().is_some_and(is_cut_off)),
                "cut at {cut}: {err:?}"
            );
        } else {
            assert!(err.is_empty(), "cut at {cut}: {err:?}");
            let mut expected = complete;
            if rest_is_whole {
                expected.push(Bytes::copy_from_slice(rest));
            }
            assert_eq!(ok, expected, "cut at {cut}");
        }
    }
    // Most positions fall inside a record.
    assert!(cut_reports > body.len() * 9 / 10, "{cut_reports} of {}", body.len());
}

fn csv_result(body: &'static [u8]) -> (usize, Option<Error>) {
    block_on(async {
        let records = CsvRecords::from_stream(one_chunk(body), 1024).await.expect("header");
        let got: Vec<_> = records.collect().await;
        let ok = got.iter().filter(|r| r.is_ok()).count();
        (ok, got.into_iter().find_map(|r| r.err()))
    })
}

/// A CSV body closed early inside its last record: an open quoted field, or an unterminated
/// record with fewer fields than the header, is reported as cut off; a complete final record
/// without a terminator is accepted.
#[test]
fn csv_cut_inside_the_last_record_is_reported() {
    for body in [
        &b"a,b\n1,2\n3"[..],
        b"a,b\n1,2\n3,\"x",
        b"a,b\n1,2\n3,\"x\n",
        b"a,b\n1,2\n3,\"x\"\"",
        b"a,b,c\n1,2,3\n4,5",
    ] {
        let (ok, err) = csv_result(body);
        assert_eq!(ok, 1, "{}", String::from_utf8_lossy(body));
        assert!(
            err.as_ref().is_some_and(is_cut_off),
            "{}: {err:?}",
            String::from_utf8_lossy(body)
        );
    }
    // A body cut inside its header row: the last column name may be cut (`email,crea`).
    for body in [&b"email,crea"[..], b"a,b"] {
        let got = block_on(CsvRecords::from_stream(one_chunk(body), 1024));
        assert!(
            got.as_ref().err().is_some_and(is_cut_off),
            "{}: {:?}",
            String::from_utf8_lossy(body),
            got.map(|r| r.headers().to_vec())
        );
    }
    for (body, records) in [
        (&b"a,b\n1,2\n3,4"[..], 2),
        (b"a,b\n1,2\n3,\"x\"", 2),
        (b"a,b\n1,2\n3,\"x\"\"y\"", 2),
        (b"a,b\n1,2\n", 1),
        (b"a,b\n1,2\n3,4,5\n", 2),
        (b"a,b\n", 0),
        (b"", 0),
    ] {
        let (ok, err) = csv_result(body);
        assert!(err.is_none(), "{}: {err:?}", String::from_utf8_lossy(body));
        assert_eq!(ok, records, "{}", String::from_utf8_lossy(body));
    }
}
