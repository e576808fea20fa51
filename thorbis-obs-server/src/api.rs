//! Small helpers every component's HTTP routes share: JSON error bodies, the bearer-token
//! check of the write endpoints, HTML answers. A leaf: it imports only [`crate::secret`].

use crate::secret::Secret;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Checks `Authorization: Bearer <token>` against `token` in constant time (the token's prefix
/// does not leak through timing). Without a configured token the endpoint refuses with 403.
pub fn authorize_bearer(token: Option<&Secret>, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = token else {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "write endpoints are disabled: set http.api_token")));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        let (a, b) = (g.as_bytes(), token.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if ok { Ok(()) } else { Err(Box::new(error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))) }
}

/// An HTML page or fragment that must not be cached (it shows live figures).
pub fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}
