//! Wire formats of the proxy-wasm ABI, as pure functions.
//!
//! The host hands maps (headers) to the module as "pairs": a little-endian `u32` count, then a
//! `u32` key length and a `u32` value length per pair, then each key and value followed by a NUL.
//! Property values come back as raw bytes whose meaning depends on the type: strings as UTF-8,
//! numbers as 8-byte little-endian `f64`. These decoders never panic on malformed input — the
//! glue calls them on host data — and header values that are not UTF-8 are kept, lossily decoded,
//! rather than dropped or trusted.

/// Decodes a pairs-encoded map. `None` when the bytes are not a well-formed encoding.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for n in 0..count {
        let key_len = read_u32(bytes, 4 + n * 8)? as usize;
        let value_len = read_u32(bytes, 8 + n * 8)? as usize;
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len + 1)?;
        pairs.push((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned()));
    }
    Some(pairs)
}

/// Encodes a map as pairs (for local replies).
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = 4 + pairs.iter().map(|(k, v)| 8 + k.len() + v.len() + 2).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// Encodes a property path (segments joined by NUL).
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// A property holding a number (`f64`, 8 bytes little-endian).
pub fn decode_number(bytes: &[u8]) -> Option<f64> {
    let array: [u8; 8] = bytes.try_into().ok()?;
    let value = f64::from_le_bytes(array);
    value.is_finite().then_some(value)
}

/// A property holding a printable string (no control characters), e.g. a claim.
pub fn decode_text(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_string())
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let array: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pairs_round_trip() {
        let pairs = [(":path", "/v1/messages"), ("x-api-key", ""), ("a", "b")];
        let decoded = decode_pairs(&encode_pairs(&pairs)).unwrap();
        let expected: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn non_utf8_header_values_are_kept_lossily() {
        let mut bytes = encode_pairs(&[("x", "ab")]);
        let last = bytes.len() - 2;
        bytes[last] = 0xff;
        assert_eq!(decode_pairs(&bytes).unwrap(), vec![("x".to_string(), "a\u{fffd}".to_string())]);
    }

    #[test]
    fn truncated_encodings_are_rejected() {
        let bytes = encode_pairs(&[("key", "value")]);
        for cut in 1..bytes.len() - 1 {
            assert_eq!(decode_pairs(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn numbers_and_text_decode_strictly() {
        assert_eq!(decode_number(&1_700_000_000f64.to_le_bytes()), Some(1_700_000_000.0));
        assert_eq!(decode_number(b"1700"), None);
        assert_eq!(decode_text(b"alice"), Some("alice".to_string()));
        assert_eq!(decode_text(&[0, 0, 0, 0]), None);
        assert_eq!(decode_text(&[0xff]), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_pairs(&bytes);
            let _ = decode_number(&bytes);
            let _ = decode_text(&bytes);
        }
    }
}
