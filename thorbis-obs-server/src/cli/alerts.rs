//! `thorbis-obs alerts ...` (amtool's spirit): list, acknowledge and silence the alerts of a
//! running agent through its API, with its token. `--url` (or `THORBIS_OBS_URL`, default
//! `http://127.0.0.1:9464`, the default admin listener) and `--token` (or `THORBIS_OBS_TOKEN`:
//! the API token for writes, a viewer token is enough for lists).
//!
//! `thorbis-obs auth hash-password` makes the argon2 hash of a password read from stdin, for
//! `[[http.auth.users]]`.

use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// `thorbis-obs alerts ...`
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// The agent's admin address.
    #[arg(long, global = true)]
    url: Option<String>,
    /// A bearer token: the API token (writes) or a viewer token (lists).
    #[arg(long, global = true)]
    token: Option<String>,
    /// Print the agent's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AlertsCommand,
}

/// What to do with the alerts.
#[derive(Debug, Subcommand)]
pub(super) enum AlertsCommand {
    /// The alert instances: fingerprint, state, severity, name, labels, who acknowledged.
    List,
    /// Acknowledge a firing alert: its escalation and repeats stop until it resolves.
    Ack {
        /// The alert's fingerprint (from `alerts list`).
        fingerprint: String,
        /// Whose acknowledgement (default: the token's name).
        #[arg(long)]
        by: Option<String>,
    },
    /// Silences by label matchers.
    #[command(subcommand)]
    Silence(SilenceCommand),
}

/// `thorbis-obs alerts silence ...`
#[derive(Debug, Subcommand)]
pub(super) enum SilenceCommand {
    /// Create a silence: `alerts silence add 'service="api"' 'alertname=~"High.*"' --duration 1h --comment "deploy"`.
    Add {
        /// Matchers (`=`, `!=`, `=~`, `!~`), all of which an alert must match.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long from now (or from --start).
        #[arg(long, default_value = "1h")]
        duration: String,
        /// Why (required, as in amtool).
        #[arg(long)]
        comment: String,
        /// Whose silence (default: the token's name).
        #[arg(long)]
        author: Option<String>,
    },
    /// The silences: active, pending, and those that ended in the last week.
    List,
    /// End a silence now.
    Expire {
        /// Its id (from `silence add` or `silence list`).
        id: String,
    },
}

/// `thorbis-obs auth ...`
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Print the argon2id hash of the password on stdin's first line, for `[[http.auth.users]]`.
    HashPassword,
}

pub(super) fn auth(c: AuthCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match c {
        AuthCommand::HashPassword => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                let _ = writeln!(err, "cannot read the password from stdin: {e}");
                return ExitCode::FAILURE;
            }
            let password = line.trim_end_matches(['\r', '\n']);
            if password.len() < 8 {
                let _ = writeln!(err, "a password is at least 8 characters");
                return ExitCode::FAILURE;
            }
            match crate::api::auth::hash_password(password) {
                Ok(h) => {
                    let _ = writeln!(out, "{h}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(err, "cannot hash: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(not(feature = "client"))]
pub(super) fn alerts(_: AlertsArgs, _: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let _ = writeln!(err, "this build has no `client` feature: the alerts commands need it");
    ExitCode::FAILURE
}

#[cfg(feature = "client")]
pub(super) fn alerts(a: AlertsArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let Some(rt) = super::runtime(err) else { return ExitCode::FAILURE };
    use super::client::Payload;
    let call = super::client::Client::new(a.url.clone(), a.token.clone());
    let result = rt.block_on(async {
        match &a.command {
            AlertsCommand::List => call.send(reqwest::Method::GET, "/api/v1/alerts", Payload::None).await,
            AlertsCommand::Ack { fingerprint, by } => {
                let body = serde_json::json!({ "by": by });
                call.send(reqwest::Method::POST, &format!("/api/v1/alerts/{fingerprint}/ack"), Payload::Json(body))
                    .await
            }
            AlertsCommand::Silence(SilenceCommand::Add { matchers, duration, comment, author }) => {
                let body = serde_json::json!({
                    "matchers": matchers, "duration": duration, "comment": comment, "createdBy": author,
                });
                call.send(reqwest::Method::POST, "/api/v1/silences", Payload::Json(body)).await
            }
            AlertsCommand::Silence(SilenceCommand::List) => {
                call.send(reqwest::Method::GET, "/api/v1/silences", Payload::None).await
            }
            AlertsCommand::Silence(SilenceCommand::Expire { id }) => {
                call.send(reqwest::Method::DELETE, &format!("/api/v1/silences/{id}"), Payload::None).await
            }
        }
    });
    let answer = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(err, "{e}");
            return ExitCode::FAILURE;
        }
    };
    if a.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let text = match &a.command {
        AlertsCommand::List => alert_table(&answer),
        AlertsCommand::Silence(SilenceCommand::List) => silence_table(&answer),
        AlertsCommand::Ack { fingerprint, .. } => {
            let applied = answer["applied"].as_bool().unwrap_or(false);
            let when = if applied { "" } else { " (stored: the leader applies it at its next evaluation)" };
            format!("acknowledged {fingerprint} as {}{when}", text(&answer["by"]))
        }
        AlertsCommand::Silence(SilenceCommand::Add { .. }) => text(&answer["id"]),
        AlertsCommand::Silence(SilenceCommand::Expire { id }) => format!("expired {id}"),
    };
    let _ = writeln!(out, "{text}");
    ExitCode::SUCCESS
}

#[cfg(feature = "client")]
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(feature = "client")]
fn labels(v: &serde_json::Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "severity"))
                .map(|(k, v)| format!("{k}={:?}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Rows of columns, padded to the widest cell.
#[cfg(feature = "client")]
fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(head.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

#[cfg(feature = "client")]
fn alert_table(answer: &serde_json::Value) -> String {
    let rows = answer["alerts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    let state = text(&a["state"]);
                    let state = if a["muted"].as_bool() == Some(true) { format!("{state} (muted)") } else { state };
                    vec![
                        text(&a["fingerprint"]),
                        state,
                        text(&a["severity"]),
                        text(&a["alertname"]),
                        text(&a["acknowledged"]["by"]),
                        labels(&a["labels"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["FINGERPRINT", "STATE", "SEVERITY", "ALERTNAME", "ACKED BY", "LABELS"], rows)
}

#[cfg(feature = "client")]
fn silence_table(answer: &serde_json::Value) -> String {
    let rows = answer["silences"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| {
                    let matchers = s["matchers"]
                        .as_array()
                        .map(|m| m.iter().map(text).collect::<Vec<_>>().join(" "))
                        .unwrap_or_default();
                    let ends = s["endsAt"].as_i64().map(|ms| thorbis_obs_core::time::Timestamp(ms).to_rfc3339());
                    vec![
                        text(&s["id"]),
                        text(&s["state"]),
                        ends.unwrap_or_default(),
                        text(&s["createdBy"]),
                        matchers,
                        text(&s["comment"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["ID", "STATE", "ENDS (UTC)", "CREATED BY", "MATCHERS", "COMMENT"], rows)
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_leave_out_the_name_and_severity_labels() {
        let answer = serde_json::json!({ "alerts": [
            { "fingerprint": "abc", "state": "firing", "severity": "critical", "alertname": "HighResponseTime",
              "muted": true, "acknowledged": { "by": "ana" },
              "labels": { "alertname": "HighResponseTime", "severity": "critical", "service": "api" } },
            { "fingerprint": "abcdef", "state": "pending", "severity": "warning", "alertname": "X", "muted": false,
              "acknowledged": null, "labels": {} }
        ]});
        let t = alert_table(&answer);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1], "abc          firing (muted)  critical  HighResponseTime  ana       service=\"api\"");
        assert!(lines[2].starts_with("abcdef       pending         warning   X"));
    }
}
