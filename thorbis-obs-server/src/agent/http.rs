//! The agent's own HTTP endpoints (axum); each component adds its routes beside these:
//! - `GET /healthz`: liveness;
//! - `GET /readyz`: the store answers and the agent is running (503 otherwise);
//! - `GET /metrics`: Prometheus text exposition (prometheus-client): the newest value of every
//!   series, `ALERTS`-style series for alert instances, and delivery counters per channel;
//! - `GET /api/v1/alerts`: alert instances and recent failed deliveries as JSON;
//! - `GET /api/v1/rules`: the loaded rules, each with what feeds its metric (`producers`,
//!   `fed`; both null when no producers were declared);
//! - `POST /api/v1/suppressions`: `{"condition": "deployment_in_progress", "duration": "30m"}`
//!   switches a named suppression condition on (bearer token);
//! - `POST /api/v1/samples`: `[{"name", "labels", "value", "timestamp"?}]` pushes samples
//!   (bearer token). Write endpoints refuse with 403 while no `http.api_token` is configured.
//! - `POST /api/v1/reload`: reads the config file again (see [`super::reload`]): 200 with the
//!   new config's summary, 422 with its problems (the running config stays);
//! - `GET /api/v1/audit?since=ms&limit=n&action=prefix` and the page `/audit`: the audit trail,
//!   newest first (who did what to which target, when, from where).

use super::AgentHandle;
use crate::api::{Caller, error};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
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

/// What the public listener serves of the agent's own: `/healthz`.
pub(super) fn public_router() -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" }))
}

/// `/readyz`, on the admin listener but never behind `http.auth` (orchestrators' probes carry
/// no credentials).
pub(super) fn readiness_router(handle: AgentHandle) -> Router {
    Router::new().route("/readyz", get(readyz)).with_state(handle)
}

/// The agent's own admin routes.
pub(super) fn router(handle: AgentHandle) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/suppressions", post(suppress))
        .route("/api/v1/alerts/{fingerprint}/ack", post(super::silences::ack))
        .route("/api/v1/silences", get(super::silences::list_silences).post(super::silences::add_silence))
        .route("/api/v1/silences/{id}", axum::routing::delete(super::silences::expire_silence))
        .route("/api/v1/samples", post(samples))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/reload", post(reload))
        .route("/audit", get(audit_page))
        .with_state(handle)
}

async fn readyz(State(h): State<AgentHandle>) -> Response {
    let store = h.shared().hub.store().ping().await;
    let running = h.shared().running.load(Ordering::Relaxed);
    let commits = h.shared().store_ok.load(Ordering::Relaxed);
    let body = json!({
        "store": store.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        "store_commits": if commits { "ok" } else { "failing" },
        "running": running,
        "leader": h.is_leader(),
        "sources": h.sources(),
    });
    let status = if store.is_ok() && commits && running { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn alerts(State(h): State<AgentHandle>) -> Response {
    let failed = h.shared().hub.store().failed_deliveries(50).await.unwrap_or_default();
    axum::Json(json!({ "alerts": h.alerts(), "failed_deliveries": failed })).into_response()
}

async fn rules(State(h): State<AgentHandle>) -> Response {
    let coverage = h.shared().coverage.as_deref().unwrap_or_default();
    let rules: Vec<serde_json::Value> = h
        .shared()
        .hub
        .engine()
        .rules()
        .map(|r| {
            let fed = coverage.iter().find(|c| c.rule == r.id);
            json!({
                "id": r.id,
                "name": r.name,
                "metric": r.metric,
                "severity": r.severity,
                "condition": r.condition,
                "channels": r.channels,
                "producers": fed.map(|c| &c.producers),
                "fed": fed.map(|c| c.fed()),
            })
        })
        .collect();
    axum::Json(json!({ "rules": rules })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressionRequest {
    condition: String,
    duration: Option<HumanDuration>,
}

/// Largest `POST /api/v1/suppressions` body.
const MAX_SUPPRESSION_BYTES: usize = 4 * 1024;
/// Largest `POST /api/v1/samples` body: a few thousand samples.
const MAX_SAMPLES_BYTES: usize = 256 * 1024;

async fn suppress(State(h): State<AgentHandle>, caller: Caller, headers: HeaderMap, body: Body) -> Response {
    let (who, body) =
        match caller.authorized_body(h.shared().api_token.as_ref(), &headers, body, MAX_SUPPRESSION_BYTES).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let req: SuppressionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    if req.condition.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "condition: must not be empty");
    }
    if req.condition.len() > 128 || req.condition.chars().any(char::is_control) {
        return error(StatusCode::BAD_REQUEST, "condition: at most 128 characters, none of them control");
    }
    h.activate_condition(&req.condition, req.duration.map(|d| d.get()));
    tracing::info!(condition = %req.condition, duration = ?req.duration, "suppression condition switched on");
    let detail = json!({ "duration": req.duration.map(|d| d.to_string()) });
    h.shared().hub.audit(&who, &caller, "suppression.activate", &req.condition, detail).await;
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

async fn samples(State(h): State<AgentHandle>, caller: Caller, headers: HeaderMap, body: Body) -> Response {
    let body = match caller.authorized_body(h.shared().api_token.as_ref(), &headers, body, MAX_SAMPLES_BYTES).await {
        Ok((_, b)) => b,
        Err(r) => return r,
    };
    let batch: Vec<SampleIn> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let now = h.shared().hub.now();
    let samples: Vec<Sample> =
        batch.into_iter().map(|s| Sample::new(s.name, s.labels, s.value, s.timestamp.unwrap_or(now))).collect();
    // Validate all first: a bad batch stores nothing. A sample from the future would make
    // every later one of its series "out of order".
    let latest = now.plus(h.shared().max_sample_skew);
    for (i, s) in samples.iter().enumerate() {
        if let Err(e) = s.validate() {
            return error(StatusCode::BAD_REQUEST, format!("[{i}]: {e}"));
        }
        if s.timestamp > latest {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "[{i}].timestamp: {} is more than {}s ahead of the agent's clock ({})",
                    s.timestamp.0,
                    h.shared().max_sample_skew.as_secs(),
                    now.0
                ),
            );
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

/// One series' labels and value.
type Point = (Vec<(String, String)>, f64);

/// Encodes the agent's state at scrape time.
#[derive(Debug)]
struct AgentCollector {
    series: Vec<(String, Vec<Point>)>,
    alerts: Vec<Point>,
    deliveries: Vec<(String, &'static str, u64)>,
    send_seconds: Vec<(String, f64)>,
    store_up: bool,
    unstored_dropped: u64,
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
        let family = encoder.encode_descriptor(
            "thorbis_store_up",
            "1 while the evaluations commit to the store, 0 while they fail",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(i64::from(self.store_up)).encode(family)?;
        let family = encoder.encode_descriptor(
            "thorbis_notifications_unstored_dropped",
            "notifications the store could not take and memory had no room for (they wait for the store)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        ConstCounter::new(self.unstored_dropped).encode(family)?;
        let family = encoder.encode_descriptor(
            "thorbis_http_connections_refused",
            "connections closed at once because http.max_connections were open",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        ConstCounter::new(super::serve::REFUSED_CONNECTIONS.load(Ordering::Relaxed)).encode(family)?;
        Ok(())
    }
}

/// The Prometheus text exposition of an agent's state.
pub fn render_metrics(h: &AgentHandle) -> Result<String, std::fmt::Error> {
    let shared = h.shared();
    let now = shared.hub.now();
    let (series, alerts) = {
        let engine = shared.hub.engine();
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
    let store_up = shared.store_ok.load(Ordering::Relaxed);
    let unstored_dropped = shared.unstored.dropped.load(Ordering::Relaxed);
    registry.register_collector(Box::new(AgentCollector {
        series,
        alerts,
        deliveries,
        send_seconds,
        store_up,
        unstored_dropped,
    }));
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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AuditQuery {
    since: Option<Timestamp>,
    limit: Option<usize>,
    action: Option<String>,
}

/// Audit records listed at most, per request.
const MAX_AUDIT_LIST: usize = 1000;
/// Records read from the store to filter and list, at most.
const MAX_AUDIT_SCAN: usize = 100_000;

/// The audit records that answer `q`, newest first.
async fn audit_records(h: &AgentHandle, q: &AuditQuery) -> Result<Vec<crate::hub::AuditRecord>, Response> {
    let shared = h.shared();
    let since = q.since.unwrap_or_else(|| shared.hub.now().minus(shared.audit_retention));
    let rows = shared
        .hub
        .store()
        .records(crate::hub::AUDIT_KIND, since, MAX_AUDIT_SCAN)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the audit trail: {e}")))?;
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_AUDIT_LIST);
    let action = q.action.as_deref().unwrap_or("");
    Ok(rows
        .iter()
        .rev()
        .filter_map(|r| serde_json::from_str::<crate::hub::AuditRecord>(&r.body).ok())
        .filter(|r| r.action.starts_with(action))
        .take(limit)
        .collect())
}

async fn audit(State(h): State<AgentHandle>, q: axum::extract::Query<AuditQuery>) -> Response {
    match audit_records(&h, &q).await {
        Ok(list) => axum::Json(json!({ "records": list })).into_response(),
        Err(r) => r,
    }
}

async fn audit_page(State(h): State<AgentHandle>, q: axum::extract::Query<AuditQuery>) -> Response {
    use crate::api::escape_html as esc;
    let list = match audit_records(&h, &q).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let mut rows = String::new();
    for r in &list {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&r.at.to_rfc3339()),
            esc(&r.who),
            esc(&r.role),
            esc(r.from.as_deref().unwrap_or("")),
            esc(&r.action),
            esc(&r.target),
            esc(&r.detail.to_string()),
        ));
    }
    let body = format!(
        "<h1>Audit trail</h1><p>{} records, newest first, kept {} (agent.audit_retention).</p>\
         <table><thead><tr><th>When (UTC)</th><th>Who</th><th>Role</th><th>From</th><th>Action</th><th>Target</th>\
         <th>Detail</th></tr></thead><tbody>{rows}</tbody></table>",
        list.len(),
        HumanDuration(h.shared().audit_retention),
    );
    crate::api::html(crate::api::plain_page("Audit trail", &body))
}

async fn reload(State(h): State<AgentHandle>, caller: Caller, headers: HeaderMap) -> Response {
    let who = match caller.authorize_write(h.shared().api_token.as_ref(), &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let Some(reloader) = h.shared().reloader.clone() else {
        return error(StatusCode::NOT_FOUND, "this agent was not started from a config file: nothing to reload");
    };
    let outcome = reloader.request().await;
    let detail = match &outcome {
        Ok(s) => json!({ "applied": true, "config": s }),
        Err(e) => json!({ "applied": false, "problems": e }),
    };
    h.shared().hub.audit(&who, &caller, "config.reload", reloader.source(), detail).await;
    match outcome {
        Ok(summary) => axum::Json(json!({ "reloaded": true, "config": summary })).into_response(),
        Err(problems) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "error": "the new config is refused; the running one stays", "problems": problems })),
        )
            .into_response(),
    }
}
