//! Where a batch's time goes in the collector, stage by stage, on the 50-event batch of
//! `scripts/bench-collector.sh`: JSON parsing alone (what the bare peer does), then decode (size,
//! surrogates, parsing, wire validation), then decode and counting into a window. Medians of
//! 15 runs of 2,000 batches. Run: `cargo bench -p thorbis-obs-server --bench collector`.

use std::time::Instant;
use thorbis_obs_core::rum::{Device, RumWindow};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::wire::Batch;
use thorbis_obs_server::collector::decode;

fn batch() -> String {
    let t = 1_764_186_600_000_i64;
    let mut events = Vec::new();
    for i in 0..50 {
        events.push(match i % 5 {
            0 => {
                let name = ["LCP", "INP", "CLS", "FCP", "TTFB"][i / 5 % 5];
                let value = if name == "CLS" { 0.1 } else { 1200.0 + i as f64 };
                format!(r#"{{"type":"vital","at":{t},"name":"{name}","value":{value},"rating":"good","id":"m{i}","target":"img#hero","navigationType":"navigate"}}"#)
            }
            1 => format!(r#"{{"type":"action","at":{t},"name":"Create work order","actionType":"click","target":"button#create"}}"#),
            2 => format!(r#"{{"type":"business","at":{t},"name":"work_order_created","props":{{"workOrderId":"wo_{i}","industry":"home-services","estimatedValue":450}}}}"#),
            3 => format!(r#"{{"type":"resource","at":{t},"url":"https://app.example/_next/static/chunks/main.js","kind":"script","transferBytes":18204,"durationMs":40.5}}"#),
            _ => format!(r#"{{"type":"error","at":{t},"kind":"error","message":"TypeError: x is undefined","stack":"TypeError: x is undefined\n    at pay (https://app.example/pay.js:1:2042)","tags":{{"businessProcess":"payments"}},"count":1}}"#),
        });
    }
    format!(
        r#"{{"v":1,"service":"bench","env":"bench","session":{{"id":"s-bench","sampled":true,"startedAt":{t},"sampleRate":100}},"view":{{"id":"v-bench","url":"https://app.example/hs/work-orders/42","route":"/hs/work-orders/42"}},"sentAt":{t},"events":[{}]}}"#,
        events.join(",")
    )
}

fn median_us(runs: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut per = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        per.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    per.sort_by(f64::total_cmp);
    per[runs / 2]
}

fn main() {
    let body = batch();
    let bytes = body.as_bytes();
    assert!(decode(bytes).is_ok(), "the bench batch is valid");
    let parse = median_us(15, 2000, || {
        let b: Batch = serde_json::from_slice(std::hint::black_box(bytes)).expect("parses");
        std::hint::black_box(b);
    });
    let decoded = median_us(15, 2000, || {
        std::hint::black_box(decode(std::hint::black_box(bytes)).ok());
    });
    let mut window = RumWindow::new(Timestamp(0));
    let ingest = median_us(15, 2000, || {
        if let Ok(b) = decode(std::hint::black_box(bytes)) {
            std::hint::black_box(window.ingest(&b, (Device::Desktop, "Chrome"), Timestamp(0)));
        }
    });
    println!("batch of 50 events, {} bytes, median us per batch:", bytes.len());
    println!("  serde_json parse only (the bare peer):   {parse:7.1}");
    println!("  decode (size, surrogates, parse, valid.): {decoded:7.1}  ({:.2}x)", decoded / parse);
    println!("  decode + count into a window:            {ingest:7.1}  ({:.2}x)", ingest / parse);
}
