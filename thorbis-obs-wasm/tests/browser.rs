//! Units that need a browser, run in headless Chromium by wasm-bindgen-test
//! (`scripts/test.sh`: `cargo test -p thorbis-obs-wasm --target wasm32-unknown-unknown` with
//! wasm-bindgen-test-runner and Debian's chromedriver).
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Object, Reflect};
use thorbis_obs_wasm as obs;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &k.into()).unwrap_or(JsValue::UNDEFINED)
}

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o.into()
}

/// One test, because the SDK is a page-wide singleton: the steps run in order on one page.
#[wasm_bindgen_test]
fn consent_queue_before_send_noise_and_session() {
    // Nothing is sent before consent; events wait in the queue.
    let drop_secret: Function = Function::new_with_args("e", "return e.name === 'secret_event' ? null : e;");
    obs::init(options(&[
        ("consent", "pending".into()),
        ("endpoint", "/never-called".into()),
        ("beforeSend", drop_secret.into()),
        ("trackResources", false.into()),
    ]));
    let d = obs::diagnostics();
    let sid = get(&d, "sessionId").as_string().expect("a session id");
    // TTFB is measured at init: it waits in the queue with the rest.
    let q0 = get(&d, "queued").as_f64().unwrap_or(-1.0);
    assert!(q0 >= 0.0);
    let queued = || get(&obs::diagnostics(), "queued").as_f64().unwrap_or(-1.0) - q0;
    obs::track("quote_sent".into(), options(&[("amount", 450.into()), ("bad key", 1.into())]));
    assert_eq!(queued(), 1.0);

    // beforeSend drops what it returns null for.
    let dropped = get(&obs::diagnostics(), "dropped").as_f64().unwrap_or(0.0);
    obs::track("secret_event".into(), JsValue::UNDEFINED);
    assert_eq!(queued(), 1.0);
    assert_eq!(get(&obs::diagnostics(), "dropped").as_f64(), Some(dropped + 1.0));

    // The spec's noise filter: "Script error." and ResizeObserver loops are not errors.
    obs::capture_exception(JsValue::from_str("Script error."), JsValue::UNDEFINED);
    obs::capture_exception(
        js_sys::Error::new("ResizeObserver loop completed with undelivered notifications").into(),
        JsValue::UNDEFINED,
    );
    assert_eq!(queued(), 1.0);
    // A real one is kept, and its repeat within a minute is counted, not queued again.
    let e: JsValue = js_sys::Error::new("Card declined").into();
    obs::capture_exception(e.clone(), JsValue::UNDEFINED);
    obs::capture_exception(e, JsValue::UNDEFINED);
    assert_eq!(queued(), 2.0);

    // Withdrawing consent drops what was queued.
    obs::set_consent(false);
    assert_eq!(get(&obs::diagnostics(), "queued").as_f64(), Some(0.0));
    assert_eq!(queued(), -q0);

    // The session is kept in localStorage: id|startedAt|lastActivity|sampled.
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item("_thorbis_obs_s").ok().flatten())
        .expect("a stored session");
    assert!(stored.starts_with(&format!("{sid}|")), "{stored}");
    assert!(stored.ends_with("|1"), "sampled at 100%: {stored}");

    // Ratings use Google's thresholds.
    assert_eq!(obs::rate_vital("LCP", 2500.0), 0);
    assert_eq!(obs::rate_vital("INP", 200.1), 1);
    assert_eq!(obs::rate_vital("CLS", 0.26), 2);
    assert_eq!(obs::rate_vital("nope", 1.0), 255);
}
