//! Byte-level writers: decimal numbers, hex, money, JSON string literals, CSV cells.

pub(crate) fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

pub(crate) fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

pub(super) fn push_2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

pub(super) fn push_hex(buf: &mut Vec<u8>, v: u64, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for k in (0..digits).rev() {
        buf.push(HEX[((v >> (k * 4)) & 0xf) as usize]);
    }
}

/// Writes `cents` as a decimal number with two places (`1234` → `12.34`).
pub(super) fn push_money(buf: &mut Vec<u8>, cents: u64) {
    push_u64(buf, cents / 100);
    buf.push(b'.');
    push_2(buf, (cents % 100) as u32);
}

/// Bytes that need escaping in a JSON string.
static JSON_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if !JSON_ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        buf.extend_from_slice(&s[start..i]);
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => {
                buf.extend_from_slice(b"\\u00");
                push_hex(buf, u64::from(b), 2);
            }
        }
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&s[start..]);
    buf.push(b'"');
}

/// Appends `s` as one CSV cell, quoted (RFC 4180) when it contains a comma, quote, CR or LF.
pub(crate) fn push_csv_cell(buf: &mut Vec<u8>, s: &[u8]) {
    if s.iter().any(|&b| b == b',' || b == b'"' || b == b'\n' || b == b'\r') {
        buf.push(b'"');
        let mut start = 0;
        for (i, &b) in s.iter().enumerate() {
            if b == b'"' {
                buf.extend_from_slice(&s[start..=i]);
                buf.push(b'"');
                start = i + 1;
            }
        }
        buf.extend_from_slice(&s[start..]);
        buf.push(b'"');
    } else {
        buf.extend_from_slice(s);
    }
}

/// Appends a CSV header row for `columns` (with the trailing `\n`).
pub(crate) fn push_csv_header(buf: &mut Vec<u8>, columns: &[&str]) {
    for (i, column) in columns.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_csv_cell(buf, column.as_bytes());
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escaping() {
        let mut b = Vec::new();
        push_json_str(&mut b, "a\"b\\c\nd\u{1}é😀".as_bytes());
        assert_eq!(String::from_utf8_lossy(&b), "\"a\\\"b\\\\c\\nd\\u0001é😀\"");
    }

    #[test]
    fn csv_quoting() {
        let mut b = Vec::new();
        push_csv_cell(&mut b, b"plain");
        b.push(b'|');
        push_csv_cell(&mut b, b"a,\"b\"\nc");
        assert_eq!(b, b"plain|\"a,\"\"b\"\"\nc\"");
    }
}
