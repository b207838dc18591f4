//! Surgical rewrites of a JSON body: replace a few values, keep every other byte.
//!
//! The values to replace are borrowed from the parsed body (serde `RawValue` slices or borrowed
//! strings), so their offsets are pointer differences. Keeping the other bytes keeps Anthropic's
//! prompt cache warm: the cache keys on the exact prompt prefix.

use crate::core::errors::{Denial, Reason};
use std::ops::Range;

/// A replacement of `body[start..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// Offset of the first replaced byte.
    pub start: usize,
    /// Offset just past the last replaced byte.
    pub end: usize,
    /// The new bytes.
    pub bytes: Vec<u8>,
}

/// The splice replacing `part`, a slice borrowed from `text`, by `bytes`.
pub fn splice_of(text: &str, part: &str, bytes: Vec<u8>) -> Splice {
    // `part` borrows from `text`, so the difference is its offset. Wrapping arithmetic keeps a
    // (impossible) foreign slice from panicking: its range falls outside the body and `apply`
    // refuses the request.
    let start = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    Splice { start, end: start.wrapping_add(part.len()), bytes }
}

/// Where `range` of the body lies once `splices` are applied. Splices replace whole values, so
/// each lies inside `range` or outside it, never across its ends.
pub fn moved(range: Range<usize>, splices: &[Splice]) -> Range<usize> {
    let shift = |at: usize| {
        splices
            .iter()
            .filter(|s| s.end <= at)
            .fold(at as isize, |at, s| at + s.bytes.len() as isize - (s.end as isize - s.start as isize))
    };
    shift(range.start).max(0) as usize..shift(range.end).max(0) as usize
}

/// Whether a splice rewrites bytes inside `range`.
pub fn touches(range: &Range<usize>, splices: &[Splice]) -> bool {
    splices.iter().any(|s| s.start < range.end && s.end > range.start)
}

/// Applies the splices (`None` when there are none). Overlapping or out-of-range splices refuse
/// the request rather than forward it half-rewritten.
pub fn apply(body: &[u8], mut splices: Vec<Splice>) -> Result<Option<Vec<u8>>, Denial> {
    if splices.is_empty() {
        return Ok(None);
    }
    let broken = || Denial::new(Reason::InternalError, "rewriting the body failed");
    splices.sort_by_key(|s| s.start);
    let mut out = Vec::with_capacity(body.len() + 16 * splices.len());
    let mut cursor = 0;
    for splice in splices {
        out.extend_from_slice(body.get(cursor..splice.start).ok_or_else(broken)?);
        out.extend_from_slice(&splice.bytes);
        cursor = splice.end;
    }
    out.extend_from_slice(body.get(cursor..).ok_or_else(broken)?);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_move_with_the_splices_before_them_and_stretch_with_those_inside() {
        let body = br#"{"max_tokens":64000,"messages":[{"content":"key sk-1"},{"content":"hi"}]}"#;
        let text = std::str::from_utf8(body).unwrap();
        let at = |part: &str| text.find(part).unwrap()..text.find(part).unwrap() + part.len();
        let splices = vec![
            Splice { start: at("64000").start, end: at("64000").end, bytes: b"8000".to_vec() },
            Splice { start: at("sk-1").start, end: at("sk-1").end, bytes: b"[MASKED]".to_vec() },
        ];
        let (first, second) = (at(r#"{"content":"key sk-1"}"#), at(r#"{"content":"hi"}"#));
        let out = apply(body, splices.clone()).unwrap().unwrap();
        let slice = |range: Range<usize>| std::str::from_utf8(&out[range]).unwrap().to_string();
        assert_eq!(slice(moved(first.clone(), &splices)), r#"{"content":"key [MASKED]"}"#);
        assert_eq!(slice(moved(second.clone(), &splices)), r#"{"content":"hi"}"#);
        assert!(touches(&first, &splices) && !touches(&second, &splices));
    }
}
