//! The S3 API. [`router`] authenticates every request through one verifier
//! ([`auth`]) and dispatches it; each operation lives in the module named
//! for what it touches.

pub mod auth;
pub mod batch;
pub mod bucket;
pub mod checksum;
pub mod conditional;
pub mod copy;
pub mod cors;
pub mod error;
pub mod list;
pub mod multipart;
pub mod object;
pub mod router;
pub mod xml;
