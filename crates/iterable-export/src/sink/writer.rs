//! [`WriterSink`]: exactly-once into a writer that cannot take anything back.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use super::columns::{self, Columns, Fit};
use super::offload::{self, Offload};
use crate::{Error, Result, Sink, Window};

/// Writes records to any [`Write`] (standard output, a pipe, a socket) that cannot take back
/// what it wrote. Each window attempt is spooled to an anonymous temporary file, and copied to
/// the writer only when the window commits; an aborted attempt is dropped. So every record
/// reaches the writer exactly once, memory stays bounded, and the temporary disk space is one
/// window's records. The spool and the copy run on a thread of the sink's own: a slow reader
/// of the writer holds back this export only, never the async runtime.
///
/// CSV windows with fewer columns than the first, or in another order, have their records
/// rewritten into the first window's columns. A window that brings new columns fails with an
/// error: what was written cannot be rewritten with a wider header (a [`FileSink`](crate::FileSink)
/// can).
///
/// ```
/// # futures::executor::block_on(async {
/// use iterable_export::{Sink, Window, WriterSink};
///
/// let window = Window::ALL;
/// let mut sink = WriterSink::new(Vec::new())?;
/// sink.begin(&window).await?;
/// sink.record(b"{\"a\":1}").await?;
/// sink.abort(&window).await?; // a failed attempt: nothing reaches the writer
/// sink.begin(&window).await?;
/// sink.record(b"{\"a\":1}").await?;
/// sink.commit(&window, 1).await?;
/// assert_eq!(sink.finish().await?, b"{\"a\":1}\n");
/// # Ok::<(), iterable_export::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct WriterSink<W: Write + Send + 'static> {
    out: Offload<Spooled<W>>,
    columns: Columns,
    header_pending: Option<Vec<u8>>,
    remap: Option<Vec<Option<usize>>>,
}

/// The spool file and the writer, owned by the writer thread.
struct Spooled<W> {
    spool: File,
    out: Option<W>,
}

impl<W: Write + Send + 'static> offload::Target for Spooled<W> {
    fn write_batch(&mut self, bytes: &[u8]) -> Result<()> {
        self.spool
            .write_all(bytes)
            .map_err(|e| Error::io("cannot write the spool file", e))
    }
}

impl<W: Write> Spooled<W> {
    fn reset(&mut self) -> Result<()> {
        self.spool
            .set_len(0)
            .and_then(|()| self.spool.seek(SeekFrom::Start(0)))
            .map(drop)
            .map_err(|e| Error::io("cannot truncate the spool file", e))
    }

    fn writer(&mut self) -> Result<&mut W> {
        self.out
            .as_mut()
            .ok_or_else(|| Error::io("cannot write the output", std::io::Error::other("the writer was taken")))
    }

    /// Copies the spooled window (after its header, if it is the first) to the writer, and
    /// gives the header back.
    fn publish(&mut self, header: Option<Vec<u8>>) -> Result<Option<Vec<u8>>> {
        let out_err = |e| Error::io("cannot write the output", e);
        self.spool
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("cannot read the spool file", e))?;
        let Spooled { spool, out } = self;
        let out = out
            .as_mut()
            .ok_or_else(|| out_err(std::io::Error::other("the writer was taken")))?;
        if let Some(header) = &header {
            out.write_all(header).map_err(out_err)?;
            out.write_all(b"\n").map_err(out_err)?;
        }
        std::io::copy(spool, out).map_err(out_err)?;
        out.flush().map_err(out_err)?;
        self.reset()?;
        Ok(header)
    }
}

impl<W: Write + Send + 'static> WriterSink<W> {
    /// Wraps a writer. Wrap it in a `BufWriter` if it is not buffered.
    ///
    /// # Errors
    /// [`Error::Io`] when the temporary spool file or the writer thread cannot be created.
    pub fn new(out: W) -> Result<Self> {
        let spool = tempfile::tempfile().map_err(|e| Error::io("cannot create a temporary spool file", e))?;
        Ok(WriterSink {
            out: Offload::spawn("spool", Spooled { spool, out: Some(out) })?,
            columns: Columns::default(),
            header_pending: None,
            remap: None,
        })
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing fails.
    pub async fn finish(mut self) -> Result<W> {
        let out =
            self.out
                .call(|spooled| {
                    spooled
                        .writer()?
                        .flush()
                        .map_err(|e| Error::io("cannot write the output", e))?;
                    spooled.out.take().ok_or_else(|| {
                        Error::io("cannot write the output", std::io::Error::other("the writer was taken"))
                    })
                })
                .await;
        self.out.close().await;
        out
    }

    /// Writes `bytes` straight to the writer, after every window committed so far, and flushes
    /// it: for what a consumer needs between windows (a protocol message before the first
    /// window or after a commit). The spool is not touched: records of an attempt in progress
    /// still reach the writer only when their window commits, after these bytes.
    ///
    /// # Errors
    /// [`Error::Io`] when writing or flushing fails.
    pub async fn write_unspooled(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.out
            .call(move |spooled| {
                let out = spooled.writer()?;
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("cannot write the output", e))
            })
            .await
    }

    async fn reset(&mut self) -> Result<()> {
        self.header_pending = None;
        self.remap = None;
        self.out.discard();
        self.out.call(Spooled::reset).await
    }
}

impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    async fn begin(&mut self, _window: &Window) -> Result<()> {
        self.reset().await
    }

    async fn header(&mut self, header: &[u8]) -> Result<()> {
        match self.columns.fit(header)? {
            Fit::First => self.header_pending = Some(header.to_vec()),
            Fit::Same => {}
            Fit::Remap(map) => self.remap = Some(map),
            Fit::Grow { header, .. } => {
                return Err(Error::Decode {
                    line: 1,
                    offset: 0,
                    message: format!(
                        "this window's CSV columns add to those already written to the output (the header would \
                         become {}); a stream cannot be rewritten with the new columns — export into a file \
                         (--output DIR), or fix the columns with only_fields",
                        String::from_utf8_lossy(&header)
                    ),
                });
            }
        }
        Ok(())
    }

    async fn record(&mut self, record: &[u8]) -> Result<()> {
        if let Some(map) = &self.remap {
            let mut aligned = Vec::with_capacity(record.len() + map.len());
            columns::remap(record, map, &mut aligned)?;
            return self.out.write(&aligned).await;
        }
        self.out.write(record).await?;
        self.out.write(b"\n").await
    }

    async fn commit(&mut self, _window: &Window, _records: u64) -> Result<()> {
        let header = self.header_pending.take();
        if let Some(header) = self.out.call(move |spooled| spooled.publish(header)).await? {
            self.columns.accept(&header)?;
        }
        self.remap = None;
        Ok(())
    }

    async fn abort(&mut self, _window: &Window) -> Result<()> {
        self.reset().await
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_window as window;
    use super::*;

    #[tokio::test]
    async fn writer_sink_emits_only_committed_windows_and_one_header() -> Result<()> {
        let w = window();
        let mut sink = WriterSink::new(Vec::new())?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"1,2").await?;
        sink.abort(&w).await?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"1,2").await?;
        sink.record(b"3,4").await?;
        sink.commit(&w, 2).await?;
        sink.begin(&w).await?;
        sink.header(b"a,b").await?;
        sink.record(b"5,6").await?;
        sink.commit(&w, 1).await?;
        // Fewer columns, another order: aligned to the first window's.
        sink.begin(&w).await?;
        sink.header(b"b").await?;
        sink.record(b"7").await?;
        sink.commit(&w, 1).await?;
        // New columns cannot be added to what a stream already got.
        sink.begin(&w).await?;
        assert!(
            matches!(sink.header(b"a,c").await, Err(Error::Decode { message, .. }) if message.contains("header would become a,b,c"))
        );
        sink.abort(&w).await?;
        assert_eq!(sink.finish().await?, b"a,b\n1,2\n3,4\n5,6\n,7\n");
        Ok(())
    }

    #[tokio::test]
    async fn unspooled_bytes_go_out_at_once_and_never_among_an_attempts_records() -> Result<()> {
        let w = window();
        let mut sink = WriterSink::new(Vec::new())?;
        sink.write_unspooled(b"before\n".to_vec()).await?;
        sink.begin(&w).await?;
        sink.record(b"1").await?;
        // Mid-attempt: written before the attempt's records, which wait for the commit.
        sink.write_unspooled(b"between\n".to_vec()).await?;
        sink.record(b"2").await?;
        sink.commit(&w, 2).await?;
        sink.write_unspooled(b"after\n".to_vec()).await?;
        sink.begin(&w).await?;
        sink.record(b"3").await?;
        sink.abort(&w).await?;
        assert_eq!(sink.finish().await?, b"before\nbetween\n1\n2\nafter\n");
        Ok(())
    }

    /// A writer that blocks until another task on the same single-threaded runtime opens its
    /// gate: with the copy on the runtime thread this deadlocks (the gate's 10 s limit then fails
    /// the write); with the copy on the sink's own thread the other task runs and the commit
    /// completes.
    #[test]
    fn a_blocked_writer_does_not_block_the_runtime() -> Result<()> {
        struct Gate {
            opened: Option<std::sync::mpsc::Receiver<()>>,
            out: Vec<u8>,
        }
        impl Write for Gate {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if let Some(gate) = self.opened.take() {
                    gate.recv_timeout(std::time::Duration::from_secs(10))
                        .map_err(|_| std::io::Error::other("the runtime was blocked: nobody opened the gate"))?;
                }
                self.out.extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("runtime", e))?;
        runtime.block_on(async {
            let (open, opened) = std::sync::mpsc::channel();
            let w = window();
            let mut sink = WriterSink::new(Gate {
                opened: Some(opened),
                out: Vec::new(),
            })?;
            sink.begin(&w).await?;
            sink.record(b"1").await?;
            let opener = tokio::spawn(async move { open.send(()).is_ok() });
            sink.commit(&w, 1).await?;
            assert!(opener.await.unwrap_or(false), "the opener task ran");
            assert_eq!(sink.finish().await?.out, b"1\n");
            Ok(())
        })
    }

    /// A writer that fails: the error reaches the caller of `commit`, naming the output.
    #[tokio::test]
    async fn a_failing_writer_fails_the_commit() -> Result<()> {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let w = window();
        let mut sink = WriterSink::new(Broken)?;
        sink.begin(&w).await?;
        sink.record(b"1").await?;
        match sink.commit(&w, 1).await {
            Err(Error::Io { context, source }) => {
                assert_eq!(context, "cannot write the output");
                assert_eq!(source.kind(), std::io::ErrorKind::BrokenPipe);
            }
            other => panic!("expected the writer's error, got {other:?}"),
        }
        Ok(())
    }
}
