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

    /// The name in `x-amz-checksum-algorithm` and in XML: `CRC32`, ….
    pub fn upper(self) -> &'static str {
        match self {
            Algo::Crc32 => "CRC32",
            Algo::Crc32c => "CRC32C",
            Algo::Crc64Nvme => "CRC64NVME",
            Algo::Sha1 => "SHA1",
            Algo::Sha256 => "SHA256",
        }
    }

    /// The XML element carrying a value: `ChecksumCRC32`, ….
    pub fn element(self) -> String {
        format!("Checksum{}", self.upper())
    }

    /// The CRC parameters of a CRC algorithm, for combining; `None` for
    /// the SHAs, which cannot be combined.
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Algo::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Algo::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Algo::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Algo::Sha1 | Algo::Sha256 => None,
        }
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

/// What `x-amz-checksum-type` names: a checksum of the parts' checksums,
/// or one of every byte of the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Composite,
    FullObject,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Composite => "COMPOSITE",
            Kind::FullObject => "FULL_OBJECT",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "COMPOSITE" => Some(Kind::Composite),
            "FULL_OBJECT" => Some(Kind::FullObject),
            _ => None,
        }
    }
}

/// The checksum a CreateMultipartUpload asks for
/// (`x-amz-checksum-algorithm`, `x-amz-checksum-type`), checked as S3
/// does: full-object checksums only for CRCs, composite ones not for
/// CRC64NVME, whose default is full-object.
pub fn upload_checksum(headers: &http::HeaderMap) -> Result<Option<(Algo, Kind)>, Error> {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().map(str::trim))
            .transpose()
            .map_err(|_| Error::InvalidRequest(format!("{name} is not text")))
    };
    let algo = match text("x-amz-checksum-algorithm")? {
        None => None,
        Some(name) => Some(Algo::from_name(name).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "x-amz-checksum-algorithm {name:?} is not one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256"
            ))
        })?),
    };
    let kind = match text("x-amz-checksum-type")? {
        None => None,
        Some(name) => Some(Kind::from_name(name).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "x-amz-checksum-type {name:?} is not COMPOSITE or FULL_OBJECT"
            ))
        })?),
    };
    let Some(algo) = algo else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(Error::InvalidRequest(
                "x-amz-checksum-type needs x-amz-checksum-algorithm".into(),
            )),
        };
    };
    let kind = kind.unwrap_or(if algo == Algo::Crc64Nvme {
        Kind::FullObject
    } else {
        Kind::Composite
    });
    match (algo, kind) {
        (Algo::Sha1 | Algo::Sha256, Kind::FullObject) | (Algo::Crc64Nvme, Kind::Composite) => {
            Err(Error::InvalidRequest(format!(
                "the {} checksum type is not supported with {}",
                kind.name(),
                algo.upper()
            )))
        }
        _ => Ok(Some((algo, kind))),
    }
}

fn decode(algo: Algo, value: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| Error::InvalidRequest(format!("{} is not base64: {value:?}", algo.element())))
}

/// The composite checksum of an object from its parts' checksums: the
/// checksum of their concatenated raw values, then `-N`.
pub fn composite(algo: Algo, parts: &[&str]) -> Result<String, Error> {
    let mut h = Hasher::new(algo);
    for p in parts {
        h.update(&decode(algo, p)?);
    }
    Ok(format!("{}-{}", h.finish_base64(), parts.len()))
}

/// The full-object CRC of an object from its parts' CRCs and sizes.
pub fn full_object(algo: Algo, parts: &[(&str, u64)]) -> Result<String, Error> {
    let crc = algo.crc().ok_or_else(|| {
        Error::InvalidRequest(format!("{} cannot be a full-object checksum", algo.upper()))
    })?;
    let width = if algo == Algo::Crc64Nvme { 8 } else { 4 };
    let mut whole: Option<u64> = None;
    for (value, len) in parts {
        let raw = decode(algo, value)?;
        if raw.len() != width {
            return Err(Error::InvalidRequest(format!(
                "{} is not {width} bytes",
                algo.element()
            )));
        }
        let part = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        whole = Some(match whole {
            None => part,
            Some(w) => crc_fast::checksum_combine(crc, w, part, *len),
        });
    }
    let whole = whole.unwrap_or(0).to_be_bytes();
    Ok(base64::engine::general_purpose::STANDARD.encode(&whole[8 - width..]))
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
    fn parts_combine_into_the_whole() {
        let data = b"123456789abcdefghij";
        let (a, b) = data.split_at(7);
        for algo in [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme] {
            let whole = full_object(
                algo,
                &[
                    (&b64(algo, a), a.len() as u64),
                    (&b64(algo, b), b.len() as u64),
                ],
            )
            .unwrap();
            assert_eq!(whole, b64(algo, data), "{algo:?}");
            let one = full_object(algo, &[(&b64(algo, data), data.len() as u64)]).unwrap();
            assert_eq!(one, b64(algo, data));
        }
        assert!(full_object(Algo::Sha256, &[(&b64(Algo::Sha256, a), 7)]).is_err());
        // Composite: the checksum of the raw part checksums, then -N.
        let raw = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        let (pa, pb) = (b64(Algo::Sha256, a), b64(Algo::Sha256, b));
        let mut both = raw(&pa);
        both.extend(raw(&pb));
        assert_eq!(
            composite(Algo::Sha256, &[&pa, &pb]).unwrap(),
            format!("{}-2", b64(Algo::Sha256, &both))
        );
        assert!(composite(Algo::Sha256, &["not base64!"]).is_err());
    }

    #[test]
    fn upload_checksum_headers() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            upload_checksum(&m)
        };
        assert_eq!(h(&[]).unwrap(), None);
        let algo = "x-amz-checksum-algorithm";
        let kind = "x-amz-checksum-type";
        assert_eq!(
            h(&[(algo, "SHA256")]).unwrap(),
            Some((Algo::Sha256, Kind::Composite))
        );
        assert_eq!(
            h(&[(algo, "crc64nvme")]).unwrap(),
            Some((Algo::Crc64Nvme, Kind::FullObject))
        );
        assert_eq!(
            h(&[(algo, "CRC32"), (kind, "FULL_OBJECT")]).unwrap(),
            Some((Algo::Crc32, Kind::FullObject))
        );
        assert!(h(&[(algo, "SHA1"), (kind, "FULL_OBJECT")]).is_err());
        assert!(h(&[(algo, "CRC64NVME"), (kind, "COMPOSITE")]).is_err());
        assert!(h(&[(algo, "MD5")]).is_err());
        assert!(h(&[(kind, "COMPOSITE")]).is_err());
        assert!(h(&[(algo, "CRC32"), (kind, "PARTIAL")]).is_err());
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
