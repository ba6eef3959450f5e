//! The cluster secret and the MAC carried by every internal request.
//!
//! A request is signed over its method, path and query, a Unix timestamp and
//! the SHA-256 of its body. The receiver checks the MAC in constant time and
//! refuses timestamps outside [`MAX_CLOCK_SKEW_SECS`], which bounds replay.
//! The body digest is checked by whoever reads the body (a JSON extractor, or
//! the blob store, whose blob names are the SHA-256 of their content).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header carrying `<unix seconds>.<hex mac>`.
pub const AUTH_HEADER: &str = "x-troika-auth";
/// Header carrying the lowercase hex SHA-256 of the request body.
pub const BODY_SHA256_HEADER: &str = "x-troika-body-sha256";
/// How far a request's timestamp may be from the receiver's clock.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

const SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cluster secret file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cluster secret must be {SECRET_BYTES} bytes as 64 hex characters")]
    Malformed,
    #[error("missing {AUTH_HEADER} header")]
    MissingAuth,
    #[error("malformed {AUTH_HEADER} header")]
    MalformedAuth,
    #[error("request timestamp is outside the allowed clock skew")]
    Expired,
    #[error("request MAC does not match the cluster secret")]
    BadMac,
}

/// The secret every process of one cluster shares.
#[derive(Clone)]
pub struct ClusterSecret {
    key: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    pub fn generate() -> Self {
        Self {
            key: rand::random(),
        }
    }

    pub fn from_hex(text: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SecretError::Malformed)?;
        let key: [u8; SECRET_BYTES] = bytes.try_into().map_err(|_| SecretError::Malformed)?;
        Ok(Self { key })
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_hex(&text)
    }

    /// Derives an independent key for another purpose (e.g. NFS handle MACs),
    /// so one key is never used for two kinds of message.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"troika-derive\n");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    fn compute(&self, method: &str, path_and_query: &str, ts: u64, body_sha256: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path_and_query.as_bytes());
        mac.update(b"\n");
        mac.update(ts.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(body_sha256.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The value of [`AUTH_HEADER`] for a request sent now.
    pub fn sign(&self, method: &str, path_and_query: &str, body_sha256: &str) -> String {
        let ts = unix_now();
        let mac = self.compute(method, path_and_query, ts, body_sha256);
        format!("{ts}.{}", hex::encode(mac))
    }

    /// Checks an [`AUTH_HEADER`] value against the request it came with.
    pub fn verify(
        &self,
        method: &str,
        path_and_query: &str,
        body_sha256: &str,
        auth: Option<&str>,
    ) -> Result<(), SecretError> {
        let auth = auth.ok_or(SecretError::MissingAuth)?;
        let (ts, mac_hex) = auth.split_once('.').ok_or(SecretError::MalformedAuth)?;
        let ts: u64 = ts.parse().map_err(|_| SecretError::MalformedAuth)?;
        let given = hex::decode(mac_hex).map_err(|_| SecretError::MalformedAuth)?;
        if unix_now().abs_diff(ts) > MAX_CLOCK_SKEW_SECS {
            return Err(SecretError::Expired);
        }
        let expected = self.compute(method, path_and_query, ts, body_sha256);
        if bool::from(expected.as_slice().ct_eq(&given)) {
            Ok(())
        } else {
            Err(SecretError::BadMac)
        }
    }
}

/// Lowercase hex SHA-256, the body digest format of [`BODY_SHA256_HEADER`].
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_request_verifies() {
        let s = ClusterSecret::generate();
        let body = sha256_hex(b"{}");
        let auth = s.sign("POST", "/v1/command", &body);
        s.verify("POST", "/v1/command", &body, Some(&auth)).unwrap();
    }

    #[test]
    fn any_change_is_refused() {
        let s = ClusterSecret::generate();
        let body = sha256_hex(b"{}");
        let auth = s.sign("POST", "/v1/command", &body);
        assert!(matches!(
            s.verify("PUT", "/v1/command", &body, Some(&auth)),
            Err(SecretError::BadMac)
        ));
        assert!(matches!(
            s.verify("POST", "/v1/query", &body, Some(&auth)),
            Err(SecretError::BadMac)
        ));
        assert!(matches!(
            s.verify("POST", "/v1/command", &sha256_hex(b"[]"), Some(&auth)),
            Err(SecretError::BadMac)
        ));
        let other = ClusterSecret::generate();
        assert!(matches!(
            other.verify("POST", "/v1/command", &body, Some(&auth)),
            Err(SecretError::BadMac)
        ));
        assert!(matches!(
            s.verify("POST", "/v1/command", &body, None),
            Err(SecretError::MissingAuth)
        ));
    }

    #[test]
    fn stale_timestamp_is_refused() {
        let s = ClusterSecret::generate();
        let body = sha256_hex(b"");
        let ts = unix_now() - MAX_CLOCK_SKEW_SECS - 10;
        let mac = s.compute("GET", "/x", ts, &body);
        let auth = format!("{ts}.{}", hex::encode(mac));
        assert!(matches!(
            s.verify("GET", "/x", &body, Some(&auth)),
            Err(SecretError::Expired)
        ));
    }

    #[test]
    fn hex_round_trip_and_malformed() {
        let s = ClusterSecret::generate();
        let t = ClusterSecret::from_hex(&s.to_hex()).unwrap();
        assert_eq!(s.key, t.key);
        assert!(ClusterSecret::from_hex("abcd").is_err());
        assert!(ClusterSecret::from_hex(&"zz".repeat(32)).is_err());
    }
}
