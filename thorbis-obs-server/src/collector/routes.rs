//! The collector's HTTP routes: `POST /v1/rum` (and its CORS preflight), the error groups and
//! the summary.

use super::decode::Rejection;
use super::state::{Collector, run_windows};
use crate::api;
use crate::checks::CheckResults;
use crate::hub::Component;
use crate::store::CheckKind;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use thorbis_obs_core::time::HumanDuration;
use thorbis_obs_core::wire::MAX_BATCH_BYTES;

/// The collector as an agent component: its routes, the reload of stored windows at start
/// and the loop that closes windows.
pub struct CollectorService {
    /// None: `collector.enabled = false` (the routes answer 404, the summary has no RUM part).
    pub(super) collector: Option<Arc<Collector>>,
    pub(super) checks: CheckResults,
    /// Metric names (or, ending in `_`, prefixes) of the PostgreSQL business queries, for the
    /// summary's business impact.
    business_metrics: Vec<String>,
    /// The summary and the error list at once, at most.
    pub(super) gate: api::Gate,
    /// Guards the error groups' status changes.
    pub(super) api_token: Option<crate::secret::Secret>,
}

impl std::fmt::Debug for CollectorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorService").field("enabled", &self.collector.is_some()).finish_non_exhaustive()
    }
}

impl CollectorService {
    /// `collector` is None when the config switched it off; `checks` feed the summary's
    /// reliability; `business_metrics` are the metric names (or prefixes ending in `_`) the
    /// summary reports as business impact.
    pub fn new(collector: Option<Arc<Collector>>, checks: CheckResults, business_metrics: Vec<String>) -> Self {
        CollectorService { collector, checks, business_metrics, gate: api::Gate::default(), api_token: None }
    }

    /// The API token that may change an error group's status (as an admin may).
    pub fn with_api_token(mut self, token: Option<crate::secret::Secret>) -> Self {
        self.api_token = token;
        self
    }
}

#[async_trait::async_trait]
impl Component for CollectorService {
    fn name(&self) -> &'static str {
        "collector"
    }

    /// `GET /api/v1/rum/errors`, `GET /api/v1/summary`, the session timelines.
    fn routes(self: Arc<Self>) -> Router {
        routes(self)
    }

    /// `POST /v1/rum`, `POST /v1/replay` and their `OPTIONS`.
    fn public_routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/rum", post(ingest).options(preflight))
            .route("/v1/replay", post(super::replay::ingest).options(preflight))
            .with_state(self)
    }

    /// Before the listener serves: the last hour is back when the first request comes.
    async fn prepare(&self) {
        if let Some(c) = &self.collector {
            c.reload().await;
            c.load_issues().await;
        }
    }

    async fn run(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) {
        if let Some(c) = &self.collector {
            tokio::join!(
                run_windows(c.clone(), stop.clone()),
                super::timeline::run_timeline(c.clone(), stop.clone()),
                super::replay::run_prune(c.clone(), stop)
            );
        }
    }
}

fn routes(api: Arc<CollectorService>) -> Router {
    Router::new()
        .route("/api/v1/rum/errors", get(rum_errors))
        .route("/api/v1/rum/errors/{fingerprint}", get(super::error_page::group_json))
        .route("/api/v1/rum/errors/{fingerprint}/status", post(super::issues::set_status))
        .route("/errors/{fingerprint}", get(super::error_page::group_page))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/sessions/{session_id}", get(session_json))
        .route("/sessions/{session_id}", get(session_page))
        .route("/api/v1/replays", get(super::replay::list))
        .route("/api/v1/replays/{session_id}", get(super::replay::session))
        .route("/replays", get(super::replay::list_page))
        .route("/replays/{session_id}", get(super::replay::player_page))
        .route("/assets/{name}", get(super::replay::asset))
        .with_state(api)
}

pub(super) fn off() -> Response {
    refuse(&Rejection::new(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)", None))
}

pub(super) fn refuse(r: &Rejection) -> Response {
    let mut body = json!({ "error": r.message });
    if let Some(f) = &r.field {
        body["field"] = json!(f);
    }
    let mut resp = (r.status, axum::Json(body)).into_response();
    if let Some(s) = r.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// `POST /v1/rum`.
async fn ingest(
    State(api): State<Arc<CollectorService>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(c) = &api.collector else { return off() };
    let now = api.checks.hub.now();
    // The body is read only once the request is admitted, and only up to the batch limit.
    let result = match c.admit(&headers, &uri, peer, now) {
        Ok(()) => match api::read_body(&headers, body, MAX_BATCH_BYTES, api::BODY_TIMEOUT).await {
            Ok(b) => match c.decode_batch(&b, now) {
                Ok(mut batch) => {
                    c.symbolicate(&mut batch).await;
                    Ok(c.apply(&headers, batch, now))
                }
                Err(r) => Err(r),
            },
            Err(e) => Err(Rejection::new(e.status, e.message, None)),
        },
        Err(r) => Err(r),
    };
    c.record(&result);
    let mut resp = match result {
        Ok(n) => (StatusCode::ACCEPTED, axum::Json(json!({ "accepted": n }))).into_response(),
        Err(r) => {
            tracing::debug!(status = r.status.as_u16(), error = %r.message, field = ?r.field, "RUM batch refused");
            refuse(&r)
        }
    };
    c.cors(&headers, &mut resp);
    resp
}

/// `OPTIONS /v1/rum`: CORS preflight.
async fn preflight(State(api): State<Arc<CollectorService>>, headers: HeaderMap) -> Response {
    let Some(c) = &api.collector else { return StatusCode::NOT_FOUND.into_response() };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !c.origin_allowed(origin) {
        return refuse(&Rejection::new(
            StatusCode::FORBIDDEN,
            format!("origin {origin} is not allowed"),
            Some("Origin"),
        ));
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    c.cors(&headers, &mut resp);
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type, X-Thorbis-Token"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    range: Option<HumanDuration>,
}

/// `?range=1h&limit=50&offset=0`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorsQuery {
    /// Only the groups whose sample points at this trace.
    trace_id: Option<String>,
    range: Option<HumanDuration>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// Error groups a page of `/api/v1/rum/errors` holds at most.
const MAX_ERRORS_PAGE: usize = 200;

/// `GET /api/v1/summary?range=1h`: the spec's rollup (see [`super::summary`]).
async fn summary(State(api): State<Arc<CollectorService>>, q: Result<Query<RangeQuery>, QueryRejection>) -> Response {
    let range = match q {
        Ok(Query(q)) => q.range.unwrap_or(HumanDuration::from_secs(3600)),
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let _pass = match api.gate.enter() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let hub = api.checks.hub.clone();
    let now = hub.now();
    let collector = api.collector.clone();
    let since = now.minus(range.get());
    let mut s = match api::blocking(move || {
        let window = collector.map(|c| c.merged_since(since)).unwrap_or_default();
        super::summary::from_window(&window, range.to_string(), now)
    })
    .await
    {
        Ok(s) => s,
        Err(r) => return r,
    };
    match api.checks.summary(CheckKind::Http, range, None).await {
        Ok((u, _)) if u.overall.checks > 0 => s.reliability.uptime = Some(u.overall),
        Ok(_) => {}
        Err(r) => return r,
    }
    {
        let engine = hub.engine();
        let store = engine.store();
        for name in store.metric_names() {
            let wanted = api
                .business_metrics
                .iter()
                .any(|m| if m.ends_with('_') { name.starts_with(m.as_str()) } else { name == m });
            if !wanted {
                continue;
            }
            let newest =
                store.series_of(name).iter().filter_map(|&id| store.window(id)?.last()).max_by_key(|(t, _)| *t);
            if let Some((_, v)) = newest {
                s.business_impact.sql.insert(name.to_string(), v);
            }
        }
    }
    axum::Json(s).into_response()
}

/// `GET /api/v1/rum/errors?range=1h&limit=50&offset=0[&trace_id=...]`: browser and server errors grouped by fingerprint
/// (count, first and last seen, a sample stack, business context), most frequent first, a page
/// of at most 200 at a time (`total` says how many there are, `next_offset` where the next page
/// starts), from the collector's windows in memory (the last hour).
async fn rum_errors(
    State(api): State<Arc<CollectorService>>,
    q: Result<Query<ErrorsQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return api::error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let range = q.range.unwrap_or(HumanDuration::from_secs(3600));
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_ERRORS_PAGE);
    let offset = q.offset.unwrap_or(0);
    let Some(c) = api.collector.clone() else {
        return api::error(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)");
    };
    let _pass = match api.gate.enter() {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let since = api.checks.hub.now().minus(range.get());
    let trace = q.trace_id;
    match api::blocking(move || c.errors_page(since, offset, limit, trace.as_deref())).await {
        Ok((total, errors)) => {
            let next = (offset + errors.len() < total).then_some(offset + errors.len());
            axum::Json(json!({ "errors": errors, "total": total, "next_offset": next })).into_response()
        }
        Err(r) => r,
    }
}

/// Timeline events shown at most.
const MAX_TIMELINE: usize = 2_000;

/// A session's timeline from the store; 400 for an id the SDK could not have sent.
async fn timeline(api: &CollectorService, id: &str) -> Result<Vec<crate::store::SessionEvent>, Response> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(api::error(StatusCode::BAD_REQUEST, "a session id is 1 to 64 characters of A-Z, a-z, 0-9, _ or -"));
    }
    let _pass = api.gate.enter().map_err(|r| *r)?;
    api.checks.hub.store().session_events(id, MAX_TIMELINE).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot read a session timeline");
        api::error(StatusCode::SERVICE_UNAVAILABLE, "the store cannot be read now")
    })
}

/// `GET /api/v1/sessions/{session_id}`: the session's timeline, oldest first (at most 2,000).
async fn session_json(State(api): State<Arc<CollectorService>>, Path(id): Path<String>) -> Response {
    match timeline(&api, &id).await {
        Ok(events) => axum::Json(json!({ "session_id": id, "events": events })).into_response(),
        Err(r) => r,
    }
}

/// `GET /sessions/{session_id}`: the timeline as a page.
async fn session_page(State(api): State<Arc<CollectorService>>, Path(id): Path<String>) -> Response {
    match timeline(&api, &id).await {
        Ok(events) => api::html(super::timeline::page(&id, &events)),
        Err(r) => r,
    }
}
