//! Memory per entry of a `tessera-verify` verifier's freshness state:
//! `cargo bench --bench verify_memory [-- N...]` (default N = 100,000).
//!
//! Fills N revoked sessions, N users with a newer `ver`, N disabled users, each kind
//! in a verifier of its own and through the verifier's own event handling, and reads the live heap's growth from a counting global allocator. The allocator is
//! this binary's only: the library keeps whatever its host uses. Figures are the bytes
//! asked of the allocator; malloc's own overhead per block (glibc: 8 bytes, blocks in
//! steps of 16) comes on top, so the live blocks per entry are printed too, and the
//! process's RSS growth beside as a check. A hash table grows by doubling, so the
//! bytes per entry depend on where N falls between two powers of two.

use std::alloc::System;

use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Resident memory in bytes (`/proc/self/statm`, 4 KiB pages).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// An id as tessera mints them (`sid`, `sub`): a hyphenated lowercase UUID v4.
fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Event `i` of a kind: a revoked session, a user's newer `ver`, a disabled user.
fn event(kind: &str, i: usize, at: &str) -> Value {
    match kind {
        "sid" => json!({"id": i, "type": "session.revoked", "sub": id(), "sid": id(), "at": at}),
        "ver" => json!({"id": i, "type": "user.roles_changed", "sub": id(), "ver": 2, "at": at}),
        _ => json!({"id": i, "type": "user.disabled", "sub": id(), "ver": 3, "at": at}),
    }
}

/// Applies `n` events made by `event(i)` and returns the growth per event:
/// (bytes asked of the allocator, live blocks, RSS bytes).
fn fill(v: &tessera_verify::Verifier, n: usize, event: impl Fn(usize) -> Value) -> (f64, f64, f64) {
    // The events themselves are made first, so only the state's growth is counted.
    let events: Vec<Value> = (0..n).map(event).collect();
    let rss0 = rss();
    let region = Region::new(GLOBAL);
    for e in &events {
        tessera_verify::testing::apply(v, e);
    }
    let s = region.change();
    let rss1 = rss();
    let per = |x: f64| x / n as f64;
    (
        per(s.bytes_allocated as f64 - s.bytes_deallocated as f64),
        per(s.allocations as f64 - s.deallocations as f64),
        per(rss1.saturating_sub(rss0) as f64),
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| a.parse().expect("N: entries to fill"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    let at = tessera_proto::rfc3339(time::OffsetDateTime::now_utc().unix_timestamp())
        .expect("now as RFC 3339");
    println!(
        "{:<10} {:>9} {:>12} {:>13} {:>11}",
        "entry", "N", "bytes/entry", "blocks/entry", "RSS/entry"
    );
    for n in sizes {
        for kind in ["sid", "ver", "disabled"] {
            let settings = tessera_verify::Settings::new("http://issuer", "urn:aud", "rs", "s");
            let v = tessera_verify::testing::offline(settings, &json!({"keys": []}), 300);
            let (bytes, blocks, rss) = fill(&v, n, |i| event(kind, i, &at));
            println!("{kind:<10} {n:>9} {bytes:>12.1} {blocks:>13.2} {rss:>11.1}");
            let (sessions, users, _) = v.health().tracked;
            assert_eq!(sessions + users, n, "{kind}: every entry is held");
        }
    }
}
