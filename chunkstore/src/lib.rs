//! The storage node: immutable blobs named by their SHA-256, on local disk,
//! behind an HTTP/2 API that only cluster members (holders of the cluster
//! secret) may call.
//!
//! - [`store`]: the on-disk format and its durability rules; `journal`:
//!   how small blobs are made durable with one shared sync.
//! - [`server`]: the HTTP service, registration and heartbeats.
//! - [`client`]: what gateways (and repairing nodes) use to put and get blobs.
//! - [`repair`]: copying blobs that lost copies (or move to even out
//!   fill) from a live holder, and deleting what the metastore dropped.
//! - [`scrub`]: re-reading every blob in the background; bad copies and
//!   orphans.
//! - [`local`]: direct calls to nodes served by this process.
//! - [`api`]: paths and limits shared by both sides.

pub mod api;
pub mod client;
pub mod error;
mod journal;
mod local;
pub mod repair;
pub mod scrub;
pub mod server;
pub mod store;

pub use client::ChunkClient;
pub use error::Error;
