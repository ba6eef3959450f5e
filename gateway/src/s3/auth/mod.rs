//! S3 request authentication: one verifier for every signing mode.
//!
//! [`sigv4`] (and the legacy [`sigv2`]) checks the request signature
//! (Authorization header or presigned query) and yields
//! an [`AuthContext`]; [`body`] then reads the body the way the signed
//! `x-amz-content-sha256` says (a digest to check at the end, unsigned, or
//! `aws-chunked` with per-chunk signatures and trailers, see [`chunked`]).

pub mod body;
pub mod chunked;
pub mod sigv2;
pub mod sigv4;

pub use body::BodyReader;
pub use sigv4::{AuthContext, PayloadMode};
