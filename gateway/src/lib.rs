//! The stateless gateway: an S3 endpoint over the one namespace, storing
//! object bytes as blobs on storage nodes and metadata in the metastore.
//!
//! A request reads top to bottom: [`s3::router`] authenticates and
//! dispatches to `s3::{bucket,object,list,multipart}`, which use
//! [`namespace`] (buckets and keys onto metastore commands) and [`data`]
//! (bytes onto blobs, placed three ways, read back with failover).
//! [`error`] is the crate's one error type; `s3::error` maps it to S3 codes.

pub mod cluster;
pub mod data;
pub mod error;
pub mod merge;
pub mod namespace;
pub mod nfs;
pub mod s3;
pub mod server;

pub use error::Error;
pub use server::{run, GatewayConfig};
