//! Sessions, views (SPA route changes included), click actions, resources, long tasks and the
//! spec's business DOM events.

use crate::js::{self, get, obj, set};
use crate::{Config, Kind, Privacy, Sdk};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

const SESSION_KEY: &str = "_thorbis_obs_s";
/// Inactivity after which a new session starts (Datadog's 15 minutes).
const SESSION_IDLE_MS: f64 = 15.0 * 60_000.0;
/// Longest session (Datadog's 4 hours).
const SESSION_MAX_MS: f64 = 4.0 * 3_600_000.0;

/// The session, kept in localStorage so it spans page loads.
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) sampled: bool,
    /// Epoch ms.
    started: f64,
    /// Epoch ms of the last event.
    last: f64,
    /// Epoch ms of the last write to storage.
    written: f64,
    rate: f64,
}

fn storage() -> Option<web_sys::Storage> {
    js::window().and_then(|w| w.local_storage().ok().flatten())
}

impl Session {
    /// Resumes the stored session if it is still live, else starts one (sampled at `rate` %).
    pub(crate) fn load_or_start(now: f64, rate: f64) -> Session {
        let at = js::epoch_ms(now);
        let stored = storage().and_then(|s| s.get_item(SESSION_KEY).ok().flatten());
        if let Some(text) = stored {
            let mut parts = text.split('|');
            let id = parts.next().unwrap_or("").to_string();
            let started = parts.next().map(js_sys::Number::parse_float).unwrap_or(f64::NAN);
            let last = parts.next().map(js_sys::Number::parse_float).unwrap_or(f64::NAN);
            let sampled = parts.next() == Some("1");
            if !id.is_empty() && at - last < SESSION_IDLE_MS && at - started < SESSION_MAX_MS {
                let mut s = Session { id, sampled, started, last, written: 0.0, rate };
                s.save(at);
                return s;
            }
        }
        Session::start(at, rate)
    }

    fn start(at: f64, rate: f64) -> Session {
        let sampled = js_sys::Math::random() * 100.0 < rate;
        let mut s = Session { id: js::random_id(), sampled, started: at, last: at, written: 0.0, rate };
        s.save(at);
        s
    }

    fn save(&mut self, at: f64) {
        self.last = at;
        self.written = at;
        if let Some(st) = storage() {
            let mut v = self.id.clone();
            for n in [self.started, at] {
                v.push('|');
                v.push_str(&String::from(js_sys::Number::from(n).to_string(10).unwrap_or_else(|_| "0".into())));
            }
            v.push_str(if self.sampled { "|1" } else { "|0" });
            let _ = st.set_item(SESSION_KEY, &v);
        }
    }

    /// Marks activity; rolls over to a new session (flushing the old one's batch first) when
    /// this one expired. Storage is written at most once a second.
    pub(crate) fn touch(&mut self, now: f64, out: &mut crate::transport::Outbox) {
        let at = js::epoch_ms(now);
        if at - self.last >= SESSION_IDLE_MS || at - self.started >= SESSION_MAX_MS {
            out.clear();
            *self = Session::start(at, self.rate);
        } else if at - self.written >= 1000.0 {
            self.save(at);
        } else {
            self.last = at;
        }
    }

    pub(crate) fn to_js(&self) -> Object {
        let o = obj();
        set(&o, "id", self.id.as_str());
        set(&o, "sampled", self.sampled);
        set(&o, "startedAt", self.started);
        o
    }
}

/// The current view (page or SPA route).
pub(crate) struct View {
    id: String,
    url: String,
    referrer: Option<String>,
    route: String,
}

impl View {
    /// The page's current location as a view; `previous` becomes the referrer.
    pub(crate) fn current(cfg: &Config, previous: Option<&View>) -> View {
        let loc = js::window().map(|w| w.location());
        let href = loc.as_ref().and_then(|l| l.href().ok()).unwrap_or_default();
        let route = loc.as_ref().and_then(|l| l.pathname().ok()).unwrap_or_default();
        let referrer = match previous {
            Some(p) => Some(p.url.clone()),
            None => js::window().and_then(|w| w.document()).map(|d| d.referrer()).filter(|r| !r.is_empty()),
        };
        let scrub = |s: &str| {
            let mut out = scrub_url(s);
            for re in &cfg.scrubbers {
                if let Ok(r) = re.clone().dyn_into::<js_sys::RegExp>() {
                    out = String::from(js_sys::JsString::from(out.as_str()).replace_by_pattern(&r, "[redacted]"));
                }
            }
            out
        };
        View { id: js::random_id(), url: scrub(&href), referrer: referrer.map(|r| scrub(&r)), route: scrub(&route) }
    }

    pub(crate) fn to_js(&self) -> Object {
        let o = obj();
        set(&o, "id", self.id.as_str());
        set(&o, "url", self.url.as_str());
        if let Some(r) = &self.referrer {
            set(&o, "referrer", r.as_str());
        }
        set(&o, "route", self.route.as_str());
        o
    }
}

/// Query parameters whose values are always redacted.
const SECRET_KEYS: [&str; 12] = [
    "token",
    "access_token",
    "id_token",
    "key",
    "api_key",
    "apikey",
    "secret",
    "password",
    "pass",
    "auth",
    "code",
    "session",
];

/// Redacts emails anywhere in a URL and the values of secret-looking query parameters
/// (`?token=...`, `&password=...`, and any value holding an `@`).
pub(crate) fn scrub_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = scrub_emails(base);
    if let Some(q) = query {
        let (q, frag) = match q.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (q, None),
        };
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = k.to_ascii_lowercase();
            let secret = SECRET_KEYS.iter().any(|s| lower == *s || lower.ends_with(&["_", s].concat()));
            out.push_str(k);
            if pair.contains('=') {
                out.push('=');
                if secret || v.contains('@') || v.contains("%40") {
                    out.push_str("[redacted]");
                } else {
                    out.push_str(v);
                }
            }
        }
        if let Some(f) = frag {
            out.push('#');
            out.push_str(&scrub_emails(f));
        }
    }
    out
}

/// Replaces `local@domain` runs with `[email]`.
fn scrub_emails(s: &str) -> String {
    if !s.contains('@') && !s.contains("%40") {
        return s.to_string();
    }
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '%');
    let mut out = String::with_capacity(s.len());
    for (i, token) in s.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if (token.contains('@') || token.contains("%40")) && token.chars().all(|c| word(c) || c == '@') {
            out.push_str("[email]");
            continue;
        }
        out.push_str(token);
    }
    out
}

// The hot path in the page's own JS: one call builds a business event and copies its plain
// properties (the wire's rules: names `[A-Za-z_][A-Za-z0-9_]*` of at most 200 bytes, strings,
// booleans and finite numbers, 32 at most), instead of a dozen crossings from wasm.
#[wasm_bindgen(inline_js = "const K = /^[A-Za-z_][A-Za-z0-9_]{0,199}$/;
export function plain(src) {
  if (!src || typeof src !== 'object') return undefined;
  let n = 0, out;
  for (const k of Object.keys(src)) {
    if (n >= 32) break;
    const v = src[k], t = typeof v;
    if (K.test(k) && (t === 'string' || t === 'boolean' || (t === 'number' && isFinite(v)))) {
      (out || (out = {}))[k] = v;
      n++;
    }
  }
  return out;
}
export function business(name, props, at) {
  const e = { name, type: 'business', at };
  const p = plain(props);
  if (p) e.props = p;
  return e;
}")]
extern "C" {
    fn plain(src: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = business)]
    fn business_event(name: &JsValue, props: &JsValue, at: f64) -> Object;
}

/// Copies up to 32 plain properties (string, boolean, finite number) of `src` into `ev[key]`.
pub(crate) fn put_props(ev: &Object, key: &'static str, src: &JsValue) {
    let props = plain(src);
    if !props.is_undefined() {
        set(ev, key, props);
    }
}

/// `track(name, props)`.
pub(crate) fn business(name: JsValue, props: &JsValue) {
    crate::with(|s| {
        let now = js::perf_now();
        s.emit_built(Kind::Other, business_event(&name, props, js::epoch_ms(now)).into(), now);
    });
}

/// A CSS-ish description of an element: `tag#id.class1.class2`.
pub(crate) fn describe(el: &web_sys::Element) -> String {
    let mut s = el.tag_name().to_ascii_lowercase();
    let id = el.id();
    if !id.is_empty() {
        s.push('#');
        s.push_str(&id);
    }
    for c in el.class_name().split_whitespace().take(2) {
        s.push('.');
        s.push_str(c);
    }
    s
}

/// The action name of a clicked element, from its accessible text; never an input's value.
fn action_name(el: &web_sys::Element, privacy: Privacy) -> String {
    let tag = el.tag_name().to_ascii_lowercase();
    let attr = |k: &str| el.get_attribute(k).filter(|v| !v.trim().is_empty());
    let text = attr("aria-label")
        .or_else(|| {
            if matches!(tag.as_str(), "input" | "textarea" | "select") {
                // The label or placeholder, never the typed value.
                attr("placeholder").or_else(|| attr("name"))
            } else {
                js::string(el, "innerText").filter(|t| !t.trim().is_empty())
            }
        })
        .or_else(|| attr("title"))
        .or_else(|| attr("alt"))
        .unwrap_or_default();
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(100).collect();
    match privacy {
        Privacy::Mask if !text.is_empty() => "Masked".to_string(),
        _ => text,
    }
}

fn on_click(e: JsValue) {
    let Some(el) = get(&e, "target").dyn_into::<web_sys::Element>().ok() else { return };
    // The nearest interactive ancestor names the action, like a screen reader would.
    let el = el.closest("button,a,[role=button],input,select,textarea,label,summary").ok().flatten().unwrap_or(el);
    crate::with(|s| {
        let target = describe(&el);
        s.crumbs.add("ui.click", &target);
        if !s.cfg.interactions {
            return;
        }
        let name = action_name(&el, s.cfg.privacy);
        let ev = obj();
        set(&ev, "name", if name.is_empty() { target.as_str() } else { name.as_str() });
        set(&ev, "actionType", "click");
        set(&ev, "target", target.as_str());
        s.emit(Kind::Action, "action", ev);
    });
    crate::vitals::on_input();
}

/// A new view after an SPA route change: the old view's batch goes first.
fn route_changed() {
    crate::with(|s: &mut Sdk| {
        let href = js::window().and_then(|w| w.location().href().ok()).unwrap_or_default();
        if s.scrub(&href) == s.view_url() {
            return;
        }
        s.flush(false);
        let next = View::current(&s.cfg, Some(&s.view));
        s.crumbs.add("navigation", &next.url);
        s.view = next;
        let ev = obj();
        set(&ev, "name", "route_change");
        set(&ev, "durationMs", js::perf_now());
        s.emit(Kind::Other, "timing", ev);
    });
}

impl Sdk {
    fn view_url(&self) -> String {
        self.view.url.clone()
    }
}

/// Wraps `history[name]` so a call also reports the route change.
fn patch_history(history: &web_sys::History, name: &'static str) {
    let Ok(orig) = Reflect::get(history, &name.into()).and_then(|f| f.dyn_into::<Function>()) else { return };
    let h = history.clone();
    let wrapped = Closure::<dyn FnMut(JsValue, JsValue, JsValue) -> JsValue>::new(move |a, b, c| {
        let r = orig.call3(&h, &a, &b, &c).unwrap_or(JsValue::UNDEFINED);
        route_changed();
        r
    });
    let _ = Reflect::set(history, &name.into(), wrapped.as_ref());
    wrapped.forget();
}

fn observe(ty: &str, f: impl FnMut(JsValue) + 'static) {
    let cb = Closure::<dyn FnMut(JsValue)>::new(f);
    if let Ok(o) = web_sys::PerformanceObserver::new(cb.as_ref().unchecked_ref()) {
        let init = obj();
        set(&init, "type", ty);
        set(&init, "buffered", true);
        let _ = Reflect::apply(&get(&o, "observe").unchecked_into::<Function>(), &o, &js_sys::Array::of1(&init));
    }
    cb.forget();
}

pub(crate) fn entries(list: &JsValue) -> js_sys::Array {
    Reflect::get(list, &"getEntries".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .and_then(|f| f.call0(list).ok())
        .map(|v| js_sys::Array::from(&v))
        .unwrap_or_default()
}

/// Starts click, route, resource, long-task and business-event tracking.
pub(crate) fn start(_interactions: bool, resources: bool, long_tasks: bool) {
    let Some(w) = js::window() else { return };
    if let Some(d) = w.document() {
        js::listen(&d, "click", true, on_click);
        js::listen(&d, "keydown", true, |_| crate::vitals::on_input());
        for (dom, name, map) in BUSINESS_EVENTS {
            js::listen(&d, dom, false, move |e| {
                let detail = get(&e, "detail");
                crate::with(|s| {
                    let props = obj();
                    for (from, to) in map {
                        let v = get(&detail, from);
                        if v.as_string().is_some() || v.as_bool().is_some() || v.as_f64().is_some_and(f64::is_finite) {
                            set(&props, to, v);
                        }
                    }
                    let ev = obj();
                    set(&ev, "name", name);
                    set(&ev, "props", props);
                    s.emit(Kind::Other, "business", ev);
                });
            });
        }
    }
    if let Ok(h) = w.history() {
        patch_history(&h, "pushState");
        patch_history(&h, "replaceState");
    }
    js::listen(&w, "popstate", false, |_| route_changed());
    if resources {
        let mut tally = thorbis_obs_core::domain::budgets::BudgetTally::new();
        observe("resource", move |list| {
            for e in entries(&list).iter() {
                let url = js::string(&e, "name").unwrap_or_default();
                let initiator = js::string(&e, "initiatorType").unwrap_or_default();
                let bytes = js::num(&e, "transferSize").unwrap_or(0.0).max(0.0);
                let kind = tally.record(&initiator, &url, bytes as u64);
                crate::with(|s| {
                    // The collector's own endpoint is not a page resource.
                    if url.contains(s.cfg.url.split('?').next().unwrap_or("\u{0}")) {
                        return;
                    }
                    let ev = obj();
                    set(&ev, "url", s.scrub(&url).as_str());
                    set(&ev, "kind", kind.as_str());
                    set(&ev, "transferBytes", bytes);
                    set(&ev, "durationMs", js::num(&e, "duration").unwrap_or(0.0).max(0.0));
                    if let Some(b) = s.cfg.budgets.for_kind(kind) {
                        if b.status(tally.total(kind)) == thorbis_obs_core::domain::budgets::BudgetStatus::Error {
                            set(&ev, "overBudget", kind.as_str());
                        }
                    }
                    set(&ev, "at", js::epoch_ms(js::num(&e, "startTime").unwrap_or(0.0)));
                    s.emit(Kind::Other, "resource", ev);
                });
            }
        });
    }
    if long_tasks {
        observe("longtask", |list| {
            for e in entries(&list).iter() {
                let start = js::num(&e, "startTime").unwrap_or(0.0);
                let d = js::num(&e, "duration").unwrap_or(0.0);
                crate::vitals::on_long_task(start + d);
                crate::with(|s| {
                    let ev = obj();
                    set(&ev, "durationMs", d);
                    set(&ev, "startMs", start);
                    set(&ev, "at", js::epoch_ms(start));
                    s.emit(Kind::Other, "long_task", ev);
                });
            }
        });
    }
}

/// The spec's DOM events: (event, business event name, [(detail field, property)]).
type BusinessEvent = (&'static str, &'static str, [(&'static str, &'static str); 4]);
const BUSINESS_EVENTS: [BusinessEvent; 4] = [
    (
        "work-order-created",
        "work_order_created",
        [
            ("id", "workOrderId"),
            ("industry", "industry"),
            ("priority", "priority"),
            ("estimatedValue", "estimatedValue"),
        ],
    ),
    (
        "work-order-completed",
        "work_order_completed",
        [
            ("id", "workOrderId"),
            ("duration", "duration"),
            ("actualValue", "actualValue"),
            ("satisfaction", "customerSatisfaction"),
        ],
    ),
    (
        "invoice-generated",
        "invoice_generated",
        [("id", "invoiceId"), ("amount", "amount"), ("industry", "industry"), ("paymentTerms", "paymentTerms")],
    ),
    (
        "payment-processed",
        "payment_processed",
        [("id", "paymentId"), ("amount", "amount"), ("method", "method"), ("processingTime", "processingTime")],
    ),
];

#[cfg(test)]
mod tests {
    use super::scrub_url;

    #[test]
    fn urls_lose_emails_and_tokens() {
        assert_eq!(
            scrub_url("https://a.example/u/jo@x.io/p?token=abc&q=shoes&email=jo%40x.io#f"),
            "https://a.example/u/[email]/p?token=[redacted]&q=shoes&email=[redacted]#f"
        );
        assert_eq!(scrub_url("/orders?id=7&reset_password=x"), "/orders?id=7&reset_password=[redacted]");
        assert_eq!(scrub_url("/plain"), "/plain");
    }
}
