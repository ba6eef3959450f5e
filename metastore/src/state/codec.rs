//! Table values are JSON: small, self-describing, and readable with any
//! redb tool when debugging a cluster.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::Error;

pub fn enc<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("table records serialize")
}

pub fn dec<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("corrupt record: {e}")))
}
