//! The collector's decoder against hostile bodies (proptest): arbitrary bytes, and valid batches
//! mutated byte by byte, cut short, padded, given lone surrogates, huge numbers and deep
//! nesting. Whatever the input, `decode` answers (a batch that passes core's validation, or a
//! 4xx refusal with a message) and never panics.
#![cfg(feature = "collector")]

use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use thorbis_obs_server::collector::decode;

static TRIED: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

const VALID: &str = r#"{"v":1,"service":"shop","env":"prod","version":"1.2.3",
"session":{"id":"s-1","sampled":true,"startedAt":1764186600000,"sampleRate":10},
"view":{"id":"v-1","url":"https://app.example/hs/orders/7","referrer":"https://app.example/","route":"/hs/orders/7"},
"sentAt":1764186660000,"events":[
{"type":"vital","at":1764186601200,"name":"LCP","value":1840.5,"rating":"good","id":"m1","target":"img#hero","navigationType":"navigate"},
{"type":"action","at":1764186610000,"name":"Create","actionType":"click","target":"button#create"},
{"type":"business","at":1764186611000,"name":"work_order_created","props":{"workOrderId":"wo_1","estimatedValue":450}},
{"type":"error","at":1764186640000,"kind":"business","message":"Error: Card declined","stack":"Error: Card declined\n    at pay (https://app.example/pay.js:1:2)","fingerprint":["payments","charge","declined"],"tags":{"businessProcess":"payments"},"breadcrumbs":[{"at":1764186639000,"category":"ui.click","message":"button#pay"}],"count":2},
{"type":"resource","at":1764186601000,"url":"https://app.example/main.js","kind":"script","transferBytes":182044,"durationMs":140.25,"overBudget":"script"},
{"type":"long_task","at":1764186601900,"durationMs":86,"startMs":1520.5},
{"type":"conversion","at":1764186630000,"conversionType":"invoice-paid","value":450},
{"type":"journey","at":1764186612000,"journeyType":"work-order","step":"created"},
{"type":"timing","at":1764186602500,"name":"route_change","durationMs":2310}]}"#;

fn check(body: &[u8]) {
    TRIED.fetch_add(1, Ordering::Relaxed);
    match decode(body) {
        Ok(batch) => {
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            assert!(batch.validate().is_ok(), "decode accepted an invalid batch");
        }
        Err(r) => {
            assert!(r.status.is_client_error(), "{r:?}");
            assert!(!r.message.is_empty());
        }
    }
}

/// A mutation of the valid batch.
#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    Cut(usize),
    Delete(usize, usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let len = VALID.len();
    let splice = prop_oneof![
        Just("\\ud800".to_string()),
        Just("\\udc00\\ud83d".to_string()),
        Just("1e999".to_string()),
        Just("-0".to_string()),
        Just("NaN".to_string()),
        Just("null".to_string()),
        Just("[".repeat(200)),
        Just("{\"a\":".repeat(150)),
        Just("\"".to_string()),
        Just("\u{0}".to_string()),
        Just("é€😀".to_string()),
        Just(",".to_string()),
        "[ -~]{0,16}",
    ];
    prop_oneof![
        (0..len, any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (0..len).prop_map(Mutation::Cut),
        (0..len, 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (0..len, splice).prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

/// Applies `m` to `b`, positions taken modulo its length.
fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize| if b.is_empty() { 0 } else { i % b.len() };
    match m {
        Mutation::Byte(i, x) => {
            let i = at(*i);
            if let Some(c) = b.get_mut(i) {
                *c = *x;
            }
        }
        Mutation::Cut(i) => b.truncate(at(*i)),
        Mutation::Delete(i, n) => {
            let i = at(*i);
            let end = (i + *n).min(b.len());
            b.drain(i..end);
        }
        Mutation::Insert(i, s) => {
            let tail = b.split_off(at(*i));
            b.extend_from_slice(s.as_bytes());
            b.extend_from_slice(&tail);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&body);
    }

    #[test]
    fn mutated_batches_never_panic(ms in proptest::collection::vec(mutation(), 1..4)) {
        let mut body = VALID.as_bytes().to_vec();
        for m in &ms {
            apply(&mut body, m);
        }
        check(&body);
    }
}

#[test]
fn the_valid_batch_passes_and_big_bodies_are_refused_first() {
    assert!(decode(VALID.as_bytes()).is_ok());
    let big = format!("{}{}", VALID, " ".repeat(70_000));
    assert_eq!(decode(big.as_bytes()).map_err(|r| r.status.as_u16()).err(), Some(413));
    // Report what the property tests tried (they run in this binary, in any order).
    eprintln!(
        "collector decode: {} inputs tried so far, {} accepted",
        TRIED.load(Ordering::Relaxed),
        ACCEPTED.load(Ordering::Relaxed)
    );
}
