//! Which object keys can be paths. Checked by the gateway after every
//! decoding step and again here, where the namespace is changed.

use crate::error::Error;

/// Longest object key, in bytes, as S3 allows.
pub const KEY_MAX_BYTES: usize = 1024;
/// Longest path component, in bytes, as NFS and POSIX file systems allow.
pub const NAME_MAX_BYTES: usize = 255;

/// A key is a path below its bucket: `/`-separated components, none empty,
/// `.` or `..`, no NUL. A trailing `/` is allowed (a "folder" object).
pub fn validate_key(key: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::InvalidKey(format!("{why}: {key:?}")));
    if key.is_empty() {
        return bad("empty key");
    }
    if key.len() > KEY_MAX_BYTES {
        return bad("key longer than 1024 bytes");
    }
    if key.contains('\0') {
        return bad("key contains NUL");
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if body.is_empty() {
        return bad("key has an empty path segment");
    }
    for part in body.split('/') {
        match part {
            "" => return bad("key has an empty path segment"),
            "." | ".." => return bad("key has a '.' or '..' segment"),
            p if p.len() > NAME_MAX_BYTES => return bad("key segment longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

/// Bucket names as S3 allows them: 3–63 of `a-z0-9.-`, starting and ending
/// with a letter or digit, no `..`, not an IPv4 address.
pub fn validate_bucket_name(name: &str) -> Result<(), Error> {
    let bad = || Err(Error::Invalid(format!("invalid bucket name {name:?}")));
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return bad();
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
    {
        return bad();
    }
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge(b[0]) || !edge(b[b.len() - 1]) || name.contains("..") {
        return bad();
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "a/b", "a/b/", "a-b.c", "ü/ß", "dir/"] {
            validate_key(ok).unwrap();
        }
        for bad in [
            "", "/", "/a", "a//b", "a/./b", "../a", "a/..", ".", "a\0b", "//",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_key(&"x".repeat(256)).is_err());
        validate_key(&"x".repeat(255)).unwrap();
        assert!(validate_key(&"a/".repeat(600)).is_err());
    }

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "a.b.c", "123"] {
            validate_bucket_name(ok).unwrap();
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.1.1",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
