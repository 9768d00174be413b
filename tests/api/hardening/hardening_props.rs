//! Property tests of the parsers that face the network: forms, `Basic` and
//! `Bearer` credentials, admin JSON (and the live admin API on arbitrary JSON).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use tessera::domain::clients::NewClient;
use tessera::http::{bearer, form};

use crate::support::*;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Form-urlencodes: unreserved bytes as they are, every other byte `%XX`
/// (hex in either case), and a space as `+` or `%20`.
fn encode(s: &str, plus: bool, lower: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' if plus => "+".into(),
            _ if lower => format!("%{b:02x}"),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn bearer_headers(value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, value);
    Some(h)
}

/// A visible ASCII string, mostly of b64token characters.
fn token_like() -> impl Strategy<Value = String> {
    let b64: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain("-._~+/=".chars())
        .collect();
    let visible: Vec<char> = ('!'..='~').collect();
    vec(
        prop_oneof![
            9 => proptest::sample::select(b64),
            1 => proptest::sample::select(visible),
        ],
        1..40,
    )
    .prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn form_parse_never_panics(body in vec(any::<u8>(), 0..512)) {
        let _ = form::parse(&body);
    }

    #[test]
    fn form_parse_never_panics_on_form_like_input(body in "[a-z=&%+0-9A-Fa-f\\x80-\\xff]{0,64}") {
        let _ = form::parse(body.as_bytes());
    }

    #[test]
    fn form_parse_round_trips_unique_names(
        pairs in btree_map(any::<String>(), any::<String>(), 0..8),
        plus in any::<bool>(),
        lower in any::<bool>(),
    ) {
        let body = pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n, plus, lower), encode(v, plus, lower)))
            .collect::<Vec<_>>()
            .join("&");
        let params = form::parse(body.as_bytes()).expect("a well-formed form parses");
        for (name, value) in &pairs {
            prop_assert!(params.contains(name), "{name:?} missing from {body}");
            // Empty values count as omitted (RFC 6749 §3.1).
            let expected = Some(value.as_str()).filter(|v| !v.is_empty());
            prop_assert_eq!(params.get(name), expected);
        }
    }

    #[test]
    fn form_parse_refuses_a_repeated_name(name in any::<String>(), a in any::<String>(), b in any::<String>()) {
        let body = format!("{}={}&{}={}", encode(&name, true, false), encode(&a, true, false), encode(&name, false, true), encode(&b, false, true));
        prop_assert!(form::parse(body.as_bytes()).is_err(), "{body}");
    }

    #[test]
    fn form_decode_inverts_the_encoder(s in any::<String>(), plus in any::<bool>(), lower in any::<bool>()) {
        prop_assert_eq!(form::decode(encode(&s, plus, lower).as_bytes()), Some(s));
    }

    #[test]
    fn form_decode_never_panics_and_yields_utf8(bytes in vec(any::<u8>(), 0..256)) {
        if let Some(s) = form::decode(&bytes) {
            // Decoding what it produced, re-encoded, is the identity.
            prop_assert_eq!(form::decode(encode(&s, true, false).as_bytes()), Some(s));
        }
    }

    #[test]
    fn parse_basic_recovers_id_and_secret(
        id in any::<String>().prop_filter("printable, non-empty", |s| !s.is_empty() && !s.chars().any(char::is_control)),
        secret in any::<String>(),
        scheme in prop_oneof![Just("Basic"), Just("basic"), Just("BASIC")],
        plus in any::<bool>(),
    ) {
        let raw = format!("{}:{}", encode(&id, plus, false), encode(&secret, plus, true));
        let header = format!("{scheme} {}", STANDARD.encode(raw));
        prop_assert_eq!(form::parse_basic(header.as_bytes()), Some((id, secret)));
    }

    #[test]
    fn parse_basic_never_panics(bytes in vec(any::<u8>(), 0..256), prefixed in any::<bool>()) {
        let header = if prefixed { [b"Basic ".to_vec(), bytes].concat() } else { bytes };
        let _ = form::parse_basic(&header);
    }

    #[test]
    fn bearer_token_never_panics(bytes in vec(any::<u8>(), 0..256), prefixed in any::<bool>()) {
        let value = if prefixed { [b"Bearer ".to_vec(), bytes].concat() } else { bytes };
        if let Some(h) = bearer_headers(&value) {
            let _ = bearer::token(&h);
        }
    }

    #[test]
    fn bearer_token_accepts_exactly_b64tokens(token in token_like()) {
        let h = bearer_headers(format!("Bearer {token}").as_bytes()).unwrap();
        match bearer::token(&h) {
            Ok(t) => prop_assert!(is_b64token(&token) && t == token, "accepted {token:?} as {t:?}"),
            Err(_) => prop_assert!(!is_b64token(&token), "refused the b64token {token:?}"),
        }
    }

    #[test]
    fn new_client_json_never_panics(bytes in vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<NewClient>(&bytes);
    }

    #[test]
    fn new_client_from_arbitrary_json_never_panics(v in json_value()) {
        let _ = serde_json::from_slice::<NewClient>(v.to_string().as_bytes());
        let _ = serde_json::from_value::<NewClient>(v);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[a-z]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(
                prop_oneof![
                    Just("username".to_string()),
                    Just("password".to_string()),
                    Just("roles".to_string()),
                    any::<String>(),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies for `POST /admin/users`: arbitrary JSON, and objects shaped like the
/// request with arbitrary or plausible members (so 201 and 409 are reached too).
fn user_body() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        3 => "(ann|bob|cy)".prop_map(Value::from),
        1 => json_value(),
    ];
    let password = prop_oneof![
        3 => "[ -~]{8,14}".prop_map(Value::from),
        1 => ".{0,14}".prop_map(Value::from),
        1 => json_value(),
    ];
    let roles = proptest::option::of(prop_oneof![
        3 => vec("[a-z]{1,5}", 0..3).prop_map(Value::from),
        1 => vec("[a-z,]{0,5}", 0..3).prop_map(Value::from),
        1 => json_value(),
    ]);
    prop_oneof![
        1 => json_value(),
        3 => (name, password, roles).prop_map(|(u, p, r)| {
            let mut v = serde_json::json!({"username": u, "password": p});
            if let Some(r) = r {
                v["roles"] = r;
            }
            v
        }),
    ]
}

#[test]
fn admin_user_creation_answers_only_documented_statuses() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (app, admin) = rt.block_on(async {
        let app = TestApp::spawn().await;
        let admin = app.admin_token().await;
        (app, admin)
    });
    let ctype = prop_oneof![
        8 => Just("application/json"),
        1 => Just("application/json; charset=utf-8"),
        1 => Just("text/plain"),
    ];
    let mut runner = TestRunner::new(config(64));
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    runner
        .run(&(user_body(), ctype), |(body, ctype)| {
            let status = rt.block_on(async {
                app.with_bearer(Method::POST, "/admin/users", &admin)
                    .header("content-type", ctype)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            });
            seen.borrow_mut().insert(status);
            prop_assert!(
                [201, 400, 409, 415].contains(&status),
                "{status} for {ctype} {body}"
            );
            Ok(())
        })
        .unwrap();
    let seen = seen.into_inner();
    assert!(seen.contains(&201) && seen.contains(&400), "{seen:?}");
}
