//! The HTTP/2 client for node-to-node calls: every request carries the
//! cluster MAC (see [`crate::secret`]).

use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;

use crate::secret::{sha256_hex, ClusterSecret, AUTH_HEADER, BODY_SHA256_HEADER};
use crate::serve::{H2_CONN_WINDOW_BYTES, H2_STREAM_WINDOW_BYTES};

/// How long to wait for a TCP connection to another node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct RpcClient {
    http: reqwest::Client,
    secret: ClusterSecret,
}

impl RpcClient {
    pub fn new(secret: ClusterSecret) -> Self {
        let http = reqwest::Client::builder()
            .http2_prior_knowledge()
            .http2_initial_stream_window_size(H2_STREAM_WINDOW_BYTES)
            .http2_initial_connection_window_size(H2_CONN_WINDOW_BYTES)
            .http2_max_frame_size(1 << 20)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .http2_keep_alive_timeout(Duration::from_secs(10))
            .http2_keep_alive_while_idle(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("static HTTP client configuration is valid");
        Self { http, secret }
    }

    pub fn secret(&self) -> &ClusterSecret {
        &self.secret
    }

    /// Builds a signed request to `http://{addr}{path_and_query}`.
    /// `body_sha256` must be the hex SHA-256 of the body that will be sent.
    pub fn request_with_digest(
        &self,
        method: Method,
        addr: &str,
        path_and_query: &str,
        body_sha256: &str,
    ) -> reqwest::RequestBuilder {
        let auth = self
            .secret
            .sign(method.as_str(), path_and_query, body_sha256);
        self.http
            .request(method, format!("http://{addr}{path_and_query}"))
            .header(AUTH_HEADER, auth)
            .header(BODY_SHA256_HEADER, body_sha256)
    }

    /// A signed request carrying `body`.
    pub fn request(
        &self,
        method: Method,
        addr: &str,
        path_and_query: &str,
        body: Bytes,
    ) -> reqwest::RequestBuilder {
        let digest = sha256_hex(&body);
        self.request_with_digest(method, addr, path_and_query, &digest)
            .body(body)
    }

    /// A signed request with an empty body.
    pub fn request_empty(
        &self,
        method: Method,
        addr: &str,
        path_and_query: &str,
    ) -> reqwest::RequestBuilder {
        self.request(method, addr, path_and_query, Bytes::new())
    }
}

/// The server side of the MAC: an axum middleware that refuses unsigned or
/// wrongly signed requests with 401. It checks the MAC only; the body digest
/// is checked where the body is read ([`verify_body`]).
pub async fn require_cluster_auth(
    axum::extract::State(secret): axum::extract::State<ClusterSecret>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let verdict = {
        let path_q = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let digest = header(BODY_SHA256_HEADER).unwrap_or("");
        secret.verify(req.method().as_str(), path_q, digest, header(AUTH_HEADER))
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => (http::StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    }
}

/// Checks that `body` is what the signed [`BODY_SHA256_HEADER`] promised.
pub fn verify_body(headers: &http::HeaderMap, body: &[u8]) -> bool {
    headers
        .get(BODY_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|d| d == sha256_hex(body))
}
