//! A memo of request messages already found clean, so each turn scans only what is new, and the
//! message digest it is keyed by.
//!
//! Agents re-send the whole conversation every turn: a Claude Code request carries every earlier
//! user message and tool result again. Scanning them again finds nothing new, so the gateway
//! remembers the messages (their raw JSON) it scanned and found clean (no finding of any
//! action) and skips them next time, without parsing or decoding them again.
//!
//! Each message is hashed once per request ([`CleanMemo::digest`]: 128-bit SipHash-1-3 under a
//! key derived from the mask key); the same digest keys this memo (salted with the profile and
//! direction) and the audit trail's memo of blobs already sent — never the text. An attacker who
//! wanted a secret to be skipped would need a text with the same keyed hash as a clean one
//! without knowing the key. Every message is memoized, short ones too: its digest is computed anyway. The memo
//! is bounded: when it holds [`CAPACITY`] digests it
//! starts over.
//!
//! Messages with findings are never memoized: their masks and counts are recomputed every time.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::Hasher;

/// Most digests kept before the memo starts over (24 bytes each).
pub const CAPACITY: usize = 65_536;

/// Digests of texts found clean, with the salt they were found clean under. Single-threaded
/// (one per wasm VM).
#[derive(Debug)]
pub struct CleanMemo {
    keys: (u64, u64),
    seen: RefCell<HashSet<(u64, u128)>>,
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

    /// The keyed digest of a message's raw JSON text.
    pub fn digest(&self, text: &[u8]) -> u128 {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(text);
        hasher.finish128().as_u128()
    }

    /// Whether the text whose [`digest`](Self::digest) is `digest` was found clean before under
    /// `salt`.
    pub fn is_clean(&self, salt: u64, digest: u128) -> bool {
        self.seen.borrow().contains(&(salt, digest))
    }

    /// Remembers that the text whose digest is `digest` is clean under `salt`.
    pub fn remember(&self, salt: u64, digest: u128) {
        let mut seen = self.seen.borrow_mut();
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert((salt, digest));
    }

    /// Digests held.
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
    fn remembers_clean_texts_per_salt_and_key() {
        let memo = CleanMemo::new(b"k");
        let digest = memo.digest(b"{\"role\":\"user\",\"content\":\"hi\"}");
        assert!(!memo.is_clean(1, digest));
        memo.remember(1, digest);
        assert!(memo.is_clean(1, digest));
        assert!(!memo.is_clean(2, digest), "another profile or direction");
        assert_ne!(memo.digest(b"{}"), digest);
        let other = CleanMemo::new(b"other");
        assert_ne!(other.digest(b"{\"role\":\"user\",\"content\":\"hi\"}"), digest, "another key, another digest");
        assert_eq!(memo.len(), 1);
    }
}
