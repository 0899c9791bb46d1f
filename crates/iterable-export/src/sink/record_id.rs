//! [`RecordId`]: a record's identity for de-duplication, and compact lists of them for checkpoints.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A record's identity for de-duplication: the first 16 bytes of the SHA-256 of its raw bytes.
/// Fixed-size (16 bytes in memory, about 21 in a state file: see [`RecordId::encode_list`]),
/// and stable across runs and versions, so it can be stored in a checkpoint.
///
/// ```
/// use iterable_export::RecordId;
///
/// let ids = vec![RecordId::of(b"{\"a\":1}"), RecordId::of(b"{\"a\":2}")];
/// let text = RecordId::encode_list(&ids);
/// assert_eq!(text.len(), 44);
/// assert_eq!(RecordId::decode_list(&text)?, ids);
/// # Ok::<(), iterable_export::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// The identity of a record's raw bytes (an NDJSON line or CSV record without its
    /// terminator).
    pub fn of(record: &[u8]) -> Self {
        let digest = Sha256::digest(record);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        RecordId(id)
    }

    /// The identity of a CSV record, independent of the window's columns: the same values under
    /// the same column names give the same identity, whatever the column order and whatever
    /// empty columns the window had (a look-back re-read by a window with a new column, or
    /// split differently, still recognises its records). Empty fields are left out.
    pub fn of_csv(columns: &[String], record: &[u8]) -> Result<Self> {
        let fields = super::columns::parse_record(record)?;
        let mut pairs: Vec<(&str, &[u8])> = columns
            .iter()
            .map(String::as_str)
            .zip(fields.iter())
            .filter(|(_, value)| !value.is_empty())
            .collect();
        pairs.sort_unstable();
        let mut hasher = Sha256::new();
        for (name, value) in pairs {
            for part in [name.as_bytes(), value] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part);
            }
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize()[..16]);
        Ok(RecordId(id))
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A list of identities as one compact text: the concatenated bytes in standard base64.
    pub fn encode_list(ids: &[RecordId]) -> String {
        // Streamed: no copy of the concatenated bytes (16 MiB for a million identities).
        let mut encoder = base64::write::EncoderStringWriter::new(&base64::engine::general_purpose::STANDARD);
        for id in ids {
            // Writing into a String cannot fail.
            let _ = std::io::Write::write_all(&mut encoder, &id.0);
        }
        encoder.into_inner()
    }

    /// Reads a list written by [`RecordId::encode_list`].
    ///
    /// # Errors
    /// [`Error::Decode`] when the text is not base64 of a multiple of 16 bytes.
    pub fn decode_list(text: &str) -> Result<Vec<RecordId>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| bad_list(format!("not base64 ({e})")))?;
        if bytes.len() % 16 != 0 {
            return Err(bad_list(format!("{} bytes is not a multiple of 16", bytes.len())));
        }
        Ok(bytes
            .chunks_exact(16)
            .map(|chunk| {
                let mut id = [0u8; 16];
                id.copy_from_slice(chunk);
                RecordId(id)
            })
            .collect())
    }
}

fn bad_list(what: String) -> Error {
    Error::Decode {
        line: 1,
        offset: 0,
        message: format!("a list of record identities is damaged: {what}"),
    }
}

impl std::fmt::Debug for RecordId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_identity_lists_are_refused() {
        assert!(matches!(
            RecordId::decode_list("not base64!"),
            Err(Error::Decode { .. })
        ));
        let fifteen = base64::engine::general_purpose::STANDARD.encode([0u8; 15]);
        assert!(
            matches!(RecordId::decode_list(&fifteen), Err(Error::Decode { message, .. }) if message.contains("15 bytes is not a multiple of 16"))
        );
        assert_eq!(RecordId::decode_list("").ok(), Some(Vec::new()));
        assert_eq!(format!("{:?}", RecordId::of(b"")), "e3b0c44298fc1c149afbf4c8996fb924");
    }
}
