//! Hostile access tokens against every verifier tessera runs: `/userinfo`,
//! `/introspect` and the admin API (CONFORMANCE 31–36, RFC 8725).
//!
//! Forgeries that need a valid signature are signed with the server's own active
//! key (decrypted here with the KEK), so each one differs from an accepted token
//! in exactly the property under test.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use reqwest::Method;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::keys::jwks::{fetch_jwks, with_claims};
use crate::oauth::introspect::introspect_ok;
use crate::support::*;

/// ES256 signing with a PKCS#8 key: the server's (decrypted) or one of our own.
pub(crate) struct Signer {
    pub kid: String,
    key: EcdsaKeyPair,
}

impl Signer {
    /// The server's active key, opened with the KEK from `keys/kek`.
    pub(crate) async fn server(app: &TestApp) -> Self {
        let text = std::fs::read_to_string(app.dir.path().join("keys").join("kek")).unwrap();
        let kek: [u8; 32] = STANDARD.decode(text.trim()).unwrap().try_into().unwrap();
        let rows = tessera::store::keys::list(app.core.db.writer())
            .await
            .unwrap();
        let row = rows.iter().find(|r| r.state == "active").unwrap();
        assert_eq!(row.alg, "ES256", "the default signing algorithm");
        let pkcs8 = tessera::crypto::open(&kek, row.kid.as_bytes(), &row.private_sealed).unwrap();
        Self::from_pkcs8(&row.kid, &pkcs8)
    }

    /// A key of the attacker's.
    pub(crate) fn attacker() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Self::from_pkcs8("attacker", pkcs8.as_ref())
    }

    fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Self {
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        Self {
            kid: kid.into(),
            key,
        }
    }

    pub(crate) fn public_jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }

    /// The header tessera itself writes.
    pub(crate) fn header(&self) -> Value {
        json!({"alg": "ES256", "kid": self.kid, "typ": "at+jwt"})
    }
}

pub(crate) fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", B64.encode(header.to_string()))
}

pub(crate) fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", B64.encode(tag.as_ref()))
}

pub(crate) async fn assert_refused(app: &TestApp, rs: &str, token: &str, what: &str) {
    let r = app
        .with_bearer(Method::GET, "/userinfo", token)
        .send()
        .await
        .unwrap();
    assert_invalid_token(r, &format!("/userinfo accepted {what}")).await;
    assert_eq!(
        introspect_ok(app, "rs", rs, token).await,
        json!({"active": false}),
        "/introspect accepted {what}"
    );
    let r = app
        .with_bearer(Method::GET, "/admin/keys", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "/admin/keys accepted {what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

pub(crate) async fn assert_accepted(app: &TestApp, rs: &str, token: &str, what: &str) {
    let r = app
        .with_bearer(Method::GET, "/userinfo", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/userinfo refused {what}");
    assert_eq!(
        introspect_ok(app, "rs", rs, token).await["active"],
        true,
        "/introspect refused {what}"
    );
    let r = app
        .with_bearer(Method::GET, "/admin/keys", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "/admin/keys refused {what}");
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused() {
    let Guarded { app, rs, admin } = Guarded::start().await;
    let (header, claims) = jwt_parts(&admin);
    let kid = header["kid"].as_str().unwrap().to_string();
    let payload = admin.split('.').nth(1).unwrap();
    for alg in ["none", "None", "NONE"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
        let token = format!("{}.{payload}.", B64.encode(h.to_string()));
        assert_refused(&app, &rs, &token, &format!("alg {alg}")).await;
    }
    // HS256 keyed with every plausible encoding of the public key.
    let jwks = fetch_jwks(&app).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    let x = B64.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = B64.decode(jwk["y"].as_str().unwrap()).unwrap();
    let point = [vec![4u8], x.clone(), y].concat();
    let secrets: Vec<Vec<u8>> = vec![
        jwk.to_string().into_bytes(),
        jwks.to_string().into_bytes(),
        point,
        x,
        kid.clone().into_bytes(),
    ];
    for (i, secret) in secrets.iter().enumerate() {
        for alg in ["HS256", "hs256"] {
            let h = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
            let token = hs256(secret, &h, &claims);
            assert_refused(&app, &rs, &token, &format!("{alg} secret #{i}")).await;
        }
    }
    // The genuine token still works, so the refusals above are about the forgery.
    assert_accepted(&app, &rs, &admin, "the genuine token").await;
}

#[tokio::test]
async fn keys_algorithms_and_types_are_pinned() {
    let Guarded { app, rs, admin } = Guarded::start().await;
    let (_, claims) = jwt_parts(&admin);
    let server = Signer::server(&app).await;
    // Control: our signer produces tokens the server accepts.
    let genuine = server.sign(&server.header(), &claims);
    assert_accepted(&app, &rs, &genuine, "a token signed with the server key").await;
    for typ in ["application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let h = json!({"alg": "ES256", "kid": server.kid, "typ": typ});
        assert_accepted(&app, &rs, &server.sign(&h, &claims), typ).await;
    }

    let mut refused: Vec<(String, String)> = Vec::new();
    let mut signed = |what: &str, header: Value| {
        refused.push((what.into(), server.sign(&header, &claims)));
    };
    signed(
        "typ JWT",
        json!({"alg": "ES256", "kid": server.kid, "typ": "JWT"}),
    );
    signed("no typ", json!({"alg": "ES256", "kid": server.kid}));
    signed(
        "typ at+jwt-x",
        json!({"alg": "ES256", "kid": server.kid, "typ": "at+jwt-x"}),
    );
    signed(
        "unknown kid",
        json!({"alg": "ES256", "kid": "no-such-kid", "typ": "at+jwt"}),
    );
    signed("no kid", json!({"alg": "ES256", "typ": "at+jwt"}));
    for alg in ["ES384", "RS256", "EdDSA", "PS256", "es256"] {
        signed(
            &format!("alg {alg} on an ES256 key"),
            json!({"alg": alg, "kid": server.kid, "typ": "at+jwt"}),
        );
    }
    // Headers changed under the original signature.
    let (header, _) = jwt_parts(&admin);
    for (what, h) in [
        (
            "altered typ JWT",
            json!({"alg": "ES256", "kid": header["kid"], "typ": "JWT"}),
        ),
        (
            "altered: typ removed",
            json!({"alg": "ES256", "kid": header["kid"]}),
        ),
        (
            "altered: extra member",
            json!({"alg": "ES256", "kid": header["kid"], "typ": "at+jwt", "cty": "x"}),
        ),
    ] {
        refused.push((what.into(), with_header(&admin, &h)));
    }
    for (what, token) in &refused {
        assert_refused(&app, &rs, token, what).await;
    }
}

#[tokio::test]
async fn claims_issuer_and_expiry_are_checked() {
    let Guarded { app, rs, admin } = Guarded::start().await;
    let (_, claims) = jwt_parts(&admin);
    let server = Signer::server(&app).await;
    let now = app.core.clock.now();
    let set = |key: &str, value: Value| {
        let mut c = claims.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    // Within the 5 s leeway: still valid.
    let just_expired = server.sign(&server.header(), &set("exp", json!(now - 2)));
    assert_accepted(&app, &rs, &just_expired, "exp 2 s ago (leeway)").await;
    let cases = [
        (
            "wrong iss, original signature",
            with_claims(&admin, &set("iss", json!("https://evil.example"))),
        ),
        (
            "wrong iss",
            server.sign(&server.header(), &set("iss", json!("https://evil.example"))),
        ),
        (
            "iss with a trailing slash",
            server.sign(
                &server.header(),
                &set("iss", json!(format!("{}/", app.addr))),
            ),
        ),
        (
            "iss as an array",
            server.sign(&server.header(), &set("iss", json!([app.addr]))),
        ),
        ("no iss", server.sign(&server.header(), &without("iss"))),
        (
            "expired 60 s ago",
            server.sign(&server.header(), &set("exp", json!(now - 60))),
        ),
        ("no exp", server.sign(&server.header(), &without("exp"))),
        (
            "exp as a string",
            server.sign(
                &server.header(),
                &set("exp", json!((now + 300).to_string())),
            ),
        ),
        (
            "sub changed, original signature",
            with_claims(&admin, &set("sub", json!("someone-else"))),
        ),
    ];
    for (what, token) in &cases {
        assert_refused(&app, &rs, token, what).await;
    }
}

#[tokio::test]
async fn foreign_and_truncated_tokens_are_refused() {
    let Guarded { app, rs, admin } = Guarded::start().await;
    let Guarded {
        app: other,
        rs: other_rs,
        admin: other_admin,
    } = Guarded::start().await;
    assert_accepted(&other, &other_rs, &other_admin, "the other app's own token").await;
    assert_refused(&app, &rs, &other_admin, "another issuer's genuine token").await;
    let (h, p, s) = {
        let parts: Vec<&str> = admin.split('.').collect();
        (parts[0], parts[1], parts[2])
    };
    let cases = [
        admin[..admin.len() - 1].to_string(),
        admin[..admin.len() / 2].to_string(),
        format!("{h}.{p}."),
        format!("{h}.{p}"),
        format!("{h}."),
        h.to_string(),
        format!("{h}.{p}.{}", &s[..s.len() - 4]),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}..{s}"),
    ];
    for token in &cases {
        assert_refused(&app, &rs, token, &format!("truncated {token:.60}")).await;
    }
}
