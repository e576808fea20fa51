//! Minified browser frames to original ones, given parsed source maps: pure and synchronous,
//! so the service, the tests and the benchmark share it.
//!
//! getsentry's `sourcemap` crate parses the maps (regular and indexed ones) and finds the token
//! at a position. The rest is ours, because it is policy, not parsing: which map a frame's URL
//! names (`~/` plus its path, the way the upload names it), what counts as a position the map
//! covers (the token must be on the frame's own line: a frame past the map's end, or a map of
//! another file, stays minified instead of landing on a wrong line), the original function name
//! (the name the map records at the caller's call site, the way a minified stack names a callee;
//! the outermost frame keeps its minified name), the source path (`webpack://_N_E/./app/page.jsx`
//! is `app/page.jsx`) and the few lines of original source around the frame.

use sourcemap::SourceMap;
use thorbis_obs_core::domain::errors::{CONTEXT_LINES, StackFrame, SymbolicatedFrame, is_in_app};

/// A context line is cut to this many bytes.
const MAX_CONTEXT_LINE: usize = 240;

/// The name a frame's script goes by in the store: `~/` and its path, without scheme, host,
/// query or fragment (`https://app.example/_next/static/chunks/a.js?v=1` is
/// `~/_next/static/chunks/a.js`). None for what no map can cover (`<anonymous>`, native code,
/// extensions, data URLs).
pub fn map_key(file: &str) -> Option<String> {
    let file = file.split(['?', '#']).next().unwrap_or(file);
    if let Some(rest) = file.strip_prefix("~/") {
        return Some(format!("~/{}", rest.trim_start_matches('/')));
    }
    let (scheme, rest) = file.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let path = rest.find('/').map_or("", |i| &rest[i + 1..]);
    (!path.is_empty()).then(|| format!("~/{path}"))
}

/// An original source path as people read it: `webpack://_N_E/./app/page.jsx`,
/// `webpack:///./app/page.jsx` and Turbopack's `turbopack:///[project]/app/page.jsx` are
/// `app/page.jsx`; a query is dropped.
pub fn source_path(source: &str) -> String {
    let source = source.split('?').next().unwrap_or(source);
    let path = match source.split_once("://") {
        Some(("webpack", rest)) => {
            // webpack://<namespace>/<path>; an empty namespace is `webpack:///path`.
            rest.split_once('/').map_or(rest, |(_, p)| p)
        }
        Some((_, rest)) => rest,
        None => source,
    };
    let path = path.trim_start_matches("./").trim_start_matches('/');
    path.strip_prefix("[project]/").unwrap_or(path).to_string()
}

/// Where one frame's position falls in its map.
struct Found<'a> {
    source: String,
    line: u32,
    column: u32,
    name: Option<&'a str>,
    src_id: u32,
}

fn find<'a>(map: &'a SourceMap, frame: &StackFrame) -> Option<Found<'a>> {
    let (line, column) = (frame.line?.checked_sub(1)?, frame.column.unwrap_or(1).saturating_sub(1));
    let token = map.lookup_token(line, column)?;
    if token.get_dst_line() != line || !token.has_source() {
        return None;
    }
    Some(Found {
        source: source_path(token.get_source()?),
        line: token.get_src_line().saturating_add(1),
        column: token.get_src_col().saturating_add(1),
        name: token.get_name(),
        src_id: token.get_src_id(),
    })
}

fn cut(line: &str) -> String {
    thorbis_obs_core::domain::errors::truncate(line.trim_end_matches('\r'), MAX_CONTEXT_LINE).to_string()
}

/// Symbolicates `frames` (innermost first) with the map `maps` returns for each frame's
/// [`map_key`]; frames no map covers stay as they are.
pub fn symbolicate<'m>(frames: &[StackFrame], maps: impl Fn(&str) -> Option<&'m SourceMap>) -> Vec<SymbolicatedFrame> {
    let found: Vec<Option<(&SourceMap, Found<'_>)>> = frames
        .iter()
        .map(|f| {
            let map = maps(&map_key(f.file.as_deref()?)?)?;
            find(map, f).map(|x| (map, x))
        })
        .collect();
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let Some((map, at)) = &found[i] else {
                let in_app = f.file.as_deref().is_none_or(is_in_app);
                return SymbolicatedFrame { frame: f.clone(), in_app, ..Default::default() };
            };
            // The caller's call site names this frame's function.
            let function = found
                .get(i + 1)
                .and_then(|c| c.as_ref())
                .and_then(|(_, caller)| caller.name)
                .map(str::to_string)
                .or_else(|| f.function.clone());
            let mut out = SymbolicatedFrame {
                frame: StackFrame {
                    function,
                    file: Some(at.source.clone()),
                    line: Some(at.line),
                    column: Some(at.column),
                },
                mapped: true,
                in_app: is_in_app(&at.source),
                minified: Some(f.clone()),
                ..Default::default()
            };
            // The source's view indexes its lines once; each frame reads only its own few.
            if let Some(view) = map.get_source_view(at.src_id) {
                let idx = at.line - 1;
                if let Some(line) = view.get_line(idx) {
                    let first = idx.saturating_sub(CONTEXT_LINES as u32);
                    out.pre_context = (first..idx).filter_map(|i| view.get_line(i)).map(cut).collect();
                    out.context_line = Some(cut(line));
                    // A source ending in a newline has no line after it (the view shows an empty one).
                    let lines = view.line_count() - usize::from(view.source().ends_with('\n'));
                    let last = (idx as usize + CONTEXT_LINES).min(lines.saturating_sub(1)) as u32;
                    out.post_context = (idx + 1..=last).filter_map(|i| view.get_line(i)).map(cut).collect();
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of a one-line bundle `function a(){b()}function b(){throw new Error("x")}a();`
    /// made by the crate's own builder from `app/pay.js` (three functions on their own lines).
    fn map() -> SourceMap {
        let mut b = sourcemap::SourceMapBuilder::new(Some("pay.js"));
        let src = b.add_source("webpack://_N_E/./app/pay.js");
        b.set_source_contents(
            src,
            Some("// pay\nfunction checkout() {\n  charge();\n}\nfunction charge() {\n  throw new Error(\"x\");\n}\ncheckout();\n"),
        );
        // Column 11 (0-based): the call `b()` inside `a`, originally `charge()` at 3:3.
        let (charge, checkout) = (b.add_name("charge"), b.add_name("checkout"));
        b.add_raw(0, 11, 2, 2, Some(src), Some(charge), false);
        // Column 28: the throw inside `b`, originally 6:3.
        b.add_raw(0, 28, 5, 2, Some(src), None, false);
        // Column 48: the call `a()`, originally `checkout()` at 8:1.
        b.add_raw(0, 48, 7, 0, Some(src), Some(checkout), false);
        b.into_sourcemap()
    }

    fn frame(function: &str, line: u32, column: u32) -> StackFrame {
        StackFrame {
            function: (!function.is_empty()).then(|| function.to_string()),
            file: Some("https://app.example/_next/static/chunks/pay-4f1c.js?v=2".into()),
            line: Some(line),
            column: Some(column),
        }
    }

    #[test]
    fn keys_and_source_paths() {
        assert_eq!(map_key("https://app.example/_next/static/a.js?v=1#x").as_deref(), Some("~/_next/static/a.js"));
        assert_eq!(map_key("~/_next/static/a.js").as_deref(), Some("~/_next/static/a.js"));
        for none in
            ["<anonymous>", "[native code]", "chrome-extension://abc/x.js", "data:text/javascript,1", "https://x"]
        {
            assert_eq!(map_key(none), None, "{none}");
        }
        assert_eq!(source_path("webpack://_N_E/./app/page.jsx?abc"), "app/page.jsx");
        assert_eq!(source_path("webpack:///./src/x.js"), "src/x.js");
        assert_eq!(source_path("webpack://_N_E/../node_modules/next/dist/a.js"), "../node_modules/next/dist/a.js");
        assert_eq!(source_path("./app/a.js"), "app/a.js");
        assert_eq!(source_path("turbopack:///[project]/app/invoice-panel.jsx"), "app/invoice-panel.jsx");
        assert_eq!(
            source_path("turbopack:///[project]/node_modules/next/dist/client/index.js"),
            "node_modules/next/dist/client/index.js"
        );
    }

    #[test]
    fn frames_read_as_written_and_what_the_map_does_not_cover_stays() {
        let m = map();
        let maps = |k: &str| (k == "~/_next/static/chunks/pay-4f1c.js").then_some(&m);
        let frames = [frame("b", 1, 29), frame("a", 1, 12), frame("", 1, 49)];
        let out = symbolicate(&frames, maps);
        let shown: Vec<String> = out
            .iter()
            .map(|f| format!("{:?} {:?} {:?} {}", f.frame.function, f.frame.file, f.frame.line, f.in_app))
            .collect();
        assert_eq!(
            shown,
            [
                r#"Some("charge") Some("app/pay.js") Some(6) true"#,
                r#"Some("checkout") Some("app/pay.js") Some(3) true"#,
                r#"None Some("app/pay.js") Some(8) true"#,
            ]
        );
        assert_eq!(out[0].context_line.as_deref(), Some("  throw new Error(\"x\");"));
        assert_eq!(out[0].pre_context, ["function checkout() {", "  charge();", "}", "function charge() {"][1..]);
        assert_eq!(out[0].post_context, ["}", "checkout();"]);
        assert_eq!(out[0].minified.as_ref().and_then(|f| f.function.as_deref()), Some("b"));
        // Past the map's end (line 2 of a one-line bundle), another file, no position at all.
        let odd = [
            frame("b", 2, 5),
            StackFrame { file: Some("https://cdn.example/lib.js".into()), line: Some(1), ..Default::default() },
            StackFrame { function: Some("x".into()), ..Default::default() },
        ];
        let out = symbolicate(&odd, maps);
        assert!(out.iter().all(|f| !f.mapped), "{out:?}");
        assert_eq!(out[0].frame, odd[0]);
    }
}
