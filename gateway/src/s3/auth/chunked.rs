//! The `aws-chunked` content encoding: a body cut into
//! `hex-size[;chunk-signature=sig]\r\n<data>\r\n` chunks, ending with a
//! zero-size chunk and optional trailers (`name:value\r\n`, then `\r\n`).
//!
//! With signatures, each chunk's signature chains from the previous one
//! (the first from the request's own signature) and the trailers carry
//! `x-amz-trailer-signature`. Data is handed on as it arrives; a chunk whose
//! signature fails fails the whole body before anything is committed.

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::sigv4::{AuthContext, EMPTY_SHA256};
use crate::error::Error;

/// Longest chunk header or trailer line accepted.
const LINE_MAX_BYTES: usize = 4096;
/// Largest chunk size accepted in a chunk header.
const CHUNK_MAX_BYTES: u64 = 64 << 20;

enum State {
    Header,
    Data { remaining: u64 },
    DataEnd,
    Trailers,
    Done,
}

pub struct ChunkedDecoder<S> {
    inner: S,
    buf: BytesMut,
    state: State,
    eof: bool,
    signer: Option<AuthContext>,
    prev_signature: String,
    chunk_signature: Option<String>,
    chunk_hash: Sha256,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    decoded: u64,
}

impl<S, E> ChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// `signer` verifies chunk signatures; `None` for unsigned streaming.
    pub fn new(inner: S, signer: Option<AuthContext>) -> Self {
        let prev_signature = signer
            .as_ref()
            .map(|s| s.seed_signature.clone())
            .unwrap_or_default();
        Self {
            inner,
            buf: BytesMut::new(),
            state: State::Header,
            eof: false,
            signer,
            prev_signature,
            chunk_signature: None,
            chunk_hash: Sha256::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            decoded: 0,
        }
    }

    /// Trailers received after the last chunk (valid once `next` gave `None`).
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Bytes of decoded data so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    async fn fill(&mut self) -> Result<bool, Error> {
        if self.eof {
            return Ok(false);
        }
        match self.inner.next().await {
            Some(Ok(b)) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Err(e)) => Err(Error::BodyRead(e.to_string())),
            None => {
                self.eof = true;
                Ok(false)
            }
        }
    }

    async fn line(&mut self) -> Result<String, Error> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(at);
                self.buf.advance(2);
                return String::from_utf8(line.to_vec())
                    .map_err(|_| Error::MalformedChunkedBody("line is not UTF-8".into()));
            }
            if self.buf.len() > LINE_MAX_BYTES {
                return Err(Error::MalformedChunkedBody("line too long".into()));
            }
            if !self.fill().await? {
                return Err(Error::IncompleteBody);
            }
        }
    }

    fn check_chunk_signature(&mut self) -> Result<(), Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let given = self
            .chunk_signature
            .take()
            .ok_or_else(|| Error::MalformedChunkedBody("chunk without signature".into()))?;
        let hash = std::mem::replace(&mut self.chunk_hash, Sha256::new());
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            signer.datetime,
            signer.scope,
            self.prev_signature,
            EMPTY_SHA256,
            hex::encode(hash.finalize())
        );
        let expected = signer.sign(&sts);
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(Error::SignatureDoesNotMatch);
        }
        self.prev_signature = given;
        Ok(())
    }

    fn check_trailer_signature(&mut self) -> Result<(), Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let Some(given) = self.trailer_signature.take() else {
            // Signed streaming without trailers ends at the final chunk.
            return if self.trailers.is_empty() {
                Ok(())
            } else {
                Err(Error::MalformedChunkedBody(
                    "trailers without signature".into(),
                ))
            };
        };
        let mut canonical = String::new();
        for (k, v) in &self.trailers {
            canonical.push_str(&format!("{k}:{v}\n"));
        }
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            signer.datetime,
            signer.scope,
            self.prev_signature,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        if !bool::from(signer.sign(&sts).as_bytes().ct_eq(given.as_bytes())) {
            return Err(Error::SignatureDoesNotMatch);
        }
        Ok(())
    }

    /// The next piece of decoded data, or `None` at the verified end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.state {
                State::Header => {
                    let line = self.line().await?;
                    let (size, ext) = line.split_once(';').unwrap_or((&line, ""));
                    let size = u64::from_str_radix(size.trim(), 16)
                        .map_err(|_| Error::MalformedChunkedBody("bad chunk size".into()))?;
                    if size > CHUNK_MAX_BYTES {
                        return Err(Error::MalformedChunkedBody("chunk too large".into()));
                    }
                    self.chunk_signature = ext
                        .split(';')
                        .find_map(|e| e.trim().strip_prefix("chunk-signature="))
                        .map(str::to_string);
                    if size == 0 {
                        self.check_chunk_signature()?;
                        self.state = State::Trailers;
                    } else {
                        self.state = State::Data { remaining: size };
                    }
                }
                State::Data { remaining } => {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(Error::IncompleteBody);
                    }
                    let take = (self.buf.len() as u64).min(remaining) as usize;
                    let data = self.buf.split_to(take).freeze();
                    if self.signer.is_some() {
                        self.chunk_hash.update(&data);
                    }
                    self.decoded += take as u64;
                    self.state = if remaining == take as u64 {
                        State::DataEnd
                    } else {
                        State::Data {
                            remaining: remaining - take as u64,
                        }
                    };
                    return Ok(Some(data));
                }
                State::DataEnd => {
                    let line = self.line().await?;
                    if !line.is_empty() {
                        return Err(Error::MalformedChunkedBody(
                            "chunk data longer than its size".into(),
                        ));
                    }
                    self.check_chunk_signature()?;
                    self.state = State::Header;
                }
                State::Trailers => {
                    // A body may end right after the final chunk's line.
                    if self.buf.is_empty() && !self.fill().await? {
                        self.check_trailer_signature()?;
                        self.state = State::Done;
                        continue;
                    }
                    let line = self.line().await?;
                    if line.is_empty() {
                        self.check_trailer_signature()?;
                        self.state = State::Done;
                        continue;
                    }
                    let (k, v) = line
                        .split_once(':')
                        .ok_or_else(|| Error::MalformedChunkedBody("bad trailer".into()))?;
                    let k = k.trim().to_ascii_lowercase();
                    if k == "x-amz-trailer-signature" {
                        self.trailer_signature = Some(v.trim().to_string());
                    } else {
                        self.trailers.push((k, v.trim().to_string()));
                    }
                }
                State::Done => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::auth::sigv4::{parse_amz_date, PayloadMode};
    use aws_sigv4::sign::v4::generate_signing_key;

    fn stream(body: Vec<u8>, piece: usize) -> impl Stream<Item = Result<Bytes, String>> + Unpin {
        let pieces: Vec<Result<Bytes, String>> = body
            .chunks(piece.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(pieces)
    }

    async fn decode_all<S>(d: &mut ChunkedDecoder<S>) -> Result<Vec<u8>, Error>
    where
        S: Stream<Item = Result<Bytes, String>> + Unpin,
    {
        let mut out = Vec::new();
        while let Some(b) = d.next().await? {
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    /// AWS's worked example of STREAMING-AWS4-HMAC-SHA256-PAYLOAD: 66560
    /// bytes of 'a' in a 65536-byte and a 1024-byte chunk.
    fn aws_example_signer() -> AuthContext {
        let time = parse_amz_date("20130524T000000Z").unwrap();
        let key = generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            time,
            "us-east-1",
            "s3",
        );
        AuthContext {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            datetime: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            signing_key: key.as_ref().to_vec(),
            seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                .into(),
            payload: PayloadMode::StreamingSigned { trailer: false },
        }
    }

    fn aws_example_body(tamper: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend(std::iter::repeat_n(b'a', 65536));
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend(std::iter::repeat_n(if tamper { b'b' } else { b'a' }, 1024));
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        body
    }

    #[tokio::test]
    async fn aws_signed_example_verifies() {
        for piece in [1, 7, 1000, 1 << 20] {
            let mut d = ChunkedDecoder::new(
                stream(aws_example_body(false), piece),
                Some(aws_example_signer()),
            );
            let out = decode_all(&mut d).await.unwrap();
            assert_eq!(out.len(), 66560);
            assert!(out.iter().all(|b| *b == b'a'));
        }
    }

    #[tokio::test]
    async fn tampered_chunk_fails() {
        let mut d = ChunkedDecoder::new(
            stream(aws_example_body(true), 4096),
            Some(aws_example_signer()),
        );
        assert!(matches!(
            decode_all(&mut d).await,
            Err(Error::SignatureDoesNotMatch)
        ));
    }

    #[tokio::test]
    async fn unsigned_with_trailer() {
        let body =
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n".to_vec();
        for piece in [1, 3, 100] {
            let mut d = ChunkedDecoder::new(stream(body.clone(), piece), None);
            assert_eq!(decode_all(&mut d).await.unwrap(), b"hello world");
            assert_eq!(
                d.trailers(),
                &[("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
            );
        }
    }

    #[tokio::test]
    async fn truncated_and_malformed_bodies_fail() {
        let mut d = ChunkedDecoder::new(stream(b"5\r\nhel".to_vec(), 2), None);
        assert!(matches!(
            decode_all(&mut d).await,
            Err(Error::IncompleteBody)
        ));
        let mut d = ChunkedDecoder::new(stream(b"zz\r\n".to_vec(), 2), None);
        assert!(matches!(
            decode_all(&mut d).await,
            Err(Error::MalformedChunkedBody(_))
        ));
        let mut d = ChunkedDecoder::new(stream(b"2\r\nhello\r\n0\r\n\r\n".to_vec(), 2), None);
        assert!(matches!(
            decode_all(&mut d).await,
            Err(Error::MalformedChunkedBody(_))
        ));
    }
}
