//! The browser SDK's build and the pages the browser tests serve: shared by the SDK tests and
//! the end-to-end RUM test.

use super::web::Reply;

/// The SDK's plain-browser build (`bash scripts/build-sdk.sh`; scripts/test.sh exports it).
pub fn sdk_dir() -> std::path::PathBuf {
    let dir = std::env::var("THORBIS_SDK_WEB_DIR").unwrap_or_else(|_| {
        panic!("THORBIS_SDK_WEB_DIR is not set: run `bash scripts/build-sdk.sh` (scripts/test.sh does) and point it at target/sdk/web")
    });
    let dir = std::path::PathBuf::from(dir);
    assert!(dir.join("pkg/thorbis_obs_wasm_bg.wasm").exists(), "no SDK build in {}", dir.display());
    dir
}

/// Google's web-vitals (6.2.3), the reference our values are compared with.
pub fn web_vitals() -> Vec<u8> {
    let path = std::env::var("THORBIS_WEB_VITALS_JS").unwrap_or_else(|_| {
        panic!("THORBIS_WEB_VITALS_JS is not set: run `bash scripts/build-sdk.sh` (it installs web-vitals 6.2.3 under target/tools)")
    });
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A file of the SDK under `/sdk/`, or `None` for other paths.
pub fn sdk_file(dir: &std::path::Path, path: &str) -> Option<Reply> {
    let rel = path.strip_prefix("/sdk/")?;
    let ct = if rel.ends_with(".wasm") { "application/wasm" } else { "text/javascript" };
    Some(match std::fs::read(dir.join(rel)) {
        Ok(b) => Reply::bytes(ct, b),
        Err(_) => Reply::new(404, "no such file"),
    })
}

/// A 900x420 SVG of 300 circles: Chrome leaves low-entropy images (under 0.05 bits per
/// pixel, a plain rectangle say) out of LCP, so the hero carries about 12 KB of detail.
pub fn hero() -> Vec<u8> {
    let mut svg = String::from(r#"<svg xmlns="http://www.w3.org/2000/svg" width="900" height="420">"#);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        svg.push_str(&format!(
            r##"<circle cx="{}" cy="{}" r="{}" fill="#{:06x}"/>"##,
            x % 900,
            (x >> 10) % 420,
            5 + (x >> 20) % 40,
            (x >> 30) & 0xff_ffff
        ));
    }
    svg.push_str("</svg>");
    svg.into_bytes()
}
