//! The checksums S3 clients send (`x-amz-checksum-*` headers and trailers):
//! computed over the decoded body and compared before anything is committed.

use base64::Engine;
use sha1::Digest as _;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

const CRC64_NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

impl Algo {
    pub const ALL: [Algo; 5] = [
        Algo::Crc32,
        Algo::Crc32c,
        Algo::Crc64Nvme,
        Algo::Sha1,
        Algo::Sha256,
    ];

    /// The lowercase name used in header names: `x-amz-checksum-{name}`.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => "crc32",
            Algo::Crc32c => "crc32c",
            Algo::Crc64Nvme => "crc64nvme",
            Algo::Sha1 => "sha1",
            Algo::Sha256 => "sha256",
        }
    }

    pub fn header(self) -> String {
        format!("x-amz-checksum-{}", self.name())
    }

    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        let name = name.strip_prefix("x-amz-checksum-").unwrap_or(&name);
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A running checksum of one algorithm.
pub enum Hasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc::Digest<'static, u64>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    pub fn new(algo: Algo) -> Self {
        match algo {
            Algo::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Algo::Crc32c => Hasher::Crc32c(0),
            Algo::Crc64Nvme => Hasher::Crc64Nvme(CRC64_NVME.digest()),
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            Hasher::Crc64Nvme(d) => d.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    /// The checksum in the base64 form S3 headers carry.
    pub fn finish_base64(self) -> String {
        let raw: Vec<u8> = match self {
            Hasher::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Hasher::Crc32c(c) => c.to_be_bytes().to_vec(),
            Hasher::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        };
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

/// Which checksum a request announces: a header with its value now, or a
/// trailer whose value arrives after the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    None,
    Header(Algo, String),
    Trailer(Algo),
}

/// Reads the checksum a request announces. `x-amz-trailer` names a trailer;
/// otherwise the first `x-amz-checksum-*` header with a value.
pub fn expected(headers: &http::HeaderMap) -> Result<Expected, Error> {
    if let Some(t) = headers.get("x-amz-trailer") {
        let name = t.to_str().unwrap_or("").trim();
        return match Algo::from_name(name) {
            Some(a) if name.to_ascii_lowercase().starts_with("x-amz-checksum-") => {
                Ok(Expected::Trailer(a))
            }
            _ => Err(Error::InvalidRequest(format!(
                "unsupported trailer {name:?}"
            ))),
        };
    }
    for algo in Algo::ALL {
        if let Some(v) = headers.get(algo.header()) {
            let v = v
                .to_str()
                .map_err(|_| Error::InvalidRequest("checksum header is not text".into()))?;
            return Ok(Expected::Header(algo, v.trim().to_string()));
        }
    }
    Ok(Expected::None)
}

/// Compares a computed checksum with the one the client sent.
pub fn check(algo: Algo, computed: &str, sent: &str) -> Result<(), Error> {
    if computed == sent.trim() {
        Ok(())
    } else {
        Err(Error::ChecksumMismatch(algo.header()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(algo: Algo, data: &[u8]) -> String {
        let mut h = Hasher::new(algo);
        let (a, b) = data.split_at(data.len() / 2);
        h.update(a);
        h.update(b);
        h.finish_base64()
    }

    #[test]
    fn known_values() {
        // Check values of "123456789" for each CRC, and SHA digests of "abc".
        let hex =
            |s: &str| hex::encode(base64::engine::general_purpose::STANDARD.decode(s).unwrap());
        assert_eq!(hex(&b64(Algo::Crc32, b"123456789")), "cbf43926");
        assert_eq!(hex(&b64(Algo::Crc32c, b"123456789")), "e3069283");
        assert_eq!(hex(&b64(Algo::Crc64Nvme, b"123456789")), "ae8b14860a799888");
        assert_eq!(
            hex(&b64(Algo::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&b64(Algo::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn announced_checksums() {
        let mut h = http::HeaderMap::new();
        assert_eq!(expected(&h).unwrap(), Expected::None);
        h.insert("x-amz-checksum-crc32c", "abc=".parse().unwrap());
        assert_eq!(
            expected(&h).unwrap(),
            Expected::Header(Algo::Crc32c, "abc=".into())
        );
        h.insert("x-amz-trailer", "x-amz-checksum-crc64nvme".parse().unwrap());
        assert_eq!(expected(&h).unwrap(), Expected::Trailer(Algo::Crc64Nvme));
        h.insert("x-amz-trailer", "x-amz-other".parse().unwrap());
        assert!(expected(&h).is_err());
    }
}
