//! The agent's HTTP endpoints (axum):
//! - `GET /healthz`: liveness;
//! - `GET /readyz`: the store answers and the agent is running (503 otherwise);
//! - `GET /metrics`: Prometheus text exposition (prometheus-client): the newest value of every
//!   series, `ALERTS`-style series for alert instances, and delivery counters per channel;
//! - `GET /api/v1/alerts`: alert instances and recent failed deliveries as JSON;
//! - `POST /api/v1/suppressions`: `{"condition": "deployment_in_progress", "duration": "30m"}`
//!   switches a named suppression condition on (bearer token);
//! - `POST /api/v1/samples`: `[{"name", "labels", "value", "timestamp"?}]` pushes samples
//!   (bearer token). Write endpoints refuse with 403 while no `http.api_token` is configured.
//! - `GET /api/v1/uptime?range=24h&endpoint=ID`: uptime reports per endpoint and overall from
//!   stored results (ranges such as 1h, 24h, 7d, 30d), each check's status per location, and
//!   the check scheduler's start lag;
//! - `GET /api/v1/synthetic?range=24h`: the same for synthetic workflows, with each
//!   location's newest run and its steps;
//! - `GET /api/v1/synthetic/:workflow/screenshot`: the PNG saved at the workflow's newest
//!   failure (only files the agent wrote itself are served).

use crate::agent::AgentHandle;
use crate::uptime::CheckKind;
use crate::uptime::report::summarize;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use thorbis_obs_core::engine::AlertState;
use thorbis_obs_core::metrics::{Labels, Sample};
use thorbis_obs_core::time::{HumanDuration, Timestamp};

/// The router for an agent.
pub fn router(handle: AgentHandle) -> Router {
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/suppressions", post(suppress))
        .route("/api/v1/samples", post(samples))
        .route("/api/v1/uptime", get(uptime))
        .route("/api/v1/synthetic", get(synthetic))
        .route("/api/v1/synthetic/{workflow}/screenshot", get(screenshot))
        .route("/", get(dashboard_home))
        .route("/dashboards/{id}", get(dashboard))
        .route("/api/v1/widgets/{id}", get(widget_json))
        .route("/api/v1/widgets/{id}/html", get(widget_fragment));
    #[cfg(feature = "collector")]
    let router = router
        .route(
            "/v1/rum",
            post(crate::collector::ingest)
                .options(crate::collector::preflight)
                .layer(axum::extract::DefaultBodyLimit::max(thorbis_obs_core::wire::MAX_BATCH_BYTES + 1)),
        )
        .route("/api/v1/rum/errors", get(rum_errors))
        .route("/api/v1/summary", get(summary));
    router.with_state(handle)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn readyz(State(h): State<AgentHandle>) -> Response {
    let store = h.shared().store.ping().await;
    let running = h.shared().running.load(Ordering::Relaxed);
    let body = json!({
        "store": store.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "running": running,
        "leader": h.is_leader(),
        "sources": h.sources(),
    });
    let status = if store.is_ok() && running { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn alerts(State(h): State<AgentHandle>) -> Response {
    let failed = h.shared().store.failed_deliveries(50).await.unwrap_or_default();
    axum::Json(json!({ "alerts": h.alerts(), "failed_deliveries": failed })).into_response()
}

fn authorized(h: &AgentHandle, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &h.shared().api_token else {
        return Err(Box::new(error(StatusCode::FORBIDDEN, "write endpoints are disabled: set http.api_token")));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time comparison: do not leak the token's prefix through timing.
    let ok = given.is_some_and(|g| {
        let (a, b) = (g.as_bytes(), token.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    if ok { Ok(()) } else { Err(Box::new(error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"))) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressionRequest {
    condition: String,
    duration: Option<HumanDuration>,
}

async fn suppress(State(h): State<AgentHandle>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = authorized(&h, &headers) {
        return *r;
    }
    let req: SuppressionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    if req.condition.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "condition: must not be empty");
    }
    h.activate_condition(&req.condition, req.duration.map(|d| d.get()));
    tracing::info!(condition = %req.condition, duration = ?req.duration, "suppression condition switched on");
    axum::Json(json!({ "condition": req.condition, "active": true })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleIn {
    name: String,
    #[serde(default)]
    labels: Labels,
    value: f64,
    timestamp: Option<Timestamp>,
}

async fn samples(State(h): State<AgentHandle>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = authorized(&h, &headers) {
        return *r;
    }
    let batch: Vec<SampleIn> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let now = h.shared().clock.now();
    let samples: Vec<Sample> =
        batch.into_iter().map(|s| Sample::new(s.name, s.labels, s.value, s.timestamp.unwrap_or(now))).collect();
    // Validate all first: a bad batch stores nothing.
    for (i, s) in samples.iter().enumerate() {
        if let Err(e) = s.validate() {
            return error(StatusCode::BAD_REQUEST, format!("[{i}]: {e}"));
        }
    }
    let mut accepted = 0;
    let mut rejected = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        match h.push(s) {
            Ok(()) => accepted += 1,
            Err(e) => rejected.push(format!("[{i}]: {e}")),
        }
    }
    axum::Json(json!({ "accepted": accepted, "rejected": rejected })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    range: Option<HumanDuration>,
    endpoint: Option<String>,
}

/// Uptime reports of `kind` over `range` from the stored results, with the targets' status.
async fn uptime_summary(
    h: &AgentHandle,
    kind: CheckKind,
    range: HumanDuration,
    endpoint: Option<&str>,
) -> Result<(crate::uptime::report::UptimeSummary, Vec<crate::uptime::recorder::TargetStatus>), Response> {
    if range.get() > std::time::Duration::from_secs(400 * 86_400) || range.get().is_zero() {
        return Err(error(StatusCode::BAD_REQUEST, "range: between 1s and 400d"));
    }
    let shared = h.shared();
    let now = shared.clock.now();
    let since = now.minus(range.get());
    let records = match shared.store.check_results(kind, endpoint, since, now).await {
        Ok(r) => r,
        Err(e) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    };
    let status: Vec<_> =
        shared.board.targets(kind).into_iter().filter(|t| endpoint.is_none_or(|e| e == t.spec.target)).collect();
    let targets: Vec<String> = status.iter().map(|t| t.spec.target.clone()).collect();
    let settings = |t: &str| {
        status.iter().find(|s| s.spec.target == t).map(|s| (s.spec.quorum, s.spec.sla_target)).unwrap_or((1, 99.9))
    };
    let overall_sla = status.iter().map(|s| s.spec.sla_target).reduce(f64::max).unwrap_or(99.9);
    let summary = summarize(&records, &range.to_string(), since, now, &targets, settings, overall_sla);
    Ok((summary, status))
}

async fn report(h: &AgentHandle, kind: CheckKind, q: ReportQuery) -> Response {
    let range = q.range.unwrap_or(HumanDuration::from_secs(86_400));
    match uptime_summary(h, kind, range, q.endpoint.as_deref()).await {
        Ok((summary, status)) => axum::Json(json!({
            "report": summary,
            "status": status,
            "scheduler": h.shared().board.scheduler(),
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// `GET /api/v1/summary?range=1h`: the spec's rollup (see `collector::summary`).
#[cfg(feature = "collector")]
async fn summary(State(h): State<AgentHandle>, q: Result<Query<RangeQuery>, QueryRejection>) -> Response {
    let range = match q {
        Ok(Query(q)) => q.range.unwrap_or(HumanDuration::from_secs(3600)),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let shared = h.shared();
    let now = shared.clock.now();
    let window = shared.collector.as_ref().map(|c| c.merged_since(now.minus(range.get()))).unwrap_or_default();
    let mut s = crate::collector::summary::from_window(&window, range.to_string(), now);
    match uptime_summary(&h, CheckKind::Http, range, None).await {
        Ok((u, _)) if u.overall.checks > 0 => s.reliability.uptime = Some(u.overall),
        Ok(_) => {}
        Err(r) => return r,
    }
    {
        let engine = shared.engine();
        let store = engine.store();
        for name in store.metric_names() {
            let wanted = shared
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

#[cfg(feature = "collector")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    range: Option<HumanDuration>,
}

/// `GET /api/v1/rum/errors?range=1h`: browser errors grouped by fingerprint (count, first and
/// last seen, a sample stack, business context), most frequent first, from the collector's
/// windows in memory (the last hour).
#[cfg(feature = "collector")]
async fn rum_errors(State(h): State<AgentHandle>, q: Result<Query<RangeQuery>, QueryRejection>) -> Response {
    let range = match q {
        Ok(Query(q)) => q.range.unwrap_or(HumanDuration::from_secs(3600)),
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(c) = h.shared().collector.clone() else {
        return error(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)");
    };
    let since = h.shared().clock.now().minus(range.get());
    axum::Json(json!({ "errors": c.errors_since(since) })).into_response()
}

async fn render_board(h: &AgentHandle, id: Option<&str>) -> Response {
    let shared = h.shared();
    let boards = &shared.dashboards;
    let Some(board) = (match id {
        Some(id) => boards.iter().find(|b| b.id == id),
        None => boards.first(),
    }) else {
        return error(StatusCode::NOT_FOUND, format!("no dashboard {:?}", id.unwrap_or("")));
    };
    let mut widgets = Vec::with_capacity(board.widgets.len());
    for w in &board.widgets {
        let d = crate::dashboards::data(shared, w).await;
        widgets.push(crate::dashboards::widget_html(w, &d));
    }
    let html = crate::dashboards::page(boards, board, &widgets);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html).into_response()
}

/// `GET /`: the first dashboard.
async fn dashboard_home(State(h): State<AgentHandle>) -> Response {
    render_board(&h, None).await
}

/// `GET /dashboards/:id`.
async fn dashboard(State(h): State<AgentHandle>, Path(id): Path<String>) -> Response {
    render_board(&h, Some(&id)).await
}

fn find_widget<'a>(h: &'a AgentHandle, id: &str) -> Option<&'a crate::dashboards::WidgetConfig> {
    h.shared().dashboards.iter().flat_map(|b| &b.widgets).find(|w| w.id == id)
}

/// `GET /api/v1/widgets/:id`: the widget's data.
async fn widget_json(State(h): State<AgentHandle>, Path(id): Path<String>) -> Response {
    match find_widget(&h, &id) {
        Some(w) => axum::Json(crate::dashboards::data(h.shared(), w).await).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no widget {id:?}")),
    }
}

/// `GET /api/v1/widgets/:id/html`: the widget's section, for the page's refresh.
async fn widget_fragment(State(h): State<AgentHandle>, Path(id): Path<String>) -> Response {
    match find_widget(&h, &id) {
        Some(w) => {
            let d = crate::dashboards::data(h.shared(), w).await;
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
                crate::dashboards::widget_html(w, &d),
            )
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("no widget {id:?}")),
    }
}

async fn uptime(State(h): State<AgentHandle>, q: Result<Query<ReportQuery>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => report(&h, CheckKind::Http, q).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}

async fn synthetic(State(h): State<AgentHandle>, q: Result<Query<ReportQuery>, QueryRejection>) -> Response {
    match q {
        Ok(Query(q)) => report(&h, CheckKind::Synthetic, q).await,
        Err(e) => error(StatusCode::BAD_REQUEST, e.body_text()),
    }
}

async fn screenshot(State(h): State<AgentHandle>, Path(workflow): Path<String>) -> Response {
    let path = h
        .shared()
        .board
        .targets(CheckKind::Synthetic)
        .into_iter()
        .filter(|t| t.spec.target == workflow)
        .flat_map(|t| t.locations)
        .filter_map(|r| r.detail?.get("screenshot")?.as_str().map(std::path::PathBuf::from))
        .next();
    let Some(path) = path else {
        return error(StatusCode::NOT_FOUND, format!("no screenshot for workflow {workflow:?}"));
    };
    match tokio::fs::read(&path).await {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, format!("the screenshot is gone: {e}")),
    }
}

/// One series' labels and value.
type Point = (Vec<(String, String)>, f64);

/// Encodes the agent's state at scrape time.
#[derive(Debug)]
struct AgentCollector {
    series: Vec<(String, Vec<Point>)>,
    alerts: Vec<Point>,
    deliveries: Vec<(String, &'static str, u64)>,
    send_seconds: Vec<(String, f64)>,
}

impl Collector for AgentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, series) in &self.series {
            let mut family = encoder.encode_descriptor(
                name,
                "newest sample",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (labels, v) in series {
                ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
            }
        }
        if !self.alerts.is_empty() {
            let mut family = encoder.encode_descriptor(
                "ALERTS",
                "alert instances: 1 per pending or firing alert",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (labels, v) in &self.alerts {
                ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "thorbis_notifications",
            "delivery attempts per channel and outcome",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (channel, outcome, n) in &self.deliveries {
            let labels = [("channel", channel.as_str()), ("outcome", *outcome)];
            ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "thorbis_notification_send_seconds",
            "time spent in channel sends (divide by the attempts for the mean latency)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (channel, secs) in &self.send_seconds {
            ConstCounter::new(*secs).encode(family.encode_family(&[("channel", channel.as_str())])?)?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition of an agent's state.
pub fn render_metrics(h: &AgentHandle) -> Result<String, std::fmt::Error> {
    let shared = h.shared();
    let now = shared.clock.now();
    let (series, alerts) = {
        let engine = shared.engine();
        let store = engine.store();
        let mut by_metric: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for name in store.metric_names() {
            for &id in store.series_of(name) {
                let (Some(labels), Some(w)) = (store.labels(id), store.window(id)) else { continue };
                if let Some((_, v)) = w.last() {
                    let l = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    by_metric.entry(name.to_string()).or_default().push((l, v));
                }
            }
        }
        let alerts = engine
            .alerts(now)
            .into_iter()
            .filter(|a| a.state != AlertState::Resolved)
            .map(|a| {
                let mut l: Vec<(String, String)> =
                    a.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                l.push(("alertstate".into(), a.state.as_str().into()));
                l.sort();
                (l, 1.0)
            })
            .collect();
        (by_metric.into_iter().collect(), alerts)
    };
    let deliveries = shared
        .counters
        .iter()
        .flat_map(|(ch, c)| {
            [
                (ch.clone(), "sent", c.sent.load(Ordering::Relaxed)),
                (ch.clone(), "retried", c.retried.load(Ordering::Relaxed)),
                (ch.clone(), "failed", c.failed.load(Ordering::Relaxed)),
            ]
        })
        .collect();
    let send_seconds =
        shared.counters.iter().map(|(ch, c)| (ch.clone(), c.latency_us.load(Ordering::Relaxed) as f64 / 1e6)).collect();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(AgentCollector { series, alerts, deliveries, send_seconds }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

async fn metrics(State(h): State<AgentHandle>) -> Response {
    match render_metrics(&h) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics"),
    }
}
