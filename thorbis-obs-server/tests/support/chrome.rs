//! Debian's headless Chromium from the command line: a page's DOM after its scripts ran
//! (`--dump-dom`), its console messages (`--enable-logging=stderr`), screenshots.

use std::time::Duration;

/// Runs headless Chromium on `url` with `extra` flags; returns (stdout, stderr).
pub async fn chromium(url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().expect("profile");
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        format!("--user-data-dir={}", profile.path().display()),
        "--window-size=1280,1000".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.into());
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("/usr/bin/chromium").args(&args).kill_on_drop(true).output(),
    )
    .await
    .expect("chromium finished in time")
    .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The text of the element with `id` in a dumped DOM, tags stripped (enough for assertions).
pub fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("id=\"w-{id}\"")).unwrap_or_else(|| panic!("no widget {id} in\n{dom}"));
    let end = dom[start..].find("</section>").map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// The text of `<output id="ID">` in a dumped DOM, up to its first tag (empty when absent).
pub fn output<'a>(dom: &'a str, id: &str) -> &'a str {
    dom.split(&format!("<output id=\"{id}\">")).nth(1).and_then(|s| s.split('<').next()).unwrap_or("")
}

/// `text` as rrweb's text masking records it: every character but whitespace a `*`.
pub fn masked(text: &str) -> String {
    text.chars().map(|c| if c.is_whitespace() { c } else { '*' }).collect()
}
