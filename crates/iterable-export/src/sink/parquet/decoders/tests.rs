//! Tests of the decoder pipeline: order, generations, a worker that panics.

use super::*;
use crate::Event;

fn chunk(days: u32) -> Vec<u8> {
    (1..=days)
        .map(|d| format!("{{\"createdAt\":\"2024-01-{d:02} 10:00:00 +00:00\",\"messageId\":\"m{d}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn a_worker_keeps_the_encoders_of_a_few_days_only() -> Result<()> {
    let columns = Arc::new(Columns::of::<Event>());
    let mut encoders = BTreeMap::new();
    let outcome = decode_chunk(&chunk(3), &mut encoders, &columns, Partition::Day)?;
    let decoded = outcome.map_err(|(_, m)| Error::InvalidRequest(m))?;
    assert_eq!((decoded.records, decoded.parts.len(), encoders.len()), (3, 3, 3));
    let days = u32::try_from(super::super::files::MAX_OPEN).expect("small") + 1;
    let outcome = decode_chunk(&chunk(days), &mut encoders, &columns, Partition::Day)?;
    let decoded = outcome.map_err(|(_, m)| Error::InvalidRequest(m))?;
    assert_eq!(decoded.parts.len(), days as usize);
    assert!(decoded.parts.iter().all(|(_, batch)| batch.num_rows() == 1));
    assert_eq!(encoders.len(), 0, "more days than files open: none kept");
    Ok(())
}

#[test]
fn a_chunk_with_a_bad_line_reports_its_index_and_keeps_nothing() -> Result<()> {
    let columns = Arc::new(Columns::of::<Event>());
    let mut encoders = BTreeMap::new();
    let mut lines = chunk(2);
    lines.extend_from_slice(b"[1]\n");
    let outcome = decode_chunk(&lines, &mut encoders, &columns, Partition::Day)?;
    match outcome {
        Err((index, message)) => {
            assert_eq!(index, 2);
            assert_eq!(
                message,
                "not a JSON object: invalid type: sequence, expected an Iterable event (a JSON object) at line 1 \
                 column 0"
            );
        }
        Ok(_) => panic!("a line that is not an object fails the chunk"),
    }
    assert_eq!(encoders.len(), 0);
    Ok(())
}

/// A stand-in decoder: a chunk `"<n>"` decodes to `n` records; `"panic"` panics; `"wait"` waits until the test's
/// gate opens (a result held back in its worker), then decodes to 1,000 records.
fn fake(gate: Arc<std::sync::Barrier>) -> MakeDecode {
    Arc::new(move || {
        let gate = gate.clone();
        Box::new(move |chunk: &[u8]| {
            let text = std::str::from_utf8(chunk).expect("UTF-8");
            let records = match text {
                "panic" => panic!("a decoder bug (this panic is the test's)"),
                "wait" => {
                    gate.wait();
                    1000
                }
                n => n.parse().expect("a number"),
            };
            Ok(Ok(Decoded {
                records,
                parts: Vec::new(),
                mismatched: 0,
            }))
        })
    })
}

fn records(outcome: Option<Outcome>) -> Option<u64> {
    outcome.map(|o| o.map(|d| d.records).unwrap_or(u64::MAX))
}

#[test]
fn outcomes_come_back_in_the_order_sent() -> Result<()> {
    let mut decoders = Decoders::with(2, fake(Arc::new(std::sync::Barrier::new(1))))?;
    let mut taken = Vec::new();
    for n in 1..=5u64 {
        taken.extend(records(decoders.send(n.to_string().into_bytes())?));
    }
    while let Some(outcome) = decoders.take()? {
        taken.extend(records(Some(outcome)));
    }
    assert_eq!(taken, [1, 2, 3, 4, 5]);
    Ok(())
}

/// A worker panics while another still holds the outcome of the same attempt: the attempt fails, and the next one
/// takes back exactly its own outcomes (the held one, of the failed attempt, is dropped), from a replaced worker.
#[test]
fn after_a_worker_panics_no_outcome_of_the_failed_attempt_reaches_the_next() -> Result<()> {
    let gate = Arc::new(std::sync::Barrier::new(2));
    let mut decoders = Decoders::with(2, fake(gate.clone()))?;
    // Attempt 1: worker 0 panics; worker 1 holds its outcome until the gate opens.
    assert!(decoders.send(b"panic".to_vec())?.is_none());
    assert!(decoders.send(b"wait".to_vec())?.is_none());
    match decoders.take() {
        Err(Error::Io { context, .. }) => assert_eq!(context, "a Parquet decoder thread stopped"),
        other => panic!("expected the worker gone, got {:?}", other.map(records)),
    }
    assert_eq!(decoders.generation(), 1);
    assert_eq!(
        records(decoders.take()?),
        None,
        "nothing of the failed attempt is in flight"
    );
    // Attempt 2: chunk 7 to worker 0's replacement, 8 to worker 1, behind the held outcome of attempt 1.
    assert!(decoders.send(b"7".to_vec())?.is_none());
    assert!(decoders.send(b"8".to_vec())?.is_none());
    gate.wait();
    assert_eq!(records(decoders.take()?), Some(7));
    assert_eq!(
        records(decoders.take()?),
        Some(8),
        "the held outcome (1,000 records) is dropped"
    );
    assert_eq!(records(decoders.take()?), None);
    // And the pipeline goes on as before.
    for n in [1, 2, 3] {
        assert!(records(decoders.send(n.to_string().into_bytes())?).is_none_or(|r| r == n - 2));
    }
    assert_eq!(records(decoders.take()?), Some(2));
    assert_eq!(records(decoders.take()?), Some(3));
    assert_eq!(decoders.generation(), 1);
    Ok(())
}

/// A failure found while draining (as `Files::discard` does) leaves nothing in flight either.
#[test]
fn a_panic_found_by_try_take_fails_the_generation_too() -> Result<()> {
    let gate = Arc::new(std::sync::Barrier::new(2));
    let mut decoders = Decoders::with(2, fake(gate.clone()))?;
    decoders.send(b"panic".to_vec())?;
    decoders.send(b"wait".to_vec())?;
    let err = loop {
        match decoders.try_take() {
            Ok(None) => std::thread::yield_now(),
            Ok(Some(outcome)) => panic!("unexpected outcome {:?}", records(Some(outcome))),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("a Parquet decoder thread stopped"), "{err}");
    assert_eq!(records(decoders.try_take()?), None);
    gate.wait();
    decoders.send(b"5".to_vec())?;
    decoders.send(b"6".to_vec())?;
    assert_eq!(records(decoders.take()?), Some(5));
    assert_eq!(records(decoders.take()?), Some(6));
    assert_eq!(records(decoders.take()?), None);
    Ok(())
}

/// Columns empty in some rows: their `NULL`s are appended in runs, before the next value and at the end of the
/// chunk; an encoder kept for the next chunk starts that chunk clean.
#[test]
fn columns_get_their_nulls_in_the_rows_that_lack_a_value() -> Result<()> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    let columns = Arc::new(Columns::of::<Event>());
    let mut encoders = BTreeMap::new();
    let t = r#""createdAt":"2024-01-01 10:00:00 +00:00""#;
    let chunks = [
        format!(
            "{{{t}}}\n{{{t},\"campaignId\":5}}\n{{{t}}}\n{{{t}}}\n{{{t},\"campaignId\":6,\"city\":\"P\"}}\n{{{t}}}"
        ),
        format!("{{{t},\"city\":\"Q\"}}\n{{{t},\"campaignId\":7}}"),
    ];
    let mut got = Vec::new();
    for chunk in &chunks {
        let decoded = decode_chunk(chunk.as_bytes(), &mut encoders, &columns, Partition::Day)?
            .map_err(|(_, m)| Error::InvalidRequest(m))?;
        assert_eq!(decoded.parts.len(), 1);
        let batch = &decoded.parts[0].1;
        let campaign = batch.column_by_name("campaignId").expect("campaignId");
        let campaign: Vec<Option<i64>> = campaign.as_primitive::<Int64Type>().iter().collect();
        let city: Vec<Option<String>> = batch
            .column_by_name("city")
            .expect("city")
            .as_string::<i32>()
            .iter()
            .map(|c| c.map(str::to_owned))
            .collect();
        let extra = batch.column_by_name(super::super::schema::EXTRA).expect("_extra");
        assert_eq!(extra.null_count(), batch.num_rows());
        got.push((campaign, city));
    }
    assert_eq!(
        got,
        [
            (
                vec![None, Some(5), None, None, Some(6), None],
                vec![None, None, None, None, Some("P".to_owned()), None]
            ),
            (vec![None, Some(7)], vec![Some("Q".to_owned()), None]),
        ]
    );
    Ok(())
}
