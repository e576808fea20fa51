//! `thorbis-obs notify test`: a test notification through one configured channel, the
//! receiver's answer printed, a non-zero exit with the reason on failure.
#![cfg(feature = "slack")]

mod support;

use std::process::Command;
use support::receiver::{Mode, Receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_and_reports_the_answer() {
    let r = Receiver::start(Mode::Ok).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[channels.team]\ntype = \"slack\"\nwebhook_url = \"{}\"\n[channel_aliases]\nslack = \"team\"\n",
            r.url("/services/T/B/SECRETPART")
        ),
    )
    .expect("config");
    let run = |args: &[&str]| {
        let cfg = cfg.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
                .arg("notify")
                .arg("test")
                .arg("--config")
                .arg(cfg)
                .args(args)
                .output()
                .expect("runs")
        })
    };
    let o = run(&["--channel", "slack", "--severity", "critical"]).await.expect("join");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.trim(), "team: accepted: ok");
    let body = r.taken()[0].json();
    assert_eq!(body["attachments"][0]["color"], "#8b0000", "critical is dark red");
    assert!(body["text"].as_str().is_some_and(|t| t.contains("Thorbis Test Notification")));

    r.set(Mode::BadRequest);
    let o = run(&["--channel", "team"]).await.expect("join");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("permanent delivery failure: HTTP 400: invalid_payload"), "{err}");
    assert!(!err.contains("SECRETPART"), "the webhook URL never shows");

    let o = run(&["--channel", "pager"]).await.expect("join");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no channel \"pager\""));
}
