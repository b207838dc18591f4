//! The three leased dimensions of a budget window (tokens, cost in nanos, requests) and an amount
//! in each ([`Grant`]): the vocabulary the shared-data ledger ([`super::ledger`]) and the lease
//! protocol with `warden serve` ([`super::lease`]) share. A leaf: it depends on neither.

use serde::{Deserialize, Serialize};

/// The tokens dimension, in sets of dimensions ([`Lease::exhausted`](super::ledger::Lease::exhausted)).
pub const TOKENS: u8 = 1;
/// The cost dimension.
pub const NANOS: u8 = 2;
/// The requests dimension.
pub const REQUESTS: u8 = 4;

/// One of the three leased dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Tokens.
    Tokens,
    /// Cost, in nanos.
    Nanos,
    /// Requests.
    Requests,
}

impl Dimension {
    /// Every dimension, in the order of the wire format.
    pub const ALL: [Dimension; 3] = [Dimension::Tokens, Dimension::Nanos, Dimension::Requests];

    /// Its bit in sets of dimensions ([`TOKENS`], [`NANOS`], [`REQUESTS`]).
    pub fn bit(self) -> u8 {
        match self {
            Self::Tokens => TOKENS,
            Self::Nanos => NANOS,
            Self::Requests => REQUESTS,
        }
    }

    /// The set of the dimensions for which `is_in` holds.
    pub(super) fn set_of(is_in: impl Fn(Dimension) -> bool) -> u8 {
        Self::ALL.into_iter().filter(|&dimension| is_in(dimension)).fold(0, |set, dimension| set | dimension.bit())
    }
}

/// Amounts of a window's three leased dimensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Tokens.
    pub tokens: u64,
    /// Cost, in nanos.
    pub nanos: u64,
    /// Requests.
    pub requests: u64,
}

impl Grant {
    /// The grant whose amount in each dimension is `amount(dimension)`.
    pub fn from_fn(amount: impl Fn(Dimension) -> u64) -> Grant {
        Grant {
            tokens: amount(Dimension::Tokens),
            nanos: amount(Dimension::Nanos),
            requests: amount(Dimension::Requests),
        }
    }

    /// The amount in `dimension`.
    pub fn get(&self, dimension: Dimension) -> u64 {
        match dimension {
            Dimension::Tokens => self.tokens,
            Dimension::Nanos => self.nanos,
            Dimension::Requests => self.requests,
        }
    }

    pub(super) fn get_mut(&mut self, dimension: Dimension) -> &mut u64 {
        match dimension {
            Dimension::Tokens => &mut self.tokens,
            Dimension::Nanos => &mut self.nanos,
            Dimension::Requests => &mut self.requests,
        }
    }

    /// Each dimension's amount combined with `other`'s by `combine`.
    pub fn zip(self, other: Grant, combine: impl Fn(u64, u64) -> u64) -> Grant {
        Grant::from_fn(|dimension| combine(self.get(dimension), other.get(dimension)))
    }
}
