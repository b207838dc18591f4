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
//!
//! **The session prefix** ([`SessionMemo`]): the clean-message memo is per worker VM, and a
//! conversation's turns land on any worker. So every worker also records, in Envoy's shared
//! data (the same store as the budget ledger), how many leading messages of a session's last
//! request were clean and a keyed hash of their exact bytes: the byte range of the body from
//! the first message's `{` to the last clean message's `}`, commas and whitespace included. The
//! next request of the session on any worker hashes the same range of its own body once (one
//! streaming SipHash, no per-message set-up, no set look-up); when the length and the hash
//! match, those messages are byte for byte the ones found clean and are not scanned. The same
//! pass goes on over the messages this turn found clean to write the session's new prefix.
//!
//! Safety against a client that chooses its session id: the slot is picked by a keyed hash of
//! the caller (issuer, subject), the role's DLP profile and the session id, and the slot holds
//! that full 128-bit tag; the prefix hash covers the tag and the bytes. A forged or shared
//! session id lands on the same slot at worst: the tag or the bytes differ and the turn is
//! scanned in full (two clients sharing one id each overwrite the other's slot: a rescan, never
//! a skip). An attacker cannot aim a collision without the key (derived from the mask key and
//! the policy text, so a policy change forgets every prefix). Nothing but the tag, a count, a
//! length and a hash is stored: no text, no name.
//!
//! Bounds: [`SESSION_SLOTS`] fixed keys (shared data has no delete), [`SESSION_ENTRY_BYTES`]
//! each; a flood of new sessions only overwrites slots. Writes are unconditional (last writer
//! wins: a lost race costs a rescan). A store that fails is read as "nothing known".

use siphasher::sip128::{Hasher128, SipHasher13};
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::Hasher;

use crate::core::budget::ledger::Store;

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

/// Slots of the shared ring of session prefixes (keys `warden.session.<n>`).
pub const SESSION_SLOTS: u64 = 4_096;
/// Prefix of the session slots' shared-data keys.
pub const SESSION_KEY_PREFIX: &str = "warden.session.";
/// Bytes of one slot's value: format tag, owner tag, message count, byte length, hash.
pub const SESSION_ENTRY_BYTES: usize = 4 + 16 + 4 + 8 + 16;
const ENTRY_FORMAT: &[u8; 4] = b"wsp1";

/// The shared memo of each session's clean leading messages (see the module header).
#[derive(Debug)]
pub struct SessionMemo {
    keys: (u64, u64),
}

/// One request's place in the session memo: the owner's tag and the slot it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSlot {
    tag: u128,
    slot: u64,
}

/// What a slot holds: the owner's tag and the clean prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    tag: u128,
    messages: u32,
    bytes: u64,
    hash: u128,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SESSION_ENTRY_BYTES);
        out.extend_from_slice(ENTRY_FORMAT);
        out.extend_from_slice(&self.tag.to_le_bytes());
        out.extend_from_slice(&self.messages.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&self.hash.to_le_bytes());
        out
    }

    /// `None` for anything but a well-formed entry of this format.
    fn decode(value: &[u8]) -> Option<Self> {
        let rest = value.strip_prefix(ENTRY_FORMAT)?;
        if rest.len() != SESSION_ENTRY_BYTES - ENTRY_FORMAT.len() {
            return None;
        }
        let (tag, rest) = rest.split_first_chunk::<16>()?;
        let (messages, rest) = rest.split_first_chunk::<4>()?;
        let (bytes, rest) = rest.split_first_chunk::<8>()?;
        let (hash, _) = rest.split_first_chunk::<16>()?;
        Some(Self {
            tag: u128::from_le_bytes(*tag),
            messages: u32::from_le_bytes(*messages),
            bytes: u64::from_le_bytes(*bytes),
            hash: u128::from_le_bytes(*hash),
        })
    }
}

/// A request's pass over its messages' bytes: what the slot let it skip, and the running hash
/// that writes the new prefix.
#[derive(Debug, Clone)]
pub struct PrefixPass {
    slot: SessionSlot,
    /// Leading messages known clean (byte-identical to a prefix judged clean before).
    pub known: usize,
    hasher: SipHasher13,
    /// Where in the body the hashed range ends so far (`None`: nothing hashed yet).
    hashed_to: Option<usize>,
    /// Where the range starts (the first message's first byte).
    start: usize,
}

impl SessionMemo {
    /// A memo keyed by `key` (secret bytes) and the policy text (a changed policy forgets every
    /// prefix: its detectors may differ).
    pub fn new(key: &[u8], policy_text: &str) -> Self {
        let mut secret = hmac_sha256::Hash::hash(policy_text.as_bytes()).to_vec();
        secret.extend_from_slice(key);
        Self { keys: sip_keys(b"warden dlp session prefix v1", &secret) }
    }

    fn hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.keys.0, self.keys.1)
    }

    /// The slot of a session for one owner: each part length-prefixed, so no two owners join
    /// to the same bytes.
    pub fn slot(&self, owner: &[&[u8]]) -> SessionSlot {
        let mut hasher = self.hasher();
        hasher.write(b"owner");
        for part in owner {
            hasher.write(&(part.len() as u64).to_le_bytes());
            hasher.write(part);
        }
        let tag = hasher.finish128().as_u128();
        SessionSlot { tag, slot: (tag as u64) % SESSION_SLOTS }
    }

    /// The shared-data key of a slot.
    pub fn key(slot: &SessionSlot) -> String {
        format!("{SESSION_KEY_PREFIX}{}", slot.slot)
    }

    /// Reads the slot (one host call) and checks its prefix against `body`, whose messages lie
    /// at `spans` (byte ranges of `body`, in order). The pass's [`PrefixPass::known`] leading
    /// messages are the ones judged clean before under the same owner.
    pub fn begin(
        &self,
        store: &dyn Store,
        slot: SessionSlot,
        body: &[u8],
        spans: &[std::ops::Range<usize>],
    ) -> PrefixPass {
        let start = spans.first().map_or(0, |span| span.start);
        let mut pass = PrefixPass { slot, known: 0, hasher: self.hasher(), hashed_to: None, start };
        pass.hasher.write(&slot.tag.to_le_bytes());
        let entry = match store.get(&Self::key(&slot)) {
            Ok(Some((value, _))) => Entry::decode(&value),
            _ => None,
        };
        let Some(entry) = entry.filter(|e| e.tag == slot.tag && e.messages > 0) else { return pass };
        let Some(last) = usize::try_from(entry.messages).ok().and_then(|n| n.checked_sub(1)).and_then(|i| spans.get(i))
        else {
            return pass;
        };
        if u64::try_from(last.end.saturating_sub(start)).ok() != Some(entry.bytes) {
            return pass;
        }
        let Some(range) = body.get(start..last.end) else { return pass };
        let mut hasher = pass.hasher;
        hasher.write(range);
        if hasher.finish128().as_u128() == entry.hash {
            pass.hasher = hasher;
            pass.hashed_to = Some(last.end);
            pass.known = entry.messages as usize;
        }
        pass
    }

    /// Ends the pass: when the request's first `clean` messages (at `spans` of `body`) were
    /// all clean and that is more than the slot knew, writes the longer prefix (one host call;
    /// a failed write only costs a rescan later).
    pub fn finish(
        &self,
        store: &dyn Store,
        mut pass: PrefixPass,
        body: &[u8],
        spans: &[std::ops::Range<usize>],
        clean: usize,
    ) {
        if clean <= pass.known {
            return;
        }
        let Some(last) = clean.checked_sub(1).and_then(|i| spans.get(i)) else { return };
        let from = pass.hashed_to.unwrap_or(pass.start);
        let Some(range) = body.get(from..last.end) else { return };
        pass.hasher.write(range);
        let (Ok(messages), Ok(bytes)) = (u32::try_from(clean), u64::try_from(last.end.saturating_sub(pass.start)))
        else {
            return;
        };
        let entry = Entry { tag: pass.slot.tag, messages, bytes, hash: pass.hasher.finish128().as_u128() };
        if store.set(&Self::key(&pass.slot), &entry.encode(), 0).is_err() {
            log::debug!("the session prefix memo could not be written");
        }
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

    use crate::core::budget::ledger::MemoryStore;
    use std::ops::Range;

    /// A body of `messages` (raw JSON texts) and each message's span in it.
    fn body_of(messages: &[&str]) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut text = String::from("{\"model\":\"m\",\"messages\": [");
        let mut spans = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            spans.push(text.len()..text.len() + message.len());
            text.push_str(message);
        }
        text.push_str("]}");
        (text.into_bytes(), spans)
    }

    const A: &str = r#"{"role":"user","content":"a"}"#;
    const B: &str = r#"{"role":"assistant","content":"b"}"#;
    const C: &str = r#"{"role":"user","content":"c"}"#;
    const D: &str = r#"{"role":"assistant","content":"d"}"#;

    /// One turn: what the slot let it skip; then it learns that its first `clean` were clean.
    fn turn(memo: &SessionMemo, store: &MemoryStore, owner: &[&[u8]], messages: &[&str], clean: usize) -> usize {
        let (body, spans) = body_of(messages);
        let pass = memo.begin(store, memo.slot(owner), &body, &spans);
        let known = pass.known;
        memo.finish(store, pass, &body, &spans, clean);
        known
    }

    const OWNER: [&[u8]; 3] = [b"issuer", b"alice", b"session-1"];

    #[test]
    fn a_session_skips_the_prefix_it_found_clean_on_any_worker() {
        let store = MemoryStore::default();
        let (one, two) = (SessionMemo::new(b"k", "policy"), SessionMemo::new(b"k", "policy"));
        assert_eq!(turn(&one, &store, &OWNER, &[A], 1), 0, "nothing known at first");
        assert_eq!(turn(&two, &store, &OWNER, &[A, B, C], 3), 1, "another worker knows the first turn");
        assert_eq!(turn(&one, &store, &OWNER, &[A, B, C, D, A], 5), 3);
        assert_eq!(turn(&two, &store, &OWNER, &[A, B, C, D, A], 5), 5, "the same body again");
    }

    #[test]
    fn only_byte_identical_prefixes_of_the_same_owner_are_skipped() {
        let store = MemoryStore::default();
        let memo = SessionMemo::new(b"k", "policy");
        turn(&memo, &store, &OWNER, &[A, B, C], 3);
        let edited = r#"{"role":"assistant","content":"B"}"#;
        assert_eq!(turn(&memo, &store, &OWNER, &[A, edited, C, D], 0), 0, "an edited earlier message");
        turn(&memo, &store, &OWNER, &[A, B, C], 3);
        assert_eq!(turn(&memo, &store, &OWNER, &[B, A, C, D], 0), 0, "a reordered history");
        turn(&memo, &store, &OWNER, &[A, B, C], 3);
        assert_eq!(turn(&memo, &store, &OWNER, &[A, B], 0), 0, "a truncated history");
        turn(&memo, &store, &OWNER, &[A, B, C], 3);
        let spaced = format!("{A},{B} ,{C}");
        let (body, _) = body_of(&[&spaced]);
        let text = std::str::from_utf8(&body).unwrap();
        let at = |part: &str| text.find(part).unwrap();
        let spans = [at(A)..at(A) + A.len(), at(B)..at(B) + B.len(), at(C)..at(C) + C.len()];
        assert_eq!(memo.begin(&store, memo.slot(&OWNER), &body, &spans).known, 0, "other bytes between messages");
        for other in [[b"issuer".as_slice(), b"mallory", b"session-1"], [b"issuer", b"alice", b"session-2"]] {
            assert_eq!(turn(&memo, &store, &other, &[A, B, C], 0), 0, "another caller or session");
            turn(&memo, &store, &OWNER, &[A, B, C], 3);
        }
        let (body, spans) = body_of(&[A, B, C]);
        assert_eq!(memo.begin(&store, memo.slot(&OWNER), &body, &spans).known, 3);
        let other_policy = SessionMemo::new(b"k", "policy 2");
        assert_eq!(other_policy.begin(&store, other_policy.slot(&OWNER), &body, &spans).known, 0, "another policy");
        let other_key = SessionMemo::new(b"k2", "policy");
        assert_eq!(other_key.begin(&store, other_key.slot(&OWNER), &body, &spans).known, 0, "another key");
    }

    #[test]
    fn a_prefix_grows_only_by_leading_clean_messages() {
        let store = MemoryStore::default();
        let memo = SessionMemo::new(b"k", "policy");
        assert_eq!(turn(&memo, &store, &OWNER, &[A, B, C], 1), 0, "B had a finding");
        assert_eq!(turn(&memo, &store, &OWNER, &[A, B, C, D], 1), 1, "only A is known clean");
        assert_eq!(turn(&memo, &store, &OWNER, &[A, B, C, D], 0), 1, "a shorter clean run never shrinks it");
    }

    #[test]
    fn slots_are_bounded_and_foreign_or_broken_values_are_ignored() {
        let store = MemoryStore::default();
        let memo = SessionMemo::new(b"k", "policy");
        for i in 0..(SESSION_SLOTS * 3) {
            let session = format!("flood-{i}");
            turn(&memo, &store, &[b"issuer", b"alice", session.as_bytes()], &[A], 1);
        }
        let keys = (0..SESSION_SLOTS * 2).filter(|n| store.get(&format!("{SESSION_KEY_PREFIX}{n}")).unwrap().is_some());
        assert!(keys.count() as u64 <= SESSION_SLOTS);
        let huge = vec![b'x'; 10 << 10];
        assert_eq!(turn(&memo, &store, &[b"issuer", b"alice", &huge], &[A, B], 2), 0);
        assert_eq!(turn(&memo, &store, &[b"issuer", b"alice", &huge], &[A, B], 2), 2, "a 10 KB session id works");
        let slot = memo.slot(&OWNER);
        for junk in [&b""[..], b"wsp1", &[0u8; SESSION_ENTRY_BYTES], &[b'w'; SESSION_ENTRY_BYTES + 1]] {
            store.set(&SessionMemo::key(&slot), junk, 0).unwrap();
            let (body, spans) = body_of(&[A]);
            assert_eq!(memo.begin(&store, slot, &body, &spans).known, 0);
        }
    }

    #[test]
    fn an_entry_round_trips_in_its_fixed_size() {
        let entry = Entry { tag: u128::MAX - 3, messages: 7, bytes: u64::MAX, hash: 42 };
        let encoded = entry.encode();
        assert_eq!(encoded.len(), SESSION_ENTRY_BYTES);
        assert_eq!(Entry::decode(&encoded), Some(entry));
    }
}
