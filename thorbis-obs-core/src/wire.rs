//! The versioned wire schema of browser batches: what the SDK sends and the collector accepts.
//!
//! The browser SDK builds these payloads with the page's own `JSON.stringify`, so the JSON names
//! below are the contract, not the Rust names: objects and event fields are camelCase, the event
//! `type` tag is snake_case. Unknown fields and unknown event types are rejected by
//! deserialization (with the offending name in serde's message) rather than silently dropped, so
//! an SDK that drifts from this schema fails loudly in its own tests.
//!
//! A batch as the SDK sends it (optional fields may be left out or sent as `null`; `frames`,
//! `tags`, `breadcrumbs`, `props` and `meta` may be left out when empty):
//!
//! ```json
//! {
//!   "v": 1,
//!   "service": "thorbis-business-os",
//!   "env": "production",
//!   "version": "2025.11.3",
//!   "session": { "id": "s-9f2c1a7e", "sampled": true, "startedAt": 1764186600000, "sampleRate": 10 },
//!   "view": {
//!     "id": "v-3b81",
//!     "url": "https://app.thorbis.com/hs/work-orders/new",
//!     "referrer": "https://app.thorbis.com/hs/dashboard",
//!     "route": "/hs/work-orders/new"
//!   },
//!   "sentAt": 1764186660000,
//!   "events": [
//!     { "type": "vital", "at": 1764186601200, "name": "LCP", "value": 1840.5, "rating": "good",
//!       "id": "v5-1764186600000-8812", "target": "main>h1", "navigationType": "navigate" },
//!     { "type": "action", "at": 1764186610000, "name": "Create work order",
//!       "actionType": "click", "target": "button#create" },
//!     { "type": "business", "at": 1764186611000, "name": "work-order-created",
//!       "props": { "workOrderId": "wo_1042", "industry": "home-services", "priority": "high",
//!                  "estimatedValue": 450 } },
//!     { "type": "journey", "at": 1764186612000, "journeyType": "work-order",
//!       "step": "details-entered", "meta": { "industry": "home-services" } },
//!     { "type": "conversion", "at": 1764186630000, "conversionType": "invoice-paid",
//!       "value": 450, "meta": { "method": "card" } },
//!     { "type": "error", "at": 1764186640000, "kind": "business", "message": "Card declined",
//!       "stack": "Error: Card declined\n    at chargeCard (https://app.thorbis.com/_next/static/chunks/pay.js:1:2042)",
//!       "frames": [ { "function": "chargeCard",
//!                     "file": "https://app.thorbis.com/_next/static/chunks/pay.js",
//!                     "line": 1, "column": 2042 } ],
//!       "fingerprint": ["payments", "charge-card", "card_declined"],
//!       "tags": { "businessProcess": "payments", "industry": "home-services",
//!                 "userRole": "dispatcher", "workflowStep": "charge-card" },
//!       "breadcrumbs": [ { "at": 1764186639000, "category": "ui.click", "message": "button#pay" } ],
//!       "count": 1, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736" },
//!     { "type": "timing", "at": 1764186602500, "name": "page_load_complete", "durationMs": 2310 },
//!     { "type": "resource", "at": 1764186601000,
//!       "url": "https://app.thorbis.com/_next/static/chunks/main.js", "kind": "script",
//!       "transferBytes": 182044, "durationMs": 140.25, "overBudget": "script", "status": 200 },
//!     { "type": "long_task", "at": 1764186601900, "durationMs": 86, "startMs": 1520.5 },
//!     { "type": "span", "at": 1764186639800, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
//!       "spanId": "00f067aa0ba902b7", "name": "POST /api/payments", "op": "http.client",
//!       "durationMs": 182.5, "status": "error", "method": "POST",
//!       "url": "https://app.thorbis.com/api/payments", "statusCode": 502,
//!       "attrs": { "payment.method": "card" } }
//!   ]
//! }
//! ```
//!
//! The spec's business hooks map onto events like this: the `work-order-created`,
//! `work-order-completed`, `invoice-generated` and `payment-processed` DOM events become
//! [`Event::Business`] with the event's detail as `props`; `trackUserJourney` becomes
//! [`Event::Journey`], `trackConversion` [`Event::Conversion`], and `trackBusinessError` an
//! [`Event::Error`] of kind `business` whose fingerprint is the spec's `[process, step, code]`.
//!
//! Timestamps (`at`, `sentAt`, `startedAt`) are integer milliseconds since the epoch: the SDK must
//! `Math.round(performance.timeOrigin + performance.now())`, because a fractional value is not a
//! [`Timestamp`] and the whole batch is refused.
//!
//! This crate has no JSON parser, by design (it stays dependency-free for wasm). The collector:
//! 1. calls [`check_size`] with the raw body length before parsing anything,
//! 2. deserializes a [`Batch`] with its own JSON parser,
//! 3. calls [`Batch::validate`], and answers 400 with
//!    `{"error": err.message(), "field": err.path()}` on failure.
//!
//! ```
//! use thorbis_obs_core::wire::{self, Batch};
//!
//! let body = br#"{"v":1,"service":"shop","env":"prod","session":{"id":"s1","sampled":true,
//!   "startedAt":1000000},"view":{"id":"v1","url":"https://shop.example/"},"sentAt":1000000,
//!   "events":[{"type":"vital","at":1000000,"name":"CLS","value":-0.5,"rating":"good","id":"m1"}]}"#;
//! wire::check_size(body.len()).expect("small body");
//! let batch: Batch = serde_json::from_slice(body).expect("well-formed batch");
//! let err = batch.validate().expect_err("a negative CLS is refused");
//! assert_eq!(err.path(), "events[0].value");
//! assert_eq!(err.message(), "must be finite and between 0 and 100, got -0.5");
//! ```

use crate::metrics::is_valid_name;
use crate::time::Timestamp;
use core::fmt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema version this crate reads and writes; the SDK sends it as `v`.
pub const WIRE_VERSION: u32 = 1;
/// Largest request body the collector parses; checked on the raw bytes by [`check_size`].
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Most events in one batch.
pub const MAX_EVENTS_PER_BATCH: usize = 500;
/// Longest message, URL, selector or property value, in UTF-8 bytes.
pub const MAX_STRING: usize = 2048;
/// Longest name (event, action, category, service, property key), in UTF-8 bytes.
pub const MAX_NAME: usize = 200;
/// Most properties (`props`, `meta` or `tags`) on one event.
pub const MAX_PROPS: usize = 32;
/// Most parsed stack frames on one error.
pub const MAX_FRAMES: usize = 50;
/// Debug ids an error may carry (one per script its stack names).
pub const MAX_DEBUG_IDS: usize = 8;

/// Whether `id` is a debug id as bundlers write them: a UUID, `8-4-4-4-12` hex digits (either
/// case).
pub fn is_debug_id(id: &str) -> bool {
    id.len() == 36
        && id
            .bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
}
/// Most breadcrumbs on one error (Sentry's cap too).
pub const MAX_BREADCRUMBS: usize = 100;
/// Longest raw stack text, in UTF-8 bytes.
pub const MAX_STACK: usize = 16 * 1024;
/// Longest id (session, view, vital), in ASCII characters of `[A-Za-z0-9_-]`.
pub const MAX_ID: usize = 64;
/// Most parts in an error fingerprint; the spec uses three (`[process, step, code]`).
pub const MAX_FINGERPRINT_PARTS: usize = 8;
/// Largest duration or millisecond vital accepted: longer ones come from suspended tabs and
/// would only skew aggregates.
pub const MAX_DURATION_MS: f64 = 3_600_000.0;
/// Largest CLS accepted; real pages stay far below, anything above is a broken measurement.
pub const MAX_CLS: f64 = 100.0;
/// How far before `sentAt` an event may be: the SDK's offline queue does not keep events longer.
pub const MAX_EVENT_AGE_MS: i64 = 24 * 60 * 60 * 1000;
/// How far after `sentAt` an event may be, to absorb clock adjustments while a batch fills.
pub const MAX_EVENT_LEAD_MS: i64 = 5 * 60 * 1000;

/// A session, view or action id: 1 to [`MAX_ID`] characters of A-Z, a-z, 0-9, `_` or `-`.
pub fn is_id(value: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    !value.is_empty() && value.len() <= MAX_ID && value.bytes().all(ok)
}

/// A page clock further than this from the collector's is taken as wrong: the batch's times
/// are shifted by the difference ([`Batch::align_to`]), as Sentry's and Datadog's relays do.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// The longest a session lasts (the SDK's cap), so a session's start is never further back.
pub const MAX_SESSION_MS: i64 = 4 * 60 * 60 * 1000;

/// Vital names: the web-vitals set plus FID (legacy, the spec names it) and the spec's TTI.
pub const VITAL_NAMES: &[&str] = &["LCP", "INP", "CLS", "FCP", "TTFB", "FID", "TTI"];
/// Vital ratings, spelled as web-vitals spells them.
pub const RATINGS: &[&str] = &["good", "needs-improvement", "poor"];
/// Action types: a user click or a host app's `addAction`.
pub const ACTION_TYPES: &[&str] = &["click", "custom"];
/// Error kinds: the two global handlers, an explicit capture, and `trackBusinessError`.
pub const ERROR_KINDS: &[&str] = &["error", "unhandledrejection", "captured", "business"];
/// Span statuses.
pub const SPAN_STATUSES: &[&str] = &["ok", "error"];
/// Resource kinds, coarser than `initiatorType` so budgets can be set per kind.
pub const RESOURCE_KINDS: &[&str] = &["script", "stylesheet", "image", "font", "fetch", "other"];

/// Properties of an event: flat and bounded, keys are label-safe names.
pub type Props = BTreeMap<String, PropValue>;

/// One property value. Nested objects and arrays are refused so that properties can become
/// labels and tags downstream without flattening rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PropValue {
    /// A JSON string.
    Text(String),
    /// A JSON number (finite, checked by [`Batch::validate`]).
    Number(f64),
    /// A JSON boolean.
    Bool(bool),
}

impl From<&str> for PropValue {
    fn from(s: &str) -> Self {
        PropValue::Text(s.to_owned())
    }
}

impl From<String> for PropValue {
    fn from(s: String) -> Self {
        PropValue::Text(s)
    }
}

impl From<f64> for PropValue {
    fn from(n: f64) -> Self {
        PropValue::Number(n)
    }
}

impl From<bool> for PropValue {
    fn from(b: bool) -> Self {
        PropValue::Bool(b)
    }
}

/// One request from the SDK: a page view's events with the context they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    /// Schema version, [`WIRE_VERSION`]; the only field not renamed, to stay short.
    pub v: u32,
    /// The application, e.g. `thorbis-business-os`.
    pub service: String,
    /// Deployment environment, e.g. `production`.
    pub env: String,
    /// Release of the application, so errors and vitals can be compared across deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The browser session.
    pub session: Session,
    /// The page view the events belong to.
    pub view: View,
    /// When the SDK sent the batch, by the page's clock; event times are checked against it.
    pub sent_at: Timestamp,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// A browser session, shared by the batches of its page views.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Session {
    /// Random id, `[A-Za-z0-9_-]{1,64}`.
    pub id: String,
    /// Whether the session fell inside the session sample rate, so the collector can tell
    /// sampled RUM data from events every session sends.
    pub sampled: bool,
    /// When the session started.
    pub started_at: Timestamp,
    /// The session sample rate in percent (0-100] the SDK was configured with: each sampled
    /// session stands for `100 / sampleRate` sessions when the collector counts. Absent: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
}

/// A page view; a soft navigation in a single-page app starts a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct View {
    /// Random id, `[A-Za-z0-9_-]{1,64}`.
    pub id: String,
    /// The page URL, already scrubbed of personal data by the SDK.
    pub url: String,
    /// `document.referrer`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// The route pattern (`/hs/work-orders/[id]`), which groups views better than URLs do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// One parsed stack frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Frame {
    /// Function name; absent for anonymous functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Script URL.
    pub file: String,
    /// 1-based line, when the engine reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, when the engine reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// Something that happened before an error, to show how the user got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Breadcrumb {
    /// When it happened.
    pub at: Timestamp,
    /// What kind of step, e.g. `navigation`, `ui.click`, `fetch`.
    pub category: String,
    /// What happened.
    pub message: String,
}

/// One observation from the page. The JSON `type` tag is the snake_case variant name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Event {
    /// A web vital (`"type": "vital"`).
    Vital {
        /// When it was reported.
        at: Timestamp,
        /// One of [`VITAL_NAMES`].
        name: String,
        /// Milliseconds, or the unitless score for CLS.
        value: f64,
        /// One of [`RATINGS`].
        rating: String,
        /// The metric instance id, so the collector can keep the last report of each.
        id: String,
        /// CSS selector of the element behind the value (LCP element, INP target, shift source).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// web-vitals' `navigationType`, e.g. `navigate`, `reload`, `back-forward-cache`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        navigation_type: Option<String>,
    },
    /// A user or host-app action (`"type": "action"`).
    Action {
        /// When it happened.
        at: Timestamp,
        /// What was done, e.g. the masked button text.
        name: String,
        /// One of [`ACTION_TYPES`].
        action_type: String,
        /// CSS selector of the clicked element.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// An error (`"type": "error"`), repeats of the same error folded into `count`.
    Error {
        /// When it was first seen in this batch.
        at: Timestamp,
        /// One of [`ERROR_KINDS`].
        kind: String,
        /// The error message; may be empty, as `new Error()` is.
        message: String,
        /// The raw `error.stack` text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stack: Option<String>,
        /// The stack, parsed, innermost first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        frames: Vec<Frame>,
        /// Grouping key that overrides stack-based grouping; `[process, step, code]` for
        /// business errors.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<Vec<String>>,
        /// Context such as `businessProcess`, `industry`, `userRole`, `workflowStep`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: Props,
        /// What happened before, oldest first.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        breadcrumbs: Vec<Breadcrumb>,
        /// How many times this error was seen (the SDK dedups repeats), at least 1.
        count: u32,
        /// The trace of the page's span that was running when it was thrown (32 hex digits),
        /// so the error group links the backend work it broke and the trace is kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace_id: Option<String>,
        /// The debug ids of the scripts its stack names, by script URL (TC39's source map
        /// debug ids, which bundlers such as Turbopack record in `globalThis._debugIds`): the
        /// collector finds their maps by id, whatever release the page says; at most
        /// [`MAX_DEBUG_IDS`].
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        debug_ids: BTreeMap<String, String>,
        /// The fingerprint of its frames as source maps read them (core's
        /// `symbolicated_fingerprint`), set by the collector; never read from the page.
        #[serde(skip)]
        symbolicated_fingerprint: Option<String>,
    },
    /// A named duration (`"type": "timing"`), e.g. `page_load_complete`.
    Timing {
        /// When it ended.
        at: Timestamp,
        /// What was timed.
        name: String,
        /// How long it took.
        duration_ms: f64,
    },
    /// A loaded resource (`"type": "resource"`).
    Resource {
        /// When loading finished.
        at: Timestamp,
        /// The resource URL.
        url: String,
        /// One of [`RESOURCE_KINDS`].
        kind: String,
        /// Bytes over the network (0 for cache hits and opaque cross-origin responses).
        transfer_bytes: u64,
        /// Fetch duration.
        duration_ms: f64,
        /// The budget this resource broke, e.g. `script`; absent when within budget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        over_budget: Option<String>,
        /// The budget whose warning level the page's total of this kind has passed (not yet
        /// its error level), e.g. `script`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        near_budget: Option<String>,
        /// The response's HTTP status (Resource Timing's `responseStatus`; absent where the
        /// browser does not say, or 0 for an opaque response).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// A main-thread task over 50 ms (`"type": "long_task"`).
    LongTask {
        /// When it was observed.
        at: Timestamp,
        /// How long the main thread was blocked.
        duration_ms: f64,
        /// Start, in ms since navigation start (`performance.now()` time).
        start_ms: f64,
    },
    /// A business event such as `work-order-created` (`"type": "business"`).
    Business {
        /// When it happened.
        at: Timestamp,
        /// The event name.
        name: String,
        /// The event's detail, e.g. `workOrderId`, `industry`, `amount`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        props: Props,
    },
    /// A step of a user journey, from `trackUserJourney` (`"type": "journey"`).
    Journey {
        /// When the step was reached.
        at: Timestamp,
        /// Which journey, e.g. `work-order`.
        journey_type: String,
        /// Which step of it.
        step: String,
        /// Caller-supplied context.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        meta: Props,
    },
    /// A span of the page's own work (`"type": "span"`): a traced `fetch` or
    /// `XMLHttpRequest` (op `http.client`, the request that carried `traceparent`), or one
    /// the host app timed with `startSpan` (the spec's `startTransaction`). The collector
    /// hands it to the trace store as the browser's part of the trace.
    Span {
        /// When it started.
        at: Timestamp,
        /// Its trace, 32 lowercase hex digits (not all zero), as `traceparent` carried it.
        trace_id: String,
        /// The span, 16 lowercase hex digits (not all zero).
        span_id: String,
        /// The span it ran in (a `startSpan` span around the fetch), when any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_span_id: Option<String>,
        /// What it did: `GET /api/work-orders/42`, `checkout`.
        name: String,
        /// The kind of work: `http.client` for requests, else the caller's (`ui.action`).
        op: String,
        /// How long it ran.
        duration_ms: f64,
        /// `ok` or `error` (a network failure or a 5xx answer); absent: not known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// A request's method.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
        /// A request's URL, scrubbed by the SDK.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// A request's HTTP status (0: no answer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_code: Option<u16>,
        /// The caller's attributes (`setAttribute`): keys as properties', dots allowed
        /// (`work_order.id`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attrs: Props,
    },
    /// A conversion, from `trackConversion` (`"type": "conversion"`).
    Conversion {
        /// When it happened.
        at: Timestamp,
        /// What converted, e.g. `invoice-paid`.
        conversion_type: String,
        /// Its value; negative values (refunds) are allowed.
        value: f64,
        /// Caller-supplied context.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        meta: Props,
    },
}

impl Event {
    /// When the event happened.
    pub fn at(&self) -> Timestamp {
        match self {
            Event::Vital { at, .. }
            | Event::Action { at, .. }
            | Event::Error { at, .. }
            | Event::Timing { at, .. }
            | Event::Resource { at, .. }
            | Event::LongTask { at, .. }
            | Event::Business { at, .. }
            | Event::Journey { at, .. }
            | Event::Span { at, .. }
            | Event::Conversion { at, .. } => *at,
        }
    }

    /// When it happened, to be moved onto the collector's clock.
    fn at_mut(&mut self) -> &mut Timestamp {
        match self {
            Event::Vital { at, .. }
            | Event::Action { at, .. }
            | Event::Error { at, .. }
            | Event::Timing { at, .. }
            | Event::Resource { at, .. }
            | Event::LongTask { at, .. }
            | Event::Business { at, .. }
            | Event::Journey { at, .. }
            | Event::Span { at, .. }
            | Event::Conversion { at, .. } => at,
        }
    }

    /// The JSON `type` tag, e.g. `long_task`: handy for per-type counters and rate limits.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Vital { .. } => "vital",
            Event::Action { .. } => "action",
            Event::Error { .. } => "error",
            Event::Timing { .. } => "timing",
            Event::Resource { .. } => "resource",
            Event::LongTask { .. } => "long_task",
            Event::Business { .. } => "business",
            Event::Journey { .. } => "journey",
            Event::Span { .. } => "span",
            Event::Conversion { .. } => "conversion",
        }
    }

    fn validate(&self, c: &At<'_>, sent_at: Timestamp) -> Result<(), WireError> {
        c.time("at", self.at(), sent_at)?;
        match self {
            Event::Vital { name, value, rating, id, target, navigation_type, .. } => {
                c.one_of("name", name, VITAL_NAMES)?;
                let max = if name == "CLS" { MAX_CLS } else { MAX_DURATION_MS };
                c.range("value", *value, 0.0, max)?;
                c.one_of("rating", rating, RATINGS)?;
                c.id("id", id)?;
                c.opt_text("target", target.as_deref(), MAX_STRING)?;
                c.opt_name("navigationType", navigation_type.as_deref())
            }
            Event::Action { name, action_type, target, .. } => {
                c.name("name", name)?;
                c.one_of("actionType", action_type, ACTION_TYPES)?;
                c.opt_text("target", target.as_deref(), MAX_STRING)
            }
            Event::Error {
                kind,
                message,
                stack,
                frames,
                fingerprint,
                tags,
                breadcrumbs,
                count,
                trace_id,
                debug_ids,
                ..
            } => {
                c.one_of("kind", kind, ERROR_KINDS)?;
                if let Some(t) = trace_id {
                    c.hex_id("traceId", t, 32)?;
                }
                c.items("debugIds", debug_ids.len(), MAX_DEBUG_IDS)?;
                for (url, id) in debug_ids {
                    c.nonempty_text("debugIds (a script URL)", url, MAX_STRING)?;
                    if !is_debug_id(id) {
                        return Err(c.fail("debugIds", Problem::BadDebugId { got: excerpt(id) }));
                    }
                }
                c.text("message", message, MAX_STRING)?;
                c.opt_text("stack", stack.as_deref(), MAX_STACK)?;
                c.items("frames", frames.len(), MAX_FRAMES)?;
                for (i, f) in frames.iter().enumerate() {
                    let path = c.path(&format!("frames[{i}]"));
                    let f_at = At(&path);
                    f_at.opt_name("function", f.function.as_deref())?;
                    f_at.nonempty_text("file", &f.file, MAX_STRING)?;
                }
                if let Some(parts) = fingerprint {
                    if parts.is_empty() {
                        return Err(c.fail("fingerprint", Problem::Empty));
                    }
                    c.items("fingerprint", parts.len(), MAX_FINGERPRINT_PARTS)?;
                    for (i, part) in parts.iter().enumerate() {
                        c.name(&format!("fingerprint[{i}]"), part)?;
                    }
                }
                c.props("tags", tags, false)?;
                c.items("breadcrumbs", breadcrumbs.len(), MAX_BREADCRUMBS)?;
                for (i, b) in breadcrumbs.iter().enumerate() {
                    let path = c.path(&format!("breadcrumbs[{i}]"));
                    let b_at = At(&path);
                    b_at.time("at", b.at, sent_at)?;
                    b_at.name("category", &b.category)?;
                    b_at.text("message", &b.message, MAX_STRING)?;
                }
                if *count == 0 {
                    return Err(c.fail("count", Problem::BelowMinimum { got: 0, min: 1 }));
                }
                Ok(())
            }
            Event::Timing { name, duration_ms, .. } => {
                c.name("name", name)?;
                c.range("durationMs", *duration_ms, 0.0, MAX_DURATION_MS)
            }
            Event::Resource { url, kind, duration_ms, over_budget, near_budget, status, .. } => {
                c.nonempty_text("url", url, MAX_STRING)?;
                c.one_of("kind", kind, RESOURCE_KINDS)?;
                c.range("durationMs", *duration_ms, 0.0, MAX_DURATION_MS)?;
                if let Some(s) = status {
                    c.range("status", f64::from(*s), 0.0, 599.0)?;
                }
                c.opt_name("nearBudget", near_budget.as_deref())?;
                c.opt_name("overBudget", over_budget.as_deref())
            }
            Event::LongTask { duration_ms, start_ms, .. } => {
                c.range("durationMs", *duration_ms, 0.0, MAX_DURATION_MS)?;
                // A tab can stay open for weeks, so the start offset has no upper bound.
                c.range("startMs", *start_ms, 0.0, f64::INFINITY)
            }
            Event::Business { name, props, .. } => {
                c.name("name", name)?;
                c.props("props", props, false)
            }
            Event::Journey { journey_type, step, meta, .. } => {
                c.name("journeyType", journey_type)?;
                c.name("step", step)?;
                c.props("meta", meta, false)
            }
            Event::Span {
                trace_id,
                span_id,
                parent_span_id,
                name,
                op,
                duration_ms,
                status,
                method,
                url,
                status_code,
                attrs,
                ..
            } => {
                c.hex_id("traceId", trace_id, 32)?;
                c.hex_id("spanId", span_id, 16)?;
                if let Some(p) = parent_span_id {
                    c.hex_id("parentSpanId", p, 16)?;
                }
                c.name("name", name)?;
                c.name("op", op)?;
                c.range("durationMs", *duration_ms, 0.0, MAX_DURATION_MS)?;
                if let Some(s) = status {
                    c.one_of("status", s, SPAN_STATUSES)?;
                }
                c.opt_name("method", method.as_deref())?;
                c.opt_text("url", url.as_deref(), MAX_STRING)?;
                if let Some(code) = status_code {
                    c.range("statusCode", f64::from(*code), 0.0, 999.0)?;
                }
                c.props("attrs", attrs, true)
            }
            Event::Conversion { conversion_type, value, meta, .. } => {
                c.name("conversionType", conversion_type)?;
                c.range("value", *value, f64::NEG_INFINITY, f64::INFINITY)?;
                c.props("meta", meta, false)
            }
        }
    }
}

impl Batch {
    /// Puts the batch's times on the collector's clock: when `sentAt` is more than
    /// [`MAX_CLOCK_SKEW_MS`] from `arrival`, every time is shifted by the difference; then no
    /// time is later than `arrival`, no event older than [`MAX_EVENT_AGE_MS`] and the session
    /// did not start more than [`MAX_SESSION_MS`] before it. Returns the shift applied, in ms.
    /// Call after [`Batch::validate`]: the page's clock is the page's word, the arrival is ours.
    pub fn align_to(&mut self, arrival: Timestamp) -> i64 {
        let offset = arrival.0.saturating_sub(self.sent_at.0);
        let shift = if offset.abs() > MAX_CLOCK_SKEW_MS { offset } else { 0 };
        let onto = |t: &mut Timestamp, oldest: i64| {
            t.0 = t.0.saturating_add(shift).clamp(arrival.0.saturating_sub(oldest), arrival.0);
        };
        onto(&mut self.sent_at, MAX_EVENT_AGE_MS);
        onto(&mut self.session.started_at, MAX_SESSION_MS);
        for e in &mut self.events {
            onto(e.at_mut(), MAX_EVENT_AGE_MS);
            if let Event::Error { breadcrumbs, .. } = e {
                for b in breadcrumbs {
                    onto(&mut b.at, MAX_EVENT_AGE_MS);
                }
            }
        }
        shift
    }

    /// Checks every limit of the schema; the first problem found is returned with its JSON
    /// path (`events[3].value`). Deserialization has already checked shapes and names of fields.
    pub fn validate(&self) -> Result<(), WireError> {
        let c = At("");
        if self.v != WIRE_VERSION {
            return Err(c.fail("v", Problem::UnsupportedVersion { got: self.v }));
        }
        c.name("service", &self.service)?;
        c.name("env", &self.env)?;
        c.opt_name("version", self.version.as_deref())?;

        let s = At("session");
        s.id("id", &self.session.id)?;
        if self.session.started_at.0 > self.sent_at.0.saturating_add(MAX_EVENT_LEAD_MS) {
            // Sessions may be older than a day (a tab left open), but never from the future.
            return Err(
                s.fail("startedAt", Problem::OutsideWindow { at: self.session.started_at, sent_at: self.sent_at })
            );
        }
        if let Some(rate) = self.session.sample_rate {
            s.range("sampleRate", rate, 0.0, 100.0)?;
        }

        let w = At("view");
        w.id("id", &self.view.id)?;
        w.nonempty_text("url", &self.view.url, MAX_STRING)?;
        w.opt_text("referrer", self.view.referrer.as_deref(), MAX_STRING)?;
        w.opt_text("route", self.view.route.as_deref(), MAX_STRING)?;

        c.items("events", self.events.len(), MAX_EVENTS_PER_BATCH)?;
        for (i, e) in self.events.iter().enumerate() {
            let path = format!("events[{i}]");
            e.validate(&At(&path), self.sent_at)?;
        }
        Ok(())
    }
}

/// Refuses a request body over [`MAX_BATCH_BYTES`]. Call it on the raw length before parsing:
/// this crate has no JSON parser, so parsing is the caller's job.
pub fn check_size(len: usize) -> Result<(), WireError> {
    if len > MAX_BATCH_BYTES {
        return Err(WireError::BodyTooLarge { len, max: MAX_BATCH_BYTES });
    }
    Ok(())
}

/// Why a batch was refused: the path of the bad field plus what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The raw body is over [`MAX_BATCH_BYTES`].
    #[error("request body is {len} bytes, over the {max}-byte limit: send smaller batches")]
    BodyTooLarge {
        /// Body length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a batch. Collectors build this from their parser's error (for example
    /// with `serde_path_to_error`) so every refusal has the same shape.
    #[error("{}", with_path(.path, .message))]
    Malformed {
        /// JSON path of the bad field, empty when unknown.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A field breaks a limit of the schema.
    #[error("{path}: {problem}")]
    Invalid {
        /// JSON path of the bad field, e.g. `events[3].value`.
        path: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl WireError {
    /// JSON path of the bad field (`session.id`, `events[3].tags.industry`); empty when the
    /// problem is the whole body.
    pub fn path(&self) -> &str {
        match self {
            WireError::BodyTooLarge { .. } => "",
            WireError::Malformed { path, .. } | WireError::Invalid { path, .. } => path,
        }
    }

    /// What is wrong, without the path: the `error` of a 400 answer whose `field` is
    /// [`path`](Self::path).
    pub fn message(&self) -> String {
        match self {
            WireError::BodyTooLarge { .. } => self.to_string(),
            WireError::Malformed { message, .. } => message.clone(),
            WireError::Invalid { problem, .. } => problem.to_string(),
        }
    }
}

fn with_path(path: &str, message: &str) -> String {
    if path.is_empty() { message.to_owned() } else { format!("{path}: {message}") }
}

/// What is wrong with a field; its `Display` is the message without the path.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// `v` is not [`WIRE_VERSION`].
    UnsupportedVersion {
        /// The version sent.
        got: u32,
    },
    /// An empty string or list where content is required.
    Empty,
    /// A string over its byte limit.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map over its item limit.
    TooMany {
        /// Its number of items.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A name containing control characters, which would corrupt logs and dashboards.
    ControlCharacter,
    /// A value outside a closed set.
    NotOneOf {
        /// The value sent, cut to a readable length.
        got: String,
        /// The accepted values.
        allowed: &'static [&'static str],
    },
    /// An id outside `[A-Za-z0-9_-]{1,64}`.
    BadId {
        /// The value sent, cut to a readable length.
        got: String,
    },
    /// A trace or span id that is not `digits` lowercase hex digits, or is all zeros.
    BadHexId {
        /// How many hex digits it must have (32 for a trace, 16 for a span).
        digits: usize,
        /// The value sent, cut to a readable length.
        got: String,
    },
    /// A source map debug id that is not a UUID.
    BadDebugId {
        /// The value sent, cut to a readable length.
        got: String,
    },
    /// A property key that is not label-safe, `[A-Za-z_][A-Za-z0-9_]*`.
    BadKey {
        /// The key sent, cut to a readable length.
        got: String,
    },
    /// A number that is NaN, infinite or out of its range.
    OutOfRange {
        /// The value sent.
        got: f64,
        /// Lowest accepted value (may be negative infinity: finite only).
        min: f64,
        /// Highest accepted value (may be infinity: no upper bound).
        max: f64,
    },
    /// A count under its minimum.
    BelowMinimum {
        /// The value sent.
        got: u64,
        /// The minimum.
        min: u64,
    },
    /// A timestamp too far from the batch's `sentAt`.
    OutsideWindow {
        /// The timestamp sent.
        at: Timestamp,
        /// The batch's `sentAt`.
        sent_at: Timestamp,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UnsupportedVersion { got } => {
                write!(f, "wire version {got} is not supported, this collector reads version {WIRE_VERSION}")
            }
            Problem::Empty => f.write_str("must not be empty"),
            Problem::BadDebugId { got } => {
                write!(f, "{got:?} is not a debug id (a UUID such as 85314830-023f-4cf1-a267-535f4e37bb17)")
            }
            Problem::TooLong { len, max } => write!(f, "is {len} bytes, over the {max}-byte limit"),
            Problem::TooMany { len, max } => write!(f, "has {len} items, over the limit of {max}"),
            Problem::ControlCharacter => f.write_str("must not contain control characters"),
            Problem::NotOneOf { got, allowed } => {
                write!(f, "must be one of {}, got {got:?}", allowed.join(", "))
            }
            Problem::BadId { got } => {
                write!(f, "must be 1 to {MAX_ID} characters of A-Z, a-z, 0-9, '_' or '-', got {got:?}")
            }
            Problem::BadHexId { digits, got } => {
                write!(f, "must be {digits} lowercase hex digits, not all zero, got {got:?}")
            }
            Problem::BadKey { got } => write!(
                f,
                "property names must start with a letter or '_' and hold only letters, digits \
                 and '_' (at most {MAX_NAME} bytes), got {got:?}"
            ),
            Problem::OutOfRange { got, min, max } => match (min.is_finite(), max.is_finite()) {
                (false, false) => write!(f, "must be finite, got {got}"),
                (true, false) => write!(f, "must be finite and >= {min}, got {got}"),
                _ => write!(f, "must be finite and between {min} and {max}, got {got}"),
            },
            Problem::BelowMinimum { got, min } => write!(f, "must be at least {min}, got {got}"),
            Problem::OutsideWindow { at, sent_at } => write!(
                f,
                "{} is outside sentAt ({}) - 24h .. + 5m: send events sooner or check the page's clock",
                at.to_rfc3339(),
                sent_at.to_rfc3339()
            ),
        }
    }
}

/// The JSON path of the object being checked. Paths of scalar fields and properties are built
/// only on failure; list items (events, frames, fingerprint parts, breadcrumbs) get theirs up front.
struct At<'a>(&'a str);

impl At<'_> {
    fn path(&self, field: &str) -> String {
        if self.0.is_empty() { field.to_owned() } else { format!("{}.{field}", self.0) }
    }

    fn fail(&self, field: &str, problem: Problem) -> WireError {
        WireError::Invalid { path: self.path(field), problem }
    }

    fn text(&self, field: &str, value: &str, max: usize) -> Result<(), WireError> {
        if value.len() > max {
            return Err(self.fail(field, Problem::TooLong { len: value.len(), max }));
        }
        Ok(())
    }

    fn opt_text(&self, field: &str, value: Option<&str>, max: usize) -> Result<(), WireError> {
        value.map_or(Ok(()), |v| self.text(field, v, max))
    }

    fn nonempty_text(&self, field: &str, value: &str, max: usize) -> Result<(), WireError> {
        if value.is_empty() {
            return Err(self.fail(field, Problem::Empty));
        }
        self.text(field, value, max)
    }

    fn name(&self, field: &str, value: &str) -> Result<(), WireError> {
        self.nonempty_text(field, value, MAX_NAME)?;
        if value.chars().any(char::is_control) {
            return Err(self.fail(field, Problem::ControlCharacter));
        }
        Ok(())
    }

    fn opt_name(&self, field: &str, value: Option<&str>) -> Result<(), WireError> {
        value.map_or(Ok(()), |v| self.name(field, v))
    }

    fn one_of(&self, field: &str, value: &str, allowed: &'static [&'static str]) -> Result<(), WireError> {
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(self.fail(field, Problem::NotOneOf { got: excerpt(value), allowed }))
    }

    fn id(&self, field: &str, value: &str) -> Result<(), WireError> {
        if !is_id(value) {
            return Err(self.fail(field, Problem::BadId { got: excerpt(value) }));
        }
        Ok(())
    }

    /// Lowercase hex of `digits` digits, not all zero (a W3C trace or span id).
    fn hex_id(&self, field: &str, value: &str, digits: usize) -> Result<(), WireError> {
        let hex = value.len() == digits && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex || value.bytes().all(|b| b == b'0') {
            return Err(self.fail(field, Problem::BadHexId { digits, got: excerpt(value) }));
        }
        Ok(())
    }

    fn range(&self, field: &str, value: f64, min: f64, max: f64) -> Result<(), WireError> {
        // Written so that NaN, which compares false with everything, fails.
        if value.is_finite() && value >= min && value <= max {
            return Ok(());
        }
        Err(self.fail(field, Problem::OutOfRange { got: value, min, max }))
    }

    fn items(&self, field: &str, len: usize, max: usize) -> Result<(), WireError> {
        if len > max {
            return Err(self.fail(field, Problem::TooMany { len, max }));
        }
        Ok(())
    }

    fn time(&self, field: &str, at: Timestamp, sent_at: Timestamp) -> Result<(), WireError> {
        let earliest = sent_at.0.saturating_sub(MAX_EVENT_AGE_MS);
        let latest = sent_at.0.saturating_add(MAX_EVENT_LEAD_MS);
        if (earliest..=latest).contains(&at.0) {
            return Ok(());
        }
        Err(self.fail(field, Problem::OutsideWindow { at, sent_at }))
    }

    /// `props` within their limits; `dots`: keys may hold '.' after the first character (span
    /// attributes, as OpenTelemetry names them).
    fn props(&self, field: &str, props: &Props, dots: bool) -> Result<(), WireError> {
        self.items(field, props.len(), MAX_PROPS)?;
        for (key, value) in props {
            let ok = if dots {
                let b = key.as_bytes();
                !b.is_empty()
                    && b.len() <= MAX_NAME
                    && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                    && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            } else {
                is_valid_name(key, false)
            };
            if !ok {
                let field = format!("{field}[{:?}]", excerpt(key));
                return Err(self.fail(&field, Problem::BadKey { got: excerpt(key) }));
            }
            let problem = match value {
                PropValue::Text(s) if s.len() > MAX_STRING => Problem::TooLong { len: s.len(), max: MAX_STRING },
                PropValue::Number(n) if !n.is_finite() => {
                    Problem::OutOfRange { got: *n, min: f64::NEG_INFINITY, max: f64::INFINITY }
                }
                _ => continue,
            };
            return Err(self.fail(&format!("{field}.{key}"), problem));
        }
        Ok(())
    }
}

/// Keeps hostile values from bloating error messages and logs.
fn excerpt(s: &str) -> String {
    const KEEP: usize = 64;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const SENT: i64 = 1_764_186_660_000;

    #[test]
    fn a_batch_from_a_wrong_clock_is_moved_onto_the_collectors() {
        // Within the skew: kept as sent, only capped at the arrival.
        let mut b = batch();
        assert_eq!(b.align_to(Timestamp(SENT + 1_000)), 0);
        assert_eq!(b.events[0].at(), Timestamp(SENT - 1_000));
        // A page clock a day behind: shifted by the difference, so the events keep their spacing.
        let mut b = batch();
        let arrival = Timestamp(SENT + 86_400_000);
        assert_eq!(b.align_to(arrival), 86_400_000);
        assert_eq!(b.sent_at, arrival);
        assert_eq!(b.events[0].at(), Timestamp(arrival.0 - 1_000));
        assert_eq!(b.session.started_at, Timestamp(arrival.0 - 60_000));
        // A session "started" in 1970 by a forged batch starts at most a session's length back,
        // and nothing lies in the future of the arrival.
        let mut b = batch();
        b.session.started_at = Timestamp(0);
        b.events[1] =
            Event::Action { at: Timestamp(SENT + 60_000), name: "x".into(), action_type: "click".into(), target: None };
        b.align_to(Timestamp(SENT));
        assert_eq!(b.session.started_at, Timestamp(SENT - MAX_SESSION_MS));
        assert_eq!(b.events[1].at(), Timestamp(SENT));
        let Event::Error { breadcrumbs, .. } = &b.events[2] else { unreachable!() };
        assert_eq!(breadcrumbs[0].at, Timestamp(SENT - 2_000));
    }

    fn props(pairs: &[(&str, PropValue)]) -> Props {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// One event of each type, in declaration order, so tests can address them by index.
    fn batch() -> Batch {
        let at = Timestamp(SENT - 1_000);
        Batch {
            v: WIRE_VERSION,
            service: "thorbis-business-os".into(),
            env: "production".into(),
            version: Some("2025.11.3".into()),
            session: Session {
                id: "s-9f2c1a7e".into(),
                sampled: true,
                started_at: Timestamp(SENT - 60_000),
                sample_rate: Some(10.0),
            },
            view: View {
                id: "v_3b81".into(),
                url: "https://app.thorbis.com/hs/work-orders/new".into(),
                referrer: None,
                route: Some("/hs/work-orders/new".into()),
            },
            sent_at: Timestamp(SENT),
            events: vec![
                Event::Vital {
                    at,
                    name: "CLS".into(),
                    value: 0.125,
                    rating: "needs-improvement".into(),
                    id: "v5-1764186600000-8812".into(),
                    target: Some("main>h1".into()),
                    navigation_type: Some("navigate".into()),
                },
                Event::Action { at, name: "Create work order".into(), action_type: "click".into(), target: None },
                Event::Error {
                    at,
                    kind: "business".into(),
                    message: "Card declined".into(),
                    stack: Some("Error: Card declined\n    at chargeCard (pay.js:1:2042)".into()),
                    frames: vec![Frame {
                        function: Some("chargeCard".into()),
                        file: "https://app.thorbis.com/pay.js".into(),
                        line: Some(1),
                        column: Some(2042),
                    }],
                    fingerprint: Some(vec!["payments".into(), "charge-card".into(), "card_declined".into()]),
                    tags: props(&[("businessProcess", "payments".into()), ("retried", false.into())]),
                    breadcrumbs: vec![Breadcrumb {
                        at: Timestamp(SENT - 2_000),
                        category: "ui.click".into(),
                        message: "button#pay".into(),
                    }],
                    count: 3,
                    trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
                    debug_ids: BTreeMap::new(),
                    symbolicated_fingerprint: None,
                },
                Event::Timing { at, name: "page_load_complete".into(), duration_ms: 2310.0 },
                Event::Resource {
                    at,
                    url: "https://app.thorbis.com/main.js".into(),
                    kind: "script".into(),
                    transfer_bytes: 182_044,
                    duration_ms: 140.25,
                    over_budget: Some("script".into()),
                    near_budget: None,
                    status: Some(200),
                },
                Event::LongTask { at, duration_ms: 86.0, start_ms: 1520.5 },
                Event::Business {
                    at,
                    name: "work-order-created".into(),
                    props: props(&[("workOrderId", "wo_1042".into()), ("estimatedValue", 450.0.into())]),
                },
                Event::Journey {
                    at,
                    journey_type: "work-order".into(),
                    step: "details-entered".into(),
                    meta: Props::new(),
                },
                Event::Conversion {
                    at,
                    conversion_type: "refund".into(),
                    value: -45.5,
                    meta: props(&[("method", "card".into())]),
                },
                Event::Span {
                    at,
                    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                    span_id: "00f067aa0ba902b7".into(),
                    parent_span_id: None,
                    name: "GET /api/work-orders/42".into(),
                    op: "http.client".into(),
                    duration_ms: 182.5,
                    status: Some("ok".into()),
                    method: Some("GET".into()),
                    url: Some("https://app.thorbis.com/api/work-orders/42".into()),
                    status_code: Some(200),
                    attrs: props(&[("work_order.id", "wo_1042".into())]),
                },
            ],
        }
    }

    fn to_json(b: &Batch) -> Value {
        serde_json::to_value(b).expect("a batch serializes")
    }

    fn from_json(v: Value) -> Result<Batch, serde_json::Error> {
        serde_json::from_value(v)
    }

    /// Applies `edit` to the JSON of the sample batch and returns the validation error's path.
    fn path_after(edit: impl FnOnce(&mut Value)) -> String {
        let mut v = to_json(&batch());
        edit(&mut v);
        let b = from_json(v).expect("the edit keeps the JSON a batch");
        match b.validate() {
            Err(e) => e.path().to_owned(),
            Ok(()) => panic!("the edited batch should be refused"),
        }
    }

    /// Sets the field at a JSON pointer, adding it when the object lacks it.
    fn set(pointer: &str, value: Value) -> impl FnOnce(&mut Value) {
        move |v: &mut Value| {
            let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
            match v.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.insert(key.to_owned(), value);
                }
                Some(Value::Array(a)) => match key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    Some(slot) => *slot = value,
                    None => panic!("no item at {pointer}"),
                },
                _ => panic!("no object or array at {parent:?}"),
            }
        }
    }

    #[test]
    fn full_batch_round_trips_through_json() {
        let b = batch();
        b.validate().expect("the sample batch is valid");
        let text = serde_json::to_string(&b).expect("serializes");
        for name in ["\"sentAt\"", "\"startedAt\"", "\"type\":\"long_task\"", "\"navigationType\"", "\"durationMs\""] {
            assert!(text.contains(name), "{name} missing from {text}");
        }
        // JSON.stringify leaves out undefined fields, so None must not be written as null.
        assert!(!text.contains("null"), "{text}");
        let back: Batch = serde_json::from_str(&text).expect("parses back");
        assert_eq!(back, b);
    }

    #[test]
    fn doc_example_is_a_valid_batch() {
        // The module docs are the SDK's contract; keep the example honest.
        let src = include_str!("wire.rs");
        let start = src.find("//! ```json\n").expect("docs have a JSON example") + "//! ```json\n".len();
        let len = src[start..].find("//! ```\n").expect("the JSON example is closed");
        let json: String =
            src[start..start + len].lines().map(|l| l.strip_prefix("//!").unwrap_or(l)).collect::<Vec<_>>().join("\n");
        let b: Batch = serde_json::from_str(&json).expect("the doc example parses");
        assert_eq!(b.events.len(), 10);
        b.validate().expect("the doc example is valid");
        check_size(json.len()).expect("the doc example is small");
    }

    #[test]
    fn optional_fields_may_be_null_or_missing() {
        let mut v = to_json(&batch());
        v["version"] = Value::Null;
        v["view"]["referrer"] = Value::Null;
        if let Some(o) = v["events"][2].as_object_mut() {
            for k in ["stack", "frames", "fingerprint", "tags", "breadcrumbs"] {
                o.remove(k);
            }
        }
        let b = from_json(v).expect("nulls and missing optionals are accepted");
        b.validate().expect("and valid");
    }

    #[test]
    fn each_limit_names_the_bad_field() {
        let long = |n: usize| json!("x".repeat(n));
        let cases = [
            ("/v", json!(2), "v"),
            ("/service", json!(""), "service"),
            ("/env", long(MAX_NAME + 1), "env"),
            ("/version", json!("1.0\n"), "version"),
            ("/session/id", json!("has space"), "session.id"),
            ("/session/startedAt", json!(SENT + MAX_EVENT_LEAD_MS + 1), "session.startedAt"),
            ("/view/id", long(MAX_ID + 1), "view.id"),
            ("/view/url", json!(""), "view.url"),
            ("/view/referrer", long(MAX_STRING + 1), "view.referrer"),
            ("/events/0/name", json!("lcp"), "events[0].name"),
            ("/events/0/value", json!(100.5), "events[0].value"),
            ("/events/0/rating", json!("ok"), "events[0].rating"),
            ("/events/0/id", json!(""), "events[0].id"),
            ("/events/0/target", long(MAX_STRING + 1), "events[0].target"),
            ("/events/0/at", json!(SENT - MAX_EVENT_AGE_MS - 1), "events[0].at"),
            ("/events/1/actionType", json!("tap"), "events[1].actionType"),
            ("/events/1/name", long(MAX_NAME + 1), "events[1].name"),
            ("/events/2/kind", json!("warning"), "events[2].kind"),
            ("/events/2/message", long(MAX_STRING + 1), "events[2].message"),
            ("/events/2/stack", long(MAX_STACK + 1), "events[2].stack"),
            ("/events/2/frames/0/file", json!(""), "events[2].frames[0].file"),
            ("/events/2/fingerprint", json!([]), "events[2].fingerprint"),
            ("/events/2/fingerprint/1", json!(""), "events[2].fingerprint[1]"),
            ("/events/2/fingerprint", json!(vec!["p"; MAX_FINGERPRINT_PARTS + 1]), "events[2].fingerprint"),
            ("/events/2/tags/bad key", json!("x"), "events[2].tags[\"bad key\"]"),
            ("/events/2/breadcrumbs/0/at", json!(SENT + MAX_EVENT_LEAD_MS + 1), "events[2].breadcrumbs[0].at"),
            ("/events/2/breadcrumbs/0/category", json!(""), "events[2].breadcrumbs[0].category"),
            ("/events/2/count", json!(0), "events[2].count"),
            ("/events/3/durationMs", json!(-1), "events[3].durationMs"),
            ("/events/4/kind", json!("video"), "events[4].kind"),
            ("/events/4/durationMs", json!(MAX_DURATION_MS + 1.0), "events[4].durationMs"),
            ("/events/5/startMs", json!(-0.5), "events[5].startMs"),
            ("/events/6/props/note", long(MAX_STRING + 1), "events[6].props.note"),
            ("/events/7/step", json!("a\u{0007}b"), "events[7].step"),
            ("/events/8/conversionType", json!(""), "events[8].conversionType"),
            ("/events/2/traceId", json!("0".repeat(32)), "events[2].traceId"),
            ("/events/9/traceId", json!("4BF92F3577B34DA6A3CE929D0E0E4736"), "events[9].traceId"),
            ("/events/9/spanId", json!("00f067aa0ba902b"), "events[9].spanId"),
            ("/events/9/parentSpanId", json!("zzf067aa0ba902b7"), "events[9].parentSpanId"),
            ("/events/9/durationMs", json!(-3), "events[9].durationMs"),
            ("/events/9/status", json!("unset"), "events[9].status"),
            ("/events/9/statusCode", json!(1000), "events[9].statusCode"),
            ("/events/9/attrs/.x", json!(1), "events[9].attrs[\".x\"]"),
            ("/events/9/attrs/a b", json!(1), "events[9].attrs[\"a b\"]"),
        ];
        for (pointer, value, want) in cases {
            assert_eq!(path_after(set(pointer, value)), want, "after setting {pointer}");
        }
    }

    /// Lists and maps one item over their limit.
    #[test]
    fn each_count_limit_names_the_bad_field() {
        let frame = json!({"file": "https://a.example/x.js"});
        let crumb = json!({"at": SENT, "category": "c", "message": "m"});
        let many: serde_json::Map<String, Value> = (0..=MAX_PROPS).map(|i| (format!("k{i}"), json!(i))).collect();
        let cases = [
            ("/events/2/frames", json!(vec![frame; MAX_FRAMES + 1]), "events[2].frames"),
            ("/events/2/breadcrumbs", json!(vec![crumb; MAX_BREADCRUMBS + 1]), "events[2].breadcrumbs"),
            ("/events/2/tags", Value::Object(many.clone()), "events[2].tags"),
            ("/events/6/props", Value::Object(many.clone()), "events[6].props"),
            ("/events/7/meta", Value::Object(many), "events[7].meta"),
        ];
        for (pointer, value, want) in cases {
            assert_eq!(path_after(set(pointer, value)), want);
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let mut b = batch();
        b.service = "s".repeat(MAX_NAME);
        b.view.url = "u".repeat(MAX_STRING);
        b.session.id = "i".repeat(MAX_ID);
        b.events.truncate(2);
        b.events[0] = Event::Vital {
            at: Timestamp(SENT - MAX_EVENT_AGE_MS),
            name: "CLS".into(),
            value: MAX_CLS,
            rating: "poor".into(),
            id: "m".into(),
            target: None,
            navigation_type: None,
        };
        b.events[1] = Event::Timing { at: Timestamp(SENT + MAX_EVENT_LEAD_MS), name: "t".into(), duration_ms: 0.0 };
        while b.events.len() < MAX_EVENTS_PER_BATCH {
            b.events.push(b.events[1].clone());
        }
        b.validate().expect("values exactly on a limit are accepted");
        assert!(check_size(MAX_BATCH_BYTES).is_ok());
    }

    #[test]
    fn too_many_events_are_refused() {
        let mut b = batch();
        let timing = b.events[3].clone();
        b.events = vec![timing; MAX_EVENTS_PER_BATCH + 1];
        let err = b.validate().expect_err("501 events are over the limit");
        assert_eq!(err.path(), "events");
        assert_eq!(err.to_string(), "events: has 501 items, over the limit of 500");
    }

    #[test]
    fn nan_and_negative_values_are_refused() {
        let mut b = batch();
        if let Event::Timing { duration_ms, .. } = &mut b.events[3] {
            *duration_ms = f64::NAN;
        }
        let err = b.validate().expect_err("NaN is refused");
        assert_eq!(err.to_string(), "events[3].durationMs: must be finite and between 0 and 3600000, got NaN");

        let mut b = batch();
        if let Event::LongTask { start_ms, .. } = &mut b.events[5] {
            *start_ms = f64::NAN;
        }
        let err = b.validate().expect_err("NaN is refused");
        assert_eq!(err.path(), "events[5].startMs");
        assert_eq!(err.message(), "must be finite and >= 0, got NaN");

        let mut b = batch();
        if let Event::Conversion { value, .. } = &mut b.events[8] {
            *value = f64::INFINITY;
        }
        assert_eq!(b.validate().expect_err("infinity is refused").message(), "must be finite, got inf");

        let mut b = batch();
        if let Event::Business { props, .. } = &mut b.events[6] {
            props.insert("amount".into(), PropValue::Number(f64::NAN));
        }
        assert_eq!(b.validate().expect_err("NaN property").path(), "events[6].props.amount");

        // Negative values arrive as JSON and are refused by validate, not by the parser.
        assert_eq!(path_after(set("/events/0/value", json!(-0.01))), "events[0].value");
        let mut v = to_json(&batch());
        v["events"][0]["name"] = json!("LCP");
        v["events"][0]["value"] = json!(MAX_DURATION_MS + 1.0);
        let err = from_json(v).expect("parses").validate().expect_err("an LCP over an hour is refused");
        assert_eq!(err.path(), "events[0].value");
    }

    #[test]
    fn debug_ids_are_uuids_and_few() {
        let url = "https://shop.example/_next/static/chunks/2n4.js";
        let mut v = to_json(&batch());
        v["events"][2]["debugIds"] = json!({ url: "85314830-023F-4cf1-a267-535f4e37bb17" });
        from_json(v.clone()).expect("parses").validate().expect("a UUID, either case");
        v["events"][2]["debugIds"] = json!({ url: "85314830023f4cf1a267535f4e37bb17" });
        let err = from_json(v.clone()).expect("parses").validate().expect_err("not a UUID");
        assert!(err.to_string().contains("is not a debug id"), "{err}");
        let many: serde_json::Map<String, Value> =
            (0..9).map(|i| (format!("{url}?{i}"), json!("85314830-023f-4cf1-a267-535f4e37bb17"))).collect();
        v["events"][2]["debugIds"] = Value::Object(many);
        let err = from_json(v).expect("parses").validate().expect_err("nine");
        assert!(err.to_string().contains("over the limit of 8"), "{err}");
    }

    #[test]
    fn unknown_event_type_is_refused_by_serde() {
        let mut v = to_json(&batch());
        v["events"][3]["type"] = json!("page_view");
        let err = from_json(v).expect_err("unknown type");
        assert!(err.to_string().contains("page_view"), "{err}");

        let mut v = to_json(&batch());
        if let Some(o) = v["events"][3].as_object_mut() {
            o.remove("type");
        }
        assert!(from_json(v).is_err(), "an event needs a type");
    }

    #[test]
    fn unknown_fields_are_refused_by_serde_with_their_name() {
        for pointer in
            ["", "/session", "/view", "/events/0", "/events/5", "/events/2/frames/0", "/events/2/breadcrumbs/0"]
        {
            let mut v = to_json(&batch());
            match v.pointer_mut(pointer).and_then(Value::as_object_mut) {
                Some(o) => o.insert("colour".into(), json!("red")),
                None => panic!("no object at {pointer:?}"),
            };
            let err = from_json(v).expect_err("unknown field");
            assert!(err.to_string().contains("unknown field `colour`"), "{pointer}: {err}");
        }
        // snake_case spellings are unknown fields too: the contract is camelCase.
        let mut v = to_json(&batch());
        v["sent_at"] = v["sentAt"].take();
        if let Some(o) = v.as_object_mut() {
            o.remove("sentAt");
        }
        assert!(from_json(v).expect_err("snake_case").to_string().contains("sent_at"));
    }

    #[test]
    fn nested_and_fractional_values_are_refused_by_serde() {
        let mut v = to_json(&batch());
        v["events"][6]["props"]["customer"] = json!({"id": 1});
        assert!(from_json(v).is_err(), "props are flat");

        let mut v = to_json(&batch());
        v["events"][6]["props"]["ids"] = json!([1, 2]);
        assert!(from_json(v).is_err(), "props hold no arrays");

        let mut v = to_json(&batch());
        v["events"][0]["at"] = json!(1_764_186_659_000.5);
        assert!(from_json(v).is_err(), "timestamps are integer milliseconds");
    }

    #[test]
    fn prop_values_keep_their_json_type() {
        let b = batch();
        let v = to_json(&b);
        assert_eq!(v["events"][6]["props"]["estimatedValue"], json!(450.0));
        assert_eq!(v["events"][2]["tags"]["retried"], json!(false));
        let mut v = to_json(&b);
        v["events"][6]["props"] = json!({"workOrderId": "wo_1", "amount": 12, "paid": true});
        let back = from_json(v).expect("parses");
        match &back.events[6] {
            Event::Business { props, .. } => {
                assert_eq!(props.get("amount"), Some(&PropValue::Number(12.0)));
                assert_eq!(props.get("paid"), Some(&PropValue::Bool(true)));
                assert_eq!(props.get("workOrderId"), Some(&PropValue::Text("wo_1".into())));
            }
            other => panic!("expected a business event, got {other:?}"),
        }
    }

    #[test]
    fn body_size_is_checked_before_parsing() {
        assert_eq!(check_size(0), Ok(()));
        let err = check_size(MAX_BATCH_BYTES + 1).expect_err("over the limit");
        assert_eq!(err.path(), "");
        assert_eq!(err.message(), "request body is 65537 bytes, over the 65536-byte limit: send smaller batches");
    }

    #[test]
    fn errors_read_well() {
        let err = WireError::Invalid {
            path: "events[0].name".into(),
            problem: Problem::NotOneOf { got: "lcp".into(), allowed: VITAL_NAMES },
        };
        assert_eq!(err.to_string(), "events[0].name: must be one of LCP, INP, CLS, FCP, TTFB, FID, TTI, got \"lcp\"");
        let mut b = batch();
        b.v = 7;
        assert_eq!(
            b.validate().expect_err("version").message(),
            "wire version 7 is not supported, this collector reads version 1"
        );

        let mut b = batch();
        b.events[1] = Event::Action { at: Timestamp(0), name: "n".into(), action_type: "click".into(), target: None };
        let msg = b.validate().expect_err("1970 is too old").message();
        assert!(msg.starts_with("1970-01-01T00:00:00.000Z is outside sentAt (2025-11-26T19:51:00.000Z)"), "{msg}");

        let mut b = batch();
        b.session.id = "é".repeat(100);
        let msg = b.validate().expect_err("non-ASCII id").message();
        assert!(msg.ends_with(&format!("got \"{}...\"", "é".repeat(64))), "hostile values are cut: {msg}");

        let malformed = WireError::Malformed { path: "events[2]".into(), message: "unknown variant `x`".into() };
        assert_eq!(malformed.to_string(), "events[2]: unknown variant `x`");
        assert_eq!(malformed.path(), "events[2]");
        let bare = WireError::Malformed { path: String::new(), message: "EOF while parsing".into() };
        assert_eq!(bare.to_string(), "EOF while parsing");
    }

    #[test]
    fn event_helpers_match_the_json_tag() {
        let b = batch();
        let v = to_json(&b);
        for (i, e) in b.events.iter().enumerate() {
            assert_eq!(v["events"][i]["type"], json!(e.type_name()));
            assert_eq!(e.at(), Timestamp(SENT - 1_000));
        }
    }
}
