//! The error groups' book on the agent (core's [`Issues`]: releases, regressions, the resolve /
//! ignore workflow, users affected, events per hour, breakdowns), fed every closed window (the
//! window merged across agents on a shared store, so each agent's book is the same) and kept in
//! the store: a record `error-group` per group (its figures) and `error-group-status` per group
//! (the status a person or an event set, the newest wins), so the book survives a restart and
//! a status set on one agent reaches the others at their next window. Its signals go to the
//! rule engine with the window's samples (the `errors` rule pack reads them).
//!
//! `POST /api/v1/rum/errors/{fingerprint}/status` with `{"status": "resolved" |
//! "resolvedInNextRelease" | "unresolved" | "ignored", "for": "2h", "count": 100, "users": 10}`
//! (an admin or the API token; audited as `error.status`).

use super::routes::CollectorService;
use super::state::Collector;
use crate::api::{self, Caller};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use thorbis_obs_core::Sample;
use thorbis_obs_core::rum::RumWindow;
use thorbis_obs_core::rum::issues::{Action, Issue, IssueError, Issues, MAX_ISSUES, StatusRecord};
use thorbis_obs_core::time::Timestamp;

/// The store's record kind of a group's figures.
pub const ISSUE_KIND: &str = "error-group";
/// The store's record kind of a group's status.
pub const STATUS_KIND: &str = "error-group-status";
/// A status body is small.
const MAX_STATUS_BODY: usize = 4 * 1024;

/// The book and when the stored statuses were last read.
#[derive(Debug, Default)]
pub(super) struct Book {
    issues: Mutex<Issues>,
    statuses_read: Mutex<Timestamp>,
}

impl Collector {
    fn book(&self) -> MutexGuard<'_, Issues> {
        self.book.issues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The group `fingerprint` over its life.
    pub fn issue(&self, fingerprint: &str) -> Option<Issue> {
        self.book().get(fingerprint).cloned()
    }

    /// Loads the book from the store, as an agent does when it starts: the groups seen within
    /// `collector.error_retention` (the most recently seen [`MAX_ISSUES`]) and their statuses.
    pub(super) async fn load_issues(&self) {
        let store = self.hub().store();
        let now = self.hub().now();
        let since = now.minus(self.config().error_retention.get());
        let mut issues: Vec<Issue> = match store.records(ISSUE_KIND, since, 5 * MAX_ISSUES).await {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| match serde_json::from_str::<Issue>(&r.body) {
                    Ok(i) => Some(i),
                    Err(e) => {
                        tracing::warn!(group = %r.id, error = %e, "a stored error group cannot be read; skipped");
                        None
                    }
                })
                .collect(),
            Err(e) => return tracing::warn!(error = %e, "cannot load the error groups; the book starts empty"),
        };
        issues.sort_by_key(|i| std::cmp::Reverse(i.last_seen));
        issues.truncate(MAX_ISSUES);
        let loaded = issues.len();
        *self.book() = Issues::from_stored(issues);
        self.read_statuses(Timestamp::EPOCH).await;
        *self.book.statuses_read.lock().unwrap_or_else(PoisonError::into_inner) = now;
        if loaded > 0 {
            tracing::info!(groups = loaded, "error groups loaded");
        }
    }

    /// Applies the statuses stored since `since` (by people on any agent, or by events).
    async fn read_statuses(&self, since: Timestamp) {
        match self.hub().store().records(STATUS_KIND, since, 10 * MAX_ISSUES).await {
            Ok(rows) => {
                let mut book = self.book();
                for r in rows {
                    match serde_json::from_str::<StatusRecord>(&r.body) {
                        Ok(s) => book.apply_record(&s),
                        Err(e) => tracing::warn!(group = %r.id, error = %e, "a stored error status cannot be read"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the error groups' statuses"),
        }
    }

    /// Takes a closed window into the book at `now` and keeps what changed; returns the
    /// signals for the rule engine.
    pub(super) async fn observe_issues(&self, closed: &RumWindow, now: Timestamp) -> Vec<Sample> {
        let since =
            std::mem::replace(&mut *self.book.statuses_read.lock().unwrap_or_else(PoisonError::into_inner), now);
        // A status another agent stored while this one was between windows.
        self.read_statuses(since.minus(self.window())).await;
        let links = self.config().public_url.clone().unwrap_or_default();
        let (changed, touched, samples) = {
            let mut book = self.book();
            let changed = book.observe(closed, now);
            let touched: Vec<Issue> = closed.errors.keys().filter_map(|fp| book.get(fp).cloned()).collect();
            (changed, touched, book.samples(now, links.trim_end_matches('/')))
        };
        let store = self.hub().store();
        for issue in &touched {
            match serde_json::to_string(issue) {
                Ok(body) => {
                    if let Err(e) = store.save_record(ISSUE_KIND, &issue.fingerprint, issue.last_seen, &body).await {
                        tracing::warn!(error = %e, "cannot store an error group; it lives in memory only");
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode an error group"),
            }
        }
        for s in &changed {
            tracing::info!(group = %s.fingerprint, status = s.status.name(), "error group status changed by its events");
            self.save_status(s).await.ok();
        }
        if !touched.is_empty() {
            let before = now.minus(self.config().error_retention.get());
            for kind in [ISSUE_KIND, STATUS_KIND] {
                if let Err(e) = store.prune_records(kind, before).await {
                    tracing::warn!(error = %e, "cannot prune old error groups");
                }
            }
        }
        samples
    }

    async fn save_status(&self, s: &StatusRecord) -> Result<(), String> {
        let body = serde_json::to_string(s).map_err(|e| e.to_string())?;
        self.hub().store().save_record(STATUS_KIND, &s.fingerprint, s.at, &body).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot store an error group's status; it holds on this agent only");
            e.to_string()
        })
    }

    /// Sets a group's status as `by` asked.
    pub async fn act_on_issue(&self, fingerprint: &str, action: &Action, by: &str) -> Result<StatusRecord, IssueError> {
        let now = self.hub().now();
        let record = self.book().act(fingerprint, action, by, now)?;
        self.save_status(&record).await.ok();
        Ok(record)
    }
}

/// `POST /api/v1/rum/errors/{fingerprint}/status`.
pub(super) async fn set_status(
    State(api): State<Arc<CollectorService>>,
    Path(fp): Path<String>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = api.api_token.clone();
    let (principal, body) = match caller.authorized_body(token.as_ref(), &headers, body, MAX_STATUS_BODY).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(c) = api.collector.clone() else {
        return api::error(StatusCode::NOT_FOUND, "the collector is off (collector.enabled)");
    };
    let action: Action = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return api::error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid body: {e} (expected {{\"status\": \"resolved\" | \"resolvedInNextRelease\" | \
                     \"unresolved\" | \"ignored\", \"for\": \"2h\", \"count\": N, \"users\": N}})"
                ),
            );
        }
    };
    match c.act_on_issue(&fp, &action, &principal.name).await {
        Ok(record) => {
            let detail = serde_json::to_value(&record).unwrap_or_default();
            c.hub().audit(&principal, &caller, "error.status", &fp, detail).await;
            axum::Json(json!({ "group": fp, "status": record })).into_response()
        }
        Err(e @ IssueError::Unknown(_)) => api::error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ IssueError::Invalid(_)) => api::error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}
