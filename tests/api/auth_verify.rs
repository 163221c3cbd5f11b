//! `GET /auth/verify?scope=S`, for nginx's `auth_request` (RFC 6750 §3).

use ficha::oauth::ManualClock;

use crate::helpers::{jwt_parts, system_now, Options, TestApp};

async fn token(app: &TestApp, scope: &str) -> String {
    app.token_for("payvalida", "client_secret", Some(scope))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn challenge(resp: &reqwest::Response) -> String {
    resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_valid_token_with_the_scope_passes_with_headers_for_the_upstream() {
    let app = TestApp::spawn().await;
    let t = token(&app, "transaction").await;
    let (_, claims) = jwt_parts(&t);

    let resp = app.auth_verify("transaction", Some(&t)).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert_eq!(h["x-ficha-client-id"], "payvalida");
    assert_eq!(h["x-ficha-scope"], "transaction");
    assert_eq!(h["x-ficha-jti"], claims["jti"].as_str().unwrap());
    assert_eq!(h["x-ficha-sub"], "payvalida");
    assert_eq!(h["x-ficha-exp"], claims["exp"].to_string().as_str());
    assert_eq!(h["cache-control"], "no-store");
    assert!(!h.contains_key("www-authenticate"));

    // Any method (nginx may pass the original one), any scheme case, no
    // scope parameter (any valid token), a token with several scopes.
    let resp = app
        .http
        .post(app.url("/auth/verify?scope=transaction"))
        .header("Authorization", format!("bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .http
        .get(app.url("/auth/verify"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let both = token(&app, "transaction confirmation").await;
    assert_eq!(
        app.auth_verify("confirmation", Some(&both)).await.status(),
        200
    );
    assert_eq!(
        app.auth_verify("transaction confirmation", Some(&both))
            .await
            .status(),
        200
    );

    // An audience, when the proxy names one, must match.
    let aud = claims["aud"].as_str().unwrap();
    for (audience, status) in [(aud, 200), ("https://other.example", 401)] {
        let resp = app
            .http
            .get(app.url("/auth/verify"))
            .query(&[("scope", "transaction"), ("audience", audience)])
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{audience}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn without_an_audience_parameter_the_token_must_be_for_the_servers_audience() {
    let app = TestApp::spawn().await;
    let (id, secret) = app.create_client(&[
        "--scopes",
        "transaction",
        "--audience",
        "https://other-api.example",
    ]);
    let foreign = app.token_for(&id, &secret, Some("transaction")).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ours = token(&app, "transaction").await;
    // The server's audience is the issuer here (no --audience).
    assert_eq!(jwt_parts(&ours).1["aud"], app.base);

    // RFC 9068 §4: a token minted for another resource is refused.
    let resp = app.auth_verify("transaction", Some(&foreign)).await;
    assert_eq!(resp.status(), 401);
    assert!(challenge(&resp).contains("invalid_token"));
    assert_eq!(
        app.auth_verify("transaction", Some(&ours)).await.status(),
        200
    );
    // Unless the proxy names that other audience.
    for (t, status) in [(&foreign, 200), (&ours, 401)] {
        let resp = app
            .http
            .get(app.url("/auth/verify"))
            .query(&[
                ("scope", "transaction"),
                ("audience", "https://other-api.example"),
            ])
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn missing_or_invalid_tokens_are_401_and_a_missing_scope_is_403() {
    let app = TestApp::spawn().await;
    let confirmation = token(&app, "confirmation").await;
    let transaction = token(&app, "transaction").await;

    let resp = app.auth_verify("transaction", None).await;
    assert_eq!(resp.status(), 401);
    let c = challenge(&resp);
    assert!(c.starts_with("Bearer "), "{c}");
    assert!(c.contains(r#"error="invalid_token""#), "{c}");

    let cases: Vec<(&str, String)> = vec![
        ("garbage", "garbage".into()),
        (
            "bad signature",
            crate::introspect::flip_signature(&transaction),
        ),
        (
            "unknown kid",
            crate::introspect::with_header(
                &transaction,
                serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}),
            ),
        ),
    ];
    for (name, bad) in &cases {
        let resp = app.auth_verify("transaction", Some(bad)).await;
        assert_eq!(resp.status(), 401, "{name}");
        assert!(
            challenge(&resp).contains(r#"error="invalid_token""#),
            "{name}"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{name}");
    }
    // Basic credentials are not a bearer token.
    let resp = app
        .http
        .get(app.url("/auth/verify?scope=transaction"))
        .basic_auth("payvalida", Some("client_secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // RFC 6750 §3.1: valid, but not for this operation.
    let resp = app.auth_verify("transaction", Some(&confirmation)).await;
    assert_eq!(resp.status(), 403);
    let c = challenge(&resp);
    assert!(c.contains(r#"error="insufficient_scope""#), "{c}");
    assert!(c.contains(r#"scope="transaction""#), "{c}");

    // Revoked: 401 at once on this instance.
    assert_eq!(
        app.revoke(("payvalida", "client_secret"), &transaction)
            .await,
        200
    );
    let resp = app.auth_verify("transaction", Some(&transaction)).await;
    assert_eq!(resp.status(), 401);
    assert!(challenge(&resp).contains("revoked"));

    // A malformed scope parameter is the proxy's mistake.
    let resp = app.auth_verify("a\"b", Some(&confirmation)).await;
    assert_eq!(resp.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn a_token_is_refused_the_second_its_exp_passes() {
    let app = TestApp::spawn_on(
        crate::helpers::Backend::from_env(),
        Options {
            clock: Some(ManualClock::new(system_now())),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let t = token(&app, "transaction").await;
    let clock = app.clock.clone().unwrap();
    let status_after = |secs: i64| {
        clock.advance(secs);
        async {
            // The denylist is re-marked fresh by the next poll after a
            // jump (every 200 ms here); a server that never recovers
            // fails the test instead of hanging the suite.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let resp = app.auth_verify("transaction", Some(&t)).await;
                if resp.status() != 503 {
                    return resp;
                }
                assert!(std::time::Instant::now() < deadline, "still 503 after 10 s");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(status_after(1199).await.status(), 200);
    let resp = status_after(1).await;
    assert_eq!(resp.status(), 401);
    assert!(challenge(&resp).contains("expired"));
    app.cleanup().await;
}
