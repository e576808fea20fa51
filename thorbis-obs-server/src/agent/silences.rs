//! Acknowledgements and silences (Alertmanager's and PagerDuty's models) through the API, kept
//! in the store so every agent sharing it applies them:
//! - `POST /api/v1/alerts/{fingerprint}/ack` (`{"by": "ana"}` optional): the firing alert's
//!   escalation and repeats stop, the channels that heard of it are told (PagerDuty gets an
//!   `acknowledge` event), the resolve still goes out. On the leader it applies at once (404 for
//!   an unknown fingerprint, 409 for one not firing or acknowledged already); on a standby it is
//!   stored and the leader applies it at its next evaluation (202).
//! - `POST /api/v1/silences` (`{"matchers": ["service=\"api\"", "alertname=~\"High.*\""],
//!   "duration": "1h" | "endsAt": ms, "startsAt": ms, "createdBy": "ana", "comment": "..."}`;
//!   `createdBy` defaults to the caller: the signed-in user, the proxy's user or `api_token`),
//!   `GET /api/v1/silences` (with their state), `DELETE /api/v1/silences/{id}` (expires it now).
//!   A silenced alert keeps its state and sends what it owes when the silence ends.
//!
//! Writes need the API token. The leader reloads the silences and the new acknowledgements
//! from the store before each evaluation ([`sync`]).

use super::{AgentHandle, Shared};
use crate::api::{Caller, error};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use thorbis_obs_core::engine::{AckError, MAX_SILENCES, Silence};
use thorbis_obs_core::rules::Matchers;
use thorbis_obs_core::time::{HumanDuration, Timestamp};

/// A body of these endpoints is at most this long.
const MAX_BODY: usize = 16 * 1024;
/// Matchers of one silence, at most.
const MAX_MATCHERS: usize = 16;
/// The longest a silence may run.
const MAX_SILENCE: Duration = Duration::from_secs(90 * 24 * 3600);
/// Ended silences stay listed (and stored) this long.
pub(super) const SILENCE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Acknowledgements stay in the store this long (a standby taking over applies the recent ones).
pub(super) const ACK_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// An acknowledgement as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredAck {
    fingerprint: String,
    by: String,
    at: Timestamp,
}

/// The name an action is shown under: the one given in the body, else the caller's.
fn who(given: Option<String>, caller: &str) -> Result<String, Box<Response>> {
    let name = given.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| caller.to_string());
    if !crate::api::auth::valid_name(&name) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, "a name is at most 64 characters, none of them control")));
    }
    Ok(name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
}

pub(super) async fn ack(
    State(h): State<AgentHandle>,
    Path(fingerprint): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (principal, body) = match caller.authorized_body(h.shared().api_token.as_ref(), &headers, body, MAX_BODY).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let given: AckBody = if body.is_empty() {
        AckBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
        }
    };
    if fingerprint.is_empty() || fingerprint.len() > 64 || !fingerprint.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return error(StatusCode::BAD_REQUEST, "a fingerprint is 1 to 64 letters and digits");
    }
    let by = match who(given.by, &principal.name) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let shared = h.shared();
    let now = shared.hub.now();
    let leads = h.is_leader();
    if leads {
        if let Err(e) = shared.hub.engine().acknowledge(&fingerprint, &by, now) {
            let status = if e == AckError::NotFound { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
            return error(status, e.to_string());
        }
    }
    let stored = StoredAck { fingerprint: fingerprint.clone(), by: by.clone(), at: now };
    let saved = match serde_json::to_string(&stored) {
        Ok(text) => shared.hub.store().save_record("ack", &format!("{fingerprint}-{}", now.0), now, &text).await,
        Err(e) => Err(crate::store::StoreError::Backend(e.to_string())),
    };
    if let Err(e) = saved {
        if !leads {
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the acknowledgement: {e}"));
        }
        tracing::warn!(error = %e, "acknowledgement applied but not stored");
    }
    tracing::info!(%fingerprint, %by, "alert acknowledged");
    shared.hub.audit(&principal, &caller, "alert.ack", &fingerprint, json!({ "by": by, "applied": leads })).await;
    let status = if leads { StatusCode::OK } else { StatusCode::ACCEPTED };
    (status, axum::Json(json!({ "fingerprint": fingerprint, "by": by, "at": now, "applied": leads }))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewSilence {
    matchers: Matchers,
    starts_at: Option<Timestamp>,
    ends_at: Option<Timestamp>,
    duration: Option<HumanDuration>,
    created_by: Option<String>,
    comment: String,
}

/// The stored silences whose end is at or after `since`.
async fn stored(shared: &Shared, since: Timestamp) -> Result<Vec<Silence>, crate::store::StoreError> {
    let rows = shared.hub.store().records("silence", since, MAX_SILENCES * 2).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_str(&r.body).ok()).collect())
}

async fn save(shared: &Shared, s: &Silence) -> Result<(), Response> {
    let text = serde_json::to_string(s).map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    shared
        .hub
        .store()
        .save_record("silence", &s.id, s.ends_at, &text)
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot store the silence: {e}")))
}

pub(super) async fn add_silence(
    State(h): State<AgentHandle>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (principal, body) = match caller.authorized_body(h.shared().api_token.as_ref(), &headers, body, MAX_BODY).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let n: NewSilence = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let shared = h.shared();
    let now = shared.hub.now();
    let starts_at = n.starts_at.unwrap_or(now).max(now);
    let ends_at = match (n.ends_at, n.duration) {
        (Some(e), None) => e,
        (None, Some(d)) => starts_at.plus(d.get()),
        _ => return error(StatusCode::BAD_REQUEST, "give endsAt or duration (one of them)"),
    };
    let problem = if n.matchers.0.is_empty() || n.matchers.0.len() > MAX_MATCHERS {
        Some(format!("matchers: 1 to {MAX_MATCHERS}"))
    } else if ends_at <= starts_at {
        Some("the silence ends before it starts".to_string())
    } else if ends_at.since(now) > MAX_SILENCE {
        Some("a silence runs at most 90 days".to_string())
    } else if n.comment.trim().is_empty() || n.comment.len() > 1024 {
        Some("comment: 1 to 1,024 bytes (why the silence)".to_string())
    } else {
        None
    };
    if let Some(p) = problem {
        return error(StatusCode::BAD_REQUEST, p);
    }
    let created_by = match who(n.created_by, &principal.name) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let live = match stored(shared, now).await {
        Ok(v) => v.len(),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the silences: {e}")),
    };
    if live >= MAX_SILENCES {
        return error(
            StatusCode::CONFLICT,
            format!("{MAX_SILENCES} silences are active or pending: expire some first"),
        );
    }
    let id = format!("{:016x}", now.0 as u64 ^ (crate::clock::random_unit() * u64::MAX as f64) as u64);
    let silence = Silence { id: id.clone(), matchers: n.matchers, starts_at, ends_at, created_by, comment: n.comment };
    if let Err(r) = save(shared, &silence).await {
        return r;
    }
    tracing::info!(%id, by = %silence.created_by, matchers = %serde_json::to_string(&silence.matchers).unwrap_or_default(), "silence created");
    let detail = json!({
        "matchers": silence.matchers, "startsAt": starts_at, "endsAt": ends_at,
        "createdBy": silence.created_by, "comment": silence.comment,
    });
    shared.hub.audit(&principal, &caller, "silence.create", &id, detail).await;
    (StatusCode::OK, axum::Json(json!({ "id": id, "startsAt": starts_at, "endsAt": ends_at }))).into_response()
}

pub(super) async fn list_silences(State(h): State<AgentHandle>) -> Response {
    let shared = h.shared();
    let now = shared.hub.now();
    match stored(shared, now.minus(SILENCE_RETENTION)).await {
        Ok(v) => {
            let list: Vec<_> = v
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id, "matchers": s.matchers, "startsAt": s.starts_at, "endsAt": s.ends_at,
                        "createdBy": s.created_by, "comment": s.comment, "state": s.state(now).as_str(),
                    })
                })
                .collect();
            axum::Json(json!({ "silences": list })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the silences: {e}")),
    }
}

pub(super) async fn expire_silence(
    State(h): State<AgentHandle>,
    Path(id): Path<String>,
    caller: Caller,
    headers: HeaderMap,
) -> Response {
    let principal = match caller.authorize_write(h.shared().api_token.as_ref(), &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let shared = h.shared();
    let now = shared.hub.now();
    let found = match stored(shared, now).await {
        Ok(v) => v.into_iter().find(|s| s.id == id),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the silences: {e}")),
    };
    let Some(mut s) = found else {
        let id = thorbis_obs_core::domain::errors::truncate(&id, 64);
        return error(StatusCode::NOT_FOUND, format!("no active or pending silence {id:?}"));
    };
    s.ends_at = now;
    if let Err(r) = save(shared, &s).await {
        return r;
    }
    tracing::info!(%id, "silence expired");
    shared.hub.audit(&principal, &caller, "silence.expire", &id, json!({ "matchers": s.matchers })).await;
    (StatusCode::OK, axum::Json(json!({ "id": id, "endsAt": now }))).into_response()
}

/// Before an evaluation on the leader: the silences from the store into the engine, and the
/// acknowledgements stored since `*acks_since` applied (those applied already are no-ops).
pub(super) async fn sync(shared: &Shared, acks_since: &mut Timestamp) {
    let now = shared.hub.now();
    match stored(shared, now).await {
        Ok(v) => shared.hub.engine().set_silences(v, now),
        Err(e) => tracing::warn!(error = %e, "cannot read the silences; keeping the ones held"),
    }
    match shared.hub.store().records("ack", *acks_since, 1000).await {
        Ok(rows) => {
            let mut engine = shared.hub.engine();
            for r in &rows {
                let Ok(a) = serde_json::from_str::<StoredAck>(&r.body) else { continue };
                if engine.acknowledge(&a.fingerprint, &a.by, a.at).is_ok() {
                    tracing::info!(fingerprint = %a.fingerprint, by = %a.by, "stored acknowledgement applied");
                }
                *acks_since = (*acks_since).max(r.at.plus(Duration::from_millis(1)));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the acknowledgements"),
    }
}
