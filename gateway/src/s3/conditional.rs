//! Conditional requests (RFC 7232 as S3 applies them): `If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` on GET and
//! HEAD, and their `x-amz-copy-source-if-*` forms on a copy's source.
//! Conditions on writes are checked in the metastore, atomically with the
//! write (see `object::write_condition`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use metastore::state::etag_matches;

use crate::error::Error;

fn header<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// An HTTP date header; an unparsable date is ignored, as HTTP says.
fn date(h: &HeaderMap, name: &str) -> Option<SystemTime> {
    header(h, name).and_then(|v| httpdate::parse_http_date(v).ok())
}

/// Whether an object last modified at `mtime_ns` changed after `since`
/// (HTTP dates have whole seconds).
fn modified_since(mtime_ns: u64, since: SystemTime) -> bool {
    UNIX_EPOCH + Duration::from_secs(mtime_ns / 1_000_000_000) > since
}

/// The outcome of the four conditions under the names of one family.
enum Outcome {
    Proceed,
    /// `If-Match` or `If-Unmodified-Since` failed.
    Failed,
    /// `If-None-Match` or `If-Modified-Since` failed.
    NotModified,
}

fn evaluate(h: &HeaderMap, prefix: &str, etag: &str, mtime_ns: u64) -> Outcome {
    let name = |n: &str| format!("{prefix}{n}");
    match header(h, &name("if-match")) {
        Some(m) if !etag_matches(m, etag) => return Outcome::Failed,
        Some(_) => {}
        // If-Unmodified-Since counts only without If-Match.
        None => {
            if date(h, &name("if-unmodified-since")).is_some_and(|d| modified_since(mtime_ns, d)) {
                return Outcome::Failed;
            }
        }
    }
    match header(h, &name("if-none-match")) {
        Some(n) if etag_matches(n, etag) => return Outcome::NotModified,
        Some(_) => {}
        // If-Modified-Since counts only without If-None-Match.
        None => {
            if date(h, &name("if-modified-since")).is_some_and(|d| !modified_since(mtime_ns, d)) {
                return Outcome::NotModified;
            }
        }
    }
    Outcome::Proceed
}

/// GET/HEAD: 412 Precondition Failed or 304 Not Modified.
pub fn check_read(h: &HeaderMap, etag: &str, mtime_ns: u64) -> Result<(), Error> {
    match evaluate(h, "", etag, mtime_ns) {
        Outcome::Proceed => Ok(()),
        Outcome::Failed => Err(Error::PreconditionFailed),
        Outcome::NotModified => Err(Error::NotModified),
    }
}

/// A copy's source: every failed condition is 412, as S3 answers.
pub fn check_copy_source(h: &HeaderMap, etag: &str, mtime_ns: u64) -> Result<(), Error> {
    match evaluate(h, "x-amz-copy-source-", etag, mtime_ns) {
        Outcome::Proceed => Ok(()),
        Outcome::Failed | Outcome::NotModified => Err(Error::PreconditionFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    // 2026-01-01T00:00:00Z
    const T: u64 = 1_767_225_600_000_000_000;
    const BEFORE: &str = "Wed, 31 Dec 2025 00:00:00 GMT";
    const AFTER: &str = "Fri, 02 Jan 2026 00:00:00 GMT";

    #[test]
    fn read_conditions() {
        let ok = |p: &[(&str, &str)]| check_read(&headers(p), "abc", T);
        assert!(ok(&[]).is_ok());
        assert!(ok(&[("if-match", "\"abc\"")]).is_ok());
        assert!(ok(&[("if-match", "*")]).is_ok());
        assert!(matches!(
            ok(&[("if-match", "\"x\"")]),
            Err(Error::PreconditionFailed)
        ));
        assert!(matches!(
            ok(&[("if-none-match", "\"abc\"")]),
            Err(Error::NotModified)
        ));
        assert!(ok(&[("if-none-match", "\"x\", \"y\"")]).is_ok());
        assert!(matches!(
            ok(&[("if-modified-since", AFTER)]),
            Err(Error::NotModified)
        ));
        assert!(ok(&[("if-modified-since", BEFORE)]).is_ok());
        assert!(matches!(
            ok(&[("if-unmodified-since", BEFORE)]),
            Err(Error::PreconditionFailed)
        ));
        assert!(ok(&[("if-unmodified-since", AFTER)]).is_ok());
        // A matching If-Match overrides a failing If-Unmodified-Since, and a
        // non-matching If-None-Match overrides If-Modified-Since (S3's rules).
        assert!(ok(&[("if-match", "abc"), ("if-unmodified-since", BEFORE)]).is_ok());
        assert!(ok(&[("if-none-match", "x"), ("if-modified-since", AFTER)]).is_ok());
        assert!(ok(&[("if-modified-since", "garbage")]).is_ok());
    }

    #[test]
    fn copy_source_conditions_fail_with_412() {
        let h = headers(&[("x-amz-copy-source-if-none-match", "abc")]);
        assert!(matches!(
            check_copy_source(&h, "abc", T),
            Err(Error::PreconditionFailed)
        ));
        let h = headers(&[("x-amz-copy-source-if-match", "abc")]);
        assert!(check_copy_source(&h, "abc", T).is_ok());
    }
}
