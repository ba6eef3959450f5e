//! Bodies of `GET /health` (the process is alive) and `GET /ready` (it can
//! serve), shared by every role so that `curl` sees one shape.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub role: String,
    pub version: String,
}

impl Health {
    pub fn ok(role: &str) -> Self {
        Self {
            status: "ok".into(),
            role: role.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub ready: bool,
    pub role: String,
    /// Why the process is or is not ready, in words.
    pub detail: String,
}

impl Ready {
    /// The HTTP status `/ready` answers with: 200 when ready, else 503, so
    /// load balancers and `curl -f` can use it directly.
    pub fn status(&self) -> http::StatusCode {
        if self.ready {
            http::StatusCode::OK
        } else {
            http::StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// Answers a `/health` or `/ready` request with JSON and the right status.
pub fn ready_response(ready: Ready) -> axum::response::Response {
    use axum::response::IntoResponse;
    (ready.status(), axum::Json(ready)).into_response()
}
