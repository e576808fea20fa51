//! Browser SDK of thorbis-obs, published to npm as `@thorbis/obs` (see `npm/`).
//!
//! One `init(options)` starts everything: web vitals with web-vitals' semantics (LCP, CLS, INP,
//! FCP, TTFB, plus FID and a TTI estimate), RUM (session, views with SPA route changes, click
//! actions, resources against budgets, long tasks, timings), error capture with breadcrumbs and
//! the spec's noise filter, business events, and a batching transport (sendBeacon on page exit,
//! fetch with keepalive otherwise, text/plain so there is no CORS preflight, bounded retries
//! that honour 429 and Retry-After).
//!
//! Size is the design constraint: events are plain JS objects serialised by the page's own
//! `JSON.stringify`, times come from `performance`, ids from `crypto.randomUUID`; no serde, no
//! chrono, no `format!` in the browser build. Every entry point checks the state with
//! `try_borrow_mut` and drops (and counts) what it cannot take: nothing here throws into the
//! host page, and the npm loader wraps every call in try/catch as a second guard.

mod errors;
mod js;
mod rum;
mod transport;
mod vitals;

use js::{get, obj, set};
use js_sys::{Function, Object};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

/// The wire schema version this SDK speaks.
#[wasm_bindgen(js_name = wireVersion)]
pub fn wire_version() -> u32 {
    thorbis_obs_core::wire::WIRE_VERSION
}

/// Rates a web-vitals value with Google's thresholds: 0 good, 1 needs improvement, 2 poor,
/// 255 for an unknown metric name.
#[wasm_bindgen(js_name = rateVital)]
pub fn rate_vital(name: &str, value: f64) -> u8 {
    use thorbis_obs_core::domain::vitals::{Rating, Vital};
    match Vital::from_name(name) {
        Some(v) => match v.rate(value) {
            Rating::Good => 0,
            Rating::NeedsImprovement => 1,
            Rating::Poor => 2,
        },
        None => 255,
    }
}

/// How much the SDK may see of what users type and click.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Privacy {
    /// Action names from visible text; input values never.
    MaskUserInput,
    /// Action names masked too.
    Mask,
    /// Everything but input values.
    Allow,
}

/// `init` options, read from the page's object.
pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) service: String,
    pub(crate) env: String,
    pub(crate) version: String,
    pub(crate) sample_rate: f64,
    pub(crate) interactions: bool,
    pub(crate) resources: bool,
    pub(crate) long_tasks: bool,
    pub(crate) privacy: Privacy,
    pub(crate) scrubbers: Vec<JsValue>,
    pub(crate) before_send: Option<Function>,
    pub(crate) budgets: thorbis_obs_core::domain::budgets::Budgets,
    pub(crate) flush_ms: i32,
    pub(crate) batch_events: usize,
}

fn read_config(o: &JsValue) -> Config {
    let s = |k: &'static str, d: &str| js::string(o, k).filter(|v| !v.is_empty()).unwrap_or_else(|| d.to_string());
    let b = |k: &'static str, d: bool| js::boolean(o, k).unwrap_or(d);
    let mut url = s("endpoint", "/v1/rum");
    if let Some(t) = js::string(o, "clientToken").filter(|t| !t.is_empty()) {
        url.push_str(if url.contains('?') { "&token=" } else { "?token=" });
        url.push_str(&String::from(js_sys::encode_uri_component(&t)));
    }
    let privacy = match js::string(o, "privacy").as_deref() {
        Some("mask") => Privacy::Mask,
        Some("allow") => Privacy::Allow,
        _ => Privacy::MaskUserInput,
    };
    let scrubbers = match get(o, "scrubbers") {
        v if js_sys::Array::is_array(&v) => js_sys::Array::from(&v).iter().collect(),
        _ => Vec::new(),
    };
    let mut budgets = thorbis_obs_core::domain::budgets::Budgets::default();
    let bo = get(o, "budgets");
    // Budgets in KB, as the spec writes them.
    for (k, slot) in [
        ("javascript", &mut budgets.javascript),
        ("css", &mut budgets.css),
        ("images", &mut budgets.images),
        ("fonts", &mut budgets.fonts),
    ] {
        if let Some(kb) = js::num(&bo, k).filter(|v| v.is_finite() && *v > 0.0) {
            let bytes = (kb * 1024.0) as u64;
            slot.budget_bytes = bytes;
            slot.error_bytes = bytes;
            slot.warning_bytes = slot.warning_bytes.min(bytes);
        }
    }
    Config {
        url,
        service: s("service", "browser"),
        env: s("env", "production"),
        version: s("version", ""),
        sample_rate: js::num(o, "sessionSampleRate").filter(|r| r.is_finite()).unwrap_or(100.0).clamp(0.0, 100.0),
        interactions: b("trackInteractions", true),
        resources: b("trackResources", true),
        long_tasks: b("trackLongTasks", true),
        privacy,
        scrubbers,
        before_send: get(o, "beforeSend").dyn_into::<Function>().ok(),
        budgets,
        flush_ms: js::num(o, "flushIntervalMs").filter(|v| *v >= 100.0).unwrap_or(10_000.0) as i32,
        batch_events: 50,
    }
}

/// The SDK's state.
pub(crate) struct Sdk {
    pub(crate) cfg: Config,
    pub(crate) consent: bool,
    pub(crate) session: rum::Session,
    pub(crate) view: rum::View,
    pub(crate) out: transport::Outbox,
    pub(crate) crumbs: errors::Breadcrumbs,
    pub(crate) vitals: vitals::Vitals,
    pub(crate) limits: [(f64, u32); 4],
    /// Calls that failed or were dropped (busy, invalid, rate limited), for `diagnostics()`.
    pub(crate) failures: u32,
    pub(crate) dropped: u32,
    pub(crate) last_error: errors::LastError,
}

/// The allocator of the browser build (talc: smaller than the default dlmalloc).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

thread_local! {
    static SDK: RefCell<Option<Sdk>> = const { RefCell::new(None) };
}

/// Runs `f` on the SDK if it is initialised and not busy (a `beforeSend` hook calling back in,
/// say); otherwise counts nothing and returns `None`.
pub(crate) fn with<R>(f: impl FnOnce(&mut Sdk) -> R) -> Option<R> {
    SDK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut g) => g.as_mut().map(f),
        Err(_) => None,
    })
}

/// Event kinds with their own rate limit (3,000 a minute each, as Datadog's).
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Vital = 0,
    Error = 1,
    Action = 2,
    Other = 3,
}

const RATE_LIMIT_PER_MINUTE: u32 = 3000;

impl Sdk {
    /// Stamps, filters, limits and queues one event.
    pub(crate) fn emit(&mut self, kind: Kind, ty: &'static str, ev: Object) {
        let now = js::perf_now();
        set(&ev, "type", js::constant(ty));
        if get(&ev, "at").is_undefined() {
            set(&ev, "at", js::epoch_ms(now));
        }
        self.emit_built(kind, ev.into(), now);
    }

    /// [`Sdk::emit`] for an event that already has its `type` and `at`.
    pub(crate) fn emit_built(&mut self, kind: Kind, ev: JsValue, now: f64) {
        self.session.touch(now, &mut self.out);
        if !self.session.sampled && !matches!(kind, Kind::Error) {
            return;
        }
        let slot = &mut self.limits[kind as usize];
        if now - slot.0 > 60_000.0 {
            *slot = (now, 0);
        }
        if slot.1 >= RATE_LIMIT_PER_MINUTE {
            self.dropped += 1;
            return;
        }
        slot.1 += 1;
        let ev = match &self.cfg.before_send {
            None => ev,
            Some(f) => match js::call1(f, &ev) {
                Ok(v) if v.is_object() => v,
                Ok(v) if v.is_undefined() => ev,
                Ok(_) => {
                    self.dropped += 1;
                    return;
                }
                Err(_) => {
                    self.failures += 1;
                    ev
                }
            },
        };
        // A full batch goes out from a task of its own, not inside the caller's track().
        if self.out.push(ev) >= self.cfg.batch_events && !self.out.flush_scheduled {
            self.out.flush_scheduled = true;
            js::timeout(0, || {
                with(|s| {
                    s.out.flush_scheduled = false;
                    s.flush(false);
                });
            });
        }
    }

    /// Sends what is queued (the current view's batch) and due retries.
    pub(crate) fn flush(&mut self, exiting: bool) {
        if !self.consent {
            return;
        }
        let header = self.header();
        self.out.flush(&self.cfg.url, &header, exiting);
    }

    fn header(&self) -> Object {
        let h = obj();
        set(&h, "v", thorbis_obs_core::wire::WIRE_VERSION);
        set(&h, "service", self.cfg.service.as_str());
        set(&h, "env", self.cfg.env.as_str());
        if !self.cfg.version.is_empty() {
            set(&h, "version", self.cfg.version.as_str());
        }
        set(&h, "session", self.session.to_js());
        set(&h, "view", self.view.to_js());
        set(&h, "sentAt", js::now_ms());
        h
    }

    /// Applies the page's scrubbers (RegExp objects) and the built-in URL scrubbing.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut s = rum::scrub_url(text);
        for re in &self.cfg.scrubbers {
            let js = js_sys::JsString::from(s.as_str());
            if let Ok(r) = re.clone().dyn_into::<js_sys::RegExp>() {
                s = String::from(js.replace_by_pattern(&r, "[redacted]"));
            }
        }
        s
    }
}

/// Starts the SDK. A second call is ignored. Does nothing outside a browser.
#[wasm_bindgen]
pub fn init(options: JsValue) {
    let Some(w) = js::window() else { return };
    if SDK.with(|c| c.try_borrow().map(|g| g.is_some()).unwrap_or(true)) {
        return;
    }
    let cfg = read_config(&options);
    let consent = js::string(&options, "consent").as_deref() != Some("pending");
    let now = js::perf_now();
    let session = rum::Session::load_or_start(now, cfg.sample_rate);
    let view = rum::View::current(&cfg, None);
    let sdk = Sdk {
        consent,
        session,
        view,
        out: transport::Outbox::default(),
        crumbs: errors::Breadcrumbs::default(),
        vitals: vitals::Vitals::default(),
        limits: [(now, 0); 4],
        failures: 0,
        dropped: 0,
        last_error: errors::LastError::default(),
        cfg,
    };
    let (flush_ms, interactions, resources, long_tasks) =
        (sdk.cfg.flush_ms, sdk.cfg.interactions, sdk.cfg.resources, sdk.cfg.long_tasks);
    SDK.with(|c| {
        if let Ok(mut g) = c.try_borrow_mut() {
            *g = Some(sdk);
        }
    });
    vitals::start();
    errors::start();
    rum::start(interactions, resources, long_tasks);
    transport::start(&w, flush_ms);
}

/// Records a business event: `track("quote_sent", { amount: 450 })`. The name stays a JS
/// string (no trip through UTF-8): this is the hot path.
#[wasm_bindgen]
pub fn track(name: JsValue, properties: JsValue) {
    if name.is_string() {
        rum::business(name, &properties);
    }
}

/// Records a step of a user journey: `trackJourney("work-order", "details-entered", meta)`.
#[wasm_bindgen(js_name = trackJourney)]
pub fn track_journey(journey_type: &str, step: &str, meta: JsValue) {
    with(|s| {
        let ev = obj();
        set(&ev, "journeyType", journey_type);
        set(&ev, "step", step);
        rum::put_props(&ev, "meta", &meta);
        s.emit(Kind::Other, "journey", ev);
    });
}

/// Records a conversion with its value: `trackConversion("invoice-paid", 450, meta)`.
#[wasm_bindgen(js_name = trackConversion)]
pub fn track_conversion(conversion_type: &str, value: f64, meta: JsValue) {
    if !value.is_finite() {
        return;
    }
    with(|s| {
        let ev = obj();
        set(&ev, "conversionType", conversion_type);
        set(&ev, "value", value);
        rum::put_props(&ev, "meta", &meta);
        s.emit(Kind::Other, "conversion", ev);
    });
}

/// Records a timing: `addTiming("checkout_ready")` (ms since the page started) or with a
/// duration of your own.
#[wasm_bindgen(js_name = addTiming)]
pub fn add_timing(name: &str, ms: Option<f64>) {
    let d = ms.filter(|v| v.is_finite() && *v >= 0.0).unwrap_or_else(js::perf_now);
    with(|s| {
        let ev = obj();
        set(&ev, "name", name);
        set(&ev, "durationMs", d);
        s.emit(Kind::Other, "timing", ev);
    });
}

/// Reports an error (a React error boundary's, say) with optional context tags.
#[wasm_bindgen(js_name = captureException)]
pub fn capture_exception(error: JsValue, context: JsValue) {
    errors::capture(&error, "captured", &context, None);
}

/// Reports an error the npm loader caught before the wasm was ready.
#[wasm_bindgen(js_name = captureUnhandled)]
pub fn capture_unhandled(error: JsValue, rejection: bool) {
    let kind = if rejection { "unhandledrejection" } else { "error" };
    errors::capture(&error, kind, &JsValue::UNDEFINED, None);
}

/// Reports a business error; its fingerprint is the spec's `[process, step, code]`.
#[wasm_bindgen(js_name = trackBusinessError)]
pub fn track_business_error(error: JsValue, context: JsValue) {
    let part = |k: &'static str| js::string(&context, k).unwrap_or_else(|| "unknown".into());
    let fp = [part("process"), part("step"), part("code")];
    errors::capture(&error, "business", &context, Some(fp));
}

/// Grants (true) or withdraws (false) consent; nothing is sent before it is granted, and what
/// was queued meanwhile goes out once it is.
#[wasm_bindgen(js_name = setConsent)]
pub fn set_consent(granted: bool) {
    with(|s| {
        s.consent = granted;
        if granted {
            s.flush(false);
        } else {
            s.out.clear();
        }
    });
}

/// Sends what is queued now.
#[wasm_bindgen]
pub fn flush() {
    with(|s| s.flush(false));
}

/// The SDK's own counters: `{ queued, failures, dropped, sessionId, sampled }`.
#[wasm_bindgen]
pub fn diagnostics() -> JsValue {
    with(|s| {
        let o = obj();
        set(&o, "queued", s.out.len() as u32);
        set(&o, "retrying", s.out.retrying() as u32);
        set(&o, "failures", s.failures + s.out.failures);
        set(&o, "dropped", s.dropped + s.out.dropped);
        set(&o, "sessionId", s.session.id.as_str());
        set(&o, "sampled", s.session.sampled);
        JsValue::from(o)
    })
    .unwrap_or(JsValue::NULL)
}
