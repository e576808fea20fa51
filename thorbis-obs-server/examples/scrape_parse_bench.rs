//! Where a scrape's CPU goes: the text parser alone, then parse + relabel + labels (what
//! `ScrapeSource::read` does), on one exposition file (e.g. node_exporter's /metrics).
//!   cargo run --release -p thorbis-obs-server --example scrape_parse_bench -- FILE

use std::time::Instant;
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_server::sources::scrape::{ScrapeConfig, text};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: scrape_parse_bench FILE");
    let body = std::fs::read_to_string(&path).expect("readable file");
    let cfg: ScrapeConfig = toml::from_str("name = \"node\"\nurl = \"http://127.0.0.1:9100/metrics\"").expect("config");
    let source = cfg.build().expect("source");
    let (mut parse, mut read) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..300 {
        let t = Instant::now();
        n = 0;
        text::parse(&body, |_| {
            n += 1;
            Ok(())
        })
        .expect("valid exposition");
        parse.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let r = source.read(&body, Timestamp(0)).expect("reads");
        std::hint::black_box(r);
        read.push(t.elapsed().as_secs_f64());
    }
    println!("{} bytes, {n} samples (medians of 300)", body.len());
    println!("parse only:                {:.1} us", median(parse) * 1e6);
    println!("parse + relabel + labels:  {:.1} us", median(read) * 1e6);
}
