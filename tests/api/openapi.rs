//! The OpenAPI document (`GET /openapi.json`) is kept in step with the
//! router: in sandbox mode, in production and with a dialect moved or
//! turned off, every (method, path) the server serves is documented and
//! every documented operation is served; the document is OpenAPI 3.1 with
//! every `$ref` resolving. (`tests/schemathesis.sh` then checks the
//! answers against it with generated requests.)

use std::collections::BTreeSet;

use ficha::http::paths;
use ficha::http::{DialectKind, DialectPaths};
use ficha::oauth::Mode;
use serde_json::Value;

use crate::helpers::{Backend, Options, TestApp};

/// The methods an OpenAPI path item can hold. HEAD is served wherever GET
/// is (RFC 9110 §9.3.2), and the document says so once rather than per
/// operation.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
];

async fn document(app: &TestApp) -> Value {
    let resp = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

/// The (path, METHOD) pairs the document lists, HEAD implied by GET.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if method == "GET" {
                ops.insert((path.clone(), "HEAD".to_owned()));
            }
            ops.insert((path.clone(), method));
        }
    }
    ops
}

/// Whether the router serves `method` on `path`: anything but its own 404
/// (no route; an empty body) or a 405 (no such method on the route).
async fn served(app: &TestApp, path: &str, method: &str) -> bool {
    let resp = app
        .http
        .request(method.parse().unwrap(), app.url(path))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    // Only a 404's body is read: a served event stream never ends.
    let empty_404 = status == 404 && resp.bytes().await.unwrap().is_empty();
    !(status == 405 || empty_404)
}

/// Every string literal in `src/http/` that looks like a route path, so
/// that a route added there without its operation is probed too.
fn literal_paths() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for literal in text.split('"').skip(1).step_by(2) {
                    let routeish = literal.len() > 1
                        && literal.starts_with('/')
                        && literal
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
                    if routeish {
                        out.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut out,
    );
    out
}

/// Paths worth probing besides the documented ones: every route a
/// configuration could mount, every path literal of the HTTP code, the
/// moved paths, and some that are none.
fn candidates(doc: &Value, extra: &[&str]) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    paths.extend(literal_paths());
    paths.extend(DialectKind::ALL.iter().map(|d| d.default_path().to_owned()));
    paths.extend(paths::FIXED.iter().map(|p| (*p).to_owned()));
    paths.extend(extra.iter().map(|p| (*p).to_owned()));
    paths.extend(["/", "/oauth2", "/sandbox", "/health/", "/nowhere"].map(String::from));
    paths
}

/// Probes every candidate with every method: served if and only if
/// documented.
async fn assert_in_step(app: &TestApp, doc: &Value, extra: &[&str]) {
    let ops = documented(doc);
    for path in candidates(doc, extra) {
        for method in METHODS {
            let listed = ops.contains(&(path.clone(), method.to_owned()));
            let answered = served(app, &path, method).await;
            assert_eq!(
                answered, listed,
                "{method} {path}: served {answered}, documented {listed}"
            );
        }
    }
}

/// Every `$ref` in `value` resolves to a node of `doc`.
fn assert_refs_resolve(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                let pointer = r.strip_prefix('#').expect("a local $ref");
                assert!(doc.pointer(pointer).is_some(), "unresolved $ref {r}");
            }
            map.values().for_each(|v| assert_refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(doc, v)),
        _ => {}
    }
}

/// The structure OpenAPI 3.1 requires of what ficha writes.
fn assert_openapi_3_1(doc: &Value) {
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_refs_resolve(doc, doc);
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        for (method, op) in item.as_object().unwrap() {
            assert!(
                ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
                    .contains(&method.as_str()),
                "{method} {path}"
            );
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} repeated");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, response) in responses {
                assert!(
                    status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                    "{method} {path}: status {status}"
                );
                assert!(response["description"].is_string());
            }
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                }
            }
        }
    }
}

fn paths_of(doc: &Value) -> BTreeSet<&str> {
    doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn the_sandbox_document_lists_exactly_what_the_router_serves() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_openapi_3_1(&doc);
    // Every route the sandbox mounts is a fixed path of `http::paths` or a
    // dialect's, and every one of those is mounted.
    let known: BTreeSet<&str> = paths::FIXED
        .into_iter()
        .chain(DialectKind::ALL.iter().map(|d| d.default_path()))
        .collect();
    assert_eq!(paths_of(&doc), known);
    let token = &doc["paths"]["/oauth2/token"]["post"];
    assert_eq!(token["operationId"], "payvalida_token");
    for status in ["200", "400", "401", "408", "413", "429", "500", "503"] {
        assert!(token["responses"][status].is_object(), "{status}");
    }
    assert_eq!(
        token["responses"]["401"]["headers"]["WWW-Authenticate"]["required"],
        true
    );
    assert_eq!(
        token["responses"]["429"]["headers"]["Retry-After"]["required"],
        true
    );
    assert_eq!(
        doc["paths"]["/payme/token"]["post"]["responses"]["403"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/PaymeError"
    );
    assert_in_step(&app, &doc, &[]).await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_production_document_has_no_sandbox_routes() {
    let app = TestApp::spawn_on(
        Backend::from_env(),
        Options {
            mode: Mode::Production,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let doc = document(&app).await;
    assert_openapi_3_1(&doc);
    assert!(!paths_of(&doc).iter().any(|p| p.starts_with("/sandbox")));
    assert_in_step(&app, &doc, &[]).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_moved_or_unmounted_dialect_moves_or_leaves_the_document() {
    let app = TestApp::spawn_on(
        Backend::from_env(),
        Options {
            dialect_paths: DialectPaths::with_overrides([
                ("nequi", "/custom/nequi/token"),
                ("payme", "off"),
            ])
            .unwrap(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let doc = document(&app).await;
    assert_openapi_3_1(&doc);
    let paths = paths_of(&doc);
    assert!(!paths.contains("/nequi/oauth2/token"));
    assert!(!paths.contains("/payme/token"));
    assert_eq!(
        doc["paths"]["/custom/nequi/token"]["post"]["operationId"],
        "nequi_token"
    );
    assert_in_step(&app, &doc, &["/custom/nequi/token"]).await;
    app.cleanup().await;
}
