//! Errors reported from browsers and services: stack parsing, the spec's noise filter, and
//! fingerprints that group the same error together.
//!
//! ```
//! use thorbis_obs_core::domain::errors::{error_fingerprint, parse_stack};
//!
//! let a = parse_stack("TypeError: x\n    at loadUser (https://app.example/app.js?v=1:10:5)");
//! let b = parse_stack("TypeError: x\n    at loadUser (https://app.example/app.js?v=2:11:7)");
//! assert_eq!(
//!     error_fingerprint("TypeError", "User 123 not found", &a),
//!     error_fingerprint("TypeError", "User 456 not found", &b),
//! );
//! ```

use crate::domain::hash::fingerprint_hex;
use serde::{Deserialize, Serialize};

/// Frames beyond this are dropped: deep recursion would otherwise make parsing cost grow with
/// the stack while adding nothing a reader looks at.
pub const MAX_FRAMES: usize = 50;

/// Frames that go into an error fingerprint.
pub const FINGERPRINT_FRAMES: usize = 5;

/// Only this many bytes of a message are normalised and fingerprinted, so a message carrying a
/// whole response body stays cheap. Messages that differ only further on group together.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// One parsed stack frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StackFrame {
    /// The function, when the engine names it.
    pub function: Option<String>,
    /// The script URL or path.
    pub file: Option<String>,
    /// 1-based line.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
}

/// A frame as the developer wrote it: the original position a source map gave for a minified
/// frame, with a few lines of the original source around it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolicatedFrame {
    /// The original function, file (`app/page.jsx`), line and column; the minified ones when no
    /// source map covered the frame.
    pub frame: StackFrame,
    /// True when a source map gave the position.
    pub mapped: bool,
    /// The application's own code: not `node_modules`, not the bundler's runtime, not a browser
    /// extension. Only these go into the fingerprint.
    pub in_app: bool,
    /// Up to [`CONTEXT_LINES`] original lines before the frame's line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_context: Vec<String>,
    /// The frame's original line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    /// Up to [`CONTEXT_LINES`] original lines after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_context: Vec<String>,
    /// Where the browser ran it, when a map moved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minified: Option<StackFrame>,
}

/// Original lines kept on each side of a symbolicated frame's line.
pub const CONTEXT_LINES: usize = 3;

/// Whether an original source path is the application's: not a dependency, not the bundler's
/// own runtime, not a browser extension.
pub fn is_in_app(path: &str) -> bool {
    !(path.contains("node_modules/")
        || path.starts_with("webpack/runtime")
        || path.contains("(webpack)")
        || path.starts_with("chrome-extension:")
        || path.starts_with("moz-extension:")
        || path.starts_with("safari-extension:")
        || path == "[native code]"
        || path == "<anonymous>")
}

/// The fingerprint of an error whose frames were symbolicated: type, message and the first
/// [`FINGERPRINT_FRAMES`] in-app frames (all of them when none is in-app), by original
/// function and file, so two builds of the same code (new chunk hashes, new minified names)
/// give the same group.
pub fn symbolicated_fingerprint(message: &str, frames: &[SymbolicatedFrame]) -> String {
    let (kind, text) = split_error_kind(message);
    let in_app: Vec<StackFrame> = frames.iter().filter(|f| f.in_app).map(|f| f.frame.clone()).collect();
    let chosen = if in_app.is_empty() { frames.iter().map(|f| f.frame.clone()).collect() } else { in_app };
    error_fingerprint(kind, text, &chosen)
}

/// "TypeError: x is undefined" as (`TypeError`, `x is undefined`): the type is the part before
/// ": " when it is one word; else (`Error`, the message).
pub fn split_error_kind(message: &str) -> (&str, &str) {
    match message.split_once(": ") {
        Some((k, rest)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => (k, rest),
        _ => ("Error", message),
    }
}

/// Parses a JavaScript `error.stack`, innermost frame first, in the V8 form
/// (`    at fn (file:line:col)`, `    at file:line:col`) or the Firefox/Safari form
/// (`fn@file:line:col`, `@file:line:col`, `fn@[native code]`). Lines that are not frames (the
/// V8 message line, blank lines) are skipped, and at most [`MAX_FRAMES`] frames are kept.
///
/// Engine decorations that vary between runs of the same code are dropped from function names:
/// V8's `async ` prefix and Firefox's `promise callback*`-style async markers.
pub fn parse_stack(stack: &str) -> Vec<StackFrame> {
    stack.lines().filter_map(parse_line).take(MAX_FRAMES).collect()
}

fn parse_line(line: &str) -> Option<StackFrame> {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("at ") {
        return Some(parse_v8(rest.trim()));
    }
    if let Some((function, location)) = line.split_once('@') {
        // The V8 message line ("Error: mail a@b.example failed") is not a frame.
        if function.contains(": ") {
            return None;
        }
        let function = function.rsplit('*').next().unwrap_or(function);
        if location == "[native code]" {
            return Some(frame(function, location, None, None));
        }
        let (file, line_no, column) = split_location(location);
        return line_no.map(|_| frame(function, file, line_no, column));
    }
    // Older Safari prints global code as a bare location.
    if line.contains("://") && !line.contains(' ') {
        let (file, line_no, column) = split_location(line);
        return line_no.map(|_| frame("", file, line_no, column));
    }
    None
}

/// Parses a server's stack, innermost frame first, keeping only the application's frames: a
/// Python traceback (`  File "app/pay.py", line 12, in pay`; library frames under
/// `site-packages` or the interpreter's `lib/python` dropped), a Rust backtrace (`  3: app::pay`
/// with its `at src/pay.rs:12:5` line; the `::h0123...` hash and the frames of `std`, `core`,
/// `alloc`, `tokio` and the panic machinery dropped), else a Node.js stack as [`parse_stack`]
/// reads it. At most [`MAX_FRAMES`] frames.
pub fn parse_server_stack(stack: &str) -> Vec<StackFrame> {
    let lines = || stack.lines().map(str::trim);
    if lines().any(|l| l.starts_with("File \"")) {
        // Python writes the outermost call first.
        let mut frames: Vec<StackFrame> = lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("File \"")?;
                let (file, rest) = rest.split_once("\", line ")?;
                let (line, function) = rest.split_once(", in ").unwrap_or((rest, ""));
                let library = file.contains("site-packages") || file.contains("/lib/python");
                (!library).then(|| frame(function, file, line.trim().parse().ok(), None))
            })
            .collect();
        frames.reverse();
        frames.truncate(MAX_FRAMES);
        return frames;
    }
    fn numbered(l: &str) -> Option<(&str, &str)> {
        l.split_once(": ").filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
    if lines().any(|l| numbered(l).is_some()) {
        let mut frames: Vec<(bool, StackFrame)> = Vec::new();
        for l in lines() {
            if let Some((_, name)) = numbered(l) {
                let name = match name.rsplit_once("::h") {
                    Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => head,
                    _ => name,
                };
                let runtime = ["std::", "core::", "alloc::", "tokio::", "__rust", "rust_begin_unwind", "<unknown>"]
                    .iter()
                    .any(|p| name.starts_with(p));
                frames.push((!runtime, frame(name, "", None, None)));
            } else if let (Some(location), Some((_, last))) = (l.strip_prefix("at "), frames.last_mut()) {
                let (file, line, column) = split_location(location);
                last.file = Some(file.to_string()).filter(|f| !f.is_empty());
                last.line = line;
                last.column = column;
            }
        }
        return frames.into_iter().filter(|(app, _)| *app).map(|(_, f)| f).take(MAX_FRAMES).collect();
    }
    parse_stack(stack)
}

fn parse_v8(rest: &str) -> StackFrame {
    let Some((function, location)) = rest.strip_suffix(')').and_then(|r| r.split_once(" (")) else {
        let (file, line, column) = split_location(rest);
        return frame("", file, line, column);
    };
    let function = function.strip_prefix("async ").unwrap_or(function);
    // "eval at f (https://x/a.js:1:2), <anonymous>:3:4": the evaluated code's own position.
    let location = match location.strip_prefix("eval at ") {
        Some(eval) => eval.rsplit_once(", ").map_or(location, |(_, inner)| inner),
        None => location,
    };
    let (file, line, column) = split_location(location);
    frame(function, file, line, column)
}

fn frame(function: &str, file: &str, line: Option<u32>, column: Option<u32>) -> StackFrame {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    StackFrame { function: non_empty(function.trim()), file: non_empty(file.trim()), line, column }
}

/// Splits `file:line:col`, `file:line` or `file`.
fn split_location(location: &str) -> (&str, Option<u32>, Option<u32>) {
    match split_number(location) {
        (rest, Some(last)) => match split_number(rest) {
            (file, Some(line)) => (file, Some(line), Some(last)),
            (file, None) => (file, Some(last), None),
        },
        (file, None) => (file, None, None),
    }
}

fn split_number(s: &str) -> (&str, Option<u32>) {
    match s.rsplit_once(':') {
        Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => match tail.parse() {
            Ok(n) => (head, Some(n)),
            Err(_) => (s, None),
        },
        _ => (s, None),
    }
}

/// Why the spec's filter drops an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReason {
    /// A fetch that failed because the device is offline.
    OfflineNetwork,
    /// Thrown by a browser extension's code, not ours.
    BrowserExtension,
    /// The harmless ResizeObserver loop notice browsers report as an error.
    ResizeObserverLoop,
    /// A cross-origin script error the browser has stripped of every detail.
    CrossOriginScriptError,
}

impl NoiseReason {
    /// The reason in snake case, as serialised.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoiseReason::OfflineNetwork => "offline_network",
            NoiseReason::BrowserExtension => "browser_extension",
            NoiseReason::ResizeObserverLoop => "resize_observer_loop",
            NoiseReason::CrossOriginScriptError => "cross_origin_script_error",
        }
    }
}

/// The spec's noise filter, plus the two variants it misses.
///
/// - the message contains both "Network request failed" and "offline";
/// - the stack contains "extension://" (chrome-, moz- and safari-web-extension);
/// - the message contains "ResizeObserver loop limit exceeded" (Chrome's old wording) or
///   "ResizeObserver loop completed with undelivered notifications" (today's wording, which the
///   spec's filter misses);
/// - the trimmed message is "Script error." or "Script error": a cross-origin error with no
///   detail to act on.
///
/// Matching is case-sensitive, as the spec's `includes` is.
pub fn is_noise(message: &str, stack: Option<&str>) -> Option<NoiseReason> {
    if message.contains("Network request failed") && message.contains("offline") {
        return Some(NoiseReason::OfflineNetwork);
    }
    if stack.is_some_and(|s| s.contains("extension://")) {
        return Some(NoiseReason::BrowserExtension);
    }
    if message.contains("ResizeObserver loop limit exceeded")
        || message.contains("ResizeObserver loop completed with undelivered notifications")
    {
        return Some(NoiseReason::ResizeObserverLoop);
    }
    if matches!(message.trim(), "Script error." | "Script error") {
        return Some(NoiseReason::CrossOriginScriptError);
    }
    None
}

/// A configurable noise filter: the built-in rules of [`is_noise`] plus the host app's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NoiseFilter {
    /// Drop errors whose message contains any of these (case-sensitive).
    pub ignore_messages: Vec<String>,
    /// Drop errors whose stack contains any of these (case-sensitive), e.g. a third-party
    /// script's URL.
    pub ignore_stacks: Vec<String>,
    /// Apply [`is_noise`] first.
    pub builtin: bool,
}

impl Default for NoiseFilter {
    fn default() -> Self {
        NoiseFilter { ignore_messages: Vec::new(), ignore_stacks: Vec::new(), builtin: true }
    }
}

impl NoiseFilter {
    /// Why the error should be dropped, or `None` to keep it: a built-in reason's
    /// [`NoiseReason::as_str`], or `ignore_messages: <pattern>` / `ignore_stacks: <pattern>`.
    ///
    /// Empty patterns are skipped: an empty string is contained in every message, so a stray
    /// `""` in a config would silently drop every error.
    pub fn check(&self, message: &str, stack: Option<&str>) -> Option<String> {
        if let Some(reason) = self.builtin.then(|| is_noise(message, stack)).flatten() {
            return Some(reason.as_str().to_string());
        }
        let hit = |patterns: &[String], text: &str| -> Option<String> {
            patterns.iter().find(|p| !p.is_empty() && text.contains(p.as_str())).cloned()
        };
        if let Some(p) = hit(&self.ignore_messages, message) {
            return Some(format!("ignore_messages: {p}"));
        }
        if let Some(p) = stack.and_then(|s| hit(&self.ignore_stacks, s)) {
            return Some(format!("ignore_stacks: {p}"));
        }
        None
    }
}

/// Replaces the parts of a message that differ between occurrences of the same error, so that
/// "User 123 not found" and "User 456 not found" group together:
///
/// - a UUID (`8-4-4-4-12` hex digits) becomes `<uuid>`;
/// - a word of digits becomes `<n>`;
/// - a `0x` hex literal, or a word of 8 or more hex digits with at least one decimal digit
///   (object ids, hashes), becomes `<hex>`;
/// - any other run of digits inside a word becomes `<n>` (`item42` is `item<n>`).
///
/// Words are runs of ASCII letters and digits. The message is trimmed and only its first
/// [`MAX_MESSAGE_BYTES`] bytes are kept.
pub fn normalize_message(message: &str) -> String {
    let s = truncate(message.trim(), MAX_MESSAGE_BYTES);
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        // Word boundaries fall on ASCII bytes, so every slice below is on a char boundary.
        out.push_str(&s[copied..i]);
        if is_uuid_at(b, i) {
            out.push_str("<uuid>");
            i += UUID_LEN;
        } else {
            let end = i + b[i..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            push_word(&mut out, &s[i..end]);
            i = end;
        }
        copied = i;
    }
    out.push_str(&s[copied..]);
    out
}

const UUID_LEN: usize = 36;

fn is_uuid_at(b: &[u8], i: usize) -> bool {
    let Some(candidate) = b.get(i..i + UUID_LEN) else {
        return false;
    };
    let shape_ok = candidate
        .iter()
        .enumerate()
        .all(|(k, c)| if matches!(k, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
    shape_ok && !b.get(i + UUID_LEN).is_some_and(u8::is_ascii_alphanumeric)
}

fn push_word(out: &mut String, word: &str) {
    let bytes = word.as_bytes();
    if bytes.iter().all(u8::is_ascii_digit) {
        out.push_str("<n>");
        return;
    }
    let hex_literal = bytes.len() > 2
        && (word.starts_with("0x") || word.starts_with("0X"))
        && bytes[2..].iter().all(u8::is_ascii_hexdigit);
    let hex_id = bytes.len() >= 8 && bytes.iter().all(u8::is_ascii_hexdigit) && bytes.iter().any(u8::is_ascii_digit);
    if hex_literal || hex_id {
        out.push_str("<hex>");
        return;
    }
    let mut in_digits = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push_str("<n>");
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
}

/// The first `max` bytes of `s`, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Groups errors: the error kind (e.g. `TypeError`), the [`normalize_message`] form of the
/// message, and the function and file of the top [`FINGERPRINT_FRAMES`] frames.
///
/// Line and column numbers and the file's query string and fragment are left out, so the same
/// error keeps its group when unrelated code shifts it or a cache-busting `?v=` changes.
/// Returns 16 hex digits.
pub fn error_fingerprint(kind: &str, message: &str, frames: &[StackFrame]) -> String {
    let message = normalize_message(message);
    let mut parts: Vec<&str> = Vec::with_capacity(2 + 2 * FINGERPRINT_FRAMES);
    parts.push(kind.trim());
    parts.push(&message);
    for f in frames.iter().take(FINGERPRINT_FRAMES) {
        parts.push(f.function.as_deref().unwrap_or(""));
        parts.push(f.file.as_deref().map_or("", without_query));
    }
    fingerprint_hex(parts)
}

fn without_query(file: &str) -> &str {
    file.find(['?', '#']).map_or(file, |i| &file[..i])
}

/// The spec's business-error fingerprint: exactly `[process, step, code]`, unnormalised, so
/// every failure of one step with one code is one issue. Returns 16 hex digits.
pub fn business_fingerprint(process: &str, step: &str, code: &str) -> String {
    fingerprint_hex([process, step, code])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_stacks_keep_the_application_s_frames() {
        let py = "Traceback (most recent call last):\n  File \"/app/api.py\", line 40, in handle\n    pay(x)\n  File \"/usr/lib/python3.11/site-packages/lib.py\", line 9, in call\n  File \"/app/pay.py\", line 12, in pay\n    raise ValueError(\"card declined\")\nValueError: card declined\n";
        let f = parse_server_stack(py);
        assert_eq!(f.iter().map(|f| f.function.as_deref().unwrap_or("")).collect::<Vec<_>>(), ["pay", "handle"]);
        assert_eq!((f[0].file.as_deref(), f[0].line), (Some("/app/pay.py"), Some(12)));
        let rust = "   0: std::backtrace::Backtrace::create\n             at /rustc/x/library/std/src/backtrace.rs:331:13\n   1: shop::pay::charge::h0123456789abcdef\n             at ./src/pay.rs:42:9\n   2: shop::main\n             at ./src/main.rs:7:5\n   3: core::ops::function::FnOnce::call_once\n";
        let f = parse_server_stack(rust);
        assert_eq!(
            f.iter().map(|f| f.function.as_deref().unwrap_or("")).collect::<Vec<_>>(),
            ["shop::pay::charge", "shop::main"]
        );
        assert_eq!((f[0].file.as_deref(), f[0].line, f[0].column), (Some("./src/pay.rs"), Some(42), Some(9)));
        // The same error at another build (hash and line moved) groups together.
        let moved = rust.replace("h0123456789abcdef", "hfedcba9876543210").replace("pay.rs:42:9", "pay.rs:44:9");
        assert_eq!(
            error_fingerprint("panic", "declined", &f),
            error_fingerprint("panic", "declined", &parse_server_stack(&moved))
        );
        // Node.js stacks read as the browser's.
        assert_eq!(parse_server_stack("Error: x\n    at pay (/app/pay.js:3:9)")[0].function.as_deref(), Some("pay"));
    }

    fn f(function: Option<&str>, file: &str, line: u32, column: u32) -> StackFrame {
        StackFrame {
            function: function.map(str::to_string),
            file: Some(file.to_string()),
            line: Some(line),
            column: Some(column),
        }
    }

    #[test]
    fn parses_v8_stacks() {
        let stack = "TypeError: Cannot read properties of undefined (reading 'id')\n    \
            at loadUser (https://app.example/_next/static/chunks/app.js:10:5)\n    \
            at async Promise.all (index 0)\n    \
            at https://app.example/main.js:3:14\n    \
            at new Widget (webpack-internal:///./src/widget.tsx:42:7)\n    \
            at eval (eval at run (https://app.example/a.js:1:2), <anonymous>:3:4)\n";
        let frames = parse_stack(stack);
        assert_eq!(frames.len(), 5, "{frames:#?}");
        assert_eq!(frames[0], f(Some("loadUser"), "https://app.example/_next/static/chunks/app.js", 10, 5));
        assert_eq!(frames[1].function.as_deref(), Some("Promise.all"));
        assert_eq!(frames[1].line, None);
        assert_eq!(frames[2], f(None, "https://app.example/main.js", 3, 14));
        assert_eq!(frames[3], f(Some("new Widget"), "webpack-internal:///./src/widget.tsx", 42, 7));
        assert_eq!(frames[4], f(Some("eval"), "<anonymous>", 3, 4));
    }

    #[test]
    fn parses_firefox_and_safari_stacks() {
        let stack = "loadUser@https://app.example/app.js:10:5\n\
            promise callback*run@https://app.example/app.js:20:1\n\
            @https://app.example/app.js:1:1\n\
            forEach@[native code]\n\
            global code@https://app.example/app.js:30:9\n\
            \n\
            Error: mail a@b.example failed\n";
        let frames = parse_stack(stack);
        assert_eq!(frames.len(), 5, "{frames:#?}");
        assert_eq!(frames[0], f(Some("loadUser"), "https://app.example/app.js", 10, 5));
        assert_eq!(frames[1].function.as_deref(), Some("run"));
        assert_eq!(frames[2], f(None, "https://app.example/app.js", 1, 1));
        assert_eq!(frames[3].file.as_deref(), Some("[native code]"));
        assert_eq!(frames[3].line, None);
        assert_eq!(frames[4], f(Some("global code"), "https://app.example/app.js", 30, 9));
    }

    #[test]
    fn caps_frames_and_survives_junk() {
        let stack = "    at f (a.js:1:1)\n".repeat(80);
        assert_eq!(parse_stack(&stack).len(), MAX_FRAMES);
        assert!(parse_stack("").is_empty());
        assert!(parse_stack("just a message\nno frames here").is_empty());
        // A line number too large for u32 is not a line number.
        let frames = parse_stack("f@a.js:99999999999:1");
        assert_eq!(frames[0].file.as_deref(), Some("a.js:99999999999"));
        assert_eq!((frames[0].line, frames[0].column), (Some(1), None));
    }

    #[test]
    fn builtin_noise_rules() {
        let n = |m: &str, s: Option<&str>| is_noise(m, s);
        assert_eq!(n("Network request failed: device offline", None), Some(NoiseReason::OfflineNetwork));
        assert_eq!(n("Network request failed", None), None, "both words are required");
        assert_eq!(
            n("boom", Some("at x (chrome-extension://abc/content.js:1:1)")),
            Some(NoiseReason::BrowserExtension)
        );
        assert_eq!(n("boom", Some("x@moz-extension://abc/c.js:1:1")), Some(NoiseReason::BrowserExtension));
        assert_eq!(n("ResizeObserver loop limit exceeded", None), Some(NoiseReason::ResizeObserverLoop));
        assert_eq!(
            n("ResizeObserver loop completed with undelivered notifications.", None),
            Some(NoiseReason::ResizeObserverLoop)
        );
        assert_eq!(n("  Script error.  ", None), Some(NoiseReason::CrossOriginScriptError));
        assert_eq!(n("Script error", None), Some(NoiseReason::CrossOriginScriptError));
        assert_eq!(n("Script error in checkout", None), None);
        assert_eq!(n("boom", Some("at x (https://app.example/a.js:1:1)")), None);
    }

    #[test]
    fn configurable_filter() {
        let filter = NoiseFilter {
            ignore_messages: vec![String::new(), "Hydration failed".to_string()],
            ignore_stacks: vec!["googletagmanager.com".to_string()],
            builtin: true,
        };
        assert_eq!(filter.check("Script error.", None).as_deref(), Some("cross_origin_script_error"));
        assert_eq!(
            filter.check("Hydration failed because...", None).as_deref(),
            Some("ignore_messages: Hydration failed")
        );
        assert_eq!(
            filter.check("x", Some("at y (https://www.googletagmanager.com/gtm.js:1:1)")).as_deref(),
            Some("ignore_stacks: googletagmanager.com")
        );
        assert_eq!(filter.check("a real bug", None), None, "the empty pattern must not match");
        let no_builtin = NoiseFilter { builtin: false, ..NoiseFilter::default() };
        assert_eq!(no_builtin.check("Script error.", None), None);
        assert!(NoiseFilter::default().builtin);
    }

    #[test]
    fn normalises_variable_parts() {
        assert_eq!(normalize_message("User 123 not found"), "User <n> not found");
        assert_eq!(normalize_message(" User 456 not found "), "User <n> not found");
        assert_eq!(normalize_message("order 3F2504E0-4F89-11D3-9A0C-0305E82C3301 failed"), "order <uuid> failed");
        assert_eq!(normalize_message("ptr 0xDEADbeef, id 507f1f77bcf86cd799439011"), "ptr <hex>, id <hex>");
        assert_eq!(normalize_message("item42 took 2500ms"), "item<n> took <n>ms");
        assert_eq!(normalize_message("deadbeef stays a word"), "deadbeef stays a word");
        assert_eq!(normalize_message("café 12 €"), "café <n> €");
        assert_eq!(normalize_message(""), "");
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        assert!(normalize_message(&long).len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn fingerprints_group_what_should_group() {
        let frames_a = [f(Some("load"), "https://a.example/app.js?v=1", 10, 5), f(Some("main"), "b.js", 1, 1)];
        let frames_b = [f(Some("load"), "https://a.example/app.js?v=2#x", 99, 1), f(Some("main"), "b.js", 7, 7)];
        let fa = error_fingerprint("TypeError", "User 123 not found", &frames_a);
        assert_eq!(fa.len(), 16);
        assert_eq!(fa, error_fingerprint("TypeError", "User 456 not found", &frames_b));
        assert_ne!(fa, error_fingerprint("RangeError", "User 456 not found", &frames_b));
        assert_ne!(fa, error_fingerprint("TypeError", "Order 456 not found", &frames_b));
        let other_fn = [f(Some("save"), "https://a.example/app.js", 10, 5), f(Some("main"), "b.js", 1, 1)];
        assert_ne!(fa, error_fingerprint("TypeError", "User 1 not found", &other_fn));
        // Only the top five frames count.
        let mut deep: Vec<StackFrame> = (0..5).map(|i| f(Some("g"), "c.js", i, 1)).collect();
        let base = error_fingerprint("E", "m", &deep);
        deep.push(f(Some("h"), "d.js", 1, 1));
        assert_eq!(base, error_fingerprint("E", "m", &deep));
    }

    #[test]
    fn business_fingerprint_is_exactly_the_three_parts() {
        let fp = business_fingerprint("invoicing", "send", "E42");
        assert_eq!(fp, fingerprint_hex(["invoicing", "send", "E42"]));
        assert_ne!(fp, business_fingerprint("invoicing", "send", "E43"));
        assert_ne!(business_fingerprint("ab", "c", "d"), business_fingerprint("a", "bc", "d"));
    }
}
