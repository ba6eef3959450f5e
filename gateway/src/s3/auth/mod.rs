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

/// How a header value's bytes enter a string to sign. Signers differ on
/// bytes beyond ASCII (user metadata in other scripts): most sign them as
/// sent, while botocore sends ISO-8859-1 and signs the same text in
/// UTF-8. A request is accepted if either reading verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderBytes {
    AsSent,
    Latin1AsUtf8,
}

impl HeaderBytes {
    pub fn of(self, v: &[u8]) -> Vec<u8> {
        match self {
            HeaderBytes::AsSent => v.to_vec(),
            HeaderBytes::Latin1AsUtf8 => v
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        }
    }

    /// The readings worth trying: one when every header is ASCII, where
    /// they agree.
    pub fn modes(headers: &http::HeaderMap) -> &'static [HeaderBytes] {
        if headers.values().all(|v| v.as_bytes().is_ascii()) {
            &[HeaderBytes::AsSent]
        } else {
            &[HeaderBytes::AsSent, HeaderBytes::Latin1AsUtf8]
        }
    }
}
