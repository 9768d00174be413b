//! Criterion micro-benchmarks: the cryptographic floor of a token, per algorithm.
//! `cargo bench --bench crypto` (add `-- sign` or `-- verify` to filter).
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented pub fn"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

#[path = "support/jwt.rs"]
mod jwt;

fn sign_and_verify(c: &mut Criterion) {
    let claims = jwt::claims();
    for f in jwt::fixtures() {
        let alg = f.alg.as_str();
        c.bench_function(&format!("sign/{alg}"), |b| {
            b.iter(|| f.key.sign(std::hint::black_box(&claims)))
        });
        let token = f.key.sign(&claims);
        c.bench_function(&format!("verify/{alg}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Value>(
                    std::hint::black_box(&token),
                    &f.decoding,
                    &f.validation,
                )
                .unwrap()
            })
        });
    }
}

criterion_group!(benches, sign_and_verify);
criterion_main!(benches);
