//! The budget ledger over Envoy's shared data: one store every worker VM of the Envoy process
//! sees, with compare-and-swap (DESIGN §4: consistent across workers). The core's
//! [`crate::core::budget::ledger`] does the retries and the creation lock; this only maps the
//! two host calls and their status codes.

use super::host::{self, HostError, CAS_MISMATCH};
use crate::core::budget::ledger::{Store, StoreError};

/// Envoy's shared data as a budget ledger store.
#[derive(Debug, Default)]
pub struct SharedData;

fn store_error(error: HostError) -> StoreError {
    if error.0 == CAS_MISMATCH {
        StoreError::CasMismatch
    } else {
        StoreError::Host(error.0)
    }
}

impl Store for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        host::get_shared(key).map_err(store_error)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        host::set_shared(key, value, cas).map_err(store_error)
    }
}
