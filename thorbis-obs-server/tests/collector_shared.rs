//! Two agents behind a load balancer on one PostgreSQL store (the throwaway cluster of
//! scripts/test.sh): each gets half the traffic, and both report the figures of all of it,
//! because every agent merges every agent's window (mergeable sketches and counters). Without
//! the merge, the agent that saw only fast pages would report a fast site.
#![cfg(all(feature = "collector", feature = "postgres"))]

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::rum::{RumAgent, metric};
use thorbis_obs_server::store::postgres::PostgresStore;

fn batch(view: &str, lcp: f64, error: bool) -> String {
    let t = thorbis_obs_server::agent::system_now().0;
    let mut events =
        vec![format!(r#"{{"type":"vital","at":{t},"name":"LCP","value":{lcp},"rating":"good","id":"m-{view}"}}"#)];
    if error {
        events.push(format!(
            r#"{{"type":"error","at":{t},"kind":"error","message":"TypeError: x is undefined","stack":"TypeError: x is undefined\n    at pay (https://app.example/pay.js:1:2)","count":1}}"#
        ));
    }
    format!(
        r#"{{"v":1,"service":"shop","env":"prod","session":{{"id":"s-{view}","sampled":true,"startedAt":{t},"sampleRate":100}},
"view":{{"id":"{view}","url":"https://app.example/hs/orders","route":"/hs/orders"}},"sentAt":{t},"events":[{}]}}"#,
        events.join(",")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_on_one_store_report_the_merged_traffic() {
    let url = support::pg::fresh_database("rum_shared").await;
    let store = || async {
        Some(Arc::new(PostgresStore::connect(&url).await.expect("store")) as Arc<dyn thorbis_obs_server::store::Store>)
    };
    // Windows of two seconds, so a burst of posts falls in one.
    let a = RumAgent::start_with("window = \"2s\"", None, store().await).await;
    let b = RumAgent::start_with("window = \"2s\"", None, store().await).await;
    while !(200..800).contains(&(thorbis_obs_server::agent::system_now().0 % 2000)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A: three fast pages, one with an error. B: three slow pages, two with the same error.
    for (agent, views) in [
        (&a, [("a1", 1000.0, true), ("a2", 1000.0, false), ("a3", 1000.0, false)]),
        (&b, [("b1", 5000.0, true), ("b2", 5000.0, true), ("b3", 5000.0, false)]),
    ] {
        for (view, lcp, error) in views {
            assert_eq!(agent.post(batch(view, lcp, error)).await, 202);
        }
    }
    let all = [("service", "shop"), ("route", "all"), ("device", "all")];
    for agent in [&a, &b] {
        // The merged window's samples go in one at a time, the error rate last: wait for it too.
        let text = agent
            .metrics_until("six pages and their error rate", |t| {
                metric(t, "web_vitals_lcp_count", &all) == Some(6.0)
                    && metric(t, "rum_error_rate", &[("service", "shop")]).is_some()
            })
            .await;
        // Rank 0.75 * 5 = 3.75 of [1000 x3, 5000 x3]: between two 5000s, so 5000 on both agents.
        let p75 = metric(&text, "web_vitals_lcp_p75", &all).unwrap_or(0.0);
        assert!((p75 - 5000.0).abs() <= 50.0, "{}: merged p75 {p75}", agent.base);
        assert_eq!(metric(&text, "rum_views", &[("route", "all")]), Some(6.0));
        assert_eq!(metric(&text, "rum_error_rate", &[("service", "shop")]), Some(0.5));
        let errors = agent.get_json("/api/v1/rum/errors").await;
        assert_eq!(errors["errors"][0]["count"], 3, "one group of three across agents: {errors}");
    }
    a.stop().await;
    b.stop().await;
}
