//! OTLP/HTTP export against a local receiver: the collector's closed window goes out as OTLP
//! gauges to /v1/metrics and its browser errors as OTLP logs to /v1/logs (JSON encoding here,
//! so the test can read it; protobuf is the default), with the configured API key header.
#![cfg(feature = "otlp")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::rum::RumAgent;
use support::web::{Reply, WebServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_go_out_as_otlp_gauges_and_errors_as_otlp_logs() {
    type Got = Arc<Mutex<Vec<(String, Option<String>, Option<String>, serde_json::Value)>>>;
    let got: Got = Arc::default();
    let g = got.clone();
    let receiver = WebServer::start(move |r| {
        let body = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        let key = r.header("dd-api-key").map(str::to_string);
        let ct = r.header("content-type").map(str::to_string);
        g.lock().expect("lock").push((r.path.clone(), key, ct, body));
        Reply::json(200, "{}")
    })
    .await;
    let agent = RumAgent::start(&format!(
        "window = \"1s\"\notlp = {{ endpoint = \"{}\", protocol = \"http/json\", headers = {{ \"DD-API-KEY\" = \"k-123\" }} }}",
        receiver.url("")
    ))
    .await;
    let t = thorbis_obs_server::agent::system_now().0;
    let body = format!(
        r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-1","sampled":true,"startedAt":{t}}},"view":{{"id":"v-1","url":"https://app.example/hs/pay","route":"/hs/pay"}},"sentAt":{t},"events":[{{"type":"vital","at":{t},"name":"LCP","value":3100,"rating":"needs-improvement","id":"m1"}},{{"type":"error","at":{t},"kind":"error","message":"TypeError: card is undefined","stack":"TypeError: card is undefined\n    at pay (https://app.example/pay.js:1:2)","tags":{{"businessProcess":"payments"}},"count":2}}]}}"#
    );
    assert_eq!(agent.post(body).await, 202);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let find = |path: &str, needle: &str| {
        got.lock().expect("lock").iter().find(|(p, _, _, b)| p == path && b.to_string().contains(needle)).cloned()
    };
    while find("/v1/metrics", "web_vitals_lcp_p75").is_none() || find("/v1/logs", "card is undefined").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "received so far: {:#?}", got.lock().expect("lock"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, key, ct, metrics) = find("/v1/metrics", "web_vitals_lcp_p75").expect("metrics");
    assert_eq!(key.as_deref(), Some("k-123"), "the configured header rides along");
    assert!(ct.is_some_and(|c| c.starts_with("application/json")));
    let all: Vec<serde_json::Value> =
        metrics["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().cloned().unwrap_or_default();
    let lcp = all.iter().find(|m| m["name"] == "web_vitals_lcp_p75").expect("the LCP gauge");
    let points = lcp["gauge"]["dataPoints"].as_array().cloned().unwrap_or_default();
    let overall = points
        .iter()
        .find(|p| {
            p["attributes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|kv| kv["key"] == "route" && kv["value"]["stringValue"] == "all"))
        })
        .unwrap_or_else(|| panic!("no route=all point: {lcp}"));
    let v = overall["asDouble"].as_f64().unwrap_or(0.0);
    assert!((v - 3100.0).abs() <= 31.0, "{overall}");
    let (_, _, _, logs) = find("/v1/logs", "card is undefined").expect("logs");
    let rec = &logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(rec["severityText"], "ERROR", "{rec}");
    assert_eq!(rec["body"]["stringValue"], "TypeError: card is undefined");
    let attr = |k: &str| {
        rec["attributes"].as_array().and_then(|a| a.iter().find(|kv| kv["key"] == k)).map(|kv| kv["value"].clone())
    };
    assert_eq!(
        attr("error.count")
            .and_then(|v| v["intValue"].as_str().map(str::to_string).or(v["intValue"].as_i64().map(|n| n.to_string()))),
        Some("2".into()),
        "{rec}"
    );
    assert_eq!(attr("thorbis.businessProcess").map(|v| v["stringValue"].clone()), Some(serde_json::json!("payments")));
    agent.stop().await;
}
