//! Deterministic masks and the tally of what was found.
//!
//! A mask is `[REDACTED:<detector id>:<6 hex digits>]`, the digits being the first three bytes
//! of HMAC-SHA-256(key, value). The same value always gets the same mask under one key, so
//! Anthropic's prompt cache keeps working across turns and two different secrets stay
//! distinguishable in a transcript; without the key, the digits say nothing about the value
//! (a keyed hash, not a plain one, so short values such as SSNs cannot be brute-forced from
//! their masks). Gateways that must produce the same masks share the key.
//!
//! The tally counts findings per detector and action — never the values — for logs, metrics and
//! the audit record.

use super::engine::Action;
use std::collections::BTreeMap;
use std::fmt;

/// The key of the mask hash. Its `Debug` output hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskKey(Vec<u8>);

impl MaskKey {
    /// A key from secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key derived from a credential (an upstream key, or `dlp.mask_key`'s secret):
    /// HMAC-SHA-256 of a fixed label under the credential, so masks reveal nothing about it and
    /// differ from any other use of it.
    pub fn derived_from(credential: &str) -> Self {
        Self(hmac_sha256::HMAC::mac(b"warden dlp mask key v1", credential.as_bytes()).to_vec())
    }

    /// The mask of `value` found by detector `id`.
    pub fn mask(&self, id: &str, value: &str) -> String {
        let digest = hmac_sha256::HMAC::mac(value.as_bytes(), &self.0);
        let mut mask = String::with_capacity(id.len() + 20);
        mask.push_str("[REDACTED:");
        mask.push_str(id);
        mask.push(':');
        for byte in digest.iter().take(3) {
            mask.push(hex_digit(byte >> 4));
            mask.push(hex_digit(byte & 0x0f));
        }
        mask.push(']');
        mask
    }
}

impl fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MaskKey(<redacted>)")
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// How many findings of each detector met each action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<(String, Action), u32>,
}

impl Tally {
    /// Counts one finding.
    pub fn add(&mut self, detector: &str, action: Action) {
        *self.counts.entry((detector.to_string(), action)).or_insert(0) += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Tally) {
        for (key, n) in &other.counts {
            *self.counts.entry(key.clone()).or_insert(0) += n;
        }
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Total findings, whatever their action.
    pub fn count(&self) -> u32 {
        self.counts.values().sum()
    }

    /// Total findings that met `action`.
    pub fn total(&self, action: Action) -> u32 {
        self.counts.iter().filter(|((_, a), _)| *a == action).map(|(_, n)| n).sum()
    }

    /// `(detector, action, count)` in detector order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Action, u32)> {
        self.counts.iter().map(|((id, action), n)| (id.as_str(), *action, *n))
    }
}

impl fmt::Display for Tally {
    /// `masked aws-access-key=2 email=1; audited phone=1` (empty when nothing was found).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first_group = true;
        for (action, label) in [(Action::Block, "blocked"), (Action::Mask, "masked"), (Action::Audit, "audited")] {
            let mut entries = self.entries().filter(|(_, a, _)| *a == action).peekable();
            if entries.peek().is_none() {
                continue;
            }
            if !first_group {
                f.write_str("; ")?;
            }
            first_group = false;
            f.write_str(label)?;
            for (id, _, n) in entries {
                write!(f, " {id}={n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_deterministic_keyed_and_hide_the_value() {
        let key = MaskKey::new(b"k1".to_vec());
        let a = key.mask("aws-access-key", "AKIA2E0A8F3B244C9986");
        assert_eq!(a, key.mask("aws-access-key", "AKIA2E0A8F3B244C9986"));
        assert!(a.starts_with("[REDACTED:aws-access-key:") && a.ends_with(']') && a.len() == 32, "{a}");
        assert!(!a.contains("2E0A8F"));
        assert_ne!(a, key.mask("aws-access-key", "AKIA2E0A8F3B244C9987"));
        assert_ne!(a, MaskKey::new(b"k2".to_vec()).mask("aws-access-key", "AKIA2E0A8F3B244C9986"));
        assert_eq!(format!("{key:?}"), "MaskKey(<redacted>)");
    }

    #[test]
    fn tally_reads_as_counts_per_action() {
        let mut tally = Tally::default();
        tally.add("email", Action::Mask);
        tally.add("aws-access-key", Action::Mask);
        tally.add("email", Action::Mask);
        tally.add("phone", Action::Audit);
        assert_eq!(tally.to_string(), "masked aws-access-key=1 email=2; audited phone=1");
        assert_eq!(tally.total(Action::Mask), 3);
    }
}
