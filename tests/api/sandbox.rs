//! Sandbox fault injection and request capture (SPEC §6): every fault kind
//! in every dialect against a running server, faults set through the CLI
//! reaching it within a second, `--times` and a seeded `--ratio`, the
//! masked request log, and no `/sandbox/*` in production.

use std::time::{Duration, Instant};

use ficha::oauth::Mode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{basic_header, eventually, jwt_parts, system_now, verify_with_jwks};
use crate::helpers::{Backend, Options, TestApp};

const PEINAU_ID: &str = "641281901508761220281";
const PEINAU_SECRET: &str = "B8WKRXMiWHHrMCectt9Rg3ju4Y8GNheEa50gx6365sBV";

/// The five dialects, each called with its provider's documented request
/// and its sandbox seed (for Fegora, the public client `apiApp` and the
/// seeded user's password in place of a secret).
#[derive(Debug, Clone, Copy)]
enum Dialect {
    Payvalida,
    Nequi,
    Peinau,
    Payme,
    Fegora,
}

const DIALECTS: [Dialect; 5] = [
    Dialect::Payvalida,
    Dialect::Nequi,
    Dialect::Peinau,
    Dialect::Payme,
    Dialect::Fegora,
];

impl Dialect {
    fn client_id(self) -> &'static str {
        match self {
            Dialect::Payvalida => "payvalida",
            Dialect::Nequi => "nequi-sandbox",
            Dialect::Peinau => PEINAU_ID,
            Dialect::Payme => "your_client_id",
            Dialect::Fegora => "apiApp",
        }
    }

    async fn call(self, app: &TestApp) -> reqwest::Response {
        self.call_as(app, self.client_id(), self.secret()).await
    }

    fn secret(self) -> &'static str {
        match self {
            Dialect::Payvalida => "client_secret",
            Dialect::Nequi => "nequi-sandbox-secret",
            Dialect::Peinau => PEINAU_SECRET,
            Dialect::Payme => "your_client_secret",
            Dialect::Fegora => "{contrasenia}",
        }
    }

    async fn call_as(self, app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
        let form = "application/x-www-form-urlencoded";
        let req = match self {
            Dialect::Payvalida => app
                .http
                .post(app.url("/oauth2/token"))
                .header("Authorization", basic_header(id, secret))
                .header("Content-Type", form)
                .body("grant_type=client_credentials&scope=transaction"),
            Dialect::Nequi => app
                .http
                .post(app.url("/nequi/oauth2/token?grant_type=client_credentials"))
                .header("Authorization", basic_header(id, secret))
                .header("Content-Type", form),
            Dialect::Peinau => app
                .http
                .post(app.url("/peinau/sso/oauth2/v2/token"))
                .header("Authorization", format!("Basic {id}:{secret}"))
                .header("Content-Type", form)
                .body("grant_type=client_credentials"),
            Dialect::Payme => app
                .http
                .post(app.url("/payme/token"))
                .header("Content-Type", "application/json")
                .body(
                    json!({
                        "action": "authorize",
                        "grant_type": "client_credentials",
                        "audience": "https://api.preprod.alignet.io/",
                        "client_id": id,
                        "client_secret": secret,
                        "scope": "create:token post:charges"
                    })
                    .to_string(),
                ),
            Dialect::Fegora => app
                .http
                .post(app.url("/fegora/token"))
                .header("Content-Type", form)
                .body(format!(
                    "grant_type=password&client_id={id}&username=25365421&password={secret}"
                )),
        };
        req.send().await.unwrap()
    }
}

impl TestApp {
    async fn set_fault(&self, fault: Value) -> Value {
        let resp = self
            .http
            .post(self.url("/sandbox/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn clear_faults(&self) {
        let resp = self
            .http
            .delete(self.url("/sandbox/faults"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn faults(&self) -> Value {
        self.http
            .get(self.url("/sandbox/faults"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn captured(&self, query: &str) -> String {
        let resp = self
            .http
            .get(self.url(&format!("/sandbox/requests{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }
}

/// The access token of a success body, whatever the dialect.
async fn token_of(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn status_of(d: Dialect, app: &TestApp) -> u16 {
    d.call(app).await.status().as_u16()
}

#[tokio::test]
async fn every_fault_kind_misbehaves_as_documented_in_every_dialect() {
    let app = TestApp::spawn().await;
    let jwks = app.get_jwks().await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    for d in DIALECTS {
        let id = d.client_id();
        for (code, error) in [
            (429, "temporarily_unavailable"),
            (500, "server_error"),
            (503, "temporarily_unavailable"),
        ] {
            app.set_fault(json!({"client_id": id, "kind": format!("status:{code}")}))
                .await;
            let resp = d.call(&app).await;
            assert_eq!(resp.status(), code, "{d:?}");
            assert_eq!(resp.headers()["cache-control"], "no-store");
            assert_eq!(
                resp.headers().contains_key("retry-after"),
                code != 500,
                "{d:?} {code}"
            );
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], error, "{d:?} {code}: {body}");
            if let Dialect::Payme = d {
                // Pay-me's own envelope.
                assert_eq!(body["success"], false, "{body}");
                assert!(body["authorization"]["meta"]["status"]["code"].is_string());
            }
        }

        app.set_fault(json!({"client_id": id, "kind": "delay:300"}))
            .await;
        let started = Instant::now();
        let token = token_of(d.call(&app).await).await;
        assert!(started.elapsed() >= Duration::from_millis(300), "{d:?}");
        verify_with_jwks(&token, &jwks).unwrap();

        app.set_fault(json!({"client_id": id, "kind": "malformed-json"}))
            .await;
        let resp = d.call(&app).await;
        assert_eq!(resp.status(), 200, "{d:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let text = resp.text().await.unwrap();
        assert!(text.contains("access_token"), "{text}");
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "{d:?}: {text}"
        );

        app.set_fault(json!({"client_id": id, "kind": "expired-token"}))
            .await;
        let token = token_of(d.call(&app).await).await;
        let err = verify_with_jwks(&token, &jwks).unwrap_err();
        // jsonwebtoken checks the signature before the expiry: this token is
        // correctly signed and expired.
        assert!(err.contains("Expired"), "{d:?}: {err}");
        let (_, claims) = jwt_parts(&token);
        assert!(
            claims["exp"].as_i64().unwrap() < system_now() - 60,
            "{claims}"
        );
        assert_eq!(claims["client_id"], id);

        app.set_fault(json!({"client_id": id, "kind": "wrong-kid"}))
            .await;
        let token = token_of(d.call(&app).await).await;
        let (header, _) = jwt_parts(&token);
        let kid = header["kid"].as_str().unwrap();
        assert!(!published.contains(&kid), "{d:?}: {kid}");
        assert_eq!(
            verify_with_jwks(&token, &jwks).unwrap_err(),
            "kid not in JWKS"
        );

        app.set_fault(json!({"client_id": id, "kind": "bad-signature"}))
            .await;
        let token = token_of(d.call(&app).await).await;
        assert!(published.contains(&jwt_parts(&token).0["kid"].as_str().unwrap()));
        let err = verify_with_jwks(&token, &jwks).unwrap_err();
        assert!(err.contains("InvalidSignature"), "{d:?}: {err}");

        app.clear_faults().await;
        let token = token_of(d.call(&app).await).await;
        verify_with_jwks(&token, &jwks).unwrap();
    }
}

#[tokio::test]
async fn a_token_fault_spares_a_request_that_fails_authentication() {
    let app = TestApp::spawn().await;
    app.set_fault(json!({"client_id": "payvalida", "kind": "wrong-kid", "times": 1}))
        .await;
    let resp = Dialect::Payvalida.call_as(&app, "payvalida", "wrong").await;
    assert_eq!(resp.status(), 401);
    // The one firing is still there for the next real token.
    let token = token_of(Dialect::Payvalida.call(&app).await).await;
    assert!(verify_with_jwks(&token, &app.get_jwks().await).is_err());
    let token = token_of(Dialect::Payvalida.call(&app).await).await;
    verify_with_jwks(&token, &app.get_jwks().await).unwrap();
}

both_backends!(
    a_fault_set_with_the_cli_reaches_the_running_server_within_a_second,
    Options::default(),
    |app: TestApp| async move {
        assert_eq!(status_of(Dialect::Nequi, &app).await, 200);
        let set = app.cli_json(&[
            "sandbox",
            "fault",
            "set",
            "nequi-sandbox",
            "status:503",
            "--times",
            "100",
        ]);
        assert_eq!(set["kind"], "status:503");
        assert_eq!(set["times"], 100);
        let reached = eventually(Duration::from_secs(1), || async {
            status_of(Dialect::Nequi, &app).await == 503
        })
        .await;
        assert!(reached, "the fault did not reach the server within 1 s");

        let list = app.cli_json(&["sandbox", "fault", "list"]);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["client_id"], "nequi-sandbox");
        let served = app.faults().await;
        assert_eq!(served[0]["kind"], "status:503", "{served}");

        let cleared = app.cli_json(&["sandbox", "fault", "clear", "nequi-sandbox"]);
        assert_eq!(cleared["cleared"], 1);
        let healed = eventually(Duration::from_secs(1), || async {
            status_of(Dialect::Nequi, &app).await == 200
        })
        .await;
        assert!(healed, "the cleared fault still applied after 1 s");
        assert_eq!(app.cli_json(&["sandbox", "fault", "list"]), json!([]));
    }
);

#[tokio::test]
async fn the_cli_refuses_an_unknown_fault_kind_with_one_clear_line() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["sandbox", "fault", "set", "payvalida", "status:404"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status:429"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let resp = app
        .http
        .post(app.url("/sandbox/faults"))
        .json(&json!({"client_id": "payvalida", "kind": "delay:forever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn times_n_hits_the_next_n_requests_only() {
    let app = TestApp::spawn().await;
    let set = app
        .set_fault(json!({"client_id": "payvalida", "kind": "status:500", "times": 3}))
        .await;
    assert_eq!(set["remaining"], 3);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(status_of(Dialect::Payvalida, &app).await);
    }
    assert_eq!(statuses, [500, 500, 500, 200, 200]);
    let faults = app.faults().await;
    assert_eq!(faults[0]["remaining"], 0, "{faults}");
    assert_eq!(faults[0]["fired"], 3, "{faults}");

    // Setting it again restarts the count.
    app.set_fault(json!({"client_id": "payvalida", "kind": "status:500", "times": 3}))
        .await;
    assert_eq!(status_of(Dialect::Payvalida, &app).await, 500);
}

#[tokio::test]
async fn a_seeded_ratio_hits_the_same_requests_every_time() {
    let app = TestApp::spawn().await;
    let fault =
        json!({"client_id": "your_client_id", "kind": "status:503", "ratio": 0.5, "seed": 42});
    let mut runs = Vec::new();
    for _ in 0..2 {
        app.set_fault(fault.clone()).await;
        let mut hits = Vec::new();
        for _ in 0..50 {
            hits.push(status_of(Dialect::Payme, &app).await == 503);
        }
        runs.push(hits);
    }
    assert_eq!(runs[0], runs[1], "the same seed must hit the same requests");
    let count = runs[0].iter().filter(|h| **h).count();
    assert!((10..=40).contains(&count), "{count} of 50 hit at ratio 0.5");
    assert_eq!(app.faults().await[0]["fired"], count);
}

#[tokio::test]
async fn the_capture_masks_every_secret_credential_and_token() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--auth-methods",
        "client_secret_basic,client_secret_post",
    ]);
    let mut tokens = Vec::new();
    let mut secrets = vec![secret.clone()];
    for d in DIALECTS {
        let (id, secret) = match d {
            Dialect::Payvalida => (id.as_str(), secret.as_str()),
            _ => (d.client_id(), d.secret()),
        };
        if !matches!(d, Dialect::Payvalida) {
            secrets.push(secret.to_owned());
        }
        tokens.push(token_of(d.call_as(&app, id, secret).await).await);
    }
    // client_secret_post: the secret in the form body.
    let resp = app
        .post_token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
    tokens.push(token_of(resp).await);
    // A refresh token and a password in a body, refused but captured.
    app.post_token(
        None,
        &[
            ("grant_type", "password"),
            ("client_id", &id),
            ("username", "someone"),
            ("password", "hunter2-very-secret"),
            ("refresh_token", "rt-opaque-value"),
        ],
    )
    .await;
    secrets.extend(["hunter2-very-secret".into(), "rt-opaque-value".into()]);
    // Peinau's identifier travels sealed, never in clear.
    app.http
        .post(app.url("/peinau/sso/oauth2/v2/token"))
        .header(
            "Authorization",
            format!("Basic {PEINAU_ID}:{PEINAU_SECRET}"),
        )
        .body("{grant_type=client_credentials, identifier=987654321}")
        .send()
        .await
        .unwrap();
    secrets.push("987654321".into());
    // A body no dialect can read is masked whole.
    app.http
        .post(app.url("/payme/token"))
        .header("Content-Type", "application/json")
        .body("client_secret: unparsable-secret-value")
        .send()
        .await
        .unwrap();
    secrets.push("unparsable-secret-value".into());

    let capture = app.captured("?limit=500").await;
    for s in &secrets {
        assert!(!capture.contains(s.as_str()), "a secret leaked: {s}");
    }
    for t in &tokens {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!capture.contains(signature), "a token leaked");
    }
    assert!(!capture.contains(&basic_header(&id, &secret)));

    let all: Value = serde_json::from_str(&capture).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), DIALECTS.len() + 4);
    // Newest first, with what a test needs to see.
    assert_eq!(all[0]["dialect"], "payme");
    assert_eq!(all[0]["body"], "***");
    assert_eq!(all[0]["status"], 400);
    assert_eq!(all[0]["outcome"], "invalid_request");
    let payme = all
        .iter()
        .find(|r| r["client_id"] == "your_client_id")
        .unwrap();
    assert_eq!(payme["method"], "POST");
    assert_eq!(payme["path"], "/payme/token");
    assert_eq!(payme["outcome"], "issued");
    assert_eq!(payme["status"], 200);
    let body: Value = serde_json::from_str(payme["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["client_secret"], "***");
    assert_eq!(body["client_id"], "your_client_id");
    assert!(payme["time"].as_i64().unwrap() >= system_now() - 60);
    let nequi = all.iter().find(|r| r["dialect"] == "nequi").unwrap();
    assert_eq!(nequi["headers"]["authorization"], "Basic ***");
    assert_eq!(nequi["query"], "grant_type=client_credentials");

    let mine: Value =
        serde_json::from_str(&app.captured(&format!("?client_id={id}")).await).unwrap();
    // The password request may be refused before its client id is read.
    assert!((2..=3).contains(&mine.as_array().unwrap().len()), "{mine}");
    assert!(mine
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["client_id"] == id.as_str()));
    let one: Value = serde_json::from_str(&app.captured("?limit=1").await).unwrap();
    assert_eq!(one.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_capture_records_the_fault_applied() {
    let app = TestApp::spawn().await;
    app.set_fault(json!({"client_id": PEINAU_ID, "kind": "status:429", "times": 1}))
        .await;
    assert_eq!(status_of(Dialect::Peinau, &app).await, 429);
    let capture: Value = serde_json::from_str(&app.captured("").await).unwrap();
    assert_eq!(capture[0]["fault"], "status:429");
    assert_eq!(capture[0]["status"], 429);
    assert_eq!(capture[0]["client_id"], PEINAU_ID);
    assert_eq!(capture[0]["headers"]["authorization"], "Basic ***");
}

#[tokio::test]
async fn production_has_no_sandbox_routes_and_ignores_the_fault_table() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        Options {
            mode: Mode::Production,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    for (method, path) in [
        (reqwest::Method::GET, "/sandbox/faults"),
        (reqwest::Method::POST, "/sandbox/faults"),
        (reqwest::Method::DELETE, "/sandbox/faults"),
        (reqwest::Method::GET, "/sandbox/requests"),
        (
            reqwest::Method::GET,
            "/sandbox/requests?client_id=x&limit=1",
        ),
    ] {
        let resp = app
            .http
            .request(method.clone(), app.url(path))
            .json(&json!({"client_id": "x", "kind": "status:503"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    let (id, secret) = app.create_client(&["--scopes", "transaction"]);
    app.cli_json(&["sandbox", "fault", "set", &id, "status:503"]);
    // Several polls later, production still issues normally.
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.token_for(&id, &secret, Some("transaction")).await;
}
