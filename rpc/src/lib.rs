//! Node-to-node plumbing shared by every Troika service.
//!
//! - [`secret`]: the cluster secret and the request MAC that proves a caller
//!   holds it. Chunk and meta nodes refuse any request without a fresh, valid
//!   MAC, so nobody on the network can read or write blobs or metadata.
//! - [`serve`]: one HTTP server loop (HTTP/1.1 and cleartext HTTP/2 on the
//!   same port) with flow-control windows sized for multi-MiB blobs.
//! - [`client`]: the matching HTTP/2 client that signs every request.
//! - [`health`]: the small JSON bodies of `/health` and `/ready`.
//! - [`local`]: services of this process, called directly.

pub mod client;
pub mod health;
pub mod local;
pub mod secret;
pub mod serve;

pub use client::RpcClient;
pub use secret::{ClusterSecret, SecretError};
