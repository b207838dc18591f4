//! Surgical rewrites of a JSON body: replace a few values, keep every other byte.
//!
//! The values to replace are borrowed from the parsed body (serde `RawValue` slices or borrowed
//! strings), so their offsets are pointer differences. Keeping the other bytes keeps Anthropic's
//! prompt cache warm: the cache keys on the exact prompt prefix.

use crate::core::errors::{Denial, Reason};

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
