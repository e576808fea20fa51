//! Read authentication of the admin side (`[http.auth]`): who may see the dashboards, the
//! APIs, the error groups and /metrics, and who may change things.
//!
//! When `http.auth` names viewer tokens, users or trusted proxies, every admin route needs one of:
//! - `Authorization: Bearer <token>`: the API token (`http.api_token`, role admin) or a viewer
//!   token (`http.auth.viewer_tokens`, role viewer);
//! - a session cookie from the login form (`GET /login`), for a user of `[[http.auth.users]]`
//!   (argon2 password hashes, made by `thorbis-obs auth hash-password`; role viewer or admin);
//! - the user a reverse proxy signed in (`X-Forwarded-User`, or `http.auth.proxy_user_header`),
//!   believed only on connections from `http.auth.trusted_proxies` (role viewer, admin for the
//!   names in `http.auth.proxy_admins`).
//!
//! Otherwise 401 with `WWW-Authenticate: Bearer`, or, for a browser asking for a page while
//! users are configured, a redirect to the login form. A viewer's request with a method other
//! than GET, HEAD or OPTIONS is 403 (writes need the admin role). A write authenticated by the
//! cookie must also carry the session's CSRF token in `X-CSRF-Token` (or a `csrf` form field):
//! `GET /api/v1/session` gives it to the agent's own pages, and no other site can read it. With
//! `SameSite=Strict` on the cookie that is two locks on the same door.
//!
//! The cookie (`thorbis_session`) is HttpOnly, SameSite=Strict, Path=/, and Secure when the
//! request came over TLS through a trusted proxy (`X-Forwarded-Proto: https`) or
//! `http.auth.secure_cookie = true`. Sessions live in the agent's memory (at most 10,000; a
//! restart or a config reload signs everyone out) for `http.auth.session_ttl` (12 h). Two
//! password checks run at once at most (argon2 costs ~20 MB and tens of milliseconds each): more
//! logins at once are told to retry (503), which also slows guessing; an unknown user costs the
//! same check as a known one.
//!
//! Ingest routes (`/v1/rum`, OTLP) and `/healthz` are never behind it: they have their own
//! credentials (client tokens, OTLP tokens) or none. Without `http.auth` reads are open, which
//! is why the agent refuses to start with its admin listener off loopback and no `http.auth`.
//!
//! Whoever passed is in the request's extensions as a [`Principal`] (for the audit trail).

use crate::api;
use crate::secret::Secret;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use thorbis_obs_core::time::HumanDuration;

/// The header a reverse proxy names its signed-in user in, by default.
pub const PROXY_USER_HEADER: &str = "x-forwarded-user";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "thorbis_session";
/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A proxy's user name is at most this long.
const MAX_USER: usize = 256;
/// Sessions held at once, at most.
pub const MAX_SESSIONS: usize = 10_000;
/// Password checks running at once, at most.
const PASSWORD_CHECKS: usize = 2;
/// A login form's body, at most.
const MAX_LOGIN_BODY: usize = 4 * 1024;

/// `[http.auth]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// Bearer tokens that may read (dashboards, APIs, /metrics) but not write.
    pub viewer_tokens: Vec<Secret>,
    /// People who sign in with the login form.
    pub users: Vec<User>,
    /// How long a login lasts (default 12 h).
    pub session_ttl: Option<HumanDuration>,
    /// Mark the session cookie Secure always (true), never (false), or, unset, when a trusted
    /// proxy says the request came over TLS.
    pub secure_cookie: Option<bool>,
    /// Reverse proxies (addresses or CIDR blocks) whose user header is believed.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies name the signed-in user in (default `X-Forwarded-User`).
    pub proxy_user_header: Option<String>,
    /// The proxy's users who have the admin role (the others are viewers).
    pub proxy_admins: Vec<String>,
}

/// `[[http.auth.users]]`: someone who signs in with the login form.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The name they sign in with (and the audit trail shows).
    pub name: String,
    /// Their password's argon2 hash as a PHC string (`$argon2id$v=19$...`), from
    /// `thorbis-obs auth hash-password`.
    pub password_hash: Secret,
    /// `viewer` (default) or `admin`.
    #[serde(default = "viewer")]
    pub role: Role,
}

fn viewer() -> Role {
    Role::Viewer
}

impl AuthSection {
    /// True when reads need credentials.
    pub fn is_configured(&self) -> bool {
        !self.viewer_tokens.is_empty() || !self.trusted_proxies.is_empty() || !self.users.is_empty()
    }

    /// What is wrong with it, by field path under `http.auth`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, t) in self.viewer_tokens.iter().enumerate() {
            if t.expose().trim().len() < 16 {
                out.push((format!("http.auth.viewer_tokens[{i}]"), "must be at least 16 characters".into()));
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("http.auth.users[{i}]");
            if !valid_name(&u.name) {
                out.push((format!("{at}.name"), "1 to 64 characters, none of them control or blank".into()));
            } else if self.users[..i].iter().any(|o| o.name == u.name) {
                out.push((format!("{at}.name"), format!("{:?} is listed twice", u.name)));
            }
            if let Err(e) = parse_hash(u.password_hash.expose()) {
                out.push((format!("{at}.password_hash"), e));
            }
        }
        if self
            .session_ttl
            .is_some_and(|t| t.get() < Duration::from_secs(60) || t.get() > Duration::from_secs(30 * 86400))
        {
            out.push(("http.auth.session_ttl".into(), "between 1m and 30d".into()));
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
        if !self.proxy_admins.is_empty() && self.trusted_proxies.is_empty() {
            out.push((
                "http.auth.proxy_admins".into(),
                "names proxy users but http.auth.trusted_proxies is empty".into(),
            ));
        }
        out
    }
}

/// A name people are shown under (a user, who acknowledged, who made a silence): 1 to 64
/// characters, not blank, none of them control.
pub fn valid_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 64 && !name.chars().any(char::is_control)
}

/// An argon2 PHC string, checked (the hash's text is never in the message).
fn parse_hash(text: &str) -> Result<argon2::PasswordHash<'_>, String> {
    let hash = argon2::PasswordHash::new(text)
        .map_err(|e| format!("not a PHC hash string ({e}): make one with `thorbis-obs auth hash-password`"))?;
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err(format!("{} is not argon2: make one with `thorbis-obs auth hash-password`", hash.algorithm));
    }
    Ok(hash)
}

/// The argon2id hash of `password` (a fresh salt, the crate's default cost: 19 MiB, 2 passes),
/// as a PHC string for `[[http.auth.users]]`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = argon2::password_hash::SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    parse_hash(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read.
    Viewer,
    /// Read and write.
    Admin,
}

impl Role {
    /// `viewer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// Who a request came from, once it passed the gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `api_token`, `viewer_tokens[i]`, a user's name, or the proxy's user name.
    pub name: String,
    /// What they may do.
    pub role: Role,
}

struct Session {
    who: Principal,
    csrf: Secret,
    expires: Instant,
}

/// The gate in front of the admin routes.
pub struct ReadGate {
    admin_token: Option<Secret>,
    viewer_tokens: Vec<Secret>,
    users: Vec<User>,
    ttl: Duration,
    secure_cookie: Option<bool>,
    proxies: Vec<ipnet::IpNet>,
    user_header: axum::http::HeaderName,
    proxy_admins: Vec<String>,
    sessions: Mutex<HashMap<String, Session>>,
    checks: tokio::sync::Semaphore,
}

impl std::fmt::Debug for ReadGate {
    // Session ids and CSRF tokens are bearer secrets: only their count is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadGate")
            .field("viewer_tokens", &self.viewer_tokens.len())
            .field("users", &self.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>())
            .field("proxies", &self.proxies)
            .field("sessions", &self.sessions())
            .finish_non_exhaustive()
    }
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
            users: section.users.clone(),
            ttl: section.session_ttl.map_or(Duration::from_secs(12 * 3600), |t| t.get()),
            secure_cookie: section.secure_cookie,
            proxies: section.trusted_proxies.iter().filter_map(|p| api::parse_cidr(p).ok()).collect(),
            user_header: axum::http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                .unwrap_or(axum::http::HeaderName::from_static(PROXY_USER_HEADER)),
            proxy_admins: section.proxy_admins.clone(),
            sessions: Mutex::new(HashMap::new()),
            checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS),
        }))
    }

    /// True when people sign in with the login form.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    fn is_trusted_proxy(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.proxies.iter().any(|n| n.contains(&ip)))
    }

    /// Who sent `headers` from `peer`, if anyone we know, and the session's CSRF token when it
    /// was the cookie.
    fn principal(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<(Principal, Option<String>)> {
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if let Some(given) = bearer {
            if self.admin_token.as_ref().is_some_and(|t| t.matches(given)) {
                return Some((Principal { name: "api_token".into(), role: Role::Admin }, None));
            }
            // Every token is compared, so the time taken does not tell which one matched.
            let mut found = None;
            for (i, t) in self.viewer_tokens.iter().enumerate() {
                if t.matches(given) && found.is_none() {
                    found = Some(i);
                }
            }
            return found.map(|i| (Principal { name: format!("viewer_tokens[{i}]"), role: Role::Viewer }, None));
        }
        if let Some(id) = session_cookie(headers) {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            match sessions.get(id) {
                Some(s) if s.expires > Instant::now() => {
                    return Some((s.who.clone(), Some(s.csrf.expose().to_string())));
                }
                Some(_) => {
                    sessions.remove(id);
                }
                None => {}
            }
        }
        if self.is_trusted_proxy(peer) {
            let user = headers.get(&self.user_header).and_then(|v| v.to_str().ok()).map(str::trim);
            if let Some(u) = user.filter(|u| !u.is_empty() && u.len() <= MAX_USER && !u.chars().any(char::is_control)) {
                let role = if self.proxy_admins.iter().any(|a| a == u) { Role::Admin } else { Role::Viewer };
                return Some((Principal { name: u.to_string(), role }, None));
            }
        }
        None
    }

    /// A new session for `who`: its id and CSRF token. The oldest sessions make room.
    fn open_session(&self, who: Principal) -> Result<(String, String), String> {
        let id = random_hex().map_err(|e| format!("no randomness for a session id: {e}"))?;
        let csrf = random_hex().map_err(|e| format!("no randomness for a CSRF token: {e}"))?;
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires > now);
        }
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) else { break };
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Session { who, csrf: Secret::new(csrf.clone()), expires: now + self.ttl });
        Ok((id, csrf))
    }

    /// Sessions held now (expired ones included until they are next looked at).
    pub fn sessions(&self) -> usize {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The user `name` with `password`, after the one argon2 check (also run for an unknown
    /// name, against a hash made once, so the time does not tell which names exist).
    async fn check_password(&self, name: &str, password: &str) -> Result<Option<Principal>, Response> {
        let Ok(_permit) = self.checks.try_acquire() else {
            let mut r = api::error(StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins at once; retry in a second");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(r);
        };
        static DECOY: OnceLock<String> = OnceLock::new();
        let user = self.users.iter().find(|u| u.name == name);
        let hash = match user {
            Some(u) => u.password_hash.expose().to_string(),
            None => DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default()).clone(),
        };
        let password = password.to_string();
        let ok = api::blocking(move || verify_password(&hash, &password)).await?;
        Ok(user.filter(|_| ok).map(|u| Principal { name: u.name.clone(), role: u.role }))
    }

    fn cookie_is_secure(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> bool {
        self.secure_cookie.unwrap_or_else(|| {
            self.is_trusted_proxy(peer)
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|p| p.eq_ignore_ascii_case("https"))
        })
    }
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64)
}

fn peer_of(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(gate, require))`.
pub async fn require(State(gate): State<Arc<ReadGate>>, mut req: Request, next: Next) -> Response {
    let peer = peer_of(&req);
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let Some((who, csrf)) = gate.principal(req.headers(), peer) else {
        let wants_page =
            req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        if reads && wants_page && gate.has_users() {
            let next = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let to = format!("/login?next={}", percent_encode(next));
            return (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
        }
        let mut r = api::error(
            StatusCode::UNAUTHORIZED,
            "this needs credentials: a bearer token (http.api_token or http.auth.viewer_tokens), a signed-in session \
             (/login) or a trusted proxy's user",
        );
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"thorbis-obs\""));
        return r;
    };
    if !reads && who.role == Role::Viewer {
        return api::error(
            StatusCode::FORBIDDEN,
            format!("{} may read but not write: writes need the admin role", who.name),
        );
    }
    if let (false, Some(expected)) = (reads, csrf) {
        let given = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !given.is_some_and(|g| crate::secret::constant_time_eq(g, &expected)) {
            return api::error(
                StatusCode::FORBIDDEN,
                "cross-site request refused: a write signed in by the session cookie needs the X-CSRF-Token header \
                 (GET /api/v1/session gives it)",
            );
        }
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Where to go after signing in: a path of this site, else `/`.
fn local_target(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.chars().any(char::is_control))
        .unwrap_or("/")
}

/// `/login`, `/logout` and `/api/v1/session`: outside the gate (they do their own checks).
pub fn routes(gate: Arc<ReadGate>) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout_page).post(logout))
        .route("/api/v1/session", get(session))
        .with_state(gate)
}

#[derive(Debug, Default, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_form(next: &str, problem: Option<&str>) -> String {
    let problem =
        problem.map(|p| format!("<p class=\"err\" role=\"alert\">{}</p>", api::escape_html(p))).unwrap_or_default();
    api::plain_page(
        "Sign in",
        &format!(
            "<h1>thorbis-obs</h1>{problem}<form method=\"post\" action=\"/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <p><label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label></p>\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
             <p><button type=\"submit\">Sign in</button></p></form>",
            api::escape_html(next)
        ),
    )
}

async fn login_page(State(gate): State<Arc<ReadGate>>, Query(q): Query<NextQuery>) -> Response {
    if !gate.has_users() {
        return api::error(StatusCode::NOT_FOUND, "no users are configured (http.auth.users)");
    }
    api::html(login_form(local_target(q.next.as_deref()), None))
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

async fn login(State(gate): State<Arc<ReadGate>>, req: Request) -> Response {
    if !gate.has_users() {
        return api::error(StatusCode::NOT_FOUND, "no users are configured (http.auth.users)");
    }
    let peer = peer_of(&req);
    let (parts, body) = req.into_parts();
    let body = match api::read_body(&parts.headers, body, MAX_LOGIN_BODY, api::BODY_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return api::error(StatusCode::BAD_REQUEST, "a sign-in is a form with user and password");
    };
    let next = local_target(form.next.as_deref()).to_string();
    let who = match gate.check_password(&form.user, &form.password).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let Some(who) = who else {
        let user = thorbis_obs_core::domain::errors::truncate(&form.user, 64);
        tracing::warn!(user = %user, peer = ?peer, "sign-in refused: wrong user name or password");
        return (StatusCode::UNAUTHORIZED, api::html(login_form(&next, Some("Wrong user name or password."))))
            .into_response();
    };
    let (id, _) = match gate.open_session(who.clone()) {
        Ok(s) => s,
        Err(e) => return api::error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    tracing::info!(user = %who.name, role = who.role.as_str(), peer = ?peer, "signed in");
    let secure = if gate.cookie_is_secure(&parts.headers, peer) { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", gate.ttl.as_secs());
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /logout`: who is signed in, and the button that signs them out (a form carrying the
/// session's CSRF token).
async fn logout_page(State(gate): State<Arc<ReadGate>>, req: Request) -> Response {
    let Some((who, Some(csrf))) = gate.principal(req.headers(), peer_of(&req)) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    };
    api::html(api::plain_page(
        "Sign out",
        &format!(
            "<h1>thorbis-obs</h1><p>Signed in as <strong>{}</strong> ({}).</p>\
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form><p><a href=\"/\">Back to the dashboards</a></p>",
            api::escape_html(&who.name),
            who.role.as_str(),
            api::escape_html(&csrf)
        ),
    ))
}

async fn logout(State(gate): State<Arc<ReadGate>>, headers: HeaderMap, body: Body) -> Response {
    let Some(id) = session_cookie(&headers).map(str::to_string) else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    };
    let body = match api::read_body(&headers, body, MAX_LOGIN_BODY, api::BODY_TIMEOUT).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    #[derive(Deserialize)]
    struct Form {
        csrf: Option<String>,
    }
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| serde_urlencoded::from_bytes::<Form>(&body).ok().and_then(|f| f.csrf));
    let mut sessions = gate.sessions.lock().unwrap_or_else(PoisonError::into_inner);
    let matches = sessions.get(&id).is_some_and(|s| given.as_deref().is_some_and(|g| s.csrf.matches(g)));
    if !matches {
        return api::error(StatusCode::FORBIDDEN, "sign-out refused: the form's CSRF token is missing or wrong");
    }
    if let Some(s) = sessions.remove(&id) {
        tracing::info!(user = %s.who.name, "signed out");
    }
    drop(sessions);
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /api/v1/session`: who is signed in, and the CSRF token their writes carry.
async fn session(State(gate): State<Arc<ReadGate>>, req: Request) -> Response {
    match gate.principal(req.headers(), peer_of(&req)) {
        Some((who, csrf)) => {
            axum::Json(serde_json::json!({ "name": who.name, "role": who.role.as_str(), "csrf": csrf })).into_response()
        }
        None => api::error(StatusCode::UNAUTHORIZED, "not signed in"),
    }
}

/// Whether `listen` (an address such as `0.0.0.0:9464`) is reachable only from this machine.
pub fn is_loopback(listen: &str) -> bool {
    listen.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(bearer: Option<&str>, user: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = bearer {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {t}")).expect("header"));
        }
        if let Some(u) = user {
            h.insert("x-forwarded-user", HeaderValue::from_str(u).expect("header"));
        }
        h
    }

    #[test]
    fn tokens_sessions_and_a_trusted_proxy_s_user_are_believed_nothing_else() {
        let hash = hash_password("correct horse").expect("hash");
        let section = AuthSection {
            viewer_tokens: vec![Secret::new("viewer-token-aaaaaaaa"), Secret::new("viewer-token-bbbbbbbb")],
            trusted_proxies: vec!["10.0.0.0/8".into()],
            proxy_admins: vec!["root".into()],
            users: vec![User { name: "ana".into(), password_hash: Secret::new(hash.clone()), role: Role::Admin }],
            ..AuthSection::default()
        };
        assert!(section.problems().is_empty(), "{:?}", section.problems());
        let gate = ReadGate::new(&section, Some(Secret::new("admin-token-cccccccc"))).expect("configured");
        let proxy: Option<IpAddr> = Some("10.1.2.3".parse().expect("ip"));
        let elsewhere: Option<IpAddr> = Some("192.0.2.7".parse().expect("ip"));
        let who = |h: HeaderMap, peer| gate.principal(&h, peer).map(|(p, _)| p);
        assert_eq!(
            who(request(Some("viewer-token-bbbbbbbb"), None), elsewhere),
            Some(Principal { name: "viewer_tokens[1]".into(), role: Role::Viewer })
        );
        assert_eq!(who(request(Some("admin-token-cccccccc"), None), elsewhere).map(|p| p.role), Some(Role::Admin));
        assert_eq!(who(request(Some("guess"), Some("alice")), proxy), None, "a wrong token is not saved by a header");
        assert_eq!(
            who(request(None, Some("alice")), proxy),
            Some(Principal { name: "alice".into(), role: Role::Viewer })
        );
        assert_eq!(who(request(None, Some("root")), proxy).map(|p| p.role), Some(Role::Admin), "a proxy admin");
        assert_eq!(who(request(None, Some("alice")), elsewhere), None, "the header from anyone else is ignored");
        assert_eq!(who(request(None, Some("")), proxy), None);
        assert_eq!(who(request(None, Some(&"x".repeat(300))), proxy), None);
        assert!(ReadGate::new(&AuthSection::default(), None).is_none(), "no http.auth: reads stay open");

        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horse "));
        let (id, csrf) = gate.open_session(Principal { name: "ana".into(), role: Role::Admin }).expect("session");
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={id}")).expect("header"));
        let (p, token) = gate.principal(&h, elsewhere).expect("the session's cookie");
        assert_eq!((p.name.as_str(), token.as_deref()), ("ana", Some(csrf.as_str())));
        let mut forged = HeaderMap::new();
        forged
            .insert(header::COOKIE, HeaderValue::from_str(&format!("{SESSION_COOKIE}={}", "0".repeat(64))).expect("h"));
        assert!(gate.principal(&forged, elsewhere).is_none(), "an unknown session id is nobody");

        let bad = AuthSection {
            viewer_tokens: vec![Secret::new("short")],
            users: vec![
                User { name: "bo".into(), password_hash: Secret::new("hunter2"), role: Role::Viewer },
                User { name: "bo".into(), password_hash: Secret::new(hash), role: Role::Viewer },
            ],
            trusted_proxies: vec!["proxy.local".into()],
            proxy_user_header: Some("bad header".into()),
            ..AuthSection::default()
        };
        let problems = bad.problems();
        assert!(problems.iter().all(|(_, m)| !m.contains("hunter2")), "a hash is never echoed: {problems:?}");
        let paths: Vec<String> = problems.into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "http.auth.viewer_tokens[0]",
                "http.auth.users[0].password_hash",
                "http.auth.users[1].name",
                "http.auth.trusted_proxies[0]",
                "http.auth.proxy_user_header"
            ]
        );
    }

    #[test]
    fn after_sign_in_only_local_paths() {
        assert_eq!(local_target(Some("/dashboards/overview?range=1h")), "/dashboards/overview?range=1h");
        assert_eq!(local_target(Some("//evil.example/x")), "/");
        assert_eq!(local_target(Some("https://evil.example")), "/");
        assert_eq!(local_target(Some("/\\evil.example")), "/");
        assert_eq!(local_target(None), "/");
    }
}
