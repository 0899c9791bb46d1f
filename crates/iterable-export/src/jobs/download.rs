//! Downloading one job file from its pre-signed URL into a spool file, checked complete before
//! any record of it is handed on.
//!
//! The URL is on another host: the request goes through the client's download client, which
//! never carries the API key. An expired URL (403 with an S3-style "Request has expired" body)
//! is replaced by listing its page again. While the bytes are written to the spool file they are
//! decoded by the same decoders as a `data.json` body, so a file cut mid-body (a transport error,
//! or a clean end inside a record) is detected and downloaded again.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use super::JobCounters;
use super::job::{JobFile, list_page};
use crate::decode::ByteStream;
use crate::{Client, CsvRecords, Error, Format, Lines, Result};

/// How many times in a row one file's URL is refreshed before giving up.
const MAX_REFRESHES: u32 = 5;
/// How much of an error body from the file host is read.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// A completely downloaded file, in a temporary file removed when this is dropped.
pub(crate) struct Spooled {
    pub(crate) name: String,
    pub(crate) path: tempfile::TempPath,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    /// Its place among the window's spool files (`spool.rs`), given back when it is dropped.
    pub(crate) room: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Spooled {
    /// The file's bytes as a body, read in chunks.
    pub(crate) async fn body(&self) -> Result<ByteStream> {
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| Error::io(format!("cannot read the downloaded job file {}", self.name), e))?;
        let name = self.name.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .map_err(move |e| Error::io(format!("cannot read the downloaded job file {name}"), e));
        Ok(Box::pin(stream))
    }
}

enum Failure {
    /// The URL expired: list its page again.
    Expired,
    Other(Error),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Other(err)
    }
}

/// Downloads `file` of job `job_id` into a temporary file in `dir`, retrying cut bodies and
/// transient errors with the client's retry policy and refreshing an expired URL.
pub(crate) async fn download(
    client: &Client,
    job_id: i64,
    mut file: JobFile,
    format: Format,
    dir: &Path,
) -> Result<Spooled> {
    let policy = client.retry_policy();
    let counters = &client.jobs_shared().counters;
    let (mut failures, mut refreshes) = (0u32, 0u32);
    loop {
        match attempt(client, &file, format, dir).await {
            Ok(spooled) => {
                JobCounters::add(&counters.files_downloaded, 1);
                JobCounters::add(&counters.bytes_downloaded, spooled.bytes);
                return Ok(spooled);
            }
            Err(Failure::Expired) => {
                refreshes += 1;
                if refreshes > MAX_REFRESHES {
                    return Err(Error::Job {
                        job_id,
                        message: format!(
                            "the URL of its file {} was still expired after {MAX_REFRESHES} fresh listings; \
                             check the computer's clock",
                            file.name
                        ),
                    });
                }
                tracing::info!(job_id, file = %file.name, "the file's URL expired; listing its page again");
                file = refresh(client, job_id, &file).await?;
            }
            Err(Failure::Other(err)) => {
                if !err.is_transient() || failures >= policy.max_retries {
                    return Err(err);
                }
                failures += 1;
                JobCounters::add(&counters.downloads_retried, 1);
                let delay = policy.backoff(failures);
                tracing::warn!(job_id, file = %file.name, error = %err, delay_ms = delay.as_millis() as u64, "downloading the job's file again");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A fresh URL for `file`: its page listed again.
async fn refresh(client: &Client, job_id: i64, file: &JobFile) -> Result<JobFile> {
    let page = list_page(client, job_id, file.page_after.clone()).await?;
    JobCounters::add(&client.jobs_shared().counters.urls_refreshed, 1);
    page.files
        .into_iter()
        .find(|f| f.file == file.name)
        .map(|f| JobFile {
            name: f.file,
            url: f.url,
            page_after: file.page_after.clone(),
        })
        .ok_or_else(|| Error::Job {
            job_id,
            message: format!(
                "its file {} is no longer listed, so its expired URL cannot be replaced",
                file.name
            ),
        })
}

/// One download: the body goes to a new temporary file and through the format's decoder.
async fn attempt(client: &Client, file: &JobFile, format: Format, dir: &Path) -> std::result::Result<Spooled, Failure> {
    let downloads = &client.jobs_shared().downloads;
    let timeouts = client.timeouts();
    let response = downloads.get(&file.url).send().await.map_err(|err| {
        // The message names the host, never the signature in the query.
        crate::error::transport_error(err.without_url(), timeouts)
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        let mut body = response.bytes_stream();
        let mut buf = Vec::new();
        while buf.len() < MAX_ERROR_BODY {
            match body.next().await {
                Some(Ok(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY - buf.len())]),
                Some(Err(_)) | None => break,
            }
        }
        let text = String::from_utf8_lossy(&buf);
        if status == 403 && text.to_ascii_lowercase().contains("request has expired") {
            return Err(Failure::Expired);
        }
        return Err(Failure::Other(Error::Api {
            status,
            code: None,
            msg: Some(format!("downloading the job file {} failed", file.name)),
            params: None,
            excerpt: crate::error::excerpt(&buf),
        }));
    }
    let temp = tempfile::Builder::new()
        .prefix(".iterable-export-job-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot create a temporary file in {}", dir.display()), e))?;
    let (std_file, path) = temp.into_parts();
    let out = Arc::new(tokio::sync::Mutex::new(tokio::io::BufWriter::with_capacity(
        256 * 1024,
        tokio::fs::File::from_std(std_file),
    )));
    let writer = out.clone();
    let name = file.name.clone();
    let body =
        crate::error::body_stream(Box::pin(response.bytes_stream()), timeouts).then(move |chunk: Result<Bytes>| {
            let (writer, name) = (writer.clone(), name.clone());
            async move {
                let chunk = chunk?;
                writer
                    .lock()
                    .await
                    .write_all(&chunk)
                    .await
                    .map_err(|e| Error::io(format!("cannot write the job file {name} to a temporary file"), e))?;
                Ok(chunk)
            }
        });
    let max = client.max_line_length();
    let (records, bytes) = match format {
        Format::Ndjson => {
            let mut lines = Lines::from_stream(body, max);
            let mut records = 0u64;
            while lines.try_next().await?.is_some() {
                records += 1;
            }
            (records, lines.bytes_read())
        }
        Format::Csv => {
            let mut rows = CsvRecords::from_stream(body, max).await?;
            let mut records = 0u64;
            while rows.try_next().await?.is_some() {
                records += 1;
            }
            (records, rows.bytes_read())
        }
    };
    let mut out = out.lock().await;
    out.flush().await.map_err(|e| {
        Error::io(
            format!("cannot write the job file {} to a temporary file", file.name),
            e,
        )
    })?;
    Ok(Spooled {
        name: file.name.clone(),
        path,
        bytes,
        records,
        room: None,
    })
}
