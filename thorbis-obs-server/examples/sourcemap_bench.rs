//! Symbolication with a 5 MB source map: a cold parse (ours, which is the `sourcemap` crate's
//! plus a check, against the crate's `decode_slice` alone), then frames symbolicated per second
//! on the parsed, cached map (ours: URL to map name, the token, the caller's name, context lines;
//! against the crate's `lookup_token` alone on the same positions), and the memory a parsed map
//! holds (the process's resident bytes before and after one parse). Medians of 15 parses and 15 rounds.
//!
//! `cargo run --release -p thorbis-obs-server --example sourcemap_bench`

use std::time::Instant;
use thorbis_obs_core::domain::errors::StackFrame;

/// Resident bytes of this process (`/proc/self/statm`; 0 where there is none).
fn resident() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

const BUNDLE: &str = "https://shop.example/_next/static/chunks/big.js";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A map of a 4-line bundle from 120 sources of 400 lines each (their text included), about 5 MB.
fn big_map() -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut b = sourcemap::SourceMapBuilder::new(Some("big.js"));
    let mut positions = Vec::new();
    let line_text = "  const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0);";
    for s in 0..120u32 {
        let src = b.add_source(&format!("webpack://_N_E/./app/module{s}.js"));
        let text: String = (0..400).map(|i| format!("{line_text} // {s}:{i}\n")).collect();
        b.set_source_contents(src, Some(&text));
        for i in 0..400u32 {
            let (dst_line, dst_col) = (s % 4, (s / 4) * 40_000 + i * 90);
            let name = b.add_name(&format!("fn{s}_{i}"));
            b.add_raw(dst_line, dst_col, i, 2, Some(src), Some(name), false);
            positions.push((dst_line, dst_col));
        }
    }
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).expect("json");
    (out, positions)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, file] = args.as_slice() {
        if flag == "--resident" {
            let json = std::fs::read(file)?;
            let before = resident();
            let map = thorbis_obs_server::sourcemaps::parse(&json)?;
            println!("{}", resident().saturating_sub(before));
            drop(map);
            return Ok(());
        }
    }
    let (json, positions) = big_map();
    println!("map: {:.2} MB, {} mappings", json.len() as f64 / 1e6, positions.len());
    // Cold parse.
    let (mut ours, mut crate_alone) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let t = Instant::now();
        let m = thorbis_obs_server::sourcemaps::parse(&json)?;
        ours.push(t.elapsed().as_secs_f64() * 1e3);
        drop(m);
        let t = Instant::now();
        let m = sourcemap::decode_slice(&json)?;
        crate_alone.push(t.elapsed().as_secs_f64() * 1e3);
        drop(m);
    }
    let (o, c) = (median(ours), median(crate_alone));
    println!("cold parse: ours {o:.1} ms, sourcemap::decode_slice {c:.1} ms (ratio {:.2})", o / c);
    // Memory of one parsed map: measured in a fresh process of this example, which reads the
    // JSON from a file and parses it once (here, freed parses would be reused).
    let file = std::env::temp_dir().join(format!("thorbis-sourcemap-bench-{}.json", std::process::id()));
    std::fs::write(&file, &json)?;
    let child = std::process::Command::new(std::env::current_exe()?).arg("--resident").arg(&file).output()?;
    let _ = std::fs::remove_file(&file);
    let held: usize = String::from_utf8_lossy(&child.stdout).trim().parse()?;
    let map = thorbis_obs_server::sourcemaps::parse(&json)?;
    println!(
        "a parsed map holds {:.2} MB: {:.2} x its JSON (the cache counts {} x)",
        held as f64 / 1e6,
        held as f64 / json.len() as f64,
        thorbis_obs_server::sourcemaps::PARSED_COST
    );
    // Cached: 50-frame stacks at spread positions.
    let stacks: Vec<Vec<StackFrame>> = positions
        .chunks(50)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&(l, c)| StackFrame {
                    function: Some("e".into()),
                    file: Some(BUNDLE.into()),
                    line: Some(l + 1),
                    column: Some(c + 1),
                })
                .collect()
        })
        .collect();
    let frames: usize = stacks.iter().map(Vec::len).sum();
    let (mut ours, mut crate_alone) = (Vec::new(), Vec::new());
    let mut sink = 0usize;
    for _ in 0..15 {
        let t = Instant::now();
        for s in &stacks {
            let out = thorbis_obs_server::sourcemaps::symbolicate(s, |k| {
                (k == "~/_next/static/chunks/big.js").then_some(&map)
            });
            sink += out.iter().filter(|f| f.mapped).count();
        }
        ours.push(frames as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for s in &stacks {
            for f in s {
                let tok = map.lookup_token(f.line.unwrap_or(1) - 1, f.column.unwrap_or(1) - 1);
                sink += usize::from(tok.is_some_and(|t| t.get_name().is_some()));
            }
        }
        crate_alone.push(frames as f64 / t.elapsed().as_secs_f64());
    }
    let (o, c) = (median(ours), median(crate_alone));
    let mapped: usize = stacks
        .iter()
        .map(|s| {
            let out = thorbis_obs_server::sourcemaps::symbolicate(s, |_| Some(&map));
            out.iter().filter(|f| f.mapped && f.context_line.is_some()).count()
        })
        .sum();
    println!(
        "cached: ours {:.2} M frames/s (with names and context lines), lookup_token alone {:.2} M frames/s (ratio {:.3}); \
         {mapped} of {frames} frames mapped with context (check {sink})",
        o / 1e6,
        c / 1e6,
        o / c,
    );
    Ok(())
}
