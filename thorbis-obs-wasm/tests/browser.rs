//! The wasm half in headless Chromium, through the same exports the JS half calls, run by
//! wasm-bindgen-test (`scripts/test.sh`: `cargo test -p thorbis-obs-wasm --target
//! wasm32-unknown-unknown` with wasm-bindgen-test-runner and Debian's chromedriver). The JS half
//! is tested end to end in `thorbis-obs-server/tests/browser_sdk.rs`.
#![cfg(target_arch = "wasm32")]

use thorbis_obs_wasm as obs;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// One test, because the measured state is page-wide: the steps run in order on one page.
#[wasm_bindgen_test]
fn vitals_budgets_noise_context_and_scrubbing() {
    // Ratings use Google's thresholds.
    assert_eq!(obs::rate_vital("LCP", 2500.0), 0);
    assert_eq!(obs::rate_vital("INP", 200.1), 1);
    assert_eq!(obs::rate_vital("CLS", 0.26), 2);
    assert_eq!(obs::rate_vital("nope", 1.0), 255);

    // CLS: session windows (1 s gap, 5 s cap), shifts after input ignored, the largest window.
    assert_eq!(obs::cls_add(100.0, 0.1, false), 0.1);
    assert!((obs::cls_add(600.0, 0.05, false) - 0.15).abs() < 1e-9);
    assert!((obs::cls_add(700.0, 0.5, true) - 0.15).abs() < 1e-9, "after input: ignored");
    assert!((obs::cls_add(3000.0, 0.01, false) - 0.15).abs() < 1e-9, "a new, smaller window");
    assert!((obs::cls_add(f64::NAN, 9.0, false) - 0.15).abs() < 1e-9, "garbage is ignored");

    // INP: the longest entry per interaction; none before the first interaction.
    assert_eq!(obs::inp_value(0.0), -1.0);
    obs::inp_add(5.0, 80.0);
    obs::inp_add(5.0, 160.0);
    obs::inp_add(6.0, 120.0);
    obs::inp_add(0.0, 900.0);
    assert_eq!(obs::inp_value(0.0), 160.0);
    // With 100 interactions by the browser's count, the second longest is INP (one skipped per 50).
    assert_eq!(obs::inp_value(100.0), 120.0);
    obs::vitals_reset();
    assert_eq!(obs::inp_value(0.0), -1.0);
    assert_eq!(obs::cls_add(10.0, 0.02, false), 0.02);

    // Budgets in KB: with CSS at 100, a 60 KB stylesheet passes and 110 KB in all does not.
    obs::set_budgets(f64::NAN, 100.0, f64::NAN, -1.0);
    assert_eq!(obs::resource("link", "/app.css?v=2", 60.0 * 1024.0), "stylesheet");
    assert_eq!(obs::resource("link", "/more.css", 50.0 * 1024.0), "stylesheet!", "110 KB of CSS is over 100");
    assert_eq!(obs::resource("script", "/a.js", 171.0 * 1024.0), "script!", "the default 170 KB");
    assert_eq!(obs::resource("fetch", "/api/orders", 1e9), "other");
    assert_eq!(obs::resource("img", "https://cdn.example/x", f64::NAN), "image");
    // A new page (an SPA navigation) starts the tally again; past 80% of 100 KB is a warning.
    obs::reset_budgets();
    assert_eq!(obs::resource("link", "/page.css", 79.0 * 1024.0), "stylesheet");
    assert_eq!(obs::resource("link", "/more.css", 2.0 * 1024.0), "stylesheet?", "81 KB of 100: the warning");
    assert_eq!(obs::resource("link", "/last.css", 20.0 * 1024.0), "stylesheet!");

    // The spec's noise filter.
    assert!(obs::is_noise("Script error.", None));
    assert!(obs::is_noise("ResizeObserver loop completed with undelivered notifications", None));
    assert!(obs::is_noise("boom", Some("at f (chrome-extension://abc/x.js:1:1)".into())));
    assert!(!obs::is_noise("Card declined", Some("at pay (https://app/x.js:1:1)".into())));

    // Business context from the path; URL scrubbing.
    assert_eq!(obs::business_context("/hs/work-orders/17"), "work-orders|home-services");
    assert_eq!(obs::business_context("/settings"), "unknown|unknown");
    assert_eq!(
        obs::scrub_url("https://a.example/u/jo@x.io?token=abc&q=1"),
        "https://a.example/u/[email]?token=[redacted]&q=1"
    );
    assert_eq!(obs::wire_version(), 1);
}
