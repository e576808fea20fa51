//! `thorbis-obs sourcemaps upload --release R --url-prefix "~/_next/static" DIR`: every
//! `*.js.map` under DIR goes to a running agent (`POST /api/v1/sourcemaps`, the API token), named
//! by the script it maps: `DIR/chunks/app/page-1a2b.js.map` with that prefix is
//! `~/_next/static/chunks/app/page-1a2b.js`, the path browsers load it from.

use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `thorbis-obs sourcemaps ...`
#[derive(Debug, Args)]
pub struct SourcemapsArgs {
    /// The agent's admin address (else THORBIS_OBS_URL, else http://127.0.0.1:9464).
    #[arg(long, global = true)]
    url: Option<String>,
    /// The API token (else THORBIS_OBS_TOKEN).
    #[arg(long, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: SourcemapsCommand,
}

/// What to do with source maps.
#[derive(Debug, Subcommand)]
pub(super) enum SourcemapsCommand {
    /// Upload every `*.js.map` (and `*.mjs.map`) under DIR for a release.
    Upload {
        /// The release the maps belong to (the SDK's `version`).
        #[arg(long)]
        release: String,
        /// What DIR stands for in the scripts' URLs, e.g. `~/_next/static` for `.next/static`.
        #[arg(long, default_value = "~")]
        url_prefix: String,
        /// The directory to read.
        dir: PathBuf,
    },
    /// The maps stored for a release (every release without one).
    List {
        /// The release.
        #[arg(long)]
        release: Option<String>,
    },
}

#[cfg(not(feature = "client"))]
pub(super) fn sourcemaps(_: SourcemapsArgs, _: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let _ = writeln!(err, "this build has no `client` feature: the sourcemaps commands need it");
    ExitCode::FAILURE
}

#[cfg(feature = "client")]
pub(super) fn sourcemaps(a: SourcemapsArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    use super::client::{Client, Payload};
    let Some(rt) = super::runtime(err) else { return ExitCode::FAILURE };
    let call = Client::new(a.url, a.token);
    match a.command {
        SourcemapsCommand::List { release } => {
            let path = match &release {
                Some(r) => {
                    format!("/api/v1/sourcemaps?{}", serde_urlencoded::to_string([("release", r)]).unwrap_or_default())
                }
                None => "/api/v1/sourcemaps".to_string(),
            };
            match rt.block_on(call.send(reqwest::Method::GET, &path, Payload::None)) {
                Ok(v) => {
                    for m in v["maps"].as_array().into_iter().flatten() {
                        let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
                        let _ = writeln!(out, "{}  {}  {} bytes", s("release"), s("url"), m["bytes"]);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(err, "{e}");
                    ExitCode::FAILURE
                }
            }
        }
        SourcemapsCommand::Upload { release, url_prefix, dir } => {
            if !url_prefix.starts_with("~") {
                let _ = writeln!(err, "--url-prefix: start it with ~ (the site's root), e.g. ~/_next/static");
                return ExitCode::from(2);
            }
            let maps = match crate::sourcemaps::find_maps(&dir, &url_prefix) {
                Ok(m) => m,
                Err(e) => {
                    let _ = writeln!(err, "cannot read {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            };
            if maps.is_empty() {
                let _ = writeln!(err, "no *.js.map under {}", dir.display());
                return ExitCode::FAILURE;
            }
            let (mut sent, mut bytes, mut failed) = (0usize, 0usize, 0usize);
            for (file, url) in &maps {
                let body = match std::fs::read(file) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = writeln!(err, "{}: {e}", file.display());
                        failed += 1;
                        continue;
                    }
                };
                let size = body.len();
                let query = serde_urlencoded::to_string([("release", release.as_str()), ("url", url.as_str())])
                    .unwrap_or_default();
                match rt.block_on(call.send(
                    reqwest::Method::POST,
                    &format!("/api/v1/sourcemaps?{query}"),
                    Payload::Bytes(body),
                )) {
                    Ok(_) => {
                        sent += 1;
                        bytes += size;
                        let _ = writeln!(out, "  {url}  {size} bytes");
                    }
                    Err(e) => {
                        failed += 1;
                        let _ = writeln!(err, "{}: {e}", file.display());
                    }
                }
            }
            let _ = writeln!(out, "uploaded {sent} source maps ({bytes} bytes) for release {release}");
            if failed > 0 {
                let _ = writeln!(err, "{failed} failed");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}
