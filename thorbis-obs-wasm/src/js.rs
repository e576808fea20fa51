//! Small helpers over the page's own objects: property access, time, ids, listeners, timers.
//!
//! Every helper swallows JavaScript exceptions (a missing API, a frozen object) and returns a
//! neutral value: the SDK never throws into the host page.

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// A fresh plain object.
pub(crate) fn obj() -> Object {
    Object::new()
}

/// `o[k] = v`, ignoring failures.
pub(crate) fn set(o: &Object, k: &'static str, v: impl Into<JsValue>) {
    let _ = Reflect::set(o, &constant(k), &v.into());
}

thread_local! {
    /// JS strings of the SDK's constants (property names, types), by address: a string
    /// crossing into JS goes through TextDecoder, which costs about a microsecond, on every
    /// event otherwise. A linear scan of a few dozen entries is cheaper than hashing, and
    /// smaller than wasm-bindgen's interning.
    static CONSTANTS: std::cell::RefCell<Vec<(usize, JsValue)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A JS string for a constant, decoded once and cached.
pub(crate) fn constant(s: &'static str) -> JsValue {
    let key = s.as_ptr() as usize ^ (s.len() << 20);
    CONSTANTS.with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else { return JsValue::from_str(s) };
        if let Some((_, v)) = c.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let v = JsValue::from_str(s);
        c.push((key, v.clone()));
        v
    })
}

/// `o[k]`, or `undefined`.
pub(crate) fn get(o: &JsValue, k: &str) -> JsValue {
    if o.is_object() || o.is_function() {
        Reflect::get(o, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `o[k]` as a number, or `None`.
pub(crate) fn num(o: &JsValue, k: &'static str) -> Option<f64> {
    get(o, k).as_f64()
}

/// `o[k]` as a string, or `None`.
pub(crate) fn string(o: &JsValue, k: &'static str) -> Option<String> {
    get(o, k).as_string()
}

/// `o[k]` as a boolean, or `None`.
pub(crate) fn boolean(o: &JsValue, k: &'static str) -> Option<bool> {
    get(o, k).as_bool()
}

/// The window, if there is one (not during server-side rendering).
pub(crate) fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

thread_local! {
    /// `window.performance` and its `timeOrigin`, looked up once: they are on every event's
    /// path.
    static PERF: Option<(web_sys::Performance, f64)> = window().and_then(|w| w.performance()).map(|p| {
        let origin = p.time_origin();
        (p, origin)
    });
}

/// `performance.now()`.
pub(crate) fn perf_now() -> f64 {
    PERF.with(|p| p.as_ref().map(|(p, _)| p.now()).unwrap_or(0.0))
}

/// Milliseconds since the epoch as an integer, from the high-resolution clock
/// (`Math.round(performance.timeOrigin + t)`), as the wire schema wants.
pub(crate) fn epoch_ms(t: f64) -> f64 {
    PERF.with(|p| (p.as_ref().map(|(_, o)| *o).unwrap_or(0.0) + t).round())
}

/// Epoch milliseconds now.
pub(crate) fn now_ms() -> f64 {
    epoch_ms(perf_now())
}

/// A random id of `[A-Za-z0-9_-]` (from `crypto.randomUUID`, or Math.random).
pub(crate) fn random_id() -> String {
    if let Some(c) = window().and_then(|w| w.crypto().ok()) {
        return c.random_uuid();
    }
    let mut s = String::from("r");
    let mut x = (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64;
    while x > 0 {
        let d = (x % 36) as u8;
        s.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
        x /= 36;
    }
    s
}

/// Adds a listener that lives as long as the page; `capture` and `passive` as given.
pub(crate) fn listen(target: &web_sys::EventTarget, event: &str, capture: bool, f: impl FnMut(JsValue) + 'static) {
    let cb = Closure::<dyn FnMut(JsValue)>::new(f);
    let opts = web_sys::AddEventListenerOptions::new();
    opts.set_capture(capture);
    opts.set_passive(true);
    let _ = target.add_event_listener_with_callback_and_add_event_listener_options(
        event,
        cb.as_ref().unchecked_ref(),
        &opts,
    );
    cb.forget();
}

/// Runs `f` after `ms`.
pub(crate) fn timeout(ms: i32, f: impl FnOnce() + 'static) {
    if let Some(w) = window() {
        let cb = Closure::once_into_js(f);
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), ms);
    }
}

/// Calls a JS function with one argument, catching what it throws.
pub(crate) fn call1(f: &Function, arg: &JsValue) -> Result<JsValue, JsValue> {
    f.call1(&JsValue::NULL, arg)
}

/// `JSON.stringify(v)`, or `None` when it throws (cycles, BigInt).
pub(crate) fn stringify(v: &JsValue) -> Option<js_sys::JsString> {
    js_sys::JSON::stringify(v).ok()
}

/// True while the document is hidden.
pub(crate) fn hidden() -> bool {
    window()
        .and_then(|w| w.document())
        .map(|d| d.visibility_state() == web_sys::VisibilityState::Hidden)
        .unwrap_or(false)
}
