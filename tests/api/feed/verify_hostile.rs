//! Hostile tokens against tessera-verify (CONFORMANCE 31–36): each differs from an
//! accepted token in exactly the property under test, and an unknown-kid flood
//! costs the issuer at most one JWKS fetch per interval.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use tessera_verify::Rejection;

use crate::feed::verify_feed::{AUD, rig};
use crate::hardening::hardening_jwt::{Signer, hs256};
use crate::support::*;

#[tokio::test]
async fn verify_refuses_forged_and_mistyped_tokens() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (genuine, _) = rig.login().await;
    v.verify(&genuine).await.expect("the genuine token");
    let (header, claims) = jwt_parts(&genuine);
    let kid = header["kid"].as_str().unwrap().to_string();
    let payload = genuine.split('.').nth(1).unwrap();
    let invalid = |why| Err(Rejection::Invalid(why));

    for alg in ["none", "None"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let token = format!("{}.{payload}.", B64.encode(h.to_string()));
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("malformed"),
            "alg {alg}"
        );
    }
    // HS256 keyed with the public key (its JWK and its point).
    let jwks = rig.app.get_json("/.well-known/jwks.json").await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    let point = [
        vec![4u8],
        B64.decode(jwk["x"].as_str().unwrap()).unwrap(),
        B64.decode(jwk["y"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    for secret in [jwk.to_string().into_bytes(), point] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
        let token = hs256(&secret, &h, &claims);
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("alg does not match the key")
        );
    }

    let server = Signer::server(&rig.app).await;
    let sign = |header: serde_json::Value, claims: serde_json::Value| server.sign(&header, &claims);
    let ok_header = server.header();
    // typ: missing or plain JWT refused; at+jwt in any case, with or without application/.
    for typ in [None, Some("JWT"), Some("jwt")] {
        let mut h = ok_header.clone();
        match typ {
            Some(t) => h["typ"] = json!(t),
            None => drop(h.as_object_mut().unwrap().remove("typ")),
        }
        let token = sign(h, claims.clone());
        assert_eq!(
            v.verify(&token).await.map(|_| ()),
            invalid("typ must be at+jwt"),
            "{typ:?}"
        );
    }
    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        let mut h = ok_header.clone();
        h["typ"] = json!(typ);
        v.verify(&sign(h, claims.clone())).await.expect(typ);
    }
    // jku, x5u and jwk headers are never followed: the attacker's key does not verify.
    let attacker = Signer::attacker();
    let mut h = attacker.header();
    h["kid"] = json!(kid);
    h["jwk"] = attacker.public_jwk();
    h["jku"] = json!("http://127.0.0.1:1/jwks.json");
    h["x5u"] = json!("http://127.0.0.1:1/cert.pem");
    let token = attacker.sign(&h, &claims);
    assert_eq!(v.verify(&token).await.map(|_| ()), invalid("bad signature"));
    // Genuine signature, wrong claims.
    let mut c = claims.clone();
    c["iss"] = json!(format!("{}/", rig.app.addr));
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("wrong issuer")
    );
    let mut c = claims.clone();
    c["aud"] = json!(["https://other.example"]);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("wrong audience")
    );
    let mut c = claims.clone();
    c["aud"] = json!(["https://other.example", AUD]);
    v.verify(&sign(ok_header.clone(), c))
        .await
        .expect("aud includes ours");
    let now = rig.app.core.clock.now();
    let mut c = claims.clone();
    c["exp"] = json!(now - 10);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.err(),
        Some(Rejection::Expired)
    );
    let mut c = claims.clone();
    c["exp"] = json!(now - 3); // within the leeway
    v.verify(&sign(ok_header.clone(), c))
        .await
        .expect("within the leeway");
    let mut c = claims.clone();
    c["iat"] = json!(now + 60);
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("issued in the future")
    );
    let mut c = claims.clone();
    c.as_object_mut().unwrap().remove("jti");
    assert_eq!(
        v.verify(&sign(ok_header.clone(), c)).await.map(|_| ()),
        invalid("claims missing or malformed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_an_unknown_kid_flood_fetches_the_jwks_at_most_once_per_interval() {
    let rig = rig(&[]).await;
    let v = rig.verifier().await;
    let (genuine, _) = rig.login().await;
    let before = v.health().jwks_fetches;
    let attacker = Signer::attacker();
    let claims = jwt_parts(&genuine).1;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let mut h = attacker.header();
            h["kid"] = json!(format!("random-{i}"));
            let token = attacker.sign(&h, &claims);
            let v = v.clone();
            tokio::spawn(async move { v.verify(&token).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            t.await.unwrap().err(),
            Some(Rejection::Invalid("unknown key"))
        );
    }
    let fetched = v.health().jwks_fetches - before;
    assert!(fetched <= 1, "{fetched} JWKS fetches for 200 unknown kids");
    v.verify(&genuine)
        .await
        .expect("the genuine token still verifies");
}
