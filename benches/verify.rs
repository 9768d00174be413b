//! Criterion: tessera-verify's whole offline check (header, key by kid, signature,
//! claims, freshness state) against the bare signature verification, per algorithm;
//! and the memory an entry of its state costs. `cargo bench --bench verify`.
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tessera_verify::{Settings, testing};

#[path = "support/jwt.rs"]
mod jwt;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn verification(c: &mut Criterion) {
    let now = now();
    let mut claims = jwt::claims();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    claims["sid"] = json!("bench-session");
    claims["ver"] = json!(3);
    for f in jwt::fixtures() {
        let alg = f.alg.as_str();
        let token = f.key.sign(&claims);
        let settings = Settings::new("http://127.0.0.1:8080", "urn:bench:api", "bench", "x");
        let v = testing::offline(settings, &json!({"keys": [f.jwk.clone()]}), 300);
        // A realistic state: 10 000 revoked sessions and 10 000 changed users.
        let at = time_string(now);
        for i in 0..10_000 {
            testing::apply(
                &v,
                &json!({"id": 2 * i + 1, "type": "session.revoked", "sub": format!("u{i}"), "sid": format!("s{i}"), "at": at}),
            );
            testing::apply(
                &v,
                &json!({"id": 2 * i + 2, "type": "user.roles_changed", "sub": format!("u{i}"), "ver": 2, "at": at}),
            );
        }
        assert!(v.verify_offline(&token).is_ok());
        c.bench_function(&format!("signature_only/{alg}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(
                    std::hint::black_box(&token),
                    &f.decoding,
                    &f.validation,
                )
                .unwrap()
            })
        });
        // What the verifier adds, alone: the two runs above differ by less than this
        // machine's run-to-run drift, so the overhead is read from this one.
        assert!(testing::without_signature(&v, &token));
        // ... of which the bare check does this part too (header and claims parsed into
        // a `Value`): the overhead is the difference.
        // The verifier parses the header once more than `without_signature` does (to
        // find the key, then inside `jsonwebtoken::decode`).
        c.bench_function(&format!("header_parse/{alg}"), |b| {
            b.iter(|| jsonwebtoken::decode_header(std::hint::black_box(&token)).unwrap())
        });
        c.bench_function(&format!("bare_parse/{alg}"), |b| {
            b.iter(|| {
                jsonwebtoken::dangerous::insecure_decode::<Value>(std::hint::black_box(&token))
                    .unwrap()
            })
        });
        c.bench_function(&format!("everything_but_the_signature/{alg}"), |b| {
            b.iter(|| testing::without_signature(&v, std::hint::black_box(&token)))
        });
        c.bench_function(&format!("verify_with_freshness/{alg}"), |b| {
            testing::touch(&v);
            b.iter(|| v.verify_offline(std::hint::black_box(&token)).unwrap())
        });
    }
}

fn time_string(t: i64) -> String {
    tessera_proto::rfc3339(t).unwrap()
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = verification
}
criterion_main!(benches);
