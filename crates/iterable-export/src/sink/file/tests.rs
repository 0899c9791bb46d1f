//! Tests of `FileSink`.

use super::super::test_window as window;
use super::*;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", e))
}

#[tokio::test]
async fn abort_discards_the_attempt_and_finish_renames() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    let mut sink = FileSink::create(&path)?;
    let w = window();
    sink.begin(&w).await?;
    sink.record(b"{\"a\":1}").await?;
    sink.commit(&w, 1).await?;
    sink.begin(&w).await?;
    sink.record(b"{\"b\":2}").await?;
    sink.abort(&w).await?;
    sink.begin(&w).await?;
    sink.record(b"{\"c\":3}").await?;
    sink.commit(&w, 1).await?;
    assert!(!path.exists(), "the final name must not exist before finish");
    assert_eq!(sink.committed_len(), 16);
    let done = sink.finish().await?;
    assert_eq!(read(&done)?, b"{\"a\":1}\n{\"c\":3}\n");
    assert!(!part_path(&path).exists());
    Ok(())
}

#[tokio::test]
async fn resume_truncates_to_the_checkpoint_and_keeps_the_csv_header() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.csv");
    let w = window();
    let committed = {
        let mut sink = FileSink::create(&path)?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"1,2").await?;
        sink.commit(&w, 1).await?;
        sink.begin(&w).await?;
        sink.record(b"3,4").await?;
        // Simulate a crash: what was written reaches the file, but is never committed.
        sink.out.call(|_| Ok(())).await?;
        let len = sink.committed_len();
        sink.out.stop();
        len
    };
    assert_eq!(read(&part_path(&path))?, b"a,b\n1,2\n3,4\n");
    let mut sink = FileSink::resume(&path, Format::Csv, committed)?;
    sink.begin(&w).await?;
    sink.header(b"a,b").await?;
    sink.record(b"5,6").await?;
    sink.commit(&w, 1).await?;
    let done = sink.finish().await?;
    assert_eq!(read(&done)?, b"a,b\n1,2\n5,6\n");
    Ok(())
}

#[tokio::test]
async fn resume_refuses_a_file_shorter_than_the_checkpoint() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    std::fs::write(part_path(&path), b"abc").map_err(|e| Error::io("write", e))?;
    let err = FileSink::resume(&path, Format::Ndjson, 10)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("has 3 bytes but the checkpoint recorded 10"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_second_sink_on_the_same_file_is_refused_and_truncates_nothing() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    let w = window();
    let mut first = FileSink::create(&path)?;
    first.begin(&w).await?;
    first.record(b"{\"a\":1}").await?;
    first.commit(&w, 1).await?;
    let second = FileSink::create(&path);
    assert!(
        matches!(&second, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock),
        "{second:?}"
    );
    let resumed = FileSink::resume(&path, Format::Ndjson, 0);
    assert!(matches!(&resumed, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock));
    assert_eq!(read(&part_path(&path))?, b"{\"a\":1}\n");
    first.finish().await?;
    Ok(())
}

/// More than the background-sync interval, in several windows with an abort between them:
/// the background sync runs (through the writable descriptor) and the file is exact.
#[tokio::test]
async fn background_syncs_over_64_mib_keep_the_file_exact() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("big.ndjson");
    let mut sink = FileSink::create(&path)?;
    let record = vec![b'x'; 1023];
    let w = window();
    let per_window = 30 * 1024;
    for attempt in 0..4 {
        sink.begin(&w).await?;
        for _ in 0..per_window {
            sink.record(&record).await?;
        }
        if attempt == 1 {
            sink.abort(&w).await?;
        } else {
            sink.commit(&w, per_window).await?;
        }
    }
    let expected = 3 * per_window * 1024;
    assert_eq!(sink.committed_len(), expected);
    let done = sink.finish().await?;
    let written = read(&done)?;
    assert_eq!(written.len() as u64, expected);
    assert!(
        written
            .chunks(1024)
            .all(|line| line[..1023] == record[..] && line[1023] == b'\n')
    );
    Ok(())
}

#[tokio::test]
async fn a_lost_final_rename_is_completed() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    std::fs::write(part_path(&path), b"{\"a\":1}\n").map_err(|e| Error::io("write", e))?;
    assert!(
        FileSink::complete_rename(&path, 99).is_err(),
        "a .part of another length is refused"
    );
    assert!(FileSink::complete_rename(&path, 8)?);
    assert_eq!(read(&path)?, b"{\"a\":1}\n");
    assert!(!part_path(&path).exists());
    assert!(!FileSink::complete_rename(&path, 8)?, "nothing left to do");
    // extend continues a `.part` whose rename was lost, too.
    std::fs::rename(&path, part_path(&path)).map_err(|e| Error::io("rename", e))?;
    FileSink::check_extend(&path, 8)?;
    let mut sink = FileSink::extend(&path, Format::Ndjson, 8)?;
    let w = window();
    sink.begin(&w).await?;
    sink.record(b"{\"b\":2}").await?;
    sink.commit(&w, 1).await?;
    sink.finish().await?;
    assert_eq!(read(&path)?, b"{\"a\":1}\n{\"b\":2}\n");
    Ok(())
}

async fn csv_window(sink: &mut FileSink, header: &[u8], records: &[&[u8]]) -> Result<()> {
    let w = window();
    sink.begin(&w).await?;
    sink.header(header).await?;
    for record in records {
        sink.record(record).await?;
    }
    sink.commit(&w, records.len() as u64).await
}

/// Columns that change between windows: one file whose header is the union, every value
/// under its own column (quoted line breaks included).
#[tokio::test]
async fn csv_columns_that_change_between_windows_are_aligned_to_their_union() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("user.csv");
    let mut sink = FileSink::create(&path)?;
    csv_window(
        &mut sink,
        b"email,city",
        &["a@x.io,\"Z\u{fc}rich\nOld Town\"".as_bytes(), b"b@x.io,"],
    )
    .await?;
    csv_window(&mut sink, b"city,email", &[b"Paris,c@x.io"]).await?;
    csv_window(&mut sink, b"email,plan,city", &[b"d@x.io,gold,Rome"]).await?;
    assert!(
        next_path(&path).exists(),
        "the rewritten file waits for the next window"
    );
    csv_window(&mut sink, b"plan", &[b"silver"]).await?;
    assert!(!next_path(&path).exists());
    let len = sink.committed_len();
    let done = sink.finish().await?;
    let expected =
        "email,city,plan\na@x.io,\"Z\u{fc}rich\nOld Town\",\nb@x.io,,\nc@x.io,Paris,\nd@x.io,Rome,gold\n,,silver\n";
    assert_eq!(String::from_utf8_lossy(&read(&done)?), expected);
    assert_eq!(len, expected.len() as u64);
    Ok(())
}

/// A crash after a rewrite with new columns, on either side of the checkpoint: resuming
/// with the length the checkpoint holds continues the file it describes.
#[tokio::test]
async fn a_crash_around_a_column_rewrite_resumes_the_checkpointed_file() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    for checkpointed in [false, true] {
        let path = dir.path().join(format!("user-{checkpointed}.csv"));
        let (before, after) = {
            let mut sink = FileSink::create(&path)?;
            csv_window(&mut sink, b"a,b", &[b"1,2"]).await?;
            let before = sink.committed_len();
            csv_window(&mut sink, b"a,c", &[b"3,4"]).await?;
            let after = sink.committed_len();
            sink.out.stop();
            (before, after)
        };
        // The process dies before the next window: both files are on disk.
        assert!(next_path(&path).exists() && part_path(&path).exists());
        let committed = if checkpointed { after } else { before };
        FileSink::check_resume(&path, committed)?;
        let mut sink = FileSink::resume(&path, Format::Csv, committed)?;
        assert!(!next_path(&path).exists());
        if checkpointed {
            csv_window(&mut sink, b"a,b,c", &[b"5,6,7"]).await?;
            sink.finish().await?;
            assert_eq!(read(&path)?, b"a,b,c\n1,2,\n3,,4\n5,6,7\n");
        } else {
            csv_window(&mut sink, b"a,b", &[b"8,9"]).await?;
            sink.finish().await?;
            assert_eq!(read(&path)?, b"a,b\n1,2\n8,9\n");
        }
    }
    Ok(())
}

/// A power cut after the checkpoint said done but before the rewritten file was renamed.
#[tokio::test]
async fn a_lost_final_rename_of_a_rewritten_file_is_completed() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("user.csv");
    let len = {
        let mut sink = FileSink::create(&path)?;
        csv_window(&mut sink, b"a", &[b"1"]).await?;
        csv_window(&mut sink, b"b", &[b"2"]).await?;
        let len = sink.committed_len();
        sink.out.stop();
        len
    };
    assert!(FileSink::complete_rename(&path, len)?);
    assert_eq!(read(&path)?, b"a,b\n1,\n,2\n");
    assert!(!part_path(&path).exists() && !next_path(&path).exists());
    Ok(())
}

/// The same process reopens an output right after `finish`: the writer thread has closed the
/// file (and released its lock) by then, every time.
#[tokio::test]
async fn an_output_reopens_at_once_after_finish() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    let w = window();
    let mut len = 0;
    for round in 0..30 {
        let mut sink = if round == 0 {
            FileSink::create(&path)?
        } else {
            FileSink::extend(&path, Format::Ndjson, len)?
        };
        sink.begin(&w).await?;
        sink.record(b"{\"a\":1}").await?;
        sink.commit(&w, 1).await?;
        len = sink.committed_len();
        sink.finish().await?;
    }
    assert_eq!(read(&path)?, b"{\"a\":1}\n".repeat(30));
    Ok(())
}

/// An incremental run must not move a finished file over a `.part` that another export is
/// writing.
#[tokio::test]
async fn extend_refuses_a_part_file_another_export_holds() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("out.ndjson");
    std::fs::write(&path, b"{\"old\":1}\n").map_err(|e| Error::io("write", e))?;
    let w = window();
    let mut running = FileSink::create(&path)?;
    running.begin(&w).await?;
    running.record(b"{\"a\":1}").await?;
    running.commit(&w, 1).await?;
    let refused = FileSink::extend(&path, Format::Ndjson, 10);
    assert!(
        matches!(&refused, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock),
        "{refused:?}"
    );
    assert_eq!(read(&path)?, b"{\"old\":1}\n", "the finished file stays");
    running.finish().await?;
    assert_eq!(read(&path)?, b"{\"a\":1}\n");
    Ok(())
}

/// A resume refused because an export is running leaves that export's rewritten file alone.
#[tokio::test]
async fn a_refused_resume_leaves_a_running_exports_rewrite_alone() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("user.csv");
    let mut running = FileSink::create(&path)?;
    csv_window(&mut running, b"a,b", &[b"1,2"]).await?;
    csv_window(&mut running, b"a,c", &[b"3,4"]).await?;
    let refused = FileSink::resume(&path, Format::Csv, 4);
    assert!(
        matches!(&refused, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::WouldBlock),
        "{refused:?}"
    );
    assert!(next_path(&path).exists());
    csv_window(&mut running, b"c", &[b"5"]).await?;
    running.finish().await?;
    assert_eq!(read(&path)?, b"a,b,c\n1,2,\n3,,4\n,,5\n");
    Ok(())
}

/// Killed inside `finish` after a column rewrite, between removing `.part` and renaming
/// `.part.next`: the next run resumes from `.part.next`.
#[tokio::test]
async fn a_kill_inside_finish_after_a_rewrite_resumes() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let path = dir.path().join("user.csv");
    let committed = {
        let mut sink = FileSink::create(&path)?;
        csv_window(&mut sink, b"a,b", &[b"1,2"]).await?;
        csv_window(&mut sink, b"a,c", &[b"3,4"]).await?;
        let len = sink.committed_len();
        sink.out.stop();
        len
    };
    // `finish` removes `.part` first; the process dies before the rename.
    std::fs::remove_file(part_path(&path)).map_err(|e| Error::io("remove", e))?;
    FileSink::check_resume(&path, committed)?;
    let sink = FileSink::resume(&path, Format::Csv, committed)?;
    sink.finish().await?;
    assert_eq!(read(&path)?, b"a,b,c\n1,2,\n3,,4\n");
    Ok(())
}
