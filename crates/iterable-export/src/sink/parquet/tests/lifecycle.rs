//! A window's files over commits, aborts, resumes and incremental runs: what is visible when.

use super::*;

#[tokio::test]
async fn abort_leaves_nothing_visible_and_small_row_groups_cut_the_file() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let options = ParquetOptions::default().with_max_row_group(100, 128 << 20);
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, options)?;
    let w = window(day(1, 0), day(2, 0));
    let lines = mock_lines("emailSend", w.start, w.end);
    sink.begin(&w).await?;
    // Enough for several chunks of lines to be decoded, and their file started.
    for line in lines.iter().cycle().take(lines.len() * 40) {
        sink.record(line.as_bytes()).await?;
    }
    sink.out.call(|_| Ok(())).await?;
    let root = sink.path().to_owned();
    assert_eq!(
        visible(&root),
        Vec::<String>::new(),
        "nothing visible before the commit"
    );
    assert_eq!(all_files(&root).iter().filter(|f| f.ends_with(".tmp")).count(), 1);
    sink.abort(&w).await?;
    assert_eq!(all_files(&root), ["_lock"]);
    write_window(&mut sink, &w, &lines).await?;
    assert_eq!(sink.commits(), 1);
    let file = root.join("dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet");
    let metadata = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).map_err(io("open"))?)
        .map_err(io("parquet"))?
        .metadata()
        .clone();
    assert_eq!(metadata.num_row_groups(), lines.len().div_ceil(100));
    assert_eq!(metadata.file_metadata().num_rows() as usize, lines.len());
    Ok(())
}

#[tokio::test]
async fn resume_removes_an_unfinished_window_and_an_unrecorded_commit() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let (first, second, third) = (
        window(day(1, 0), day(2, 0)),
        window(day(2, 0), day(3, 0)),
        window(day(3, 0), day(4, 0)),
    );
    let root = {
        let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
        write_window(&mut sink, &first, &mock_lines("emailSend", first.start, first.end)).await?;
        // The checkpoint records 1 commit; the second commit happens, but the process dies before its checkpoint.
        write_window(&mut sink, &second, &mock_lines("emailSend", second.start, second.end)).await?;
        sink.begin(&third).await?;
        let lines = mock_lines("emailSend", third.start, third.end);
        for line in lines.iter().cycle().take(lines.len() * 40) {
            sink.record(line.as_bytes()).await?;
        }
        sink.out.call(|_| Ok(())).await?;
        let root = sink.path().to_owned();
        let ParquetSink { out, _lock, .. } = sink;
        // As a killed process: the thread's files are dropped without cleaning (the Drop impl cleans, so forget).
        std::mem::forget(out);
        drop(_lock);
        root
    };
    assert_eq!(visible(&root).len(), 2);
    assert!(all_files(&root).iter().any(|f| f.ends_with(".tmp")));
    let sink = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 1)?;
    assert_eq!(
        visible(&root),
        ["dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet"]
    );
    assert_eq!(all_files(&root).iter().filter(|f| f.ends_with(".tmp")).count(), 0);
    // The second commit's line is gone from `_committed` with its files.
    assert_eq!(
        std::fs::read_to_string(root.join("_committed")).map_err(io("_committed"))?,
        "{\"commit\":1,\"files\":[\"dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet\"]}\n"
    );
    assert_eq!(sink.commits(), 1);
    drop(sink);
    Ok(())
}

#[tokio::test]
async fn an_incremental_run_rereading_a_window_does_not_replace_its_file() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let w = window(day(1, 0), day(2, 0));
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    write_window(&mut sink, &w, &mock_lines("emailSend", w.start, w.end)).await?;
    sink.finish().await?;
    let mut sink = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 1)?;
    let late = [r#"{"createdAt":"2024-01-01 23:59:59 +00:00","messageId":"late"}"#.to_owned()];
    write_window(&mut sink, &w, &late).await?;
    assert_eq!(sink.commits(), 2);
    let root = sink.finish().await?;
    assert_eq!(
        visible(&root),
        [
            "dt=2024-01-01/part-20240101T000000Z-20240102T000000Z-1.parquet",
            "dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn csv_input_is_refused_and_a_second_export_of_the_directory_too() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    match sink.header(b"email,createdAt").await {
        Err(Error::InvalidRequest(msg)) => assert!(msg.contains("not CSV"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match sink.record(b"{\"a\":\n1}").await {
        Err(Error::InvalidRequest(msg)) => assert!(msg.contains("must not contain a line break"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default()) {
        Err(Error::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock),
        other => panic!("expected a lock error, got {other:?}"),
    }
    assert!(ParquetSink::check(dir.path(), DataType::EmailSend).is_err());
    drop(sink);
    ParquetSink::check(dir.path(), DataType::EmailSend)?;
    Ok(())
}

#[tokio::test]
async fn a_line_that_is_not_json_fails_the_window_with_its_number() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    let w = window(day(1, 0), day(2, 0));
    sink.begin(&w).await?;
    sink.record(br#"{"createdAt":"2024-01-01 05:00:00 +00:00"}"#).await?;
    sink.record(b"{not json").await?;
    match sink.commit(&w, 2).await {
        Err(Error::Decode { line, message, .. }) => {
            assert_eq!(line, 2);
            assert!(message.contains("not a JSON object"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn an_incremental_run_removes_success_until_it_finishes() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let w = window(day(1, 0), day(2, 0));
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    write_window(&mut sink, &w, &mock_lines("emailSend", w.start, w.end)).await?;
    let root = sink.finish().await?;
    assert!(root.join("_SUCCESS").exists());
    // The next run is in progress (and may die): the directory is not a complete export until it finishes.
    let mut sink = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 1)?;
    assert!(!root.join("_SUCCESS").exists());
    let next = window(day(2, 0), day(3, 0));
    write_window(&mut sink, &next, &mock_lines("emailSend", next.start, next.end)).await?;
    assert!(!root.join("_SUCCESS").exists());
    sink.finish().await?;
    assert!(root.join("_SUCCESS").exists());
    Ok(())
}

#[tokio::test]
async fn continuing_with_another_partition_is_refused_and_changes_nothing() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let w = window(day(1, 0), day(2, 0));
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    write_window(&mut sink, &w, &mock_lines("emailSend", w.start, w.end)).await?;
    let root = sink.finish().await?;
    let before = all_files(&root);
    let flat = ParquetOptions::default().with_partition(Partition::None);
    let err = ParquetSink::resume(dir.path(), DataType::EmailSend, flat, 1).expect_err("another layout");
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    assert!(err.to_string().contains("partitioned by day"), "{err}");
    assert_eq!(all_files(&root), before);

    // And the other way round.
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, flat)?;
    write_window(&mut sink, &w, &mock_lines("emailSend", w.start, w.end)).await?;
    let root = sink.finish().await?;
    let err =
        ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 1).expect_err("another layout");
    assert!(err.to_string().contains("not partitioned"), "{err}");
    assert_eq!(visible(&root), ["part-20240101T000000Z-20240102T000000Z.parquet"]);
    // The same layout continues.
    drop(ParquetSink::resume(dir.path(), DataType::EmailSend, flat, 1)?);
    Ok(())
}

#[tokio::test]
async fn an_aborted_window_leaves_no_empty_partition_directory() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let (first, second) = (window(day(1, 0), day(2, 0)), window(day(2, 0), day(4, 0)));
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    write_window(&mut sink, &first, &mock_lines("emailSend", first.start, first.end)).await?;
    sink.begin(&second).await?;
    for line in mock_lines("emailSend", second.start, second.end) {
        sink.record(line.as_bytes()).await?;
    }
    sink.out.call(|files| files.drain()).await?;
    let root = sink.path().to_owned();
    assert!(root.join("dt=2024-01-03").is_dir());
    sink.abort(&second).await?;
    let mut dirs: Vec<String> = std::fs::read_dir(&root)
        .map_err(io("read_dir"))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["dt=2024-01-01"]);
    drop(sink);
    Ok(())
}

/// Records of 12 days (more than `MAX_OPEN`) in two passes, each day its own chunk: every day's file is closed
/// before the day comes again, so each day gets two files.
async fn write_days_twice(sink: &mut ParquetSink, w: &Window, days: &[Vec<String>]) -> Result<()> {
    sink.begin(w).await?;
    for half in 0..2 {
        for lines in days {
            let part = &lines[half * lines.len() / 2..(half + 1) * lines.len() / 2];
            for line in part {
                sink.record(line.as_bytes()).await?;
            }
            // The day's lines become one chunk, written before the next day's.
            sink.out.call(|files| files.drain()).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_window_over_many_days_keeps_at_most_max_open_files_and_reopens_days() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let mut sink = ParquetSink::create(dir.path(), DataType::EmailSend, ParquetOptions::default())?;
    let root = sink.path().to_owned();
    let w = window(day(1, 0), day(13, 0));
    let days: Vec<Vec<String>> = (1..=12)
        .map(|d| mock_lines("emailSend", day(d, 0), day(d + 1, 0)))
        .collect();
    assert!(days.iter().all(|lines| lines.len() >= 2));
    // An aborted attempt leaves nothing, the files it had closed included.
    write_days_twice(&mut sink, &w, &days).await?;
    let tmps = all_files(&root).into_iter().filter(|f| f.ends_with(".tmp")).count();
    assert_eq!(
        tmps, 24,
        "12 first files, closed before their day came again, and 12 second ones"
    );
    assert_eq!(sink.out.call(|files| Ok(files.peak_open)).await?, files::MAX_OPEN);
    sink.abort(&w).await?;
    assert_eq!(all_files(&root), ["_lock"]);

    write_days_twice(&mut sink, &w, &days).await?;
    sink.commit(&w, 0).await?;
    assert_eq!(sink.out.call(|files| Ok(files.peak_open)).await?, files::MAX_OPEN);
    let stem = "part-20240101T000000Z-20240113T000000Z";
    let expected: Vec<String> = (1..=12)
        .flat_map(|d| {
            [
                format!("dt=2024-01-{d:02}/{stem}-1.parquet"),
                format!("dt=2024-01-{d:02}/{stem}.parquet"),
            ]
        })
        .collect();
    assert_eq!(visible(&root), expected);
    // Every record read back exactly once, in the file of its day; the first file of a day has the first half.
    let mut rebuilt: Vec<(String, String)> = Vec::new();
    for file in visible(&root) {
        for batch in read_batches(&root.join(&file)) {
            rebuilt.extend(
                rebuild(&batch)
                    .into_iter()
                    .map(|r| (file.clone(), r["messageId"].clone())),
            );
        }
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for (d, lines) in days.iter().enumerate() {
        let half = lines.len() / 2;
        for (i, line) in lines[..half * 2].iter().enumerate() {
            let suffix = if i < half { "" } else { "-1" };
            let file = format!("dt=2024-01-{:02}/{stem}{suffix}.parquet", d + 1);
            wanted.push((file, original(line)["messageId"].clone()));
        }
    }
    rebuilt.sort();
    wanted.sort();
    assert_eq!(rebuilt, wanted);
    let mut ids: Vec<&String> = wanted.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), wanted.len(), "the mock's message ids are unique");
    let log = std::fs::read_to_string(root.join("_committed")).map_err(io("_committed"))?;
    assert_eq!(log.lines().count(), 1);
    let pending: serde_json::Value = serde_json::from_str(&log).map_err(io("json"))?;
    assert_eq!(pending["commit"], 1);
    let mut listed: Vec<String> = pending["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("a name").replace('\\', "/"))
        .collect();
    listed.sort();
    assert_eq!(listed, expected);

    // The next window dies half written; its checkpoint never recorded the commit above: a resume removes both,
    // suffixed names included.
    let next = window(day(13, 0), day(25, 0));
    let later: Vec<Vec<String>> = (13..=24)
        .map(|d| mock_lines("emailSend", day(d, 0), day(d + 1, 0)))
        .collect();
    write_days_twice(&mut sink, &next, &later).await?;
    assert_eq!(all_files(&root).iter().filter(|f| f.ends_with("-1.tmp")).count(), 12);
    let ParquetSink { out, _lock, .. } = sink;
    std::mem::forget(out);
    drop(_lock);
    let sink = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 0)?;
    assert_eq!(all_files(&root), ["_lock"]);
    drop(sink);
    Ok(())
}
