//! The JWKS, the access token's JOSE header and claims, metadata, and key storage
//! (CONFORMANCE 27–30, 37–40). Signatures are checked here with ring and, independently
//! of anything in tessera, with PyJWT (`pyjwt_verify.py`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::oauth::token::{assert_token_ok, basic};
use crate::support::*;

const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64url string"))
        .expect("base64url")
}

/// Verifies a JWS against the JWK named by its `kid`, with the algorithm pinned to the key.
pub(crate) fn verify_with_jwks(token: &str, jwks: &Value) -> bool {
    use ring::signature::{self as sig, UnparsedPublicKey};
    let (header, _) = jwt_parts(token);
    let Some(key) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
    else {
        return false;
    };
    if header["alg"] != key["alg"] {
        return false;
    }
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let Ok(signature) = B64.decode(signature) else {
        return false;
    };
    let msg = signed.as_bytes();
    match key["alg"].as_str().unwrap() {
        "ES256" => {
            let point = [vec![4u8], b64(&key["x"]), b64(&key["y"])].concat();
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).verify(msg, &signature)
        }
        "EdDSA" => UnparsedPublicKey::new(&sig::ED25519, b64(&key["x"])).verify(msg, &signature),
        "RS256" => sig::RsaPublicKeyComponents {
            n: b64(&key["n"]),
            e: b64(&key["e"]),
        }
        .verify(&sig::RSA_PKCS1_2048_8192_SHA256, msg, &signature),
        other => panic!("unexpected alg {other}"),
    }
    .is_ok()
}

/// The token with its payload replaced by `claims`, header and signature kept.
pub(crate) fn with_claims(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    )
}

pub(crate) async fn fetch_jwks(app: &TestApp) -> Value {
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["cache-control"], "public, max-age=600");
    r.json().await.unwrap()
}

/// A server signing with an algorithm, and a token it signed.
pub(crate) struct Signed {
    pub app: TestApp,
    /// A client_credentials access token of confidential client `svc`.
    pub token: String,
}

/// A client_credentials token from an app signing with `alg`.
pub(crate) async fn app_and_token(alg: &str) -> Signed {
    let app = TestApp::with(&[("signing_alg", alg)]).await;
    let secret = app
        .client("svc", false, &["client_credentials"], &["read"], &["ops"])
        .await
        .unwrap();
    let r = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic("svc", &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body = assert_token_ok(r).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    Signed { app, token }
}

/// CONFORMANCE 27–29 and 37–38 for one algorithm.
async fn check_keys_and_token(alg: &str) {
    let Signed { app, token } = app_and_token(alg).await;
    let jwks = fetch_jwks(&app).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "active and next: {jwks}");
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    for key in keys {
        let mut members: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort();
        for private in PRIVATE_MEMBERS {
            assert!(
                key.get(private).is_none(),
                "private member {private}: {key}"
            );
        }
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], alg);
        match alg {
            "ES256" => {
                assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
                assert_eq!((&key["kty"], &key["crv"]), (&json!("EC"), &json!("P-256")));
                assert_eq!(b64(&key["x"]).len(), 32);
                assert_eq!(b64(&key["y"]).len(), 32);
            }
            "EdDSA" => {
                assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x"]);
                assert_eq!(
                    (&key["kty"], &key["crv"]),
                    (&json!("OKP"), &json!("Ed25519"))
                );
                assert_eq!(b64(&key["x"]).len(), 32);
            }
            _ => {
                assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
                assert_eq!(key["kty"], "RSA");
                let (n, e) = (b64(&key["n"]), b64(&key["e"]));
                assert!(n.len() >= 256, "modulus of {} bits", n.len() * 8);
                assert!(
                    n[0] >= 0x80,
                    "no leading zero octet and a full 2048-bit modulus"
                );
                assert_ne!(e[0], 0, "no leading zero octet in e");
                assert_eq!(e, [1, 0, 1]);
            }
        }
    }
    let (header, claims) = jwt_parts(&token);
    assert_eq!(header.as_object().unwrap().len(), 3, "{header}");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], alg);
    assert!(
        keys.iter().any(|k| k["kid"] == header["kid"]),
        "kid {} in JWKS",
        header["kid"]
    );
    for claim in [
        "iss",
        "exp",
        "aud",
        "sub",
        "client_id",
        "iat",
        "jti",
        "scope",
        "roles",
    ] {
        assert!(
            claims.get(claim).is_some_and(|c| !c.is_null()),
            "claim {claim}: {claims}"
        );
    }
    assert_eq!(claims["roles"], json!(["ops"]));
    assert!(
        verify_with_jwks(&token, &jwks),
        "ring verifies the {alg} token"
    );
    let mut forged = claims.clone();
    forged["roles"] = json!(["admin"]);
    assert!(
        !verify_with_jwks(&with_claims(&token, &forged), &jwks),
        "an altered payload must not verify"
    );
    assert_raw_public_keys_absent_from_db(&app, &jwks).await;
}

/// The database files (main and WAL), as bytes.
pub(crate) async fn db_bytes(app: &TestApp) -> Vec<u8> {
    if let tessera::store::Pool::Postgres(pool) = app.core.db.writer() {
        // Every row of every table as PostgreSQL renders it; bytea in the escape
        // format, which keeps printable bytes as they are.
        use sqlx::Acquire;
        let mut conn = pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SET LOCAL bytea_output = 'escape'")
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut bytes = Vec::new();
        // And every bytea value as its raw bytes.
        let blobs: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND data_type = 'bytea'",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        for (table, column) in blobs {
            let values: Vec<(Vec<u8>,)> = sqlx::query_as(&format!(
                "SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
            ))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            for (v,) in values {
                bytes.extend(v);
            }
        }
        for table in [
            "users",
            "clients",
            "refresh_families",
            "refresh_tokens",
            "signing_keys",
            "security_events",
            "meta",
        ] {
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
            for (row,) in rows {
                bytes.extend(row.into_bytes());
            }
        }
        return bytes;
    }
    let mut bytes = std::fs::read(app.db_path()).unwrap();
    if let Ok(wal) = std::fs::read(app.dir.path().join("tessera.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A PKCS#8 document in clear carries the raw public key; the database must never hold it,
/// only the JWK (base64url text) and the sealed private half.
async fn assert_raw_public_keys_absent_from_db(app: &TestApp, jwks: &Value) {
    let db = db_bytes(app).await;
    for key in jwks["keys"].as_array().unwrap() {
        let kid = key["kid"].as_str().unwrap();
        assert!(
            contains(&db, kid.as_bytes()),
            "the key rows are in the files read"
        );
        let raw = match key["kty"].as_str().unwrap() {
            "EC" => [vec![4u8], b64(&key["x"]), b64(&key["y"])].concat(),
            "OKP" => b64(&key["x"]),
            _ => b64(&key["n"]),
        };
        assert!(
            !contains(&db, &raw),
            "raw public key of {kid} found in the database file"
        );
    }
}

#[tokio::test]
async fn es256_keys_and_tokens() {
    check_keys_and_token("ES256").await;
}

#[tokio::test]
async fn eddsa_keys_and_tokens() {
    check_keys_and_token("EdDSA").await;
}

#[tokio::test]
async fn rs256_keys_and_tokens() {
    check_keys_and_token("RS256").await;
}

#[tokio::test]
async fn es256_private_keys_are_not_stored_in_clear() {
    // ring's P-256 PKCS#8 (RFC 5208/5915) begins with this; the check would find one.
    const PKCS8_P256: [u8; 17] = [
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x02, 0x01,
    ];
    let rng = ring::rand::SystemRandom::new();
    let sample = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    assert!(sample.as_ref().starts_with(&PKCS8_P256));

    let Signed { app, .. } = app_and_token("ES256").await;
    let mut db = db_bytes(&app).await;
    assert!(
        !contains(&db, &PKCS8_P256),
        "a PKCS#8 P-256 private key is in the database in clear"
    );
    db.extend_from_slice(sample.as_ref());
    assert!(contains(&db, &PKCS8_P256));
}

#[tokio::test]
async fn metadata_matches_the_tokens() {
    // Before any client exists: no empty arrays either.
    let bare = TestApp::spawn().await;
    assert_no_empty_arrays(
        &bare
            .get_json("/.well-known/oauth-authorization-server")
            .await,
    );
    drop(bare);
    let Signed { app, token } = app_and_token("ES256").await;
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let meta: Value = r.json().await.unwrap();
    let iss = jwt_parts(&token).1["iss"].as_str().unwrap().to_string();
    assert_eq!(
        meta["issuer"].as_str().unwrap(),
        iss,
        "issuer byte-identical to iss"
    );
    assert_eq!(iss, app.addr);
    assert_eq!(meta["token_endpoint"], format!("{iss}/token"));
    assert_eq!(meta["jwks_uri"], format!("{iss}/.well-known/jwks.json"));
    assert_eq!(meta["revocation_endpoint"], format!("{iss}/revoke"));
    assert_eq!(meta["introspection_endpoint"], format!("{iss}/introspect"));
    let list = |name: &str| -> Vec<String> {
        meta[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {meta}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let mut grants = list("grant_types_supported");
    grants.sort();
    assert_eq!(
        grants,
        [
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token"
        ]
    );
    for name in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = list(name);
        assert!(methods.iter().any(|m| m == "client_secret_basic"), "{name}");
        assert!(methods.iter().any(|m| m == "client_secret_post"), "{name}");
    }
    // The scopes the server defines, not the clients' own (`read` here).
    assert_eq!(
        list("scopes_supported"),
        ["openid", "profile", "offline_access", "roles", "events"]
    );
    assert_no_empty_arrays(&meta);
    // jwks_uri serves the key set that verifies the token.
    let jwks: Value = app
        .http
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(verify_with_jwks(&token, &jwks));
}

fn assert_no_empty_arrays(v: &Value) {
    match v {
        Value::Array(a) => {
            assert!(!a.is_empty(), "empty array in metadata");
            a.iter().for_each(assert_no_empty_arrays);
        }
        Value::Object(o) => o.iter().for_each(|(k, v)| {
            assert!(
                !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()),
                "member {k}: {v}"
            );
            assert_no_empty_arrays(v);
        }),
        _ => {}
    }
}
