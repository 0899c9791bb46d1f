//! `_committed`: a resume that finds files of counted commits gone refuses to continue.

use super::*;

/// Three commits (the second without records), finished: returns the data type's directory.
async fn three_commits(dir: &Path) -> Result<PathBuf> {
    let mut sink = ParquetSink::create(dir, DataType::EmailSend, ParquetOptions::default())?;
    let (first, second, third) = (
        window(day(1, 0), day(2, 0)),
        window(day(2, 0), day(3, 0)),
        window(day(3, 0), day(4, 0)),
    );
    write_window(&mut sink, &first, &mock_lines("emailSend", first.start, first.end)).await?;
    write_window(&mut sink, &second, &[]).await?;
    write_window(&mut sink, &third, &mock_lines("emailSend", third.start, third.end)).await?;
    assert_eq!(sink.commits(), 3);
    sink.finish().await
}

const FIRST: &str = "dt=2024-01-01/part-20240101T000000Z-20240102T000000Z.parquet";
const THIRD: &str = "dt=2024-01-03/part-20240103T000000Z-20240104T000000Z.parquet";

/// The context of an [`Error::Io`] of `kind`.
fn io_kind(result: Result<impl std::fmt::Debug>, kind: std::io::ErrorKind) -> String {
    match result {
        Err(Error::Io { context, source }) => {
            assert_eq!(source.kind(), kind, "{context}");
            context
        }
        other => panic!("expected a {kind:?} error, got {other:?}"),
    }
}

fn not_found(result: Result<impl std::fmt::Debug>) -> String {
    io_kind(result, std::io::ErrorKind::NotFound)
}

#[tokio::test]
async fn every_commit_has_its_line_in_committed_even_without_files() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let root = three_commits(dir.path()).await?;
    assert_eq!(
        std::fs::read_to_string(root.join("_committed")).map_err(io("_committed"))?,
        format!(
            "{{\"commit\":1,\"files\":[\"{FIRST}\"]}}\n{{\"commit\":2,\"files\":[]}}\n\
             {{\"commit\":3,\"files\":[\"{THIRD}\"]}}\n"
        )
    );
    assert_eq!(visible(&root), [FIRST, THIRD]);
    ParquetSink::check_resume(&root, 3)?;
    Ok(())
}

#[tokio::test]
async fn a_resume_refuses_when_a_counted_commits_file_is_gone_and_changes_nothing() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let root = three_commits(dir.path()).await?;
    std::fs::remove_file(root.join(THIRD)).map_err(io("remove"))?;
    let before = all_files(&root);
    let expected = format!(
        "{}: 1 file of the 3 commits to continue from is missing ({THIRD}); continuing would leave a hole in the \
         export: restore what is missing, or start the export over from the beginning",
        root.display()
    );
    assert_eq!(not_found(ParquetSink::check_resume(&root, 3)), expected);
    let resumed = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 3);
    assert_eq!(not_found(resumed), expected);
    assert_eq!(all_files(&root), before, "nothing changed, _SUCCESS included");
    assert!(before.contains(&"_SUCCESS".to_owned()));

    // A checkpoint of 2 commits does not count the third: its file being gone is no hole.
    ParquetSink::check_resume(&root, 2)?;
    // Both files gone: both named.
    std::fs::remove_file(root.join(FIRST)).map_err(io("remove"))?;
    let context = not_found(ParquetSink::check_resume(&root, 3));
    assert!(
        context.contains(&format!(
            "2 files of the 3 commits to continue from are missing ({FIRST}, {THIRD})"
        )),
        "{context}"
    );
    Ok(())
}

#[tokio::test]
async fn a_resume_refuses_without_the_record_of_its_commits() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let root = three_commits(dir.path()).await?;
    let log = root.join("_committed");
    // More commits counted than the log knows.
    let context = not_found(ParquetSink::check_resume(&root, 4));
    assert!(
        context.starts_with(&format!("{} lists 3 of the 4 commits to continue from;", log.display())),
        "{context}"
    );
    std::fs::remove_file(&log).map_err(io("remove"))?;
    let context = not_found(ParquetSink::resume(
        dir.path(),
        DataType::EmailSend,
        ParquetOptions::default(),
        3,
    ));
    assert!(
        context.starts_with(&format!(
            "{} is gone: it lists the files of the 3 commits",
            log.display()
        )),
        "{context}"
    );
    // A checkpoint of no commit needs no record.
    ParquetSink::check_resume(&root, 0)?;
    // A log changed by hand is refused with its name.
    std::fs::write(&log, "not json\n").map_err(io("write"))?;
    let context = io_kind(ParquetSink::check_resume(&root, 1), std::io::ErrorKind::InvalidData);
    assert!(
        context.starts_with(&format!("{} is not what this program writes", log.display())),
        "{context}"
    );
    Ok(())
}

#[tokio::test]
async fn a_line_cut_short_by_a_crash_is_dropped_by_the_resume() -> Result<()> {
    let dir = tempfile::tempdir().map_err(io("tempdir"))?;
    let root = three_commits(dir.path()).await?;
    let log = root.join("_committed");
    let whole = std::fs::read(&log).map_err(io("read"))?;
    let mut cut = whole.clone();
    cut.extend_from_slice(b"{\"commit\":4,\"files\":[\"dt=2024-01-0");
    std::fs::write(&log, &cut).map_err(io("write"))?;
    let mut sink = ParquetSink::resume(dir.path(), DataType::EmailSend, ParquetOptions::default(), 3)?;
    assert_eq!(std::fs::read(&log).map_err(io("read"))?, whole);
    let fourth = window(day(4, 0), day(5, 0));
    write_window(&mut sink, &fourth, &[]).await?;
    sink.finish().await?;
    let mut expected = whole;
    expected.extend_from_slice(b"{\"commit\":4,\"files\":[]}\n");
    assert_eq!(std::fs::read(&log).map_err(io("read"))?, expected);
    ParquetSink::check_resume(&root, 4)?;
    Ok(())
}
