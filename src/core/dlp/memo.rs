//! A memo of request messages already found clean, so each turn scans only what is new.
//!
//! Agents re-send the whole conversation every turn: a Claude Code request carries every earlier
//! user message and tool result again. Scanning them again finds nothing new, so the gateway
//! remembers the messages (their raw JSON) it scanned and found clean (no finding of any
//! action) and skips them next time, without parsing or decoding them again.
//!
//! Only a keyed 64-bit hash of each text is kept (SipHash-1-3 under a key derived from the mask
//! key), salted with the profile and direction — never the text. An attacker who wanted a secret
//! to be skipped would need a text with the same keyed hash as a clean one without knowing the
//! key. Texts shorter than [`MIN_BYTES`] are not memoized (scanning them is cheaper than the
//! bookkeeping). The memo is bounded: when it holds [`CAPACITY`] hashes it starts over.
//!
//! Messages with findings are never memoized: their masks and counts are recomputed every time.

use siphasher::sip::SipHasher13;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::Hasher;

/// Shortest text worth memoizing, in bytes.
pub const MIN_BYTES: usize = 512;
/// Most hashes kept before the memo starts over (8 bytes each).
pub const CAPACITY: usize = 65_536;

/// Hashes of texts found clean. Single-threaded (one per wasm VM).
#[derive(Debug)]
pub struct CleanMemo {
    keys: (u64, u64),
    seen: RefCell<HashSet<u64>>,
}

/// SipHash keys for a per-worker memo: HMAC-SHA-256(`secret`, `label`), so nobody who lacks the
/// secret can aim collisions, and memos with different labels never share keys.
pub fn sip_keys(label: &[u8], secret: &[u8]) -> (u64, u64) {
    let digest = hmac_sha256::HMAC::mac(label, secret);
    let word = |range: std::ops::Range<usize>| {
        digest.get(range).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_le_bytes).unwrap_or(0)
    };
    (word(0..8), word(8..16))
}

impl CleanMemo {
    /// A memo keyed by `key` (secret bytes; only a hash of them is used).
    pub fn new(key: &[u8]) -> Self {
        Self { keys: sip_keys(b"warden dlp clean memo v1", key), seen: RefCell::new(HashSet::new()) }
    }

    fn hash(&self, salt: u64, text: &str) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write_u64(salt);
        hasher.write(text.as_bytes());
        hasher.finish()
    }

    /// Whether `text` was found clean before under `salt` (always false for short texts).
    pub fn is_clean(&self, salt: u64, text: &str) -> bool {
        text.len() >= MIN_BYTES && self.seen.borrow().contains(&self.hash(salt, text))
    }

    /// Remembers that `text` is clean under `salt`.
    pub fn remember(&self, salt: u64, text: &str) {
        if text.len() < MIN_BYTES {
            return;
        }
        let hash = self.hash(salt, text);
        let mut seen = self.seen.borrow_mut();
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert(hash);
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.seen.borrow().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_long_clean_texts_per_salt_and_key() {
        let memo = CleanMemo::new(b"k");
        let long = "x".repeat(MIN_BYTES);
        assert!(!memo.is_clean(1, &long));
        memo.remember(1, &long);
        assert!(memo.is_clean(1, &long));
        assert!(!memo.is_clean(2, &long), "another profile or direction");
        assert!(!CleanMemo::new(b"other").is_clean(1, &long));
        memo.remember(1, "short");
        assert!(!memo.is_clean(1, "short"));
        assert_eq!(memo.len(), 1);
    }
}
