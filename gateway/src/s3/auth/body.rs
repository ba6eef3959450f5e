//! Reads a request body the way its signature says it is protected, and
//! verifies that protection when the body ends: before the caller commits.

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::chunked::ChunkedDecoder;
use super::sigv4::{AuthContext, PayloadMode};
use crate::error::Error;

enum Inner {
    Plain(BodyDataStream),
    Chunked(Box<ChunkedDecoder<BodyDataStream>>),
}

pub struct BodyReader {
    inner: Inner,
    /// Running SHA-256 and the signed hex digest it must equal.
    sha256: Option<(Sha256, String)>,
    /// The decoded length the client declared.
    declared: Option<u64>,
    read: u64,
    done: bool,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Result<Option<u64>, Error> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| Error::InvalidArgument(format!("malformed {name}")))
        })
        .transpose()
}

impl BodyReader {
    pub fn new(body: Body, headers: &HeaderMap, auth: &AuthContext) -> Result<Self, Error> {
        let stream = body.into_data_stream();
        let (inner, sha256, declared) = match &auth.payload {
            PayloadMode::Sha256(hex) => (
                Inner::Plain(stream),
                Some((Sha256::new(), hex.clone())),
                header_u64(headers, "content-length")?,
            ),
            PayloadMode::Unsigned => (
                Inner::Plain(stream),
                None,
                header_u64(headers, "content-length")?,
            ),
            PayloadMode::StreamingSigned { .. } => (
                Inner::Chunked(Box::new(ChunkedDecoder::new(stream, Some(auth.clone())))),
                None,
                header_u64(headers, "x-amz-decoded-content-length")?,
            ),
            PayloadMode::StreamingUnsigned => (
                Inner::Chunked(Box::new(ChunkedDecoder::new(stream, None))),
                None,
                header_u64(headers, "x-amz-decoded-content-length")?,
            ),
        };
        Ok(Self {
            inner,
            sha256,
            declared,
            read: 0,
            done: false,
        })
    }

    /// The length the client declared for the decoded body, if any.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// The next piece of the body; `None` once the whole body has arrived and
    /// passed every check its signature calls for.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        if self.done {
            return Ok(None);
        }
        let piece = match &mut self.inner {
            Inner::Plain(s) => match s.next().await {
                Some(Ok(b)) => Some(b),
                Some(Err(e)) => return Err(Error::BodyRead(e.to_string())),
                None => None,
            },
            Inner::Chunked(d) => d.next().await?,
        };
        match piece {
            Some(b) => {
                self.read += b.len() as u64;
                if let Some((h, _)) = &mut self.sha256 {
                    h.update(&b);
                }
                if self.declared.is_some_and(|d| self.read > d) {
                    return Err(Error::InvalidRequest(
                        "body longer than its declared length".into(),
                    ));
                }
                Ok(Some(b))
            }
            None => {
                self.done = true;
                if self.declared.is_some_and(|d| self.read != d) {
                    return Err(Error::IncompleteBody);
                }
                if let Some((h, expected)) = self.sha256.take() {
                    if hex::encode(h.finalize()) != *expected {
                        return Err(Error::ContentSha256Mismatch);
                    }
                }
                Ok(None)
            }
        }
    }

    /// A trailer's value (after the body ended), e.g. `x-amz-checksum-crc32`.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        match &self.inner {
            Inner::Chunked(d) => d
                .trailers()
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
            Inner::Plain(_) => None,
        }
    }

    /// Reads the whole (small) body, e.g. an XML request.
    pub async fn read_all(&mut self, limit: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(b) = self.next().await? {
            if out.len() + b.len() > limit {
                return Err(Error::InvalidRequest("request body too large".into()));
            }
            out.extend_from_slice(&b);
        }
        Ok(out)
    }
}
