//! Read authentication of the admin side (`[http.auth]`): who may see the dashboards, the
//! APIs, the error groups and /metrics.
//!
//! When `http.auth` names viewer tokens or trusted proxies, every admin route needs one of:
//! - `Authorization: Bearer <token>`: the API token (`http.api_token`, role admin) or a viewer
//!   token (`http.auth.viewer_tokens`, role viewer);
//! - the user a reverse proxy signed in (`X-Forwarded-User`, or `http.auth.proxy_user_header`),
//!   believed only on connections from `http.auth.trusted_proxies` (role viewer: writes still
//!   need the API token, as before).
//!
//! Otherwise 401 with `WWW-Authenticate: Bearer`. A viewer's request with a method other than
//! GET, HEAD or OPTIONS is 403 (writes need the admin role). Ingest routes (`/v1/rum`, OTLP)
//! and `/healthz` are never behind it: they have their own credentials (client tokens, OTLP
//! tokens) or none. Without `http.auth` nothing changes: reads are open, which is why the agent
//! refuses to start with its admin listener off loopback and no `http.auth`.
//!
//! Whoever passed is in the request's extensions as a [`Principal`] (for the audit trail).

use crate::api;
use crate::secret::Secret;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The header a reverse proxy names its signed-in user in, by default.
pub const PROXY_USER_HEADER: &str = "x-forwarded-user";
/// A proxy's user name is at most this long.
const MAX_USER: usize = 256;

/// `[http.auth]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Bearer tokens that may read (dashboards, APIs, /metrics) but not write.
    pub viewer_tokens: Vec<Secret>,
    /// Reverse proxies (addresses or CIDR blocks) whose user header is believed.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies name the signed-in user in (default `X-Forwarded-User`).
    pub proxy_user_header: Option<String>,
}

impl AuthSection {
    /// True when reads need credentials.
    pub fn is_configured(&self) -> bool {
        !self.viewer_tokens.is_empty() || !self.trusted_proxies.is_empty()
    }

    /// What is wrong with it, by field path under `http.auth`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, t) in self.viewer_tokens.iter().enumerate() {
            if t.expose().trim().len() < 16 {
                out.push((format!("http.auth.viewer_tokens[{i}]"), "must be at least 16 characters".into()));
            }
        }
        for (i, p) in self.trusted_proxies.iter().enumerate() {
            if let Err(e) = api::parse_cidr(p) {
                out.push((format!("http.auth.trusted_proxies[{i}]"), e));
            }
        }
        if let Some(h) = &self.proxy_user_header {
            if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                out.push(("http.auth.proxy_user_header".into(), format!("{h:?} is not a header name")));
            }
        }
        out
    }
}

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Read.
    Viewer,
    /// Read and write.
    Admin,
}

/// Who a request came from, once it passed the gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `api_token`, `viewer_tokens[i]`, or the proxy's user name.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

/// The gate in front of the admin routes.
#[derive(Debug)]
pub struct ReadGate {
    admin_token: Option<Secret>,
    viewer_tokens: Vec<Secret>,
    proxies: Vec<ipnet::IpNet>,
    user_header: axum::http::HeaderName,
}

impl ReadGate {
    /// The gate of `section` with the API token `admin_token`; None when reads stay open.
    pub fn new(section: &AuthSection, admin_token: Option<Secret>) -> Option<Arc<ReadGate>> {
        if !section.is_configured() {
            return None;
        }
        let header = section.proxy_user_header.as_deref().unwrap_or(PROXY_USER_HEADER);
        Some(Arc::new(ReadGate {
            admin_token,
            viewer_tokens: section.viewer_tokens.clone(),
            proxies: section.trusted_proxies.iter().filter_map(|p| api::parse_cidr(p).ok()).collect(),
            user_header: axum::http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                .unwrap_or(axum::http::HeaderName::from_static(PROXY_USER_HEADER)),
        }))
    }

    /// Who sent `req` from `peer`, if anyone we know.
    fn principal(&self, req: &Request, peer: Option<IpAddr>) -> Option<Principal> {
        let bearer = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if let Some(given) = bearer {
            if self.admin_token.as_ref().is_some_and(|t| t.matches(given)) {
                return Some(Principal { name: "api_token".into(), role: Role::Admin });
            }
            // Every token is compared, so the time taken does not tell which one matched.
            let mut found = None;
            for (i, t) in self.viewer_tokens.iter().enumerate() {
                if t.matches(given) && found.is_none() {
                    found = Some(i);
                }
            }
            return found.map(|i| Principal { name: format!("viewer_tokens[{i}]"), role: Role::Viewer });
        }
        let from_proxy = peer.is_some_and(|ip| self.proxies.iter().any(|n| n.contains(&ip)));
        if from_proxy {
            let user = req.headers().get(&self.user_header).and_then(|v| v.to_str().ok()).map(str::trim);
            if let Some(u) = user.filter(|u| !u.is_empty() && u.len() <= MAX_USER && !u.chars().any(char::is_control)) {
                return Some(Principal { name: u.to_string(), role: Role::Viewer });
            }
        }
        None
    }
}

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(gate, require))`.
pub async fn require(State(gate): State<Arc<ReadGate>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let Some(who) = gate.principal(&req, peer) else {
        let mut r = api::error(
            StatusCode::UNAUTHORIZED,
            "this needs credentials: a bearer token (http.api_token or http.auth.viewer_tokens) or a trusted proxy's user",
        );
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"thorbis-obs\""));
        return r;
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads && who.role == Role::Viewer {
        return api::error(
            StatusCode::FORBIDDEN,
            format!("{} may read but not write: writes need the admin role", who.name),
        );
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// Whether `listen` (an address such as `0.0.0.0:9464`) is reachable only from this machine.
pub fn is_loopback(listen: &str) -> bool {
    listen.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bearer: Option<&str>, user: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder().uri("/api/v1/summary");
        if let Some(t) = bearer {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(u) = user {
            b = b.header("X-Forwarded-User", u);
        }
        b.body(axum::body::Body::empty()).expect("request")
    }

    #[test]
    fn tokens_and_a_trusted_proxy_s_user_are_believed_nothing_else() {
        let section = AuthSection {
            viewer_tokens: vec![Secret::new("viewer-token-aaaaaaaa"), Secret::new("viewer-token-bbbbbbbb")],
            trusted_proxies: vec!["10.0.0.0/8".into()],
            proxy_user_header: None,
        };
        let gate = ReadGate::new(&section, Some(Secret::new("admin-token-cccccccc"))).expect("configured");
        let proxy: Option<IpAddr> = Some("10.1.2.3".parse().expect("ip"));
        let elsewhere: Option<IpAddr> = Some("192.0.2.7".parse().expect("ip"));
        let who = |r: Request, peer| gate.principal(&r, peer);
        assert_eq!(
            who(request(Some("viewer-token-bbbbbbbb"), None), elsewhere),
            Some(Principal { name: "viewer_tokens[1]".into(), role: Role::Viewer })
        );
        assert_eq!(who(request(Some("admin-token-cccccccc"), None), elsewhere).map(|p| p.role), Some(Role::Admin));
        assert_eq!(who(request(Some("guess"), Some("alice")), proxy), None, "a wrong token is not saved by a header");
        assert_eq!(who(request(None, Some("alice")), proxy).map(|p| p.name), Some("alice".to_string()));
        assert_eq!(who(request(None, Some("alice")), elsewhere), None, "the header from anyone else is ignored");
        assert_eq!(who(request(None, Some("")), proxy), None);
        assert_eq!(who(request(None, Some(&"x".repeat(300))), proxy), None);
        assert!(ReadGate::new(&AuthSection::default(), None).is_none(), "no http.auth: reads stay open");
        let bad = AuthSection {
            viewer_tokens: vec![Secret::new("short")],
            trusted_proxies: vec!["proxy.local".into()],
            proxy_user_header: Some("bad header".into()),
        };
        let paths: Vec<String> = bad.problems().into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            ["http.auth.viewer_tokens[0]", "http.auth.trusted_proxies[0]", "http.auth.proxy_user_header"]
        );
    }
}
