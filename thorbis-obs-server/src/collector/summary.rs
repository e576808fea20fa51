//! `GET /api/v1/summary?range=1h`: the spec's NextFaster rollup of what the agent knows, in four
//! parts: performance (web vitals p75 against Google's ratings and the spec's levels, page load
//! and other page timings, the pages' API requests with throughput and error share, transfer
//! bytes by resource kind, budget warnings and violations), reliability (uptime, SLA, MTTR, MTBF of the uptime checks; the browser error
//! rate), user experience (session duration, bounce rate, conversion rates, journey funnels) and
//! business impact
//! (business events and conversions from the browser; the latest values of the PostgreSQL
//! business metrics when the config has them).

use serde::Serialize;
use std::collections::BTreeMap;
use thorbis_obs_core::domain::uptime::UptimeReport;
use thorbis_obs_core::domain::vitals::{SpecStatus, Vital};
use thorbis_obs_core::rum::{RumWindow, VITALS_QUANTILE, VitalAgg};
use thorbis_obs_core::sketch::QuantileSketch;
use thorbis_obs_core::time::{HumanDuration, Timestamp};

/// One vital over the range.
#[derive(Clone, Debug, Serialize)]
pub struct VitalSummary {
    /// p75 over every route and device.
    pub p75: f64,
    /// Values counted (weighted).
    pub count: u64,
    /// Google's rating of the p75.
    pub rating: &'static str,
    /// The spec's level (target, warning, critical) for the vitals it configures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_status: Option<SpecStatus>,
}

/// A duration's p75 and how many were seen.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Timing {
    /// p75 in ms over every route.
    pub p75_ms: f64,
    /// How many (weighted).
    pub count: f64,
}

/// The page's own requests under `/api/`, as Resource Timing saw them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApiRequests {
    /// How many (weighted).
    pub requests: f64,
    /// Per minute of the range: the throughput.
    pub per_minute: f64,
    /// p75 duration in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p75_ms: Option<f64>,
    /// Share of those with a reported status that had 400 or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// By route: p75 and count.
    pub routes: BTreeMap<String, Timing>,
}

/// Bytes the pages loaded of one kind of resource.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Transfer {
    /// Resources (weighted).
    pub resources: f64,
    /// Bytes over the network (weighted).
    pub bytes: f64,
    /// Bytes per page view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_view: Option<f64>,
}

/// Performance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Performance {
    /// By vital name (`LCP`, `INP`, ...).
    pub vitals: BTreeMap<&'static str, VitalSummary>,
    /// Page timings by name: `page_load_complete` (the navigation's loadEventEnd),
    /// `route_change`, and the page's own.
    pub timings: BTreeMap<String, Timing>,
    /// The pages' API requests.
    pub api: ApiRequests,
    /// Transfer by resource kind (`script`, `stylesheet`, `image`, `font`, `other`): the
    /// bundle sizes.
    pub transfer: BTreeMap<String, Transfer>,
    /// Resources loaded while the page was over its budget, by kind.
    pub budget_violations: BTreeMap<String, f64>,
    /// Resources loaded while the page was past its budget's warning level, by kind.
    pub budget_warnings: BTreeMap<String, f64>,
}

/// Reliability.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reliability {
    /// Uptime checks over the range, all endpoints together (absent without checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime: Option<UptimeReport>,
    /// Browser errors (every session).
    pub browser_errors: f64,
    /// Page views (estimated from sampled sessions).
    pub page_views: f64,
    /// Errors per page view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_error_rate: Option<f64>,
}

/// User experience.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UserExperience {
    /// Sessions that ended in the range.
    pub sessions_ended: f64,
    /// Their mean duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_duration_seconds_avg: Option<f64>,
    /// Share of them with one page view and no action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_rate: Option<f64>,
    /// Conversions per page view, by type.
    pub conversion_rates: BTreeMap<String, f64>,
    /// Journey funnels: each journey's steps, most reached first, with the share of the
    /// journey's most reached step that got there.
    pub funnels: BTreeMap<String, Vec<FunnelStep>>,
}

/// One step of a journey funnel.
#[derive(Clone, Debug, Serialize)]
pub struct FunnelStep {
    /// The step.
    pub step: String,
    /// Times reached (weighted).
    pub count: f64,
    /// `count` over the most reached step's.
    pub share: f64,
}

/// A count and the sum of values.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Tally {
    /// How many (weighted).
    pub count: f64,
    /// Their value.
    pub value: f64,
}

/// Business impact.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BusinessImpact {
    /// Business events from the browser, by name.
    pub events: BTreeMap<String, Tally>,
    /// Conversions, by type.
    pub conversions: BTreeMap<String, Tally>,
    /// The latest value of each metric the PostgreSQL business queries produce.
    pub sql: BTreeMap<String, f64>,
}

/// The rollup.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The range, e.g. `1h`.
    pub range: String,
    /// When it was made.
    pub generated_at: Timestamp,
    /// Performance.
    pub performance: Performance,
    /// Reliability.
    pub reliability: Reliability,
    /// User experience.
    pub user_experience: UserExperience,
    /// Business impact.
    pub business_impact: BusinessImpact,
}

/// The RUM parts of the rollup from the merged windows of the range.
pub fn from_window(w: &RumWindow, range: String, now: Timestamp) -> Summary {
    let mut overall: BTreeMap<Vital, VitalAgg> = BTreeMap::new();
    for (k, agg) in w.vitals.iter() {
        let o = overall.entry(k.vital).or_default();
        o.sketch.merge(&agg.sketch);
    }
    let mut performance = Performance::default();
    for (vital, agg) in &overall {
        if let Some(p75) = agg.sketch.quantile(VITALS_QUANTILE) {
            performance.vitals.insert(
                vital.name(),
                VitalSummary {
                    p75,
                    count: agg.sketch.count(),
                    rating: vital.rate(p75).as_str(),
                    spec_status: vital.spec_status(p75),
                },
            );
        }
    }
    let mut reliability = Reliability::default();
    let mut ux = UserExperience::default();
    let mut business = BusinessImpact::default();
    let (mut seconds, mut bounces) = (0.0, 0.0);
    // Steps are summed in a map and listed once: linear in the number of series.
    let mut steps: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (k, c) in w.counters.iter() {
        let label = |name: &str| k.labels.iter().find(|(l, _)| l == name).map(|(_, v)| v.clone()).unwrap_or_default();
        match k.metric.as_str() {
            "rum_errors" => reliability.browser_errors += c.count,
            "rum_budget_violations" if label("level") == "warning" => {
                *performance.budget_warnings.entry(label("kind")).or_default() += c.count
            }
            "rum_budget_violations" => *performance.budget_violations.entry(label("kind")).or_default() += c.count,
            "rum_resources" => {
                let t = performance.transfer.entry(label("kind")).or_default();
                t.resources += c.count;
                t.bytes += c.sum;
            }
            "rum_sessions_ended" => ux.sessions_ended += c.count,
            "rum_session_seconds" => seconds += c.sum,
            "rum_bounces" => bounces += c.count,
            "business_events" => {
                let t = business.events.entry(label("name")).or_default();
                t.count += c.count;
                t.value += c.sum;
            }
            "conversions" => {
                let t = business.conversions.entry(label("type")).or_default();
                t.count += c.count;
                t.value += c.sum;
            }
            "journey_steps" => *steps.entry((label("journey"), label("step"))).or_default() += c.count,
            _ => {}
        }
    }
    for ((journey, step), count) in steps {
        ux.funnels.entry(journey).or_default().push(FunnelStep { step, count, share: 0.0 });
    }
    durations(w, &mut performance, &range);
    reliability.page_views = w.views.values().fold(0.0, |n, v| n + v.weight);
    if reliability.page_views > 0.0 {
        for t in performance.transfer.values_mut() {
            t.bytes_per_view = Some(t.bytes / reliability.page_views);
        }
        reliability.browser_error_rate = Some(reliability.browser_errors / reliability.page_views);
        for (ty, t) in &business.conversions {
            ux.conversion_rates.insert(ty.clone(), t.count / reliability.page_views);
        }
    }
    for steps in ux.funnels.values_mut() {
        steps.sort_by(|a, b| b.count.total_cmp(&a.count).then_with(|| a.step.cmp(&b.step)));
        let top = steps.first().map_or(0.0, |s| s.count);
        for s in steps.iter_mut() {
            s.share = if top > 0.0 { s.count / top } else { 0.0 };
        }
    }
    if ux.sessions_ended > 0.0 {
        ux.session_duration_seconds_avg = Some(seconds / ux.sessions_ended);
        ux.bounce_rate = Some(bounces / ux.sessions_ended);
    }
    Summary { range, generated_at: now, performance, reliability, user_experience: ux, business_impact: business }
}

/// Page timings and API requests from the window's distributions.
fn durations(w: &RumWindow, performance: &mut Performance, range: &str) {
    let mut timings: BTreeMap<String, QuantileSketch> = BTreeMap::new();
    let mut api_routes: BTreeMap<String, QuantileSketch> = BTreeMap::new();
    let (mut with_status, mut failed) = (0.0, 0.0);
    for (k, d) in w.distributions.iter() {
        let label = |name: &str| k.labels.iter().find(|(l, _)| l == name).map(|(_, v)| v.clone()).unwrap_or_default();
        match k.metric.as_str() {
            "rum_timing_ms" => timings.entry(label("name")).or_default().merge(&d.sketch),
            "rum_api_duration_ms" => {
                api_routes.entry(label("route")).or_default().merge(&d.sketch);
                with_status += d.with_status;
                failed += d.failed;
            }
            _ => {}
        }
    }
    let timing =
        |sk: &QuantileSketch| sk.quantile(VITALS_QUANTILE).map(|p75| Timing { p75_ms: p75, count: sk.count() as f64 });
    performance.timings = timings.iter().filter_map(|(n, sk)| Some((n.clone(), timing(sk)?))).collect();
    let mut all = QuantileSketch::new();
    for sk in api_routes.values() {
        all.merge(sk);
    }
    let api = &mut performance.api;
    api.routes = api_routes.iter().filter_map(|(r, sk)| Some((r.clone(), timing(sk)?))).collect();
    api.requests = all.count() as f64;
    api.p75_ms = all.quantile(VITALS_QUANTILE);
    let minutes = range.parse::<HumanDuration>().map_or(60.0, |d| d.get().as_secs_f64() / 60.0).max(1.0 / 60.0);
    api.per_minute = api.requests / minutes;
    api.error_rate = (with_status > 0.0).then(|| failed / with_status);
}
