//! Bucket CORS: the configuration (Put/Get/DeleteBucketCors), preflight
//! `OPTIONS` requests, and the `Access-Control-*` headers on actual
//! requests, so browsers can upload straight to a bucket with presigned URLs.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use metastore::api::CorsRule;
use serde::Deserialize;

use super::router::S3Request;
use super::xml::Xml;
use crate::error::Error;
use crate::server::Gateway;

/// Most rules a configuration may hold, as S3 allows.
const MAX_RULES: usize = 100;
const CORS_BODY_MAX_BYTES: usize = 64 << 10;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlRule {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(default)]
    allowed_origin: Vec<String>,
    #[serde(default)]
    allowed_method: Vec<String>,
    #[serde(default)]
    allowed_header: Vec<String>,
    #[serde(default)]
    expose_header: Vec<String>,
    max_age_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct XmlConfig {
    #[serde(default, rename = "CORSRule")]
    rules: Vec<XmlRule>,
}

/// Parses and validates a CORSConfiguration body.
pub fn parse(body: &[u8]) -> Result<Vec<CorsRule>, Error> {
    let doc: XmlConfig = super::xml::parse_doc(body)?;
    if doc.rules.is_empty() || doc.rules.len() > MAX_RULES {
        return Err(Error::MalformedXml(format!(
            "a CORS configuration holds 1 to {MAX_RULES} rules"
        )));
    }
    doc.rules
        .into_iter()
        .map(|r| {
            if r.allowed_origin.is_empty() || r.allowed_method.is_empty() {
                return Err(Error::MalformedXml(
                    "each CORSRule needs an AllowedOrigin and an AllowedMethod".into(),
                ));
            }
            if let Some(m) = r
                .allowed_method
                .iter()
                .find(|m| !METHODS.contains(&m.as_str()))
            {
                return Err(Error::InvalidRequest(format!(
                    "unsupported CORS method {m:?}: use GET, PUT, POST, DELETE or HEAD"
                )));
            }
            if let Some(o) = r.allowed_origin.iter().find(|o| o.matches('*').count() > 1) {
                return Err(Error::InvalidRequest(format!(
                    "AllowedOrigin {o:?} may hold at most one wildcard"
                )));
            }
            Ok(CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origin,
                allowed_methods: r.allowed_method,
                allowed_headers: r.allowed_header,
                expose_headers: r.expose_header,
                max_age_seconds: r.max_age_seconds,
            })
        })
        .collect()
}

pub fn to_xml(rules: &[CorsRule]) -> String {
    let mut x = Xml::root("CORSConfiguration");
    for r in rules {
        x.open("CORSRule");
        if let Some(id) = &r.id {
            x.elem("ID", id);
        }
        for o in &r.allowed_origins {
            x.elem("AllowedOrigin", o);
        }
        for m in &r.allowed_methods {
            x.elem("AllowedMethod", m);
        }
        for h in &r.allowed_headers {
            x.elem("AllowedHeader", h);
        }
        for h in &r.expose_headers {
            x.elem("ExposeHeader", h);
        }
        if let Some(age) = r.max_age_seconds {
            x.elem("MaxAgeSeconds", &age.to_string());
        }
        x.close("CORSRule");
    }
    x.finish("CORSConfiguration")
}

/// `pattern` with at most one `*` matching any run of characters.
/// Header names compare case-insensitively, origins exactly.
fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        None => p == v,
        Some((head, tail)) => {
            v.len() >= head.len() + tail.len() && v.starts_with(head) && v.ends_with(tail)
        }
    }
}

/// The first rule allowing `origin` to use `method` with `headers`.
fn matching<'r>(
    rules: &'r [CorsRule],
    origin: &str,
    method: &str,
    headers: &[&str],
) -> Option<&'r CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, origin, false))
            && r.allowed_methods.iter().any(|m| m == method)
            && headers
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| wildcard_match(a, h, true)))
    })
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The `Access-Control-*` headers a matching rule grants.
fn allow_headers(h: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    set(
        h,
        "access-control-allow-origin",
        if any { "*" } else { origin },
    );
    set(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set(h, "access-control-max-age", &age.to_string());
    }
    h.append(http::header::VARY, HeaderValue::from_static("Origin"));
}

/// Answers a preflight `OPTIONS` request (not authenticated, as browsers
/// send it without credentials).
pub async fn preflight(gw: &Gateway, bucket: Option<&str>, headers: &HeaderMap) -> Response {
    let result = async {
        let bucket = bucket.ok_or_else(|| Error::CorsForbidden("no bucket named".into()))?;
        let text = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let origin = text("origin").ok_or_else(|| {
            Error::InvalidRequest("a CORS preflight needs an Origin header".into())
        })?;
        let method = text("access-control-request-method").ok_or_else(|| {
            Error::InvalidRequest(
                "a CORS preflight needs an Access-Control-Request-Method header".into(),
            )
        })?;
        let requested: Vec<&str> = text("access-control-request-headers")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        let rules = gw.ns.head_bucket(bucket).await?.cors.unwrap_or_default();
        let rule = matching(&rules, origin, method, &requested).ok_or_else(|| {
            Error::CorsForbidden("this CORS request is not allowed by the bucket".into())
        })?;
        let mut resp = StatusCode::OK.into_response();
        let h = resp.headers_mut();
        allow_headers(h, rule, origin);
        if !requested.is_empty() {
            set(h, "access-control-allow-headers", &requested.join(", "));
        }
        Ok::<_, Error>(resp)
    }
    .await;
    result.unwrap_or_else(|e| super::error::S3Error::from_error(&e, "").into_response())
}

/// Adds the CORS headers an actual (non-preflight) request from a browser
/// is allowed, if the bucket has a matching rule.
pub async fn decorate(
    gw: &Gateway,
    bucket: &str,
    method: &Method,
    origin: &str,
    resp: &mut Response,
) {
    let Ok(info) = gw.ns.head_bucket(bucket).await else {
        return;
    };
    let rules = info.cors.unwrap_or_default();
    if let Some(rule) = matching(&rules, origin, method.as_str(), &[]) {
        allow_headers(resp.headers_mut(), rule, origin);
    }
}

pub async fn put(gw: &Gateway, req: &S3Request, body: axum::body::Body) -> Result<Response, Error> {
    let body = super::object::read_small_body(req, body, CORS_BODY_MAX_BYTES, true).await?;
    let rules = parse(&body)?;
    gw.ns.put_bucket_cors(req.bucket(), Some(rules)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn get(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    let rules = gw
        .ns
        .head_bucket(req.bucket())
        .await?
        .cors
        .ok_or(Error::NoSuchCorsConfiguration)?;
    Ok((
        [(http::header::CONTENT_TYPE, "application/xml")],
        to_xml(&rules),
    )
        .into_response())
}

pub async fn delete(gw: &Gateway, req: &S3Request) -> Result<Response, Error> {
    gw.ns.put_bucket_cors(req.bucket(), None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <AllowedOrigin>https://*.example.com</AllowedOrigin>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedHeader>Content-*</AllowedHeader>
    <AllowedHeader>x-amz-date</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <MaxAgeSeconds>600</MaxAgeSeconds>
  </CORSRule>
  <CORSRule><ID>any</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
</CORSConfiguration>"#;

    #[test]
    fn config_round_trips_and_matches() {
        let rules = parse(CONFIG.as_bytes()).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].max_age_seconds, Some(600));
        assert_eq!(parse(to_xml(&rules).as_bytes()).unwrap(), rules);

        let o = "https://www.example.com";
        assert!(matching(&rules, o, "PUT", &["content-type", "X-Amz-Date"]).is_some());
        assert!(matching(&rules, o, "PUT", &["authorization"]).is_none());
        assert!(matching(&rules, o, "DELETE", &[]).is_none());
        assert!(matching(&rules, "https://evil.org", "PUT", &[]).is_none());
        assert_eq!(
            matching(&rules, "https://evil.org", "HEAD", &[]).and_then(|r| r.id.as_deref()),
            Some("any")
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(matches!(
            parse(b"<CORSConfiguration>"),
            Err(Error::MalformedXml(_))
        ));
        assert!(matches!(
            parse(b"<CORSConfiguration></CORSConfiguration>"),
            Err(Error::MalformedXml(_))
        ));
        let no_method = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>";
        assert!(matches!(parse(no_method), Err(Error::MalformedXml(_))));
        let bad_method = b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>";
        assert!(matches!(parse(bad_method), Err(Error::InvalidRequest(_))));
    }
}
