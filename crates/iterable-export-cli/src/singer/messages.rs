//! Singer messages on standard output: SCHEMA and STATE lines, and the sink that wraps each
//! exported record, as received, into a RECORD line.
//!
//! Records go through a [`WriterSink`]: each window is spooled (a small buffer, then a temporary
//! file) and reaches standard output only when the window is complete, so a retried or split
//! window never emits a record twice. SCHEMA and STATE lines are written between windows.
//!
//! A record is emitted as received, so a typed field may hold a value its schema does not allow
//! (`"campaignId": 1.5`, `"email": 7`): such a window is preceded by a SCHEMA whose field also
//! allows that JSON type, and no record fails a target's validation.

use std::io::{BufWriter, Stdout, Write};

use chrono::{SecondsFormat, Utc};
use iterable_export::{Error, Sink, Window, WriterSink};
use serde::de;
use serde_json::{Value, json};

use super::catalog::Stream;
use super::fields::Deselected;
use super::types::{Check, TYPES, type_bits};

/// Standard output, buffered (a concrete type: the window's copy from the spool file can then
/// go through the kernel).
pub(crate) type Stdio = BufWriter<Stdout>;

/// The output behind the spool: standard output, any writer in tests.
pub(crate) type Out<W = Stdio> = WriterSink<W>;

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
/// as Iterable sent them — less the members of fields the catalog deselects (see
/// [`Deselected::filter_into`]). Writes the stream's SCHEMA, widened before a window whose
/// records hold a type a typed field did not allow.
pub(crate) struct Records<W: Write + Send + 'static = Stdio> {
    pub(crate) out: Out<W>,
    stream: Stream,
    name: String,
    /// The stream's schema, as the catalog gave it.
    schema: Value,
    /// The fields left out of every record.
    deselected: Deselected,
    /// The typed fields: name, and the types the last SCHEMA written allows.
    fields: Vec<(String, u8)>,
    /// The types the current attempt's records need (at least those of `fields`).
    needed: Vec<u8>,
    /// The message up to the record, for the current attempt (`time_extracted` is when the
    /// attempt began).
    prefix: Vec<u8>,
    message: Vec<u8>,
    line: u64,
}

impl<W: Write + Send + 'static> Records<W> {
    /// Wraps records of `stream` into `out`; `schema` is the stream's (see
    /// [`catalog::selected`](super::catalog::selected)).
    pub(crate) fn new(out: Out<W>, stream: Stream, schema: Value) -> Records<W> {
        let fields: Vec<(String, u8)> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, field)| Some((name.clone(), type_bits(field.get("type")?))))
            .collect();
        Records {
            out,
            stream,
            name: stream.name(),
            needed: fields.iter().map(|f| f.1).collect(),
            fields,
            schema,
            deselected: Deselected::default(),
            prefix: Vec::new(),
            message: Vec::new(),
            line: 0,
        }
    }

    /// Leaves `deselected` out of every record (the schema given to [`Records::new`] has no
    /// such field already).
    pub(crate) fn deselecting(mut self, deselected: Deselected) -> Records<W> {
        self.deselected = deselected;
        self
    }

    /// Writes the stream's SCHEMA (with the types widened so far).
    pub(crate) async fn write_schema(&mut self) -> iterable_export::Result<()> {
        let mut schema = self.schema.clone();
        for (name, bits) in &self.fields {
            let Some(types) = schema.pointer_mut(&format!("/properties/{name}/type")) else {
                continue;
            };
            let mut list: Vec<Value> = types.as_array().map_or_else(|| vec![types.clone()], Clone::clone);
            for (i, t) in TYPES.iter().enumerate() {
                if bits & (1 << i) != 0 && type_bits(&Value::Array(list.clone())) & (1 << i) == 0 {
                    list.push((*t).into());
                }
            }
            *types = Value::Array(list);
        }
        let message = self::schema(
            &self.name,
            schema,
            self.stream.key_properties(),
            self.stream.replication_key(),
        );
        self.out.write_unspooled(message).await
    }
}

impl<W: Write + Send + 'static> Sink for Records<W> {
    async fn begin(&mut self, window: &Window) -> iterable_export::Result<()> {
        let extracted = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.prefix = format!(
            r#"{{"type":"RECORD","stream":{},"time_extracted":"{extracted}","record":"#,
            Value::from(self.name.as_str())
        )
        .into_bytes();
        self.line = 0;
        self.needed = self.fields.iter().map(|f| f.1).collect();
        self.out.begin(window).await
    }

    async fn record(&mut self, record: &[u8]) -> iterable_export::Result<()> {
        self.line += 1;
        let object = record.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if let Err(reason) = if object {
            let mut de = serde_json::Deserializer::from_slice(record);
            de::Deserializer::deserialize_map(
                &mut de,
                Check {
                    fields: &self.fields,
                    needed: &mut self.needed,
                },
            )
            .and_then(|()| de.end())
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
                    self.name
                ),
            });
        }
        self.message.clear();
        self.message.extend_from_slice(&self.prefix);
        if self.deselected.is_empty() {
            self.message.extend_from_slice(record);
        } else if self.deselected.filter_into(record, &mut self.message).is_none() {
            // serde_json read it as one object just now: only a bug of the filter lands here.
            return Err(Error::Decode {
                line: self.line,
                offset: 0,
                message: format!("{}: a record could not be filtered of its deselected fields", self.name),
            });
        }
        self.message.push(b'}');
        self.out.record(&self.message).await
    }

    async fn commit(&mut self, window: &Window, records: u64) -> iterable_export::Result<()> {
        if self.fields.iter().zip(&self.needed).any(|(f, needed)| f.1 != *needed) {
            for (field, needed) in self.fields.iter_mut().zip(&self.needed) {
                field.1 = *needed;
            }
            tracing::info!(
                "{}: a record's field holds a type its schema did not allow: the SCHEMA is widened",
                self.name
            );
            // Before the window's records, which reach the output when the window commits.
            self.write_schema().await?;
        }
        self.out.commit(window, records).await
    }

    async fn abort(&mut self, window: &Window) -> iterable_export::Result<()> {
        self.out.abort(window).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use iterable_export::DataType;

    use super::*;

    /// A writer into a buffer the test keeps.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Draft 4's type of a JSON value as Python reads it (`1.0` is a number, not an integer).
    fn draft4_type(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Proves: a record whose typed fields hold types the schema does not allow (a fraction or
    /// a boolean for an integer id, a number for a string) is preceded by a SCHEMA allowing them,
    /// written when its window commits (an aborted attempt writes none), once; every record's
    /// typed fields then have a type the SCHEMA before it allows, and the record is as received.
    #[tokio::test]
    async fn a_type_a_field_does_not_allow_widens_the_schema_before_its_window() -> iterable_export::Result<()> {
        let buffer = Shared::default();
        let stream = Stream {
            data_type: DataType::EmailSend,
        };
        let mut records = Records::new(WriterSink::new(buffer.clone())?, stream, stream.schema());
        records.write_schema().await?;
        let window = Window::ALL;
        let odd =
            br#"{"campaignId":1.5,"email":7,"templat\u0065Id":true,"x":{"campaignId":"nested"},"createdAt":1e12}"#;
        let attempts: [(&[&[u8]], bool); 4] = [
            (
                &[br#"{"campaignId":1,"email":"a@b.c","createdAt":"2024-01-01 00:00:00 +00:00"}"#],
                true,
            ),
            (&[odd], false),
            (&[br#"{"campaignId":"12"}"#, odd], true),
            (&[br#"{"campaignId":2.5,"email":8}"#], true),
        ];
        for (lines, commit) in attempts {
            records.begin(&window).await?;
            for line in lines {
                records.record(line).await?;
            }
            if commit {
                records.commit(&window, lines.len() as u64).await?;
            } else {
                records.abort(&window).await?;
            }
        }
        drop(records.out.finish().await?);
        let text = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        let messages: Vec<Value> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("a message"))
            .collect();
        let kinds: Vec<&str> = messages
            .iter()
            .map(|m| m["type"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["SCHEMA", "RECORD", "SCHEMA", "RECORD", "RECORD", "RECORD"]);
        let widened = &messages[2]["schema"]["properties"];
        assert_eq!(
            widened["campaignId"]["type"],
            json!(["integer", "null", "string", "number"])
        );
        assert_eq!(widened["email"]["type"], json!(["string", "null", "integer"]));
        assert_eq!(
            widened["templateId"]["type"],
            json!(["integer", "null", "string", "boolean"])
        );
        assert_eq!(
            widened["createdAt"]["type"],
            json!(["string", "integer", "null", "number"])
        );
        assert_eq!(widened["messageId"]["type"], json!(["string", "null"]));
        assert_eq!(messages[2]["key_properties"], json!(["messageId"]));
        assert!(text.windows(odd.len()).any(|w| w == odd), "the record as received");
        let mut schema = &Value::Null;
        for message in &messages {
            if message["type"] == "SCHEMA" {
                schema = &message["schema"]["properties"];
                continue;
            }
            for (name, value) in message["record"].as_object().expect("a record") {
                let Some(types) = schema[name]["type"].as_array() else {
                    continue;
                };
                let t = draft4_type(value);
                assert!(
                    types.iter().any(|a| a == t || (a == "number" && t == "integer")),
                    "{name}: {value} is not one of {types:?}"
                );
            }
        }
        Ok(())
    }

    #[tokio::test]
    async fn records_are_wrapped_as_received_and_non_objects_refused() -> iterable_export::Result<()> {
        let window = Window::ALL;
        let stream = Stream {
            data_type: DataType::EmailSend,
        };
        let mut records = Records::new(stdout()?, stream, stream.schema());
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
