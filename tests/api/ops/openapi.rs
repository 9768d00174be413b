//! `openapi.yaml` against the router: the document describes exactly the routes of
//! `tessera::http::ROUTES`, is internally consistent, and every route is answered by
//! its handler (never the router's bare 404 or a 405).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tessera::http::ROUTES;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::TestApp;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");

/// The operation keys of an OpenAPI 3.1 path item.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn spec() -> Yaml {
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    assert_eq!(docs.len(), 1, "{SPEC} must hold exactly one YAML document");
    docs.remove(0)
}

/// A mapping's entries with string keys (YAML reads unquoted `200` as an integer).
fn entries(node: &Yaml) -> Vec<(String, &Yaml)> {
    node.as_hash()
        .map(|h| {
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("unexpected mapping key {other:?}"),
                    };
                    (key, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Operation<'a> {
    method: String,
    path: String,
    path_item: &'a Yaml,
    op: &'a Yaml,
}

impl Operation<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn operations(doc: &Yaml) -> Vec<Operation<'_>> {
    let paths = &doc["paths"];
    assert!(paths.as_hash().is_some(), "`paths` must be a mapping");
    let mut out = Vec::new();
    for (path, item) in entries(paths) {
        for (key, op) in entries(item) {
            if METHODS.contains(&key.as_str()) {
                out.push(Operation {
                    method: key.to_ascii_uppercase(),
                    path: path.clone(),
                    path_item: item,
                    op,
                });
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/a/b~1c`), if the node is one.
fn deref<'a>(doc: &'a Yaml, node: &'a Yaml) -> &'a Yaml {
    match node["$ref"].as_str() {
        Some(r) => resolve(doc, r).unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}

fn resolve<'a>(doc: &'a Yaml, reference: &str) -> Option<&'a Yaml> {
    let pointer = reference.strip_prefix("#/")?;
    let mut node = doc;
    for part in pointer.split('/') {
        let key = part.replace("~1", "/").replace("~0", "~");
        node = &node[key.as_str()];
        if node.is_badvalue() {
            return None;
        }
    }
    Some(node)
}

/// Every `$ref` anywhere under `node`.
fn refs<'a>(node: &'a Yaml, out: &mut Vec<&'a str>) {
    match node {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if k.as_str() == Some("$ref") {
                    if let Some(r) = v.as_str() {
                        out.push(r);
                    }
                } else {
                    refs(v, out);
                }
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The parameters of an operation, path-level ones included, `$ref`s followed.
fn parameters<'a>(doc: &'a Yaml, op: &Operation<'a>) -> Vec<&'a Yaml> {
    [op.path_item, op.op]
        .iter()
        .filter_map(|n| n["parameters"].as_vec())
        .flatten()
        .map(|p| deref(doc, p))
        .collect()
}

/// Whether `status` is covered by the operation's `responses` (exactly, by its `NXX`
/// range, or by `default`).
fn documents(op: &Yaml, status: u16) -> bool {
    let keys: BTreeSet<String> = entries(&op["responses"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.contains(&status.to_string())
        || keys.contains(&format!("{}XX", status / 100))
        || keys.contains("default")
}

#[test]
fn the_document_describes_exactly_the_routes() {
    let doc = spec();
    let documented: Vec<(String, String)> = operations(&doc)
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect();
    let documented_set: BTreeSet<(String, String)> = documented.iter().cloned().collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "ROUTES lists a route twice");
    let missing: Vec<String> = served
        .difference(&documented_set)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    let extra: Vec<String> = documented_set
        .difference(&served)
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "openapi.yaml and tessera::http::ROUTES disagree.\n  \
         served but not documented: {missing:?}\n  \
         documented but not served: {extra:?}"
    );
}

#[test]
fn the_document_is_consistent() {
    let doc = spec();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"), "OpenAPI version");
    assert_eq!(doc["info"]["title"].as_str(), Some("tessera"));
    assert_eq!(
        doc["info"]["version"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "info.version follows Cargo.toml"
    );

    // Every local reference points at something.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    let dangling: Vec<&str> = all
        .into_iter()
        .filter(|r| resolve(&doc, r).is_none())
        .collect();
    assert!(dangling.is_empty(), "dangling $refs: {dangling:?}");

    let schemes: BTreeSet<String> = entries(&doc["components"]["securitySchemes"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut operation_ids = BTreeSet::new();
    for op in operations(&doc) {
        let name = op.name();
        if let Some(id) = op.op["operationId"].as_str() {
            assert!(
                operation_ids.insert(id.to_string()),
                "{name}: duplicate operationId {id}"
            );
        }

        // Responses: at least one, with valid keys, each described.
        let responses = entries(&op.op["responses"]);
        assert!(!responses.is_empty(), "{name}: no responses documented");
        for (code, response) in &responses {
            let valid = code == "default"
                || (code.len() == 3
                    && matches!(code.as_bytes()[0], b'1'..=b'5')
                    && (code[1..].bytes().all(|b| b.is_ascii_digit()) || &code[1..] == "XX"));
            assert!(valid, "{name}: response key {code:?}");
            assert!(
                deref(&doc, response)["description"].as_str().is_some(),
                "{name} {code}: a response needs a description"
            );
        }
        assert!(
            responses.iter().any(|(code, _)| code.starts_with('2')),
            "{name}: no success response documented"
        );

        // Security requirements name declared schemes.
        let security = op.op["security"].as_vec().or(doc["security"].as_vec());
        let requirements = security.map(Vec::as_slice).unwrap_or_default();
        for requirement in requirements {
            for (scheme, _) in entries(requirement) {
                assert!(
                    schemes.contains(&scheme),
                    "{name}: unknown security scheme {scheme}"
                );
            }
        }

        // The authentication each handler performs.
        let declared: BTreeSet<String> = requirements
            .iter()
            .flat_map(|r| entries(r).into_iter().map(|(k, _)| k))
            .collect();
        let expected: &[&str] = match op.path.as_str() {
            // CORS preflights carry no credentials (Fetch Standard).
            _ if op.method == "OPTIONS" => &[],
            "/userinfo" | "/events" => &["bearer"],
            p if p.starts_with("/admin/") || p.starts_with("/ssf/") => &["bearer"],
            "/token" | "/introspect" | "/revoke" => &["clientBasic"],
            _ => &[],
        };
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(declared, expected, "{name}: security schemes");

        // An operation that takes anything from the caller (parameters, a body,
        // credentials) can refuse it, so it must document a 4xx.
        let params = parameters(&doc, &op);
        let takes_input = !params.is_empty()
            || !op.op["requestBody"].is_badvalue()
            || requirements.iter().any(|r| !entries(r).is_empty());
        let has_4xx = responses.iter().any(|(code, _)| code.starts_with('4'));
        assert!(
            !takes_input || has_4xx,
            "{name}: takes input but documents no 4xx response"
        );

        // Path templates and path parameters match one to one.
        let templated: BTreeSet<String> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        let declared: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"].as_str() == Some("path"))
            .map(|p| {
                assert_eq!(
                    p["required"].as_bool(),
                    Some(true),
                    "{name}: path parameters are required"
                );
                p["name"].as_str().expect("parameter name").to_string()
            })
            .collect();
        assert_eq!(templated, declared, "{name}: path parameters");
    }
}

/// `{id}`, `{sid}`, … become random UUIDs.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                uuid::Uuid::new_v4().to_string()
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("HTTP method")
}

/// Sends `method path` and checks that a handler, not the router, answered, with a
/// status the document lists for that operation.
async fn probe(
    app: &TestApp,
    (m, path): (&str, &str),
    op: Option<&Yaml>,
    bearer: Option<&str>,
) -> u16 {
    let url = app.url(&concrete(path));
    let mut req = app
        .http
        .request(method(m), &url)
        .timeout(Duration::from_secs(20));
    if let Some(token) = bearer {
        // JSON long-poll rather than an endless SSE stream on `/events`.
        req = req.bearer_auth(token).header("accept", "application/json");
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    let name = format!("{m} {path}");
    let who = if bearer.is_some() {
        "as admin"
    } else {
        "anonymously"
    };
    assert_ne!(
        status, 405,
        "{name} {who}: 405, the router does not serve this method"
    );
    if status == 404 {
        let json: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            panic!("{name} {who}: 404 without a JSON body, so the router has no such route")
        });
        assert!(json["error"].is_string(), "{name} {who}: 404 body {json}");
    }
    assert!(
        status < 500,
        "{name} {who}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    // A route missing from the document is reported by the test above.
    assert!(
        op.is_none_or(|op| documents(op, status)),
        "{name} {who}: answered {status}, which openapi.yaml does not document (body: {})",
        String::from_utf8_lossy(&body)
    );
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_by_its_handler() {
    let app = TestApp::spawn().await;
    let doc = spec();
    let ops = operations(&doc);

    // What the router itself says about a path it does not know: 404, empty body.
    let unknown = app
        .http
        .get(app.url("/no-such-route-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.bytes().await.unwrap().is_empty());

    // Anonymous: every route is reached; protected ones refuse with their own errors.
    let find = |m: &str, p: &str| ops.iter().find(|o| o.method == m && o.path == p);
    for &(m, p) in ROUTES {
        probe(&app, (m, p), find(m, p).map(|o| o.op), None).await;
    }

    // As an administrator, the admin handlers run past authorisation: unknown ids are
    // the handler's JSON 404, missing bodies its 415.
    app.user("root", "correct horse battery", &["admin"]).await;
    app.admin_console().await;
    let login = app.login("console", "root", "correct horse battery").await;
    let token = login["access_token"].as_str().expect("access token");
    let mut answered = Vec::new();
    for &(m, p) in ROUTES {
        let op = find(m, p).map(|o| o.op);
        // The bearer-protected routes: `/userinfo`, `/events` and `/admin/...`.
        if p == "/userinfo" || p == "/events" || p.starts_with("/admin/") {
            let status = probe(&app, (m, p), op, Some(token)).await;
            answered.push((format!("{m} {p}"), status));
        }
    }
    let status_of = |name: &str| answered.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
    assert_eq!(
        status_of("GET /admin/users/{id}"),
        Some(404),
        "{answered:?}"
    );
    assert_eq!(
        status_of("DELETE /admin/sessions/{sid}"),
        Some(404),
        "{answered:?}"
    );
    assert_eq!(status_of("GET /admin/keys"), Some(200), "{answered:?}");
    assert_eq!(status_of("GET /userinfo"), Some(200), "{answered:?}");
    assert_eq!(status_of("GET /events"), Some(200), "{answered:?}");

    // Methods the router does not list for a path are 405 there: ROUTES misses none.
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if ROUTES.contains(&(m, path)) {
                continue;
            }
            let resp = app
                .http
                .request(method(m), app.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                405,
                "{m} {path} is served but missing from ROUTES (and openapi.yaml)"
            );
        }
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The event types of the log are string literals `session.*`, `user.*` and `keys.*`
/// in `src/` and `proto/src/` (`EventKind`); `SecurityEvent.type` must list exactly those.
#[test]
fn the_event_types_are_the_ones_the_server_writes() {
    let doc = spec();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["SecurityEvent"]["properties"]
        ["type"]["enum"]
        .as_vec()
        .expect("SecurityEvent.type enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let mut files = Vec::new();
    for dir in ["src", "proto/src"] {
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
            &mut files,
        );
    }
    let is_event_type = |s: &str| {
        ["session.", "user.", "keys."].iter().any(|prefix| {
            s.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        })
    };
    let mut written = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        written.extend(
            text.split('"')
                .filter(|s| is_event_type(s))
                .map(str::to_string),
        );
    }
    assert!(
        written.contains("user.roles_changed"),
        "scan found {written:?}"
    );
    assert_eq!(
        documented, written,
        "SecurityEvent.type in openapi.yaml vs the event types written in src/"
    );
}
