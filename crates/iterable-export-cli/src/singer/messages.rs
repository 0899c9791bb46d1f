//! Singer messages on standard output: SCHEMA and STATE lines, and the sink that wraps each
//! exported record, as received, into a RECORD line.
//!
//! Records go through a [`WriterSink`]: each window is spooled (a small buffer, then a temporary
//! file) and reaches standard output only when the window is complete, so a retried or split
//! window never emits a record twice. SCHEMA and STATE lines are written between windows.

use std::io::{BufWriter, Stdout};

use chrono::{SecondsFormat, Utc};
use iterable_export::{Error, Sink, Window, WriterSink};
use serde_json::{Value, json};

/// Standard output, buffered, behind the spool.
pub(crate) type Out = WriterSink<BufWriter<Stdout>>;

/// Opens standard output for messages.
///
/// # Errors
/// [`Error::Io`] when the spool file or its thread cannot be created.
pub(crate) fn stdout() -> iterable_export::Result<Out> {
    WriterSink::new(BufWriter::with_capacity(1 << 20, std::io::stdout()))
}

/// A message as one line.
fn line(message: &Value) -> Vec<u8> {
    let mut bytes = message.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// `{"type":"SCHEMA",...}`.
pub(crate) fn schema(stream: &str, schema: Value, key_properties: &[&str], replication_key: &str) -> Vec<u8> {
    line(&json!({
        "type": "SCHEMA",
        "stream": stream,
        "schema": schema,
        "key_properties": key_properties,
        "bookmark_properties": [replication_key],
    }))
}

/// `{"type":"STATE","value":...}`.
pub(crate) fn state(value: Value) -> Vec<u8> {
    line(&json!({ "type": "STATE", "value": value }))
}

/// Wraps each record into a RECORD message: `{"type":"RECORD","stream":…,"time_extracted":…,
/// "record":<the record's bytes as received>}`. The record is checked to be one JSON object,
/// and copied, never re-serialized: unknown fields, their order and every number's digits stay
/// as Iterable sent them.
pub(crate) struct Records {
    pub(crate) out: Out,
    stream: String,
    /// The message up to the record, for the current attempt (`time_extracted` is when the
    /// attempt began).
    prefix: Vec<u8>,
    message: Vec<u8>,
    line: u64,
}

impl Records {
    /// Wraps records of `stream` into `out`.
    pub(crate) fn new(out: Out, stream: &str) -> Records {
        Records {
            out,
            stream: stream.to_owned(),
            prefix: Vec::new(),
            message: Vec::new(),
            line: 0,
        }
    }
}

impl Sink for Records {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        let extracted = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.prefix = format!(
            r#"{{"type":"RECORD","stream":{},"time_extracted":"{extracted}","record":"#,
            Value::from(self.stream.as_str())
        )
        .into_bytes();
        self.line = 0;
        self.out.begin(window).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.line += 1;
        let object = record.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if let Err(reason) = if object {
            serde_json::from_slice::<serde::de::IgnoredAny>(record)
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            Err("not a JSON object".into())
        } {
            let excerpt = String::from_utf8_lossy(&record[..record.len().min(80)]).into_owned();
            return Err(Error::Decode {
                line: self.line,
                offset: 0,
                message: format!(
                    "{}: the server sent a record that is not one JSON object ({reason}): {excerpt:?}",
                    self.stream
                ),
            });
        }
        self.message.clear();
        self.message.extend_from_slice(&self.prefix);
        self.message.extend_from_slice(record);
        self.message.push(b'}');
        self.out.record(&self.message).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        self.out.commit(window, records).await
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.out.abort(window).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_wrapped_as_received_and_non_objects_refused() -> iterable_export::Result<()> {
        let window = Window::ALL;
        let mut records = Records::new(stdout()?, "email_send");
        records.begin(&window).await?;
        let raw = br#"{"n":1.0e2,"big":12345678901234567890,"s":"zo\u00eb","x":{"y":[1]}}"#;
        records.record(raw).await?;
        assert!(
            records
                .message
                .starts_with(br#"{"type":"RECORD","stream":"email_send","time_extracted":""#)
        );
        assert!(records.message.ends_with(&[&br#""record":"#[..], raw, b"}"].concat()));
        let message: Value = serde_json::from_slice(&records.message).map_err(|e| Error::Decode {
            line: 1,
            offset: 0,
            message: e.to_string(),
        })?;
        assert_eq!(message["record"]["x"], json!({"y": [1]}));
        for bad in [&b"[1]"[..], b"{\"a\":", b"{} {}"] {
            match records.record(bad).await {
                Err(Error::Decode { message, .. }) => {
                    assert!(message.starts_with("email_send: the server sent a record that is not one JSON object"))
                }
                other => panic!("{:?} was accepted: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
        records.abort(&window).await
    }
}
