//! Error capture: `error` and `unhandledrejection` on the window, `captureException`,
//! `trackBusinessError`; the spec's noise filter; business context tags from the URL path; the
//! last 100 breadcrumbs (clicks, navigations, console errors); repeats of the same error within
//! a minute are counted on one event instead of sent again.
//!
//! The raw stack is sent and the collector parses its frames and fingerprints it with core's
//! `parse_stack` and `error_fingerprint` (the same code, run server-side): the parser and the
//! hash would cost the browser bundle more than anything else in this module. Business errors
//! carry the spec's `[process, step, code]` fingerprint from here.

use crate::Kind;
use crate::js::{self, get, obj, set};
use js_sys::{Array, Object};
use std::collections::VecDeque;
use thorbis_obs_core::domain::errors::is_noise;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

const MAX_CRUMBS: usize = 100;
const DEDUP_MS: f64 = 60_000.0;

/// The last breadcrumbs, oldest first.
#[derive(Default)]
pub(crate) struct Breadcrumbs(VecDeque<Object>);

impl Breadcrumbs {
    pub(crate) fn add(&mut self, category: &str, message: &str) {
        let c = obj();
        set(&c, "at", js::now_ms());
        set(&c, "category", category);
        let m: String = message.chars().take(300).collect();
        set(&c, "message", m.as_str());
        if self.0.len() >= MAX_CRUMBS {
            self.0.pop_front();
        }
        self.0.push_back(c);
    }

    fn to_js(&self) -> Array {
        self.0.iter().collect()
    }
}

/// The previous error, for deduplication.
#[derive(Default)]
pub(crate) struct LastError {
    fingerprint: String,
    at: f64,
    repeats: u32,
}

fn text_of(v: &JsValue) -> String {
    v.as_string().unwrap_or_else(|| String::from(js_sys::JsString::from(v.clone())))
}

/// Reports `error` (an Error, or anything thrown) of `kind` (the wire's `error`,
/// `unhandledrejection`, `captured` or `business`).
pub(crate) fn capture(error: &JsValue, kind: &str, context: &JsValue, business: Option<[String; 3]>) {
    let (name, message, stack) = if error.is_instance_of::<js_sys::Error>() {
        let e: &js_sys::Error = error.unchecked_ref();
        (String::from(e.name()), String::from(e.message()), js::string(error, "stack"))
    } else if error.is_object() {
        (
            js::string(error, "name").unwrap_or_else(|| "Error".into()),
            js::string(error, "message").unwrap_or_default(),
            js::string(error, "stack"),
        )
    } else {
        ("Error".to_string(), text_of(error), None)
    };
    report(&name, &message, stack.as_deref(), kind, context, business);
}

fn report(
    name: &str,
    message: &str,
    stack: Option<&str>,
    kind: &str,
    context: &JsValue,
    business: Option<[String; 3]>,
) {
    if is_noise(message, stack).is_some() {
        return;
    }
    // The dedup key: the same error thrown from the same place.
    let mut fingerprint = match &business {
        Some(parts) => parts.join("\u{1f}"),
        None => [name, message].join("\u{1f}"),
    };
    if let Some(first) = stack.and_then(|st| st.lines().find(|l| l.trim_start().starts_with("at ") || l.contains('@')))
    {
        fingerprint.push('\u{1f}');
        fingerprint.push_str(first);
    }
    crate::with(|s| {
        let now = js::perf_now();
        if s.last_error.fingerprint == fingerprint && now - s.last_error.at < DEDUP_MS {
            s.last_error.repeats += 1;
            return;
        }
        let repeats = std::mem::take(&mut s.last_error.repeats);
        s.last_error = LastError { fingerprint: fingerprint.clone(), at: now, repeats: 0 };
        let ev = obj();
        set(&ev, "kind", kind);
        let mut msg = String::from(name);
        if !message.is_empty() {
            msg.push_str(": ");
            msg.push_str(message);
        }
        let msg: String = s.scrub(&msg).chars().take(2000).collect();
        set(&ev, "message", msg.as_str());
        if let Some(st) = stack {
            let st: String = st.chars().take(16_000).collect();
            set(&ev, "stack", st.as_str());
        }
        if let Some(parts) = &business {
            let fp = Array::new();
            for p in parts {
                fp.push(&JsValue::from_str(p));
            }
            set(&ev, "fingerprint", fp);
        }
        // Tags: the business context of the page, then the caller's context.
        let path = js::window().and_then(|w| w.location().pathname().ok()).unwrap_or_default();
        let ctx = thorbis_obs_core::domain::context::ContextRules::default().resolve(&path);
        let tags = obj();
        set(&tags, "businessProcess", ctx.process.as_str());
        set(&tags, "industry", ctx.industry.as_str());
        for (from, to) in [
            ("process", "businessProcess"),
            ("step", "workflowStep"),
            ("code", "errorCode"),
            ("industry", "industry"),
            ("userRole", "userRole"),
            ("businessId", "businessId"),
            ("component", "component"),
        ] {
            if let Some(v) = js::string(context, from) {
                set(&tags, to, v.as_str());
            }
        }
        set(&ev, "tags", tags);
        let crumbs = s.crumbs.to_js();
        if crumbs.length() > 0 {
            set(&ev, "breadcrumbs", crumbs);
        }
        set(&ev, "count", 1 + repeats);
        s.emit(Kind::Error, "error", ev);
    });
}

/// Listens for uncaught errors, unhandled rejections and `console.error`.
pub(crate) fn start() {
    let Some(w) = js::window() else { return };
    js::listen(&w, "error", true, |e| {
        // Resource load errors (an <img> 404) reach window listeners in the capture phase with
        // no `error`/`message`: they are not script errors.
        let err = get(&e, "error");
        let message = js::string(&e, "message");
        if err.is_undefined() && message.is_none() {
            return;
        }
        if err.is_object() {
            capture(&err, "error", &JsValue::UNDEFINED, None);
        } else {
            let m = message.unwrap_or_default();
            report("Error", &m, None, "error", &JsValue::UNDEFINED, None);
        }
    });
    js::listen(&w, "unhandledrejection", true, |e| {
        capture(&get(&e, "reason"), "unhandledrejection", &JsValue::UNDEFINED, None);
    });
    // console.error becomes a breadcrumb (the call still goes to the console).
    let console = get(&w, "console");
    if let Ok(orig) = get(&console, "error").dyn_into::<js_sys::Function>() {
        let c2 = console.clone();
        let wrapped = Closure::<dyn FnMut(JsValue, JsValue) -> JsValue>::new(move |a: JsValue, b: JsValue| {
            let mut m = text_of(&a);
            if !b.is_undefined() {
                m.push(' ');
                m.push_str(&text_of(&b));
            }
            crate::with(|s| s.crumbs.add("console.error", &m));
            orig.call2(&c2, &a, &b).unwrap_or(JsValue::UNDEFINED)
        });
        let _ = js_sys::Reflect::set(&console, &"error".into(), wrapped.as_ref());
        wrapped.forget();
    }
}
