//! Web vitals with web-vitals' semantics (v5/v6): LCP, CLS, INP, FCP, TTFB, plus FID and a TTI
//! estimate. The CLS session windows and INP selection are core's, shared with the agent.
//!
//! - LCP: the last `largest-contentful-paint` entry before the page was first hidden, minus
//!   `activationStart`; reported on the first keydown or click, or when the page is hidden.
//! - FCP: `first-contentful-paint` minus `activationStart`, if before the first hidden time.
//! - TTFB: the navigation entry's `responseStart - activationStart`, at least 0.
//! - CLS: largest session window (1 s gap, 5 s cap), shifts after input ignored; reported when
//!   the page is hidden, again only if it grew.
//! - INP: longest entry per `interactionId` (event entries of 40 ms and more, plus
//!   `first-input`), the 10 longest kept, one skipped per 50 interactions; reported on hidden.
//! - FID: `processingStart - startTime` of `first-input`.
//! - TTI (estimate, not a Google metric): the end of the last long task before the first 5 s
//!   window after FCP with no long task (FCP itself when there is none); reported once.
//! - bfcache restore (`pageshow` with `persisted`): new metric ids, CLS and INP start over,
//!   FCP and LCP are the time from the restore to the next frames, TTFB 0, navigation type
//!   `back-forward-cache`. Prerendered pages: values are measured from `activationStart`.

use crate::Kind;
use crate::js::{self, get, obj, set};
use js_sys::Reflect;
use thorbis_obs_core::domain::vitals::{ClsAccumulator, InpAccumulator, Vital};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// Quiet time after FCP that ends the TTI search.
const TTI_QUIET_MS: f64 = 5000.0;

/// Vitals measured so far on this page (or since the last bfcache restore).
pub(crate) struct Vitals {
    ids: [String; 7],
    nav_type: &'static str,
    activation: f64,
    first_hidden: f64,
    lcp: Option<(f64, String)>,
    lcp_done: bool,
    fcp: Option<f64>,
    cls: ClsAccumulator,
    cls_target: String,
    cls_sent: f64,
    inp: InpAccumulator,
    /// `(interaction id, longest duration, its target)` of the 10 longest interactions, for
    /// the attribution of whichever one INP selects.
    inp_targets: Vec<(u64, f64, String)>,
    inp_sent: f64,
    fid_sent: bool,
    last_long_task_end: f64,
    tti_sent: bool,
}

impl Default for Vitals {
    fn default() -> Self {
        Vitals {
            ids: Default::default(),
            nav_type: "navigate",
            activation: 0.0,
            first_hidden: f64::INFINITY,
            lcp: None,
            lcp_done: false,
            fcp: None,
            cls: ClsAccumulator::new(),
            cls_target: String::new(),
            cls_sent: -1.0,
            inp: InpAccumulator::new(),
            inp_targets: Vec::new(),
            inp_sent: -1.0,
            fid_sent: false,
            last_long_task_end: 0.0,
            tti_sent: false,
        }
    }
}

fn vital_index(v: Vital) -> usize {
    Vital::ALL.iter().position(|x| *x == v).unwrap_or(0)
}

impl crate::Sdk {
    fn report(&mut self, v: Vital, value: f64, target: &str) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        let i = vital_index(v);
        if self.vitals.ids[i].is_empty() {
            self.vitals.ids[i] = js::random_id();
        }
        let ev = obj();
        set(&ev, "name", v.name());
        set(&ev, "value", value);
        set(&ev, "rating", v.rate(value).as_str());
        set(&ev, "id", self.vitals.ids[i].as_str());
        if !target.is_empty() {
            set(&ev, "target", target);
        }
        set(&ev, "navigationType", self.vitals.nav_type);
        self.emit(Kind::Vital, "vital", ev);
    }

    fn report_lcp(&mut self) {
        if self.vitals.lcp_done {
            return;
        }
        if let Some((v, t)) = self.vitals.lcp.clone() {
            self.vitals.lcp_done = true;
            self.report(Vital::Lcp, v, &t);
        }
    }

    fn maybe_tti(&mut self, now: f64) {
        let Some(fcp) = self.vitals.fcp else { return };
        if self.vitals.tti_sent {
            return;
        }
        let since = fcp.max(self.vitals.last_long_task_end);
        if now - since >= TTI_QUIET_MS {
            self.vitals.tti_sent = true;
            self.report(Vital::Tti, since, "");
        }
    }
}

fn element_target(entry: &JsValue, key: &str) -> String {
    get(entry, key).dyn_into::<web_sys::Element>().map(|e| crate::rum::describe(&e)).unwrap_or_default()
}

fn observe(ty: &str, threshold: Option<f64>, f: impl FnMut(js_sys::Array) + 'static) {
    let mut f = f;
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |list: JsValue| f(crate::rum::entries(&list)));
    if let Ok(o) = web_sys::PerformanceObserver::new(cb.as_ref().unchecked_ref()) {
        let init = obj();
        set(&init, "type", ty);
        set(&init, "buffered", true);
        if let Some(t) = threshold {
            set(&init, "durationThreshold", t);
        }
        if let Ok(observe) = Reflect::get(&o, &"observe".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) {
            let _ = observe.call1(&o, &init);
        }
    }
    cb.forget();
}

fn navigation_entry() -> JsValue {
    js::window()
        .and_then(|w| w.performance())
        .map(|p| p.get_entries_by_type("navigation").get(0))
        .unwrap_or(JsValue::UNDEFINED)
}

/// Registers the observers.
pub(crate) fn start() {
    let nav = navigation_entry();
    let doc = js::window().and_then(|w| w.document());
    let prerendering = doc.as_ref().map(|d| js::boolean(d, "prerendering").unwrap_or(false)).unwrap_or(false);
    crate::with(|s| {
        s.vitals.activation = js::num(&nav, "activationStart").unwrap_or(0.0).max(0.0);
        s.vitals.nav_type = if prerendering || s.vitals.activation > 0.0 {
            "prerender"
        } else {
            match js::string(&nav, "type").as_deref() {
                Some("reload") => "reload",
                Some("back_forward") => "back-forward",
                _ => "navigate",
            }
        };
        if js::hidden() && !prerendering {
            s.vitals.first_hidden = 0.0;
        }
    });
    // TTFB, once the response has started (it has, by the time scripts run).
    ttfb(&nav);

    observe("paint", None, |list| {
        for e in list.iter() {
            if js::string(&e, "name").as_deref() != Some("first-contentful-paint") {
                continue;
            }
            let t = js::num(&e, "startTime").unwrap_or(0.0);
            crate::with(|s| {
                if t < s.vitals.first_hidden && s.vitals.fcp.is_none() {
                    let v = (t - s.vitals.activation).max(0.0);
                    s.vitals.fcp = Some(v);
                    s.report(Vital::Fcp, v, "");
                }
            });
            schedule_tti(TTI_QUIET_MS);
        }
    });
    observe("largest-contentful-paint", None, |list| {
        for e in list.iter() {
            let t = js::num(&e, "startTime").unwrap_or(0.0);
            let target = element_target(&e, "element");
            crate::with(|s| {
                if !s.vitals.lcp_done && t < s.vitals.first_hidden {
                    s.vitals.lcp = Some(((t - s.vitals.activation).max(0.0), target));
                }
            });
        }
    });
    observe("layout-shift", None, |list| {
        for e in list.iter() {
            let t = js::num(&e, "startTime").unwrap_or(0.0);
            let v = js::num(&e, "value").unwrap_or(0.0);
            let recent = js::boolean(&e, "hadRecentInput").unwrap_or(false);
            let sources = get(&e, "sources");
            let target = element_target(&get(&sources, "0"), "node");
            crate::with(|s| {
                let before = s.vitals.cls.value();
                s.vitals.cls.add(t, v, recent);
                if s.vitals.cls.value() > before && !target.is_empty() {
                    s.vitals.cls_target = target;
                }
            });
        }
    });
    let inp_entries = |list: js_sys::Array| {
        for e in list.iter() {
            let id = js::num(&e, "interactionId").unwrap_or(0.0);
            let d = js::num(&e, "duration").unwrap_or(0.0);
            let first_input = js::string(&e, "entryType").as_deref() == Some("first-input");
            let target = element_target(&e, "target");
            crate::with(|s| {
                if first_input && !s.vitals.fid_sent {
                    s.vitals.fid_sent = true;
                    let delay = js::num(&e, "processingStart").unwrap_or(0.0) - js::num(&e, "startTime").unwrap_or(0.0);
                    s.report(Vital::Fid, delay.max(0.0), &target);
                }
                if id >= 1.0 {
                    let id = id as u64;
                    s.vitals.inp.add(id, d);
                    let t = &mut s.vitals.inp_targets;
                    match t.iter_mut().find(|x| x.0 == id) {
                        // The longest duration, and the first entry that names a target, as
                        // web-vitals' attribution does (a pointer event may have none, the
                        // click of the same interaction does).
                        Some(x) => {
                            x.1 = x.1.max(d);
                            if x.2.is_empty() {
                                x.2 = target;
                            }
                        }
                        None => {
                            t.push((id, d, target));
                            if t.len() > 10 {
                                let shortest =
                                    t.iter().enumerate().fold(0, |m, (i, x)| if x.1 < t[m].1 { i } else { m });
                                t.swap_remove(shortest);
                            }
                        }
                    }
                }
            });
        }
    };
    observe("event", Some(40.0), inp_entries);
    observe("first-input", None, inp_entries);

    if let Some(w) = js::window() {
        js::listen(&w, "pageshow", true, |e| {
            if js::boolean(&e, "persisted") == Some(true) {
                restored(js::num(&e, "timeStamp").unwrap_or_else(js::perf_now));
            }
        });
    }
}

fn ttfb(nav: &JsValue) {
    let start = js::num(nav, "responseStart").unwrap_or(0.0);
    if start <= 0.0 {
        return;
    }
    crate::with(|s| {
        let v = (start - s.vitals.activation).max(0.0);
        s.report(Vital::Ttfb, v, "");
    });
}

fn schedule_tti(after: f64) {
    js::timeout(after as i32 + 1, || {
        let now = js::perf_now();
        let wait = crate::with(|s| {
            s.maybe_tti(now);
            if s.vitals.tti_sent {
                None
            } else {
                Some(s.vitals.fcp.unwrap_or(now).max(s.vitals.last_long_task_end) + TTI_QUIET_MS - now)
            }
        })
        .flatten();
        if let Some(w) = wait {
            schedule_tti(w.max(50.0));
        }
    });
}

/// A long task ended at `end` (ms since time origin): it pushes the TTI search back.
pub(crate) fn on_long_task(end: f64) {
    crate::with(|s| {
        if end > s.vitals.last_long_task_end {
            s.vitals.last_long_task_end = end;
        }
    });
}

/// The first trusted keydown or click finalises LCP.
pub(crate) fn on_input() {
    crate::with(|s| s.report_lcp());
}

/// The page is being hidden: LCP, CLS and INP are reported (CLS and INP again only if they
/// changed since the last report).
pub(crate) fn on_hidden() {
    let interactions = js::window().and_then(|w| w.performance()).and_then(|p| js::num(&p, "interactionCount"));
    crate::with(|s| {
        if s.vitals.first_hidden.is_infinite() {
            s.vitals.first_hidden = js::perf_now();
        }
        s.report_lcp();
        let cls = s.vitals.cls.value();
        if cls != s.vitals.cls_sent {
            s.vitals.cls_sent = cls;
            let t = s.vitals.cls_target.clone();
            s.report(Vital::Cls, cls, &t);
        }
        if let Some(n) = interactions.filter(|n| *n > 0.0) {
            s.vitals.inp.set_interaction_count(n as u64);
        }
        if let Some(inp) = s.vitals.inp.value() {
            if inp != s.vitals.inp_sent {
                s.vitals.inp_sent = inp;
                let t = s.vitals.inp_targets.iter().find(|x| x.1 == inp).map(|x| x.2.clone()).unwrap_or_default();
                s.report(Vital::Inp, inp, &t);
            }
        }
    });
}

/// A bfcache restore: new ids, CLS and INP from zero, FCP and LCP from the restore to the
/// frame after next (as web-vitals measures them), TTFB 0.
fn restored(event_time: f64) {
    crate::with(|s| {
        s.vitals = Vitals { nav_type: "back-forward-cache", tti_sent: true, ..Vitals::default() };
        s.report(Vital::Ttfb, 0.0, "");
    });
    let Some(w) = js::window() else { return };
    let w2 = w.clone();
    let inner = Closure::once_into_js(move || {
        let v = js::perf_now() - event_time;
        crate::with(|s| {
            s.vitals.fcp = Some(v);
            s.report(Vital::Fcp, v, "");
            s.vitals.lcp = Some((v, String::new()));
            s.report_lcp();
        });
    });
    let outer = Closure::once_into_js(move || {
        let _ = w2.request_animation_frame(inner.unchecked_ref());
    });
    let _ = w.request_animation_frame(outer.unchecked_ref());
}
